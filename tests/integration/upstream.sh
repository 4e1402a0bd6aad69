#!/usr/bin/env bash
# The upstream OCSP relay end to end (SPEC §5, §7; issue 5): a real
# `trustgate serve` on demo worlds (`trustgate demo --port N`) whose CAs'
# own responders are real `openssl ocsp -index` processes (the lines of the
# world's upstreams.txt, or variants of them), sometimes behind a small
# python3 stub that records, delays or replaces what they say:
#   - relay mode (hk): the CA's bytes exactly, verified against the CA's
#     delegated responder; the second query and a nonce query come from the
#     cache without an upstream request;
#   - sign mode: gd (SM2 upstream with the GM/T 0009 ID, answers verified
#     by `trustgate query --signer`) and hk (mode = sign, `openssl ocsp
#     -VAfile` with its nonce check); a nonce is echoed;
#   - an SM2 upstream signing with OpenSSL's empty ID is refused;
#   - faults, one world each: upstream down (breaker), slow past timeout_ms,
#     garbage, a valid answer for another certificate, an unauthorised
#     signer, an expired answer, and more refusals (not yet valid, no
#     nextUpdate, two SingleResponses, tryLater, HTTP 503): each gives
#     tryLater or the CA's fresh CRL, nothing is cached, and another CA is
#     answered at full speed meanwhile;
#   - the upstream's CA suspended in its list while its good is cached:
#     signed certificateHold, and the cached good never served meanwhile;
#   - 1,000 concurrent clients for one uncached certificate: one upstream
#     request;
#   - refresh ahead of nextUpdate (a background world, -nmin 1 answers),
#     and the breaker's half-open probe 30 s after it opened.
#
#   TG_BUILD=build bash tests/integration/upstream.sh
#
# Needs build/tests/mkocsp (tests/integration/mkocsp.c), which signs
# upstream answers with arbitrary times for the expiry tests.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MKOCSP=$TG_BUILD/tests/mkocsp
ID=1234567812345678
SUSPENDED=urn:gdhk-mr:svcstatus:suspended
GRANTED=http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted
HK_RSA_SERVICE="HK Personal e-Cert (RSA)"
CA_RESPONDER="CN = HK Demo RSA Signing CA OCSP Responder"
# "full speed": median latency of 200 answers from the cache for another CA
# while the faulty upstream is being asked (milliseconds)
P50_MS=${TG_P50_MS:-20}
case $TG_BUILD in */asan*) P50_MS=${TG_P50_MS:-40} ;; esac

# the world in use: folder, trustgate's port and OCSP URL, server PID, and
# the processes started for it (its upstreams)
D=
PORT=
URL=
SRV_PID=
WORLD_PIDS=()
OUT=
QOUT=
QRC=0

# ---------------------------------------------------------------------------
# helpers written to files: the upstream stub and the HTTP client

UPSTUB=$WORK/upstub.py
CLIENT=$WORK/client.py

cat >"$UPSTUB" <<'PY'
# upstub.py PORT STATE MODE [ARGS]: an HTTP "OCSP responder" on 127.0.0.1:PORT
# for the upstream tests. Every request is counted and recorded in the
# folder STATE (count, req-N.der, resp-N.der; inflight-max: the most
# requests handled at once), then answered by MODE:
#   proxy UPPORT DELAY_MS   wait, then POST it to 127.0.0.1:UPPORT (a real
#                           openssl ocsp responder) and relay the answer
#   slow SECONDS            read it, hold the connection unanswered until
#                           the client closes it (or SECONDS pass)
#   garbage                 200 with 600 random bytes
#   file PATH               200 with the bytes of PATH (read per request);
#                           a file "HTTP NNN" answers that status instead
#   status CODE             that HTTP status, empty body
import http.client, http.server, os, select, socket, sys, threading, time
port, state, mode, args = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
os.makedirs(state, exist_ok=True)
lock = threading.Lock()
n = [0, 0, 0]  # count, in flight, most in flight

def put(name, data):
    p = os.path.join(state, name)
    with open(p + ".tmp", "wb") as f:
        f.write(data)
    os.replace(p + ".tmp", p)

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def log_message(self, fmt, *a):
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % a))
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            n[0] += 1; n[1] += 1; n[2] = max(n[2], n[1]); i = n[0]
            put("req-%d.der" % i, body)
            put("count", str(i).encode())
            put("inflight-max", str(n[2]).encode())
        try:
            self.answer(i, body)
        finally:
            with lock:
                n[1] -= 1
    def do_GET(self):
        self.do_POST()
    def reply(self, i, code, data, ctype="application/ocsp-response"):
        put("resp-%d.der" % i, data)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def answer(self, i, body):
        if mode == "proxy":
            time.sleep(int(args[1]) / 1000)
            c = http.client.HTTPConnection("127.0.0.1", int(args[0]), timeout=10)
            c.request("POST", "/", body, {"Content-Type": "application/ocsp-request"})
            r = c.getresponse()
            self.reply(i, r.status, r.read())
        elif mode == "slow":
            end = time.monotonic() + float(args[0])
            while time.monotonic() < end:
                if select.select([self.connection], [], [], 0.02)[0]:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        break  # the client gave up
            self.close_connection = True
        elif mode == "garbage":
            data = os.urandom(600)
            self.reply(i, 200, b"\x04" + data[1:])  # never a SEQUENCE
        elif mode == "file":
            with open(args[0], "rb") as f:
                data = f.read()
            if data.startswith(b"HTTP "):
                self.reply(i, int(data[5:8]), b"", "text/plain")
            else:
                self.reply(i, 200, data)
        elif mode == "status":
            self.reply(i, int(args[0]), b"", "text/plain")

class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

srv = S(("127.0.0.1", port), H)
put("count", b"0")
put("inflight-max", b"0")
srv.serve_forever()
PY

cat >"$CLIENT" <<'PY'
# client.py: OCSP POSTs to trustgate for upstream.sh, printing one JSON line.
#   burst PORT OUTDIR [--repeat N] REQ...   every request (N times each) on
#       its own connection: all connect first, then all send at once; per
#       request its OCSPResponseStatus and time; the distinct bodies are
#       written to OUTDIR/body-K.der (K by first appearance)
#   load PORT FAST_REQ N REF [SLOW_REQ...]  the SLOW_REQs sent at once, then
#       N FAST_REQs one after another (a new connection each) while they
#       are out; latency percentiles of the fast ones, how many came back
#       byte for byte as REF, and whether all of them ended before the
#       first slow one did
import asyncio, json, os, sys, time

def ocsp_status(body):
    try:
        if body[0] != 0x30:
            return -1
        i = 2 if body[1] < 0x80 else 2 + (body[1] & 0x7F)
        return body[i + 2] if body[i] == 0x0A and body[i + 1] == 1 else -1
    except IndexError:
        return -1

async def post(port, der, gate=None):
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
    except OSError as e:
        if gate:
            await gate()
        return {"code": "connect:" + str(e.errno), "body": b"", "ms": 0, "t1": time.monotonic()}
    if gate:
        await gate()
    t0 = time.monotonic()
    w.write(b"POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(der) + der)
    try:
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        body = await r.readexactly(length)
        code = head.split(b" ", 2)[1].decode()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
        code, body = "error:" + type(e).__name__, b""
    t1 = time.monotonic()
    w.close()
    return {"code": code, "body": body, "ms": (t1 - t0) * 1000, "t1": t1}

def pct(xs, p):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))], 2) if xs else None

async def burst(port, outdir, ders):
    left = [len(ders)]
    go = asyncio.Event()
    async def gate():
        left[0] -= 1
        if left[0] == 0:
            go.set()
        await go.wait()
    t0 = time.monotonic()
    res = await asyncio.wait_for(asyncio.gather(*(post(port, d, gate) for d in ders)), 120)
    bodies, out = [], []
    for x in res:
        if x["body"] not in bodies:
            bodies.append(x["body"])
        out.append([x["code"], ocsp_status(x["body"]), round(x["ms"], 1), bodies.index(x["body"])])
    for k, b in enumerate(bodies):
        with open(os.path.join(outdir, "body-%d.der" % k), "wb") as f:
            f.write(b)
    codes = {}
    for o in out:
        key = "%s/%s" % (o[0], o[1])
        codes[key] = codes.get(key, 0) + 1
    return {"n": len(out), "codes": codes, "distinct": len(bodies),
            "max_ms": max(o[2] for o in out), "wall_s": round(time.monotonic() - t0, 2),
            "results": out}

async def load(port, fast, n, ref, slows):
    tasks = [asyncio.ensure_future(post(port, d)) for d in slows]
    await asyncio.sleep(0.1)  # the slow ones are at the server
    lat, same, codes = [], 0, {}
    for _ in range(n):
        x = await post(port, fast)
        lat.append(x["ms"])
        same += x["body"] == ref
        key = "%s/%s" % (x["code"], ocsp_status(x["body"]))
        codes[key] = codes.get(key, 0) + 1
    fast_end = time.monotonic()
    slow = await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return {"n": n, "same": same, "codes": codes, "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
            "max_ms": pct(lat, 1.0),
            "slow": [[x["code"], ocsp_status(x["body"]), round(x["ms"], 1)] for x in slow],
            "fast_before_slow": all(x["t1"] > fast_end for x in slow)}

