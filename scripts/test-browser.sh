#!/usr/bin/env bash
# The example page (examples/html/index.html) in a real browser: starts a
# nats-server (JetStream on) and nginx with examples/nginx.conf on free
# ports, as scripts/run.sh does, then drives headless Chromium (Debian's
# chromium through puppeteer-core, t/browser/page.test.js): events
# published over HTTP and from libnats appear in order on two tabs, a
# multi-line message, the feed comes back after `nginx -s reload` and
# after a nats-server restart, a file uploaded and downloaded through the
# page. The screenshot is saved to build/browser/page.png.
#
# Expects a build (build/modules/, build/t/nats_peer; RESTY_NATS_BUILD_DIR
# chooses another build directory) and t/browser/node_modules
# (scripts/deps.sh installs it). CHROMIUM: the browser (/usr/bin/chromium).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
BUILD=$(realpath -m "${RESTY_NATS_BUILD_DIR:-$REPO/build}")
P="$BUILD/browser"
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

fail() {
    echo "test-browser: FAIL: $*" >&2
    exit 1
}

for f in "$BUILD/modules/ngx_http_lua_nats_module.so" "$BUILD/t/nats_peer"; do
    [ -e "$f" ] || fail "$f missing: build first (cmake --build build)"
done
[ -d t/browser/node_modules/puppeteer-core ] \
    || fail "t/browser/node_modules/puppeteer-core missing: run scripts/deps.sh"
[ -x "$CHROMIUM" ] || fail "no browser at $CHROMIUM: apt-get install chromium"

. "$REPO/scripts/proc-lib.sh"
NATS_PORT=$(free_port)
HTTP_PORT=$(free_port)

rm -rf "$P"
mkdir -p "$P/logs" "$P/conf"
sed -e "s|@MODULES@|$BUILD/modules|g" -e "s|@REPO@|$REPO|g" \
    -e "s|@NATS_PORT@|$NATS_PORT|g" -e "s|@HTTP_PORT@|$HTTP_PORT|g" \
    examples/nginx.conf > "$P/conf/nginx.conf"

# ctl.sh: what the page test does to the servers (reload, nats-restart)
cat > "$P/ctl.sh" <<CTL
#!/usr/bin/env bash
set -euo pipefail
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/\$1") 2>/dev/null; }
nats_start() {
    nats-server -a 127.0.0.1 -p $NATS_PORT -js -sd "$P/jetstream" \\
        -P "$P/nats.pid" -l "$P/logs/nats.log" </dev/null >/dev/null 2>&1 &
    for _ in \$(seq 100); do
        if port_open $NATS_PORT; then exit 0; fi
        sleep 0.1
    done
    echo "ctl.sh: nats-server does not listen on $NATS_PORT" >&2
    exit 1
}
nats_stop() {
    local pid
    pid=\$(cat "$P/nats.pid")
    kill "\$pid"
    for _ in \$(seq 100); do
        if ! kill -0 "\$pid" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "ctl.sh: nats-server \$pid does not stop" >&2
    exit 1
}
case "\$1" in
    reload)       /usr/sbin/nginx -p "$P" -c conf/nginx.conf -e logs/error.log -s reload ;;
    nats-start)   nats_start ;;
    nats-stop)    nats_stop ;;
    nats-restart) nats_stop; nats_start ;;
    *) echo "ctl.sh: reload|nats-start|nats-stop|nats-restart" >&2; exit 2 ;;
esac
CTL

ngx_pid=
cleanup() {
    local rc=$?
    if [ -n "$ngx_pid" ]; then
        stop_gracefully "$ngx_pid"
    fi
    if [ -f "$P/nats.pid" ]; then
        kill "$(cat "$P/nats.pid")" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash "$P/ctl.sh" nats-start || fail "nats-server (see $P/logs/nats.log)"

/usr/sbin/nginx -p "$P" -c conf/nginx.conf -e logs/error.log \
    -g 'daemon off; master_process on;' &
ngx_pid=$!
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null; then break; fi
    kill -0 "$ngx_pid" 2>/dev/null || fail "nginx exited (see $P/logs/error.log)"
    sleep 0.1
done

t0=$SECONDS
BASE_URL="http://127.0.0.1:$HTTP_PORT" \
NATS_URL="nats://127.0.0.1:$NATS_PORT" \
NATS_PEER="$BUILD/t/nats_peer" \
CTL="$P/ctl.sh" \
ARTIFACTS="$P" \
    node t/browser/page.test.js \
    || fail "the page test failed (nginx's log: $P/logs/error.log," \
            "screenshot: $P/page.png or $P/failure.png)"

if grep -E '\[(alert|emerg|crit)\]' "$P/logs/error.log" >&2; then
    fail "nginx's error log has the lines above"
fi
echo "test-browser: PASS in $((SECONDS - t0)) s (screenshot: $P/page.png)" >&2
