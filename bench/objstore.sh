#!/usr/bin/env bash
# The object store through nginx, against libnats and against nginx's own
# file serving, in one run (a script that prints figures, not a test):
#
#   HTTP PUT  /files/<name>  (examples/lua/files.lua on the worker's shared
#                             connection: the body streamed into the bucket)
#   libnats   put            (bench/obs_bench.c: the same chunks published
#                             with acknowledgements, the meta after them)
#   nginx     PUT of the body to a local file (client_body_in_file_only)
#   HTTP GET  /files/<name>  (streamed out chunk by chunk, digest checked)
#   libnats   get            (an ordered consumer over the same chunks,
#                             digest checked)
#   nginx     GET of the same bytes from a local file (the ceiling here)
#   GET, lean client: the two HTTP GETs again with bench/http_get.c
#             (reads 32 KiB at a time, as libnats does, and drops them;
#             curl reads 16 KiB at a time and costs 0.05 s of CPU per
#             64 MiB on the cores nginx and nats-server share)
#
# curl is the HTTP client (its speed_upload / speed_download). The sides
# take turns going first, ROUNDS times; it prints the median MB/s of each
# and the ratios, HTTP/libnats of each round and their median (a round's
# two ran one after the other: the machine's drift between rounds, large
# on this one, cancels), and the CPU seconds each run took in nats-server, the
# nginx worker and the client (curl or obs_bench). Knobs: SIZE_MB=64,
# CHUNK=131072, ROUNDS=5, BUILD_DIR; SIDES="hget cget" (only those of
# hput cput lput hget cget lget hlean llean); SOCKBUF (lua_socket_buffer_size: 64k,
# as examples/nginx.conf). Instead of the runs: PERF=FILE records the
# worker with perf during 5 GETs; STRACE=FILE counts its system calls
# during one GET.
{
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
. "$REPO/bench/common.sh"
SIZE_MB=${SIZE_MB:-64}
CHUNK=${CHUNK:-131072}
ROUNDS=${ROUNDS:-5}
BUILD_DIR=$(realpath -m "${BUILD_DIR:-build}")

bash scripts/deps.sh > /dev/null
cmake -S . -B "$BUILD_DIR" -DRESTY_NATS_BUILD_BENCH=ON > /dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target obs_bench http_get nginx_module \
    lua_module > /dev/null
command -v curl > /dev/null || { echo "objstore.sh: curl is missing" >&2; exit 1; }

W=$(mktemp -d /tmp/objstore-bench.XXXXXX)
HTTP_PORT=$(free_port)
bench_js_server
trap bench_cleanup EXIT

mkdir -p "$W/logs" "$W/conf" "$W/www" "$W/body"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom > "$W/www/big.bin"
# the workers (user nobody when nginx starts as root) read and write here
chmod 755 "$W" "$W/www"
chmod 644 "$W/www/big.bin"
chmod 777 "$W/body"
M=$BUILD_DIR/modules
cat > "$W/conf/nginx.conf" <<EOC
$(nginx_load_modules "$M")
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    lua_socket_buffer_size ${SOCKBUF:-64k};
    lua_package_path "$REPO/lua/?.lua;$REPO/examples/lua/?.lua;/usr/share/lua/5.1/?.lua;;";
    init_worker_by_lua_block {
        assert(require("resty.nats").shared("bench", { port = $NATS_PORT }))
    }
    server {
        listen 127.0.0.1:$HTTP_PORT;
        client_max_body_size 0;
        location ~ ^/files/(?<file_name>.*)\$ {
            content_by_lua_block {
                require("files").serve("bench", "bench")
            }
        }
        location /local/ {
            alias $W/www/;
        }
        location = /upload {
            client_body_temp_path $W/body;
            client_body_in_file_only clean;
            client_body_buffer_size 128k;
            content_by_lua_block {
                ngx.req.read_body()
                ngx.exit(201)
            }
        }
    }
}
EOC
wait_port "$NATS_PORT"
nginx_start "$W" conf/nginx.conf logs/nginx.pid "$HTTP_PORT" \
    || { echo "objstore.sh: nginx did not start, see $W/logs/error.log" >&2; exit 1; }
