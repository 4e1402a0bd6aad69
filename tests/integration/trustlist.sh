#!/usr/bin/env bash
# Trust lists end to end (SPEC §2, §5, §6): a real trustgate with a signed
# Hong Kong list whose CA is suspended, reinstated and terminated by new
# list files renamed into place; signed rejections checked by `openssl ocsp
# -VAfile`; refused lists (tampered, wrong signer, wrapping, rollback,
# malformed, entity bomb) keep the last good list in force; the latency from
# a list change to the first changed answer, by file and by admin socket.
#
#   TG_BUILD=build bash tests/integration/trustlist.sh
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
POLL=$TG_BUILD/tests/ocsp_poll
TRIALS=${TG_LATENCY_TRIALS:-20}

URI=http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus
GRANTED=$URI/granted
WITHDRAWN=$URI/withdrawn
SUSPENDED=urn:gdhk-mr:svcstatus:suspended

iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# The test PKI: an operator (list signer), an impostor operator, a listed CA
# with a good end-entity certificate, an unlisted CA, and the responder
# signer of the list (ECDSA P-256, checked with -VAfile).
mk_world() {
    local d=$1
    mkdir -p "$d/lists"
    (
        cd "$d"
        for who in operator impostor; do
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
                -subj "/CN=HK list $who" -keyout "$who.key" -out "$who.pem" 2>/dev/null
        done
        for ca in ca unlisted; do
            openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=HK test $ca" \
                -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
                -keyout "$ca.key" -out "$ca.pem" 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=ee of $ca" \
                -keyout "ee-$ca.key" -out "ee-$ca.csr" 2>/dev/null
            openssl x509 -req -in "ee-$ca.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
                -days 10 -out "ee-$ca.pem" 2>/dev/null
        done
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
            -subj "/CN=HK responder" -addext extendedKeyUsage=OCSPSigning \
            -keyout signer.key -out signer.pem 2>/dev/null
        openssl ocsp -issuer ca.pem -cert ee-ca.pem -no_nonce -reqout req-ca.der >/dev/null
        openssl ocsp -issuer unlisted.pem -cert ee-unlisted.pem -no_nonce \
            -reqout req-unlisted.der >/dev/null
    )
}

# list_xml SEQ STATUS_URI STATUS_START [HISTORY_URI HISTORY_START]: an
# unsigned list with one category of ca.pem.
list_xml() {
    local seq=$1 status=$2 start=$3 hist=${4:-} hstart=${5:-} now b64
    now=$(date +%s)
    b64=$(openssl x509 -in "$D/ca.pem" -outform DER | base64 -w0)
    cat <<XML
<?xml version="1.0" encoding="UTF-8"?>
<tsl:TrustServiceStatusList xmlns:tsl="http://uri.etsi.org/02231/v2#" TSLTag="http://uri.etsi.org/19612/TSLTag" Id="tsl-hk">
  <tsl:SchemeInformation>
    <tsl:TSLVersionIdentifier>5</tsl:TSLVersionIdentifier>
    <tsl:TSLSequenceNumber>$seq</tsl:TSLSequenceNumber>
    <tsl:TSLType>http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUgeneric</tsl:TSLType>
    <tsl:SchemeOperatorName><tsl:Name xml:lang="en">Digital Policy Office (test)</tsl:Name></tsl:SchemeOperatorName>
    <tsl:SchemeTerritory>HK</tsl:SchemeTerritory>
    <tsl:ListIssueDateTime>$(iso "$now")</tsl:ListIssueDateTime>
    <tsl:NextUpdate><tsl:dateTime>$(iso $((now + 86400)))</tsl:dateTime></tsl:NextUpdate>
  </tsl:SchemeInformation>
  <tsl:TrustServiceProviderList>
    <tsl:TrustServiceProvider>
      <tsl:TSPInformation><tsl:TSPName><tsl:Name xml:lang="en">HK Test CA Ltd</tsl:Name></tsl:TSPName></tsl:TSPInformation>
      <tsl:TSPServices>
        <tsl:TSPService>
          <tsl:ServiceInformation>
            <tsl:ServiceTypeIdentifier>http://uri.etsi.org/TrstSvc/Svctype/CA/PKC</tsl:ServiceTypeIdentifier>
            <tsl:ServiceName><tsl:Name xml:lang="en">HK Test Signing CA</tsl:Name></tsl:ServiceName>
            <tsl:ServiceDigitalIdentity><tsl:DigitalId><tsl:X509Certificate>$b64</tsl:X509Certificate></tsl:DigitalId></tsl:ServiceDigitalIdentity>
            <tsl:ServiceStatus>$status</tsl:ServiceStatus>
            <tsl:StatusStartingTime>$(iso "$start")</tsl:StatusStartingTime>
          </tsl:ServiceInformation>
XML
    if [[ -n $hist ]]; then
        cat <<XML
          <tsl:ServiceHistory><tsl:ServiceHistoryInstance>
            <tsl:ServiceTypeIdentifier>http://uri.etsi.org/TrstSvc/Svctype/CA/PKC</tsl:ServiceTypeIdentifier>
            <tsl:ServiceName><tsl:Name xml:lang="en">HK Test Signing CA</tsl:Name></tsl:ServiceName>
            <tsl:ServiceDigitalIdentity><tsl:DigitalId><tsl:X509Certificate>$b64</tsl:X509Certificate></tsl:DigitalId></tsl:ServiceDigitalIdentity>
            <tsl:ServiceStatus>$hist</tsl:ServiceStatus>
            <tsl:StatusStartingTime>$(iso "$hstart")</tsl:StatusStartingTime>
          </tsl:ServiceHistoryInstance></tsl:ServiceHistory>
XML
    fi
    cat <<XML
        </tsl:TSPService>
      </tsl:TSPServices>
    </tsl:TrustServiceProvider>
  </tsl:TrustServiceProviderList>
</tsl:TrustServiceStatusList>
XML
}

