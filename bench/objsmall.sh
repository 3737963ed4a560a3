#!/usr/bin/env bash
# Small objects through nginx: GETs per second of objects of a few sizes
# (one nginx worker, its shared connection, wrk with CONNS connections for
# SECS seconds each), read two ways in alternating rounds (a script that
# prints figures, not a test):
#
#   direct     obs:open as the library does it: the meta and, for an
#              object of one chunk, the chunk by Direct Get
#   consumer   the same handle with Direct Get off (the bench sets the
#              handle's _direct to false: the JSON API for the meta and an
#              ephemeral consumer for the chunks, as every object was read
#              before, and as objects of more chunks still are)
#
# It prints the median req/s of each side and size, their ratio, and the
# CPU seconds per 1,000 GETs of nats-server and of the worker. Knobs:
# SIZES="1000 300000 1048576" (bytes), SECS=5, CONNS=16, ROUNDS=3,
# BUILD_DIR.
{
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
. "$REPO/bench/common.sh"
SIZES=${SIZES:-1000 300000 1048576}
SECS=${SECS:-5}
CONNS=${CONNS:-16}
ROUNDS=${ROUNDS:-3}
BUILD_DIR=$(realpath -m "${BUILD_DIR:-build}")

bash scripts/deps.sh > /dev/null
cmake -S . -B "$BUILD_DIR" > /dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target nginx_module lua_module \
    > /dev/null
command -v wrk > /dev/null || { echo "objsmall.sh: wrk is missing" >&2; exit 1; }

W=$(mktemp -d /tmp/objsmall-bench.XXXXXX)
HTTP_PORT=$(free_port)
bench_js_server
trap bench_cleanup EXIT

mkdir -p "$W/logs" "$W/conf"
cat > "$W/conf/nginx.conf" <<EOC
$(nginx_load_modules "$BUILD_DIR/modules")
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    lua_socket_buffer_size 64k;
    lua_package_path "$REPO/lua/?.lua;/usr/share/lua/5.1/?.lua;;";
    init_worker_by_lua_block {
        assert(require("resty.nats").shared("bench", { port = $NATS_PORT }))
        objsmall = {}       -- the worker's two handles, made at first use
    }
    server {
        listen 127.0.0.1:$HTTP_PORT;
        client_max_body_size 0;
        location = /put {
            content_by_lua_block {
                ngx.req.read_body()
                local js = require("resty.nats").shared("bench"):jetstream()
                local obs = js:object_store("bench")
                    or assert(js:create_object_store({ bucket = "bench" }))
                assert(obs:put(ngx.var.arg_name, ngx.req.get_body_data()
                    or assert(io.open(ngx.req.get_body_file())):read("*a")))
            }
        }
        location ~ ^/(?<mode>direct|consumer)/(?<name>.+)\$ {
            content_by_lua_block {
                local mode = ngx.var.mode
                local obs = objsmall[mode]
                if not obs then
                    local js = require("resty.nats").shared("bench"):jetstream()
                    obs = assert(js:object_store("bench"))
                    obs._direct = mode == "direct"
                    objsmall[mode] = obs
                end
                local reader, info = obs:open(ngx.var.name)
                if not reader then
                    ngx.log(ngx.ERR, "objsmall: ", info)
                    return ngx.exit(502)
                end
                ngx.header["Content-Length"] = info.size
                while true do
                    local piece, err = reader()
                    if not piece then
                        if err then
                            ngx.log(ngx.ERR, "objsmall: ", err)
                            return ngx.exit(444)
                        end
                        break
                    end
                    ngx.print(piece)
                end
            }
        }
    }
}
EOC
wait_port "$NATS_PORT"
nginx_start "$W" conf/nginx.conf logs/nginx.pid "$HTTP_PORT" \
    || { echo "objsmall.sh: nginx did not start, see $W/logs/error.log" >&2; exit 1; }
B=http://127.0.0.1:$HTTP_PORT
WORKER=$(pgrep -P "$(cat "$W/logs/nginx.pid")" | head -1)

for size in $SIZES; do
    head -c "$size" /dev/urandom > "$W/o$size"
    curl -sf --data-binary "@$W/o$size" "$B/put?name=o$size" -o /dev/null \
        || { echo "objsmall.sh: put of $size bytes failed" >&2; exit 1; }
    for mode in direct consumer; do
        curl -sf "$B/$mode/o$size" | cmp -s - "$W/o$size" \
            || { echo "objsmall.sh: $mode read of $size bytes differs" >&2; exit 1; }
    done
done

declare -A R CPU
for r in $(seq "$ROUNDS"); do
    if (( r % 2 )); then order="direct consumer"; else order="consumer direct"; fi
    for size in $SIZES; do
        for mode in $order; do
            s0=$(proc_ticks "$NATS_PID"); w0=$(proc_ticks "$WORKER")
            out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" "$B/$mode/o$size")
            s1=$(proc_ticks "$NATS_PID"); w1=$(proc_ticks "$WORKER")
            if grep -q "Non-2xx\|Socket errors" <<< "$out"; then
                echo "objsmall.sh: $mode $size: errors:" >&2
                echo "$out" >&2
                exit 1
            fi
            rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
            n=$(awk '/requests in/ {print $1}' <<< "$out")
            R[$mode$size]="${R[$mode$size]:-} $rps"
            CPU[$mode$size]="${CPU[$mode$size]:-} $(awk -v s=$((s1 - s0)) \
                -v w=$((w1 - w0)) -v n="$n" -v hz="$(getconf CLK_TCK)" \
                'BEGIN {printf "%.3f/%.3f", s / hz * 1000 / n, w / hz * 1000 / n}')"
        done
    done
done

echo "GETs of one object through one worker: wrk -t2 -c$CONNS, $SECS s a run, $ROUNDS rounds (sides alternating); median req/s [runs]"
echo "machine: $(nproc) cores, nats-server $(nats-server --version | awk '{print $NF}'), nginx $(nginx -v 2>&1 | sed 's|.*/||'), code $(git rev-parse --short HEAD)"
for size in $SIZES; do
    d=$(median <<< "${R[direct$size]}"); c=$(median <<< "${R[consumer$size]}")
    printf '%s bytes: direct %.0f req/s, consumer %.0f req/s; direct/consumer %.2f\n' \
        "$size" "$d" "$c" "$(awk -v a="$d" -v b="$c" 'BEGIN {print a / b}')"
    for mode in direct consumer; do
        printf '  %s:%s   CPU s per 1,000 GETs server/worker:%s\n' "$mode" \
            "${R[$mode$size]}" "${CPU[$mode$size]}"
    done
done
grep -h '\[error\]\|\[alert\]' "$W/logs/error.log" | head -5 || true
}
