# shellcheck shell=bash
# Ports and processes, shared by scripts/run.sh, test-browser.sh,
# test-package.sh and bench/common.sh (sourced, not run).
# Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.

# a free loopback TCP port (the kernel's pick)
free_port() {
    perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1,
        LocalAddr => "127.0.0.1", LocalPort => 0)->sockport, "\n"'
}

# port_open PORT: something listens on 127.0.0.1:PORT
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# stop_gracefully PID [TENTHS]: QUIT (nginx's graceful stop), then KILL
# after TENTHS tenths of a second (50) if it still runs
stop_gracefully() {
    kill -QUIT "$1" 2>/dev/null || return 0
    for _ in $(seq "${2:-50}"); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
}
