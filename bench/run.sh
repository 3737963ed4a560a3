#!/usr/bin/env bash
# The benchmark suite of lua-resty-nats, beside the official C client
# (libnats) measured in the same run. Not part of the tests.
#
#   bash bench/run.sh
#
# Knobs (environment):
#   RUNS=3            runs per figure (median, min and max are printed)
#   N=200000          messages per publish/receive run
#   CMP_ROUNDS=10     rounds of N/10 messages of the interleaved comparison
#                     of the unbuffered publish and the bare cosocket way
#   SPUB_N=2000000    messages per "spublish" run (the shared connection
#                     writes 1M+ msgs/s: a run of N would last 0.1 s)
#   DURATION=10       seconds per wrk run and per native request loop
#   SCENARIOS="publish spublish receive native cpu http raw gateway sync
#              original shared pubshared pubpooled ingest kvget jspublish
#              jsfetch fanout rss srss core"
#                     a subset, in any order (they always run in this one)
#   PUB_WBUF=65536    publish also with set_write_buffer(PUB_WBUF) when
#                     resty.nats has it (0: not)
#   RSS_DURATION=120  seconds of the long gateway run of "rss" and "srss"
#   FANOUT_W=1000     waiters of the "fanout" scenario, FANOUT_N=100
#                     messages each
#   JS_N=20000        messages per "jspublish" run; FETCH_N=10000 per
#                     "jsfetch" run
#   CPU_N=20000       sequential requests per "cpu" measurement
#   CORE_MIN_TIME=0.3 --benchmark_min_time of the core benchmark
#   BUILD_DIR=build   the CMake build directory (configured with
#                     -DRESTY_NATS_BUILD_BENCH=ON)
#   WAIT_IDLE=0       before the start and before every measured run, wait
#                     for the machine to be idle (under 15% CPU busy), up to
#                     this many seconds in all: for machines shared with others
#   LUA_DIR=lua       where resty/nats.lua and resty/nats/ are taken from (to
#                     compare another version: git archive REV lua | tar -x -C DIR,
#                     then LUA_DIR=DIR/lua)
#   JIT_LOG=v|dump    write LuaJIT's jit.v (or jit.dump) log of each nginx
#                     worker to $BUILD_DIR/bench-run/jit/*.log
#   PERF=1            record the 1-worker gateway run with perf (if
#                     installed) into $BUILD_DIR/bench-run/perf.data
#
# Starts its own nats-server, the C peers (bench/nats_bench.c serve) and
# nginx on free loopback ports, stops them all on exit. See bench/README.md
# for what each scenario measures.

# (the whole script is one block: bash reads it at once, so editing this
# file during a run cannot break that run)
{
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

RUNS=${RUNS:-3}
N=${N:-200000}
SPUB_N=${SPUB_N:-2000000}
CMP_ROUNDS=${CMP_ROUNDS:-10}
DURATION=${DURATION:-10}
ALL_SCENARIOS="publish spublish receive native cpu http raw gateway sync original shared pubshared pubpooled ingest kvget jspublish jsfetch fanout rss srss core"
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}
RSS_DURATION=${RSS_DURATION:-120}
FANOUT_W=${FANOUT_W:-1000}
FANOUT_N=${FANOUT_N:-100}
CPU_N=${CPU_N:-20000}
PUB_WBUF=${PUB_WBUF:-65536}
CORE_MIN_TIME=${CORE_MIN_TIME:-0.3}
BUILD_DIR=$(realpath -m "${BUILD_DIR:-build}")
JIT_LOG=${JIT_LOG:-}
WAIT_IDLE=${WAIT_IDLE:-0}
LUA_DIR=$(realpath -m "${LUA_DIR:-$REPO/lua}")
PERF=${PERF:-}
WRK_THREADS=2
WRK_CONNS=50

for s in $SCENARIOS; do
    case " $ALL_SCENARIOS " in
        *" $s "*) ;;
        *) echo "run.sh: unknown scenario '$s' (known: $ALL_SCENARIOS)" >&2
           exit 2 ;;
    esac
done
if ! [[ "$PUB_WBUF" =~ ^[0-9]+$ ]]; then
    echo "run.sh: PUB_WBUF must be a number of bytes" >&2
    exit 2
fi
if ! [[ "$WAIT_IDLE" =~ ^[0-9]+$ ]]; then
    echo "run.sh: WAIT_IDLE must be a number of seconds" >&2
    exit 2
fi
for v in RUNS N SPUB_N CMP_ROUNDS DURATION RSS_DURATION FANOUT_W FANOUT_N; do
    if ! [[ "${!v}" =~ ^[1-9][0-9]*$ ]]; then
        echo "run.sh: $v must be a positive integer" >&2
        exit 2
    fi
done
want() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }

started=$(date +%s)

# build ---------------------------------------------------------------------
. "$REPO/bench/common.sh"
targets=(nats_bench core_bench)
if want publish || want spublish || want receive || want gateway \
        || want sync || want original || want shared || want pubshared \
        || want pubpooled || want ingest || want kvget || want jspublish \
        || want jsfetch || want fanout || want rss || want srss; then
    targets+=(nginx_module)
fi
bench_build "$BUILD_DIR" "$BUILD_DIR/bench-build.log" "${targets[@]}"

