#!/usr/bin/env bash
# Reading a stream, through nginx and through libnats, in one run (a
# script that prints figures, not a test):
#
#   ordered, nginx    one handler reads N messages through
#                     js:ordered_consumer (oc:next in a loop), on a
#                     per-request object and on the worker's shared
#                     connection
#   ordered, libnats  bench/jsread_bench.c: an ordered consumer
#                     (jsSubOptions.Ordered) counting N messages
#   pull+ack, nginx   js:consume on a fresh durable pull consumer, the
#                     callback acking each message, until N came
#   pull+ack, libnats natsSubscription_Fetch(BATCH) in a loop on a fresh
#                     durable, natsMsg_Ack for each message
#
# One nats-server with JetStream (memory storage), one nginx worker; the
# stream holds N messages of SIZE bytes (filled by libnats). The sides
# take turns going first, ROUNDS times; it prints the median msgs/s of
# each and the ratios. Knobs: N=1000000, SIZE=128, ROUNDS=3, BATCH=500
# (the fetch loop's batch and js:consume's max_messages), BUILD_DIR;
# PERF=FILE: instead, perf record -g of the worker during one ordered
# read (PERF_PATH=/ordered?n=N&shared=1 for the shared connection's);
# JITV=FILE: the worker's LuaJIT trace log (jit.v) goes there; JITP=FILE
# (JITP_MODE=v): LuaJIT's profiler (jit.p) over each ordered read.
{
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
. "$REPO/bench/common.sh"
N=${N:-1000000}
SIZE=${SIZE:-128}
ROUNDS=${ROUNDS:-3}
BATCH=${BATCH:-500}
BUILD_DIR=$(realpath -m "${BUILD_DIR:-build}")

bash scripts/deps.sh > /dev/null
cmake -S . -B "$BUILD_DIR" -DRESTY_NATS_BUILD_BENCH=ON > /dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target jsread_bench nginx_module \
    lua_module > /dev/null

W=$(mktemp -d /tmp/jsread-bench.XXXXXX)
NATS_PORT=$(free_port)
HTTP_PORT=$(free_port)
cat > "$W/nats.conf" <<EOC
listen: 127.0.0.1:$NATS_PORT
jetstream { store_dir: "$W/js", max_memory_store: 2GB }
EOC
nats-server -c "$W/nats.conf" > "$W/nats.log" 2>&1 &
NATS_PID=$!
trap bench_cleanup EXIT

mkdir -p "$W/logs" "$W/conf"
M=$BUILD_DIR/modules
cat > "$W/conf/nginx.conf" <<EOC
$(nginx_load_modules "$M")
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    lua_socket_buffer_size 64k;
    lua_socket_read_timeout 120s;
    lua_package_path "$REPO/lua/?.lua;/usr/share/lua/5.1/?.lua;;";
    init_worker_by_lua_block {
        if "${JITV:-}" ~= "" then require("jit.v").start("${JITV:-}") end
        assert(require("resty.nats").shared("bench", { port = $NATS_PORT }))
    }
    server {
        listen 127.0.0.1:$HTTP_PORT;
        # /ordered?n=N&shared=1: msgs/s of one handler reading N messages
        location = /ordered {
            content_by_lua_block {
                local nats = require "resty.nats"
                local n = tonumber(ngx.var.arg_n)
                local js, conn
                if ngx.var.arg_shared then
                    js = nats.shared("bench"):jetstream()
                else
                    conn = nats:new()
                    assert(conn:connect("127.0.0.1", $NATS_PORT))
                    js = conn:jetstream()
                end
                local prof = "${JITP:-}" ~= "" and require("jit.p")
                if prof then prof.start("${JITP_MODE:-v}", "${JITP:-}") end
                ngx.update_time()
                local t0 = ngx.now()
                local oc = assert(js:ordered_consumer("JSREAD"))
                local bytes = 0
                for i = 1, n do
                    local m, err = oc:next(30000)
                    if not m then
                        ngx.log(ngx.ERR, "ordered: ", err, " at ", i)
                        return ngx.exit(500)
                    end
                    bytes = bytes + #m.payload
                end
                ngx.update_time()
                local t1 = ngx.now()
                oc:close()
                if prof then prof.stop() end
                if conn then conn:close() end
                ngx.say(string.format("%.0f", n / (t1 - t0)))
            }
        }
        # /durable?name=X: a fresh durable pull consumer (explicit acks)
        location = /durable {
            content_by_lua_block {
                local js = require("resty.nats").shared("bench"):jetstream()
                js:delete_consumer("JSREAD", ngx.var.arg_name)
                assert(js:add_consumer("JSREAD", { durable_name = ngx.var.arg_name,
                                                   ack_policy = "explicit",
                                                   max_ack_pending = -1 }))
                ngx.say("ok")
            }
        }
        # /consume?name=X&n=N: msgs/s of js:consume acking N messages
        location = /consume {
            content_by_lua_block {
                local js = require("resty.nats").shared("bench"):jetstream()
                local n = tonumber(ngx.var.arg_n)
                local sema = require("ngx.semaphore").new()
                local got = 0
                ngx.update_time()
                local t0 = ngx.now()
                local c = assert(js:consume("JSREAD", ngx.var.arg_name, function(msg)
                    msg:ack()
                    got = got + 1
                    if got == n then sema:post(1) end
                end, { max_messages = $BATCH }))
                local ok = sema:wait(120)
                ngx.update_time()
                local t1 = ngx.now()
                c:stop()
                if not ok then
                    ngx.log(ngx.ERR, "consume: ", got, " of ", n)
                    return ngx.exit(500)
                end
                ngx.say(string.format("%.0f", n / (t1 - t0)))
            }
        }
    }
}
EOC
wait_port "$NATS_PORT"
nginx_start "$W" conf/nginx.conf logs/nginx.pid "$HTTP_PORT" \
    || { echo "jsread.sh: nginx did not start, see $W/logs/error.log" >&2; exit 1; }
