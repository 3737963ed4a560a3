#!/usr/bin/env bash
# Requests answered by nginx through a NATS service endpoint, against the
# same requests answered by a plain callback subscription, in one run (a
# script that prints figures, not a test):
#
#   service   conn:add_service{ name = "bench" } on the worker's shared
#             connection, svc:add_endpoint("echo", handler, { subject =
#             "svc.echo" }) (queue group "q"), the handler req:respond(
#             req.payload)
#   callback  conn:subscribe("cb.echo", function(msg) conn:publish(
#             msg.reply_to, msg.payload) end, { queue = "q" }) on the same
#             connection
#
# The requests come from bench/svc_bench.c (libnats, a process of its
# own): K requests of SIZE bytes in flight for DURATION seconds. One
# nats-server, WORKERS nginx workers, both sides hosted at once. The
# sides take turns going first, ROUNDS times; it prints each round's
# req/s, the worker's CPU per request and the ratio service/callback,
# then the medians. Knobs: ROUNDS=3, DURATION=10, K=128, SIZE=16 (1 or
# more), WORKERS=1, WARMUP=2 (seconds of each side before the rounds),
# BUILD_DIR, LUA_DIR (where resty/nats.lua comes from: lua). Instead of
# the rounds: PERF=FILE, perf record -g of the worker during one run of
# PERF_SIDE (svc or cb, default svc); MICRO=N, each side's callback
# called N times in the worker (no network), ns a call. JITV=FILE: the worker's LuaJIT trace log (jit.v) goes there.
{
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
K=${K:-128}
SIZE=${SIZE:-16}
WORKERS=${WORKERS:-1}
WARMUP=${WARMUP:-2}
PERF_SIDE=${PERF_SIDE:-svc}
BUILD_DIR=$(realpath -m "${BUILD_DIR:-build}")
LUA_DIR=$(realpath -m "${LUA_DIR:-lua}")
. "$REPO/bench/common.sh"

W=$(mktemp -d /tmp/service-bench.XXXXXX)
NATS_PID=
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

bench_build "$BUILD_DIR" "$W/build.log" svc_bench nginx_module lua_module \
    > /dev/null
SB=$BUILD_DIR/bench/svc_bench

NATS_PORT=$(free_port)
HTTP_PORT=$(free_port)
URL=nats://127.0.0.1:$NATS_PORT
nats-server -a 127.0.0.1 -p "$NATS_PORT" > "$W/nats.log" 2>&1 &
NATS_PID=$!
wait_port "$NATS_PORT"

mkdir -p "$W/logs" "$W/conf"
cat > "$W/conf/nginx.conf" <<EOC
$(nginx_load_modules "$BUILD_DIR/modules")
worker_processes $WORKERS;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    lua_package_path "$LUA_DIR/?.lua;/usr/share/lua/5.1/?.lua;;";
    init_worker_by_lua_block {
        if "${JITV:-}" ~= "" then require("jit.v").start("${JITV:-}") end
        local conn = assert(require("resty.nats").shared("bench",
                                                         { port = $NATS_PORT }))
        local svc = assert(conn:add_service({ name = "bench",
                                              version = "1.0.0" }))
        assert(svc:add_endpoint("echo", function(req)
            req:respond(req.payload)
        end, { subject = "svc.echo" }))
        local cb = assert(conn:subscribe("cb.echo", function(msg)
            conn:publish(msg.reply_to, msg.payload)
        end, { queue = "q" }))
        package.loaded.bench_service = svc
        package.loaded.bench_callback = cb
    }
    server {
        listen 127.0.0.1:$HTTP_PORT;
        # the shared connection's state
        location = /ready {
            content_by_lua_block {
                ngx.say(require("resty.nats").shared("bench"):stats().state)
            }
        }
        # this worker's endpoint stats: num_requests num_errors
        # processing_time average_processing_time (ns)
        location = /stats {
            content_by_lua_block {
                local e = package.loaded.bench_service:stats().endpoints[1]
                ngx.say(e.num_requests, " ", e.num_errors, " ",
                        e.processing_time, " ", e.average_processing_time)
            }
        }
        # /micro?side=svc|cb&n=N: ns per call of the side's callback,
        # called here with a message made as the engine makes one (the
        # replies go to _micro.x, nobody's); 1,000 calls a batch, then a
        # yield for the writer (not timed)
        location = /micro {
            content_by_lua_block {
                local sub = package.loaded.bench_callback
                if ngx.var.arg_side == "svc" then
                    for _, s in ipairs(package.loaded.bench_service._subs) do
                        if s.subject == "svc.echo" then sub = s end
                    end
                end
                local f, n = sub.callback, tonumber(ngx.var.arg_n)
                local payload = string.rep("x", $SIZE)
                -- (clock_gettime: cdef'd by resty.nats.service)
                local ffi = require "ffi"
                local ts = ffi.new("resty_nats_timespec_t")
                local function now()
                    ffi.C.clock_gettime(1, ts)
                    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
                end
                local b = {}
                for i = 1, n / 1000 do
                    local t0 = now()
                    for _ = 1, 1000 do
                        f({ subject = "svc.echo", sid = 1,
                            reply_to = "_micro.x", payload = payload })
                    end
                    b[i] = now() - t0
                    ngx.sleep(0)
                end
                -- the fastest batch and the median one (the machine's
                -- other work lands in some batches)
                table.sort(b)
                ngx.say(string.format("%.0f %.0f", b[1] / 1000 * 1e9,
                                      b[math.ceil(#b / 2)] / 1000 * 1e9))
            }
        }
    }
}
EOC
nginx_start "$W" conf/nginx.conf logs/nginx.pid "$HTTP_PORT"
B=http://127.0.0.1:$HTTP_PORT
mapfile -t WPIDS < <(nginx_workers "$(cat "$W/logs/nginx.pid")")
for _ in $(seq 100); do
    [ "$(curl -sf "$B/ready")" = connected ] && break
    sleep 0.1
done
[ "$(curl -sf "$B/ready")" = connected ] \
    || { echo "service.sh: the shared connection is not up" >&2; exit 1; }
sleep 0.2      # the subscriptions go out right after the connect

subject() { if [ "$1" = svc ]; then echo svc.echo; else echo cb.echo; fi; }
workers_ticks() {
    local t=0 p
    for p in "${WPIDS[@]}"; do t=$((t + $(proc_ticks "$p"))); done
    echo "$t"
}

# the warm-up (traces compiled, buffers grown); its figures are dropped
for side in svc cb; do
    "$SB" "$URL" "$(subject "$side")" "$K" "$WARMUP" "$SIZE" > /dev/null \
        || { echo "service.sh: warm-up of $side failed" >&2; exit 1; }
done

if [ -n "${MICRO:-}" ]; then
    # the Lua cost of each side's callback alone, in the worker, sides
    # alternating ROUNDS times
    for r in $(seq "$ROUNDS"); do
        if (( r % 2 )); then order="svc cb"; else order="cb svc"; fi
        for side in $order; do
            read -r best med <<< "$(curl -sf "$B/micro?side=$side&n=$MICRO")"
            echo "micro $side: $best ns a call (fastest batch of 1000), $med (median batch)"
        done
    done
    exit 0
fi
if [ -n "${PERF:-}" ]; then
    perf record -g -o "$PERF" -p "${WPIDS[0]}" > /dev/null 2>&1 &
    perf_pid=$!
    sleep 0.5
    "$SB" "$URL" "$(subject "$PERF_SIDE")" "$K" "$DURATION" "$SIZE"
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    exit 0
fi

HZ=$(getconf CLK_TCK)
declare -A R CPU F
run() {     # run SIDE: appends req/s to R[SIDE] and the workers' CPU us per
            # request to CPU[SIDE]; F[SIDE]: "req/s us/req latency"
    local side=$1 t0 t1 out rate replies lat lost us
    t0=$(workers_ticks)
    out=$("$SB" "$URL" "$(subject "$side")" "$K" "$DURATION" "$SIZE") \
        || { echo "service.sh: $side failed" >&2; exit 1; }
    t1=$(workers_ticks)
    read -r rate replies lat lost <<< "$out"
    [ "$lost" = 0 ] || echo "service.sh: $side: $lost requests unanswered" >&2
    us=$(awk -v t=$((t1 - t0)) -v n="$replies" -v hz="$HZ" \
        'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
    R[$side]="${R[$side]:-} $rate"
    CPU[$side]="${CPU[$side]:-} $us"
    F[$side]="$rate $us $lat"
}
k() { awk -v v="$1" 'BEGIN {printf "%.1fk", v / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }

echo "service endpoint vs callback subscription: $K requests of $SIZE B in flight (libnats), $DURATION s a run, $WORKERS worker(s), $ROUNDS rounds (sides alternating)"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), nats-server $(nats-server --version | awk '{print $NF}'), libnats $(pkg-config --modversion libnats), nginx $(nginx -v 2>&1 | sed 's|.*/||'), code $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- lua || echo '+lua changes')$([ "$LUA_DIR" = "$REPO/lua" ] || echo ", Lua from $LUA_DIR")"
RATIOS=
for r in $(seq "$ROUNDS"); do
    if (( r % 2 )); then order="svc cb"; else order="cb svc"; fi
    for side in $order; do
        run "$side"
    done
    read -r rs us_s lat_s <<< "${F[svc]}"
    read -r rc us_c lat_c <<< "${F[cb]}"
    q=$(ratio "$rs" "$rc")
    RATIOS="$RATIOS $q"
    printf 'round %d (%s first): service %s req/s (%s us CPU/req, latency %s us), callback %s req/s (%s us CPU/req, latency %s us); ratio %s; load %s\n' \
        "$r" "${order%% *}" "$(k "$rs")" "$us_s" "$lat_s" "$(k "$rc")" \
        "$us_c" "$lat_c" "$q" "$(cut -d' ' -f1 /proc/loadavg)"
done
ms=$(median <<< "${R[svc]}"); mc=$(median <<< "${R[cb]}")
printf 'median: service %s req/s, callback %s req/s; ratio of the medians %s, median of the round ratios %s\n' \
    "$(k "$ms")" "$(k "$mc")" "$(ratio "$ms" "$mc")" "$(median <<< "$RATIOS")"
printf 'worker CPU per request (median): service %s us, callback %s us\n' \
    "$(median <<< "${CPU[svc]}")" "$(median <<< "${CPU[cb]}")"
read -r n e pt apt <<< "$(curl -sf "$B/stats")"
echo "endpoint stats ($( ((WORKERS > 1)) && echo 'one worker' || echo 'the worker')): num_requests $n, num_errors $e, processing_time $pt ns, average_processing_time $apt ns"
grep -h '\[error\]\|\[alert\]' "$W/logs/error.log" | head -5 || true
}
