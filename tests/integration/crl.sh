#!/usr/bin/env bash
# CRLs end to end (SPEC §5, §7): a real `trustgate serve` on fresh demo
# worlds (`trustgate demo`), whose CAs publish their CRLs at file: URLs.
#   - GET /crl/{list}/{ca}.crl serves each CA's CRL byte for byte (RSA,
#     ECDSA, SM2) with RFC 5019-style caching headers and 304s; 403 for the
#     suspended CA, 404 for unknown ones; GET /crl/ lists them as JSON.
#   - a new CRL revoking a good certificate goes in force on `reload` (ECDSA
#     and SM2 CAs), and the pre-signed `good` stops being served;
#   - refused CRLs (wrong key, wrong issuer, truncated, too big, number
#     backwards, bad times, expired, not yet valid, older, an
#     issuingDistributionPoint) keep the CRL held in force and are counted
#     by result;
#   - a CRL past its nextUpdate with the upstream gone gives tryLater;
#   - a 1,000,000-entry CRL: ingest time and peak RSS, lookups;
#   - kill -9 in the middle of that ingest: the cache still answers from
#     the old CRL, and the restart takes up the new one.
# Every CRL is made with build/tests/mkcrl, installed by an atomic rename
# over the file the list names, and fetched on an admin `reload`.
#
#   TG_BUILD=build bash tests/integration/crl.sh
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MKCRL=$TG_BUILD/tests/mkcrl

# the world in use (new_world): folder, port, OCSP URL, server PID, and the
# SHA-256 of each demo CA certificate (the {ca} of /crl/{list}/{ca}.crl)
D=
PORT=
URL=
SRV_PID=
RSA=
ECC=
PERS=
ORG=
QOUT=
QRC=0
OUT=

# ---------------------------------------------------------------------------
# helpers

ca_id() { openssl x509 -in "$D/$1/ca.pem" -outform DER | sha256sum | cut -d' ' -f1; }

# admin CMD: sends one command on the admin socket, prints the answer.
admin() {
    python3 - "$D/admin.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(15)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
data = b""
while not data.endswith(b"\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.decode(errors="replace").strip())
PY
}

reload() {
    local r
    r=$(admin reload 2>&1) || true
    assert_match '^ok' "$r" "admin reload answer"
}

# metric NAME{labels}: its value in /metrics, or "missing".
metric() {
    curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" |
        awk -v k="$1" '$1 == k { print $2; f = 1; exit } END { if (!f) print "missing" }'
}

fetches() { metric "trustgate_crl_fetches_total{result=\"$1\"}"; }
decisions() { metric "trustgate_ocsp_decisions_total{decision=\"$1\"}"; }
presigned() { metric "trustgate_ocsp_presigned_total{result=\"$1\"}"; }
signed() { metric "trustgate_signing_operations_total{alg=\"$1\"}"; }

# assert_delta BEFORE AFTER WANT WHAT: AFTER - BEFORE == WANT (both numbers)
assert_delta() {
    if [[ ! $1 =~ ^[0-9]+$ || ! $2 =~ ^[0-9]+$ ]]; then
        fail "$4: not counters: '$1' -> '$2'"
        return 1
    fi
    assert_eq "$3" "$(($2 - $1))" "$4 (change)"
}

# wait_metric_above NAME VALUE SECONDS: until the metric exceeds VALUE.
wait_metric_above() {
    local name=$1 base=$2 limit=$3 i v
    for ((i = 0; i < limit * 10; i++)); do
        v=$(metric "$name")
        if [[ $v =~ ^[0-9]+$ && $base =~ ^[0-9]+$ ]] && ((v > base)); then return 0; fi
        sleep 0.1
    done
    fail "$name stayed at '$v' (was '$base') for $limit s"
    return 1
}

# crl_field CA_HEX FIELD: that field of the CA's "crl" in GET /crl/ ("null"
# without a CRL, "noca" when the CA is not listed); booleans as true/false.
crl_field() {
    curl -s --max-time 5 "http://127.0.0.1:$PORT/crl/" | python3 -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except Exception:
    print("badjson"); sys.exit()
for e in doc:
    if e.get("ca") == sys.argv[1]:
        c = e.get("crl")
        if c is None:
            print("null")
        else:
            v = c.get(sys.argv[2])
            print(str(v).lower() if isinstance(v, bool) else v)
        break
else:
    print("noca")' "$1" "$2"
}

# wait_crl CA_HEX FIELD WANT SECONDS: until crl_field gives WANT.
wait_crl() {
    local i v
    for ((i = 0; i < $4 * 10; i++)); do
        v=$(crl_field "$1" "$2")
        [[ $v == "$3" ]] && return 0
        sleep 0.1
    done
    fail "/crl/ $2 of ${1:0:12}… is '$v' after $4 s, want '$3'"
    return 1
}

# mk CA OUT [mkcrl options]: a CRL of CA (demo folder, e.g. hk/ecc-ca)
# signed with its own key unless --key is given again (the last wins).
mk() {
    local ca=$1 out=$2 rc=0 msg
    shift 2
    msg=$("$MKCRL" --ca "$D/$ca/ca.pem" --key "$D/$ca/ca.key" --out "$out" "$@" 2>&1) || rc=$?
    if ((rc != 0)); then
        fail "mkcrl $ca $*: exit $rc: $msg"
        return 1
    fi
}

# install FILE CA: renames a copy of FILE over CA's crl.der (atomic).
install() {
    cp "$1" "$D/$2/crl.der.new"
    mv -f "$D/$2/crl.der.new" "$D/$2/crl.der"
}

# get_path REQ.der: the request base64- and percent-encoded for a GET.
get_path() {
    base64 -w0 "$1" | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read().strip(), safe=""))'
}

# ossl CA ARGS...: `openssl ocsp` against the server for CA's certificates,
# HK answers trusted with -VAfile; OUT gets stdout and stderr.
ossl() {
    local ca=$1
    shift
    OUT=$(cd "$D" && timeout 20 openssl ocsp -url "$URL" -issuer "$ca/ca.pem" "$@" \
        -VAfile signers/hk-responder.pem 2>&1) || true
}

# good_and_revoked CA WHAT: ee-good is good and ee-revoked revoked
# (keyCompromise), in one verified request.
good_and_revoked() {
    ossl "$1" -cert "$1/ee-good.pem" -cert "$1/ee-revoked.pem"
    assert_contains "Response verify OK" "$OUT" "$2: openssl verification" &&
        assert_contains "$1/ee-good.pem: good" "$OUT" "$2: ee-good" &&
        assert_contains "$1/ee-revoked.pem: revoked" "$OUT" "$2: ee-revoked" &&
        assert_contains "Reason: keyCompromise" "$OUT" "$2: ee-revoked reason"
}