URL=nats://127.0.0.1:$NATS_PORT
B=http://127.0.0.1:$HTTP_PORT
JB=$BUILD_DIR/bench/jsread_bench

fill=$("$JB" fill "$URL" JSREAD jsread.x "$N" "$SIZE") \
    || { echo "jsread.sh: filling the stream failed" >&2; exit 1; }
echo "filled JSREAD with $N x $SIZE B: $fill msgs/s (libnats)" >&2

if [ -n "${PERF:-}" ]; then
    # where the worker's time goes during one ordered read: perf report -i
    # $PERF (PERF_PATH: another location than /ordered?n=N)
    w=$(pgrep -P "$(cat "$W/logs/nginx.pid")" | head -1)
    t0=$(proc_ticks "$w")
    n0=$(proc_ticks "$NATS_PID")
    perf record -g -o "$PERF" -p "$w" > /dev/null 2>&1 &
    perf_pid=$!
    sleep 0.5
    s0=$(date +%s.%N)
    curl -sf "$B${PERF_PATH:-/ordered?n=$N}"
    s1=$(date +%s.%N)
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    t1=$(proc_ticks "$w")
    n1=$(proc_ticks "$NATS_PID")
    echo "server CPU $(( n1 - n0 )) ticks; worker CPU $(( t1 - t0 )) ticks in $(awk -v a="$s0" -v b="$s1" 'BEGIN {print b - a}') s" >&2
    n0=$(proc_ticks "$NATS_PID")
    s0=$(date +%s.%N)
    "$JB" ordered "$URL" JSREAD jsread.x "$N"
    s1=$(date +%s.%N)
    n1=$(proc_ticks "$NATS_PID")
    echo "libnats: server CPU $(( n1 - n0 )) ticks in $(awk -v a="$s0" -v b="$s1" 'BEGIN {print b - a}') s" >&2
    exit 0
fi

declare -A R
run() {     # side, command...: appends the figure (msgs/s) to R[side]
    local side=$1 v
    shift
    v=$("$@") || { echo "jsread.sh: $side failed" >&2; exit 1; }
    R[$side]="${R[$side]:-} ${v%.*}"
}
c=0
fresh() { c=$((c + 1)); curl -sf "$B/durable?name=d$c" > /dev/null; }
o_nginx() { curl -sf "$B/ordered?n=$N"; }
o_shared() { curl -sf "$B/ordered?n=$N&shared=1"; }
o_libnats() { "$JB" ordered "$URL" JSREAD jsread.x "$N"; }
p_nginx() { fresh; curl -sf "$B/consume?name=d$c&n=$N"; }
p_libnats() { fresh; "$JB" fetch "$URL" JSREAD "d$c" "$N" "$BATCH"; }

for r in $(seq "$ROUNDS"); do
    if (( r % 2 )); then order="o_nginx o_shared o_libnats p_nginx p_libnats"
    else order="p_libnats p_nginx o_libnats o_shared o_nginx"; fi
    for f in $order; do
        run "$f" "$f"
    done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
k() { awk -v v="$1" 'BEGIN {printf "%.0fk", v / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
echo "stream of $N x $SIZE B (memory), $ROUNDS rounds (sides alternating); median msgs/s [runs]"
echo "machine: $(nproc) cores, nats-server $(nats-server --version | awk '{print $NF}'), libnats $(pkg-config --modversion libnats), nginx $(nginx -v 2>&1 | sed 's|.*/||'), code $(git rev-parse --short HEAD)"
declare -A MED
for s in o_nginx o_shared o_libnats p_nginx p_libnats; do
    MED[$s]=$(median <<< "${R[$s]}")
done
printf 'ordered consumer: per-request %s, shared %s, libnats %s msgs/s; per-request/libnats %s, shared/libnats %s\n' \
    "$(k "${MED[o_nginx]}")" "$(k "${MED[o_shared]}")" "$(k "${MED[o_libnats]}")" \
    "$(ratio "${MED[o_nginx]}" "${MED[o_libnats]}")" "$(ratio "${MED[o_shared]}" "${MED[o_libnats]}")"
printf 'pull with acks: js:consume %s, libnats fetch loop %s msgs/s; ratio %s\n' \
    "$(k "${MED[p_nginx]}")" "$(k "${MED[p_libnats]}")" \
    "$(ratio "${MED[p_nginx]}" "${MED[p_libnats]}")"
for s in o_nginx o_shared o_libnats p_nginx p_libnats; do
    printf '  %s:' "$s"; for v in ${R[$s]}; do printf ' %s' "$(k "$v")"; done; echo
done
grep -h '\[error\]\|\[alert\]' "$W/logs/error.log" | head -5 || true
}
