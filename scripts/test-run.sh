#!/usr/bin/env bash
# `bash scripts/run.sh`, the README's first command, as a user runs it:
# started on free ports (NATS_PORT, HTTP_PORT), then each kind of curl
# example it prints is tried against it (publish, request/reply on the
# shared and pooled connections, services, the object store's PUT (also
# chunked, from a pipe), GET, Range, list), then Ctrl-C (SIGINT to its
# process group) must stop nginx and nats-server. The page itself:
# scripts/test-browser.sh.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
. "$REPO/scripts/proc-lib.sh"

fail() {
    echo "test-run: FAIL: $*" >&2
    [ -f "$REPO/build/demo/logs/error.log" ] \
        && tail -n 20 "$REPO/build/demo/logs/error.log" >&2
    exit 1
}
step() { echo "test-run: $*"; }

NATS_PORT=$(free_port)
HTTP_PORT=$(free_port)
LOG=$(mktemp /tmp/test-run.XXXXXX)
B=http://127.0.0.1:$HTTP_PORT

# its own process group, as a terminal's Ctrl-C reaches it
setsid env NATS_PORT="$NATS_PORT" HTTP_PORT="$HTTP_PORT" \
    bash scripts/run.sh > "$LOG" 2>&1 < /dev/null &
pid=$!
cleanup() {
    local rc=$?
    kill -INT -- "-$pid" 2>/dev/null || true
    sleep 1
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$LOG"
    exit "$rc"
}
trap cleanup EXIT

for _ in $(seq 600); do          # the first run builds: up to 60 s
    port_open "$HTTP_PORT" && break
    kill -0 "$pid" 2>/dev/null || { cat "$LOG" >&2; fail "run.sh exited"; }
    sleep 0.1
done
port_open "$HTTP_PORT" || { cat "$LOG" >&2; fail "nothing on port $HTTP_PORT"; }
grep -q "nats-server on 127.0.0.1:$NATS_PORT, nginx on 127.0.0.1:$HTTP_PORT" \
    "$LOG" || { cat "$LOG" >&2; fail "run.sh did not print its ports"; }
step "run.sh serves on $HTTP_PORT (nats-server on $NATS_PORT)"

# expect WHAT PATTERN OUTPUT
expect() {
    if ! grep -qE -- "$2" <<< "$3"; then
        fail "$1: expected /$2/, got: $3"
    fi
    step "ok: $1"
}

# the shared connection may still be connecting: a few tries
for _ in $(seq 50); do
    out=$(curl -s -d 'hi there' "$B/request/demo.echo" || true)
    [ "$out" = "echo: hi there" ] && break
    sleep 0.2
done
expect "request/reply (shared)" '^echo: hi there$' "$out"
expect "request/reply (pooled)" '^echo: hi there$' \
    "$(curl -s -d 'hi there' "$B/pooled/demo.echo")"
expect "publish" '^published to demo.events$' \
    "$(curl -s -d 'hello' "$B/publish/demo.events")"
for _ in $(seq 20); do
    out=$(curl -s "$B/last")
    grep -q hello <<< "$out" && break
    sleep 0.1
done
expect "the listener saw it (/last)" 'last: hello$' "$out"
expect "stats" '^state: connected$' "$(curl -s "$B/stats")"
expect "service endpoint" '^9$' "$(curl -s -d '2 3 4' "$B/svc/demo.calc.sum")"
expect "services list" 'demo-calc' "$(curl -s "$B/services")"
expect "files PUT" '"size": ?[0-9]+' \
    "$(curl -s -T README.md "$B/files/readme.md")"
expect "files GET" "^$(sha256sum < README.md | cut -c1-64)\$" \
    "$(curl -s "$B/files/readme.md" | sha256sum | cut -c1-64)"
expect "files Range" '^206 100$' \
    "$(curl -s -r 0-99 -o /dev/null -w '%{http_code} %{size_download}' "$B/files/readme.md")"
expect "files PUT, chunked (curl -T -)" "\"size\": ?$(stat -c %s README.md)[,}]" \
    "$(curl -s -T - "$B/files/piped.md" < README.md)"
expect "files list" 'readme.md' "$(curl -s "$B/files/")"

# Ctrl-C
kill -INT -- "-$pid"
for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "run.sh still runs 10 s after SIGINT"
for _ in $(seq 50); do
    port_open "$HTTP_PORT" || port_open "$NATS_PORT" || break
    sleep 0.1
done
port_open "$HTTP_PORT" && fail "nginx still listens after SIGINT"
port_open "$NATS_PORT" && fail "nats-server still listens after SIGINT"
step "ok: Ctrl-C stopped nginx and nats-server"
step "PASS"