# query ARGS...: `trustgate query` in the demo folder; QOUT, QRC.
query() {
    QRC=0
    QOUT=$(cd "$D" && timeout 20 "$TG" query "$@" 2>&1) || QRC=$?
}

line() { printf '%s\n' "$QOUT" | sed -n "s/^$1: //p" | head -n 1; }

# header NAME FILE: the value of a header in a curl -D dump.
header() {
    tr -d '\r' <"$2" | awk -v n="$(tr '[:upper:]' '[:lower:]' <<<"$1")" \
        'index(tolower($0), n ": ") == 1 { print substr($0, length(n) + 3); exit }'
}

# crl_epoch FILE lastupdate|nextupdate: the CRL's time, seconds since 1970.
crl_epoch() {
    openssl crl -inform DER -in "$1" -noout "-$2" | python3 -c '
import calendar, sys, time
s = sys.stdin.read().strip().split("=", 1)[1]
print(calendar.timegm(time.strptime(s, "%b %d %H:%M:%S %Y GMT")))'
}

http_date() { python3 -c 'import email.utils, sys; print(email.utils.formatdate(int(sys.argv[1]), usegmt=True))' "$1"; }
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# near EPOCH TEXT SLACK: TEXT (an openssl "Mon DD HH:MM:SS YYYY GMT" date or
# an ISO 8601 one) is within SLACK seconds of EPOCH.
near() {
    python3 - "$1" "$2" "$3" <<'PY'
import calendar, sys, time
want, text, slack = int(sys.argv[1]), sys.argv[2].strip(), int(sys.argv[3])
for fmt in ("%b %d %H:%M:%S %Y GMT", "%Y-%m-%dT%H:%M:%SZ"):
    try:
        t = calendar.timegm(time.strptime(text, fmt))
        break
    except ValueError:
        t = None
sys.exit(0 if t is not None and abs(t - want) <= slack else 1)
PY
}

# section_of OUT CERT: the lines of openssl ocsp's report about CERT.
section_of() { printf '%s\n' "$1" | awk -v c="$2:" '$1 == c { p = 1; print; next } /^[^\t ]/ { p = 0 } p'; }

# wait_log REGEX SECONDS [FROM_LINE]: until a line of the server's stderr
# (after line FROM_LINE) matches; prints it.
wait_log() {
    local re=$1 limit=$2 from=${3:-0} i l
    for ((i = 0; i < limit * 20; i++)); do
        l=$(tail -n +"$((from + 1))" "$D/stderr.log" | grep -E -m1 -- "$re") && {
            printf '%s\n' "$l"
            return 0
        }
        sleep 0.05
    done
    return 1
}

log_lines() { wc -l <"$D/stderr.log"; }

# new_world NAME [LINE...]: a fresh demo world in $WORK/NAME on a free port
# (LINEs added to its [upstream] section), its server started, and every
# CRL of it held. Returns 1 (recorded as a failure) if any of that fails.
new_world() {
    D=$WORK/$1
    shift
    local out rc=0 l
    out=$("$TG" demo "$D" 2>&1) || rc=$?
    if ((rc != 0)); then
        fail "trustgate demo $D: exit $rc: $(tail -n 3 <<<"$out")"
        return 1
    fi
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT/ocsp
    sed -i "s/^listen = 127.0.0.1:8080\$/listen = 127.0.0.1:$PORT/" "$D/trustgate.ini"
    for l in "$@"; do sed -i "/^\[upstream\]\$/a $l" "$D/trustgate.ini"; done
    grep -q "^listen = 127.0.0.1:$PORT\$" "$D/trustgate.ini" || {
        fail "could not set the port in $D/trustgate.ini"
        return 1
    }
    RSA=$(ca_id hk/rsa-ca)
    ECC=$(ca_id hk/ecc-ca)
    PERS=$(ca_id gd/personal-ca)
    ORG=$(ca_id gd/organisation-ca)
    # WORLD_NO_CRL: a CA whose CRL is moved aside (to crl.der.away) first
    if [[ -n $WORLD_NO_CRL ]]; then mv "$D/$WORLD_NO_CRL/crl.der" "$D/$WORLD_NO_CRL/crl.der.away"; fi
    SRV_PID=
    if ! start_server "$D"; then
        fail "the server did not start on $D"
        return 1
    fi
    local ca
    for ca in hk/rsa-ca hk/ecc-ca gd/personal-ca gd/organisation-ca; do
        [[ $ca == "$WORLD_NO_CRL" ]] && continue
        wait_crl "$(ca_id $ca)" fresh true 10 || return 1
    done
}

# stop_server: SIGTERM; the server exits 0 (ASan: no leak) with no
# sanitizer report in its log.
stop_server() {
    kill -TERM "$SRV_PID" 2>/dev/null || true
    wait_exit "$SRV_PID" 10 || true
    assert_eq 0 "$EXIT_RC" "server exit status on SIGTERM"
    if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$D/stderr.log"; then
        fail "sanitizer report in $D/stderr.log:"
        grep -E -m5 -A3 "ERROR: (Address|Leak)Sanitizer|runtime error:" "$D/stderr.log" | sed 's/^/        | /'
    fi
}

# serials FILE INDEX...: the serials (hex) of the CRL's revoked entries at
# those positions (0-based; -1 is the last), by a walk of the DER.
serials() {
    python3 - "$@" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
want = [int(x) for x in sys.argv[2:]]
def tlv(i):
    t = b[i]; i += 1
    n = b[i]; i += 1
    if n & 0x80:
        k = n & 0x7f; n = int.from_bytes(b[i:i + k], "big"); i += k
    return t, i, n
_, i, _ = tlv(0)                         # CertificateList
_, i, n = tlv(i)                         # tbsCertList
t, j, m = tlv(i)
if t == 0x02: i = j + m                  # version
for _ in range(3):                       # signature, issuer, thisUpdate
    t, j, m = tlv(i); i = j + m
t, j, m = tlv(i)
if t in (0x17, 0x18): i = j + m          # nextUpdate
t, j, m = tlv(i)
assert t == 0x30, "no revokedCertificates"
end = j + m
i = j
found = []
while i < end:
    _, j, m = tlv(i)                     # one entry
    _, k, s = tlv(j)                     # its serial
    found.append(b[k:k + s].hex().upper())
    i = j + m
for w in want:
    print(found[w])
PY
}

# ---------------------------------------------------------------------------
# 1. the CRLs served