NB="$BUILD_DIR/bench/nats_bench"
CB="$BUILD_DIR/bench/core_bench"
MODS="$BUILD_DIR/modules"
B="$BUILD_DIR/bench-run"
R="$B/results"
rm -rf "$B"
mkdir -p "$B/logs" "$B/conf" "$R"
if [ -n "$JIT_LOG" ]; then
    mkdir -p "$B/jit"
    chmod 1777 "$B/jit"   # the workers' user writes there
fi

# processes -----------------------------------------------------------------

pids=()
nginx_pid=
stop_nginx() {
    [ -n "$nginx_pid" ] || return 0
    stop_gracefully "$nginx_pid" 100
    nginx_pid=
}
cleanup() {
    stop_nginx
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

NATS_PORT=$(free_port)
URL="nats://127.0.0.1:$NATS_PORT"
nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$B/js" \
    -l "$B/logs/nats.log" &
pids+=($!)
wait_port "$NATS_PORT"

"$NB" serve "$URL" > "$B/logs/peer.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -qs ready "$B/logs/peer.out" && break; sleep 0.1; done
grep -qs ready "$B/logs/peer.out" \
    || { cat "$B/logs/peer.out" >&2; echo "run.sh: peer not ready" >&2; exit 1; }

# the lua module in use: patched (setkeepalive_nats) or stock
if grep -q setkeepalive_nats "$MODS/ngx_http_lua_module.so" 2>/dev/null; then
    LUA_MODULE="patched lua module (setkeepalive_nats)"
else
    LUA_MODULE="stock lua module"
fi

HTTP_PORT=
start_nginx() {  # start_nginx WORKERS NAME
    local workers=$1 name=$2 jit=
    HTTP_PORT=$(free_port)
    if [ -n "$JIT_LOG" ]; then
        jit="require('jit.$JIT_LOG').on('$B/jit/$name-' .. ngx.worker.pid() .. '.log')"
    fi
    cat > "$B/conf/$name.conf" <<CONF
load_module $MODS/ndk_http_module.so;
load_module $MODS/ngx_http_lua_module.so;
load_module $MODS/ngx_http_lua_nats_module.so;
worker_processes $workers;
error_log logs/error-$name.log warn;
pid logs/nginx-$name.pid;
events { worker_connections 4096; }
http {
    access_log off;
    lua_package_path "$LUA_DIR/?.lua;$REPO/bench/lua/?.lua;/usr/share/lua/5.1/?.lua;/usr/share/luajit-2.1.0-beta3/?.lua;;";
    init_by_lua_block { require("bench_handlers").init($NATS_PORT) }
    init_worker_by_lua_block { $jit require("bench_handlers").init_worker() }
    server {
        listen 127.0.0.1:$HTTP_PORT;
        location = /pub  { content_by_lua_block { require("bench_handlers").publish() } }
        location = /recv { content_by_lua_block { require("bench_handlers").receive() } }
        location = /gw   { content_by_lua_block { require("bench_handlers").gateway() } }
        location = /sync { content_by_lua_block { require("bench_handlers").sync() } }
        location = /orig { content_by_lua_block { require("bench_handlers").original() } }
        location = /http { content_by_lua_block { ngx.print("ping") } }
        location = /cpu  { content_by_lua_block { require("bench_handlers").cpu() } }
        location = /raw  { content_by_lua_block { require("bench_handlers").raw() } }
        location = /bpub { content_by_lua_block { require("bench_handlers").bare_publish() } }
        location = /pubcmp { content_by_lua_block { require("bench_handlers").publish_compare() } }
        location = /spub { content_by_lua_block { require("bench_handlers").shared_publish() } }
        location = /sgw  { content_by_lua_block { require("bench_handlers").shared_gateway() } }
        location = /spubgw { content_by_lua_block { require("bench_handlers").shared_publish_gateway() } }
        location = /ppubgw { content_by_lua_block { require("bench_handlers").pooled_publish_gateway() } }
        location = /fanout { content_by_lua_block { require("bench_handlers").fanout() } }
        location = /jspub { content_by_lua_block { require("bench_handlers").js_publish() } }
        location = /jsfetch { content_by_lua_block { require("bench_handlers").js_fetch() } }
        location = /jssetup { content_by_lua_block { require("bench_handlers").js_setup() } }
        location = /ingest { content_by_lua_block { require("bench_handlers").ingest() } }
        location = /kvget { content_by_lua_block { require("bench_handlers").kv_get() } }
    }
}
CONF
    /usr/sbin/nginx -p "$B" -c "conf/$name.conf" -e "logs/error-$name.log"
    for _ in $(seq 50); do [ -s "$B/logs/nginx-$name.pid" ] && break; sleep 0.1; done
    nginx_pid=$(cat "$B/logs/nginx-$name.pid")
    wait_port "$HTTP_PORT"
}
first_worker() { pgrep -P "$nginx_pid" | sort -n | awk 'NR == 1'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# figures -------------------------------------------------------------------
# record KEY VALUE...: one run's figure(s), one line per run
record() { local k=$1; shift; echo "$*" >> "$R/$k"; }
# stats KEY [COLUMN]: "median min max" of a column of KEY's runs
stats() {
    [ -s "$R/$1" ] || { echo "- - -"; return; }
    awk -v c="${2:-1}" '{print $c}' "$R/$1" | sort -g | awk '
        {a[NR] = $1}
        END {
            m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
            print m, a[1], a[NR]
        }'
}
# human-readable rate: 1234567 -> 1.23M
hum() {
    awk -v x="$1" 'BEGIN {
        if (x == "-") print "-"
        else if (x >= 1e9) printf "%.2fG", x / 1e9
        else if (x >= 1e6) printf "%.2fM", x / 1e6
        else if (x >= 1e4) printf "%.1fk", x / 1e3
        else if (x < 100 && x != int(x)) printf "%.3f", x
        else printf "%.0f", x
    }'
}
# "median [min..max]" of KEY
fig() {
    local m lo hi
    read -r m lo hi <<< "$(stats "$@")"
    if [ "$m" = "-" ]; then echo "-"; return; fi
    echo "$(hum "$m") [$(hum "$lo")..$(hum "$hi")]"
}
ratio() {
    local a b
    a=$(stats "$1" | cut -d' ' -f1)
    b=$(stats "$2" | cut -d' ' -f1)
    awk -v a="$a" -v b="$b" 'BEGIN {
        if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.3f", a / b }'
}

fetch() {  # fetch PATH [REGEX]: the body, or a failure (the body on stderr)
    local out code want=${2:-'^[0-9]+$'}
    out=$(curl -s --max-time 180 -w '\n%{http_code}' \
          "http://127.0.0.1:$HTTP_PORT$1") || true
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    out=${out%$'\n'}
    if [ "$code" != 200 ] || ! [[ "$out" =~ $want ]]; then
        echo "run.sh: GET $1: HTTP $code: $out" >&2
        return 1
    fi
    echo "$out"
}

to_ms() {  # wrk latency (12.3us, 4.5ms, 1.2s) -> ms
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000
        else if (v ~ /ms$/) n = n
        else if (v ~ /m$/) n *= 60000
        else if (v ~ /s$/) n *= 1000
        printf "%.3f", n
    }'
}

