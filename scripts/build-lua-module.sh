#!/usr/bin/env bash
# Builds Debian 12's lua-nginx-module (libnginx-mod-http-lua 0.10.23) with
# our setkeepalive_nats patch, against Debian's nginx-dev tree and the way
# the Debian package builds it (debian/rules + debhelper's nginx_mod), and
# installs it as OUTDIR/ngx_http_lua_module.so.
#
#   build-lua-module.sh OUTDIR WORKDIR
#
# - APT: adds deb-src to /etc/apt/sources.list.d/debian.sources when no
#   deb-src entry exists; installs the missing build packages (never
#   starting a service). No other system file is touched: nginx's tree is
#   copied into WORKDIR, the system lua module stays as it is (OUTDIR/stock/
#   links to it).
# - Incremental: the source is fetched and configured once; a changed patch
#   is swapped in (the old one reversed), so make recompiles only what it
#   touches. WORKDIR/patch.stamp holds the sha256 of the applied patch.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: build-lua-module.sh OUTDIR WORKDIR" >&2
    exit 2
fi

OUT=$(realpath -m "$1")
W=$(realpath -m "$2")
REPO=$(cd "$(dirname "$0")/.." && pwd)
PATCH=$REPO/patches/lua-nginx-module-socket_tcp_nats_keepalive.patch
SRC=/usr/share/nginx/src
NDK=/usr/share/nginx-ndk/src
PKG=libnginx-mod-http-lua

log() { echo "build-lua-module: $*" >&2; }
die() { log "$*"; exit 1; }

. "$REPO/scripts/apt-lib.sh"

# 1. tools and the trees we build against
apt_ensure dpkg-dev nginx-dev libnginx-mod-http-ndk-dev
[ -f "$SRC/conf_flags" ] || die "$SRC/conf_flags not found (nginx-dev)"
[ -f "$NDK/config" ] || die "$NDK not found (libnginx-mod-http-ndk-dev)"
[ -f "$PATCH" ] || die "$PATCH not found"

mkdir -p "$W" "$OUT"
want_patch=$(sha256sum "$PATCH" | cut -d' ' -f1)

# 2. Debian's source package, Debian patches applied
lua_src() {
    find "$W" -mindepth 1 -maxdepth 1 -type d -name "$PKG-*" | sort | tail -n 1
}

fetch_source() {
    ensure_deb_src "$PKG"
    rm -rf "$W/$PKG"-[0-9]* "$W/$PKG"_*
    (cd "$W" && apt-get source -qq "$PKG" >"$W/source.log" 2>&1) \
        || { tail -n 20 "$W/source.log" >&2; die "apt-get source $PKG failed"; }
}

src=$(lua_src)
if [ -z "$src" ] || [ ! -f "$src/config" ]; then
    log "fetching the $PKG source"
    fetch_source
    # a fresh tree has old timestamps: build it from scratch
    rm -f "$W/patch.stamp" "$W/applied.patch" "$W/configure.stamp"
    src=$(lua_src)
    [ -n "$src" ] || die "no $PKG source in $W"
fi

# build dependencies (debian/control): build-dep only when some are missing
if ! (cd "$src" && dpkg-checkbuilddeps >/dev/null 2>&1); then
    log "installing the build dependencies of $PKG"
    apt_update
    apt_run build-dep -y -qq "$PKG" >/dev/null
fi

# 3. our patch: swap the applied one for the current one when it changed
patched_files() {
    sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$@" | sort -u
}

have_patch=$(cat "$W/patch.stamp" 2>/dev/null || true)
if [ "$have_patch" != "$want_patch" ]; then
    # files the swap leaves as they were keep their time (no needless rebuild)
    rm -rf "$W/keep" && mkdir -p "$W/keep"
    if [ -f "$W/applied.patch" ]; then
        for f in $(patched_files "$W/applied.patch" "$PATCH"); do
            if [ -f "$src/$f" ]; then
                mkdir -p "$W/keep/$(dirname "$f")"
                cp -p "$src/$f" "$W/keep/$f"
            fi
        done
    fi
    if [ -f "$W/applied.patch" ] \
            && ! (cd "$src" && patch -p1 -R -s --no-backup-if-mismatch \
                  < "$W/applied.patch"); then
        log "cannot reverse the old patch: extracting the source again"
        rm -rf "$src"
        (cd "$W" && dpkg-source -x -q "$W/$PKG"_*.dsc >"$W/source.log" 2>&1) \
            || fetch_source
        src=$(lua_src)
        rm -f "$W/configure.stamp"
    fi
    rm -f "$W/patch.stamp" "$W/applied.patch"
    (cd "$src" && patch -p1 -s --no-backup-if-mismatch < "$PATCH") \
        || die "$PATCH does not apply to $src"
    cp "$PATCH" "$W/applied.patch"
    (cd "$W/keep" && find . -type f) | while read -r f; do
        if cmp -s "$W/keep/$f" "$src/$f"; then
            touch -r "$W/keep/$f" "$src/$f"
        fi
    done
    rm -rf "$W/keep"
    echo "$want_patch" > "$W/patch.stamp"
