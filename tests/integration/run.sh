#!/usr/bin/env bash
# trustgate integration tests: start real trustgate processes on loopback and
# hold them to SPEC §3-§5 from the outside (curl, openssl ocsp, raw sockets).
#
#   TG_VECTORS=../shared/vectors TG_BUILD=build bash tests/integration/run.sh
#
# TG_BUILD may be build/asan: the binaries are then "$TG_BUILD/trustgate" and
# "$TG_BUILD/tests/malformed". TG_ONLY=regex runs only the matching tests.
# The last line is always "N passed, M failed"; the exit status is non-zero
# when anything failed. Everything lives in a mktemp -d folder that is
# removed on exit, and every process started here is killed by PID.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# http METHOD URL [BODYFILE [curl args...]]: one request with curl. Sets CODE
# (or "curl-error-N"); headers in $WORK/h, body in $WORK/b.
http() {
    local method=$1 url=$2 data=${3:-}
    if (($# >= 3)); then shift 3; else shift $#; fi
    local args=(-s -g -o "$WORK/b" -D "$WORK/h" -w '%{http_code}' --max-time 10)
    args+=(-X "$method")
    if [[ -n $data ]]; then
        args+=(--data-binary "@$data")
    fi
    : >"$WORK/b"
    : >"$WORK/h"
    local rc=0
    CODE=$(curl "${args[@]}" "$@" "$url" 2>/dev/null) || rc=$?
    if ((rc != 0)); then CODE="curl-error-$rc"; fi
}

# ocsp_post URL DERFILE [content-type]: POST an OCSP request.
ocsp_post() {
    http POST "$1" "$2" -H "Content-Type: ${3:-application/ocsp-request}"
}

# hdr NAME: value of the last NAME header of the last response ("" if none).
hdr() {
    { grep -i "^$1:" "$WORK/h" || true; } | tail -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//; s/ *$//'
}

# b64url_path DERFILE MODE: base64 of the file, for a GET path.
#   raw: + / = as they are; pct: %2B %2F %3D; lower: %2b %2f %3d;
#   url: base64url without padding.
b64_path() {
    local s
    s=$(base64 -w0 <"$1")
    case $2 in
    raw) printf '%s' "$s" ;;
    pct) printf '%s' "$s" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g' ;;
    lower) printf '%s' "$s" | sed 's/+/%2b/g; s|/|%2f|g; s/=/%3d/g' ;;
    url) printf '%s' "$s" | tr '+/' '-_' | tr -d '=' ;;
    esac
}

# expect_ocsp WANT_HEX WHAT: checks the last response is an HTTP 200 OCSP
# answer with that exact body and the headers SPEC §5 asks for.
expect_ocsp() {
    local want=$1 what=$2
    assert_eq 200 "$CODE" "$what: HTTP status" || return 1
    assert_eq "$want" "$(hex "$WORK/b")" "$what: body" || true
    assert_match '^application/ocsp-response' "$(hdr Content-Type)" "$what: Content-Type" || true
    assert_ne "" "$(hdr Trust-List-Sequence)" "$what: Trust-List-Sequence header missing" || true
    assert_match 'no-store' "$(hdr Cache-Control)" "$what: rejection Cache-Control" || true
}

# ensure_main: restarts the main server if it died (and says so).
ensure_main() {
    if kill -0 "$MAIN_PID" 2>/dev/null; then return 0; fi
    fail "main server (pid $MAIN_PID) is dead; stderr tail:"
    tail -n 20 "$MAIN_DIR/stderr.log" | sed 's/^/        | /'
    echo "--- restart ---" >>"$MAIN_DIR/stderr.log"
    start_server "$MAIN_DIR" || true
    MAIN_PID=$SRV_PID
}

