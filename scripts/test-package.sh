#!/usr/bin/env bash
# The Debian package, end to end, on this machine's nginx:
#
#  1. builds libnginx-mod-http-lua-nats (scripts/build-deb.sh, in build/deb/)
#     and runs lintian on it: any error fails;
#  2. installs it with apt-get, checks its files and the modules-enabled
#     link, and runs `nginx -t` on the system's own configuration;
#  3. starts a nats-server and an nginx of its own (free ports, a prefix
#     under build/) whose nginx.conf uses only what the package installed:
#     /etc/nginx/modules-enabled/ for load_module, no lua_package_path
#     (Debian's default, /usr/share/lua/5.1), and checks a publish, a
#     request/reply on the workers' shared connection, a request over a
#     per-request connection, and a request answered by a libnats peer;
#  4. purges the package and checks that the machine is as it was: the
#     same files under /etc/nginx, /usr/lib/nginx/modules,
#     /usr/share/nginx/modules-available and /usr/share/lua/5.1, the same
#     installed packages, and `nginx -t` still passes.
#
# Needs root (or sudo). Refuses to run when the package is installed
# already (it would be purged at the end). RESTY_NATS_BUILD_DIR: the CMake
# build directory (default build/), for the libnats peer t/nats_peer.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
. "$REPO/scripts/proc-lib.sh"
BUILD=$(realpath -m "${RESTY_NATS_BUILD_DIR:-$REPO/build}")
OUT="$BUILD/deb"
PKG=libnginx-mod-http-lua-nats
W="$BUILD/package-test"

SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

fail() {
    echo "test-package: FAIL: $*" >&2
    exit 1
}
step() {
    echo "test-package: $*" >&2
}

status=$(dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null || true)
case "$status" in
    "" | *" not-installed") ;;
    *) fail "$PKG is on this machine already ($status); this test installs" \
            "and purges it: remove it first (apt-get purge $PKG)" ;;
esac

# what must look the same after the purge
snapshot() {
    find /etc/nginx /usr/lib/nginx/modules /usr/share/nginx/modules-available \
         /usr/share/lua/5.1 -printf '%p -> %l\n' 2>/dev/null | sort
    echo "--- packages"
    dpkg-query -W -f='${Package} ${Version} ${Status}\n' | sort
}

