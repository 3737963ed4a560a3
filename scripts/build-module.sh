#!/usr/bin/env bash
# Builds ngx_http_lua_nats_module.so against Debian's nginx-dev tree the way
# Debian builds its own dynamic modules (conf_flags + dpkg-buildflags), and
# fills the modules directory the tests load from.
#
#   build-module.sh WORKDIR OUTDIR
#
# RESTY_NATS_CORE_LIB: the core static library (set by CMake).
# The lua and ndk modules in OUTDIR are the system's, unless a patched
# ngx_http_lua_module.so was built there already (scripts/build-lua-module.sh).
set -euo pipefail

W=$(realpath -m "$1")
OUT=$(realpath -m "$2")
REPO=$(cd "$(dirname "$0")/.." && pwd)
SRC=/usr/share/nginx/src

: "${RESTY_NATS_CORE_LIB:?set RESTY_NATS_CORE_LIB to libresty_nats_core.a}"
export RESTY_NATS_CORE_LIB

if [ ! -f "$SRC/conf_flags" ]; then
    echo "build-module.sh: $SRC not found: apt-get install nginx-dev" >&2
    exit 1
fi

mkdir -p "$W" "$OUT"

# configure again only when the addon script, the nginx tree or the core
# library path changed
stamp="$W/configure.stamp"
want=$(cat "$REPO/config" "$SRC/conf_flags" /usr/share/nginx/src/src/core/nginx.h \
       <(echo "$RESTY_NATS_CORE_LIB") | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] \
        || [ ! -f "$W/objs/Makefile" ]; then
    rm -rf "$W/nginx-src" "$W/objs"
    cp -a "$SRC" "$W/nginx-src"
    (
        cd "$W/nginx-src"
        . ./conf_flags
        ./configure \
            --with-cc-opt="$(dpkg-buildflags --get CFLAGS) -fPIC $(dpkg-buildflags --get CPPFLAGS)" \
            --with-ld-opt="$(dpkg-buildflags --get LDFLAGS) -fPIC" \
            "${NGX_CONF_FLAGS[@]}" \
            --add-dynamic-module="$REPO" --builddir="$W/objs" \
            > "$W/configure.log" 2>&1 \
            || { tail -n 30 "$W/configure.log" >&2; exit 1; }
    )
    echo "$want" > "$stamp"
fi

# the core library is an input of the link step: relink when it changed
if [ "$RESTY_NATS_CORE_LIB" -nt "$W/objs/ngx_http_lua_nats_module.so" ]; then
    rm -f "$W/objs/ngx_http_lua_nats_module.so"
fi

(cd "$W/nginx-src" && MAKEFLAGS= make -s -f "$W/objs/Makefile" modules >/dev/null)

so="$W/objs/ngx_http_lua_nats_module.so"
sig_mod=$(strings "$so" | grep -E '^[0-9],[0-9],[0-9],[01]{34}$' | head -1)
sig_ngx=$(strings /usr/sbin/nginx | grep -E '^[0-9],[0-9],[0-9],[01]{34}$' | head -1)
if [ "$sig_mod" != "$sig_ngx" ]; then
    echo "build-module.sh: module signature $sig_mod differs from nginx's" \
         "$sig_ngx" >&2
    exit 1
fi
install -m 0644 "$so" "$OUT/ngx_http_lua_nats_module.so"

for m in ndk_http_module.so ngx_http_lua_module.so; do
    # a patched lua module built into OUTDIR is kept
    if [ ! -e "$OUT/$m" ] || [ -L "$OUT/$m" ]; then
        ln -sfn "/usr/lib/nginx/modules/$m" "$OUT/$m"
    fi
done
