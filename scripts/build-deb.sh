#!/usr/bin/env bash
# Builds the Debian package libnginx-mod-http-lua-nats from this checkout
# with Debian's own tools (dpkg-buildpackage, debhelper's nginx_mod build
# system and dh_nginx from nginx-dev), in a copy of the tracked files under
# OUTDIR (default build/deb), so that the checkout gets no build leftovers.
#
#   build-deb.sh [OUTDIR]
#
# Prints the path of the .deb on stdout; the build log is OUTDIR/build.log.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(realpath -m "${1:-$REPO/build/deb}")

# the package's version is the project's (CMakeLists.txt's project())
want=$(sed -n 's/^project(lua_resty_nats VERSION \([0-9.]*\).*/\1/p' \
       "$REPO/CMakeLists.txt")
have=$(cd "$REPO" && dpkg-parsechangelog -S Version)
if [ -z "$want" ] || [ "$want" != "$have" ]; then
    echo "build-deb.sh: debian/changelog says $have, CMakeLists.txt's" \
         "project() says ${want:-nothing}: add a changelog entry" >&2
    exit 1
fi

rm -rf "$OUT"
mkdir -p "$OUT/src"
# the tracked files as they are in the work tree (edits included)
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do
          if [ -e "$f" ]; then printf '%s\0' "$f"; fi
      done | xargs -0 cp -a --parents -t "$OUT/src")
for f in debian/rules debian/control config src/ngx_http_lua_nats_module.c; do
    if [ ! -e "$OUT/src/$f" ]; then
        echo "build-deb.sh: $f missing from the copy in $OUT/src" >&2
        exit 1
    fi
done

if ! (cd "$OUT/src" && dpkg-buildpackage -b -us -uc -j"$(nproc)") \
        > "$OUT/build.log" 2>&1; then
    tail -n 40 "$OUT/build.log" >&2
    echo "build-deb.sh: dpkg-buildpackage failed (log: $OUT/build.log)" >&2
    exit 1
fi

deb=$(ls "$OUT"/libnginx-mod-http-lua-nats_"$have"_*.deb 2>/dev/null | head -1)
if [ -z "$deb" ]; then
    echo "build-deb.sh: no .deb in $OUT (log: $OUT/build.log)" >&2
    exit 1
fi
echo "$deb"