# signed_list OUT SIGNER SEQ STATUS START [HIST HSTART]: list_xml signed by
# SIGNER (operator or impostor) with `trustgate tl sign`.
signed_list() {
    local out=$1 who=$2
    shift 2
    list_xml "$@" >"$out.unsigned"
    "$TG" tl sign --key "$D/$who.key" --cert "$D/$who.pem" "$out.unsigned" "$out" >/dev/null
}

# install FILE: renames FILE over the list source, as an operator would.
install_list() { mv -f "$1" "$D/lists/hk.xml"; }

# status_of REQ: the certStatus (or error status) trustgate answers, after
# verifying the signature against the responder certificate.
status_of() {
    local req=$1 out
    out=$(openssl ocsp -reqin "$D/$req" -issuer "$D/ca.pem" -VAfile "$D/signer.pem" \
        -url "http://127.0.0.1:$PORT/" -resp_text -no_nonce 2>&1) || true
    if [[ $out == *"Responder Error: "* ]]; then
        sed -n 's/.*Responder Error: \([a-zA-Z]*\).*/\1/p' <<<"$out" | head -n 1
        return
    fi
    if [[ $out != *"Response verify OK"* ]]; then
        echo "verify-failed"
        return
    fi
    sed -n 's/^ *Cert Status: \([a-z]*\).*/\1/p' <<<"$out" | head -n 1
}

# wait_status REQ WANT: the answer becomes WANT within 5 s.
wait_status() {
    local want=$2 got i
    for ((i = 0; i < 50; i++)); do
        got=$(status_of "$1")
        [[ $got == "$want" ]] && return 0
        sleep 0.1
    done
    assert_eq "$want" "$got" "answer for $1"
}

metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

setup() {
    D=$WORK/world
    mk_world "$D"
    PORT=$(free_port)
    local now
    now=$(date +%s)
    signed_list "$D/lists/hk.xml" operator 1 "$GRANTED" $((now - 3600))
    write_config "$D/trustgate.ini" "$PORT"
    cat >>"$D/trustgate.ini" <<INI

[signer hk]
cert = signer.pem
key = signer.key

[trustlist hk]
source = lists/hk.xml
operator_cert = operator.pem
signer = hk
INI
    SEQ=1
    start_server "$D"
}

next_seq() { SEQ=$((SEQ + 1)); }

