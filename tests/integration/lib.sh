#!/usr/bin/env bash
# Shared by the integration suites: paths, the test framework (t_name,
# assertions, run_test), cleanup of every process started (by PID), and
# helpers for ports, configs and servers. Source it; it sets errexit off
# nowhere and expects `set -euo pipefail` from the caller.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
TG_BUILD=${TG_BUILD:-build}
case $TG_BUILD in /*) ;; *) TG_BUILD=$ROOT/$TG_BUILD ;; esac
TG=$TG_BUILD/trustgate
MALFORMED=$TG_BUILD/tests/malformed
TG_VECTORS=${TG_VECTORS:-}
TG_ONLY=${TG_ONLY:-}
SEED=${TG_SEED:-$(date +%s)}

# ASan/UBSan builds: keep reports in the server logs where the scan below
# finds them; a leak makes the process exit non-zero at SIGTERM.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tg-integration.XXXXXX")
PIDS=()

cleanup() {
    local pid
    exec 2>/dev/null # no job-control chatter after the summary line
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------
# the framework

PASSED=0
FAILED=0
SKIPPED=0
CUR=""        # current test name
CUR_FAILS=0   # assertions failed in it
FAILED_NAMES=()

red() { if [[ -t 1 ]]; then printf '\033[31m%s\033[0m' "$*"; else printf '%s' "$*"; fi; }
green() { if [[ -t 1 ]]; then printf '\033[32m%s\033[0m' "$*"; else printf '%s' "$*"; fi; }

# t_summary: the closing lines of a suite, the last one "N passed, M
# failed" (all.sh sums them); fails when a test failed. Call last.
t_summary() {
    t_end
    if ((${#FAILED_NAMES[@]} > 0)); then
        echo "failed tests:"
        printf '  - %s\n' "${FAILED_NAMES[@]}"
    fi
    echo "$SKIPPED skipped"
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

# Closes the current test (if any) and counts it.
t_end() {
    [[ -n $CUR ]] || return 0
    if ((CUR_FAILS == 0)); then
        PASSED=$((PASSED + 1))
        printf '%s %s\n' "$(green ok)" "$CUR"
    else
        FAILED=$((FAILED + 1))
        FAILED_NAMES+=("$CUR")
        printf '%s %s\n' "$(red FAIL)" "$CUR"
    fi
    CUR=""
    CUR_FAILS=0
}

# t_name NAME: starts a test; the assertions that follow belong to it.
t_name() {
    t_end
    CUR=$1
    CUR_FAILS=0
}

# t_skip NAME REASON: a test that cannot run here.
t_skip() {
    t_end
    SKIPPED=$((SKIPPED + 1))
    printf 'skip %s (%s)\n' "$1" "$2"
}

fail() {
    CUR_FAILS=$((CUR_FAILS + 1))
    printf '    %s %s\n' "$(red '✗')" "$*"
}

assert_eq() { # expected actual what
    if [[ $1 == "$2" ]]; then return 0; fi
    if [[ $1 == *$'\n'* || $2 == *$'\n'* ]]; then
        fail "$3:"
        diff <(printf '%s\n' "$1") <(printf '%s\n' "$2") | sed 's/^/        /' | head -40 || true
    else
        fail "$3: expected '$1', got '$2'"
    fi
    return 1
}

assert_ne() { # unwanted actual what
    if [[ $1 != "$2" ]]; then return 0; fi
    fail "$3: got '$2'"
    return 1
}

assert_match() { # ERE actual what
    if [[ $2 =~ $1 ]]; then return 0; fi
    fail "$3: '$(printf '%s' "$2" | head -c 300)' does not match /$1/"
    return 1
}

assert_contains() { # needle haystack what
    if [[ $2 == *"$1"* ]]; then return 0; fi
    fail "$3: '$1' not found in:"
    printf '%s\n' "$2" | head -20 | sed 's/^/        | /'
    return 1
}

assert_file_match() { # ERE file what
    if grep -Eq -- "$1" "$2" 2>/dev/null; then return 0; fi
    fail "$3: no line of $(basename "$2") matches /$1/; last lines:"
    tail -n 8 "$2" 2>/dev/null | sed 's/^/        | /'
    return 1
}

assert_le() { # a b what: a <= b (numbers, may be fractional)
    if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$1" "$2"; then
        return 0
    fi
    fail "$3: $1 > $2"
    return 1
}

# run_test FN: runs one test function. errexit is off inside it (a failing
# command must not end the run); assertions record failures.
run_test() {
    if [[ -n $TG_ONLY && ! $1 =~ $TG_ONLY ]]; then return 0; fi
    "$1" || true
    t_end
}

# ---------------------------------------------------------------------------
# helpers: files, ports, processes, HTTP

hex() { od -An -tx1 -v "$1" | tr -d ' \n'; }

MALFORMED_HEX=30030a0101
UNAUTHORIZED_HEX=30030a0106

have_ipv6() { ip -6 addr show lo 2>/dev/null | grep -q 'inet6 ::1/'; }

# free_port: a TCP port free on 127.0.0.1 (and on ::1 when IPv6 is up).
free_port() {
    python3 - "$(have_ipv6 && echo 1 || echo 0)" <<'EOF'
import socket, sys
v6 = sys.argv[1] == "1"
for _ in range(50):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    ok = True
    if v6:
        t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            t.bind(("::1", port))
        except OSError:
            ok = False
        t.close()
    s.close()
    if ok:
        print(port)
        sys.exit(0)
sys.exit(1)
EOF
}

# write_config FILE PORT [extra lines for [server]]
write_config() {
    local file=$1 port=$2
    shift 2
    {
        echo "; written by tests/integration/run.sh"
        echo "[server]"
        echo "listen = 127.0.0.1:$port"
        if have_ipv6; then echo "listen = [::1]:$port"; fi
        echo "workers = 2"
        echo "max_request_bytes = 16384"
        echo "header_timeout_ms = 1000"
        echo "idle_timeout_ms = 2000"
        echo "admin_socket = admin.sock"
        echo "access_log = access.log"
        local l
        for l in "$@"; do echo "$l"; done
        echo ""
        echo "[cache]"
        echo "path = cache"
    } >"$file"
    mkdir -p "$(dirname "$file")/cache"
}

# wait_healthy PORT [PID]: polls /healthz for up to 5 s.
wait_healthy() {
    local port=$1 pid=${2:-} i
    for ((i = 0; i < 50; i++)); do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/healthz" 2>/dev/null) == 200 ]]; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# start_server DIR: runs trustgate serve -c DIR/trustgate.ini from another
# working directory (relative paths must resolve against the config's
# folder), stderr to DIR/stderr.log. Sets SRV_PID; returns 1 if not healthy.
start_server() {
    local dir=$1 port
    port=$(sed -n 's/^listen = 127.0.0.1:\([0-9]*\)$/\1/p' "$dir/trustgate.ini")
    mkdir -p "$WORK/cwd"
    (cd "$WORK/cwd" && exec "$TG" serve -c "$dir/trustgate.ini") >>"$dir/stdout.log" 2>>"$dir/stderr.log" &
    SRV_PID=$!
    PIDS+=("$SRV_PID")
    if ! wait_healthy "$port" "$SRV_PID"; then
        echo "    server in $dir did not become healthy within 5 s; stderr:" >&2
        tail -n 20 "$dir/stderr.log" | sed 's/^/        | /' >&2
        return 1
    fi
}

# wait_exit PID SECONDS: waits for PID to exit; sets EXIT_RC and EXIT_S
# (elapsed). Returns 1 if it is still running after SECONDS.
wait_exit() {
    local pid=$1 limit=$2 t0 i
    t0=$(date +%s.%N)
    for ((i = 0; i < limit * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    EXIT_S=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$t0" "$(date +%s.%N)")
    if kill -0 "$pid" 2>/dev/null; then
        EXIT_RC=running
        return 1
    fi
    EXIT_RC=0
    wait "$pid" 2>/dev/null || EXIT_RC=$?
}


# ---------------------------------------------------------------------------
# demo worlds (`trustgate demo --port N DIR`)

# free_port_run N: the first of N consecutive TCP ports that are free on
# 127.0.0.1 and on the wildcard addresses (an `openssl ocsp -port`
# responder binds [::]), outside the ephemeral range so that no outgoing
# connection takes one of them meanwhile.
free_port_run() {
    python3 - "$1" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
try:
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
except (OSError, ValueError):
    lo, hi = 32768, 60999
def free(port):
    for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "0.0.0.0"),
                      (socket.AF_INET6, "::")):
        try:
            s = socket.socket(fam, socket.SOCK_STREAM)
        except OSError:
            continue                # no IPv6 here
        try:
            s.bind((addr, port))
        except OSError:
            return False
        finally:
            s.close()
    return True
bases = [b for b in range(10000, 65536 - n) if b + n - 1 < lo or b > hi]
for _ in range(500):
    b = random.choice(bases)
    if all(free(b + i) for i in range(n)):
        print(b)
        sys.exit(0)
sys.exit(1)
EOF
}

# side_list SIDE SEQ SERVICE STATUS_URI: in the demo world $D (a folder made
# by `trustgate demo`), lists/SIDE.xml rewritten from the
# demo's unsigned template with the category named SERVICE set to STATUS_URI
# (history: the status before) and the sequence number set, signed by the
# side's operator, renamed into place.
side_list() {
    local side=$1 seq=$2 service=$3 status=$4
    python3 - "$D/lists/$side.unsigned.xml" "$D/lists/$side.next.unsigned.xml" "$seq" "$status" "$service" <<'PY'
import re, sys, time
src, dst, seq, status, service = sys.argv[1:]
doc = open(src, encoding="utf-8").read()
doc = re.sub(r"<tsl:TSLSequenceNumber>\d+<", f"<tsl:TSLSequenceNumber>{seq}<", doc, count=1)
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
doc = re.sub(r"<tsl:ListIssueDateTime>[^<]*<", f"<tsl:ListIssueDateTime>{issued}<", doc, count=1)
# the named category: change its status, keep the old one as history
i = doc.index(service)
j = doc.index("<tsl:ServiceStatus>", i)
k = doc.index("</tsl:StatusStartingTime>", j) + len("</tsl:StatusStartingTime>")
doc = doc[:j] + f"<tsl:ServiceStatus>{status}</tsl:ServiceStatus><tsl:StatusStartingTime>{now}</tsl:StatusStartingTime>" + doc[k:]
open(dst, "w", encoding="utf-8").write(doc)
PY
    "$TG" tl sign --key "$D/operators/$side-operator.key" --cert "$D/operators/$side-operator.pem" \
        "$D/lists/$side.next.unsigned.xml" "$D/lists/$side.next.xml" >/dev/null
    mv -f "$D/lists/$side.next.xml" "$D/lists/$side.xml"
}