URL=nats://127.0.0.1:$NATS_PORT
B=http://127.0.0.1:$HTTP_PORT
OBS=$BUILD_DIR/bench/obs_bench
LEAN=$BUILD_DIR/bench/http_get

# the bucket (file storage, as a real one), and a warm-up of every path
warm() { "$@" > /dev/null || { echo "objstore.sh: warm-up failed: $*" >&2; exit 1; }; }
warm curl -sf -T "$W/www/big.bin" "$B/files/warm" -o /dev/null
warm "$OBS" put "$URL" bench c-warm "$W/www/big.bin" "$CHUNK"
warm curl -sf "$B/files/warm" -o /dev/null
warm curl -sf "$B/local/big.bin" -o /dev/null
warm "$LEAN" 127.0.0.1 "$HTTP_PORT" /files/warm
warm curl -sf -T "$W/www/big.bin" "$B/upload" -o /dev/null

if [ -n "${STRACE:-}" ]; then
    w=$(pgrep -P "$(cat "$W/logs/nginx.pid")" | head -1)
    strace -c -f -p "$w" -o "$STRACE" &
    st=$!; sleep 0.5
    curl -sf "$B/files/warm" -o /dev/null
    kill -INT $st; wait $st || true
    exit 0
fi
if [ -n "${PERF:-}" ]; then
    # where a worker's time goes during GETs: perf report -i $PERF
    w=$(pgrep -P "$(cat "$W/logs/nginx.pid")" | head -1)
    perf record -g -o "$PERF" -p "$w" > /dev/null 2>&1 &
    perf_pid=$!
    sleep 0.5
    for _ in 1 2 3 4 5; do curl -sf "$B/files/warm" -o /dev/null; done
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    exit 0
fi

WORKER=$(pgrep -P "$(cat "$W/logs/nginx.pid")" | head -1)
declare -A R CPU
run() {     # side, command...: appends the figure (bytes/s) to R[side]
            # and the CPU seconds of the run (server + worker + client)
    local side=$1 v s0 w0 s1 w1 client
    shift
    s0=$(proc_ticks "$NATS_PID"); w0=$(proc_ticks "$WORKER")
    local TIMEFORMAT='%U %S'
    { time v=$("$@"); } 2> "$W/time" \
        || { echo "objstore.sh: $side failed" >&2; exit 1; }
    s1=$(proc_ticks "$NATS_PID"); w1=$(proc_ticks "$WORKER")
    client=$(awk '{print $1 + $2}' "$W/time")
    R[$side]="${R[$side]:-} ${v%.*}"
    CPU[$side]="${CPU[$side]:-} $(awk -v s=$((s1 - s0)) -v w=$((w1 - w0)) \
        -v c="$client" -v hz="$(getconf CLK_TCK)" \
        'BEGIN {printf "%.2f/%.2f/%.2f", s / hz, w / hz, c}')"
}
hput() { curl -sf -T "$W/www/big.bin" "$B/files/$1" -o /dev/null -w '%{speed_upload}'; }
cput() { "$OBS" put "$URL" bench "$1" "$W/www/big.bin" "$CHUNK"; }
lput() { curl -sf -T "$W/www/big.bin" "$B/upload" -o /dev/null -w '%{speed_upload}'; }
hget() { curl -sf "$B/files/warm" -o /dev/null -w '%{speed_download}'; }
cget() { "$OBS" get "$URL" bench warm; }
lget() { curl -sf "$B/local/big.bin" -o /dev/null -w '%{speed_download}'; }
hlean() { "$LEAN" 127.0.0.1 "$HTTP_PORT" /files/warm; }
llean() { "$LEAN" 127.0.0.1 "$HTTP_PORT" /local/big.bin; }