# run_wrk PATH SECONDS OUTFILE: prints "rps p50_ms p99_ms errors requests"
run_wrk() {
    timeout $(( $2 + 30 )) wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$2s" \
        --timeout 5s --latency "http://127.0.0.1:$HTTP_PORT$1" > "$3" 2>&1 \
        || { cat "$3" >&2; return 1; }
    local rps p50 p99 errs reqs
    rps=$(awk '/^Requests\/sec/ {print $2}' "$3")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$3")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$3")")
    errs=$(awk '/Non-2xx or 3xx/ {n += $NF}
                /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10}
                END {print n + 0}' "$3")
    reqs=$(awk '/requests in/ {print $1}' "$3")
    echo "$rps $p50 $p99 $errs $reqs"
}

# CPU time per message in us from clock ticks (100 per second): cpu_us TICKS N
cpu_us() { awk -v t="$1" -v n="$2" 'BEGIN { printf "%.3f", t * 1000000 / 100 / n }'; }
CLK_TCK=$(getconf CLK_TCK)

# CPU busy (all processes, ours included) over $1 seconds, in percent
cpu_busy() {
    local a b
    a=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat)
    sleep "$1"
    b=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat)
    echo "$a $b" | awk '{d = ($3 - $1) + ($4 - $2); b = 0
        if (d > 0) b = 100 * ($3 - $1) / d
        printf "%.0f\n", b}'
}
# quiet: with WAIT_IDLE, waits until the CPUs are idle (our own processes
# are idle between runs) or WAIT_IDLE seconds passed
NOISY=0
WAITED=0
quiet() {
    [ "$WAIT_IDLE" -gt 0 ] || return 0
    local busy
    while :; do
        busy=$(cpu_busy 1)
        [ "$busy" -lt 15 ] && return 0
        if [ "$WAITED" -ge "$WAIT_IDLE" ]; then
            echo "  (CPUs ${busy}% busy, WAIT_IDLE spent: measuring anyway)" >&2
            NOISY=$(( NOISY + 1 ))
            return 0
        fi
        sleep 4
        WAITED=$(( WAITED + 5 ))
    done
}
quiet
BUSY_START=$(cpu_busy 2)

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "RUNS=$RUNS N=$N DURATION=${DURATION}s, nats-server $(nats-server --version | awk '{print $NF}'), libnats $(pkg-config --modversion libnats), nginx $(/usr/sbin/nginx -v 2>&1 | sed 's|.*/||'), $LUA_MODULE"
echo "code: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$( [ -n "$(git -C "$REPO" status --porcelain -- lua src 2>/dev/null)" ] && echo ' + uncommitted changes in lua/ or src/'), $LUA_DIR/resty Lua md5 $(cat "$LUA_DIR/resty/nats.lua" "$LUA_DIR"/resty/nats/*.lua 2>/dev/null | md5sum | cut -c1-12); load average at start: $(cut -d' ' -f1-3 /proc/loadavg), CPU busy before start: ${BUSY_START}%"
echo "scenarios: $SCENARIOS"
echo

# publish / receive (1 worker) ----------------------------------------------
FAILED=0
failed() { FAILED=$(( FAILED + 1 )); echo "  run failed: $*" >&2; }

