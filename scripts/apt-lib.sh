# shellcheck shell=bash
# APT helpers shared by the build scripts (sourced; the caller defines
# log and die). Nothing here starts a service: policy-rc.d blocks service
# starts while apt-get runs, as scripts/deps.sh does.

SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
SOURCES=/etc/apt/sources.list.d/debian.sources

apt_run() {
    local created=0 rc=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        created=1
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "$@" || rc=$?
    if [ "$created" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
    return "$rc"
}

apt_updated=0
apt_update() {
    if [ "$apt_updated" = 0 ]; then
        apt_run update -qq
        apt_updated=1
    fi
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# installs the packages given that are missing
apt_ensure() {
    local p missing=()
    for p in "$@"; do
        installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        apt_update
        apt_run install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

has_deb_src() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] && grep -qE '^[[:space:]]*deb-src[[:space:]]' "$f" && return 0
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && grep -qE '^Types:.*[[:space:]]deb-src' "$f" && return 0
    done
    return 1
}

# adds deb-src to debian.sources when no deb-src entry exists, and makes
# sure APT knows the source package given
ensure_deb_src() {  # package
    if ! has_deb_src; then
        [ -f "$SOURCES" ] || die "no deb-src entry and no $SOURCES"
        log "adding deb-src to $SOURCES"
        $SUDO sed -i 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb deb-src/' \
            "$SOURCES"
        has_deb_src || die "could not add deb-src to $SOURCES"
        apt_update
    fi
    if ! apt-cache showsrc "$1" 2>/dev/null | grep -q '^Package:'; then
        apt_update
    fi
}

# apt-get source PACKAGE into DIR (Debian patches applied): the newest
# version first, then the older ones APT lists (a mirror may lack the
# newest one's files); prints the version fetched
apt_source() {  # package dir
    local v
    ensure_deb_src "$1"
    for v in $(apt-cache showsrc "$1" 2>/dev/null \
               | sed -n 's/^Version: //p' | sort -urV); do
        mkdir -p "$2" && rm -rf "${2:?}"/*
        if (cd "$2" && apt-get source -q "$1=$v" > "$2.log" 2>&1); then
            echo "$v"
            return 0
        fi
        log "apt-get source $1=$v failed (log: $2.log)"
    done
    return 1
}