# raw.py: small raw-socket checks curl cannot make (pipelining, timeouts).
write_rawpy() {
    cat >"$WORK/raw.py" <<'EOF'
import socket, sys, time

def conn(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((host, port))
    return s

def read_response(s, buf, is_head=False):
    """Reads one response from s (buf holds bytes already read). Returns
    (status, headers, body, rest) or None when the peer closed first. A
    response to HEAD has no body whatever its Content-Length says."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return None
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = 0 if is_head else int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            break
        rest += d
    return status, hdrs, rest[:n], rest[n:]

def wait_close(s, limit):
    """Seconds until the peer closes (EOF or reset), or -1 after limit."""
    t0 = time.time()
    s.settimeout(0.05)
    while time.time() - t0 < limit:
        try:
            d = s.recv(65536)
            if not d:
                return time.time() - t0
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.time() - t0
    return -1

def show(r):
    if r is None:
        print("closed")
    else:
        st, h, body, _ = r
        if "ocsp" in h.get("content-type", ""):
            print("status=%d body=%s" % (st, body.hex() if len(body) <= 64 else "len%d" % len(body)))
        else:
            print("status=%d" % st)

def main():
    cmd, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    args = sys.argv[4:]
    if cmd == "pipeline":
        # args: DER file of a valid request. Five requests in one send().
        der = open(args[0], "rb").read()
        reqs = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
                b"Content-Length: %d\r\n\r\n" % len(der) + der +
                b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n\x30\x00"
                b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        s = conn(host, port)
        s.sendall(reqs)
        buf = b""
        for _ in range(5):
            r = read_response(s, buf)
            show(r)
            if r is None:
                return
            buf = r[3]
        # still open (keep-alive): one more request works
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        r = read_response(s, buf)
        show(r)
    elif cmd == "head":
        # HEAD PATH, then GET /healthz on the same connection: a body after
        # the HEAD answer would be read as the second response.
        s = conn(host, port)
        s.sendall(b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % args[0].encode() +
                  b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        r = read_response(s, b"", is_head=True)
        if r is None:
            print("closed")
            return
        print("head=%d ctype=%s clen=%s" % (r[0], r[1].get("content-type", ""), r[1].get("content-length", "")))
        try:
            r = read_response(s, r[3])
        except (ValueError, IndexError):
            r = None
        print("next=%s" % (r[0] if r else "garbage"))
    elif cmd == "close":
        # Connection: close -> answer, then the server closes.
        s = conn(host, port)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = read_response(s, b"")
        show(r)
        print("closed_after=%.2f" % wait_close(s, 5))
    elif cmd == "http10":
        s = conn(host, port)
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        r = read_response(s, b"")
        show(r)
        print("closed_after=%.2f" % wait_close(s, 5))
    elif cmd == "toobig":
        # args: body size. Content-Length over max_request_bytes.
        n = int(args[0])
        s = conn(host, port)
        s.sendall(b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
                  b"Content-Length: %d\r\n\r\n" % n)
        try:
            s.sendall(b"\x30" * n)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            r = read_response(s, b"")
        except ConnectionResetError:
            r = None
        show(r)
        print("closed_after=%.2f" % wait_close(s, 5))
    elif cmd == "bigheaders":
        n = int(args[0])
        s = conn(host, port)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * n + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            r = read_response(s, b"")
        except ConnectionResetError:
            r = None
        show(r)
        print("closed_after=%.2f" % wait_close(s, 5))
    elif cmd == "slowheader":
        # Half a header, then silence: 408 after header_timeout_ms, then close.
        s = conn(host, port)
        t0 = time.time()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        r = read_response(s, b"")
        show(r)
        print("after=%.2f" % (time.time() - t0))
        print("closed_after=%.2f" % wait_close(s, 5))
    elif cmd == "drip":
        # One header byte every 100 ms: the header timeout must not restart
        # on every byte (slow-loris).
        s = conn(host, port)
        t0 = time.time()
        data = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
        s.settimeout(0.1)
        got = b""
        for i in range(len(data)):
            if time.time() - t0 > 8:
                break
            try:
                s.send(data[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                d = s.recv(65536)
                if not d:
                    break
                got += d
                if b"\r\n\r\n" in got:
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                break
        s.settimeout(2)
        try:
            while b"\r\n\r\n" not in got:
                d = s.recv(65536)
                if not d:
                    break
                got += d
        except (socket.timeout, ConnectionResetError):
            pass
        print("status=%s after=%.2f" % (got.split(b" ")[1].decode() if got.startswith(b"HTTP/") else "none",
                                        time.time() - t0))
    elif cmd == "idle":
        # One request, then keep the connection idle: closed after idle_timeout_ms.
        s = conn(host, port)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        r = read_response(s, b"")
        show(r)
        print("closed_after=%.2f" % wait_close(s, 8))
    elif cmd == "drain":
        # Half a valid POST; the caller sends SIGTERM; the rest follows after
        # args[1] seconds: the answer must still come (graceful drain).
        der = open(args[0], "rb").read()
        req = (b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
               b"Content-Length: %d\r\n\r\n" % len(der) + der)
        s = conn(host, port)
        half = len(req) - len(der) // 2
        s.sendall(req[:half])
        print("sent-half", flush=True)
        time.sleep(float(args[1]))
        try:
            s.sendall(req[half:])
            r = read_response(s, b"")
        except OSError as e:
            print("error=%s" % e)
            return
        show(r)
        print("closed_after=%.2f" % wait_close(s, 5), flush=True)
    elif cmd == "hold":
        # Half a POST body, then hold the connection until killed (SIGTERM
        # test: a request in flight).
        s = conn(host, port)
        s.sendall(b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n\x30\x62")
        print("holding", flush=True)
        try:
            while s.recv(65536):
                pass
        except Exception:
            pass
        print("server closed", flush=True)
        time.sleep(30)
    else:
        sys.exit("unknown command " + cmd)

main()
EOF
}

# ---------------------------------------------------------------------------
# test PKI: RSA-2048, ECDSA P-256 and SM2 CAs, each with one end entity

DISTID=distid:1234567812345678

mk_pki() {
    local d=$WORK/pki kind
    local -a SIGN VFY
    mkdir -p "$d"
    for kind in rsa ec sm2; do
        case $kind in
        rsa)
            openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/rsa-ca.key" 2>/dev/null
            openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/rsa-ee.key" 2>/dev/null
            SIGN=(-sha256)
            VFY=()
            ;;
        ec)
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ec-ca.key"
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ec-ee.key"
            SIGN=(-sha256)
            VFY=()
            ;;
        sm2)
            # GM/T 0009 distinguishing ID on every SM2 signature (research/sm2-openssl.md)
            openssl ecparam -name SM2 -genkey -noout -out "$d/sm2-ca.key"
            openssl ecparam -name SM2 -genkey -noout -out "$d/sm2-ee.key"
            SIGN=(-sm3 -sigopt "$DISTID")
            VFY=(-vfyopt "$DISTID")
            ;;
        esac
        openssl req -x509 -new -key "$d/$kind-ca.key" "${SIGN[@]}" -days 30 \
            -subj "/C=HK/O=trustgate tests/CN=$kind test CA" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
            -out "$d/$kind-ca.pem" || return 1
        openssl req -new -key "$d/$kind-ee.key" "${SIGN[@]}" -subj "/C=HK/CN=$kind end entity" \
            -out "$d/$kind-ee.csr" || return 1
        openssl x509 -req -in "$d/$kind-ee.csr" "${VFY[@]}" -CA "$d/$kind-ca.pem" \
            -CAkey "$d/$kind-ca.key" "${SIGN[@]}" -set_serial "0x$(openssl rand -hex 8)" -days 30 \
            -out "$d/$kind-ee.pem" 2>/dev/null || return 1
    done
}

# ---------------------------------------------------------------------------
# the tests

test_cli() {
    t_name "cli: trustgate version prints a version line"
    local out rc=0
    out=$("$TG" version 2>&1) || rc=$?
    assert_eq 0 "$rc" "exit status" || true
    assert_contains "$(tr -d '\n' <"$ROOT/VERSION")" "$(printf '%s\n' "$out" | head -n 1)" \
        "first line of the version output" || true

    t_name "cli: trustgate check accepts a good config"
    rc=0
    out=$("$TG" check -c "$MAIN_DIR/trustgate.ini" 2>&1) || rc=$?
    assert_eq 0 "$rc" "exit status (output: $(printf '%s' "$out" | head -c 300))" || true

    t_name "cli: trustgate check names file and line of an unknown key"
    local d=$WORK/badcfg
    mkdir -p "$d"
    printf '[server]\nlisten = 127.0.0.1:1\nworkers = 1\nno_such_key = 1\n' >"$d/unknown.ini"
    rc=0
    out=$("$TG" check -c "$d/unknown.ini" 2>&1) || rc=$?
    assert_ne 0 "$rc" "exit status" || true
    assert_match 'unknown\.ini:4:' "$out" "error names FILE:LINE" || true
    assert_contains "no_such_key" "$out" "error names the key" || true

    t_name "cli: trustgate check rejects a bad value with FILE:LINE"
    printf '[server]\nlisten = 127.0.0.1:1\n\nworkers = lots\n' >"$d/badvalue.ini"
    rc=0
    out=$("$TG" check -c "$d/badvalue.ini" 2>&1) || rc=$?
    assert_ne 0 "$rc" "exit status" || true
    assert_match 'badvalue\.ini:4:' "$out" "error names FILE:LINE" || true

    t_name "cli: trustgate check rejects a syntax error and a missing file"
    printf '[server\nlisten = 127.0.0.1:1\n' >"$d/syntax.ini"
    rc=0
    out=$("$TG" check -c "$d/syntax.ini" 2>&1) || rc=$?
    assert_ne 0 "$rc" "syntax error: exit status" || true
    assert_match 'syntax\.ini:1' "$out" "syntax error: names FILE:LINE" || true
    rc=0
    out=$("$TG" check -c "$d/does-not-exist.ini" 2>&1) || rc=$?
    assert_ne 0 "$rc" "missing file: exit status" || true
    assert_contains "does-not-exist.ini" "$out" "missing file: named" || true

    t_name "cli: serve refuses to start on a bad config"
    rc=0
    timeout 10 "$TG" serve -c "$d/unknown.ini" >/dev/null 2>"$d/serve.err" || rc=$?
    assert_ne 0 "$rc" "exit status" || true
    assert_ne 124 "$rc" "serve kept running on a bad config" || true
}

test_health() {
    local u=http://127.0.0.1:$MAIN_PORT
    t_name "http: GET /healthz is 200"
    http GET "$u/healthz"
    assert_eq 200 "$CODE" "status" || true
    assert_ne "" "$(hdr Trust-List-Sequence)" "Trust-List-Sequence header" || true

    t_name "http: GET /readyz is 503 with a JSON reason (no trust list loaded)"
    http GET "$u/readyz"
    assert_eq 503 "$CODE" "status" || true
    if ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$WORK/b" 2>/dev/null; then
        fail "body is not JSON: $(head -c 200 "$WORK/b")"
    fi
    assert_ne "" "$(hdr Trust-List-Sequence)" "Trust-List-Sequence header" || true

    t_name "http: HEAD on GET routes: headers only, no body"
    local out p
    for p in /healthz /metrics "/ocsp/$(b64_path "$WORK/pki/req-rsa-sha1.der" pct)"; do
        out=$(timeout 20 python3 "$WORK/raw.py" head 127.0.0.1 "$MAIN_PORT" "$p" 2>&1)
        assert_match '^head=200 ' "$out" "HEAD ${p:0:20}" || true
        assert_match 'next=200' "$out" "answer after HEAD ${p:0:20} (a body was sent?)" || true
    done
    assert_match 'ctype=application/ocsp-response' "$out" "HEAD /ocsp/{b64} Content-Type" || true

    t_name "http: unknown paths are 404"
    for p in /favicon.ico /crl/x /robots.txt /trustlist/zz.xml; do
        http GET "$u$p"
        assert_eq 404 "$CODE" "GET $p" || true
        assert_ne "" "$(hdr Trust-List-Sequence)" "GET $p: Trust-List-Sequence header" || true
    done

    t_name "http: wrong method on an OCSP path is 405 with Allow"
    local m
    for m in "PUT /" "DELETE /ocsp" "PATCH /ocsp" "PUT /ocsp/MAA="; do
        http "${m% *}" "$u${m#* }"
        assert_eq 405 "$CODE" "$m" || true
        assert_ne "" "$(hdr Allow)" "$m: Allow header" || true
        assert_ne "" "$(hdr Trust-List-Sequence)" "$m: Trust-List-Sequence header" || true
    done
    http POST "$u/healthz" "$WORK/pki/req-rsa-sha1.der"
    assert_match '^(405|404)$' "$CODE" "POST /healthz" || true
}

test_metrics() {
    local u=http://127.0.0.1:$MAIN_PORT
    t_name "metrics: Prometheus text with the documented families"
    http GET "$u/metrics"
    assert_eq 200 "$CODE" "status" || true
    assert_match '^text/plain' "$(hdr Content-Type)" "Content-Type" || true
    assert_ne "" "$(hdr Trust-List-Sequence)" "Trust-List-Sequence header" || true
    local body f
    body=$(cat "$WORK/b")
    for f in trustgate_http_requests_total trustgate_ocsp_responses_total \
        trustgate_http_request_duration_seconds_bucket trustgate_http_request_duration_seconds_sum \
        trustgate_http_request_duration_seconds_count trustgate_connections_open; do
        grep -Eq "^${f}[{ ]" "$WORK/b" || fail "no sample of $f"
    done
    assert_match "# TYPE trustgate_http_request_duration_seconds histogram" "$body" "histogram TYPE line" || true
    assert_match 'le="\+Inf"' "$body" "histogram +Inf bucket" || true
    if ! python3 - "$WORK/b" <<'EOF'; then
import re, sys
bad = [l for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")
       and not re.match(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? [-+0-9.eEInfNa]+( [0-9]+)?$', l.rstrip("\n"))]
if bad:
    print("".join(bad[:5]), end="")
    sys.exit(1)
EOF
        fail "some lines are not valid Prometheus text (above)"
    fi

    t_name "metrics: counters rise after 3 OCSP requests"
    local before after i
    http GET "$u/metrics"
    cp "$WORK/b" "$WORK/metrics.before"
    for i in 1 2 3; do
        ocsp_post "$u/ocsp" "$WORK/pki/req-ec-sha256.der"
        assert_eq "$UNAUTHORIZED_HEX" "$(hex "$WORK/b")" "request $i" || true
    done
    http GET "$u/metrics"
    cp "$WORK/b" "$WORK/metrics.after"
    # sum of every series of a family whose labels match a pattern
    msum() {
        python3 - "$1" "$2" "$3" <<'EOF'
import re, sys
fam, pat, path = sys.argv[1], sys.argv[2], sys.argv[3]
t = 0.0
for l in open(path):
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? ([^ ]+)', l)
    if m and m.group(1) == fam and re.search(pat, m.group(2) or ""):
        t += float(m.group(3))
print(int(t) if t == int(t) else t)
EOF
    }
    before=$(msum trustgate_ocsp_responses_total unauthorized "$WORK/metrics.before")
    after=$(msum trustgate_ocsp_responses_total unauthorized "$WORK/metrics.after")
    assert_eq $((before + 3)) "$after" "trustgate_ocsp_responses_total{..unauthorized..}: before $before" || true
    before=$(msum trustgate_http_requests_total "" "$WORK/metrics.before")
    after=$(msum trustgate_http_requests_total "" "$WORK/metrics.after")
    if ((after < before + 4)); then
        fail "trustgate_http_requests_total rose from $before to $after (want +4 at least)"
    fi
    before=$(msum trustgate_http_request_duration_seconds_count "" "$WORK/metrics.before")
    after=$(msum trustgate_http_request_duration_seconds_count "" "$WORK/metrics.after")
    if ((after < before + 3)); then
        fail "trustgate_http_request_duration_seconds_count rose from $before to $after (want +3 at least)"
    fi
}

# openssl ocsp against the server for every CA kind and CertID digest.
test_openssl_ocsp() {
    local u=http://127.0.0.1:$MAIN_PORT kind md out rc
    for kind in rsa ec sm2; do
        for md in sha1 sha256 sha384 sha512 sm3; do
            t_name "ocsp: openssl ocsp, $kind CA, $md CertID -> unauthorized"
            rc=0
            out=$(timeout 20 openssl ocsp -issuer "$WORK/pki/$kind-ca.pem" "-$md" -cert "$WORK/pki/$kind-ee.pem" \
                -url "$u/ocsp" -resp_text 2>&1) || rc=$?
            assert_match 'unauthorized \(6\)' "$out" "openssl ocsp output (rc $rc)" || true
        done
        t_name "ocsp: openssl ocsp -no_nonce, $kind CA, path / -> unauthorized"
        out=$(timeout 20 openssl ocsp -issuer "$WORK/pki/$kind-ca.pem" -cert "$WORK/pki/$kind-ee.pem" \
            -no_nonce -url "$u/" -resp_text 2>&1) || true
        assert_match 'unauthorized \(6\)' "$out" "openssl ocsp output" || true
    done
    if have_ipv6; then
        t_name "ocsp: openssl ocsp over IPv6 [::1]"
        out=$(timeout 20 openssl ocsp -issuer "$WORK/pki/ec-ca.pem" -cert "$WORK/pki/ec-ee.pem" \
            -url "http://[::1]:$MAIN_PORT/ocsp" -resp_text 2>&1) || true
        assert_match 'unauthorized \(6\)' "$out" "openssl ocsp output" || true
    fi

    t_name "ocsp: md5 CertID -> malformedRequest"
    out=$(timeout 20 openssl ocsp -issuer "$WORK/pki/rsa-ca.pem" -md5 -cert "$WORK/pki/rsa-ee.pem" \
        -url "$u/ocsp" -resp_text 2>&1) || true
    # OpenSSL 3.0 prints "malformedrequest (1)"
    assert_match '[mM]alformed[rR]equest \(1\)' "$out" "openssl ocsp output" || true
    ocsp_post "$u/" "$WORK/pki/req-rsa-md5.der"
    expect_ocsp "$MALFORMED_HEX" "POST md5 CertID" || true
}

# The same requests by POST and every GET form, checking the headers.
test_ocsp_http_forms() {
    local u=http://127.0.0.1:$MAIN_PORT r ct mode
    t_name "ocsp: POST / and /ocsp, any Content-Type, headers"
    for r in rsa-sha1 ec-sha256 sm2-sm3 sm2-sha1 rsa-nonce; do
        for ct in application/ocsp-request application/octet-stream text/plain; do
            ocsp_post "$u/ocsp" "$WORK/pki/req-$r.der" "$ct"
            expect_ocsp "$UNAUTHORIZED_HEX" "POST /ocsp $r ($ct)" || true
        done
        ocsp_post "$u/" "$WORK/pki/req-$r.der"
        expect_ocsp "$UNAUTHORIZED_HEX" "POST / $r" || true
        # no Content-Type at all
        http POST "$u/" "$WORK/pki/req-$r.der" -H "Content-Type:"
        expect_ocsp "$UNAUTHORIZED_HEX" "POST / $r without Content-Type" || true
    done

    t_name "ocsp: GET /{b64} and /ocsp/{b64}, raw, percent-encoded, base64url"
    for r in rsa-sha1 ec-sha256 sm2-sm3 rsa-nonce ec-sha512; do
        for mode in raw pct lower url; do
            http GET "$u/ocsp/$(b64_path "$WORK/pki/req-$r.der" $mode)"
            expect_ocsp "$UNAUTHORIZED_HEX" "GET /ocsp/ $r ($mode)" || true
            http GET "$u/$(b64_path "$WORK/pki/req-$r.der" $mode)"
            expect_ocsp "$UNAUTHORIZED_HEX" "GET / $r ($mode)" || true
        done
    done

    t_name "ocsp: bad bodies -> 200 malformedRequest, no-store"
    local f
    printf '' >"$WORK/empty.der"
    printf 'hello world' >"$WORK/text.der"
    head -c 3000 /dev/urandom >"$WORK/random.der"
    printf '\x30\x84\x7f\xff\xff\xff\x30\x00' >"$WORK/hugelen.der"
    cat "$WORK/pki/req-rsa-sha1.der" <(printf '\x00') >"$WORK/trailing.der"
    head -c 40 "$WORK/pki/req-rsa-sha1.der" >"$WORK/truncated.der"
    for f in empty text random hugelen trailing truncated; do
        ocsp_post "$u/ocsp" "$WORK/$f.der"
        expect_ocsp "$MALFORMED_HEX" "POST $f" || true
    done
    for f in text random hugelen trailing truncated; do
        http GET "$u/ocsp/$(b64_path "$WORK/$f.der" pct)"
        expect_ocsp "$MALFORMED_HEX" "GET /ocsp/ $f" || true
    done
    http GET "$u/ocsp/!!!notbase64!!!"
    expect_ocsp "$MALFORMED_HEX" "GET /ocsp/!!!notbase64!!!" || true
    http GET "$u/ocsp/MA%zz"
    if [[ $CODE != 400 ]]; then expect_ocsp "$MALFORMED_HEX" "GET /ocsp/MA%zz (400 also fine)" || true; fi

    t_name "ocsp: up to max_certids (16) CertIDs per request; 17 is malformed"
    local args=() i
    for i in $(seq 1 16); do args+=(-serial "$i"); done
    openssl ocsp -issuer "$WORK/pki/rsa-ca.pem" "${args[@]}" -reqout "$WORK/req16.der" >/dev/null 2>&1
    openssl ocsp -issuer "$WORK/pki/rsa-ca.pem" "${args[@]}" -serial 17 -reqout "$WORK/req17.der" >/dev/null 2>&1
    ocsp_post "$u/" "$WORK/req16.der"
    expect_ocsp "$UNAUTHORIZED_HEX" "16 CertIDs" || true
    ocsp_post "$u/" "$WORK/req17.der"
    expect_ocsp "$MALFORMED_HEX" "17 CertIDs" || true
}

# Every OCSP request found in the shared vectors gets a well-formed answer.
test_vectors() {
    if [[ -z $TG_VECTORS || ! -d $TG_VECTORS ]]; then
        t_skip "vectors: third-party OCSP requests" "TG_VECTORS not set or missing: '${TG_VECTORS}'"
        return 0
    fi
    local u=http://127.0.0.1:$MAIN_PORT f n=0 bad=0 st rel
    t_name "vectors: every third-party OCSP request -> 200 malformedRequest or unauthorized"
    while IFS= read -r -d '' f; do
        n=$((n + 1))
        rel=${f#"$TG_VECTORS"/}
        ocsp_post "$u/ocsp" "$f"
        st=$(hex "$WORK/b")
        if [[ $CODE != 200 || ($st != "$MALFORMED_HEX" && $st != "$UNAUTHORIZED_HEX") ]]; then
            fail "$rel: HTTP $CODE body ${st:0:40}"
            bad=$((bad + 1))
            continue
        fi
        # and by GET, the same answer
        http GET "$u/ocsp/$(b64_path "$f" pct)"
        if [[ $CODE != 200 || $(hex "$WORK/b") != "$st" ]]; then
            fail "$rel: GET answered HTTP $CODE body $(hex "$WORK/b" | head -c 40), POST said $st"
        fi
    done < <(find "$TG_VECTORS" -type f \( -name '*.req.der' -o -name 'ocsp_request*.der' \
        -o -name 'req-*.der' -o -name '*-req.der' -o -name '*Req.der' -o -name 'ocspRequest.der' \
        -o -name 'OCSPMalformedInputTest.*.der' \) -print0 | sort -z)
    if ((n == 0)); then
        fail "no OCSP request files found under $TG_VECTORS"
    fi
    echo "    ($n request files)"

    # Files whose answer is certain from SPEC §5 and pki/ocsp.h.
    t_name "vectors: known answers"
    local spec want file
    for spec in \
        "malformed bc-java/ocsp/OCSPMalformedInputTest.malformed0.der" \
        "malformed bc-java/ocsp/OCSPMalformedInputTest.malformed1.der" \
        "malformed bc-java/ocsp/OCSPMalformedInputTest.malformed2.der" \
        "malformed pyca-cryptography/ocsp/req-invalid-hash-alg.der" \
        "malformed pyca-cryptography/ocsp/req-duplicate-ext.der" \
        "unauthorized pyca-cryptography/ocsp/req-sha1.der" \
        "unauthorized pyca-cryptography/ocsp/req-multi-sha1.der" \
        "unauthorized pyca-cryptography/ocsp/req-ext-nonce.der" \
        "unauthorized golang-x-crypto/ocsp/ocspRequest.der" \
        "unauthorized aws-lc/crypto/ocsp/test/aws/ocsp_request.der" \
        "unauthorized aws-lc/crypto/ocsp/test/aws/ocsp_request_signed.der"; do
        want=${spec%% *}
        file=$TG_VECTORS/${spec#* }
        [[ -f $file ]] || continue
        ocsp_post "$u/" "$file"
        if [[ $want == malformed ]]; then
            expect_ocsp "$MALFORMED_HEX" "${spec#* }" || true
        else
            expect_ocsp "$UNAUTHORIZED_HEX" "${spec#* }" || true
        fi
    done
}

test_keepalive() {
    local out
    t_name "http: pipelined requests in one send() are answered in order, then keep-alive"
    out=$(timeout 20 python3 "$WORK/raw.py" pipeline 127.0.0.1 "$MAIN_PORT" "$WORK/pki/req-rsa-sha1.der" 2>&1)
    assert_eq "status=200
status=404
status=200 body=$UNAUTHORIZED_HEX
status=200 body=$MALFORMED_HEX
status=503
status=200" "$out" "statuses and OCSP bodies in order" || true

    t_name "http: Connection: close -> answer, then the server closes"
    out=$(timeout 20 python3 "$WORK/raw.py" close 127.0.0.1 "$MAIN_PORT" 2>&1)
    assert_match '^status=200' "$out" "answer" || true
    assert_match 'closed_after=0\.' "$out" "closed at once" || true

    t_name "http: HTTP/1.0 without keep-alive -> closed after the answer"
    out=$(timeout 20 python3 "$WORK/raw.py" http10 127.0.0.1 "$MAIN_PORT" 2>&1)
    assert_match '^status=200' "$out" "answer" || true
    assert_match 'closed_after=0\.' "$out" "closed at once" || true
}

test_limits() {
    local out s
    t_name "limits: body over max_request_bytes -> 413, connection closed"
    out=$(timeout 20 python3 "$WORK/raw.py" toobig 127.0.0.1 "$MAIN_PORT" 20000 2>&1)
    assert_match '^status=413' "$out" "answer" || true
    assert_match 'closed_after=[0-4]\.' "$out" "closed" || true

    t_name "limits: headers over max_request_bytes -> 413/431 (or 400), connection closed"
    out=$(timeout 20 python3 "$WORK/raw.py" bigheaders 127.0.0.1 "$MAIN_PORT" 40000 2>&1)
    assert_match '^status=(413|431|400)' "$out" "answer" || true
    assert_match 'closed_after=[0-4]\.' "$out" "closed" || true

    t_name "limits: slow headers -> 408 after header_timeout_ms (1 s), then close"
    out=$(timeout 20 python3 "$WORK/raw.py" slowheader 127.0.0.1 "$MAIN_PORT" 2>&1)
    assert_match '^status=408' "$out" "answer" || true
    s=$(printf '%s\n' "$out" | sed -n 's/^after=//p')
    if [[ -n $s ]]; then
        assert_le 0.8 "$s" "408 came too early (s)" || true
        assert_le "$s" 3.5 "408 came too late (s)" || true
    fi
    assert_match 'closed_after=[0-4]\.' "$out" "closed" || true

    t_name "limits: slow-loris (1 header byte / 100 ms) still gets 408 in time"
    out=$(timeout 20 python3 "$WORK/raw.py" drip 127.0.0.1 "$MAIN_PORT" 2>&1)
    assert_match '^status=408' "$out" "answer" || true
    s=$(printf '%s\n' "$out" | sed -n 's/.*after=//p')
    [[ -n $s ]] && { assert_le "$s" 3.5 "408 came too late (s)" || true; }

    t_name "limits: idle keep-alive connection closed after idle_timeout_ms (2 s)"
    out=$(timeout 20 python3 "$WORK/raw.py" idle 127.0.0.1 "$MAIN_PORT" 2>&1)
    assert_match '^status=200' "$out" "answer" || true
    s=$(printf '%s\n' "$out" | sed -n 's/^closed_after=//p')
    if [[ -n $s && $s != -1.00 ]]; then
        assert_le 1.5 "$s" "closed too early (s)" || true
        assert_le "$s" 4.5 "closed too late (s)" || true
    else
        fail "idle connection not closed within 8 s: $out"
    fi
}

test_ipv6() {
    if ! have_ipv6; then
        t_skip "ipv6: [::1] listener" "no ::1 on lo"
        return 0
    fi
    t_name "ipv6: [::1] listener answers /healthz and OCSP"
    http GET "http://[::1]:$MAIN_PORT/healthz"
    assert_eq 200 "$CODE" "GET /healthz over IPv6" || true
    ocsp_post "http://[::1]:$MAIN_PORT/ocsp" "$WORK/pki/req-sm2-sm3.der"
    expect_ocsp "$UNAUTHORIZED_HEX" "POST over IPv6" || true
    local out
    out=$(timeout 20 python3 "$WORK/raw.py" pipeline ::1 "$MAIN_PORT" "$WORK/pki/req-rsa-sha1.der" 2>&1)
    assert_eq 6 "$(printf '%s\n' "$out" | grep -c '^status=')" "pipelined over IPv6" || true
}

test_files() {
    t_name "files: access_log resolves against the config's folder"
    local d=$MAIN_DIR i
    for ((i = 0; i < 20; i++)); do
        [[ -s $d/access.log ]] && break
        sleep 0.1
    done
    if [[ -s $d/access.log ]]; then
        assert_file_match '/ocsp|/healthz' "$d/access.log" "access log mentions requests" || true
    else
        fail "no non-empty $d/access.log (cwd files: $(ls "$WORK/cwd" | tr '\n' ' '))"
    fi
    if [[ -e $WORK/cwd/access.log ]]; then fail "access.log written relative to the working directory"; fi

    t_name "files: admin_socket is a unix socket with mode 0600 next to the config (SPEC §3)"
    if [[ -S $d/admin.sock ]]; then
        assert_eq 600 "$(stat -c %a "$d/admin.sock")" "admin socket mode (SPEC §3: 0600)" || true
    else
        fail "no unix socket $d/admin.sock (cwd files: $(ls "$WORK/cwd" | tr '\n' ' '))"
    fi
    if [[ -e $WORK/cwd/admin.sock ]]; then fail "admin.sock created relative to the working directory"; fi
}

test_malformed() {
    t_name "robustness: malformed-input storm (10000 inputs, seed $SEED)"
    if [[ ! -x $MALFORMED ]]; then
        fail "$MALFORMED not built"
        return 0
    fi
    local rc=0 out
    out=$(timeout 90 "$MALFORMED" 127.0.0.1 "$MAIN_PORT" 10000 "$SEED" 2>"$WORK/malformed.err") || rc=$?
    assert_eq 0 "$rc" "malformed exit status (stdout: $out)" || {
        sed 's/^/        | /' "$WORK/malformed.err" | head -80
    }
    printf '    %s\n' "$out"
    assert_match '^malformed: sent [0-9]+, ok [0-9]+, failed 0$' "$out" "summary" || true
    if ! kill -0 "$MAIN_PID" 2>/dev/null; then
        fail "server died during the storm"
        tail -n 30 "$MAIN_DIR/stderr.log" | sed 's/^/        | /'
        return 0
    fi

    t_name "robustness: after the storm the server still answers correctly"
    http GET "http://127.0.0.1:$MAIN_PORT/healthz"
    assert_eq 200 "$CODE" "/healthz" || true
    out=$(timeout 20 openssl ocsp -issuer "$WORK/pki/sm2-ca.pem" -cert "$WORK/pki/sm2-ee.pem" \
        -url "http://127.0.0.1:$MAIN_PORT/" -resp_text 2>&1) || true
    assert_match 'unauthorized \(6\)' "$out" "openssl ocsp output" || true
    http GET "http://127.0.0.1:$MAIN_PORT/metrics"
    local open
    open=$(sed -n 's/^trustgate_connections_open\(\({[^}]*}\)\)\{0,1\} \([0-9.e+]*\)$/\3/p' "$WORK/b" |
        awk '{s += $1} END {print s + 0}')
    # only this scrape's own connection (and maybe a lingering one) is open
    assert_le "$open" 3 "trustgate_connections_open after the storm (connections leaked?)" || true
}

# SIGHUP: a bad new config is refused and logged; a good one is applied.
test_sighup() {
    t_name "signals: SIGHUP with a broken config keeps serving and logs why"
    local d=$WORK/hup port i
    mkdir -p "$d"
    port=$(free_port)
    write_config "$d/trustgate.ini" "$port"
    cp "$d/trustgate.ini" "$d/good.ini"
    if ! start_server "$d"; then
        fail "server did not start"
        return 0
    fi
    local pid=$SRV_PID lines
    lines=$(wc -l <"$d/stderr.log")
    printf '[server\nlisten = 127.0.0.1:%s\nbogus\n' "$port" >"$d/trustgate.ini"
    kill -HUP "$pid"
    for ((i = 0; i < 50; i++)); do
        tail -n +"$((lines + 1))" "$d/stderr.log" | grep -Eiq 'reload' && break
        sleep 0.1
    done
    sleep 0.2
    assert_match 'running' "$(kill -0 "$pid" 2>/dev/null && echo running || echo dead)" "server alive after SIGHUP" || true
    http GET "http://127.0.0.1:$port/healthz"
    assert_eq 200 "$CODE" "/healthz after a bad reload" || true
    ocsp_post "http://127.0.0.1:$port/" "$WORK/pki/req-rsa-sha1.der"
    expect_ocsp "$UNAUTHORIZED_HEX" "OCSP after a bad reload" || true
    tail -n +"$((lines + 1))" "$d/stderr.log" >"$d/hup1.log"
    assert_file_match '[Rr]eload.*([Ff]ail|[Ee]rror|[Rr]eject|[Ii]nvalid|[Kk]eep)|([Ff]ail|[Ee]rror|[Rr]eject|[Ii]nvalid|[Kk]eep).*[Rr]eload' \
        "$d/hup1.log" "log line about the failed reload" || true
    assert_file_match 'trustgate\.ini:[0-9]+' "$d/hup1.log" "the reload error names FILE:LINE" || true

    t_name "signals: SIGHUP with a valid config reloads"
    cp "$d/good.ini" "$d/trustgate.ini"
    lines=$(wc -l <"$d/stderr.log")
    kill -HUP "$pid"
    for ((i = 0; i < 50; i++)); do
        tail -n +"$((lines + 1))" "$d/stderr.log" | grep -Eiq 'reloaded' && break
        sleep 0.1
    done
    tail -n +"$((lines + 1))" "$d/stderr.log" >"$d/hup2.log"
    assert_file_match '[Rr]eloaded' "$d/hup2.log" "log says reloaded" || true
    http GET "http://127.0.0.1:$port/healthz"
    assert_eq 200 "$CODE" "/healthz after a good reload" || true
    ocsp_post "http://127.0.0.1:$port/ocsp" "$WORK/pki/req-ec-sha256.der"
    expect_ocsp "$UNAUTHORIZED_HEX" "OCSP after a good reload" || true

    t_name "signals: SIGTERM on an idle server exits 0 within 5 s"
    kill -TERM "$pid"
    wait_exit "$pid" 5 || true
    assert_eq 0 "$EXIT_RC" "exit status (after ${EXIT_S}s)" || {
        tail -n 15 "$d/stderr.log" | sed 's/^/        | /'
    }
    if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/healthz"; then
        fail "port $port still answers after exit"
    fi
}

test_sigterm_inflight() {
    t_name "signals: SIGTERM with a request in flight exits 0 within 5 s"
    local d=$WORK/term port pid hold i
    mkdir -p "$d"
    port=$(free_port)
    write_config "$d/trustgate.ini" "$port"
    sed -i 's/^header_timeout_ms = .*/header_timeout_ms = 30000/; s/^idle_timeout_ms = .*/idle_timeout_ms = 60000/' \
        "$d/trustgate.ini"
    if ! start_server "$d"; then
        fail "server did not start"
        return 0
    fi
    pid=$SRV_PID
    python3 "$WORK/raw.py" hold 127.0.0.1 "$port" >"$d/hold.out" 2>&1 &
    hold=$!
    PIDS+=("$hold")
    for ((i = 0; i < 50; i++)); do
        grep -q holding "$d/hold.out" 2>/dev/null && break
        sleep 0.1
    done
    # and a keep-alive connection that already got an answer
    python3 "$WORK/raw.py" idle 127.0.0.1 "$port" >"$d/idle.out" 2>&1 &
    PIDS+=("$!")
    sleep 0.3
    kill -TERM "$pid"
    wait_exit "$pid" 5 || true
    assert_eq 0 "$EXIT_RC" "exit status (after ${EXIT_S}s)" || {
        tail -n 15 "$d/stderr.log" | sed 's/^/        | /'
    }
    kill -KILL "$hold" 2>/dev/null || true
    wait "$hold" 2>/dev/null || true
}

test_sigterm_drain() {
    t_name "signals: SIGTERM drains: a request completed after SIGTERM is answered, then exit 0"
    local d=$WORK/drain port pid cli i
    mkdir -p "$d"
    port=$(free_port)
    write_config "$d/trustgate.ini" "$port"
    sed -i 's/^header_timeout_ms = .*/header_timeout_ms = 30000/' "$d/trustgate.ini"
    if ! start_server "$d"; then
        fail "server did not start"
        return 0
    fi
    pid=$SRV_PID
    python3 "$WORK/raw.py" drain 127.0.0.1 "$port" "$WORK/pki/req-ec-sha256.der" 1.0 >"$d/drain.out" 2>&1 &
    cli=$!
    PIDS+=("$cli")
    for ((i = 0; i < 50; i++)); do
        grep -q sent-half "$d/drain.out" 2>/dev/null && break
        sleep 0.1
    done
    kill -TERM "$pid"
    wait_exit "$pid" 5 || true
    assert_eq 0 "$EXIT_RC" "exit status (after ${EXIT_S}s)" || {
        tail -n 15 "$d/stderr.log" | sed 's/^/        | /'
    }
    assert_le "$EXIT_S" 3.5 "exit waited for the drain deadline instead of the last answer (s)" || true
    wait "$cli" 2>/dev/null || true
    assert_contains "status=200 body=$UNAUTHORIZED_HEX" "$(cat "$d/drain.out")" "answer to the in-flight request" || true
    assert_match 'closed_after=[0-2]\.' "$(cat "$d/drain.out")" "connection closed after the answer" || true
}

# Last: SIGTERM the main server, then look for sanitizer reports anywhere.
test_shutdown_and_logs() {
    t_name "signals: main server exits 0 on SIGTERM after the whole run"
    if kill -0 "$MAIN_PID" 2>/dev/null; then
        kill -TERM "$MAIN_PID"
        wait_exit "$MAIN_PID" 5 || true
        assert_eq 0 "$EXIT_RC" "exit status (after ${EXIT_S}s)" || {
            tail -n 30 "$MAIN_DIR/stderr.log" | sed 's/^/        | /'
        }
    else
        fail "main server is not running"
    fi

    t_name "logs: no sanitizer report, crash or assertion in any server log"
    local f
    while IFS= read -r -d '' f; do
        if grep -Eq 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|Assertion .* failed|double free|stack smashing' "$f"; then
            fail "$f:"
            grep -E -m 5 -A 12 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|Assertion .* failed|double free|stack smashing' "$f" |
                sed 's/^/        | /'
        fi
    done < <(find "$WORK" -name 'stderr.log' -print0)
}

# ---------------------------------------------------------------------------
# main

echo "trustgate integration tests: $TG (work dir $WORK, seed $SEED)"
if [[ ! -x $TG ]]; then
    t_name "setup: $TG exists"
    fail "$TG is not built"
    t_summary
    exit 1
fi

write_rawpy
t_name "setup: test PKI (RSA, ECDSA P-256, SM2 with the GM/T 0009 ID)"
if mk_pki >"$WORK/pki.log" 2>&1; then
    for kind in rsa ec sm2; do
        for md in sha1 sha256 sha384 sha512 sm3 md5; do
            openssl ocsp -issuer "$WORK/pki/$kind-ca.pem" "-$md" -cert "$WORK/pki/$kind-ee.pem" -no_nonce \
                -reqout "$WORK/pki/req-$kind-$md.der" >/dev/null 2>&1 ||
                fail "openssl ocsp -reqout $kind $md"
        done
        openssl ocsp -issuer "$WORK/pki/$kind-ca.pem" -cert "$WORK/pki/$kind-ee.pem" \
            -reqout "$WORK/pki/req-$kind-nonce.der" >/dev/null 2>&1 || fail "openssl ocsp -reqout $kind nonce"
    done
    # the SM2 certificate must verify with the GM/T 0009 ID
    openssl verify -CAfile "$WORK/pki/sm2-ca.pem" -vfyopt "$DISTID" "$WORK/pki/sm2-ee.pem" >/dev/null 2>&1 ||
        fail "SM2 end-entity certificate does not verify with the GM/T ID"
else
    fail "building the test PKI failed:"
    tail -n 20 "$WORK/pki.log" | sed 's/^/        | /'
fi
t_end

MAIN_DIR=$WORK/main
mkdir -p "$MAIN_DIR"
MAIN_PORT=$(free_port)
write_config "$MAIN_DIR/trustgate.ini" "$MAIN_PORT"
t_name "setup: trustgate serve starts and answers /healthz within 5 s"
MAIN_PID=
if ! start_server "$MAIN_DIR"; then
    fail "main server did not start; giving up"
    t_summary
    exit 1
fi
MAIN_PID=$SRV_PID
t_end

for t in test_cli test_health test_metrics test_openssl_ocsp test_ocsp_http_forms test_vectors \
    test_keepalive test_limits test_ipv6 test_files test_malformed; do
    if [[ -n $TG_ONLY && ! $t =~ $TG_ONLY ]]; then continue; fi
    if ! kill -0 "$MAIN_PID" 2>/dev/null; then
        t_name "server: main server still alive before $t"
        ensure_main
        t_end
    fi
    run_test "$t"
done
run_test test_sighup
run_test test_sigterm_inflight
run_test test_sigterm_drain
run_test test_shutdown_and_logs

t_summary
