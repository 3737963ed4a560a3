#!/usr/bin/env bash
# Builds nginx from a source tree with ngx_devel_kit, lua-nginx-module
# (patched with setkeepalive_nats) and this module, in one configure: the
# steps of the README's "OpenResty or nginx built from source" section.
#
#   build-nginx.sh [options] SRC [-- CONFIGURE_ARGS...]
#
# SRC is either
# - a plain nginx source tree (./configure and auto/): --lua and --ndk name
#   the lua-nginx-module and ngx_devel_kit sources; LUAJIT_LIB (the
#   directory of libluajit-5.1.so) and LUAJIT_INC (that of luajit.h) say
#   where LuaJIT is (pkg-config luajit when unset); or
# - an OpenResty source tree (bundle/): NDK and lua-nginx-module are the
#   bundled ones, compiled in as OpenResty always does; --static/--dynamic
#   then applies to this module only.
#
# Options:
#   --dynamic        NDK, lua and this module as .so modules (default);
#                    load them in that order (load_module)
#   --static         all three compiled into the binary (--add-module)
#   --lua DIR        lua-nginx-module source (plain nginx)
#   --ndk DIR        ngx_devel_kit source (plain nginx)
#   --builddir DIR   nginx's objs directory (plain nginx; default SRC/objs)
#   --no-patch       leave lua-nginx-module unpatched (stock pool only)
#   -j N             make jobs (default: the number of CPUs)
#   --configure-only configure, do not make
#
# CONFIGURE_ARGS go to ./configure as they are (--prefix, --with-*, ...).
#
# The lua module is patched in place with
# patches/lua-nginx-module-socket_tcp_nats_keepalive.patch, unless it has
# setkeepalive_nats already. lua-nginx-module before 0.10.26 speaks PCRE1
# only: with such a module nginx is configured --without-pcre2 (when it
# knows that switch and CONFIGURE_ARGS do not choose a PCRE).
#
# The protocol core: $RESTY_NATS_CORE_LIB, or built here with CMake into
# build/core/ (no GoogleTest needed).
#
# Incremental: configure runs again only when its arguments or environment
# changed (a stamp in the build directory); make does the rest. The binary
# or module is relinked when the core library is newer.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PATCH=$REPO/patches/lua-nginx-module-socket_tcp_nats_keepalive.patch

log() { echo "build-nginx: $*" >&2; }
die() { log "$*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

mode=dynamic lua= ndk= builddir= do_patch=1 jobs= make=1 src=
while [ "$#" -gt 0 ]; do
    case "$1" in
        --dynamic) mode=dynamic ;;
        --static) mode=static ;;
        --lua) lua=${2:?--lua needs a directory}; shift ;;
        --ndk) ndk=${2:?--ndk needs a directory}; shift ;;
        --builddir) builddir=${2:?--builddir needs a directory}; shift ;;
        --no-patch) do_patch=0 ;;
        -j) jobs=${2:?-j needs a number}; shift ;;
        -j[0-9]*) jobs=${1#-j} ;;
        --configure-only) make=0 ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) log "unknown option $1"; usage ;;
        *) [ -z "$src" ] || usage; src=$1 ;;
    esac
    shift
done
[ -n "$src" ] || usage
extra=("$@")
jobs=${jobs:-$(nproc 2>/dev/null || echo 1)}

src=$(realpath "$src")
[ -x "$src/configure" ] || die "$src has no ./configure"
openresty=0
if [ -d "$src/bundle" ]; then
    openresty=1
    [ -z "$lua$ndk$builddir" ] \
        || die "OpenResty tree: --lua, --ndk and --builddir do not apply"
    lua=$(find "$src/bundle" -mindepth 1 -maxdepth 1 -type d \
          -name 'ngx_lua-*' | sort | tail -n 1)
    [ -n "$lua" ] || die "no bundle/ngx_lua-* in $src"
else
    [ -f "$src/auto/options" ] || die "$src is no nginx source tree"
    [ -n "$lua" ] && [ -n "$ndk" ] \
        || die "plain nginx needs --lua DIR and --ndk DIR"
    lua=$(realpath "$lua")
    ndk=$(realpath "$ndk")
    [ -f "$ndk/config" ] || die "$ndk is no ngx_devel_kit source"
    builddir=$(realpath -m "${builddir:-$src/objs}")
fi
[ -f "$lua/config" ] && [ -f "$lua/src/ngx_http_lua_socket_tcp.c" ] \
    || die "$lua is no lua-nginx-module source"

# 1. the lua module: its version, the patch
lua_version=$(sed -n 's/^#define[[:space:]]*ngx_http_lua_version[[:space:]]*\([0-9]*\).*/\1/p' \
              "$lua/src/api/ngx_http_lua_api.h")
[ -n "$lua_version" ] || die "no ngx_http_lua_version in $lua"
log "lua-nginx-module $((lua_version / 1000000)).$((lua_version / 1000 % 1000)).$((lua_version % 1000)) in $lua"
if grep -q setkeepalive_nats "$lua/src/ngx_http_lua_socket_tcp.c"; then
    log "lua-nginx-module has setkeepalive_nats already"
elif [ "$do_patch" = 1 ]; then
    (cd "$lua" && patch -p1 -s --forward --dry-run < "$PATCH" >/dev/null) \
        || die "$PATCH does not apply to $lua"
    (cd "$lua" && patch -p1 -s --forward --no-backup-if-mismatch < "$PATCH")
    log "patched $lua (setkeepalive_nats)"
