#!/usr/bin/env bash
# scripts/demo-run.sh DIR [TRUSTGATE_BINARY]: runs a demo world made by
# `trustgate demo DIR [--port N]` (what `make run` does).
#
# Starts the CAs' own `openssl ocsp -index` responders listed in
# DIR/upstreams.txt ("PORT<TAB>command line relative to DIR", one per line)
# in the background, in DIR, each logging to DIR/upstream-PORT.log; waits
# (5 s at most) until every port accepts connections; then runs
# `trustgate serve -c DIR/trustgate.ini`. SIGINT and SIGTERM are forwarded
# to trustgate; when it exits (or when start-up fails) the responders this
# script started are stopped, by PID. Exits with trustgate's status (1 when
# start-up failed, 2 on a usage error).
#
# TRUSTGATE_BINARY defaults to build/trustgate of this source tree, or
# `trustgate` on PATH when that is missing.
set -euo pipefail

READY_TIMEOUT_S=5
STOP_TIMEOUT_S=3

me=${0##*/}
say() { printf '%s: %s\n' "$me" "$*" >&2; }
die() {
    say "$*"
    exit 1
}

if (($# < 1 || $# > 2)) || [[ $1 == -* ]]; then
    echo "usage: $me DIR [TRUSTGATE_BINARY]" >&2
    echo "  runs the demo world in DIR (trustgate demo DIR): its upstream OCSP" >&2
    echo "  responders (DIR/upstreams.txt), then trustgate serve -c DIR/trustgate.ini" >&2
    exit 2
fi

[[ -d $1 ]] || die "$1: no such folder (make one with: trustgate demo $1)"
DIR=$(cd "$1" && pwd)
if (($# == 2)); then
    TG=$2
else
    TG=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/trustgate
    [[ -x $TG ]] || TG=$(command -v trustgate) || die "no trustgate binary: build it (make) or name it"
fi
[[ -x $TG || $TG != */* ]] || die "$TG: not an executable"
[[ -f $DIR/trustgate.ini ]] || die "$DIR/trustgate.ini missing: not a demo world"
[[ -f $DIR/upstreams.txt ]] ||
    die "$DIR/upstreams.txt missing: the world predates it; make a new one (rm -rf $DIR; trustgate demo $DIR)"
command -v openssl >/dev/null || die "openssl not found"
[[ -r /proc/net/tcp ]] || die "/proc/net/tcp not readable (Linux only)"

UP_PIDS=()  # the responders this script started
UP_PORTS=() # their ports, in the same order
TG_PID=
STOPPING=

# The checks below read the kernel's socket tables instead of connecting:
# an `openssl ocsp` responder (OpenSSL 3.0) spins on a connection closed
# without a request and exits on a malformed one, so it must see none.

# listen_inodes PORT: the inodes of the TCP sockets listening on PORT.
listen_inodes() {
    awk -v p="$(printf ':%04X' "$1")" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null || true
}

# listening PID PORT: process PID accepts connections on PORT.
listening() {
    local ino fd
    for ino in $(listen_inodes "$2"); do
        for fd in /proc/"$1"/fd/*; do
            [[ $(readlink "$fd" 2>/dev/null) == "socket:[$ino]" ]] && return 0
        done
    done
    return 1
}

stop_upstreams() {
    local pid i
    ((${#UP_PIDS[@]} > 0)) || return 0
    for pid in "${UP_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${UP_PIDS[@]}"; do
        for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    UP_PIDS=()
}

# shellcheck disable=SC2317 # run by the EXIT trap
on_exit() {
    # trustgate still running here means this script failed unexpectedly
    if [[ -n $TG_PID ]] && kill -0 "$TG_PID" 2>/dev/null; then
        kill -TERM "$TG_PID" 2>/dev/null || true
        wait "$TG_PID" 2>/dev/null || true
    fi
    stop_upstreams
}
trap on_exit EXIT

# on_signal SIG: before trustgate runs, give up; once it runs, pass SIG on
# (trustgate drains on SIGINT and SIGTERM) and keep waiting for it.
# shellcheck disable=SC2317 # run by the INT and TERM traps
on_signal() {
    [[ -z $STOPPING ]] || return 0 # trustgate is done; the responders are going
    if [[ -z $TG_PID ]]; then
        say "SIG$1 during start-up: stopping"
        [[ $1 == INT ]] && exit 130
        exit 143
    fi
    kill -"$1" "$TG_PID" 2>/dev/null || true
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM

# ---- the upstream responders ------------------------------------------------

while IFS=$'\t' read -r port cmd || [[ -n ${port:-} ]]; do
    [[ -z $port || $port == \#* ]] && continue
    if [[ ! $port =~ ^[1-9][0-9]{0,4}$ ]] || ((port < 1 || port > 65535)); then
        die "upstreams.txt: bad port '$port'"
    fi
    # only what `trustgate demo` writes: an openssl ocsp responder on PORT
    [[ $cmd == "openssl ocsp "* && " $cmd " == *" -port $port "* ]] ||
        die "upstreams.txt: port $port: not an 'openssl ocsp ... -port $port' command: $cmd"
    read -r -a words <<<"$cmd"
    if [[ -n $(listen_inodes "$port") ]]; then
        die "port $port is already in use (an earlier run still going?); not starting: $cmd"
    fi
    log=$DIR/upstream-$port.log
    (cd "$DIR" && exec "${words[@]}") >"$log" 2>&1 </dev/null &
    UP_PIDS+=("$!")
    UP_PORTS+=("$port")
done <"$DIR/upstreams.txt"
((${#UP_PIDS[@]} > 0)) || die "$DIR/upstreams.txt lists no responder"

tries=$((READY_TIMEOUT_S * 10)) # 0.1 s each, for all of them together
for i in "${!UP_PIDS[@]}"; do
    pid=${UP_PIDS[$i]}
    port=${UP_PORTS[$i]}
    until listening "$pid" "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            say "the responder on port $port exited; $DIR/upstream-$port.log:"
            sed 's/^/    /' "$DIR/upstream-$port.log" >&2 || true
            exit 1
        fi
        ((tries-- > 0)) || die "the responder on port $port is not accepting after ${READY_TIMEOUT_S} s"
        sleep 0.1
    done
done
say "upstream OCSP responders on 127.0.0.1 ports ${UP_PORTS[*]} (PIDs ${UP_PIDS[*]}; logs $DIR/upstream-PORT.log)"

# ---- trustgate ----------------------------------------------------------------

# in the background, so that this shell can forward signals to it
"$TG" serve -c "$DIR/trustgate.ini" &
TG_PID=$!
rc=0
while :; do
    rc=0
    wait "$TG_PID" || rc=$?
    # a trapped signal ends `wait` early (status > 128) with trustgate alive
    kill -0 "$TG_PID" 2>/dev/null || break
done
# the status trustgate exited with: bash keeps it for another wait, which
# matters when the last wait was cut short by a signal as trustgate ended
final=0
wait "$TG_PID" 2>/dev/null || final=$?
((final == 127)) || rc=$final
TG_PID=
STOPPING=1
stop_upstreams
exit "$rc"