def rd(p):
    with open(p, "rb") as f:
        return f.read()

a = sys.argv[1:]
if a[0] == "burst":
    port, outdir, rest = int(a[1]), a[2], a[3:]
    rep = 1
    if rest[0] == "--repeat":
        rep, rest = int(rest[1]), rest[2:]
    ders = [rd(p) for p in rest for _ in range(rep)]
    r = asyncio.run(burst(port, outdir, ders))
    if len(r["results"]) > 50:
        del r["results"]
elif a[0] == "load":
    r = asyncio.run(load(int(a[1]), rd(a[2]), int(a[3]), rd(a[4]), [rd(p) for p in a[5:]]))
print(json.dumps(r))
PY

# jget JSON EXPR: a value of the JSON text (EXPR in python on d).
jget() { python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null || echo "?"; }

# ---------------------------------------------------------------------------
# helpers: metrics

mname_up() { printf 'trustgate_upstream_requests_total{result="%s"}' "$1"; }
mname_dec() { printf 'trustgate_ocsp_decisions_total{decision="%s"}' "$1"; }
ASKS=trustgate_upstream_asks_total
JOINS=trustgate_upstream_single_flight_joins_total
REFRESHES=trustgate_upstream_refreshes_total
SKIPS=trustgate_upstream_skipped_total
OCSP_ENTRIES='trustgate_cache_entries{db="ocsp"}'

# snap NAME: /metrics of the world's server now, kept as NAME.
snap() { curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.$1" || true; }

# mval SNAP METRIC: its value in a snapshot, or "missing".
mval() { awk -v k="$2" '$1 == k { print $2; f = 1; exit } END { if (!f) print "missing" }' "$WORK/metrics.$1"; }

# metric METRIC: its value now.
metric() {
    snap now
    mval now "$1"
}

# assert_md FROM TO METRIC WANT WHAT: METRIC grew by WANT from snapshot FROM
# to snapshot TO.
assert_md() {
    local a b
    a=$(mval "$1" "$3")
    b=$(mval "$2" "$3")
    if [[ ! $a =~ ^[0-9]+$ || ! $b =~ ^[0-9]+$ ]]; then
        fail "$5: $3 not a counter: '$a' -> '$b'"
        return 1
    fi
    assert_eq "$4" "$((b - a))" "$5: change of $3"
}

# md FROM TO METRIC: the change (a number, or "?").
md() {
    local a b
    a=$(mval "$1" "$3")
    b=$(mval "$2" "$3")
    if [[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ ]]; then echo $((b - a)); else echo "?"; fi
}

breaker() { metric "trustgate_upstream_breaker_open{url=\"http://127.0.0.1:$1/\"}"; }

# ---------------------------------------------------------------------------
# helpers: times

# epoch TEXT: seconds since 1970 of an openssl ("Nov 25 13:25:48 2026 GMT")
# or ISO 8601 ("2026-11-25T13:25:48Z") time; "?" when neither.
epoch() {
    python3 - "$1" <<'PY'
import calendar, sys, time
text = sys.argv[1].strip()
for fmt in ("%b %d %H:%M:%S %Y GMT", "%Y-%m-%dT%H:%M:%SZ"):
    try:
        print(calendar.timegm(time.strptime(text, fmt)))
        break
    except ValueError:
        pass
else:
    print("?")
PY
}

# crl_epoch FILE lastupdate|nextupdate: the CRL's time (any algorithm).
crl_epoch() {
    epoch "$(openssl crl -inform DER -in "$1" -noout "-$2" | cut -d= -f2)"
}

iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# assert_near WANT GOT SLACK WHAT: two epochs within SLACK seconds.
assert_near() {
    if [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]] && (($2 - $1 <= $3 && $1 - $2 <= $3)); then
        return 0
    fi
    fail "$4: $2 ($( [[ $2 =~ ^[0-9]+$ ]] && iso "$2")) is not within $3 s of $1 ($( [[ $1 =~ ^[0-9]+$ ]] && iso "$1"))"
    return 1
}

# oline TEXT NAME: the value of the first "NAME: value" line of openssl
# ocsp's report.
oline() { printf '%s\n' "$1" | sed -n "s/^[[:space:]]*$2: //p" | head -n 1; }

# ---------------------------------------------------------------------------
# helpers: processes and worlds

# listening PORT: a socket listens on PORT (read from the kernel's tables:
# an `openssl ocsp` responder spins on a connection closed without a
# request, so nothing here ever connects just to look).
listening() {
    awk -v p="$(printf ':%04X' "$1")" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 }
        END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# wait_listen PORT PID: until PORT listens (5 s) while PID runs.
wait_listen() {
    local i
    for ((i = 0; i < 100; i++)); do
        listening "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# forget_pid PID: PID is gone; the cleanup at exit must not signal it.
forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# stop_pid PID: SIGTERM, SIGKILL after 3 s; forgotten.
stop_pid() {
    local i
    kill -TERM "$1" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget_pid "$1"
}

# start_upstream PORT WORDS...: runs WORDS in $D in the background (log:
# $D/upstream-PORT.log) until PORT listens. Sets UP_PID.
start_upstream() {
    local port=$1
    shift
    (cd "$D" && exec "$@") >>"$D/upstream-$port.log" 2>&1 </dev/null &
    UP_PID=$!
    PIDS+=("$UP_PID")
    WORLD_PIDS+=("$UP_PID")
    if ! wait_listen "$port" "$UP_PID"; then
        fail "upstream on port $port did not start: $*; log:"
        tail -n 5 "$D/upstream-$port.log" | sed 's/^/        | /'
        return 1
    fi
}

# up_cmd N: the command line of the world's upstreams.txt for port PORT+N
# (1 hk/rsa-ca, 2 hk/ecc-ca, 3 gd/personal-ca, 4 gd/organisation-ca).
up_cmd() { awk -F'\t' -v p=$((PORT + $1)) '$1 == p { print $2 }' "$D/upstreams.txt"; }

# responder N [SED...]: the CA's own responder of upstreams.txt line N, the
# command line edited by the sed expressions, on its port.
responder() {
    local n=$1 cmd words e
    shift
    cmd=$(up_cmd "$n")
    [[ -n $cmd ]] || {
        fail "no upstreams.txt line for port $((PORT + n))"
        return 1
    }
    for e in "$@"; do cmd=$(sed "$e" <<<"$cmd"); done
    read -r -a words <<<"$cmd"
    local port
    port=$(sed -n 's/.* -port \([0-9]*\).*/\1/p' <<<"$cmd")
    start_upstream "$port" "${words[@]}"
}

# stub N MODE ARGS...: upstub.py on port PORT+N (state: $D/stub-N).
stub() {
    local n=$1
    shift
    start_upstream $((PORT + n)) python3 "$UPSTUB" $((PORT + n)) "$D/stub-$n" "$@"
}

# behind_proxy N DELAY_MS [SED...]: responder N on a free port, and a stub
# on PORT+N that forwards to it after DELAY_MS (and records it all).
behind_proxy() {
    local n=$1 delay=$2 q
    shift 2
    q=$(free_port)
    responder "$n" "s/ -port [0-9]*/ -port $q/" "$@" || return 1
    stub "$n" proxy "$q" "$delay"
}

stub_count() { cat "$D/stub-$1/count" 2>/dev/null || echo "?"; }

ca_id() { openssl x509 -in "$D/$1/ca.pem" -outform DER | sha256sum | cut -d' ' -f1; }

# ini_set SECTION KEY VALUE: sets KEY in [SECTION] of the world's
# trustgate.ini (replaced, or added at the section's end). With KEY "+"
# the VALUE is a whole line added to the section.
ini_set() {
    python3 - "$D/trustgate.ini" "$1" "$2" "$3" <<'PY'
import sys
path, sec, key, val = sys.argv[1:]
lines = open(path).read().split("\n")
out, cur, done, last = [], None, False, None
for i, l in enumerate(lines):
    s = l.strip()
    if s.startswith("["):
        cur = s[1:-1]
    elif cur == sec and key != "+" and s.split("=")[0].strip() == key:
        l = "%s = %s" % (key, val)
        done = True
    out.append(l)
    if cur == sec and s and not s.startswith(";"):
        last = len(out) - 1
if not done:
    if last is None:
        sys.exit("no section [%s]" % sec)
    out.insert(last + 1, val if key == "+" else "%s = %s" % (key, val))
open(path, "w").write("\n".join(out))
PY
}

# no_crl CA: the world has no CRL for CA (its crl_url names a missing file).
no_crl() {
    ini_set "trustlist ${1%%/*}" + "crl_url = $(ca_id "$1") file://$D/$1/absent-crl.der"
}

# world NAME TEMPLATE: a fresh copy of a never-served demo world as $D; no
# process started yet (upstreams, then world_start).
world() {
    D=$WORK/$1
    rm -rf "$D"
    cp -a "$2" "$D"
    PORT=$(sed -n 's/^listen = 127.0.0.1:\([0-9]*\)$/\1/p' "$D/trustgate.ini")
    URL=http://127.0.0.1:$PORT/ocsp
    SRV_PID=
    WORLD_PIDS=()
}

# world_start FRESH_CRLS: the server started, holding that many fresh CRLs
# (of the 4; a CA with no_crl has none).
world_start() {
    if ! start_server "$D"; then
        fail "the server did not start on $D"
        return 1
    fi
    local i n=0
    for ((i = 0; i < 100; i++)); do
        n=$(curl -s --max-time 2 "http://127.0.0.1:$PORT/crl/" | grep -o '"fresh":true' | wc -l) || n=0
        ((n >= $1)) && break
        sleep 0.1
    done
    assert_eq "$1" "$n" "fresh CRLs held after start" || return 1
}

# world_stop: the server exits 0 on SIGTERM (ASan: no leak) with no
# sanitizer report; the world's upstreams stopped.
world_stop() {
    local pid
    if [[ -n $SRV_PID ]]; then
        kill -TERM "$SRV_PID" 2>/dev/null || true
        wait_exit "$SRV_PID" 10 || true
        assert_eq 0 "$EXIT_RC" "server exit status on SIGTERM"
        [[ $EXIT_RC == running ]] || forget_pid "$SRV_PID"
        if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$D/stderr.log"; then
            fail "sanitizer report in $D/stderr.log:"
            grep -E -m5 -A3 "ERROR: (Address|Leak)Sanitizer|runtime error:" "$D/stderr.log" | sed 's/^/        | /'
        fi
    fi
    for pid in ${WORLD_PIDS[@]+"${WORLD_PIDS[@]}"}; do stop_pid "$pid"; done
    WORLD_PIDS=()
    SRV_PID=
}

# ---------------------------------------------------------------------------
# helpers: queries

# ossl CA EE [openssl options]: `openssl ocsp` to trustgate for CA/EE.pem
# alone; OUT gets its report (stdout and stderr).
ossl() {
    local ca=$1 ee=$2
    shift 2
    OUT=$(cd "$D" && timeout 20 openssl ocsp -url "$URL" -issuer "$ca/ca.pem" -cert "$ca/$ee.pem" "$@" 2>&1) || true
}

# query ARGS...: `trustgate query --url $URL ARGS` in the world; QOUT, QRC.
query() {
    QRC=0
    QOUT=$(cd "$D" && timeout 20 "$TG" query --url "$URL" "$@" 2>&1) || QRC=$?
}

line() { printf '%s\n' "$QOUT" | sed -n "s/^$1: //p" | head -n 1; }

# mkreq CA EE|0xSERIAL FILE: a DER OCSP request without a nonce (SHA-1
# CertID, as openssl sends it), made offline.
mkreq() {
    local sel=(-cert "$1/$2.pem")
    [[ $2 == 0x* ]] && sel=(-serial "$2")
    (cd "$D" && openssl ocsp -issuer "$1/ca.pem" "${sel[@]}" -no_nonce -reqout "$3") >/dev/null 2>&1 ||
        fail "could not make a request for $1 $2"
}

# post REQ RESP: POSTs a DER request to trustgate; RESP gets the body.
post() {
    curl -s --max-time 20 -o "$2" -H 'Content-Type: application/ocsp-request' \
        --data-binary "@$1" "$URL" || true
}

# get_path REQ: the request base64- and percent-encoded for a GET.
get_path() {
    base64 -w0 "$1" | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read().strip(), safe=""))'
}

