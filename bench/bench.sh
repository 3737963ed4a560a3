#!/usr/bin/env bash
# Quick benchmark of resty.nats on this machine, beside the official C
# client (libnats) measured in the same run. Not part of the tests.
#
#   bash bench/bench.sh            (RUNS=3 N=200000 DURATION=10 by default)
#
# Starts its own nats-server, the libnats peer (t/helpers/nats_peer.c) and
# nginx (1 worker) on free loopback ports, then prints, per scenario, the
# median and min/max of RUNS runs:
#   publish 16 B / 1 KiB: one content_by_lua request publishes N messages
#     on one connection; the libnats peer counts every one of them; rate
#     = N / (time until the last one arrived). Baseline: libnats publishing
#     the same N to the same counting peer.
#   request/reply: wrk -t2 -c50 against a location doing connect, request,
#     wait(1), set_keepalive, with the libnats peer as responder.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
RUNS=${RUNS:-3}
N=${N:-200000}
DURATION=${DURATION:-10}

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

free_port() {
    perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1,
        LocalAddr => "127.0.0.1", LocalPort => 0)->sockport, "\n"'
}
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

B="$REPO/build/bench"
rm -rf "$B"; mkdir -p "$B/logs" "$B/conf"
NATS_PORT=$(free_port)
HTTP_PORT=$(free_port)
URL="nats://127.0.0.1:$NATS_PORT"

pids=()
cleanup() {
    [ -f "$B/logs/nginx.pid" ] && kill -QUIT "$(cat "$B/logs/nginx.pid")" 2>/dev/null
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

nats-server -a 127.0.0.1 -p "$NATS_PORT" -l "$B/logs/nats.log" &
pids+=($!)
wait_port "$NATS_PORT"
build/t/nats_peer serve "$URL" > "$B/logs/peer.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$B/logs/peer.out" && break; sleep 0.1; done

cat > "$B/conf/nginx.conf" <<CONF
load_module $REPO/build/modules/ndk_http_module.so;
load_module $REPO/build/modules/ngx_http_lua_module.so;
load_module $REPO/build/modules/ngx_http_lua_nats_module.so;
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    lua_package_path "$REPO/lua/?.lua;/usr/share/lua/5.1/?.lua;;";
    server {
        listen 127.0.0.1:$HTTP_PORT;
        location = /pub {
            content_by_lua_block {
                local nats = require "resty.nats"
                local n = nats:new()
                n:set_timeout(10000)
                assert(n:connect("127.0.0.1", $NATS_PORT))
                local count = tonumber(ngx.var.arg_n)
                local payload = string.rep("x", tonumber(ngx.var.arg_size))
                local function sink()
                    local c
                    assert(n:request("interop.sinkstat", "", function(m)
                        c = tonumber(m.payload:match("^%d+"))
                    end))
                    assert(n:wait(1))
                    return c
                end
                sink()
                ngx.update_time()
                local t0 = ngx.now()
                for i = 1, count do
                    local ok, err = n:publish("interop.sink.bench", payload)
                    if not ok then ngx.say("error ", err) return end
                end
                local got = 0
                while got < count do
                    got = got + sink()
                end
                ngx.update_time()
                ngx.say(string.format("%.0f", count / (ngx.now() - t0)))
                n:close()
            }
        }
        location = /req {
            content_by_lua_block {
                local nats = require "resty.nats"
                local n = nats:new()
                n:set_timeout(5000)
                local ok, err = n:connect("127.0.0.1", $NATS_PORT)
                if not ok then return ngx.exit(502) end
                local reply
                ok, err = n:request("interop.echo", "ping",
                                    function(m) reply = m.payload end)
                if ok then ok, err = n:wait(1) end
                if not ok then n:close() return ngx.exit(502) end
                n:set_keepalive(60000, 256)
                ngx.print(reply)
            }
        }
    }
}
CONF
/usr/sbin/nginx -p "$B" -c conf/nginx.conf -e logs/error.log
wait_port "$HTTP_PORT"

stats() {  # prints "median (min..max)" of the numbers on stdin
    sort -n | awk '{a[NR]=$1} END {printf "%.0f (min %.0f, max %.0f)",
        a[int((NR+1)/2)], a[1], a[NR]}'
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "runs per figure: $RUNS, N=$N"
for size in 16 1024; do
    ours=$(for _ in $(seq "$RUNS"); do
        curl -s "http://127.0.0.1:$HTTP_PORT/pub?n=$N&size=$size"; done)
    if ! [[ "$(echo "$ours" | head -1)" =~ ^[0-9]+$ ]]; then
        echo "publish $size B failed: $ours" >&2
        exit 1
    fi
    theirs=$(for _ in $(seq "$RUNS"); do
        build/t/nats_peer benchpub "$URL" "$size" "$N"; done)
    mo=$(echo "$ours" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    mt=$(echo "$theirs" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf 'publish %5s B  resty.nats %s msgs/s | libnats %s msgs/s | ratio %.2f\n' \
        "$size" "$(echo "$ours" | stats)" "$(echo "$theirs" | stats)" \
        "$(echo "$mo $mt" | awk '{print $1 / $2}')"
done

curl -sf "http://127.0.0.1:$HTTP_PORT/req" >/dev/null
for _ in $(seq "$RUNS"); do
    wrk -t2 -c50 -d"${DURATION}s" --latency "http://127.0.0.1:$HTTP_PORT/req" \
        > "$B/wrk.out"
    rps=$(awk '/Requests\/sec/ {print $2}' "$B/wrk.out")
    p50=$(awk '$1 == "50%" {print $2}' "$B/wrk.out")
    p99=$(awk '$1 == "99%" {print $2}' "$B/wrk.out")
    errs=$(awk '/Non-2xx|Socket errors/ {print}' "$B/wrk.out" | tr '\n' ' ')
    echo "$rps $p50 $p99 ${errs:-no errors}"
done > "$B/req.txt"
printf 'request/reply (wrk -t2 -c50, 1 worker): %s req/s; runs: %s\n' \
    "$(awk '{print $1}' "$B/req.txt" | stats)" \
    "$(awk '{printf "[%s p50 %s p99 %s %s] ", $1, $2, $3, substr($0, index($0,$4))}' "$B/req.txt")"