fi

# 4. the environment debian/rules and debhelper give the build
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
export DEB_CFLAGS_MAINT_APPEND='-DLUA_DEFAULT_PATH=\"/usr/share/lua/5.1/\?.lua\;\"'
export DEB_LDFLAGS_MAINT_APPEND=-lpcre
export LUAJIT_INC=/usr/include/luajit-2.1
LUAJIT_LIB=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/libluajit-5.1.so
export LUAJIT_LIB
# exported as dh does: nginx then uses them instead of its own -Werror set
for v in CFLAGS CPPFLAGS LDFLAGS; do
    export "$v=$(cd "$src" && dpkg-buildflags --get "$v")"
done

# configure again only when the nginx tree, the flags or the source moved
stamp="$W/configure.stamp"
want=$(cat "$SRC/conf_flags" "$SRC/src/core/nginx.h" "$NDK/config" \
       <(echo "$src $CFLAGS $CPPFLAGS $LDFLAGS $LUAJIT_LIB") \
       | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] \
        || [ ! -f "$W/objs/Makefile" ]; then
    log "configuring"
    rm -rf "$W/nginx-src" "$W/objs"
    cp -a "$SRC" "$W/nginx-src"
    (
        cd "$W/nginx-src"
        . ./conf_flags
        ./configure \
            --with-cc-opt="$CFLAGS -fPIC $CPPFLAGS" \
            --with-ld-opt="$LDFLAGS -fPIC" \
            "${NGX_CONF_FLAGS[@]}" \
            --add-dynamic-module="$src" --builddir="$W/objs" \
            --add-module="$NDK" \
            > "$W/configure.log" 2>&1 \
            || { tail -n 30 "$W/configure.log" >&2; exit 1; }
    )
    echo "$want" > "$stamp"
fi

# 5. build (make's own timestamps make it incremental)
jobs=$(nproc 2>/dev/null || echo 1)
(cd "$W/nginx-src" && MAKEFLAGS= make -s -j"$jobs" -f "$W/objs/Makefile" \
    modules >"$W/make.log" 2>&1) \
    || { tail -n 30 "$W/make.log" >&2; die "make modules failed"; }

so="$W/objs/ngx_http_lua_module.so"
sig_mod=$(strings "$so" | grep -E '^[0-9],[0-9],[0-9],[01]{34}$' | head -1)
sig_ngx=$(strings /usr/sbin/nginx | grep -E '^[0-9],[0-9],[0-9],[01]{34}$' | head -1)
if [ "$sig_mod" != "$sig_ngx" ]; then
    die "module signature $sig_mod differs from nginx's $sig_ngx"
fi
grep -q setkeepalive_nats "$so" || die "$so lacks setkeepalive_nats"

# 6. install: the patched module replaces a symlink to the system one; the
# stock module stays where it is, linked from OUTDIR/stock/
if [ -L "$OUT/ngx_http_lua_module.so" ]; then
    rm -f "$OUT/ngx_http_lua_module.so"
fi
if ! cmp -s "$so" "$OUT/ngx_http_lua_module.so"; then
    install -m 0644 "$so" "$OUT/ngx_http_lua_module.so.tmp"
    mv -f "$OUT/ngx_http_lua_module.so.tmp" "$OUT/ngx_http_lua_module.so"
fi
mkdir -p "$OUT/stock"
ln -sfn /usr/lib/nginx/modules/ngx_http_lua_module.so \
    "$OUT/stock/ngx_http_lua_module.so"
if [ ! -e "$OUT/ndk_http_module.so" ]; then
    ln -sfn /usr/lib/nginx/modules/ndk_http_module.so "$OUT/ndk_http_module.so"
fi