randserial() { echo "0x7E57$(openssl rand -hex 14 | tr a-f A-F)"; }

# tries_later WHAT: the last ossl report is the unsigned tryLater.
tries_later() { assert_contains "Responder Error: trylater (3)" "$OUT" "$1: tryLater"; }

# from_crl CA EE STATUS WHAT: the last ossl report (run with -VAfile
# signers/hk-responder.pem) is trustgate's own answer from CA's CRL:
# verified, STATUS, thisUpdate and nextUpdate the CRL's.
from_crl() {
    local crl=$D/$1/crl.der
    assert_contains "Response verify OK" "$OUT" "$4: verified against trustgate's responder" &&
        assert_contains "$1/$2.pem: $3" "$OUT" "$4: status" || return 1
    assert_eq "$(crl_epoch "$crl" lastupdate)" "$(epoch "$(oline "$OUT" "This Update")")" "$4: thisUpdate = the CRL's"
    assert_eq "$(crl_epoch "$crl" nextupdate)" "$(epoch "$(oline "$OUT" "Next Update")")" "$4: nextUpdate = the CRL's"
}

# prime_other: hk/ecc-ca's own responder (port PORT+2) answers ee-good once
# through trustgate (relayed, cached); OTHER_REQ and OTHER_REF are that
# request and the answer, for full_speed.
OTHER_REQ=
OTHER_REF=
prime_other() {
    OTHER_REQ=$D/other-req.der
    OTHER_REF=$D/other-ref.der
    mkreq hk/ecc-ca ee-good "$OTHER_REQ"
    post "$OTHER_REQ" "$OTHER_REF"
    OUT=$(cd "$D" && openssl ocsp -respin "$OTHER_REF" -issuer hk/ecc-ca/ca.pem -cert hk/ecc-ca/ee-good.pem \
        -VAfile hk/ecc-ca/ocsp.pem 2>&1) || true
    assert_contains "hk/ecc-ca/ee-good.pem: good" "$OUT" "the other CA (hk/ecc-ca) primed: relayed good" || return 1
    assert_contains "Response verify OK" "$OUT" "the other CA primed: verified against its responder"
}

# full_speed WHAT WANT_SLOW SLOW_REQ...: 200 POSTs for the other CA's
# cached answer, one after another, while the SLOW_REQs (for the faulty
# CA) are out: every one of the 200 is the cached answer byte for byte,
# median latency under P50_MS; each SLOW_REQ answered with
# OCSPResponseStatus WANT_SLOW (3 tryLater, 0 successful). Sets LOAD.
LOAD=
full_speed() {
    local what=$1 want=$2
    shift 2
    LOAD=$(python3 "$CLIENT" load "$PORT" "$OTHER_REQ" 200 "$OTHER_REF" "$@" 2>&1) || true
    assert_eq 200 "$(jget "$LOAD" 'd["same"]')" "$what: answers for the other CA identical to its cached one ($LOAD)" || return 1
    assert_le "$(jget "$LOAD" 'd["p50_ms"]')" "$P50_MS" "$what: p50 latency (ms) for the other CA"
    assert_eq "$#" "$(jget "$LOAD" 'sum(1 for s in d["slow"] if s[0] == "200" and s[1] == '"$want"')')" \
        "$what: the faulty CA's answers (status $want) ($LOAD)"
    echo "    note: $what: other CA p50 $(jget "$LOAD" 'd["p50_ms"]') ms, p99 $(jget "$LOAD" 'd["p99_ms"]') ms; faulty CA: $(jget "$LOAD" 'd["slow"]')"
}

# ---------------------------------------------------------------------------
# 1, 2, 5, 6: the main world (hk relay, gd sign)

test_relay() {
    t_name "relay (hk/rsa-ca): openssl verifies the CA's own answer (its delegated responder, byte for byte the upstream's); the second query and a nonce query come from the cache"
    local r0 r1
    snap b
    ossl hk/rsa-ca ee-good -VAfile hk/rsa-ca/ocsp.pem -no_nonce -resp_text -respout "$WORK/relay-good.der"
    assert_contains "Response verify OK" "$OUT" "ee-good: verified against hk/rsa-ca/ocsp.pem" || return 0
    assert_contains "hk/rsa-ca/ee-good.pem: good" "$OUT" "ee-good: status"
    assert_contains "$CA_RESPONDER" "$(oline "$OUT" "Responder Id")" "ee-good: Responder Id (the CA's responder, not trustgate)"
    assert_eq 1 "$(stub_count 1)" "requests seen by the CA's responder"
    cmp -s "$WORK/relay-good.der" "$D/stub-1/resp-1.der" || fail "the relayed bytes differ from what the CA's responder sent"
    r0=$(openssl ocsp -reqin "$D/stub-1/req-1.der" -req_text 2>&1) || true
    assert_contains "Serial Number: $(openssl x509 -in "$D/hk/rsa-ca/ee-good.pem" -noout -serial | cut -d= -f2)" \
        "$r0" "trustgate's upstream request: the CertID"
    [[ $r0 != *"OCSP Nonce"* ]] || fail "trustgate's upstream request carries a nonce (the answer is shared)"
    OUT=$(cd "$D" && openssl ocsp -respin "$WORK/relay-good.der" -issuer hk/rsa-ca/ca.pem -cert hk/rsa-ca/ee-good.pem \
        -CAfile hk/rsa-ca/ca.pem -partial_chain 2>&1) || true
    assert_contains "Response verify OK" "$OUT" "ee-good: verified with -CAfile hk/rsa-ca/ca.pem -partial_chain"
    ossl hk/rsa-ca ee-revoked -VAfile hk/rsa-ca/ocsp.pem -no_nonce
    assert_contains "Response verify OK" "$OUT" "ee-revoked: verified"
    assert_contains "hk/rsa-ca/ee-revoked.pem: revoked" "$OUT" "ee-revoked: status"
    assert_contains "Reason: keyCompromise" "$OUT" "ee-revoked: reason"
    snap a
    assert_md b a "$(mname_up ok)" 2 "two certificates"
    assert_md b a "$ASKS" 2 "two certificates"
    assert_md b a "$(mname_dec upstream_relayed)" 2 "two certificates"
    assert_md b a 'trustgate_signing_operations_total{alg="ecdsa-p256"}' 0 "relay signs nothing"
    assert_md b a "$(mname_dec good_crl)" 0 "the CRL is not used"

    # again: from the cache
    ossl hk/rsa-ca ee-good -VAfile hk/rsa-ca/ocsp.pem -no_nonce -respout "$WORK/relay-good2.der"
    assert_contains "hk/rsa-ca/ee-good.pem: good" "$OUT" "second query: status"
    cmp -s "$WORK/relay-good.der" "$WORK/relay-good2.der" || fail "second query: not the same bytes"
    snap c
    assert_md a c "$(mname_up ok)" 0 "second query: no upstream request"
    assert_md a c "$ASKS" 0 "second query: no ask"
    assert_md a c "$(mname_dec upstream_relayed)" 1 "second query"
    assert_eq 2 "$(stub_count 1)" "requests seen by the CA's responder after the second query"
    # GET (RFC 5019): the same bytes
    mkreq hk/rsa-ca ee-good "$WORK/req-rsa-good.der"
    r1=$(curl -s --max-time 10 -o "$WORK/relay-get.der" -w '%{http_code}' "$URL/$(get_path "$WORK/req-rsa-good.der")") || true
    assert_eq 200 "$r1" "GET status"
    cmp -s "$WORK/relay-good.der" "$WORK/relay-get.der" || fail "GET: not the cached bytes"

    # a nonce: relay mode answers from the cache without it (RFC 5019)
    ossl hk/rsa-ca ee-good -VAfile hk/rsa-ca/ocsp.pem
    assert_contains "WARNING: no nonce in response" "$OUT" "nonce query: openssl notes the missing nonce"
    assert_contains "Response verify OK" "$OUT" "nonce query: verified"
    assert_contains "hk/rsa-ca/ee-good.pem: good" "$OUT" "nonce query: status"
    snap d
    assert_md c d "$(mname_up ok)" 0 "nonce query: no upstream request"
    assert_md c d "$ASKS" 0 "nonce query: no ask"
    assert_eq 2 "$(stub_count 1)" "requests seen by the CA's responder after the nonce query"
}