test_answers() {
    t_name "unlisted issuer: unauthorized"
    assert_eq unauthorized "$(status_of req-unlisted.der)" "unlisted CA"
    t_name "listed, active issuer without a CRL supply point: tryLater (no status data, never a guess)"
    assert_eq trylater "$(status_of req-ca.der)" "active CA"
    t_name "/trustlist/hk.xml republishes the list byte for byte; Trust-List-Sequence header"
    curl -s -D "$WORK/th" -o "$WORK/tl.xml" "http://127.0.0.1:$PORT/trustlist/hk.xml"
    assert_eq "$(sha256sum <"$D/lists/hk.xml")" "$(sha256sum <"$WORK/tl.xml")" "served list"
    assert_contains "Trust-List-Sequence: hk=1" "$(cat "$WORK/th")" "header"
    t_name "/readyz is 200 once every configured list is in force"
    assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")" "readyz"
}

test_suspend_reinstate_terminate() {
    local now
    now=$(date +%s)
    t_name "suspend: signed revoked, certificateHold, from the suspension start"
    next_seq
    signed_list "$WORK/new.xml" operator "$SEQ" "$SUSPENDED" $((now - 60)) "$GRANTED" $((now - 3600))
    install_list "$WORK/new.xml"
    wait_status req-ca.der revoked
    local out
    out=$(openssl ocsp -reqin "$D/req-ca.der" -issuer "$D/ca.pem" -VAfile "$D/signer.pem" \
        -url "http://127.0.0.1:$PORT/" -resp_text -no_nonce 2>&1)
    assert_contains "Reason: certificateHold" "$out" "reason"
    assert_contains "Revocation Time: $(date -u -d "@$((now - 60))" '+%b %e %H:%M:%S %Y GMT')" "$out" "revocation time"
    t_name "reinstate: active again (tryLater: no status data)"
    next_seq
    signed_list "$WORK/new.xml" operator "$SEQ" "$GRANTED" "$now" "$SUSPENDED" $((now - 60))
    install_list "$WORK/new.xml"
    wait_status req-ca.der trylater
    t_name "terminate: signed revoked, privilegeWithdrawn"
    next_seq
    signed_list "$WORK/new.xml" operator "$SEQ" "$WITHDRAWN" "$now" "$GRANTED" $((now - 3600))
    install_list "$WORK/new.xml"
    wait_status req-ca.der revoked
    out=$(openssl ocsp -reqin "$D/req-ca.der" -issuer "$D/ca.pem" -VAfile "$D/signer.pem" \
        -url "http://127.0.0.1:$PORT/" -resp_text -no_nonce 2>&1)
    # OpenSSL 3.0 has no name for CRLReason 9 and prints "(UNKNOWN) (0x9)"
    assert_match "Revocation Reason: (privilegeWithdrawn|\\(UNKNOWN\\)) \\(0x9\\)" "$out" "reason"
    t_name "back to granted for the next tests"
    next_seq
    signed_list "$WORK/new.xml" operator "$SEQ" "$GRANTED" "$now" "$WITHDRAWN" $((now - 30))
    install_list "$WORK/new.xml"
    wait_status req-ca.der trylater
}

# refuse NAME REASON: the file at $WORK/bad.xml replaces the list; the old
# one stays in force, the refusal is counted, the server keeps answering.
refuse() {
    local name=$1 reason=$2 before after
    t_name "refused list: $name keeps the last good list in force"
    before=$(metric "trustgate_trustlist_refused_total{list=\"hk\",reason=\"$reason\"}")
    install_list "$WORK/bad.xml"
    local i
    for ((i = 0; i < 50; i++)); do
        after=$(metric "trustgate_trustlist_refused_total{list=\"hk\",reason=\"$reason\"}")
        [[ ${after:-0} -gt ${before:-0} ]] && break
        sleep 0.1
    done
    assert_ne "${before:-0}" "${after:-0}" "refusals counted with reason $reason"
    assert_eq trylater "$(status_of req-ca.der)" "answer from the list in force"
    assert_contains "hk=$SEQ" "$(curl -s -D - -o /dev/null "http://127.0.0.1:$PORT/healthz")" "sequence in force"
    assert_file_match "trust list hk: refused \\($reason\\)" "$D/stderr.log" "log line says why"
}

