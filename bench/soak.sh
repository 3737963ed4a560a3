#!/usr/bin/env bash
# Soak test of the HTTP -> NATS request/reply gateway: keeps it under wrk
# load for SOAK_SECONDS and reports requests, errors and RSS (nginx workers
# and nats-server) at the start, every SAMPLE seconds and at the end. Not
# part of the tests.
#
#   bash bench/soak.sh                       # 10 minutes, 1 worker
#   SOAK_SECONDS=60 WORKERS=2 bash bench/soak.sh
#
# Knobs (environment):
#   SOAK_SECONDS=600  seconds of load
#   WORKERS=1         nginx worker processes (1 or 2)
#   CONNECTIONS=50    wrk connections (THREADS=2 wrk threads)
#   SAMPLE=60         seconds between two RSS samples
#   WARMUP=5          seconds of load before the start figures
#   LOCATION=/sync    /sync: request(subject, payload, {timeout = 5000}), the
#                     synchronous form, + set_keepalive; /gw: request() with
#                     a callback + wait(1) + set_keepalive
#   BUILD_DIR=build   the CMake build directory (-DRESTY_NATS_BUILD_BENCH=ON)
#   LUA_DIR=lua       where resty/nats.lua is taken from
#
# Starts its own nats-server, the C responder (bench/nats_bench.c serve,
# bench.echo) and nginx (bench/lua/bench_handlers.lua) on free loopback
# ports, and stops them all on exit. Exits non-zero when wrk counted
# errors (non-2xx or socket errors), nginx logged error-level lines, a
# worker died or was replaced, or the responder died. Logs and wrk's
# output: $BUILD_DIR/soak-run/.

# (one block: bash reads it at once, so editing this file during a run
# cannot break that run)
{
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

SOAK_SECONDS=${SOAK_SECONDS:-600}
WORKERS=${WORKERS:-1}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
SAMPLE=${SAMPLE:-60}
WARMUP=${WARMUP:-5}
LOCATION=${LOCATION:-/sync}
BUILD_DIR=$(realpath -m "${BUILD_DIR:-build}")
LUA_DIR=$(realpath -m "${LUA_DIR:-$REPO/lua}")

for v in SOAK_SECONDS WORKERS CONNECTIONS THREADS SAMPLE WARMUP; do
    if ! [[ "${!v}" =~ ^[1-9][0-9]*$ ]]; then
        echo "soak.sh: $v must be a positive integer" >&2
        exit 2
    fi
done
case $LOCATION in
    /sync) FORM="request(subject, payload, {timeout = 5000}) (sync form) + set_keepalive(60000, 256)" ;;
    /gw)   FORM="request(subject, payload, callback) + wait(1) + set_keepalive(60000, 256)" ;;
    *) echo "soak.sh: LOCATION must be /sync or /gw" >&2; exit 2 ;;
esac
[ -f "$LUA_DIR/resty/nats.lua" ] \
    || { echo "soak.sh: no $LUA_DIR/resty/nats.lua" >&2; exit 2; }

# build (as bench/run.sh) ---------------------------------------------------
. "$REPO/bench/common.sh"
bench_build "$BUILD_DIR" "$BUILD_DIR/soak-build.log" nats_bench nginx_module

NB="$BUILD_DIR/bench/nats_bench"
B="$BUILD_DIR/soak-run"
rm -rf "$B"
mkdir -p "$B/logs" "$B/conf" "$B/modules" "$B/lua/resty"
# private copies: a rebuild or an edit during the run cannot touch them
cp -L "$BUILD_DIR"/modules/{ndk_http_module,ngx_http_lua_module,ngx_http_lua_nats_module}.so \
    "$B/modules/"
cp "$LUA_DIR/resty/nats.lua" "$B/lua/resty/nats.lua"
if grep -q setkeepalive_nats "$B/modules/ngx_http_lua_module.so"; then
    LUA_MODULE="patched lua module (setkeepalive_nats)"
