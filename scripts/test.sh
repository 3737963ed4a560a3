#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test:
# the GoogleTest unit tests and the Test::Nginx suites (through CTest).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure "$@"