if want publish || want receive; then
    start_nginx 1 w1
    for sc in publish receive; do
        want "$sc" || continue
        path=/pub; mode=pub
        [ "$sc" = receive ] && { path=/recv; mode=recv; }
        for size in 16 1024; do
            echo "$sc $size B: warm-up, then $RUNS runs of $N messages"
            fetch "$path?n=$(( N / 10 + 1 ))&size=$size" > /dev/null \
                || failed "$sc $size B warm-up"
            for r in $(seq "$RUNS"); do
                # publish: resty.nats and the bare cosocket take turns going
                # first; both with the worker's CPU time per message
                lua= c= bare=
                sides="lua c"
                if [ "$sc" = publish ]; then
                    sides=$( (( r % 2 )) && echo "lua c bare" || echo "bare c lua")
                fi
                for side in $sides; do
                    quiet
                    case $side in
                    lua)
                        w=$(first_worker); t0=$(proc_ticks "$w")
                        if v=$(fetch "$path?n=$N&size=$size"); then
                            t=$(( $(proc_ticks "$w") - t0 ))
                            record "${sc}_lua_$size" "$v"
                            lua=$(hum "$v")/s
                            if [ "$sc" = publish ]; then
                                record "publish_cpu_lua_$size" "$(cpu_us "$t" "$N")"
                                lua="$lua ($(cpu_us "$t" "$N") us CPU/msg)"
                            fi
                        else
                            failed "resty.nats $sc $size B"
                            lua=failed
                        fi ;;
                    c)
                        if v=$(timeout 200 "$NB" "$mode" "$URL" "$size" "$N"); then
                            record "${sc}_c_$size" "$v"
                            c=$(hum "$v")/s
                        else
                            failed "libnats $sc $size B"
                            c=failed
                        fi ;;
                    bare)
                        w=$(first_worker); t0=$(proc_ticks "$w")
                        if v=$(fetch "/bpub?n=$N&size=$size"); then
                            t=$(( $(proc_ticks "$w") - t0 ))
                            record "publish_bare_$size" "$v"
                            record "publish_cpu_bare_$size" "$(cpu_us "$t" "$N")"
                            bare=", bare cosocket (original library's way) $(hum "$v")/s ($(cpu_us "$t" "$N") us CPU/msg)"
                        else
                            failed "bare publish $size B"
                        fi ;;
                    esac
                done
                wb=
                if [ "$sc" = publish ] && [ "$PUB_WBUF" -gt 0 ] \
                        && grep -q set_write_buffer "$LUA_DIR/resty/nats.lua"; then
                    quiet
                    if v=$(fetch "$path?n=$N&size=$size&wbuf=$PUB_WBUF"); then
                        record "publish_wb_lua_$size" "$v"
                        wb=", resty.nats with set_write_buffer($PUB_WBUF) $(hum "$v")/s"
                    else
                        failed "resty.nats $sc $size B with set_write_buffer"
                    fi
                fi
                echo "  resty.nats $lua, libnats $c$bare$wb"
            done
            if [ "$sc" = publish ]; then
                # the two per-message ways interleaved in one handler
                quiet
                if v=$(fetch "/pubcmp?n=$(( N / 10 ))&size=$size&rounds=$CMP_ROUNDS" \
                             '^[0-9.]+ [0-9.]+ [0-9.]+ [0-9.]+$'); then
                    record "publish_cmp_$size" "$v"
                    read -r cl cb wl wb2 <<< "$v"
                    echo "  interleaved, $CMP_ROUNDS rounds of $(( N / 10 )) each: CPU/msg unbuffered $cl us, bare $cb us; wall/msg $wl us, $wb2 us"
                else
                    failed "interleaved publish $size B"
                fi
            fi
        done
    done
    stop_nginx
fi

# publish through the shared connection (1 worker) ---------------------------
# the two sides take turns going first (odd runs resty.nats, even runs
# libnats): with a fixed order one side was favoured (libnats first:
# resty.nats ahead in 4 of 4 runs at 16 B; resty.nats first: behind);
# each side's CPU (user + system, in clock ticks of the publishing
# process) gives its CPU time per message
if want spublish; then
    start_nginx 1 spub
    for size in 16 1024; do
        echo "spublish $size B: warm-up, then $RUNS runs of $SPUB_N messages"
        fetch "/spub?n=$(( SPUB_N / 10 + 1 ))&size=$size" > /dev/null \
            || failed "spublish $size B warm-up"
        for r in $(seq "$RUNS"); do
            lua= c=
            for side in $( (( r % 2 )) && echo "lua c" || echo "c lua"); do
                quiet
                if [ "$side" = lua ]; then
                    w=$(first_worker)
                    t0=$(proc_ticks "$w")
                    if v=$(fetch "/spub?n=$SPUB_N&size=$size"); then
                        t=$(( $(proc_ticks "$w") - t0 ))
                        record "spublish_lua_$size" "$v"
                        record "spublish_cpu_lua_$size" "$(cpu_us "$t" "$SPUB_N")"
                        lua="$(hum "$v")/s ($(cpu_us "$t" "$SPUB_N") us CPU/msg)"
                    else
                        failed "resty.nats shared publish $size B"
                        lua=failed
                    fi
                elif v=$(timeout 200 /usr/bin/time -f "%U %S" -o "$B/time.out" \
                             "$NB" pub "$URL" "$size" "$SPUB_N"); then
                    t=$(awk '{ printf "%d", ($1 + $2) * 100 + 0.5 }' "$B/time.out")
                    record "spublish_c_$size" "$v"
                    record "spublish_cpu_c_$size" "$(cpu_us "$t" "$SPUB_N")"
                    c="$(hum "$v")/s ($(cpu_us "$t" "$SPUB_N") us CPU/msg)"
                else
                    failed "libnats publish $size B"
                    c=failed
                fi
            done
            echo "  resty.nats shared $lua, libnats $c"
        done
    done
    stop_nginx
fi