else
    log "--no-patch: the lua module keeps the stock cosocket pool"
fi

# 2. the protocol core
if [ -z "${RESTY_NATS_CORE_LIB:-}" ]; then
    core=$REPO/build/core
    log "building the protocol core in $core"
    cmake -S "$REPO" -B "$core" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DRESTY_NATS_BUILD_TESTS=OFF -DRESTY_NATS_BUILD_MODULE=OFF >/dev/null
    cmake --build "$core" --target resty_nats_core -j"$jobs" >/dev/null
    RESTY_NATS_CORE_LIB=$core/libresty_nats_core.a
fi
RESTY_NATS_CORE_LIB=$(realpath "$RESTY_NATS_CORE_LIB")
export RESTY_NATS_CORE_LIB

# 3. configure arguments
args=()
if [ "$openresty" = 1 ]; then
    if [ "$mode" = static ]; then
        args+=(--add-module="$REPO")
    else
        args+=(--add-dynamic-module="$REPO")
    fi
    args+=(-j"$jobs")
else
    if [ -z "${LUAJIT_LIB:-}" ] || [ -z "${LUAJIT_INC:-}" ]; then
        pkg-config --exists luajit 2>/dev/null \
            || die "set LUAJIT_LIB and LUAJIT_INC (no pkg-config luajit)"
        LUAJIT_LIB=${LUAJIT_LIB:-$(pkg-config --variable=libdir luajit)}
        LUAJIT_INC=${LUAJIT_INC:-$(pkg-config --variable=includedir luajit)}
    fi
    [ -f "$LUAJIT_INC/luajit.h" ] || die "no luajit.h in LUAJIT_INC=$LUAJIT_INC"
    export LUAJIT_LIB LUAJIT_INC
    log "LuaJIT: LUAJIT_LIB=$LUAJIT_LIB LUAJIT_INC=$LUAJIT_INC"
    if [ "$mode" = static ]; then
        add=--add-module
    else
        add=--add-dynamic-module
    fi
    args+=("$add=$ndk" "$add=$lua" "$add=$REPO" --builddir="$builddir")
    # PCRE1-only lua modules (before 0.10.26) with an nginx that would
    # pick PCRE2
    if [ "$lua_version" -lt 10026 ] \
            && grep -q -- '--without-pcre2' "$src/auto/options" \
            && ! printf '%s\n' "${extra[@]}" \
                 | grep -qE '^--(with-pcre=|without-pcre)'; then
        log "lua-nginx-module < 0.10.26 uses PCRE1: adding --without-pcre2"
        args+=(--without-pcre2)
    fi
fi
args+=("${extra[@]}")

# 4. configure, when anything it depends on changed
if [ "$openresty" = 1 ]; then
    stampdir=$src/build
    made=$src/build
else
    stampdir=$builddir
    made=$builddir/Makefile
fi
stamp=$stampdir/resty-nats-configure.stamp
want=$( { printf '%s\n' "$mode" "${args[@]}" "${LUAJIT_LIB:-}" \
          "${LUAJIT_INC:-}" "${CFLAGS:-}" "${LDFLAGS:-}" "$RESTY_NATS_CORE_LIB"
          cat "$REPO/config"; } | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -e "$made" ]; then
    log "configuring: ./configure ${args[*]}"
    (cd "$src" && ./configure "${args[@]}") > "$src/resty-nats-configure.log" 2>&1 \
        || { tail -n 30 "$src/resty-nats-configure.log" >&2
             die "configure failed (log: $src/resty-nats-configure.log)"; }
    mkdir -p "$stampdir"
    echo "$want" > "$stamp"
else
    log "configured already (same arguments)"
fi
[ "$make" = 1 ] || exit 0

# 5. make; relink what embeds the core when the library is newer
if [ "$openresty" = 1 ]; then
    objs=$(find "$src/build" -mindepth 2 -maxdepth 2 -type d -name objs \
           -path '*/nginx-*' | head -n 1)
else
    objs=$builddir
fi
if [ -n "$objs" ]; then
    for f in "$objs/nginx" "$objs/ngx_http_lua_nats_module.so"; do
        if [ -f "$f" ] && [ "$RESTY_NATS_CORE_LIB" -nt "$f" ]; then
            rm -f "$f"
        fi
    done
fi
if [ "$openresty" = 1 ]; then
    mk=()
else
    mk=(-f "$builddir/Makefile")    # the top Makefile names the last builddir
fi
log "make -j$jobs"
(cd "$src" && MAKEFLAGS= make -j"$jobs" "${mk[@]}") > "$src/resty-nats-make.log" 2>&1 \
    || { grep -E ': error:|\*\*\*' "$src/resty-nats-make.log" | head -n 20 >&2
         tail -n 10 "$src/resty-nats-make.log" >&2
         die "make failed (log: $src/resty-nats-make.log)"; }

if [ "$openresty" = 1 ]; then
    objs=$(find "$src/build" -mindepth 2 -maxdepth 2 -type d -name objs \
           -path '*/nginx-*' | head -n 1)
fi
log "built $objs/nginx"
for m in ndk_http_module ngx_http_lua_module ngx_http_lua_nats_module; do
    if [ -f "$objs/$m.so" ]; then
        log "module $objs/$m.so"
    fi
done
