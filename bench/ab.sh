#!/usr/bin/env bash
# A/B benchmark of two versions of lua-resty-nats in one invocation:
#
#   bash bench/ab.sh BEFORE_REV [AFTER_REV|worktree]
#
# BEFORE_REV, AFTER_REV: anything git rev-parse takes (HEAD~3, a tag, a
# sha). AFTER defaults to "worktree": the working tree as it is now
# (tracked files and untracked ones that are not ignored), copied once at
# the start so that edits made during the run do not leak into it.
#
# Each side is a complete tree of its own (git archive REV | tar -x, or the
# snapshot) with a CMake build directory of its own, and each side runs its
# OWN bench/run.sh with BUILD_DIR = its build directory and LUA_DIR = its
# lua/: the Lua library, the C module (whose ABI changes between versions),
# the bench handlers (bench/lua) and the C peers (nats_bench.c) always come
# from the same version, as they were written to go together. The price:
# when the two versions' bench drivers differ, the A/B measures that too
# (git diff BEFORE AFTER -- bench/ tells).
#
# ROUNDS times, alternating which side goes first (round 1: before, after;
# round 2: after, before; ...), it runs the side's run.sh with RUNS runs per
# figure, then prints, for each figure both sides recorded (run.sh's raw
# records in BUILD_DIR/bench-run/results/, one line per run, the same
# numbers run.sh's own table is made of): the median over all of a side's
# runs, [min..max], the ratio after/before of the medians, and the ratio
# of each round (the medians of that round's runs: the two sides of a
# round ran minutes apart at most). Rows marked (control) are the libnats
# baselines of the same invocations: their ratio is the drift of the
# machine between the sides, not a change of the library.
#
# Knobs (environment):
#   ROUNDS=4          invocations of run.sh per side
#   RUNS=1            runs per figure per invocation (run.sh's RUNS)
#   SCENARIOS="shared spublish publish receive gateway"
#                     run.sh's scenarios (a scenario that one side's run.sh
#                     does not know is left out on that side, with a note)
#   AB_DIR=$BUILD_DIR-ab  the scratch directory (BUILD_DIR defaults to
#                     build: build-ab in the checkout, git-ignored): the two
#                     trees and build directories (BEFORE/ and AFTER/,
#                     reused while they hold the same code) and the raw
#                     logs of each invocation (runs/<date>/)
#   AB_CMAKE_ARGS     extra arguments of the first cmake configure of each
#                     side's build directory (kept in its cache), e.g.
#                     -DRESTY_NATS_PATCHED_LUA=OFF
#   N, SPUB_N, DURATION, CMP_ROUNDS, PUB_WBUF, WAIT_IDLE, CPU_N, JS_N, ...:
#                     passed through to run.sh (see its header)
# LUA_DIR and BUILD_DIR are set per side; the ones of the environment are
# not passed on.