test_sign_gd_sm2() {
    t_name "sign (gd/personal-ca, SM2 upstream with the GM/T 0009 ID): trustgate query --signer verifies good / revoked with the CA's times; a nonce is echoed; openssl reads it with its nonce check"
    local t0 this next rt idx
    t0=$(date +%s)
    snap b
    query --issuer gd/personal-ca/ca.pem --cert gd/personal-ca/ee-good.pem --signer signers/gd-responder.pem
    assert_eq 0 "$QRC" "ee-good: exit status ($QOUT)" || return 0
    assert_eq good "$(line certStatus)" "ee-good: certStatus"
    assert_eq "OK (sm2-with-sm3)" "$(line signature)" "ee-good: signature"
    assert_match "^trusted responder \(--signer\) CN=GD Demo trustgate OCSP Responder \(SM2\)" "$(line signer)" "ee-good: signer"
    # the CA's answer (-nmin 60), not the CRL's 7-day window
    this=$(epoch "$(line thisUpdate)")
    next=$(epoch "$(line nextUpdate)")
    assert_near "$t0" "$this" 10 "ee-good: thisUpdate (the upstream's, made now)"
    [[ $this =~ ^[0-9]+$ && $next =~ ^[0-9]+$ ]] && assert_eq 3600 "$((next - this))" "ee-good: nextUpdate - thisUpdate (the upstream's -nmin 60)"
    assert_ne "$(crl_epoch "$D/gd/personal-ca/crl.der" lastupdate)" "$this" "ee-good: thisUpdate is not the CRL's"
    query --issuer gd/personal-ca/ca.pem --cert gd/personal-ca/ee-revoked.pem --signer signers/gd-responder.pem --sm3
    assert_eq 1 "$QRC" "ee-revoked (SM3 CertID): exit status ($QOUT)"
    assert_eq "keyCompromise (1)" "$(line reason)" "ee-revoked: reason"
    assert_eq "OK (sm2-with-sm3)" "$(line signature)" "ee-revoked: signature"
    # revocationTime: the CA's index.txt (YYMMDDHHMMSSZ)
    idx=$(awk -F'\t' '$1 == "R" { print $3 }' "$D/gd/personal-ca/index.txt" | cut -d, -f1)
    rt=$(python3 -c 'import calendar, sys, time; print(calendar.timegm(time.strptime(sys.argv[1], "%y%m%d%H%M%SZ")))' "$idx")
    assert_eq "$(iso "$rt")" "$(line revocationTime)" "ee-revoked: revocationTime (the CA's index.txt)"
    snap a
    assert_md b a "$(mname_up ok)" 2 "two certificates"
    assert_md b a "$ASKS" 2 "two certificates"
    assert_md b a "$(mname_dec upstream_signed)" 2 "two certificates"
    assert_md b a "$(mname_dec good_crl)" 0 "the CRL is not used"

    query --issuer gd/personal-ca/ca.pem --cert gd/personal-ca/ee-good.pem --signer signers/gd-responder.pem --nonce
    assert_eq 0 "$QRC" "ee-good with a nonce: exit status ($QOUT)"
    assert_eq echoed "$(line nonce)" "ee-good with a nonce: nonce"
    assert_eq "$(iso "$this")" "$(line thisUpdate)" "ee-good with a nonce: the same upstream thisUpdate"
    ossl gd/personal-ca ee-good -noverify
    assert_contains "gd/personal-ca/ee-good.pem: good" "$OUT" "openssl (nonce sent, SM2 not verified): status"
    [[ ! $OUT =~ [Nn]once ]] || fail "openssl complains about the nonce: $OUT"
    sleep 0.3 # the first no-nonce answer was stored through the cache's writer
    snap c
    query --issuer gd/personal-ca/ca.pem --cert gd/personal-ca/ee-good.pem --signer signers/gd-responder.pem
    assert_eq 0 "$QRC" "ee-good again: exit status ($QOUT)"
    snap d
    assert_md a d "$(mname_up ok)" 0 "nonce and repeated queries: no upstream request"
    assert_md a d "$ASKS" 0 "nonce and repeated queries: no ask"
    assert_md c d 'trustgate_ocsp_presigned_total{result="hit"}' 1 "ee-good again: its signed answer from the cache"
    assert_md c d 'trustgate_signing_operations_total{alg="sm2"}' 0 "ee-good again: nothing signed"
}

# the 1,000 clients; hk/ecc-ca's responder is behind a stub that waits
# SF_DELAY ms before forwarding
SF_DELAY=300
case $TG_BUILD in */asan*) SF_DELAY=1000 ;; esac
test_single_flight() {
    t_name "single flight: 1,000 concurrent clients for one uncached certificate (hk/ecc-ca ee-revoked) make one upstream request; all get the CA's answer"
    local r n codes
    mkreq hk/ecc-ca ee-revoked "$WORK/sf-req.der"
    mkdir -p "$WORK/sf"
    local c0
    c0=$(stub_count 2)
    snap b
    r=$(python3 "$CLIENT" burst "$PORT" "$WORK/sf" --repeat 1000 "$WORK/sf-req.der" 2>&1) || true
    snap a
    echo "    note: 1,000 clients: $r"
    assert_eq 1000 "$(jget "$r" 'd["codes"].get("200/0", 0)')" "successful answers ($r)"
    assert_eq 1 "$(jget "$r" 'd["distinct"]')" "distinct answers"
    assert_eq 1 "$(($(stub_count 2) - c0))" "requests that reached the CA's responder"
    assert_md b a "$(mname_up ok)" 1 "upstream requests"
    n=$(md b a "$JOINS")
    assert_le 990 "$n" "single-flight joins (of 999)"
    assert_eq "$((n + 1))" "$(md b a "$ASKS")" "asks = joins + 1 (everyone waited for the one request)"
    assert_md b a "$(mname_dec upstream_relayed)" 1000 "relayed answers"
    OUT=$(cd "$D" && openssl ocsp -respin "$WORK/sf/body-0.der" -issuer hk/ecc-ca/ca.pem -cert hk/ecc-ca/ee-revoked.pem \
        -VAfile hk/ecc-ca/ocsp.pem 2>&1) || true
    assert_contains "Response verify OK" "$OUT" "the answer: verified against hk/ecc-ca's responder"
    assert_contains "hk/ecc-ca/ee-revoked.pem: revoked" "$OUT" "the answer: status"
    cmp -s "$WORK/sf/body-0.der" "$D/stub-2/resp-$(stub_count 2).der" || fail "the answer is not the upstream's bytes"
    codes=$(jget "$r" 'd["max_ms"]')
    assert_le "$SF_DELAY" "$codes" "the slowest client waited for the upstream (ms)"
}

