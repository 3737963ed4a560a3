#!/usr/bin/env bash
# The Lua-side cost of one publish of a per-request object, before and
# after a change: the cosocket is replaced by a stub once connected
# (bench/lua/pubcost.lua), so that the figure is the library's own work
# per message (checks, framing, the call of the send) without the kernel's,
# which dominates the end-to-end figures of bench/run.sh and their noise.
#
#   bash bench/pubcost.sh [BEFORE_DIR AFTER_DIR]
#
# A DIR holds tree/lua and build/modules: the layout bench/ab.sh leaves in
# build-ab/before and build-ab/after (the defaults; run bench/ab.sh first,
# e.g. with SCENARIOS=core ROUNDS=1, to build them). Each side runs in an
# nginx of its own (its own Lua and modules), the two take turns, ROUNDS
# per variant; it prints the median ns per publish of each side and the
# ratio after/before. Variants: 16 B and 1 KiB, unbuffered with the
# patched lua module's send_nats_buf and with the stock send, and with
# set_write_buffer(65536). Knobs: N=1000000 messages per run, ROUNDS=6,
# VARIANTS (the query strings of bench/lua/pubcost.lua, space-separated;
# "size=1024&real=1": the real socket, the kernel's work included;
# "recv=1&size=16": the cost of receiving a message instead, wait(N) over
# a stub socket that returns MSG frames).
{
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BEFORE=$(realpath "${1:-$REPO/build-ab/before}")
AFTER=$(realpath "${2:-$REPO/build-ab/after}")
N=${N:-1000000}
ROUNDS=${ROUNDS:-6}
W=$(mktemp -d /tmp/pubcost.XXXXXX)

. "$REPO/scripts/proc-lib.sh"

NATS_PORT=$(free_port)
nats-server -a 127.0.0.1 -p "$NATS_PORT" > "$W/nats.log" 2>&1 &
NATS_PID=$!
cleanup() {
    for side in before after; do
        if [ -f "$W/$side/logs/nginx.pid" ]; then
            kill "$(cat "$W/$side/logs/nginx.pid")" 2> /dev/null || true
        fi
    done
    kill "$NATS_PID" 2> /dev/null || true
    }
trap cleanup EXIT

declare -A PORT
for side in before after; do
    dir=$BEFORE
    [ "$side" = after ] && dir=$AFTER
    for f in "$dir/tree/lua/resty/nats.lua" \
             "$dir/build/modules/ngx_http_lua_nats_module.so"; do
        [ -e "$f" ] || { echo "pubcost.sh: $f is missing" >&2; exit 1; }
    done
    p=$W/$side
    mkdir -p "$p/logs" "$p/conf"
    PORT[$side]=$(free_port)
    cat > "$p/conf/nginx.conf" <<EOC
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
load_module $dir/build/modules/ndk_http_module.so;
load_module $dir/build/modules/ngx_http_lua_module.so;
load_module $dir/build/modules/ngx_http_lua_nats_module.so;
events { worker_connections 64; }
http {
    access_log off;
    lua_package_path "$REPO/bench/lua/?.lua;$dir/tree/lua/?.lua;/usr/share/lua/5.1/?.lua;;";
    server {
        listen 127.0.0.1:${PORT[$side]};
        location = /pubcost {
            content_by_lua_block { require("pubcost").run() }
        }
    }
}
EOC
    nginx -p "$p" -c conf/nginx.conf -e logs/error.log
done
sleep 0.5

echo "before: $BEFORE"
echo "after:  $AFTER"
echo "ns of worker CPU per message, median of $ROUNDS runs of $N (the sides take turns)"
printf '%-36s %10s %10s %8s\n' variant before after ratio
VARIANTS=${VARIANTS:-"size=16&buf=1 size=1024&buf=1 size=16&buf=0 size=1024&buf=0 size=16&buf=1&wbuf=65536 size=1024&buf=1&wbuf=65536"}
for q in $VARIANTS; do
    : > "$W/before.txt"
    : > "$W/after.txt"
    for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then order="before after"; else order="after before"; fi
        for side in $order; do
            v=$(curl -s "http://127.0.0.1:${PORT[$side]}/pubcost?port=$NATS_PORT&n=$N&$q")
            case $v in
                ''|*[!0-9.]*) echo "pubcost.sh: $side $q: $v" >&2; exit 1 ;;
            esac
            echo "$v" >> "$W/$side.txt"
        done
    done
    b=$(sort -n "$W/before.txt" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
    a=$(sort -n "$W/after.txt" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
    label=${q//&/ }
    printf '%-36s %10s %10s %8s\n' "$label" "$b" "$a" "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", a / b}')"
done
}
