#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test:
# the GoogleTest unit tests, the Test::Nginx suites, the example page in
# headless Chromium (scripts/test-browser.sh) and the Debian package
# (scripts/test-package.sh: built, installed, used, purged), through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure "$@"

# the unit tests under ASan + UBSan, then every fuzz target for a short
# while (FUZZ_SECONDS per target, 30 by default; 0 replays the corpus only)
bash scripts/sanitize.sh
bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