test_suspend() {
    t_name "suspend hk/rsa-ca in the list while its relayed good is cached: signed certificateHold (openssl -VAfile trustgate's responder), POST and GET, never the cached good; reinstated: the cached good again"
    local i code since
    ossl hk/rsa-ca ee-good -VAfile hk/rsa-ca/ocsp.pem -no_nonce
    assert_contains "hk/rsa-ca/ee-good.pem: good" "$OUT" "before: the relayed good" || return 0
    snap b
    since=$(($(date +%s) - 5))
    side_list hk 2 "$HK_RSA_SERVICE" "$SUSPENDED"
    for ((i = 0; i < 50; i++)); do
        ossl hk/rsa-ca ee-good -VAfile signers/hk-responder.pem -no_nonce
        [[ $OUT == *"ee-good.pem: revoked"* ]] && break
        [[ $OUT == *"ee-good.pem: good"* ]] || fail "while waiting for the suspension: $OUT"
        sleep 0.1
    done
    assert_contains "Response verify OK" "$OUT" "suspended: verified against trustgate's responder"
    assert_contains "hk/rsa-ca/ee-good.pem: revoked" "$OUT" "suspended: status" || return 0
    assert_contains "Reason: certificateHold" "$OUT" "suspended: reason"
    assert_near "$since" "$(epoch "$(oline "$OUT" "Revocation Time")")" 2 "suspended: revocationTime = suspension start"
    snap a
    mkreq hk/rsa-ca ee-good "$WORK/sus-req.der"
    for ((i = 0; i < 5; i++)); do
        post "$WORK/sus-req.der" "$WORK/sus-post.der"
        code=$(curl -s --max-time 10 -D "$WORK/sus-h" -o "$WORK/sus-get.der" -w '%{http_code}' \
            "$URL/$(get_path "$WORK/sus-req.der")") || true
        assert_eq 200 "$code" "GET $i: status"
        for f in sus-post sus-get; do
            OUT=$(cd "$D" && openssl ocsp -respin "$WORK/$f.der" -issuer hk/rsa-ca/ca.pem -cert hk/rsa-ca/ee-good.pem \
                -VAfile signers/hk-responder.pem 2>&1) || true
            if ! assert_contains "Response verify OK" "$OUT" "$f $i: verified" ||
                ! assert_contains "ee-good.pem: revoked" "$OUT" "$f $i: status" ||
                ! assert_contains "Reason: certificateHold" "$OUT" "$f $i: reason"; then
                break 2
            fi
            if cmp -s "$WORK/$f.der" "$WORK/relay-good.der"; then fail "$f $i: the cached good was served"; fi
        done
        assert_match "no-store" "$(tr -d '\r' <"$WORK/sus-h" | grep -i '^cache-control:')" "GET $i: Cache-Control of the rejection"
        ossl hk/rsa-ca ee-good -VAfile signers/hk-responder.pem
        assert_contains "Reason: certificateHold" "$OUT" "openssl with a nonce $i: reason"
        [[ $OUT != *"WARNING: no nonce"* ]] || fail "openssl with a nonce $i: the rejection does not echo the nonce"
    done
    snap c
    assert_md a c "$(mname_dec revoked_suspended)" 15 "15 answers while suspended"
    assert_md a c "$(mname_dec upstream_relayed)" 0 "no relayed answer while suspended"
    assert_md b c "$(mname_up ok)" 0 "no upstream request while suspended"
    # reinstated: the cached good (still fresh) is relayed again
    side_list hk 3 "$HK_RSA_SERVICE" "$GRANTED"
    for ((i = 0; i < 50; i++)); do
        ossl hk/rsa-ca ee-good -VAfile hk/rsa-ca/ocsp.pem -no_nonce -respout "$WORK/reinstated.der"
        [[ $OUT == *"ee-good.pem: good"* ]] && break
        sleep 0.1
    done
    assert_contains "hk/rsa-ca/ee-good.pem: good" "$OUT" "reinstated: status"
    cmp -s "$WORK/reinstated.der" "$WORK/relay-good.der" || fail "reinstated: not the cached answer of the CA"
    snap d
    assert_md c d "$(mname_up ok)" 0 "reinstated: no upstream request"
}

# ---------------------------------------------------------------------------
# 2 (hk), 3: sign mode for hk; an SM2 upstream with the empty ID

test_sign_hk() {
    t_name "sign (hk mode = sign): openssl ocsp -VAfile trustgate's responder, with its nonce check, gets good / revoked with the CA's times; repeated queries from the cache"
    local t0 this next
    t0=$(date +%s)
    snap b
    ossl hk/rsa-ca ee-good -VAfile signers/hk-responder.pem -resp_text
    assert_contains "Response verify OK" "$OUT" "ee-good: verified against trustgate's responder" || return 0
    assert_contains "hk/rsa-ca/ee-good.pem: good" "$OUT" "ee-good: status"
    [[ $OUT != *"WARNING: no nonce"* && $OUT != *"nonce verify error"* ]] || fail "ee-good: the nonce is not echoed: $OUT"
    assert_ne "" "$(grep -E 'OCSP Nonce' <<<"$OUT")" "ee-good: the response carries the nonce"
    [[ $(oline "$OUT" "Responder Id") != *"$CA_RESPONDER"* ]] || fail "ee-good: the CA's responder id in a signed answer"
    this=$(epoch "$(oline "$OUT" "This Update")")
    next=$(epoch "$(oline "$OUT" "Next Update")")
    assert_near "$t0" "$this" 10 "ee-good: thisUpdate (the upstream's)"
    [[ $this =~ ^[0-9]+$ && $next =~ ^[0-9]+$ ]] && assert_eq 3600 "$((next - this))" "ee-good: nextUpdate - thisUpdate (the upstream's)"
    ossl hk/rsa-ca ee-revoked -VAfile signers/hk-responder.pem
    assert_contains "Response verify OK" "$OUT" "ee-revoked: verified"
    assert_contains "hk/rsa-ca/ee-revoked.pem: revoked" "$OUT" "ee-revoked: status"
    assert_contains "Reason: keyCompromise" "$OUT" "ee-revoked: reason"
    [[ $OUT != *"WARNING: no nonce"* ]] || fail "ee-revoked: the nonce is not echoed"
    snap a
    assert_md b a "$(mname_up ok)" 2 "two certificates"
    assert_md b a "$(mname_dec upstream_signed)" 2 "two certificates"
    assert_md b a 'trustgate_signing_operations_total{alg="ecdsa-p256"}' 2 "two live-signed (nonce) answers"
    assert_eq 2 "$(stub_count 1)" "requests seen by the CA's responder"
    ossl hk/rsa-ca ee-good -VAfile signers/hk-responder.pem -no_nonce
    assert_contains "hk/rsa-ca/ee-good.pem: good" "$OUT" "no nonce: status"
    sleep 0.3
    snap c
    ossl hk/rsa-ca ee-good -VAfile signers/hk-responder.pem -no_nonce
    assert_contains "Response verify OK" "$OUT" "no nonce again: verified"
    assert_eq "$(iso "$this")" "$(iso "$(epoch "$(oline "$OUT" "This Update")")")" "no nonce again: the upstream's thisUpdate"
    snap d
    assert_md a d "$(mname_up ok)" 0 "repeated queries: no upstream request"
    assert_md c d 'trustgate_ocsp_presigned_total{result="hit"}' 1 "no nonce again: the signed answer from the cache"
    assert_eq 2 "$(stub_count 1)" "requests seen by the CA's responder after the repeats"
}

test_sm2_empty_id() {
    t_name "an SM2 upstream signing with OpenSSL's empty ID (gd/personal-ca, -rmd sm3 without distid) is refused: bad_signature, the answer comes from the CRL, nothing cached"
    local up=http://127.0.0.1:$((PORT + 3))/
    # the responder works; only its signature's ID is wrong
    QRC=0
    QOUT=$(cd "$D" && timeout 20 "$TG" query --url "$up" --issuer gd/personal-ca/ca.pem \
        --cert gd/personal-ca/ee-good.pem 2>&1) || QRC=$?
    assert_eq 4 "$QRC" "trustgate query straight to that responder: exit status ($QOUT)"
    assert_eq "FAILED (bad_signature)" "$(line verification)" "trustgate query straight to that responder"
    OUT=$(cd "$D" && timeout 20 openssl ocsp -url "$up" -issuer gd/personal-ca/ca.pem \
        -cert gd/personal-ca/ee-good.pem -noverify -no_nonce 2>&1) || true
    assert_contains "gd/personal-ca/ee-good.pem: good" "$OUT" "openssl -noverify straight to that responder"
    local i
    for i in 1 2; do
        snap b
        query --issuer gd/personal-ca/ca.pem --cert gd/personal-ca/ee-good.pem --signer signers/gd-responder.pem
        snap a
        assert_eq 0 "$QRC" "query $i: exit status ($QOUT)"
        assert_eq "OK (sm2-with-sm3)" "$(line signature)" "query $i: trustgate's SM2 signature"
        assert_eq "$(iso "$(crl_epoch "$D/gd/personal-ca/crl.der" lastupdate)")" "$(line thisUpdate)" "query $i: thisUpdate = the CRL's"
        assert_eq "$(iso "$(crl_epoch "$D/gd/personal-ca/crl.der" nextupdate)")" "$(line nextUpdate)" "query $i: nextUpdate = the CRL's"
        assert_md b a "$(mname_up bad_signature)" 1 "query $i (asked again: nothing cached)"
        assert_md b a "$ASKS" 1 "query $i"
        assert_md b a "$(mname_up ok)" 0 "query $i"
        assert_md b a "$(mname_dec good_crl)" 1 "query $i"
        assert_md b a "$(mname_dec upstream_signed)" 0 "query $i"
    done
    query --issuer gd/personal-ca/ca.pem --cert gd/personal-ca/ee-revoked.pem --signer signers/gd-responder.pem
    assert_eq 1 "$QRC" "ee-revoked: exit status ($QOUT)"
    assert_eq "keyCompromise (1)" "$(line reason)" "ee-revoked: reason (from the CRL)"
}