installed=0
created_policy=0
nats_pid=
ngx_pid=
peer_pid=
cleanup() {
    local rc=$?
    if [ -n "$ngx_pid" ]; then
        stop_gracefully "$ngx_pid"
    fi
    for p in $peer_pid $nats_pid; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ "$installed" = 1 ]; then
        step "cleanup: purging $PKG"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq \
            -o DPkg::Lock::Timeout=300 "$PKG" >/dev/null 2>&1 || true
    fi
    if [ "$created_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port PORT WHAT PID
wait_port() {
    for _ in $(seq 100); do
        if port_open "$1"; then return 0; fi
        kill -0 "$3" 2>/dev/null || fail "$2 exited"
        sleep 0.1
    done
    fail "nothing listens on port $1 after 10 s ($2)"
}
# expect WHAT EXPECTED ACTUAL
expect() {
    if [ "$2" != "$3" ]; then
        fail "$1: expected '$2', got '$3'"
    fi
    step "ok: $1"
}

# --- 1. build, lintian -----------------------------------------------------

t0=$SECONDS
step "building the package (scripts/build-deb.sh $OUT)"
deb=$(bash scripts/build-deb.sh "$OUT")
step "built $deb in $((SECONDS - t0)) s"

step "lintian $(basename "$deb")"
lintian --info --pedantic "$deb" \
    > "$OUT/lintian.txt" 2>&1 || true
sed 's/^/  lintian: /' "$OUT/lintian.txt" >&2
if grep -q '^E:' "$OUT/lintian.txt"; then
    fail "lintian reports errors (see above, and $OUT/lintian.txt)"
fi
# lintian itself must have run (an empty report from a crash is no pass)
lintian --fail-on error "$deb" >/dev/null 2>&1 \
    || fail "lintian --fail-on error $deb failed"
step "ok: lintian: $(grep -c '^E:' "$OUT/lintian.txt" || true) errors," \
     "$(grep -c '^W:' "$OUT/lintian.txt" || true) warnings"

# the load_module snippet must sort after ndk's and lua's
dpkg-deb -e "$deb" "$OUT/control"
enabled=$(grep -o 'mod-http-lua-nats.conf:[0-9]*-mod-http-lua-nats.conf' \
          "$OUT/control/postinst" | cut -d: -f2)
[ -n "$enabled" ] || fail "postinst does not enable mod-http-lua-nats.conf"
for dep in /etc/nginx/modules-enabled/*-mod-http-ndk.conf \
           /etc/nginx/modules-enabled/*-mod-http-lua.conf; do
    [ -e "$dep" ] || fail "$dep missing: is libnginx-mod-http-lua installed?"
    if [[ ! "$(basename "$dep")" < "$enabled" ]]; then
        fail "$enabled would load before $(basename "$dep")"
    fi
done
abi=$(sed -n 's/^nginx:abi=//p' /usr/share/nginx/src/debian/libnginx-mod.abisubstvars)
depends=$(dpkg-deb -f "$deb" Depends)
case ", $depends," in
    *", $abi,"*) step "ok: Depends has $abi" ;;
    *) fail "Depends ($depends) lacks $abi" ;;
esac

# --- 2. install ------------------------------------------------------------

before=$(snapshot)
$SUDO nginx -t -q || fail "the system's nginx -t fails before installing"

if [ ! -e /usr/sbin/policy-rc.d ]; then
    # no service (re)starts while we install: the trigger reloads nginx
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
fi

step "apt-get install $deb"
installed=1
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends -o DPkg::Lock::Timeout=300 "$deb" \
    > "$OUT/install.log" 2>&1 \
    || { cat "$OUT/install.log" >&2; fail "apt-get install $deb"; }

mapfile -t files < <(dpkg -L "$PKG" | while read -r f; do
    if [ -f "$f" ]; then echo "$f"; fi
done)
for f in /usr/lib/nginx/modules/ngx_http_lua_nats_module.so \
         /usr/share/nginx/modules-available/mod-http-lua-nats.conf \
         /usr/share/lua/5.1/resty/nats.lua \
         /usr/share/lua/5.1/resty/nats/core.lua \
         /usr/share/lua/5.1/resty/nats/shared.lua; do
    printf '%s\n' "${files[@]}" | grep -x "$f" >/dev/null || fail "$PKG lacks $f"
done
link="/etc/nginx/modules-enabled/$enabled"
expect "$link" /usr/share/nginx/modules-available/mod-http-lua-nats.conf \
    "$(readlink "$link" || true)"
expect "mod-http-lua-nats.conf" \
    "load_module modules/ngx_http_lua_nats_module.so;" \
    "$(cat /usr/share/nginx/modules-available/mod-http-lua-nats.conf)"

# every Lua file of the checkout is in the package, byte for byte
while read -r f; do
    cmp -s "$f" "/usr/share/lua/5.1/${f#lua/}" \
        || fail "/usr/share/lua/5.1/${f#lua/} differs from $f (or is missing)"
done < <(git ls-files 'lua/*.lua')
step "ok: the Lua files are under /usr/share/lua/5.1/resty/"

# the system's configuration loads it through modules-enabled
$SUDO nginx -t -q 2> "$OUT/nginx-t.log" \
    || { cat "$OUT/nginx-t.log" >&2; fail "nginx -t with $PKG installed"; }
dump=$($SUDO nginx -T 2>/dev/null) || fail "nginx -T"
grep -x 'load_module modules/ngx_http_lua_nats_module.so;' <<<"$dump" >/dev/null \
    || fail "nginx -T does not show the package's load_module line"
step "ok: nginx -t (system configuration, module loaded from modules-enabled)"

# --- 3. an nginx of its own on the package's files -------------------------

NATS_PORT=$(free_port)
HTTP_PORT=$(free_port)
rm -rf "$W"
mkdir -p "$W/logs" "$W/conf"
# load_module's relative paths, as under Debian's prefix /usr/share/nginx
ln -s /usr/lib/nginx/modules "$W/modules"

cat > "$W/conf/nginx.conf" <<CONF
# the package's load_module line, as the system's nginx.conf includes it
include /etc/nginx/modules-enabled/*.conf;

worker_processes 2;
error_log logs/error.log info;
pid logs/nginx.pid;
events { worker_connections 64; }

http {
    access_log off;
    default_type text/plain;
    # no lua_package_path: resty.nats must come from /usr/share/lua/5.1
    lua_shared_dict pkg 1m;

    init_worker_by_lua_block {
        local nats = require "resty.nats"
        local conn = assert(nats.shared("pkg", { port = $NATS_PORT }))
        assert(conn:subscribe("pkg.echo", function(msg)
            if msg.reply_to then
                conn:publish(msg.reply_to, "echo: " .. msg.payload)
            end
        end, { queue = "echo" }))
        assert(conn:subscribe("pkg.events", function(msg)
            ngx.shared.pkg:set("last", msg.payload)
            ngx.shared.pkg:incr("count", 1, 0)
        end, { queue = "events" }))
    }

    server {
        listen 127.0.0.1:$HTTP_PORT;

        location = /where {
            content_by_lua_block {
                ngx.say(package.searchpath("resty.nats", package.path))
                ngx.say(package.searchpath("resty.nats.core", package.path))
            }
        }

        location = /ready {
            content_by_lua_block {
                ngx.say(require("resty.nats").shared("pkg"):stats().state)
            }
        }

        location ~ ^/publish/(?<subject>[^/]+)\$ {
            content_by_lua_block {
                ngx.req.read_body()
                local conn = require("resty.nats").shared("pkg")
                local ok, err = conn:publish(ngx.var.subject,
                                             ngx.req.get_body_data() or "")
                ngx.status = ok and 202 or 502
                ngx.say(ok and "published" or err)
            }
        }

        location ~ ^/request/(?<subject>[^/]+)\$ {
            content_by_lua_block {
                ngx.req.read_body()
                local conn = require("resty.nats").shared("pkg")
                local msg, err = conn:request(ngx.var.subject,
                                              ngx.req.get_body_data() or "",
                                              { timeout = 3000 })
                ngx.status = msg and 200 or 502
                ngx.say(msg and msg.payload or err)
            }
        }

        location ~ ^/pooled/(?<subject>[^/]+)\$ {
            content_by_lua_block {
                ngx.req.read_body()
                local n = require("resty.nats"):new()
                n:set_timeout(3000)
                local ok, err = n:connect("127.0.0.1", $NATS_PORT)
                if not ok then
                    ngx.status = 502
                    return ngx.say("connect: ", err)
                end
                local msg
                msg, err = n:request(ngx.var.subject,
                                     ngx.req.get_body_data() or "")
                if not msg then
                    n:close()
                    ngx.status = 502
                    return ngx.say("request: ", err)
                end
                n:set_keepalive(10000, 8)
                ngx.say(msg.payload)
            }
        }

        location = /last {
            content_by_lua_block {
                ngx.say(ngx.shared.pkg:get("count") or 0, " ",
                        ngx.shared.pkg:get("last") or "none")
            }
        }
    }
}
CONF

nats-server -a 127.0.0.1 -p "$NATS_PORT" -l "$W/logs/nats.log" &
nats_pid=$!
wait_port "$NATS_PORT" nats-server "$nats_pid"

/usr/sbin/nginx -p "$W" -c conf/nginx.conf -e logs/error.log \
    -g 'daemon off; master_process on;' &
ngx_pid=$!
wait_port "$HTTP_PORT" "nginx (see $W/logs/error.log)" "$ngx_pid"

url="http://127.0.0.1:$HTTP_PORT"
where=$(curl -sS "$url/where")
expect "resty.nats found on the default path" \
    "/usr/share/lua/5.1/resty/nats.lua
/usr/share/lua/5.1/resty/nats/core.lua" "$where"

for _ in $(seq 100); do
    [ "$(curl -sS "$url/ready")" = connected ] && break
    sleep 0.1
done
expect "the shared connection is up" connected "$(curl -sS "$url/ready")"

body="package $$ $RANDOM"
expect "publish" published "$(curl -sS -d "$body" "$url/publish/pkg.events")"
last=
for _ in $(seq 50); do
    last=$(curl -sS "$url/last")
    [ "$last" = "1 $body" ] && break
    sleep 0.1
done
expect "the subscriber in nginx got the publish" "1 $body" "$last"

expect "request/reply (shared connection)" "echo: $body" \
    "$(curl -sS -d "$body" "$url/request/pkg.echo")"
expect "request/reply (per-request connection)" "echo: $body" \
    "$(curl -sS -d "$body" "$url/pooled/pkg.echo")"

peer="$BUILD/t/nats_peer"
if [ -x "$peer" ]; then
    "$peer" serve "nats://127.0.0.1:$NATS_PORT" &
    peer_pid=$!
    got=
    for _ in $(seq 50); do
        got=$(curl -sS -d "$body" "$url/request/interop.echo")
        [ "$got" = "$body" ] && break
        sleep 0.1
    done
    expect "request answered by libnats (nats_peer)" "$body" "$got"
    expect "request from libnats answered by nginx" "echo: from libnats" \
        "$("$peer" request "nats://127.0.0.1:$NATS_PORT" pkg.echo 'from libnats' 3000)"
else
    step "skipped the libnats checks: $peer not built"
fi

if grep -E '\[(alert|emerg|crit)\]|lua entry thread aborted' \
        "$W/logs/error.log" >&2; then
    fail "nginx's error log has the errors above"
fi

kill -QUIT "$ngx_pid"
wait "$ngx_pid" 2>/dev/null || true
ngx_pid=

# --- 4. purge: back as it was ----------------------------------------------

step "apt-get purge $PKG"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq \
    -o DPkg::Lock::Timeout=300 "$PKG" > "$OUT/purge.log" 2>&1 \
    || { cat "$OUT/purge.log" >&2; fail "apt-get purge $PKG"; }
installed=0
for f in "${files[@]}" "$link" "$link.removed"; do
    if [ -e "$f" ] || [ -L "$f" ]; then
        fail "$f is still there after the purge"
    fi
done
after=$(snapshot)
if [ "$before" != "$after" ]; then
    diff <(echo "$before") <(echo "$after") >&2 || true
    fail "the machine differs from before the install (diff above)"
fi
$SUDO nginx -t -q || fail "the system's nginx -t fails after the purge"
step "ok: purged; files, packages and nginx -t as before"

step "PASS in $((SECONDS - t0)) s"