else
    LUA_MODULE="stock lua module"
fi

# processes -----------------------------------------------------------------
pids=()
nginx_pid=
wrk_pid=
cleanup() {
    if [ -n "$wrk_pid" ]; then kill "$wrk_pid" 2>/dev/null || true; fi
    if [ -n "$nginx_pid" ]; then
        stop_gracefully "$nginx_pid" 100
    fi
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

NATS_PORT=$(free_port)
URL="nats://127.0.0.1:$NATS_PORT"
nats-server -a 127.0.0.1 -p "$NATS_PORT" -l "$B/logs/nats.log" &
nats_pid=$!
pids+=("$nats_pid")
wait_port "$NATS_PORT"

"$NB" serve "$URL" > "$B/logs/peer.out" 2>&1 &
peer_pid=$!
pids+=("$peer_pid")
for _ in $(seq 100); do grep -qs ready "$B/logs/peer.out" && break; sleep 0.1; done
grep -qs ready "$B/logs/peer.out" \
    || { cat "$B/logs/peer.out" >&2; echo "soak.sh: peer not ready" >&2; exit 1; }

HTTP_PORT=$(free_port)
ELOG="$B/logs/error.log"
cat > "$B/conf/soak.conf" <<CONF
load_module $B/modules/ndk_http_module.so;
load_module $B/modules/ngx_http_lua_module.so;
load_module $B/modules/ngx_http_lua_nats_module.so;
worker_processes $WORKERS;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    lua_package_path "$B/lua/?.lua;$REPO/bench/lua/?.lua;/usr/share/lua/5.1/?.lua;/usr/share/luajit-2.1.0-beta3/?.lua;;";
    init_by_lua_block { require("bench_handlers").init($NATS_PORT) }
    server {
        listen 127.0.0.1:$HTTP_PORT;
        location = /gw     { content_by_lua_block { require("bench_handlers").gateway() } }
        location = /sync   { content_by_lua_block { require("bench_handlers").sync() } }
        location = /status { stub_status; }
    }
}
CONF
/usr/sbin/nginx -p "$B" -c conf/soak.conf -e logs/error.log
for _ in $(seq 50); do [ -s "$B/logs/nginx.pid" ] && break; sleep 0.1; done
nginx_pid=$(cat "$B/logs/nginx.pid")
wait_port "$HTTP_PORT"

# figures -------------------------------------------------------------------
workers() { pgrep -P "$nginx_pid" | sort -n | tr '\n' ' ' | sed 's/ $//'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo -; }
workers_rss() {  # "12345 12400" (one per worker), or "-" for a gone one
    local out=() p
    for p in $WORKER_PIDS; do out+=("$(rss_kib "$p")"); done
    echo "${out[*]}"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
handled() {  # requests nginx has handled so far (stub_status)
    curl -s --max-time 5 "http://127.0.0.1:$HTTP_PORT/status" \
        | awk 'NR == 3 {print $3}'
}
interval_rate() {  # interval_rate HANDLED0 HANDLED1 T0 T1 (the /status request excluded)
    awk -v a="$1" -v b="$2" -v t0="$3" -v t1="$4" 'BEGIN {
        if (a == "" || b == "" || t1 <= t0) print "-"
        else printf "%.0f", (b - a - 1) / (t1 - t0) }'
}
err_lines() { grep -cE '\[(error|crit|alert|emerg)\]' "$ELOG" 2>/dev/null || true; }
fmt_ms() {  # wrk latency (12.3us, 4.5ms, 1.2s) -> ms
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000
        else if (v ~ /ms$/) n = n
        else if (v ~ /m$/) n *= 60000
        else if (v ~ /s$/) n *= 1000
        printf "%.2f", n
    }'
}

for _ in 1 2 3; do
    curl -sf --max-time 10 "http://127.0.0.1:$HTTP_PORT$LOCATION" > /dev/null \
        || { echo "soak.sh: GET $LOCATION failed" >&2; tail -n 5 "$ELOG" >&2; exit 1; }
