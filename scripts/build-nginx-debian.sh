#!/usr/bin/env bash
# Builds nginx from Debian 12's sources with NDK, the patched lua module and
# this module compiled in (--add-module): the static, OpenResty-like layout
# the suites run against after Debian's packaged nginx (scripts/test.sh).
#
#   build-nginx-debian.sh WORKDIR        # the binary: WORKDIR/objs/nginx
#
# Sources: `apt-get source` of nginx, libnginx-mod-http-lua and
# libnginx-mod-http-ndk (Debian patches applied; a deb-src entry is added
# when none exists; libnginx-mod-http-ndk-dev has the headers only), LuaJIT
# from libluajit2-5.1-dev; the build itself is scripts/build-nginx.sh
# --static.
#
# Cached: the sources are fetched and configured once; they are fetched
# again (and everything rebuilt) only when an input changed: these scripts,
# the patch, `config`, the Debian versions. Otherwise make rebuilds what
# changed (the module's C file) and relinks when the core library
# ($RESTY_NATS_CORE_LIB, default build/libresty_nats_core.a) is newer.
set -euo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: build-nginx-debian.sh WORKDIR" >&2
    exit 2
fi
W=$(realpath -m "$1")
REPO=$(cd "$(dirname "$0")/.." && pwd)

log() { echo "build-nginx-debian: $*" >&2; }
die() { log "$*"; exit 1; }

. "$REPO/scripts/apt-lib.sh"

start=$(date +%s)
apt_ensure dpkg-dev libluajit2-5.1-dev libpcre3-dev libssl-dev zlib1g-dev

export RESTY_NATS_CORE_LIB=${RESTY_NATS_CORE_LIB:-$REPO/build/libresty_nats_core.a}
[ -f "$RESTY_NATS_CORE_LIB" ] \
    || die "$RESTY_NATS_CORE_LIB not found: build the core first (cmake)"

# 1. the sources, fetched again when an input changed
ensure_deb_src nginx
ensure_deb_src libnginx-mod-http-lua
ensure_deb_src libnginx-mod-http-ndk
want=$( { cat "$0" "$REPO/scripts/build-nginx.sh" "$REPO/scripts/apt-lib.sh" \
              "$REPO/patches/lua-nginx-module-socket_tcp_nats_keepalive.patch" \
              "$REPO/config"
          apt-cache showsrc nginx libnginx-mod-http-lua libnginx-mod-http-ndk \
              | grep -E '^(Package|Version):'
          dpkg-query -W libluajit2-5.1-dev
        } | sha256sum | cut -d' ' -f1)
stamp=$W/sources.stamp
src_dir() {  # dir pattern
    find "$1" -mindepth 1 -maxdepth 1 -type d -name "$2" 2>/dev/null \
        | sort | tail -n 1
}
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "fetching the sources into $W/src"
    rm -rf "$W"
    mkdir -p "$W/src/nginx" "$W/src/lua" "$W/src/ndk"
    if v=$(apt_source nginx "$W/src/nginx"); then
        log "nginx source $v"
    else
        # nginx-dev's tree is Debian's nginx source too, patched
        log "apt-get source nginx failed: using nginx-dev's /usr/share/nginx/src"
        apt_ensure nginx-dev
        cp -a /usr/share/nginx/src "$W/src/nginx/nginx-dev"
        rm -f "$W/src/nginx/nginx-dev/Makefile"
    fi
    v=$(apt_source libnginx-mod-http-lua "$W/src/lua") \
        || die "apt-get source libnginx-mod-http-lua failed"
    log "libnginx-mod-http-lua source $v"
    v=$(apt_source libnginx-mod-http-ndk "$W/src/ndk") \
        || die "apt-get source libnginx-mod-http-ndk failed"
    log "libnginx-mod-http-ndk source $v"
    echo "$want" > "$stamp"
fi
nginx=$(src_dir "$W/src/nginx" 'nginx*')
lua=$(src_dir "$W/src/lua" 'libnginx-mod-http-lua-*')
ndk=$(src_dir "$W/src/ndk" 'libnginx-mod-http-ndk-*')
[ -n "$nginx" ] && [ -x "$nginx/configure" ] || die "no nginx source in $W/src/nginx"
[ -n "$lua" ] || die "no lua module source in $W/src/lua"
[ -n "$ndk" ] && [ -f "$ndk/src/ndk.c" ] || die "no NDK source in $W/src/ndk"

# 2. build: everything compiled in; what the suites need (TLS cosockets)
LUAJIT_LIB=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)
export LUAJIT_LIB LUAJIT_INC=/usr/include/luajit-2.1
bash "$REPO/scripts/build-nginx.sh" --static --lua "$lua" --ndk "$ndk" \
    --builddir "$W/objs" -j "${RESTY_NATS_JOBS:-$(nproc 2>/dev/null || echo 1)}" \
    "$nginx" -- \
    --prefix="$W/prefix" --with-cc-opt="-g -O2" \
    --with-http_ssl_module --with-pcre-jit --with-threads

bin=$W/objs/nginx
"$bin" -V >/dev/null 2>&1 || die "$bin -V failed"
nm -D --defined-only "$bin" | grep -q ' resty_nats_parser_new$' \
    || die "$bin does not export the resty_nats_* ABI"
log "$bin ready ($(( $(date +%s) - start )) s)"