test_refusals() {
    local now
    now=$(date +%s)
    signed_list "$WORK/good.xml" operator $((SEQ + 1)) "$SUSPENDED" "$now"
    sed 's/HK Test CA Ltd/HK Evil CA Ltd/' "$WORK/good.xml" >"$WORK/bad.xml"
    refuse "tampered after signing" bad_signature
    signed_list "$WORK/bad.xml" impostor $((SEQ + 1)) "$SUSPENDED" "$now"
    refuse "signed by another key" wrong_signer
    python3 - "$WORK/good.xml" "$WORK/bad.xml" <<'PY'
import sys
doc = open(sys.argv[1]).read()
# signature wrapping: the signed list moved inside an unsigned outer one
head, rest = doc.split("<tsl:TrustServiceStatusList", 1)
wrapped = head + '<tsl:TrustServiceStatusList xmlns:tsl="http://uri.etsi.org/02231/v2#" Id="evil">' \
    + "<tsl:TrustServiceStatusList" + rest + "</tsl:TrustServiceStatusList>"
open(sys.argv[2], "w").write(wrapped)
PY
    refuse "signature wrapping" wrapping
    signed_list "$WORK/bad.xml" operator $((SEQ - 1)) "$SUSPENDED" "$now"
    refuse "lower sequence number (rollback)" rollback
    printf '<?xml version="1.0"?><tsl:TrustServiceStatusList xmlns:tsl="http://uri.etsi.org/02231/v2#"><unclosed>' >"$WORK/bad.xml"
    refuse "malformed XML" malformed_xml
    cat >"$WORK/bad.xml" <<'XML'
<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<tsl:TrustServiceStatusList xmlns:tsl="http://uri.etsi.org/02231/v2#">&lol9;</tsl:TrustServiceStatusList>
XML
    refuse "billion laughs" entity_declaration
    # a signature whose only reference covers SchemeInformation, made by the
    # xmlsec1 command line (an independent signer) with the right key
    list_xml $((SEQ + 1)) "$SUSPENDED" "$now" |
        sed -e 's|<tsl:SchemeInformation>|<tsl:SchemeInformation Id="si">|' \
            -e 's|</tsl:TrustServiceStatusList>|<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/><ds:Reference URI="#si"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/></ds:Signature></tsl:TrustServiceStatusList>|' \
            >"$WORK/partial.tmpl"
    xmlsec1 --sign --privkey-pem "$D/operator.key,$D/operator.pem" \
        --id-attr:Id "http://uri.etsi.org/02231/v2#:SchemeInformation" \
        --output "$WORK/bad.xml" "$WORK/partial.tmpl" 2>/dev/null
    refuse "reference to only part of the document" partial_reference
}

# Interoperability of the list signature with the xmlsec1 command line, both
# ways: it verifies what `tl sign` made, and `tl show` accepts what it signs.
test_xmlsec1_interop() {
    t_name "xmlsec1 --verify accepts tl sign output; tl show accepts xmlsec1 --sign output"
    local now out
    now=$(date +%s)
    signed_list "$WORK/ours.xml" operator 77 "$GRANTED" "$now"
    out=$(xmlsec1 --verify --pubkey-cert-pem "$D/operator.pem" \
        --enabled-reference-uris empty,same-doc "$WORK/ours.xml" 2>&1) || true
    assert_contains "OK" "$out" "xmlsec1 --verify of tl sign output"
    list_xml 78 "$GRANTED" "$now" |
        sed -e 's|</tsl:TrustServiceStatusList>|<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/><ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/></ds:Signature></tsl:TrustServiceStatusList>|' \
            >"$WORK/theirs.tmpl"
    xmlsec1 --sign --privkey-pem "$D/operator.key,$D/operator.pem" --output "$WORK/theirs.xml" \
        "$WORK/theirs.tmpl" 2>/dev/null
    local rc=0
    out=$("$TG" tl show "$WORK/theirs.xml" --operator-cert "$D/operator.pem" 2>&1) || rc=$?
    assert_eq 0 "$rc" "tl show of xmlsec1 --sign output: $(grep -m1 signature: <<<"$out")"
}