done
timeout $(( WARMUP + 30 )) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" \
    --timeout 5s "http://127.0.0.1:$HTTP_PORT$LOCATION" > "$B/wrk-warmup.out" 2>&1 \
    || { cat "$B/wrk-warmup.out" >&2; exit 1; }

WORKER_PIDS=$(workers)
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "nats-server $(nats-server --version | awk '{print $NF}'), nginx $(/usr/sbin/nginx -v 2>&1 | sed 's|.*/||'), $LUA_MODULE, wrk $(wrk --version 2>&1 | awk 'NR == 1 {print $2}')"
echo "code: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$( [ -n "$(git -C "$REPO" status --porcelain -- lua src 2>/dev/null)" ] && echo ' + uncommitted changes in lua/ or src/'), resty/nats.lua md5 $(md5sum "$B/lua/resty/nats.lua" | cut -c1-12)"
echo "soak: ${SOAK_SECONDS}s on GET $LOCATION: $FORM"
echo "      $WORKERS worker(s) [pids $WORKER_PIDS], wrk -t$THREADS -c$CONNECTIONS --timeout 5s, after a ${WARMUP}s warm-up"
echo

wstart=$(workers_rss)
nstart=$(rss_kib "$nats_pid")
cpu0=0; for p in $WORKER_PIDS; do cpu0=$(( cpu0 + $(cpu_ticks "$p") )); done
h_prev=$(handled)
printf '%-7s %-22s %-16s %-12s %s\n' "t" "worker RSS KiB" "nats-server KiB" "req/s" "nginx error lines"
printf '%-7s %-22s %-16s %-12s %s\n' "start" "$wstart" "$nstart" "-" "$(err_lines)"

timeout $(( SOAK_SECONDS + 60 )) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SOAK_SECONDS}s" \
    --timeout 5s --latency "http://127.0.0.1:$HTTP_PORT$LOCATION" > "$B/wrk.out" 2>&1 &
wrk_pid=$!
t0=$(date +%s)
t_prev=$(date +%s.%N)
DIED=
for (( t = SAMPLE; t < SOAK_SECONDS; t += SAMPLE )); do
    while [ $(( $(date +%s) - t0 )) -lt "$t" ] && kill -0 "$wrk_pid" 2>/dev/null; do
        sleep 1
    done
    kill -0 "$wrk_pid" 2>/dev/null || break
    now=$(date +%s.%N)
    h=$(handled)
    rate=$(interval_rate "$h_prev" "$h" "$t_prev" "$now")
    h_prev=$h; t_prev=$now
    printf '%-7s %-22s %-16s %-12s %s\n' "${t}s" "$(workers_rss)" "$(rss_kib "$nats_pid")" "$rate" "$(err_lines)"
    [ "$(workers)" = "$WORKER_PIDS" ] || DIED="worker pids changed: $WORKER_PIDS -> $(workers)"
done
wrk_rc=0
wait "$wrk_pid" || wrk_rc=$?
wrk_pid=
h=$(handled)
rate=$(interval_rate "$h_prev" "$h" "$t_prev" "$(date +%s.%N)")
now=$(date +%s)
wend=$(workers_rss)
nend=$(rss_kib "$nats_pid")
printf '%-7s %-22s %-16s %-12s %s\n' "end" "$wend" "$nend" "$rate" "$(err_lines)"
cpu1=0; for p in $WORKER_PIDS; do cpu1=$(( cpu1 + $(cpu_ticks "$p") )); done
[ "$(workers)" = "$WORKER_PIDS" ] || DIED="worker pids changed: $WORKER_PIDS -> $(workers)"