# ---------------------------------------------------------------------------
# 4: faults (hk/rsa-ca's upstream on PORT+1; hk/ecc-ca's real responder on
# PORT+2 is the other CA)

# fault_twice WHAT RESULT KIND [EE]: two queries for hk/rsa-ca EE (ee-good)
# each ask the upstream again and are refused as RESULT; the answer is
# KIND: trylater (no CRL in this world) or crl (the fresh CRL's, signed by
# trustgate); the second stores nothing in the OCSP cache (the first may
# have stored trustgate's own signed CRL answer).
fault_twice() {
    local what=$1 result=$2 kind=$3 ee=${4:-ee-good} i st=good
    [[ $ee == ee-revoked ]] && st=revoked
    for i in 1 2; do
        ((i == 2)) && sleep 0.3 # what the first stored went through the cache's writer
        snap b
        ossl hk/rsa-ca "$ee" -VAfile signers/hk-responder.pem -no_nonce
        ((i == 2)) && sleep 0.3
        snap a
        ((i == 2)) && assert_md b a "$OCSP_ENTRIES" 0 "$what, query $i: nothing new in the OCSP cache"
        if [[ $kind == trylater ]]; then
            tries_later "$what, query $i"
            assert_md b a "$(mname_dec trylater_no_status)" 1 "$what, query $i"
        else
            from_crl hk/rsa-ca "$ee" "$st" "$what, query $i"
            assert_md b a "$(mname_dec "${st}_crl")" 1 "$what, query $i"
        fi
        assert_md b a "$(mname_up "$result")" 1 "$what, query $i (asked again: nothing cached)"
        assert_md b a "$ASKS" 1 "$what, query $i"
        assert_md b a "$(mname_up ok)" 0 "$what, query $i"
        assert_md b a "$(mname_dec upstream_relayed)" 0 "$what, query $i"
    done
}

# fault_world NAME CMD...: a world for one fault (fault_world_keep).
NOCRL=1
TIMEOUT_MS=1000
fault_world() {
    world "$1" "$TPL_A"
    fault_world_keep "$@"
}