# (one block: bash reads it at once, so editing this file during a run
# cannot break that run)
{
set -euo pipefail

usage() {
    sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then usage; fi
case $1 in -h|--help) usage ;; esac

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
git rev-parse --git-dir > /dev/null 2>&1 \
    || { echo "ab.sh: $REPO is not a git checkout" >&2; exit 2; }

# the knobs run.sh reads, and ours, printed with the command line when set
KNOBS="N SPUB_N CMP_ROUNDS DURATION PUB_WBUF RSS_DURATION FANOUT_W FANOUT_N
       JS_N FETCH_N CPU_N CORE_MIN_TIME WAIT_IDLE JIT_LOG PERF BUILD_DIR AB_DIR
       AB_CMAKE_ARGS"
USER_ENV=$(for v in $KNOBS; do
    if [ -n "${!v+x}" ]; then printf '%s=%q ' "$v" "${!v}"; fi
done)
BEFORE_ARG=$1
AFTER_ARG=${2:-worktree}
ROUNDS=${ROUNDS:-4}
RUNS=${RUNS:-1}
SCENARIOS=${SCENARIOS:-"shared spublish publish receive gateway"}
AB_DIR=$(realpath -m "${AB_DIR:-${BUILD_DIR:-build}-ab}")
AB_CMAKE_ARGS=${AB_CMAKE_ARGS:-}
for v in ROUNDS RUNS; do
    if ! [[ "${!v}" =~ ^[1-9][0-9]*$ ]]; then
        echo "ab.sh: $v must be a positive integer" >&2
        exit 2
    fi
done

resolve() {  # resolve REV: the full sha of a commit, or a failure
    git rev-parse --verify --quiet "$1^{commit}" \
        || { echo "ab.sh: '$1' is not a commit" >&2; exit 2; }
}
BEFORE_SHA=$(resolve "$BEFORE_ARG")
if [ "$AFTER_ARG" = worktree ]; then
    AFTER_SHA=
else
    AFTER_SHA=$(resolve "$AFTER_ARG")
fi

started=$(date +%s)
mkdir -p "$AB_DIR"
STAMP=$(date -u +%Y%m%d-%H%M%S)
RUNDIR="$AB_DIR/runs/$STAMP"
mkdir -p "$RUNDIR"

# trees ---------------------------------------------------------------------
# prepare SIDE: $AB_DIR/SIDE/tree holds the side's code, $AB_DIR/SIDE/stamp
# says which (a sha, or "worktree <hash of the files>"); an existing tree
# with the same stamp is kept, and so is the build directory in any case:
# files are extracted with the extraction time as mtime (tar -m), so a
# changed tree rebuilds what it must (and the fetched lua module source,
# the nginx configure of the module build stay cached)
snapshot_files() {  # NUL-separated: tracked and untracked non-ignored files
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do
            if [ -f "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
          done
}
prepare() {
    local side=$1 sha=$2 dir="$AB_DIR/$1" stamp want
    mkdir -p "$dir"
    if [ -n "$sha" ]; then
        want=$sha
    else
        want="worktree $(snapshot_files | sort -z | xargs -0 sha256sum \
                         | sha256sum | cut -c1-16)"
    fi
    stamp=$(cat "$dir/stamp" 2>/dev/null || true)
    if [ "$stamp" = "$want" ] && [ -f "$dir/tree/bench/run.sh" ]; then
        echo "$side: $dir/tree already holds $want"
        return
    fi
    rm -rf "$dir/tree" "$dir/stamp"
    mkdir -p "$dir/tree"
    if [ -n "$sha" ]; then
        git archive "$sha" | tar -x -m -C "$dir/tree"
    else
        snapshot_files | tar -c --null -T - | tar -x -m -C "$dir/tree"
    fi
    [ -f "$dir/tree/bench/run.sh" ] \
        || { echo "ab.sh: $side ($want) has no bench/run.sh" >&2; exit 2; }
    echo "$want" > "$dir/stamp"
    echo "$side: $dir/tree <- $want"
}

label() {  # label SHA: "0e37629 subject", or the worktree's description
    if [ -n "$1" ]; then
        git log -1 --format='%h %s' "$1" | cut -c1-90
    else
        local dirty
        dirty=$(git status --porcelain | wc -l)
        echo "working tree on $(git rev-parse --short HEAD) ($dirty changed or untracked path(s))"
    fi
}
BEFORE_LABEL=$(label "$BEFORE_SHA")
AFTER_LABEL=$(label "$AFTER_SHA")
prepare before "$BEFORE_SHA"
prepare after "$AFTER_SHA"
git diff --stat "$BEFORE_SHA" ${AFTER_SHA:+"$AFTER_SHA"} > "$RUNDIR/diff-stat.txt" 2>/dev/null || true

# scenarios each side's run.sh knows ----------------------------------------
known() {  # known SIDE: its run.sh's ALL_SCENARIOS
    sed -n 's/^ALL_SCENARIOS="\(.*\)"$/\1/p' "$AB_DIR/$1/tree/bench/run.sh" | head -1
}
declare -A SCEN
notes=()
for side in before after; do
    k=" $(known "$side") "
    s=
    for sc in $SCENARIOS; do
        case $k in
            *" $sc "*) s="$s $sc" ;;
            *) notes+=("$side: its run.sh has no scenario '$sc': left out on that side") ;;
        esac
    done
    s=${s# }
    [ -n "$s" ] || { echo "ab.sh: none of '$SCENARIOS' is known to the $side side's run.sh ($k)" >&2; exit 2; }
    SCEN[$side]=$s
done

# builds ----------------------------------------------------------------------
# what run.sh builds by itself (bench_build: configure with
# -DRESTY_NATS_BUILD_BENCH=ON, targets nats_bench core_bench nginx_module),
# done here once per side first, so that a broken build stops the A/B
# before any measurement and the rounds only pay run.sh's no-op rebuild
bash scripts/deps.sh
for side in before after; do
    d="$AB_DIR/$side"
    log="$d/build.log"
    echo "$side: building in $d/build (log: $log) ..."
    t0=$(date +%s)
    # shellcheck disable=SC2086  # AB_CMAKE_ARGS: words
    { cmake -S "$d/tree" -B "$d/build" -DRESTY_NATS_BUILD_BENCH=ON $AB_CMAKE_ARGS \
        && cmake --build "$d/build" -j"$(nproc)" \
                 --target nats_bench core_bench nginx_module; } > "$log" 2>&1 \
        || { tail -n 30 "$log" >&2; echo "ab.sh: the $side build failed" >&2; exit 1; }
    echo "$side: built in $(( $(date +%s) - t0 ))s"
done

# rounds ----------------------------------------------------------------------
cmdline="$(for v in ROUNDS RUNS SCENARIOS; do printf '%s=%q ' "$v" "${!v}"; done)$USER_ENV"
cmdline="${cmdline}bash bench/ab.sh $(printf '%q' "$BEFORE_ARG")${2:+ $(printf '%q' "$AFTER_ARG")}"
{
    echo "command: $cmdline"
    echo "before: $BEFORE_ARG = $BEFORE_SHA ($BEFORE_LABEL)"
    echo "after: $AFTER_ARG = ${AFTER_SHA:-$(cat "$AB_DIR/after/stamp")} ($AFTER_LABEL)"
    echo "scenarios: before: ${SCEN[before]}; after: ${SCEN[after]}"
} > "$RUNDIR/meta.txt"

child=
trap '[ -z "$child" ] || { kill -TERM "$child" 2>/dev/null; wait "$child"; } || true; echo "ab.sh: interrupted" >&2; exit 130' INT TERM
FAILED=0
run_side() {  # run_side SIDE ROUND
    local side=$1 r=$2 d="$AB_DIR/$1" out="$RUNDIR/r$2-$1" t0 rc=0
    t0=$(date +%s)
    mkdir -p "$out"
    echo "round $r/$ROUNDS: $side ..."
    # GIT_CEILING_DIRECTORIES: run.sh's "code:" line must not describe the
    # checkout around the scratch directory
    env BUILD_DIR="$d/build" LUA_DIR="$d/tree/lua" RUNS="$RUNS" \
        SCENARIOS="${SCEN[$side]}" GIT_CEILING_DIRECTORIES="$d" \
        bash "$d/tree/bench/run.sh" > "$out/run.log" 2>&1 < /dev/null &
    child=$!
    wait "$child" || rc=$?
    child=
    # run.sh wipes BUILD_DIR/bench-run at its start: keep this one's
    # records and logs (not the JetStream store)
    if [ -d "$d/build/bench-run" ]; then
        (cd "$d/build/bench-run" && tar -c --exclude=./js .) | tar -x -C "$out"
    fi
    echo "$rc" > "$out/rc"
    if [ "$rc" != 0 ]; then
        FAILED=$(( FAILED + 1 ))
        echo "  run.sh exited $rc after $(( $(date +%s) - t0 ))s (figures it recorded are kept); $out/run.log:" >&2
        { grep -E '^  run failed: |^run.sh: ' "$out/run.log" \
            || tail -n 5 "$out/run.log"; } | head -n 10 | sed 's/^ */    /' >&2
    else
        echo "  done in $(( $(date +%s) - t0 ))s"
    fi
}
for r in $(seq "$ROUNDS"); do
    if (( r % 2 )); then order="before after"; else order="after before"; fi
    for side in $order; do run_side "$side" "$r"; done
done

# table -------------------------------------------------------------------------
elapsed=$(( $(date +%s) - started ))
{
echo
echo "== A/B: median [min..max] over ${ROUNDS} round(s) x RUNS=$RUNS per side; ratio = after / before medians"
echo "command: $cmdline"
echo "before:  $BEFORE_ARG = $BEFORE_LABEL"
echo "after:   $AFTER_ARG = $AFTER_LABEL$([ -n "$AFTER_SHA" ] || echo ", snapshot $(cut -d' ' -f2 "$AB_DIR/after/stamp")")"
echo "scenarios: ${SCEN[after]}$([ "${SCEN[before]}" != "${SCEN[after]}" ] && echo " (before: ${SCEN[before]})"); order per round: before first in odd rounds, after first in even rounds"
perl "$REPO/bench/ab_table.pl" "$RUNDIR" "$ROUNDS"
echo
echo "msgs/s, req/s, items/s: a ratio above 1 is faster; us/msg, us/req, ms, KiB: below 1 is less"
echo "(control): libnats in the same invocations; its ratio is the machine's drift between the sides"
[ "$BEFORE_SHA" = "${AFTER_SHA:-}" ] && echo "note: both sides are the same commit (an A/A run): the ratios are the noise"
for n in "${notes[@]}"; do echo "note: $n"; done
[ "$FAILED" -gt 0 ] && echo "note: $FAILED of $(( 2 * ROUNDS )) invocation(s) of run.sh exited non-zero (rK-SIDE/rc, rK-SIDE/run.log); a figure a run did not record is missing"
# what run.sh reported, counted over the invocations (example texts cut)
for f in "$RUNDIR"/r*/run.log; do
    grep -hE '^  run failed: |^note: ' "$f" | sed -e 's/^ *//' -e 's/, e\.g\.:.*//' | sort -u
done | sort | uniq -c | while read -r c n; do
    echo "note: run.sh, $c of $(( 2 * ROUNDS )) invocations: ${n#note: }"
done
echo "total time: ${elapsed}s; raw logs: $RUNDIR (rK-SIDE/run.log, results/, logs/); trees and builds: $AB_DIR/before, $AB_DIR/after"
} | tee "$RUNDIR/table.txt"
[ "$FAILED" -eq 0 ]
exit
}