# Published lists (../shared/vectors/trustlists): each verifies with its own
# signer through the command line, the known-bad ones and every list checked
# against another list's signer are refused.
test_published_lists() {
    local dir=${TG_VECTORS:-}/trustlists f signer other rc
    if [[ -z ${TG_VECTORS:-} || ! -d $dir ]]; then
        t_skip "published trust lists" "TG_VECTORS not set"
        return
    fi
    t_name "tl show verifies every published list with its signer; refuses the negatives"
    for f in "$dir"/*.xml; do
        signer=$f.signer.pem
        [[ -f $signer ]] || continue
        rc=0
        "$TG" tl show "$f" --operator-cert "$signer" >"$WORK/show.out" 2>&1 || rc=$?
        case $(basename "$f") in
        tc-tl.xml | fr-65-docusign.xml | tsl-sk-minimal-dss-1911.xml)
            assert_eq 1 "$rc" "$(basename "$f") (a known-bad signature) refused" ;;
        *) assert_eq 0 "$rc" "$(basename "$f") verifies: $(grep -m1 signature: "$WORK/show.out")" ;;
        esac
    done
    t_name "tl show refuses every published list checked against another list's signer"
    other=$dir/DK.xml.signer.pem
    for f in "$dir"/*.xml; do
        [[ -f $f.signer.pem && $f != "$dir/DK.xml" ]] || continue
        cmp -s "$f.signer.pem" "$other" && continue
        rc=0
        "$TG" tl show "$f" --operator-cert "$other" >/dev/null 2>&1 || rc=$?
        assert_eq 1 "$rc" "$(basename "$f") with DK's signer"
    done
}

# latency KIND: time from a list change to the first answer that shows it.
latency() {
    local kind=$1 i want status now t0 ms samples=()
    now=$(date +%s)
    for ((i = 0; i < TRIALS; i++)); do
        next_seq
        if ((i % 2 == 0)); then
            want=revoked
            status=$SUSPENDED
        else
            want=trylater
            status=$GRANTED
        fi
        signed_list "$WORK/next.xml" operator "$SEQ" "$status" "$now"
        [[ $kind == file ]] || cp "$WORK/next.xml" "$D/lists/hk-url.xml"
        # the poller runs before the change, so its start-up is not measured
        "$POLL" 127.0.0.1 "$PORT" "$D/req-ca.der" "$want" 0 5000 >"$WORK/poll.out" &
        local poller=$!
        sleep 0.05
        if [[ $kind == file ]]; then
            t0=$(date +%s%N)
            mv -f "$WORK/next.xml" "$D/lists/hk.xml"
        else
            # the clock starts when the command is sent, not at python's start
            t0=$(python3 - "$D/admin.sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
t0 = time.time_ns()
s.sendall(b"reload\n")
s.recv(4096)
print(t0)
PY
)
        fi
        if ! wait "$poller"; then
            fail "trial $i: the answer never became $want"
            return
        fi
        ms=$(python3 -c 'import sys; print((int(sys.argv[1]) - int(sys.argv[2])) / 1e6)' "$(cat "$WORK/poll.out")" "$t0")
        samples+=("$ms")
    done
    python3 - "$kind" "${samples[@]}" <<'PY'
import sys
kind, xs = sys.argv[1], sorted(float(x) for x in sys.argv[2:])
def q(p):
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]
print(f"    latency via {kind}: n={len(xs)} p50={q(0.5):.2f} ms p99={q(0.99):.2f} ms max={xs[-1]:.2f} ms")
PY
}

test_latency_file() {
    t_name "list file renamed into place -> first changed answer ($TRIALS trials)"
    latency file
}

test_latency_admin() {
    t_name "admin socket reload -> first changed answer ($TRIALS trials)"
    # a URL source is not watched: only the admin socket makes it reload
    local port2=$PORT
    kill -TERM "$SRV_PID"
    wait_exit "$SRV_PID" 5 || true
    sed -i 's|^source = lists/hk.xml$|source = file://'"$D"'/lists/hk-url.xml\nrefresh_s = 3600|' "$D/trustgate.ini"
    sed -i 's|^\[cache\]$|[upstream]\nallow_file_urls = yes\n\n[cache]|' "$D/trustgate.ini"
    cp "$D/lists/hk.xml" "$D/lists/hk-url.xml"
    start_server "$D" || { fail "server did not restart"; return; }
    PORT=$port2
    latency admin
}

test_restart_serves_persisted() {
    t_name "restart without the source: the persisted list is in force at once"
    kill -TERM "$SRV_PID"
    wait_exit "$SRV_PID" 5 || true
    mv "$D/lists/hk-url.xml" "$D/lists/hk-url.xml.away"
    start_server "$D" || { fail "server did not restart"; return; }
    assert_contains "hk=$SEQ" "$(curl -s -D - -o /dev/null "http://127.0.0.1:$PORT/healthz")" "sequence after restart"
    mv "$D/lists/hk-url.xml.away" "$D/lists/hk-url.xml"
}

# An http:// source: fetched at start, polled every refresh_s with a
# conditional request (python's http.server answers 304 to
# If-Modified-Since), and a new list on the server is taken up.
test_http_source() {
    t_name "http:// source: fetched, polled conditionally, new list taken up"
    local h=$WORK/http p2 hp pid2 now i seq
    mkdir -p "$h/www" "$h/cache"
    now=$(date +%s)
    seq=$((SEQ + 100))
    signed_list "$h/www/hk.xml" operator "$seq" "$GRANTED" $((now - 60))
    hp=$(free_port)
    (cd "$h/www" && exec python3 -m http.server --bind 127.0.0.1 "$hp") >"$h/http.log" 2>&1 &
    PIDS+=($!)
    p2=$(free_port)
    cp "$D"/{operator.pem,signer.pem,signer.key} "$h/"
    cat >"$h/trustgate.ini" <<INI
[server]
listen = 127.0.0.1:$p2
workers = 1
admin_socket = admin.sock
[cache]
path = cache
[signer hk]
cert = signer.pem
key = signer.key
[trustlist hk]
source = http://127.0.0.1:$hp/hk.xml
operator_cert = operator.pem
refresh_s = 1
signer = hk
INI
    (cd "$h" && exec "$TG" serve -c "$h/trustgate.ini") >"$h/stdout.log" 2>"$h/stderr.log" &
    pid2=$!
    PIDS+=("$pid2")
    for ((i = 0; i < 50; i++)); do
        curl -s -D - -o /dev/null "http://127.0.0.1:$p2/healthz" 2>/dev/null | grep -q "hk=$seq" && break
        sleep 0.1
    done
    assert_contains "hk=$seq" "$(curl -s -D - -o /dev/null "http://127.0.0.1:$p2/healthz")" "fetched at start"
    sleep 2.5
    local unchanged
    unchanged=$(curl -s "http://127.0.0.1:$p2/metrics" | awk '$1 == "trustgate_trustlist_loads_total{list=\"hk\",result=\"unchanged\"}" {print $2}')
    assert_ne 0 "${unchanged:-0}" "later polls answered 304 and counted unchanged"
    sleep 1.1 # Last-Modified has one-second resolution
    signed_list "$h/www/hk.xml.new" operator $((seq + 1)) "$SUSPENDED" "$now"
    mv "$h/www/hk.xml.new" "$h/www/hk.xml"
    for ((i = 0; i < 40; i++)); do
        curl -s -D - -o /dev/null "http://127.0.0.1:$p2/healthz" | grep -q "hk=$((seq + 1))" && break
        sleep 0.1
    done
    assert_contains "hk=$((seq + 1))" "$(curl -s -D - -o /dev/null "http://127.0.0.1:$p2/healthz")" "new list taken up by polling"
    kill -TERM "$pid2"
    wait_exit "$pid2" 5 || true
    assert_eq 0 "$EXIT_RC" "second server exit status"
}

setup
run_test test_answers
run_test test_http_source
run_test test_suspend_reinstate_terminate
run_test test_refusals
run_test test_published_lists
run_test test_xmlsec1_interop
run_test test_latency_file
run_test test_latency_admin
run_test test_restart_serves_persisted
t_end
# an admin client that connects and never sends must not hold up the exit
python3 - "$D/admin.sock" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(15)
PY
IDLE_ADMIN=$!
PIDS+=("$IDLE_ADMIN")
sleep 0.3
kill -TERM "$SRV_PID" 2>/dev/null || true
wait_exit "$SRV_PID" 5 || true
kill "$IDLE_ADMIN" 2>/dev/null || true
t_name "server exits 0 on SIGTERM (an idle admin client connected); no sanitizer report"
assert_eq 0 "$EXIT_RC" "exit status"
if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$D/stderr.log"; then
    fail "sanitizer report in the server log"
fi
t_summary