test_served() {
    t_name "GET /crl/{list}/{ca}.crl: the CA's DER byte for byte (RSA, ECDSA: openssl verifies; SM2: mkcrl verifies), caching headers, 304s"
    local ca list id code cc etag lm this next out rc
    for ca in hk/rsa-ca hk/ecc-ca gd/personal-ca; do
        list=${ca%%/*}
        id=$(ca_id "$ca")
        code=$(curl -s -D "$WORK/h" -o "$WORK/body" -w '%{http_code}' \
            "http://127.0.0.1:$PORT/crl/$list/$id.crl") || true
        assert_eq 200 "$code" "$ca: status" || continue
        assert_eq application/pkix-crl "$(header Content-Type "$WORK/h")" "$ca: Content-Type"
        cmp -s "$WORK/body" "$D/$ca/crl.der" || fail "$ca: the bytes served differ from $ca/crl.der"
        if [[ $list == hk ]]; then
            out=$(openssl crl -inform DER -in "$WORK/body" -noout -verify -CAfile "$D/$ca/ca.pem" 2>&1) || true
            assert_contains "verify OK" "$out" "$ca: openssl crl -verify"
        else
            out=$("$MKCRL" --ca "$D/$ca/ca.pem" --in "$WORK/body" 2>&1) || true
            assert_eq "ok 1 entries" "$out" "$ca: mkcrl --in (SM2-aware verification)"
            # the verifier can say no: the same CRL against the other GD CA
            rc=0
            "$MKCRL" --ca "$D/gd/organisation-ca/ca.pem" --in "$WORK/body" >/dev/null 2>&1 || rc=$?
            assert_ne 0 "$rc" "$ca: mkcrl --in against another CA's certificate"
        fi
        # with nextUpdate 7 days ahead, max-age = http_max_age_s (60)
        cc=$(header Cache-Control "$WORK/h")
        if assert_match '^max-age=([0-9]+), public, no-transform, must-revalidate$' "$cc" "$ca: Cache-Control"; then
            [[ $cc =~ max-age=([0-9]+) ]]
            assert_le "${BASH_REMATCH[1]}" 60 "$ca: max-age <= http_max_age_s"
            assert_eq 60 "${BASH_REMATCH[1]}" "$ca: max-age (nextUpdate is 7 days away)"
        fi
        this=$(crl_epoch "$D/$ca/crl.der" lastupdate)
        next=$(crl_epoch "$D/$ca/crl.der" nextupdate)
        lm=$(header Last-Modified "$WORK/h")
        assert_eq "$(http_date "$this")" "$lm" "$ca: Last-Modified = thisUpdate"
        assert_eq "$(http_date "$next")" "$(header Expires "$WORK/h")" "$ca: Expires = nextUpdate"
        etag=$(header ETag "$WORK/h")
        assert_match '^(W/)?"[^"]+"$' "$etag" "$ca: ETag"
        code=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H "If-None-Match: $etag" \
            "http://127.0.0.1:$PORT/crl/$list/$id.crl") || true
        assert_eq "304 0" "$code" "$ca: If-None-Match with the ETag: status and body bytes"
        code=$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "not-this-one"' \
            "http://127.0.0.1:$PORT/crl/$list/$id.crl") || true
        assert_eq 200 "$code" "$ca: If-None-Match with another ETag"
        code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-Modified-Since: $lm" \
            "http://127.0.0.1:$PORT/crl/$list/$id.crl") || true
        assert_eq 304 "$code" "$ca: If-Modified-Since = Last-Modified"
        code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-Modified-Since: $(http_date $((this - 86400)))" \
            "http://127.0.0.1:$PORT/crl/$list/$id.crl") || true
        assert_eq 200 "$code" "$ca: If-Modified-Since a day before thisUpdate"
    done
}

test_served_refusals() {
    t_name "GET /crl/: 403 no-store for the suspended CA, 404 for an unknown CA or the wrong list"
    local code body
    code=$(curl -s -D "$WORK/h" -o "$WORK/body" -w '%{http_code}' \
        "http://127.0.0.1:$PORT/crl/gd/$ORG.crl") || true
    assert_eq 403 "$code" "suspended gd/organisation-ca: status"
    assert_eq no-store "$(header Cache-Control "$WORK/h")" "403: Cache-Control"
    assert_match '^text/plain' "$(header Content-Type "$WORK/h")" "403: Content-Type"
    body=$(cat "$WORK/body")
    assert_match '^CA suspended since [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT$' \
        "$body" "403: reason text"
    code=$(curl -s -D "$WORK/h" -o /dev/null -w '%{http_code}' \
        "http://127.0.0.1:$PORT/crl/hk/$(openssl rand -hex 32).crl") || true
    assert_eq 404 "$code" "a random CA"
    assert_eq no-store "$(header Cache-Control "$WORK/h")" "404: Cache-Control"
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/crl/gd/$RSA.crl") || true
    assert_eq 404 "$code" "hk/rsa-ca under the gd list"
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/crl/hk/$RSA.der") || true
    assert_eq 404 "$code" "not .crl"
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/crl/hk/$RSA.crl") || true
    assert_eq 200 "$code" "control: the right list"
}

test_index() {
    t_name "GET /crl/ JSON: the 4 demo CAs with status and CRL held (the suspended CA's CRL is fetched and listed, though not served)"
    local want got ca list id st
    # crlmgr fetches the CRLs of active and suspended CAs (a suspension can
    # end); the index shows the one held, fresh, while the file is 403.
    want=$(
        for ca in gd/organisation-ca:suspended gd/personal-ca:active hk/rsa-ca:active hk/ecc-ca:active; do
            st=${ca#*:}
            ca=${ca%:*}
            list=${ca%%/*}
            id=$(ca_id "$ca")
            printf '%s %s %s /crl/%s/%s.crl 01 1 %s %s %s true\n' "$list" "$id" "$st" "$list" "$id" \
                "$(stat -c %s "$D/$ca/crl.der")" \
                "$(iso "$(crl_epoch "$D/$ca/crl.der" lastupdate)")" \
                "$(iso "$(crl_epoch "$D/$ca/crl.der" nextupdate)")"
        done | LC_ALL=C sort
    )
    got=$(curl -s --max-time 5 -D "$WORK/h" "http://127.0.0.1:$PORT/crl/" | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    c = e["crl"] or {}
    print(e["list"], e["ca"], e["status"], e["url"], c.get("number"), c.get("entries"),
          c.get("bytes"), c.get("this_update"), c.get("next_update"), str(c.get("fresh")).lower())
' | LC_ALL=C sort) || true
    assert_eq "$want" "$got" "GET /crl/ entries"
    assert_eq application/json "$(header Content-Type "$WORK/h")" "GET /crl/ Content-Type"
    assert_eq no-store "$(header Cache-Control "$WORK/h")" "GET /crl/ Cache-Control"
}

# ---------------------------------------------------------------------------
# 2, 3. a revocation goes in force

test_revoke_ecdsa() {
    t_name "hk/ecc-ca: a CRL number 2 revoking ee-good goes in force on reload; the pre-signed good stops; openssl -VAfile: revoked, reason, time"
    local args=(--url "$URL" --issuer hk/ecc-ca/ca.pem --cert hk/ecc-ca/ee-good.pem
        --signer signers/hk-responder.pem --get)
    local h0 h1 m0 m1 s0 s1 t sec
    query "${args[@]}"
    assert_eq 0 "$QRC" "GET ee-good before: exit status ($QOUT)" || return 0
    sleep 0.3 # the pre-signed copy goes through the cache's writer thread
    h0=$(presigned hit)
    s0=$(signed ecdsa-p256)
    query "${args[@]}"
    assert_eq 0 "$QRC" "second GET: exit status ($QOUT)"
    assert_eq good "$(line certStatus)" "second GET: certStatus"
    h1=$(presigned hit)
    s1=$(signed ecdsa-p256)
    assert_delta "$h0" "$h1" 1 "pre-signed hits on the second GET"
    assert_delta "$s0" "$s1" 0 "ECDSA signing operations on the second GET"

    t=$(date +%s)
    mk hk/ecc-ca "$WORK/ecc2.der" --number 2 --revoke-cert "$D/hk/ecc-ca/ee-revoked.pem" \
        --revoke-cert "$D/hk/ecc-ca/ee-good.pem:5" --revoked-at -600 || return 0
    install "$WORK/ecc2.der" hk/ecc-ca
    reload
    wait_crl "$ECC" number 02 10 || return 0
    assert_eq 2 "$(crl_field "$ECC" entries)" "/crl/ entries"
    curl -s -o "$WORK/body" "http://127.0.0.1:$PORT/crl/hk/$ECC.crl" || true
    cmp -s "$WORK/body" "$WORK/ecc2.der" || fail "GET /crl/hk/{ecc}.crl is not the new CRL"

    m0=$(presigned miss)
    s0=$(signed ecdsa-p256)
    query "${args[@]}"
    assert_eq 1 "$QRC" "GET ee-good after: exit status ($QOUT)"
    assert_eq revoked "$(line certStatus)" "after: certStatus"
    assert_eq "cessationOfOperation (5)" "$(line reason)" "after: reason"
    near $((t - 600)) "$(line revocationTime)" 5 || fail "after: revocationTime $(line revocationTime), want about $(iso $((t - 600)))"
    m1=$(presigned miss)
    s1=$(signed ecdsa-p256)
    assert_delta "$m0" "$m1" 1 "pre-signed misses (the old good is not served)"
    assert_delta "$s0" "$s1" 1 "ECDSA signing operations (signed anew)"

    ossl hk/ecc-ca -cert hk/ecc-ca/ee-good.pem -cert hk/ecc-ca/ee-revoked.pem
    assert_contains "Response verify OK" "$OUT" "openssl verification"
    sec=$(section_of "$OUT" hk/ecc-ca/ee-good.pem)
    assert_contains "hk/ecc-ca/ee-good.pem: revoked" "$sec" "openssl: ee-good"
    assert_contains "Reason: cessationOfOperation" "$sec" "openssl: ee-good reason"
    near $((t - 600)) "$(sed -n 's/^[[:space:]]*Revocation Time: //p' <<<"$sec")" 5 ||
        fail "openssl: ee-good revocation time: $sec"
    sec=$(section_of "$OUT" hk/ecc-ca/ee-revoked.pem)
    assert_contains "Reason: keyCompromise" "$sec" "openssl: ee-revoked still keyCompromise"
    # the other HK CA is untouched
    good_and_revoked hk/rsa-ca "hk/rsa-ca"
}

test_revoke_sm2() {
    t_name "gd/personal-ca (SM2): a CRL number 2 revoking ee-good goes in force on reload; trustgate query --signer: revoked, reason, time"
    local args=(--url "$URL" --issuer gd/personal-ca/ca.pem --cert gd/personal-ca/ee-good.pem
        --signer signers/gd-responder.pem --get)
    local h0 h1 s0 s1 t
    query "${args[@]}"
    assert_eq 0 "$QRC" "GET ee-good before: exit status ($QOUT)" || return 0
    assert_eq "OK (sm2-with-sm3)" "$(line signature)" "before: signature"
    sleep 0.3
    h0=$(presigned hit)
    s0=$(signed sm2)
    query "${args[@]}"
    assert_eq 0 "$QRC" "second GET: exit status ($QOUT)"
    h1=$(presigned hit)
    s1=$(signed sm2)
    assert_delta "$h0" "$h1" 1 "pre-signed hits on the second GET"
    assert_delta "$s0" "$s1" 0 "SM2 signing operations on the second GET"

    t=$(date +%s)
    mk gd/personal-ca "$WORK/pers2.der" --number 2 --revoke-cert "$D/gd/personal-ca/ee-revoked.pem" \
        --revoke-cert "$D/gd/personal-ca/ee-good.pem:3" --revoked-at -900 || return 0
    install "$WORK/pers2.der" gd/personal-ca
    reload
    wait_crl "$PERS" number 02 10 || return 0
    query "${args[@]}"
    assert_eq 1 "$QRC" "GET ee-good after: exit status ($QOUT)"
    assert_eq "OK (sm2-with-sm3)" "$(line signature)" "after: signature"
    assert_eq "affiliationChanged (3)" "$(line reason)" "after: reason"
    near $((t - 900)) "$(line revocationTime)" 5 || fail "after: revocationTime $(line revocationTime), want about $(iso $((t - 900)))"
    query --url "$URL" --issuer gd/personal-ca/ca.pem --cert gd/personal-ca/ee-revoked.pem \
        --signer signers/gd-responder.pem --nonce --sm3
    assert_eq 1 "$QRC" "ee-revoked (POST, nonce, SM3 CertID): exit status ($QOUT)"
    assert_eq "keyCompromise (1)" "$(line reason)" "ee-revoked: reason"
    # the suspended GD CA still answers certificateHold, not from its CRL
    query --url "$URL" --issuer gd/organisation-ca/ca.pem --cert gd/organisation-ca/ee-good.pem \
        --signer signers/gd-responder.pem
    assert_eq "certificateHold (6)" "$(line reason)" "suspended CA: reason ($QOUT)"
}

# ---------------------------------------------------------------------------
# 4. refused CRLs keep the one held

# refused RESULT WHAT CA FILE: FILE installed for CA and reloaded is counted
# under RESULT; CA's CRL held (number $HELD_NUMBER, bytes $HELD_FILE) stays
# in force and answers as before.
HELD_NUMBER=
HELD_FILE=
refused() {
    local result=$1 what=$2 ca=$3 file=$4 before id
    [[ $ca == hk/ecc-ca ]] && id=$ECC || id=$RSA
    before=$(fetches "$result")
    install "$file" "$ca"
    reload
    wait_metric_above "trustgate_crl_fetches_total{result=\"$result\"}" "$before" 10 ||
        fail "$what: not counted as $result; last log lines: $(grep -E "crl hk/$id: [a-z_]+" "$D/stderr.log" | tail -n 1)"
    assert_eq "$HELD_NUMBER" "$(crl_field "$id" number)" "$what: /crl/ number"
    curl -s -o "$WORK/held" "http://127.0.0.1:$PORT/crl/hk/$id.crl" || true
    cmp -s "$WORK/held" "$HELD_FILE" || fail "$what: the CRL served is not the one held before"
    good_and_revoked "$ca" "$what"
}

test_refused() {
    t_name "refused CRLs keep the held one in force, counted by result (bad_signature, wrong_issuer, malformed, number_backwards, bad_times, expired, not_yet_valid, older, unsupported)"
    local c=hk/ecc-ca f=$WORK/bad.der
    # the CRL held: number 2, ee-revoked revoked, ee-good good
    mk $c "$WORK/held2.der" --number 2 --revoke-cert "$D/$c/ee-revoked.pem" || return 0
    install "$WORK/held2.der" $c
    reload
    wait_crl "$ECC" number 02 10 || return 0
    HELD_NUMBER=02
    HELD_FILE=$WORK/held2.der
    good_and_revoked $c "held" || return 0

    # signed by another P-256 key (ee-good's): mkcrl insists on a matching
    # pair, so it signs as an impostor CA certificate with this CA's name
    # and subjectKeyIdentifier (hence the CRL's issuer and AKI match) and
    # ee-good's public key
    if openssl x509 -in "$D/$c/ca.pem" -key "$D/$c/ee-good.key" -out "$WORK/impostor.pem" 2>/dev/null &&
        "$MKCRL" --ca "$WORK/impostor.pem" --key "$D/$c/ee-good.key" --out "$f" --number 3 \
            --revoke-cert "$D/$c/ee-good.pem"; then
        refused bad_signature "signed by another key" $c "$f"
    else
        fail "could not make the impostor CRL"
    fi
    # the right key, one bit of the signature flipped (its last octet)
    mk $c "$f" --number 3 --revoke-cert "$D/$c/ee-good.pem" &&
        python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[-1] ^= 1; open(sys.argv[1], "wb").write(b)' "$f" &&
        refused bad_signature "a signature bit flipped" $c "$f"
    # another CA's certificate and key
    mk hk/rsa-ca "$f" --number 3 --revoke-cert "$D/$c/ee-good.pem" &&
        refused wrong_issuer "issued by hk/rsa-ca" $c "$f"
    mk $c "$WORK/full.der" --number 3 --revoke-cert "$D/$c/ee-good.pem" &&
        head -c 200 "$WORK/full.der" >"$f" &&
        refused malformed "truncated to 200 bytes" $c "$f"
    mk $c "$f" --number 1 --revoke-cert "$D/$c/ee-good.pem" &&
        refused number_backwards "number 1 after number 2" $c "$f"
    mk $c "$f" --number 2 --revoke-cert "$D/$c/ee-good.pem" &&
        refused number_backwards "number 2 again, other content" $c "$f"
    # nextUpdate before thisUpdate: tg_crl_verify checks nextUpdate >
    # thisUpdate (bad_times) before the ingest compares them with the clock
    # (expired), so this is bad_times, not expired.
    mk $c "$f" --number 3 --this -300 --next -600 --revoke-cert "$D/$c/ee-good.pem" &&
        refused bad_times "nextUpdate before thisUpdate" $c "$f"
    mk $c "$f" --number 3 --this -600 --next -300 --revoke-cert "$D/$c/ee-good.pem" &&
        refused expired "nextUpdate passed" $c "$f"
    mk $c "$f" --number 3 --this +1h --next +7d --revoke-cert "$D/$c/ee-good.pem" &&
        refused not_yet_valid "thisUpdate an hour ahead" $c "$f"
    # without a number only thisUpdate orders CRLs (a higher number wins
    # whatever its thisUpdate: the number is the CA's sequence)
    mk $c "$f" --no-number --this -2h --revoke-cert "$D/$c/ee-good.pem" &&
        refused older "no number, older thisUpdate" $c "$f"
    mk $c "$f" --number 3 --idp --revoke-cert "$D/$c/ee-good.pem" &&
        refused unsupported "issuingDistributionPoint" $c "$f"
    # and the path still works: a good number 3 goes in force
    mk $c "$f" --number 3 --revoke-cert "$D/$c/ee-revoked.pem" --revoke-cert "$D/$c/ee-good.pem" || return 0
    install "$f" $c
    reload
    wait_crl "$ECC" number 03 10 || return 0
    ossl $c -cert $c/ee-good.pem
    assert_contains "$c/ee-good.pem: revoked" "$OUT" "a good number 3 after the refusals"
}

test_too_big() {
    t_name "[upstream] max_crl_bytes = 1024: a bigger CRL is refused as too_big and the held one stays"
    local c=hk/rsa-ca f=$WORK/big.der size
    HELD_NUMBER=01
    cp "$D/$c/crl.der" "$WORK/held1.der"
    HELD_FILE=$WORK/held1.der
    mk $c "$f" --number 2 --count 30 --revoke-cert "$D/$c/ee-revoked.pem" --revoke-cert "$D/$c/ee-good.pem" || return 0
    size=$(stat -c %s "$f")
    ((size > 1024)) || fail "the test CRL has only $size bytes"
    refused too_big "$size bytes" $c "$f"
    # under the limit goes in force
    mk $c "$f" --number 3 --revoke-cert "$D/$c/ee-revoked.pem" --revoke-cert "$D/$c/ee-good.pem" || return 0
    size=$(stat -c %s "$f")
    ((size <= 1024)) || fail "the small CRL has $size bytes"
    install "$f" $c
    reload
    wait_crl "$RSA" number 03 10 || return 0
    ossl $c -cert $c/ee-good.pem
    assert_contains "$c/ee-good.pem: revoked" "$OUT" "a $size-byte CRL after the refusal"
}

# ---------------------------------------------------------------------------
# 5. no CRL, stale CRL -> tryLater

test_no_crl() {
    t_name "no CRL yet (upstream file missing at start): tryLater (trylater_no_status), /crl/ null and 404; the CRL arriving brings good/revoked"
    local c=hk/ecc-ca n0 n1 code
    assert_eq null "$(crl_field "$ECC" fresh)" "/crl/ crl of hk/ecc-ca"
    wait_metric_above 'trustgate_crl_fetches_total{result="file"}' 0 5
    code=$(curl -s -o "$WORK/body" -w '%{http_code}' "http://127.0.0.1:$PORT/crl/hk/$ECC.crl") || true
    assert_eq 404 "$code" "GET /crl/hk/{ecc}.crl without a CRL"
    assert_eq "no CRL held for this CA yet" "$(cat "$WORK/body")" "404 text"
    n0=$(decisions trylater_no_status)
    ossl $c -cert $c/ee-good.pem
    assert_contains "Responder Error: trylater (3)" "$OUT" "openssl without a CRL"
    n1=$(decisions trylater_no_status)
    assert_delta "$n0" "$n1" 1 "trylater_no_status decisions"
    good_and_revoked hk/rsa-ca "the other HK CA, its CRL held"
    mv "$D/$c/crl.der.away" "$D/$c/crl.der"
    reload
    wait_crl "$ECC" fresh true 10 || return 0
    good_and_revoked $c "CRL arrived"
}

test_stale() {
    t_name "a CRL past its nextUpdate, upstream gone: tryLater (trylater_stale_crl), no pre-signed good; a fresh CRL brings the answers back"
    local c=hk/rsa-ca next this now st0 st1 f0 cc
    local args=(--url "$URL" --issuer "$c/ca.pem" --cert "$c/ee-good.pem" --signer signers/hk-responder.pem --get)
    mk $c "$WORK/short.der" --number 2 --next 4 --revoke-cert "$D/$c/ee-revoked.pem" || return 0
    install "$WORK/short.der" $c
    reload
    wait_crl "$RSA" number 02 3 || return 0
    next=$(crl_epoch "$WORK/short.der" nextupdate)
    this=$(crl_epoch "$WORK/short.der" lastupdate)
    good_and_revoked $c "fresh 4 s CRL"
    # RFC 5019 §6 on a CRL-based GET answer: max-age = min(nextUpdate - now,
    # http_max_age_s), so at most 4 s here; Expires and Last-Modified are
    # the CRL's nextUpdate and thisUpdate
    (cd "$D" && openssl ocsp -issuer $c/ca.pem -cert $c/ee-good.pem -no_nonce -reqout "$WORK/req-good.der") >/dev/null 2>&1
    now=$(date +%s)
    curl -s --max-time 5 -D "$WORK/h" -o /dev/null "$URL/$(get_path "$WORK/req-good.der")" || true
    cc=$(header Cache-Control "$WORK/h")
    if assert_match '^max-age=([0-9]+), public, no-transform, must-revalidate$' "$cc" "OCSP GET while fresh: Cache-Control"; then
        [[ $cc =~ max-age=([0-9]+) ]]
        assert_le "${BASH_REMATCH[1]}" $((next - now)) "OCSP GET max-age <= nextUpdate - now"
    fi
    assert_eq "$(http_date "$next")" "$(header Expires "$WORK/h")" "OCSP GET Expires = the CRL's nextUpdate"
    assert_eq "$(http_date "$this")" "$(header Last-Modified "$WORK/h")" "OCSP GET Last-Modified = the CRL's thisUpdate"
    query "${args[@]}" # stores a pre-signed good
    assert_eq 0 "$QRC" "GET ee-good while fresh ($QOUT)"
    now=$(date +%s)
    ((now < next)) || fail "the 4 s CRL was stale before the checks ended (now $now, next $next)"
    f0=$(fetches file)
    rm -f "$D/$c/crl.der"
    st0=$(decisions trylater_stale_crl)
    while (($(date +%s) <= next)); do sleep 0.2; done
    ossl $c -cert $c/ee-good.pem
    assert_contains "Responder Error: trylater (3)" "$OUT" "openssl after nextUpdate"
    st1=$(decisions trylater_stale_crl)
    assert_delta "$st0" "$st1" 1 "trylater_stale_crl decisions"
    query "${args[@]}"
    assert_eq 2 "$QRC" "GET ee-good when stale: exit status ($QOUT)"
    assert_eq "tryLater (3)" "$(line responseStatus)" "GET ee-good when stale: responseStatus"
    curl -s --max-time 5 -D "$WORK/h" -o "$WORK/resp.der" "$URL/$(get_path "$WORK/req-good.der")" || true
    assert_eq 30030a0103 "$(hex "$WORK/resp.der")" "raw GET when stale: the unsigned tryLater"
    assert_eq no-store "$(header Cache-Control "$WORK/h")" "raw GET when stale: Cache-Control"
    assert_eq false "$(crl_field "$RSA" fresh)" "/crl/ fresh"
    curl -s -D "$WORK/h" -o /dev/null "http://127.0.0.1:$PORT/crl/hk/$RSA.crl" || true
    assert_match '^max-age=0,' "$(header Cache-Control "$WORK/h")" "stale CRL file: Cache-Control"
    # the scheduled refetch (5 s after the ingest at the earliest) fails
    wait_metric_above 'trustgate_crl_fetches_total{result="file"}' "$f0" 15
    assert_match '^-[0-9]+$' "$(metric "trustgate_crl_next_update_seconds{list=\"hk\",ca=\"$RSA\"}")" \
        "trustgate_crl_next_update_seconds (negative: stale)"
    # upstream back
    mk $c "$WORK/fresh3.der" --number 3 --revoke-cert "$D/$c/ee-revoked.pem" || return 0
    install "$WORK/fresh3.der" $c
    reload
    wait_crl "$RSA" number 03 10 || return 0
    assert_eq true "$(crl_field "$RSA" fresh)" "/crl/ fresh again"
    good_and_revoked $c "fresh CRL back"
    query "${args[@]}"
    assert_eq 0 "$QRC" "GET ee-good with the fresh CRL: exit status ($QOUT)"
}

# ---------------------------------------------------------------------------
# 6. a million entries

# ocsp_get_serial CA HEX OUTFILE: an RFC 5019 GET for any serial of CA (the
# request built with openssl ocsp -reqout); the response verified and shown
# by openssl ocsp -respin into OUT.
ocsp_get_serial() {
    local ca=$1 serial=$2 resp=$3
    (cd "$D" && openssl ocsp -issuer "$ca/ca.pem" -serial "0x$serial" -no_nonce -reqout "$WORK/req.der") >/dev/null 2>&1
    curl -s --max-time 10 -o "$resp" "$URL/$(get_path "$WORK/req.der")" || true
    OUT=$(cd "$D" && openssl ocsp -respin "$resp" -issuer "$ca/ca.pem" -serial "0x$serial" \
        -VAfile signers/hk-responder.pem 2>&1) || true
}

test_million() {
    t_name "a 1,000,002-entry CRL for hk/rsa-ca: in force within 60 s, counted, every kind of entry found"
    local c=hk/rsa-ca known=7E57C0FFEE00000000000000000000A1 from l ingest rss size mid last
    mk $c "$WORK/million.der" --number 2 --count 1000000 --seed 7 \
        --revoke-cert "$D/$c/ee-revoked.pem" --revoke "$known:4" || return 0
    size=$(stat -c %s "$WORK/million.der")
    from=$(log_lines)
    install "$WORK/million.der" $c
    reload
    if ! l=$(wait_log "crl hk/$RSA: in force: number 0x02" 60 "$from"); then
        fail "no 'in force: number 0x02' for hk/rsa-ca within 60 s; last lines:"
        tail -n 5 "$D/stderr.log" | sed 's/^/        | /'
        return 0
    fi
    assert_match ' 1000002 revoked, ' "$l" "log line: entries"
    [[ $l =~ \(([0-9.]+)\ s\ to\ ingest\) ]] && ingest=${BASH_REMATCH[1]} || ingest=unknown
    rss=$(awk '/^VmHWM:/ { print $2 " " $3 }' "/proc/$SRV_PID/status")
    echo "note: 1,000,002-entry CRL ($size bytes): ingested in $ingest s; server peak RSS (VmHWM) $rss"
    assert_eq 1000002 "$(crl_field "$RSA" entries)" "/crl/ entries"
    assert_eq "$size" "$(crl_field "$RSA" bytes)" "/crl/ bytes"
    assert_eq 1000002 "$(metric "trustgate_crl_entries{list=\"hk\",ca=\"$RSA\"}")" "trustgate_crl_entries"
    assert_eq 2 "$(metric "trustgate_crl_number{list=\"hk\",ca=\"$RSA\"}")" "trustgate_crl_number"
    good_and_revoked $c "million"
    # the explicit serial, with its own reason, by GET
    ocsp_get_serial $c "$known" "$WORK/resp-known.der"
    assert_contains "Response verify OK" "$OUT" "known serial: verification"
    assert_contains "0x$known: revoked" "$OUT" "known serial: status"
    assert_contains "Reason: superseded" "$OUT" "known serial: reason"
    # generated serials from the middle and the end of the CRL
    read -r mid last < <(serials "$WORK/million.der" 500001 -1 | tr '\n' ' ')
    ocsp_get_serial $c "$mid" "$WORK/resp-mid.der"
    assert_contains "0x$mid: revoked" "$OUT" "entry 500,001 ($mid)"
    ossl $c -serial "0x$last"
    assert_contains "0x$last: revoked" "$OUT" "the last entry ($last)"
    assert_contains "Reason: keyCompromise" "$OUT" "the last entry: reason"
    # a neighbour of the known serial is not on the CRL
    ossl $c -serial "0x7E57C0FFEE00000000000000000000A2"
    assert_contains ": good" "$OUT" "a serial not on the CRL"
    # the 49 MB CRL is served as it came
    curl -s --max-time 20 -o "$WORK/million-served.der" "http://127.0.0.1:$PORT/crl/hk/$RSA.crl" || true
    cmp -s "$WORK/million-served.der" "$WORK/million.der" || fail "GET /crl/hk/{rsa}.crl: not the 1M CRL"
    rm -f "$WORK/million-served.der"

    # 20 clients ask for it and do not read: each download holds a copy
    # until written, so the server caps their sum (512 MiB) and answers the
    # rest 503 with Retry-After; memory stays bounded
    local out rss0 rss1
    rss0=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SRV_PID/status")
    out=$(python3 - "$PORT" "$RSA" "$SRV_PID" <<'PY'
import socket, sys, time
port, ca, pid = int(sys.argv[1]), sys.argv[2], sys.argv[3]
socks = []
for _ in range(20):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(("GET /crl/hk/%s.crl HTTP/1.1\r\nHost: x\r\n\r\n" % ca).encode())
    socks.append(s)
time.sleep(1.5)
rss = [l.split()[1] for l in open("/proc/%s/status" % pid) if l.startswith("VmRSS:")][0]
codes = {}
for s in socks:
    line = s.recv(64).split(b"\r\n")[0].decode()
    code = line.split(" ")[1] if " " in line else "?"
    codes[code] = codes.get(code, 0) + 1
    s.close()
print(rss, " ".join("%s=%d" % kv for kv in sorted(codes.items())))
PY
) || true
    rss1=${out%% *}
    echo "note: 20 non-reading downloads of the 49 MB CRL: RSS $rss0 -> $rss1 kB; answers ${out#* }"
    assert_match "200=10 503=10" "$out" "10 downloads admitted under the 512 MiB cap, 10 told to retry"
    assert_le "$((rss1 - rss0))" $((600 * 1024)) "RSS growth (kB) with 20 stalled downloads"
}

test_crl_url_override() {
    t_name "[trustlist] crl_url overrides a CA's CRL supply point; SIGHUP takes it up"
    local c=hk/ecc-ca r
    mkdir -p "$D/mirror"
    mk $c "$D/mirror/ecc.crl" --number 7 --revoke-cert "$D/$c/ee-revoked.pem" \
        --revoke-cert "$D/$c/ee-good.pem" || return 0
    printf 'crl_url = %s file://%s/mirror/ecc.crl\n' "$ECC" "$D" >>"$D/trustgate.ini"
    r=$("$TG" check -c "$D/trustgate.ini" 2>&1) || true
    assert_contains "CRL of CA $ECC from file://$D/mirror/ecc.crl" "$r" "trustgate check shows the override"
    kill -HUP "$SRV_PID"
    wait_crl "$ECC" number 07 10 || return 0
    ossl $c -cert $c/ee-good.pem
    assert_contains "$c/ee-good.pem: revoked" "$OUT" "answer from the mirror's CRL"
    # the list's own supply point is not read any more: a newer CRL there
    # (number 8) is not taken
    mk $c "$WORK/n8.der" --number 8 --revoke-cert "$D/$c/ee-revoked.pem" || return 0
    install "$WORK/n8.der" $c
    reload
    sleep 1
    assert_eq 07 "$(crl_field "$ECC" number)" "number 8 at the list's supply point ignored"
}

# ---------------------------------------------------------------------------
# 7. kill -9 mid-ingest

test_kill9() {
    t_name "kill -9 during a 1M-entry ingest: the restart answers at once from the cache (old CRL intact), then takes up the new CRL"
    local c=hk/rsa-ca from killed t0 t1 n0 l rc
    local args=(--url "$URL" --issuer "$c/ca.pem" --cert "$c/ee-good.pem" --signer signers/hk-responder.pem --get)
    good_and_revoked $c "small CRL before" || return 0
    query "${args[@]}" # a pre-signed good under the small CRL
    assert_eq 0 "$QRC" "GET ee-good before ($QOUT)"
    mk $c "$WORK/million7.der" --number 2 --count 1000000 --seed 9 \
        --revoke-cert "$D/$c/ee-revoked.pem" --revoke-cert "$D/$c/ee-good.pem:4" || return 0
    install "$WORK/million7.der" $c
    from=$(stat -c %s "$D/stderr.log")
    # reload, then SIGKILL the moment the big ingest is logged as started
    killed=$(python3 - "$D/admin.sock" "$D/stderr.log" "$from" "$SRV_PID" "$RSA" <<'PY'
import calendar, os, re, signal, socket, sys, time
sock, log, start, pid, ca = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
pat = re.compile(r"^(\S+) .*crl hk/" + ca + r": ingesting (\d+) bytes", re.M)
s = socket.socket(socket.AF_UNIX)
s.connect(sock)
s.sendall(b"reload\n")
f = open(log, "rb")
f.seek(start)
buf = ""
deadline = time.time() + 60
while time.time() < deadline:
    buf += f.read().decode(errors="replace")
    m = pat.search(buf)
    if m and int(m.group(2)) > 1000000:
        os.kill(pid, signal.SIGKILL)
        now = time.time()
        ts = m.group(1).rstrip("Z")
        t = calendar.timegm(time.strptime(ts.split(".")[0], "%Y-%m-%dT%H:%M:%S")) + float("0." + ts.split(".")[1])
        print(round((now - t) * 1000, 1))
        sys.exit(0)
    time.sleep(0.0005)
print("timeout")
PY
) || killed=error
    if [[ $killed == timeout || $killed == error ]]; then
        fail "no 'ingesting' line for the 1M CRL within 60 s ($killed)"
        return 0
    fi
    rc=0
    wait "$SRV_PID" 2>/dev/null || rc=$?
    assert_eq 137 "$rc" "server exit status after SIGKILL"
    if tail -c +"$((from + 1))" "$D/stderr.log" | grep -q "crl hk/$RSA: in force: number 0x02"; then
        echo "note: kill -9 came ${killed} ms after the 'ingesting' line, but the ingest had already finished"
    else
        echo "note: kill -9 ${killed} ms after the 'ingesting' line, before 'in force' (mid-ingest)"
    fi
    from=$(log_lines)
    if ! start_server "$D"; then
        fail "the server did not restart on the same cache"
        return 0
    fi
    t0=$(date +%s.%N)
    n0=$(crl_field "$RSA" number)
    ossl $c -cert $c/ee-good.pem -cert $c/ee-revoked.pem
    t1=$(date +%s.%N)
    assert_le "$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$t1")" 1 \
        "seconds from the port opening to the first answer"
    assert_contains "Response verify OK" "$OUT" "first answer: verification"
    assert_contains "$c/ee-revoked.pem: revoked" "$OUT" "first answer: ee-revoked (from the cache)"
    case $n0 in
    01)
        assert_contains "$c/ee-good.pem: good" "$OUT" "first answer: ee-good under the old CRL"
        ;;
    02)
        echo "note: the restart had ingested the new CRL before the first answer"
        ;;
    *)
        fail "/crl/ number right after the restart: '$n0' (want the old 01, or 02)"
        ;;
    esac
    if ! l=$(wait_log "crl hk/$RSA: in force: number 0x02" 60 "$from"); then
        fail "the restart did not take up the new CRL within 60 s"
        return 0
    fi
    wait_crl "$RSA" number 02 5
    assert_eq 1000002 "$(crl_field "$RSA" entries)" "/crl/ entries after the restart"
    query "${args[@]}"
    assert_eq 1 "$QRC" "GET ee-good with the new CRL: exit status ($QOUT)"
    assert_eq "superseded (4)" "$(line reason)" "GET ee-good with the new CRL: reason"
    ossl $c -cert $c/ee-good.pem -cert $c/ee-revoked.pem
    assert_contains "$c/ee-good.pem: revoked" "$OUT" "ee-good with the new CRL"
    assert_contains "$c/ee-revoked.pem: revoked" "$OUT" "ee-revoked with the new CRL"
    if grep -qiE "corrupt|MDB_" "$D/stderr.log"; then
        fail "cache errors in the log: $(grep -iE -m2 "corrupt|MDB_" "$D/stderr.log")"
    fi
}

# ---------------------------------------------------------------------------

T0=$(date +%s)
for bin in "$TG" "$MKCRL"; do
    [[ -x $bin ]] || {
        echo "missing $bin (make all build/tests/mkcrl)" >&2
        exit 1
    }
done

group() { # NAME FN...: one world (new_world NAME), its tests, the server stopped
    local name=$1
    shift
    t_name "setup: demo world '$name' served, every CRL held"
    if ! new_world "$name" ${WORLD_LINES[@]+"${WORLD_LINES[@]}"}; then
        t_end
        return 0
    fi
    t_end
    local fn
    for fn in "$@"; do run_test "$fn"; done
    t_name "world '$name': server exits 0 on SIGTERM; no sanitizer report"
    stop_server
    t_end
}

WORLD_LINES=()
WORLD_NO_CRL=
group served test_served test_served_refusals test_index test_revoke_ecdsa test_revoke_sm2
group refused test_refused
WORLD_LINES=("max_crl_bytes = 1024")
group limit test_too_big
WORLD_LINES=()
WORLD_NO_CRL=hk/ecc-ca
group nocrl test_no_crl test_crl_url_override
WORLD_NO_CRL=
group stale test_stale
group million test_million
group kill9 test_kill9

echo "note: crl.sh ran $(($(date +%s) - T0)) s"
t_summary
