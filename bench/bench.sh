#!/usr/bin/env bash
# Kept for old references: the benchmark suite is bench/run.sh (see
# bench/README.md); this runs it with the same environment knobs.
exec bash "$(dirname "$0")/run.sh" "$@"