for r in $(seq "$ROUNDS"); do
    if (( r % 2 )); then order="hput cput lput hget cget lget hlean llean"
    else order="llean hlean lget cget hget lput cput hput"; fi
    for f in $order; do
        [[ " ${SIDES:-$order} " == *" $f "* ]] || continue
        case $f in
            hput|cput) run "$f" "$f" "o$f$r" ;;
            *) run "$f" "$f" ;;
        esac
    done
    # each put replaced nothing (fresh names): keep the bucket small
    for f in hput cput; do
        curl -sf -X DELETE "$B/files/o$f$r" -o /dev/null || true
    done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mb() { awk -v v="$1" 'BEGIN {printf "%.0f", v / 1048576}'; }
echo "object of $SIZE_MB MiB, chunks of $CHUNK bytes, $ROUNDS rounds (sides alternating); median MB/s [runs]"
echo "machine: $(nproc) cores, nats-server $(nats-server --version | awk '{print $NF}'), libnats $(pkg-config --modversion libnats), nginx $(nginx -v 2>&1 | sed 's|.*/||'), code $(git rev-parse --short HEAD)"
# the ratio HTTP/libnats of each round (the two ran next to each other,
# so the machine's drift between rounds cancels) and their median
per_round() {
    local r
    r=$(paste -d' ' <(tr ' ' '\n' <<< "${R[$1]}" | grep .) \
                    <(tr ' ' '\n' <<< "${R[$2]}" | grep .) \
        | awk '{printf "%.2f\n", $1 / $2}')
    printf '  %s/%s per round: %s (median %s)\n' "$1" "$2" \
        "$(tr '\n' ' ' <<< "$r" | sed 's/ $//')" "$(median <<< "$r")"
}
shown=
for pair in "PUT hput cput lput" "GET hget cget lget" \
            "GET,_lean_client hlean cget llean"; do
    read -r what h c l <<< "$pair"
    what=${what//_/ }
    if [ -n "${R[$h]:-}" ] && [ -n "${R[$c]:-}" ]; then
        rounds_line=$(per_round "$h" "$c")
    else
        rounds_line=
    fi
    if [ -z "${R[$h]:-}" ] || [ -z "${R[$c]:-}" ] || [ -z "${R[$l]:-}" ]; then
        for s in $h $c $l; do    # SIDES= left some out: the runs only
            [ -n "${R[$s]:-}" ] || continue
            [[ " $shown " == *" $s "* ]] && continue
            shown="$shown $s"
            printf '  %s:' "$s"; for v in ${R[$s]}; do printf ' %s' "$(mb "$v")"; done
            printf '   CPU s server/worker/client:%s\n' "${CPU[$s]}"
        done
        [ -z "$rounds_line" ] || echo "$rounds_line"
        continue
    fi
    mh=$(median <<< "${R[$h]}"); mc=$(median <<< "${R[$c]}"); ml=$(median <<< "${R[$l]}")
    printf '%s: HTTP through nginx %s MB/s, libnats %s MB/s, nginx local file %s MB/s; HTTP/libnats %.3f, HTTP/local %.3f\n' \
        "$what" "$(mb "$mh")" "$(mb "$mc")" "$(mb "$ml")" \
        "$(awk -v a="$mh" -v b="$mc" 'BEGIN {print a / b}')" \
        "$(awk -v a="$mh" -v b="$ml" 'BEGIN {print a / b}')"
    for s in $h $c $l; do
        [[ " $shown " == *" $s "* ]] && continue     # cget: listed once
        shown="$shown $s"
        printf '  %s:' "$s"; for v in ${R[$s]}; do printf ' %s' "$(mb "$v")"; done
        printf '   CPU s server/worker/client:%s\n' "${CPU[$s]}"
    done
    echo "$rounds_line"
done
grep -h '\[error\]\|\[alert\]' "$W/logs/error.log" | head -5 || true
}
