# Shared by bench/run.sh and bench/soak.sh (sourced, not run).
# Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.

# bench_build DIR LOG TARGET...: installs what is missing, configures DIR
# with the benchmarks on and builds the targets; on failure prints the
# end of LOG and exits
bench_build() {
    local dir=$1 log=$2
    shift 2
    bash scripts/deps.sh
    echo "building in $dir ..."
    mkdir -p "$dir"
    cmake -S . -B "$dir" -DRESTY_NATS_BUILD_BENCH=ON > "$log" 2>&1 \
        || { tail -n 30 "$log" >&2; exit 1; }
    cmake --build "$dir" -j"$(nproc)" --target "$@" >> "$log" 2>&1 \
        || { tail -n 30 "$log" >&2; exit 1; }
}

# a free loopback TCP port
free_port() {
    perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1,
        LocalAddr => "127.0.0.1", LocalPort => 0)->sockport, "\n"'
}

# wait_port PORT: until something listens there, up to 10 s
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$(basename "$0"): nothing listens on port $1" >&2
    return 1
}