# JetStream: publish with ack in a loop, pull consumer reading -----------------
JS_N=${JS_N:-20000}
FETCH_N=${FETCH_N:-10000}
if want jspublish || want jsfetch; then
    start_nginx 1 js
    if want jspublish; then
        for size in 16 1024; do
            echo "jspublish $size B: $RUNS runs of $JS_N messages"
            fetch "/jspub?n=500&size=$size" > /dev/null \
                || failed "jspublish $size B warm-up"
            for _ in $(seq "$RUNS"); do
                quiet
                if v=$(fetch "/jspub?n=$JS_N&size=$size"); then
                    record "jspublish_lua_$size" "$v"; lua=$(hum "$v")/s
                else
                    failed "js:publish $size B"; lua=failed
                fi
                quiet
                if v=$(timeout 300 "$NB" jspub "$URL" "$size" "$JS_N"); then
                    record "jspublish_c_$size" "$v"; c=$(hum "$v")/s
                else
                    failed "libnats js_Publish $size B"; c=failed
                fi
                echo "  resty.nats js:publish $lua, libnats js_Publish $c"
            done
        done
    fi
    if want jsfetch; then
        echo "jsfetch: $RUNS runs of $FETCH_N messages in batches of 100, each acked"
        for _ in $(seq "$RUNS"); do
            quiet
            if v=$(fetch "/jsfetch?n=$FETCH_N&batch=100"); then
                record jsfetch_lua "$v"; lua=$(hum "$v")/s
            else
                failed "js:fetch"; lua=failed
            fi
            quiet
            if v=$(timeout 300 "$NB" jsfetch "$URL" "$FETCH_N" 100); then
                record jsfetch_c "$v"; c=$(hum "$v")/s
            else
                failed "libnats fetch"; c=failed
            fi
            echo "  resty.nats js:fetch $lua, libnats natsSubscription_Fetch $c"
        done
    fi
    stop_nginx
fi

# native request loops --------------------------------------------------------
if want native; then
    # 1 and 50 requesters on one connection; 50c: 50 requesters with a
    # connection each (what a pool of per-request connections amounts to)
    for c in 1 50 50c; do
        mode=reqloop
        n=$c
        if [ "$c" = 50c ]; then mode=reqloop-conns; n=50; fi
        echo "libnats request loop ($mode), $n requester(s): $RUNS runs of ${DURATION}s"
        for _ in $(seq "$RUNS"); do
            quiet
            if v=$(timeout $(( DURATION + 60 )) "$NB" "$mode" "$URL" "$n" \
                   "$DURATION"); then
                record "native_$c" "$v"
                echo "  $v  (req/s p50_ms p99_ms errors requests)"
            else
                failed "libnats request loop $c"
            fi
        done
    done
fi

# the worker's CPU time per request (sequential, in one handler) -------------
if want cpu; then
    start_nginx 1 cpu
    echo "worker CPU per request: $RUNS runs of $CPU_N sequential requests each"
    for _ in $(seq "$RUNS"); do
        quiet
        v=$(curl -s --max-time 600 "http://127.0.0.1:$HTTP_PORT/cpu?n=$CPU_N") || v=
        if [[ "$v" =~ ^[0-9.]+\ [0-9.]+$ ]]; then
            record cpu "$v"
            echo "  $v  (us: raw cosocket, resty.nats request)"
        else
            failed "cpu: $v"
        fi
    done
    stop_nginx
fi

