#!/usr/bin/env bash
# Installs every Debian 12 package lua-resty-nats needs to build, test and run.
# Idempotent: does nothing when everything is already installed.
# Never starts the system nginx (policy-rc.d blocks service starts while we install).
# Also installs puppeteer-core (npm, pinned in t/browser/package-lock.json)
# into t/browser/node_modules for the browser test; it never downloads a
# browser (PUPPETEER_SKIP_DOWNLOAD): the test drives Debian's chromium.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)

PKGS=(
    build-essential cmake pkg-config dpkg-dev ca-certificates curl procps
    nginx nginx-dev libnginx-mod-http-lua libnginx-mod-http-ndk
    libnginx-mod-http-ndk-dev lua-resty-core lua-resty-lrucache lua-cjson
    debhelper libpcre3-dev libssl-dev zlib1g-dev
    luajit2 libluajit2-5.1-dev
    nats-server libnats-dev uuid-dev
    libgtest-dev libgmock-dev googletest libbenchmark-dev
    libtest-base-perl libipc-run-perl libtext-diff-perl libwww-perl
    liburi-perl libtest-longstring-perl liblist-moreutils-perl
    libhttp-message-perl libio-socket-ip-perl
    wrk time
    valgrind
    clang-14 libclang-rt-14-dev llvm-14
    lintian chromium fonts-dejavu-core
)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
            | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

# node and npm: Debian's, unless a node with its npm is there already (a
# NodeSource nodejs bundles npm and conflicts with Debian's npm package)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi

# t/browser/node_modules: as pinned by the lock file, when it differs
browser_modules() {
    local want have
    want=$(sed -n 's/.*"puppeteer-core": "\(.*\)".*/\1/p' \
           "$REPO/t/browser/package.json")
    have=$(sed -n 's/^  "version": "\(.*\)".*/\1/p' \
           "$REPO/t/browser/node_modules/puppeteer-core/package.json" \
           2>/dev/null || true)
    if [ -n "$want" ] && [ "$want" = "$have" ]; then
        return 0
    fi
    echo "deps: npm ci in t/browser (puppeteer-core $want)" >&2
    (cd "$REPO/t/browser" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit \
        --no-fund --loglevel=error </dev/null >/dev/null)
}

if [ "${#missing[@]}" -eq 0 ]; then
    browser_modules
    exit 0
fi

echo "deps: installing ${missing[*]}" >&2
SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# a system nginx must never hold port 80 for our tests
if command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
fi

browser_modules