# report --------------------------------------------------------------------
W="$B/wrk.out"
reqs=$(awk '/requests in/ {print $1}' "$W")
rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' "$W")
non2xx=$(awk '/Non-2xx or 3xx/ {n += $NF} END {print n + 0}' "$W")
sock=$(awk '/Socket errors/ {gsub(/,/, ""); print "connect " $4 ", read " $6 ", write " $8 ", timeout " $10}' "$W")
sockn=$(awk '/Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$W")
lat_avg=$(awk '$1 == "Latency" {print $2; exit}' "$W")
lat_max=$(awk '$1 == "Latency" {print $4; exit}' "$W")
p50=$(awk '$1 == "50%" {print $2}' "$W")
p99=$(awk '$1 == "99%" {print $2}' "$W")
nerr=$(err_lines)
nwarn=$(grep -c '\[warn\]' "$ELOG" 2>/dev/null || true)
signals=$(grep -c 'exited on signal' "$ELOG" 2>/dev/null || true)
slow=$(grep -ci 'slow consumer' "$B/logs/nats.log" 2>/dev/null || true)
nats_errs=$(grep -c '\[ERR\]' "$B/logs/nats.log" 2>/dev/null || true)
cpu_s=$(awk -v t=$(( cpu1 - cpu0 )) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", t / hz}')
elapsed=$(( now - t0 ))

echo
echo "== soak result: GET $LOCATION, $WORKERS worker(s), ${elapsed}s"
if [ "$wrk_rc" -ne 0 ] || [ -z "$reqs" ]; then
    echo "wrk failed (exit $wrk_rc):"; sed 's/^/  /' "$W"
fi
echo "requests:      ${reqs:-?} (${rps:-?} req/s), latency avg $(fmt_ms "${lat_avg:-0}") ms, p50 $(fmt_ms "${p50:-0}") ms, p99 $(fmt_ms "${p99:-0}") ms, max $(fmt_ms "${lat_max:-0}") ms"
echo "wrk errors:    non-2xx $non2xx, socket errors $sockn${sock:+ ($sock)}"
echo "nginx log:     $nerr error-level line(s), $nwarn warn line(s), $signals 'exited on signal'"
if [ "$nerr" -gt 0 ]; then
    echo "  most frequent (count, message without time/pid/connection/client):"
    grep -E '\[(error|crit|alert|emerg)\]' "$ELOG" \
        | sed -E 's/^[0-9/]+ [0-9:]+ //; s/ [0-9]+#[0-9]+: (\*[0-9]+ )?/ /; s/, client: .*//' \
        | sort | uniq -c | sort -rn | head -5 | cut -c1-220 | sed 's/^/  /'
fi
echo "worker RSS:    start $wstart KiB, end $wend KiB (KiB per worker; start = after the warm-up)"
echo "nats-server:   RSS start $nstart KiB, end $nend KiB; $slow slow consumer line(s), $nats_errs [ERR] line(s)"
echo "worker CPU:    ${cpu_s}s over ${elapsed}s in all workers; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores; the soak itself adds about 2)"

problems=()
[ "$wrk_rc" -ne 0 ] && problems+=("wrk exited $wrk_rc")
[ -z "$reqs" ] && problems+=("no wrk summary")
[ "$non2xx" -gt 0 ] && problems+=("$non2xx non-2xx responses")
[ "$sockn" -gt 0 ] && problems+=("$sockn socket errors")
[ "$nerr" -gt 0 ] && problems+=("$nerr nginx error-level lines")
[ "$signals" -gt 0 ] && problems+=("a worker exited on a signal")
[ -n "$DIED" ] && problems+=("$DIED")
kill -0 "$peer_pid" 2>/dev/null || problems+=("the responder (nats_bench serve) died")
kill -0 "$nats_pid" 2>/dev/null || problems+=("nats-server died")
echo "logs:          $B/logs, wrk output $W"
if [ "${#problems[@]}" -gt 0 ]; then
    printf 'FAIL: %s\n' "${problems[@]}"
    exit 1
fi
echo "OK: no errors, no worker died"
exit 0
}