# request/reply gateway: request(), its sync form, the original pattern ------
gw_path() {
    case $1 in
        gateway) echo /gw ;; sync) echo /sync ;; original) echo /orig ;;
        http) echo /http ;; raw) echo /raw ;; shared) echo /sgw ;;
        pubshared) echo /spubgw ;; pubpooled) echo /ppubgw ;;
        ingest) echo /ingest ;; kvget) echo /kvget ;;
    esac
}
for w in 1 2; do
    want http || want raw || want gateway || want sync || want original \
        || want shared || want pubshared || want pubpooled || want ingest \
        || want kvget || break
    start_nginx "$w" "gw$w"
    if want ingest || want kvget; then
        curl -s --max-time 30 "http://127.0.0.1:$HTTP_PORT/jssetup" \
            | grep -q '^ok' || failed "jssetup"
    fi
    # every path of the selected scenarios answers (/ingest and /kvget need
    # the stream and bucket that only jssetup makes)
    for sc in http raw gateway sync original shared pubshared pubpooled \
              ingest kvget; do
        want "$sc" || continue
        p=$(gw_path "$sc")
        curl -sf --max-time 10 "http://127.0.0.1:$HTTP_PORT$p" > /dev/null \
            || failed "GET $p"
    done
    for r in $(seq "$RUNS"); do
        for sc in http raw gateway sync original shared pubshared pubpooled \
                  ingest kvget; do
            want "$sc" || continue
            p=$(gw_path "$sc")
            if [ "$r" = 1 ]; then
                run_wrk "$p" 2 "$B/wrk-warmup.out" > /dev/null \
                    || failed "$sc warm-up"
            fi
            perf_pid=
            if [ "$PERF" = 1 ] && [ "$w" = 1 ] && [ "$r" = 1 ] \
                    && [ "$sc" = gateway ] && command -v perf > /dev/null; then
                perf record -g -o "$B/perf.data" -p "$(first_worker)" \
                    -- sleep "$DURATION" > "$B/logs/perf.log" 2>&1 &
                perf_pid=$!
            fi
            quiet
            wpid=$(first_worker)
            t0=$(proc_ticks "$wpid")
            if v=$(run_wrk "$p" "$DURATION" "$B/wrk-$sc-w$w-$r.out"); then
                record "${sc}_w$w" "$v"
                echo "$sc, $w worker(s), run $r: $v  (req/s p50_ms p99_ms errors requests)"
                if [ "$w" = 1 ]; then
                    # the worker's CPU time per HTTP request
                    t1=$(proc_ticks "$wpid")
                    c=$(awk -v a="$t0" -v b="$t1" -v n="$(echo "$v" | cut -d' ' -f5)" \
                        -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.1f", (b - a) / hz * 1e6 / n }')
                    [ -n "$c" ] && record "${sc}_cpu" "$c"
                    echo "  worker CPU: $c us per request"
                fi
            else
                failed "$sc, $w worker(s), run $r"
            fi
            if [ -n "$perf_pid" ]; then wait "$perf_pid" || true; fi
        done
    done
    stop_nginx
done

# RSS of the worker around a long gateway run ---------------------------------
if want rss; then
    start_nginx 1 rss
    quiet
    wpid=$(first_worker)
    rss0=$(rss_kib "$wpid")
    run_wrk /gw 5 "$B/wrk-rss-warmup.out" > "$R/rss_warmup" \
        || failed "rss warm-up"
    rss1=$(rss_kib "$wpid")
    echo "rss: ${RSS_DURATION}s gateway run (worker $wpid)"
    if run_wrk /gw "$RSS_DURATION" "$B/wrk-rss.out" > "$R/rss_long"; then
        rss2=$(rss_kib "$wpid")
        echo "$rss0 $rss1 $rss2" > "$R/rss"
    else
        failed "rss long run"
    fi
    stop_nginx
fi

# the same through the shared connection --------------------------------------
if want srss; then
    start_nginx 1 srss
    quiet
    wpid=$(first_worker)
    rss0=$(rss_kib "$wpid")
    run_wrk /sgw 5 "$B/wrk-srss-warmup.out" > "$R/srss_warmup" \
        || failed "srss warm-up"
    rss1=$(rss_kib "$wpid")
    echo "srss: ${RSS_DURATION}s shared gateway run (worker $wpid)"
    if run_wrk /sgw "$RSS_DURATION" "$B/wrk-srss.out" > "$R/srss_long"; then
        rss2=$(rss_kib "$wpid")
        echo "$rss0 $rss1 $rss2" > "$R/srss"
    else
        failed "srss long run"
    fi
    stop_nginx
fi

# fan-out to request-scoped subscriptions ---------------------------------------
if want fanout; then
    start_nginx 1 fanout
    fetch "/fanout?w=10&n=10" > /dev/null 2>&1 || true
    echo "fanout: $FANOUT_W waiters x $FANOUT_N messages, $RUNS runs"
    for _ in $(seq "$RUNS"); do
        quiet
        out=$(curl -s --max-time 300 "http://127.0.0.1:$HTTP_PORT/fanout?w=$FANOUT_W&n=$FANOUT_N") || out=
        if [[ "$out" =~ ^[0-9]+\ [0-9]+\ -?[0-9.]+$ ]]; then
            record fanout "$out"
            echo "  $out  (deliveries/s lost KiB-RSS-per-waiter)"
        else
            failed "fanout: $out"
        fi
    done
    stop_nginx
fi

# the core alone (Google Benchmark) -------------------------------------------
if want core; then
    quiet
    echo "core: $CB, $RUNS repetitions"
    timeout 1800 "$CB" --benchmark_repetitions="$RUNS" \
        --benchmark_min_time="$CORE_MIN_TIME" \
        --benchmark_out="$B/core.json" --benchmark_out_format=json \
        > "$B/core.txt" 2>&1 \
        || { tail -n 30 "$B/core.txt" >&2; failed "core_bench"; }
    [ -s "$B/core.json" ] || echo '{"benchmarks": []}' > "$B/core.json"
    # one line per benchmark: name items/s (median min max) bytes/s (median)
    perl -MJSON::PP -e '
        local $/; my $j = decode_json(<STDIN>);
        my (%it, %by, @order);
        for my $b (@{$j->{benchmarks}}) {
            next if ($b->{run_type} // "") ne "iteration";
            next if $b->{error_occurred};
            my $n = $b->{run_name} // $b->{name};
            push @order, $n unless $it{$n};
            push @{$it{$n}}, $b->{items_per_second} // 0;
            push @{$by{$n}}, $b->{bytes_per_second} // 0;
        }
        sub med { my @a = sort { $a <=> $b } @_; my $k = @a;
                  $k % 2 ? $a[($k - 1) / 2] : ($a[$k / 2 - 1] + $a[$k / 2]) / 2 }
        for my $n (@order) {
            my @a = sort { $a <=> $b } @{$it{$n}};
            printf "%s %.0f %.0f %.0f %.0f\n", $n, med(@a), $a[0], $a[-1],
                   med(@{$by{$n}});
        }' < "$B/core.json" > "$R/core"
fi

# checks --------------------------------------------------------------------
notes=()
for f in "$B"/logs/error-*.log; do
    [ -e "$f" ] || continue
    c=$(grep -cE '\[(error|crit|alert|emerg)\]' "$f" || true)
    if [ "$c" -gt 0 ]; then
        notes+=("$(basename "$f"): $c error lines, e.g.: $(grep -E '\[(error|crit|alert|emerg)\]' "$f" | head -1 | cut -c1-200)")
    fi
done
c=$(grep -ci 'slow consumer' "$B/logs/nats.log" || true)
[ "$c" -gt 0 ] && notes+=("nats-server logged $c slow consumer line(s)")
[ "$WAIT_IDLE" -gt 0 ] && notes+=("WAIT_IDLE: waited ${WAITED}s in all for idle CPUs; $NOISY run(s) started on busy CPUs")
[ "$FAILED" -gt 0 ] && notes+=("$FAILED run(s) failed (see above); their figures are missing")

# table ---------------------------------------------------------------------
elapsed=$(( $(date +%s) - started ))
line() { printf '%-46s %-27s %-27s %-6s %s\n' "$@"; }
echo
echo "== results: median [min..max] of $RUNS runs; ratio = resty.nats / libnats medians"
line "scenario" "resty.nats" "libnats" "ratio" "notes"
for sc in publish receive; do
    want "$sc" || continue
    for size in 16 1024; do
        label="$size B"; [ "$size" = 1024 ] && label="1 KiB"
        line "$sc $label, msgs/s" "$(fig "${sc}_lua_$size")" \
             "$(fig "${sc}_c_$size")" \
             "$(ratio "${sc}_lua_$size" "${sc}_c_$size")" "N=$N"
        if [ "$sc" = publish ] && [ -s "$R/publish_bare_$size" ]; then
            line "publish $label, bare cosocket (original's way)" \
                 "$(fig "publish_bare_$size")" "$(fig "${sc}_c_$size")" \
                 "$(ratio "publish_bare_$size" "${sc}_c_$size")" \
                 "resty.nats unbuffered = $(ratio "${sc}_lua_$size" "publish_bare_$size") of this"
            line "  worker CPU per msg, unbuffered / bare, us" \
                 "$(fig "publish_cpu_lua_$size")" "$(fig "publish_cpu_bare_$size")" \
                 "$(ratio "publish_cpu_lua_$size" "publish_cpu_bare_$size")" \
                 "resty.nats unbuffered / bare cosocket (order alternating)"
            if [ -s "$R/publish_cmp_$size" ]; then
                read -r cl cb wl wb2 < "$R/publish_cmp_$size"
                line "  interleaved: CPU / wall per msg, us" \
                     "$cl / $wl" "$cb / $wb2" \
                     "$(awk -v a="$cl" -v b="$cb" 'BEGIN { printf "%.3f", a / b }')" \
                     "unbuffered / bare, $CMP_ROUNDS rounds of N/10 in one handler; ratio: CPU"
            fi
        fi
        if [ "$sc" = publish ] && [ -s "$R/publish_wb_lua_$size" ]; then
            line "publish $label, set_write_buffer($PUB_WBUF)" \
                 "$(fig "publish_wb_lua_$size")" "$(fig "${sc}_c_$size")" \
                 "$(ratio "publish_wb_lua_$size" "${sc}_c_$size")" "N=$N"
        fi
    done
done
if want spublish; then
    for size in 16 1024; do
        label="$size B"; [ "$size" = 1024 ] && label="1 KiB"
        line "shared conn publish $label, msgs/s" "$(fig "spublish_lua_$size")" \
             "$(fig "spublish_c_$size")" \
             "$(ratio "spublish_lua_$size" "spublish_c_$size")" "N=$SPUB_N, one handler, order alternating"
        line "  publisher CPU per message, us" "$(fig "spublish_cpu_lua_$size")" \
             "$(fig "spublish_cpu_c_$size")" \
             "$(ratio "spublish_cpu_lua_$size" "spublish_cpu_c_$size")" "user + system of the worker / of nats_bench pub"
    done
fi
if want jspublish; then
    for size in 16 1024; do
        label="$size B"; [ "$size" = 1024 ] && label="1 KiB"
        line "js:publish (ack) $label, msgs/s" "$(fig "jspublish_lua_$size")" \
             "$(fig "jspublish_c_$size")" \
             "$(ratio "jspublish_lua_$size" "jspublish_c_$size")" "N=$JS_N, one at a time (js_Publish)"
    done
fi
if want jsfetch; then
    line "js:fetch 100 + ack each, msgs/s" "$(fig jsfetch_lua)" \
         "$(fig jsfetch_c)" "$(ratio jsfetch_lua jsfetch_c)" "N=$FETCH_N, natsSubscription_Fetch"
fi
if want native; then
    for c in 1 50 50c; do
        label="$c requester(s)"
        [ "$c" = 50c ] && label="50 x own conn"
        line "libnats request loop, $label, req/s" "-" \
             "$(fig "native_$c")" "" \
             "p50 $(stats "native_$c" 2 | cut -d' ' -f1) ms, p99 $(stats "native_$c" 3 | cut -d' ' -f1) ms, errors $(awk '{n += $4} END {print n + 0}' "$R/native_$c")"
    done
fi
# what a gateway could reach if the library cost nothing: the HTTP request
# alone and a libnats request on a connection of its own, one after the
# other on the same CPUs (1 / (1/http + 1/native))
bound() {
    [ -s "$R/http_w$1" ] && [ -s "$R/native_50c" ] || return 0
    local h n
    h=$(stats "http_w$1" 1 | cut -d' ' -f1)
    n=$(stats native_50c 1 | cut -d' ' -f1)
    awk -v h="$h" -v n="$n" 'BEGIN { if (h > 0 && n > 0) printf "; est. gateway with a zero-cost library: %.0f req/s (1/(1/this + 1/libnats 50 x own conn))", 1 / (1 / h + 1 / n) }'
}
if want cpu && [ -s "$R/cpu" ]; then
    col=1
    read -r m lo hi <<< "$(stats cpu 1)"
    read -r m2 lo2 hi2 <<< "$(stats cpu 2)"
    line "worker CPU per request on one conn, us" "$m2 [$lo2..$hi2]" "-" "" \
         "raw cosocket PUB + MSG read: $m [$lo..$hi] us; os.clock over $CPU_N sequential requests"
fi
for sc in http raw gateway sync original shared pubshared pubpooled ingest kvget; do
    want "$sc" || continue
    case $sc in
        http) label="HTTP alone (no NATS)" ;;
        raw) label="bare cosocket gateway (no library)" ;;
        gateway) label="gateway request(cb)+wait" ;;
        sync) label="gateway request() sync form" ;;
        original) label="original pattern SUB/PUB/wait/UNSUB" ;;
        shared) label="gateway on the shared conn (request)" ;;
        pubshared) label="publish gateway, shared conn" ;;
        pubpooled) label="publish gateway, pooled conn" ;;
        ingest) label="ingestion gateway js:publish+msg_id, shared" ;;
        kvget) label="kv:get per HTTP request, shared" ;;
    esac
    for w in 1 2; do
        [ -s "$R/${sc}_w$w" ] || continue
        if [ "$sc" = http ]; then
            wcpu=
            if [ "$w" = 1 ] && [ -s "$R/http_cpu" ]; then
                wcpu=", worker CPU $(stats http_cpu 1 | cut -d' ' -f1) us/req"
            fi
            line "$label, ${w}w, req/s" "$(fig "http_w$w")" "-" "" \
                 "p50 $(stats "http_w$w" 2 | cut -d' ' -f1) ms, p99 $(stats "http_w$w" 3 | cut -d' ' -f1) ms$wcpu$(bound "$w")"
            continue
        fi
        wcpu=
        if [ "$w" = 1 ] && [ -s "$R/${sc}_cpu" ]; then
            wcpu=", worker CPU $(stats "${sc}_cpu" 1 | cut -d' ' -f1) us/req"
        fi
        bare=
        if [ "$sc" != raw ] && [ -s "$R/raw_w$w" ]; then
            bare=", $(ratio "${sc}_w$w" "raw_w$w") of bare"
        fi
        if [ "$sc" = shared ] && [ -s "$R/original_w$w" ]; then
            bare="$bare, $(ratio "${sc}_w$w" "original_w$w") of original"
        fi
        if { [ "$sc" = ingest ] || [ "$sc" = kvget ]; } && [ -s "$R/shared_w$w" ]; then
            bare="$bare, $(ratio "${sc}_w$w" "shared_w$w") of the shared request gateway"
        fi
        if [ "$sc" = pubshared ] && [ -s "$R/pubpooled_w$w" ]; then
            bare="$bare, $(ratio "${sc}_w$w" "pubpooled_w$w") of pooled"
        fi
        line "$label, ${w}w, req/s" "$(fig "${sc}_w$w")" \
             "$( [ -s "$R/native_50" ] && fig native_50 || echo -)" \
             "$(ratio "${sc}_w$w" native_50)" \
             "p50 $(stats "${sc}_w$w" 2 | cut -d' ' -f1) ms, p99 $(stats "${sc}_w$w" 3 | cut -d' ' -f1) ms, errors $(awk '{n += $4} END {print n + 0}' "$R/${sc}_w$w")$wcpu$bare"
    done
