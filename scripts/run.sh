#!/usr/bin/env bash
# Installs what is missing, builds, and runs a local nats-server plus nginx
# with examples/nginx.conf (an HTTP -> NATS publish and request/reply
# gateway on the workers' shared connections, a responder, a live feed
# over Server-Sent Events, and a file server on a JetStream object store)
# in the foreground. Ctrl-C stops both.
#
# NATS_PORT and HTTP_PORT choose the ports (default 4222 and 8080, or a
# free port when that one is taken).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

. "$REPO/scripts/proc-lib.sh"
pick() {
    if port_open "$1"; then free_port; else echo "$1"; fi
}

NATS_PORT=${NATS_PORT:-$(pick 4222)}
HTTP_PORT=${HTTP_PORT:-$(pick 8080)}

P="$REPO/build/demo"
mkdir -p "$P/logs" "$P/conf"
sed -e "s|@MODULES@|$REPO/build/modules|g" -e "s|@REPO@|$REPO|g" \
    -e "s|@NATS_PORT@|$NATS_PORT|g" -e "s|@HTTP_PORT@|$HTTP_PORT|g" \
    examples/nginx.conf > "$P/conf/nginx.conf"

nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$P/jetstream" \
    -l "$P/logs/nats.log" &
nats_pid=$!
trap 'kill "$nats_pid" 2>/dev/null; wait "$nats_pid" 2>/dev/null' EXIT
for _ in $(seq 50); do
    port_open "$NATS_PORT" && break
    sleep 0.1
done

cat <<MSG
nats-server on 127.0.0.1:$NATS_PORT, nginx on 127.0.0.1:$HTTP_PORT
(logs in $P/logs). Try:

  curl -d 'hello' http://127.0.0.1:$HTTP_PORT/publish/demo.events
  curl http://127.0.0.1:$HTTP_PORT/last
  curl -d 'hi there' http://127.0.0.1:$HTTP_PORT/request/demo.echo
  curl -d 'hi there' http://127.0.0.1:$HTTP_PORT/pooled/demo.echo
  curl http://127.0.0.1:$HTTP_PORT/stats

Live feed: open http://127.0.0.1:$HTTP_PORT/ in a browser, or
  curl -N 'http://127.0.0.1:$HTTP_PORT/events?topic=news'
  curl -d 'breaking' 'http://127.0.0.1:$HTTP_PORT/feed?topic=news'

The same feed kept in a JetStream stream (resumes with Last-Event-ID):
  curl -N -H 'Last-Event-ID: 0' 'http://127.0.0.1:$HTTP_PORT/durable/events?topic=news'
  curl -d 'kept' 'http://127.0.0.1:$HTTP_PORT/durable/feed?topic=news'

Services (each worker an instance of demo-calc; discovery by \$SRV.PING):
  curl http://127.0.0.1:$HTTP_PORT/services
  curl -d '2 3 4' http://127.0.0.1:$HTTP_PORT/svc/demo.calc.sum
  curl -i -d 'none' http://127.0.0.1:$HTTP_PORT/svc/demo.calc.sum

Files (a JetStream object store, streamed through nginx):
  curl -T README.md http://127.0.0.1:$HTTP_PORT/files/readme.md
  curl -i http://127.0.0.1:$HTTP_PORT/files/readme.md
  curl -r 0-99 http://127.0.0.1:$HTTP_PORT/files/readme.md
  curl http://127.0.0.1:$HTTP_PORT/files/

Ctrl-C stops nginx and nats-server.
MSG

/usr/sbin/nginx -p "$P" -c conf/nginx.conf -e logs/error.log \
    -g 'daemon off; master_process on;'