# fault_world_keep NAME CMD...: the world just made (world NAME) set up for
# one fault: no CRL for hk/rsa-ca when NOCRL=1, timeout_ms TIMEOUT_MS;
# hk/ecc-ca's own responder; then CMD (it starts hk/rsa-ca's upstream on
# PORT+1, or not: down); the server; the other CA primed.
fault_world_keep() {
    shift
    ini_set upstream timeout_ms "$TIMEOUT_MS"
    [[ $NOCRL == 1 ]] && no_crl hk/rsa-ca
    responder 2 || return 1
    if (($# > 0)); then "$@" || return 1; fi
    world_start $((NOCRL == 1 ? 3 : 4)) || return 1
    prime_other
}

test_fault_down() {
    t_name "fault: upstream down (closed port; no CRL): tryLater, 'connect' each time, nothing cached; after 5 failures the breaker opens and answers come at once; the other CA at full speed"
    local i t0 t1
    fault_twice "down" connect trylater
    snap b
    for i in 3 4 5; do ossl hk/rsa-ca ee-good -no_nonce; done
    snap a
    assert_md b a "$(mname_up connect)" 3 "failures 3 to 5"
    assert_eq 1 "$(breaker $((PORT + 1)))" "breaker of http://127.0.0.1:$((PORT + 1))/ after 5 failures"
    assert_eq 0 "$(breaker $((PORT + 2)))" "breaker of the other CA's responder"
    mkreq hk/rsa-ca ee-revoked "$WORK/down-rev.der"
    t0=$(date +%s%N)
    post "$WORK/down-rev.der" "$WORK/down-rev-resp.der"
    t1=$(date +%s%N)
    assert_eq 30030a0103 "$(hex "$WORK/down-rev-resp.der")" "breaker open: ee-revoked answered tryLater"
    assert_le "$(((t1 - t0) / 1000000))" 100 "breaker open: ms to the answer"
    for i in 1 2 3; do ossl hk/rsa-ca ee-good -no_nonce; done
    tries_later "breaker open"
    local -a reqs=()
    for i in 1 2 3 4; do
        mkreq hk/rsa-ca "$(randserial)" "$WORK/down-r$i.der"
        reqs+=("$WORK/down-r$i.der")
    done
    full_speed "breaker open" 3 "${reqs[@]}"
    snap c
    assert_md a c "$(mname_up connect)" 0 "breaker open: no connection tried"
    assert_md a c "$SKIPS" 8 "breaker open: answers that skipped the upstream"
    assert_md a c "$ASKS" 0 "breaker open: no ask"
}

test_fault_slow() {
    t_name "fault: upstream slow past timeout_ms (accepts, never answers; no CRL): tryLater after the timeout, 'timeout' each time; the other CA at full speed meanwhile; then the breaker"
    local t0 t1 ms i
    for i in 1 2; do
        snap b
        t0=$(date +%s%N)
        ossl hk/rsa-ca ee-good -no_nonce
        t1=$(date +%s%N)
        snap a
        ms=$(((t1 - t0) / 1000000))
        tries_later "slow, query $i"
        assert_le $((TIMEOUT_MS - 50)) "$ms" "slow, query $i: waited the timeout (ms)"
        assert_le "$ms" $((TIMEOUT_MS + 700)) "slow, query $i: not much longer than the timeout (ms)"
        assert_md b a "$(mname_up timeout)" 1 "slow, query $i (asked again: nothing cached)"
        assert_md b a "$ASKS" 1 "slow, query $i"
        assert_eq "$i" "$(stub_count 1)" "slow, query $i: requests seen by the upstream"
    done
    # two more asks out while the other CA is asked 200 times
    mkreq hk/rsa-ca "$(randserial)" "$WORK/slow-r1.der"
    mkreq hk/rsa-ca "$(randserial)" "$WORK/slow-r2.der"
    snap b
    full_speed "while two asks hang" 3 "$WORK/slow-r1.der" "$WORK/slow-r2.der"
    assert_eq True "$(jget "$LOAD" 'd["fast_before_slow"]')" "the 200 answers came while the two asks hung"
    snap a
    assert_md b a "$(mname_up timeout)" 2 "the two hanging asks"
    assert_eq 0 "$(breaker $((PORT + 1)))" "breaker after 4 failures"
    ossl hk/rsa-ca ee-good -no_nonce
    assert_eq 1 "$(breaker $((PORT + 1)))" "breaker after 5 failures"
    snap b
    t0=$(date +%s%N)
    ossl hk/rsa-ca ee-good -no_nonce
    t1=$(date +%s%N)
    snap a
    tries_later "breaker open"
    assert_le "$(((t1 - t0) / 1000000))" 300 "breaker open: ms to the tryLater (openssl included)"
    assert_md b a "$SKIPS" 1 "breaker open"
    assert_md b a "$(mname_up timeout)" 0 "breaker open"
    assert_eq 5 "$(stub_count 1)" "requests seen by the upstream in all"
}

test_fault_limit() {
    t_name "fault: 12 asks for different certificates at a slow upstream: at most 8 in the air (per-upstream limit), all tryLater, breaker open; (known issues: none waits much past timeout_ms; none sent after the breaker opened)"
    local r i n max ok
    local -a reqs=()
    for i in $(seq 1 12); do
        mkreq hk/rsa-ca "$(randserial)" "$WORK/lim-r$i.der"
        reqs+=("$WORK/lim-r$i.der")
    done
    mkdir -p "$WORK/lim"
    snap b
    r=$(python3 "$CLIENT" burst "$PORT" "$WORK/lim" "${reqs[@]}" 2>&1) || true
    snap a
    echo "    note: 12 asks at a slow upstream: $r; upstream saw $(stub_count 1) requests, at most $(cat "$D/stub-1/inflight-max") at once"
    assert_eq 12 "$(jget "$r" 'd["codes"].get("200/3", 0)')" "tryLater answers"
    max=$(cat "$D/stub-1/inflight-max")
    assert_le "$max" 8 "requests in the air at once at the upstream"
    assert_eq 8 "$max" "requests in the air at once at the upstream (the limit reached)"
    assert_eq 1 "$(breaker $((PORT + 1)))" "breaker open"
    # README: "after 5 failures in a row the responder is not asked for
    # 30 s" and "the client waits — timeout_ms at most"
    assert_eq 8 "$(stub_count 1)" "requests the upstream saw: the 4 queued asks fail once the breaker opens"
    max=$(jget "$r" 'd["max_ms"]')
    assert_le "$max" $((TIMEOUT_MS + 700)) "slowest client (ms): timeout_ms at most, time in the queue included"
}

test_fault_garbage() {
    t_name "fault: upstream answers 200 with random bytes (CRL held): the CRL's signed answer, 'malformed' each time, nothing cached; the other CA at full speed"
    fault_twice "garbage" malformed crl
    fault_twice "garbage" malformed crl ee-revoked
    mkreq hk/rsa-ca "$(randserial)" "$WORK/g-r1.der"
    full_speed "garbage" 0 "$WORK/g-r1.der"
    assert_eq 5 "$(stub_count 1)" "requests seen by the upstream"
}

test_fault_other_cert() {
    t_name "fault: upstream answers with a valid response for another certificate (ee-revoked's, replayed; no CRL): tryLater, 'certid_mismatch', nothing cached (not even under ee-revoked)"
    fault_twice "other certificate" certid_mismatch trylater
    mkreq hk/rsa-ca "$(randserial)" "$WORK/o-r1.der"
    full_speed "other certificate" 3 "$WORK/o-r1.der"
    # asked about ee-revoked, the same bytes are its answer: it was not
    # cached before, and now is relayed
    snap b
    ossl hk/rsa-ca ee-revoked -VAfile hk/rsa-ca/ocsp.pem -no_nonce -respout "$WORK/o-rev.der"
    snap a
    assert_contains "hk/rsa-ca/ee-revoked.pem: revoked" "$OUT" "ee-revoked: the replayed answer fits it"
    assert_md b a "$(mname_up ok)" 1 "ee-revoked: asked (it had not been cached)"
    cmp -s "$WORK/o-rev.der" "$WORK/canned-revoked.der" || fail "ee-revoked: not the replayed bytes"
}

test_fault_signer() {
    t_name "fault: upstream signs with a certificate the CA did not issue (trustgate's own hk responder key; CRL held): the CRL's answer, 'unauthorized_signer', nothing cached"
    # the upstream answers with good and openssl accepts it for
    # signers/hk-responder.pem: only trustgate's check of the signer stops it
    OUT=$(cd "$D" && timeout 20 openssl ocsp -url "http://127.0.0.1:$((PORT + 1))/" -issuer hk/rsa-ca/ca.pem \
        -cert hk/rsa-ca/ee-good.pem -VAfile signers/hk-responder.pem -no_nonce 2>&1) || true
    assert_contains "Response verify OK" "$OUT" "straight to the upstream: verified with trustgate's responder certificate"
    fault_twice "unauthorised signer" unauthorized_signer crl
    mkreq hk/rsa-ca "$(randserial)" "$WORK/s-r1.der"
    full_speed "unauthorised signer" 0 "$WORK/s-r1.der"
}

# canned STATE_FILE MKOCSP_OPTIONS...: the stub's file (served to every
# request) becomes mkocsp's answer to hk/rsa-ca ee-good, signed by the
# CA's delegated responder.
canned() {
    local f=$1
    shift
    mkreq hk/rsa-ca ee-good "$WORK/canned-req.der"
    "$MKOCSP" --req "$WORK/canned-req.der" --cert "$D/hk/rsa-ca/ocsp.pem" --key "$D/hk/rsa-ca/ocsp.key" \
        --out "$f.new" "$@" || fail "mkocsp $*"
    mv -f "$f.new" "$f"
}

test_fault_expired() {
    t_name "fault: upstream answers expired (nextUpdate an hour ago, CA's responder; no CRL): tryLater, 'expired', nothing cached"
    OUT=$(cd "$D" && openssl ocsp -respin "$D/serve.der" -issuer hk/rsa-ca/ca.pem -cert hk/rsa-ca/ee-good.pem \
        -VAfile hk/rsa-ca/ocsp.pem -no_nonce 2>&1) || true
    assert_contains "Response verify OK" "$OUT" "the canned answer's signature verifies"
    assert_contains "status expired" "$OUT" "openssl sees it expired"
    fault_twice "expired" expired trylater
    mkreq hk/rsa-ca "$(randserial)" "$WORK/e-r1.der"
    full_speed "expired" 3 "$WORK/e-r1.der"
}

# refusal WHAT RESULT MKOCSP_OPTIONS...: the stub serves that answer; two
# queries refused as RESULT (tryLater: no CRL). The failures in a row end
# with a valid answer (unknown) for a random serial, so the breaker stays shut.
refusal() {
    local what=$1 result=$2 s
    shift 2
    if [[ $1 == --hex ]]; then
        python3 -c 'import sys; open(sys.argv[2], "wb").write(bytes.fromhex(sys.argv[1]))' "$2" "$D/serve.der.new" &&
            mv -f "$D/serve.der.new" "$D/serve.der"
    else
        canned "$D/serve.der" "$@"
    fi
    fault_twice "$what" "$result" trylater
    s=$(randserial)
    mkreq hk/rsa-ca "$s" "$WORK/reset-req.der"
    "$MKOCSP" --req "$WORK/reset-req.der" --cert "$D/hk/rsa-ca/ocsp.pem" --key "$D/hk/rsa-ca/ocsp.key" \
        --status unknown --out "$D/serve.der"
    OUT=$(cd "$D" && timeout 20 openssl ocsp -url "$URL" -issuer hk/rsa-ca/ca.pem -serial "$s" -no_nonce -noverify 2>&1) || true
    assert_contains "$s: unknown" "$OUT" "$what: a valid answer after it (the breaker's count reset)"
}

test_fault_more() {
    t_name "fault: more refused upstream answers (no CRL): not yet valid, no nextUpdate, good and revoked for one CertID, an unsigned tryLater, HTTP 503 — tryLater, counted by reason, nothing cached"
    refusal "thisUpdate an hour ahead" not_yet_valid --this +1h --next +2h
    refusal "no nextUpdate" no_next_update --next none
    refusal "good and revoked for one CertID" duplicate_single --dup
    refusal "the upstream's tryLater" upstream_status --hex 30030a0103
    refusal "HTTP 503" http_status --hex "$(printf 'HTTP 503' | od -An -tx1 | tr -d ' \n')"
    assert_eq 0 "$(breaker $((PORT + 1)))" "breaker (every second failure followed by a success)"
}

# ---------------------------------------------------------------------------
# 7 and the breaker's probe: the long world, run in the background while
# the others run (template B's ports)

LONG_D=
LONG_PORT=
LONG_SRV=
LONG_LOOP=
LONG_BREAKER_T=
LONG_RUN_S=47 # the refresh comes 10..35 s after the first answer
PROBE_DELAY=250 # the world's timeout_ms is 500
LONG_PIDS=()

long_use() {
    D=$LONG_D
    PORT=$LONG_PORT
    URL=http://127.0.0.1:$PORT/ocsp
    SRV_PID=$LONG_SRV
    WORLD_PIDS=(${LONG_PIDS[@]+"${LONG_PIDS[@]}"})
}

# refresh_loop SECONDS: queries hk/rsa-ca ee-good every 5 s for SECONDS,
# one line each: elapsed, status, thisUpdate, verified, nextUpdate, the
# time of the answer (epochs).
refresh_loop() {
    local t0 now out st tu nu v
    t0=$(date +%s)
    while :; do
        now=$(date +%s)
        out=$(cd "$D" && timeout 10 openssl ocsp -url "$URL" -issuer hk/rsa-ca/ca.pem -cert hk/rsa-ca/ee-good.pem \
            -VAfile hk/rsa-ca/ocsp.pem -no_nonce 2>&1) || true
        st=$(sed -n 's|^hk/rsa-ca/ee-good.pem: ||p' <<<"$out")
        [[ $out == *"Responder Error: trylater"* ]] && st=tryLater
        tu=$(epoch "$(oline "$out" "This Update")")
        nu=$(epoch "$(oline "$out" "Next Update")")
        v=no
        [[ $out == *"Response verify OK"* ]] && v=yes
        echo "$((now - t0)) ${st:-none} $tu $v $nu $(date +%s)"
        (($(date +%s) - t0 + 5 > $1)) && break
        sleep $((t0 + (now - t0) + 5 - $(date +%s))) 2>/dev/null || true
    done
}

test_long_start() {
    t_name "background world: hk/ecc-ca's upstream down until its breaker opens; hk/rsa-ca's upstream gives 60-s answers (refresh_ahead_s = 50), queried every 5 s from now on"
    world long "$TPL_B"
    LONG_D=$D
    LONG_PORT=$PORT
    ini_set upstream refresh_ahead_s 50
    ini_set upstream timeout_ms 500
    no_crl hk/ecc-ca
    behind_proxy 1 0 "s/ -nmin 60/ -nmin 1/" || return 0
    world_start 3 || return 0
    LONG_SRV=$SRV_PID
    LONG_PIDS=("${WORLD_PIDS[@]}")
    local i
    for i in 1 2 3 4 5; do ossl hk/ecc-ca ee-good -no_nonce; done
    tries_later "hk/ecc-ca, upstream down"
    assert_eq 1 "$(breaker $((PORT + 2)))" "hk/ecc-ca's breaker after 5 failures"
    LONG_BREAKER_T=$(date +%s)
    snap long-a
    refresh_loop "$LONG_RUN_S" >"$D/refresh.txt" 2>&1 &
    LONG_LOOP=$!
    PIDS+=("$LONG_LOOP")
}

test_long_refresh() {
    t_name "refresh ahead: one client waited (one ask), at least one refresh; the thisUpdate clients see moves forward; never tryLater, never past nextUpdate"
    [[ -n $LONG_LOOP ]] || {
        fail "the background world did not start"
        return 0
    }
    long_use
    local i
    for ((i = 0; i < (LONG_RUN_S + 20) * 10; i++)); do
        kill -0 "$LONG_LOOP" 2>/dev/null || break
        sleep 0.1
    done
    wait "$LONG_LOOP" 2>/dev/null || true
    forget_pid "$LONG_LOOP"
    snap long-b
    echo "    note: refresh queries (elapsed status thisUpdate verified): $(tr '\n' ';' <"$D/refresh.txt")"
    local n first last prev moved=0 bad
    n=$(wc -l <"$D/refresh.txt")
    assert_le 9 "$n" "queries made"
    bad=$(awk '$2 != "good" || $4 != "yes"' "$D/refresh.txt")
    assert_eq "" "$bad" "queries that did not get a verified good"
    bad=$(awk '!($5 ~ /^[0-9]+$/) || $5 <= $6' "$D/refresh.txt")
    assert_eq "" "$bad" "answers at or past their nextUpdate"
    first=$(awk 'NR == 1 { print $3 }' "$D/refresh.txt")
    last=$(awk 'END { print $3 }' "$D/refresh.txt")
    prev=$first
    while read -r _ _ tu _; do
        [[ $tu =~ ^[0-9]+$ && $prev =~ ^[0-9]+$ ]] || continue
        ((tu < prev)) && fail "thisUpdate went back: $prev -> $tu"
        ((tu > prev)) && moved=$((moved + 1))
        prev=$tu
    done <"$D/refresh.txt"
    assert_le 1 "$moved" "times the thisUpdate seen moved forward"
    [[ $first =~ ^[0-9]+$ && $last =~ ^[0-9]+$ ]] && assert_le 10 "$((last - first))" "seconds the thisUpdate moved"
    assert_md long-a long-b "$ASKS" 1 "asks (only the first query waited)"
    local r
    r=$(md long-a long-b "$REFRESHES")
    assert_le 1 "$r" "refreshes"
    assert_eq "$((1 + r))" "$(stub_count 1)" "requests seen by hk/rsa-ca's responder (1 + refreshes)"
    assert_md long-a long-b "$(mname_up ok)" "$((1 + r))" "ok results (1 + refreshes)"
    assert_md long-a long-b "$(mname_dec trylater_no_status)" 0 "tryLater answers"
}

test_long_probe() {
    t_name "breaker: 30 s after it opened, one probe goes to the upstream (back, slow); concurrent asks fail at once (breaker_open); the probe's success closes it"
    [[ -n $LONG_BREAKER_T ]] || {
        fail "the background world did not start"
        return 0
    }
    long_use
    local wait_s=$((LONG_BREAKER_T + 31 - $(date +%s))) r i
    ((wait_s > 0)) && sleep "$wait_s"
    behind_proxy 2 "$PROBE_DELAY" || return 0
    local -a reqs=()
    mkreq hk/ecc-ca ee-good "$WORK/probe-0.der"
    reqs+=("$WORK/probe-0.der")
    for i in 1 2 3 4; do
        mkreq hk/ecc-ca "$(randserial)" "$WORK/probe-$i.der"
        reqs+=("$WORK/probe-$i.der")
    done
    mkdir -p "$WORK/probe"
    snap b
    r=$(python3 "$CLIENT" burst "$PORT" "$WORK/probe" "${reqs[@]}" 2>&1) || true
    snap a
    echo "    note: 5 asks at the half-open breaker: $r"
    assert_eq 1 "$(stub_count 2)" "requests that reached hk/ecc-ca's responder (the probe)"
    assert_md b a "$(mname_up breaker_open)" 4 "asks refused while the probe was out"
    assert_md b a "$(mname_up ok)" 1 "the probe"
    assert_eq 1 "$(jget "$r" 'd["codes"].get("200/0", 0)')" "successful answers (the probe's client)"
    assert_eq 4 "$(jget "$r" 'd["codes"].get("200/3", 0)')" "tryLater answers (no CRL for hk/ecc-ca)"
    assert_le "$PROBE_DELAY" "$(jget "$r" 'max(x[2] for x in d["results"] if x[1] == 0)')" "the probe's client waited for it (ms)"
    assert_le "$(jget "$r" 'max(x[2] for x in d["results"] if x[1] == 3)')" 400 "the others were answered at once (ms)"
    assert_eq 0 "$(breaker $((PORT + 2)))" "breaker closed after the probe"
    snap b
    ossl hk/ecc-ca ee-revoked -VAfile hk/ecc-ca/ocsp.pem -no_nonce
    snap a
    assert_contains "hk/ecc-ca/ee-revoked.pem: revoked" "$OUT" "after the probe: relayed"
    assert_md b a "$(mname_up ok)" 1 "after the probe: asked"
    assert_eq 2 "$(stub_count 2)" "requests that reached hk/ecc-ca's responder after that"
    t_name "background world: server exits 0 on SIGTERM; no sanitizer report"
    world_stop
}

# ---------------------------------------------------------------------------

T0=$(date +%s)
[[ -x $TG ]] || {
    echo "missing $TG (make all)" >&2
    exit 1
}

t_name "setup: two demo worlds (trustgate demo --port N) on a free run of 10 ports"
BASE=$(free_port_run 10) || BASE=
TPL_A=$WORK/tpl-a
TPL_B=$WORK/tpl-b
if [[ -z $BASE ]] || ! "$TG" demo --port "$BASE" "$TPL_A" >"$WORK/demo-a.log" 2>&1 ||
    ! "$TG" demo --port $((BASE + 5)) "$TPL_B" >"$WORK/demo-b.log" 2>&1; then
    fail "trustgate demo failed (ports from '$BASE'):"
    tail -n 5 "$WORK"/demo-*.log 2>/dev/null | sed 's/^/        | /'
    t_summary
    exit 1
fi
t_end

# group NAME SETUP_FN TEST_FN...: a world made by SETUP_FN, its tests, the
# server stopped.
group() {
    local name=$1 setup=$2 fn
    shift 2
    t_name "setup: world '$name'"
    if ! "$setup"; then
        fail "world '$name' could not be set up"
        world_stop
        t_end
        return 0
    fi
    t_end
    for fn in "$@"; do run_test "$fn"; done
    t_name "world '$name': server exits 0 on SIGTERM; no sanitizer report; upstreams stopped"
    world_stop
    t_end
}

setup_main() {
    world main "$TPL_A"
    behind_proxy 1 0 || return 1                 # hk/rsa-ca, recorded
    behind_proxy 2 "$SF_DELAY" || return 1       # hk/ecc-ca, slowed
    responder 3 || return 1                      # gd/personal-ca, SM2 with the ID
    world_start 4
}
setup_hksign() {
    world hksign "$TPL_A"
    ini_set "trustlist hk" mode sign
    behind_proxy 1 0 || return 1
    world_start 4
}
setup_emptyid() {
    world emptyid "$TPL_A"
    responder 3 "s/ -rsigopt distid:$ID//" || return 1
    world_start 4
}
setup_down() { NOCRL=1 TIMEOUT_MS=1000 fault_world down; }
setup_slow() { NOCRL=1 TIMEOUT_MS=1000 fault_world slow stub 1 slow 30; }
setup_limit() { NOCRL=1 TIMEOUT_MS=1000 fault_world limit stub 1 slow 30; }
setup_garbage() { NOCRL=0 TIMEOUT_MS=1000 fault_world garbage stub 1 garbage; }
setup_other_cert() {
    world other-cert "$TPL_A"
    # the CA's own responder's answer about ee-revoked, made offline
    mkreq hk/rsa-ca ee-revoked "$WORK/canned-rev-req.der"
    (cd "$D" && openssl ocsp -index hk/rsa-ca/index.txt -CA hk/rsa-ca/ca.pem -rsigner hk/rsa-ca/ocsp.pem \
        -rkey hk/rsa-ca/ocsp.key -reqin "$WORK/canned-rev-req.der" -respout "$WORK/canned-revoked.der" -nmin 60) \
        >/dev/null 2>&1 || return 1
    NOCRL=1 TIMEOUT_MS=1000 fault_world_keep other-cert stub 1 file "$WORK/canned-revoked.der"
}
setup_signer() {
    NOCRL=0 TIMEOUT_MS=1000 fault_world signer responder 1 \
        "s| -rsigner [^ ]*| -rsigner signers/hk-responder.pem|" "s| -rkey [^ ]*| -rkey signers/hk-responder.key|"
}
setup_expired() {
    world expired "$TPL_A"
    canned "$D/serve.der" --this -2h --next -1h --produced -2h
    NOCRL=1 TIMEOUT_MS=1000 fault_world_keep expired stub 1 file "$D/serve.der"
}
setup_more() {
    world more "$TPL_A"
    NOCRL=1 TIMEOUT_MS=1000 fault_world_keep more stub 1 file "$D/serve.der"
}

# the background world first: it runs about a minute
run_test test_long_start
group main setup_main test_relay test_sign_gd_sm2 test_single_flight test_suspend
group hksign setup_hksign test_sign_hk
group emptyid setup_emptyid test_sm2_empty_id
group down setup_down test_fault_down
group slow setup_slow test_fault_slow
group limit setup_limit test_fault_limit
group garbage setup_garbage test_fault_garbage
group other-cert setup_other_cert test_fault_other_cert
group signer setup_signer test_fault_signer
if [[ -x $MKOCSP ]]; then
    group expired setup_expired test_fault_expired
    group more setup_more test_fault_more
else
    t_name "setup: $MKOCSP (tests/integration/mkocsp.c) is built"
    fail "missing $MKOCSP: the expired and other refused-answer faults cannot run"
    t_end
fi
run_test test_long_refresh
run_test test_long_probe

echo "note: upstream.sh ran $(($(date +%s) - T0)) s"
t_summary
