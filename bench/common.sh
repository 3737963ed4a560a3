# shellcheck shell=bash
# Shared by bench/run.sh, soak.sh, service.sh, objstore.sh and jsread.sh
# (sourced, not run); free_port, port_open, stop_gracefully come from
# scripts/proc-lib.sh.
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

. "$(dirname "${BASH_SOURCE[0]}")/../scripts/proc-lib.sh"

# wait_port PORT: until something listens there, up to 10 s
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$(basename "$0"): nothing listens on port $1" >&2
    return 1
}

# proc_ticks PID: user + system CPU time of a process so far, in clock
# ticks (getconf CLK_TCK a second)
proc_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# the median of the numbers on stdin (separated by spaces or newlines)
median() {
    tr ' ' '\n' | grep . | sort -g \
        | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

# nginx_load_modules DIR: the load_module lines of the modules built in
# DIR (BUILD_DIR/modules): NDK, lua, ours
nginx_load_modules() {
    local m
    for m in ndk_http_module ngx_http_lua_module ngx_http_lua_nats_module; do
        echo "load_module $1/$m.so;"
    done
}

# nginx_start PREFIX CONF PIDFILE PORT: starts nginx with the prefix
# PREFIX and CONF (relative to it), waits for PIDFILE (relative too) and
# for PORT to listen; the caller stops it (kill of the pid in PIDFILE)
nginx_start() {
    /usr/sbin/nginx -p "$1" -c "$2" -e "$1/logs/error.log" || return 1
    for _ in $(seq 50); do
        [ -s "$1/$3" ] && break
        sleep 0.1
    done
    wait_port "$4"
}

# nginx_workers MASTER_PID: the pids of its workers, one a line
nginx_workers() { pgrep -P "$1" | sort -n; }


# bench_cleanup: the EXIT trap of a bench that runs in work directory W:
# stops its nginx (W/logs/nginx.pid) and nats-server (NATS_PID), removes W
bench_cleanup() {
    [ -s "$W/logs/nginx.pid" ] && kill "$(cat "$W/logs/nginx.pid")" 2> /dev/null
    [ -n "${NATS_PID:-}" ] && kill "$NATS_PID" 2> /dev/null
    wait 2> /dev/null
    rm -rf "$W"
}

# bench_js_server: a nats-server with JetStream (store in W/js, log in
# W/nats.log) on a free port: sets NATS_PORT and NATS_PID
bench_js_server() {
    NATS_PORT=$(free_port)
    nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$W/js" > "$W/nats.log" 2>&1 &
    NATS_PID=$!
}
