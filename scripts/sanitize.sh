#!/usr/bin/env bash
# Builds the protocol core and its unit tests with ASan + UBSan (g++,
# RESTY_NATS_SANITIZE=ON) in build-asan/ and runs their CTest (no nginx
# module, so no Test::Nginx suites). Extra arguments go to ctest.
#
#   bash scripts/sanitize.sh
#   bash scripts/sanitize.sh -R Parser
set -euo pipefail
cd "$(dirname "$0")/.."

build=build-asan

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_COMPILER="${CC:-gcc}" -DCMAKE_CXX_COMPILER="${CXX:-g++}" \
      -DRESTY_NATS_SANITIZE=ON -DRESTY_NATS_BUILD_MODULE=OFF \
      -DRESTY_NATS_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)"

# leaks count as failures; UBSan stops at the first report (settings
# already in the environment come last, so they win)
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

ctest --test-dir "$build" --output-on-failure "$@"
