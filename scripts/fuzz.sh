#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang-14 (ASan + UBSan) in
# build-fuzz/ and runs each one for SECONDS_PER_TARGET seconds (default
# 60), one after the other, in a single process each (no -jobs/-workers).
#
#   bash scripts/fuzz.sh            # 60 s per target
#   bash scripts/fuzz.sh 3600       # a long run
#   bash scripts/fuzz.sh 0          # only replay the corpus, no fuzzing
#   FUZZ_TARGETS="fuzz_parser fuzz_headers" bash scripts/fuzz.sh 120
#
# Each target starts from a scratch copy of fuzz/corpus/<target>/ in
# build-fuzz/corpus/<target>/ (the committed corpus is never written).
# Crashes go to build-fuzz/artifacts/<target>-crash-*, full logs to
# build-fuzz/logs/<target>.log. Prints executions, exec/s and coverage
# per target; exits non-zero if any target crashed.
#
# Environment: FUZZ_TARGETS (names, default all), FUZZ_KEEP_CORPUS=1
# (reuse build-fuzz/corpus/ from the last run instead of a fresh copy),
# CC/CXX (default clang-14/clang++-14).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
case "$seconds" in
    ''|*[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac

build=build-fuzz
targets=${FUZZ_TARGETS:-"fuzz_parser fuzz_parser_structured fuzz_framer fuzz_headers fuzz_json fuzz_jsmeta"}
cc=${CC:-clang-14}
cxx=${CXX:-clang++-14}

if ! command -v "$cxx" >/dev/null 2>&1; then
    echo "fuzz: $cxx not found (bash scripts/deps.sh installs clang-14)" >&2
    exit 2
fi

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
      -DRESTY_NATS_FUZZ=ON -DRESTY_NATS_BUILD_TESTS=OFF \
      -DRESTY_NATS_BUILD_MODULE=OFF -DRESTY_NATS_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target resty_nats_fuzzers -j"$(nproc)"

symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
if [ -n "$symbolizer" ]; then
    export ASAN_SYMBOLIZER_PATH="$symbolizer"
fi
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:allocator_may_return_null=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

mkdir -p "$build/artifacts" "$build/logs" "$build/corpus"

# per-target libFuzzer options
target_opts() {
    case "$1" in
        fuzz_parser)  echo "-dict=fuzz/nats.dict -max_len=8192" ;;
        fuzz_headers) echo "-dict=fuzz/nats.dict" ;;
        fuzz_json)    echo "-dict=fuzz/json.dict" ;;
        *)            echo "" ;;
    esac
}

stat_of() {
    sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

failed=0
summary=()

for t in $targets; do
    bin="$build/fuzz/$t"
    corpus="$build/corpus/$t"
    log="$build/logs/$t.log"

    if [ ! -x "$bin" ]; then
        echo "fuzz: no such target: $t" >&2
        exit 2
    fi

    if [ "${FUZZ_KEEP_CORPUS:-0}" != 1 ] || [ ! -d "$corpus" ]; then
        rm -rf "$corpus"
        mkdir -p "$corpus"
        if [ -d "fuzz/corpus/$t" ]; then
            cp -R "fuzz/corpus/$t/." "$corpus/"
        fi
    fi

    if [ "$seconds" -eq 0 ]; then
        limit=-runs=0       # -max_total_time=0 would mean forever
        echo "fuzz: $t, corpus replay only (log: $log)"
    else
        limit=-max_total_time="$seconds"
        echo "fuzz: $t for ${seconds}s (log: $log)"
    fi
    rc=0
    # shellcheck disable=SC2046
    "$bin" "$corpus" $(target_opts "$t") \
        "$limit" -print_final_stats=1 -timeout=25 \
        -rss_limit_mb=2048 -artifact_prefix="$build/artifacts/$t-" \
        >"$log" 2>&1 || rc=$?

    execs=$(stat_of number_of_executed_units "$log")
    rate=$(stat_of average_exec_per_sec "$log")
    cov=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 \
          | sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+)\/([^ ]+).*/\1 edges, \2 features, corpus \3 (\4)/')
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)

    if [ "$rc" -ne 0 ] || [ -n "$crash" ]; then
        failed=1
        result="CRASH (exit $rc) ${crash:-see $log}"
        echo "fuzz: $t failed; the report:" >&2
        grep -E -A 12 'FUZZ CHECK FAILED|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error' \
            "$log" | head -n 40 >&2 || tail -n 40 "$log" >&2
    else
        result="no crash"
    fi

    summary+=("$(printf '%-24s %10s execs %8s exec/s  cov: %s  %s' \
                "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$result")")
done

echo
echo "fuzz summary (${seconds}s per target):"
for line in "${summary[@]}"; do
    echo "  $line"
done

if [ "$failed" -ne 0 ]; then
    echo "fuzz: crash found; reproduce with $build/fuzz/<target> <artifact>" >&2
    exit 1
fi