done
if want rss && [ -s "$R/rss" ]; then
    read -r rss0 rss1 rss2 < "$R/rss"
    read -r lrps _ _ lerr lreq < "$R/rss_long"
    line "nginx worker RSS, KiB" "$rss0 fresh" "$rss1 after warm-up" "" \
         "$rss2 after ${RSS_DURATION}s more: $lreq requests ($(hum "$lrps")/s, $lerr errors)"
fi
if want srss && [ -s "$R/srss" ]; then
    read -r rss0 rss1 rss2 < "$R/srss"
    read -r lrps _ _ lerr lreq < "$R/srss_long"
    line "worker RSS, shared conn gateway, KiB" "$rss0 fresh" "$rss1 after warm-up" "" \
         "$rss2 after ${RSS_DURATION}s more: $lreq requests ($(hum "$lrps")/s, $lerr errors)"
fi
if want fanout && [ -s "$R/fanout" ]; then
    line "fan-out, $FANOUT_W sub:next waiters, deliveries/s" "$(fig fanout)" "-" "" \
         "$FANOUT_N msgs each; lost $(awk '{n += $2} END {print n + 0}' "$R/fanout") in all; worker RSS $(stats fanout 3 | cut -d' ' -f1) KiB per waiter"
fi
if want core && [ -s "$R/core" ]; then
    while read -r name med lo hi bmed; do
        bytes=
        if [ "${bmed%.*}" -gt 0 ] 2>/dev/null; then
            bytes="$(awk -v b="$bmed" 'BEGIN {printf "%.0f MB/s", b / 1e6}')"
        fi
        short=${name#BM_}
        short=${short//payload:/}
        short=${short//read:/read }
        line "core $short, items/s" "$(hum "$med") [$(hum "$lo")..$(hum "$hi")]" \
             "-" "" "$bytes"
    done < "$R/core"
fi
echo
if want gateway || want sync || want original; then
    echo "gateway rows: the libnats column is the native loop with 50 requesters; p50/p99 are medians over the runs, errors the sum"
fi
for n in "${notes[@]}"; do echo "note: $n"; done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (the suite itself adds about 2)"
echo "total time: ${elapsed}s; raw figures in $R, logs in $B/logs"
[ "$FAILED" -eq 0 ]
exit
}
