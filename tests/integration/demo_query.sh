#!/usr/bin/env bash
# `trustgate demo` and `trustgate query` end to end (SPEC §4): the demo world
# (made with --port on a free run of five ports) is checked from the outside
# with the openssl CLI and xmlsec1 (chains, SM2 with the GM/T 0009 ID, CRLs,
# list signatures), with `trustgate check` and `tl show`; scripts/demo-run.sh
# runs it with the CAs' own `openssl ocsp -index` responders, each asked
# about its CA's certificates; then a real `trustgate serve` on the demo
# configuration is asked with `trustgate query`: SM2-signed certificateHold
# for the suspended Guangdong category, a tampered signature refused, and for
# the active issuers of both sides `good` and `revoked` from their CRLs
# (fetched from file: URLs).
#
#   TG_BUILD=build bash tests/integration/demo_query.sh
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

D=$WORK/demo
ID=1234567812345678
SUSPENDED=urn:gdhk-mr:svcstatus:suspended
GRANTED=http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted

# query ARGS...: `trustgate query` run inside the demo folder. Sets QOUT
# (stdout and stderr) and QRC (exit status).
query() {
    QRC=0
    QOUT=$(cd "$D" && "$TG" query "$@" 2>&1) || QRC=$?
}

# line NAME: the value of the "NAME: value" line of the last query.
line() { printf '%s\n' "$QOUT" | sed -n "s/^$1: //p" | head -n 1; }

# no_sanitizer_report WHAT: the last query's output carries no ASan/UBSan
# report (under build/asan the client runs instrumented too).
no_sanitizer_report() {
    if [[ $QOUT =~ (AddressSanitizer|LeakSanitizer|runtime\ error:) ]]; then
        fail "$1: sanitizer report:"
        printf '%s\n' "$QOUT" | head -20 | sed 's/^/        | /'
    fi
}

# ports_listening PORT...: those of the ports that a socket listens on,
# read from the kernel's tables (a connection closed without a request
# makes an `openssl ocsp` responder spin).
ports_listening() {
    local p
    for p in "$@"; do
        if awk -v p="$(printf ':%04X' "$p")" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 }
            END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            printf '%s ' "$p"
        fi
    done
}

# forget_pid PID: PID is gone; the cleanup at exit must not signal it.
forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# certs SIDE: the certs.txt lines of one side (side ca ee expected alg root).
certs() { grep -v '^#' "$D/certs.txt" | awk -v s="$1" '$1 == s'; }

# flip_sig IN OUT: OUT is IN with the last octet of the BasicOCSPResponse
# signature flipped (a DER walk; the certificate after it stays intact).
flip_sig() {
    python3 - "$1" "$2" <<'EOF'
import sys
def tlv(b, i):
    i += 1
    n = b[i]; i += 1
    if n & 0x80:
        k = n & 0x7f; n = int.from_bytes(b[i:i + k], "big"); i += k
    return i, n                     # content offset, length
b = bytearray(open(sys.argv[1], "rb").read())
i, _ = tlv(b, 0)                    # OCSPResponse
j, n = tlv(b, i); i = j + n         # responseStatus
i, _ = tlv(b, i)                    # [0] responseBytes
i, _ = tlv(b, i)                    # ResponseBytes
j, n = tlv(b, i); i = j + n         # responseType
i, _ = tlv(b, i)                    # OCTET STRING
i, _ = tlv(b, i)                    # BasicOCSPResponse
j, n = tlv(b, i); i = j + n         # tbsResponseData
j, n = tlv(b, i); i = j + n         # signatureAlgorithm
assert b[i] == 0x03, "no BIT STRING where the signature belongs"
j, n = tlv(b, i)
b[j + n - 1] ^= 0x01
open(sys.argv[2], "wb").write(b)
EOF
}

# ---------------------------------------------------------------------------
# the demo world, checked offline

test_demo_layout() {
    t_name "demo: fixed layout, keys mode 0600, certs.txt and trustgate.ini"
    local want got
    want=$(
        cat <<'EOF'
README.txt
certids.txt
certs.txt
gd/organisation-ca/ca.key
gd/organisation-ca/ca.pem
gd/organisation-ca/crl.der
gd/organisation-ca/crl.pem
gd/organisation-ca/ee-good.key
gd/organisation-ca/ee-good.pem
gd/organisation-ca/ee-revoked.key
gd/organisation-ca/ee-revoked.pem
gd/organisation-ca/index.txt
gd/organisation-ca/index.txt.attr
gd/organisation-ca/ocsp.key
gd/organisation-ca/ocsp.pem
gd/personal-ca/ca.key
gd/personal-ca/ca.pem
gd/personal-ca/crl.der
gd/personal-ca/crl.pem
gd/personal-ca/ee-good.key
gd/personal-ca/ee-good.pem
gd/personal-ca/ee-revoked.key
gd/personal-ca/ee-revoked.pem
gd/personal-ca/index.txt
gd/personal-ca/index.txt.attr
gd/personal-ca/ocsp.key
gd/personal-ca/ocsp.pem
gd/root.key
gd/root.pem
hk/ecc-ca/ca.key
hk/ecc-ca/ca.pem
hk/ecc-ca/crl.der
hk/ecc-ca/crl.pem
hk/ecc-ca/ee-good.key
hk/ecc-ca/ee-good.pem
hk/ecc-ca/ee-revoked.key
hk/ecc-ca/ee-revoked.pem
hk/ecc-ca/index.txt
hk/ecc-ca/index.txt.attr
hk/ecc-ca/ocsp.key
hk/ecc-ca/ocsp.pem
hk/root.key
hk/root.pem
hk/rsa-ca/ca.key
hk/rsa-ca/ca.pem
hk/rsa-ca/crl.der
hk/rsa-ca/crl.pem
hk/rsa-ca/ee-good.key
hk/rsa-ca/ee-good.pem
hk/rsa-ca/ee-revoked.key
hk/rsa-ca/ee-revoked.pem
hk/rsa-ca/index.txt
hk/rsa-ca/index.txt.attr
hk/rsa-ca/ocsp.key
hk/rsa-ca/ocsp.pem
lists/gd.unsigned.xml
lists/gd.xml
lists/hk.unsigned.xml
lists/hk.xml
operators/gd-operator.key
operators/gd-operator.pem
operators/hk-operator.key
operators/hk-operator.pem
signers/gd-responder.key
signers/gd-responder.pem
signers/hk-responder.key
signers/hk-responder.pem
trustgate.ini
upstreams.txt
EOF
    )
    got=$(cd "$D" && find . -type f ! -path './cache/*' ! -name '*.log' | sed 's|^\./||' | LC_ALL=C sort)
    assert_eq "$want" "$got" "files of the demo world" || true
    [[ -d $D/cache ]] || fail "no cache folder"
    local k bad=""
    while read -r k; do
        [[ $(stat -c %a "$k") == 600 ]] || bad+=" $k"
    done < <(find "$D" -name '*.key')
    assert_eq "" "$bad" "key files not mode 0600" || true
    assert_eq 8 "$(grep -vc '^#' "$D/certs.txt")" "certs.txt lines" || true
    assert_eq 2 "$(grep -v '^#' "$D/certs.txt" | grep -c ' suspended-ca ')" "suspended-ca lines" || true
    # certids.txt: two CertIDs per certificate; the SHA-1 ones as openssl makes them
    assert_eq 16 "$(grep -vc '^#' "$D/certids.txt")" "certids.txt lines" || true
    local side ca ee exp alg root want_id got_id
    while read -r side ca ee exp alg root; do
        # (serials compared without leading zeros: asn1parse drops them; the
        # hashes keep theirs)
        want_id=$(openssl ocsp -issuer "$D/$ca" -cert "$D/$ee" -no_nonce -reqout /dev/stdout \
            2>/dev/null | openssl asn1parse -inform DER 2>/dev/null |
            awk -F: '/OCTET STRING|INTEGER/ {v = tolower($NF); if (/INTEGER/) sub(/^0+/, "", v)
                printf "%s ", v}')
        [[ $exp == suspended-ca ]] && exp=revoked
        got_id=$(awk -v l="${ee%.pem}/sha1" '$6 == l {v = $4; sub(/^0+/, "", v);
            printf "%s %s %s %s", $2, $3, v, $5}' "$D/certids.txt")
        assert_eq "${want_id}$exp" "$got_id" "certids.txt line of $ee" || true
    done < <(grep -v '^#' "$D/certs.txt")
    local ini
    ini=$(cat "$D/trustgate.ini")
    local want_line
    for want_line in "listen = 127.0.0.1:$PORT" "admin_socket = admin.sock" "path = cache" \
        "allow_file_urls = yes" "[signer gd]" "[signer hk]" "source = lists/gd.xml" \
        "source = lists/hk.xml" "operator_cert = operators/gd-operator.pem" "mode = sign" \
        "mode = relay"; do
        assert_contains "$want_line" "$ini" "trustgate.ini" || true
    done
    assert_contains "openssl ocsp -index hk/rsa-ca/index.txt" "$(cat "$D/README.txt")" "README" || true
}

test_demo_refuses_nonempty() {
    t_name "demo: refuses a non-empty folder without --force; usage errors exit 2"
    local d2=$WORK/demo2 rc=0 out
    mkdir -p "$d2"
    echo keep >"$d2/mine.txt"
    out=$("$TG" demo "$d2" 2>&1) || rc=$?
    assert_ne 0 "$rc" "demo into a non-empty folder" || true
    assert_contains "not empty" "$out" "refusal message" || true
    [[ ! -e $d2/trustgate.ini ]] || fail "wrote into a non-empty folder"
    rc=0
    "$TG" demo --force "$d2" >/dev/null 2>&1 || rc=$?
    assert_eq 0 "$rc" "demo --force" || true
    [[ -f $d2/lists/gd.xml && -f $d2/mine.txt ]] || fail "--force: world missing or other files removed"
    rc=0
    "$TG" demo >/dev/null 2>&1 || rc=$?
    assert_eq 2 "$rc" "demo without DIR" || true
}

test_chains_rsa_ecdsa() {
    t_name "hk chains verify with openssl verify (RSA-2048 root, RSA and P-256 issuing CAs)"
    local side ca ee root out
    while read -r side ca ee _ _ root; do
        out=$(cd "$D" && openssl verify -CAfile "$root" -untrusted "$ca" "$ee" 2>&1) || true
        assert_eq "$ee: OK" "$out" "openssl verify $ee" || true
    done < <(certs hk)
    out=$(cd "$D" && openssl verify -CAfile hk/root.pem signers/hk-responder.pem 2>&1) || true
    assert_eq "signers/hk-responder.pem: OK" "$out" "hk responder signer" || true
    out=$(openssl x509 -in "$D/hk/ecc-ca/ee-good.pem" -noout -text)
    assert_contains "ecdsa-with-SHA256" "$out" "ECDSA EE signature algorithm" || true
    assert_contains "NIST CURVE: P-256" "$out" "ECDSA EE key" || true
    out=$(openssl x509 -in "$D/hk/rsa-ca/ca.pem" -noout -text)
    assert_contains "Public-Key: (2048 bit)" "$out" "RSA issuing CA key" || true
}

test_chains_sm2() {
    t_name "gd SM2 certificates verify with -vfyopt distid:$ID, and not without the ID"
    local side ca ee root out
    while read -r side ca ee _ _ root; do
        out=$(cd "$D" && openssl verify -vfyopt "distid:$ID" -partial_chain -CAfile "$ca" "$ee" 2>&1) || true
        assert_eq "$ee: OK" "$out" "EE by issuing CA: $ee" || true
        out=$(cd "$D" && openssl verify -partial_chain -CAfile "$ca" "$ee" 2>&1) || true
        assert_ne "$ee: OK" "$out" "$ee verifies with OpenSSL's empty ID" || true
        out=$(cd "$D" && openssl verify -vfyopt "distid:$ID" -partial_chain -CAfile "$root" "$ca" 2>&1) || true
        assert_eq "$ca: OK" "$out" "issuing CA by root: $ca" || true
    done < <(certs gd)
    out=$(cd "$D" && openssl verify -vfyopt "distid:$ID" -partial_chain -CAfile gd/root.pem \
        signers/gd-responder.pem 2>&1) || true
    assert_eq "signers/gd-responder.pem: OK" "$out" "gd responder signer by root" || true
    out=$(openssl x509 -in "$D/gd/root.pem" -noout -text)
    assert_contains "Signature Algorithm: SM2-with-SM3" "$out" "root signature algorithm" || true
    assert_contains "ASN1 OID: SM2" "$out" "root key" || true
}

test_crls() {
    t_name "CRLs: RSA/ECDSA verify with openssl crl -verify; every CRL lists its revoked serial"
    local side ca ee dir serial out
    for side in hk gd; do
        while read -r side ca ee _ _ _; do
            [[ $ee == */ee-revoked.pem ]] || continue
            dir=$(dirname "$ca")
            serial=$(openssl x509 -in "$D/$ee" -noout -serial | cut -d= -f2)
            out=$(openssl crl -in "$D/$dir/crl.pem" -noout -text 2>&1) || true
            assert_contains "Serial Number: $serial" "$out" "$dir/crl.pem lists $ee" || true
            assert_contains "Key Compromise" "$out" "$dir/crl.pem reason" || true
            assert_match "Next Update: " "$out" "$dir/crl.pem nextUpdate" || true
            if [[ $side == hk ]]; then
                out=$(openssl crl -in "$D/$dir/crl.pem" -noout -verify -CAfile "$D/$ca" 2>&1) || true
                assert_eq "verify OK" "$out" "openssl crl -verify $dir" || true
            else
                assert_contains "Signature Algorithm: SM2-with-SM3" "$out" "$dir CRL algorithm" || true
            fi
            cmp -s "$D/$dir/crl.der" <(openssl crl -in "$D/$dir/crl.pem" -outform DER) ||
                fail "$dir: crl.der and crl.pem differ"
            assert_match "^R	[0-9]{12}Z	[0-9]{12}Z,keyCompromise	$serial	unknown	/" \
                "$(grep '^R' "$D/$dir/index.txt")" "$dir/index.txt revoked line" || true
        done < <(certs "$side")
    done
}

test_ee_contents() {
    t_name "end-entity certificates: policy OIDs, AIA OCSP, CRL DP named by the CA's SHA-256"
    local side ca ee fp out
    while read -r side ca ee _ _ _; do
        fp=$(openssl x509 -in "$D/$ca" -outform DER | sha256sum | cut -d' ' -f1)
        out=$(openssl x509 -in "$D/$ee" -noout -ext certificatePolicies,authorityInfoAccess,crlDistributionPoints 2>&1)
        assert_contains "OCSP - URI:http://127.0.0.1:$PORT/ocsp" "$out" "$ee AIA" || true
        assert_contains "URI:http://127.0.0.1:$PORT/crl/$side/$fp.crl" "$out" "$ee CRL DP" || true
        if [[ $side == hk ]]; then
            assert_match "Policy: 2\.16\.344\.8\.2\.2008\.810\.2\.2024\.[0-9]+\.[0-9]+" "$out" "$ee policy" || true
        else
            assert_match "Policy: 1\.2\.156\.99999\.810\.[12]\." "$out" "$ee policy" || true
        fi
        [[ $(openssl x509 -in "$D/$ee" -noout -serial | cut -d= -f2 | tr -d '\n' | wc -c) -eq 32 ]] ||
            fail "$ee: serial is not 16 octets"
    done < <(grep -v '^#' "$D/certs.txt")
}

test_lists_xmlsec() {
    if ! command -v xmlsec1 >/dev/null; then
        t_skip "both lists verify with xmlsec1" "xmlsec1 not installed"
        return 0
    fi
    t_name "both lists verify with xmlsec1 against the pinned operator certificate; a change breaks it"
    local s rc
    for s in gd hk; do
        rc=0
        xmlsec1 --verify --pubkey-cert-pem "$D/operators/$s-operator.pem" \
            --enabled-reference-uris empty,same-doc "$D/lists/$s.xml" >/dev/null 2>&1 || rc=$?
        assert_eq 0 "$rc" "xmlsec1 --verify lists/$s.xml" || true
    done
    sed "s|$SUSPENDED|$GRANTED|" "$D/lists/gd.xml" >"$WORK/gd-tampered.xml"
    rc=0
    xmlsec1 --verify --pubkey-cert-pem "$D/operators/gd-operator.pem" \
        --enabled-reference-uris empty,same-doc "$WORK/gd-tampered.xml" >/dev/null 2>&1 || rc=$?
    assert_ne 0 "$rc" "xmlsec1 accepted a list whose suspension was edited out" || true
    rc=0
    xmlsec1 --verify --pubkey-cert-pem "$D/operators/hk-operator.pem" \
        --enabled-reference-uris empty,same-doc "$D/lists/gd.xml" >/dev/null 2>&1 || rc=$?
    assert_ne 0 "$rc" "xmlsec1 accepted gd.xml with the hk operator" || true
}

test_check() {
    t_name "trustgate check -c DIR/trustgate.ini exits 0 and verifies both lists"
    local out rc=0
    out=$(cd "$WORK" && "$TG" check -c "$D/trustgate.ini" 2>&1) || rc=$?
    assert_eq 0 "$rc" "exit status" || true
    assert_contains "trust list gd: CN sequence 1, 2 categories, verified" "$out" "gd list" || true
    assert_contains "trust list hk: HK sequence 1, 2 categories, verified" "$out" "hk list" || true
    assert_contains "signer gd: sm2" "$out" "gd signer" || true
    assert_contains "signer hk: ecdsa-p256" "$out" "hk signer" || true
}

test_tl_show() {
    t_name "tl show: one GD category suspended (granted before), HK all active, lists point at each other"
    local out
    out=$(cd "$D" && "$TG" tl show lists/gd.xml --operator-cert operators/gd-operator.pem 2>&1) || true
    assert_contains "signature:   verified by" "$out" "gd verified" || true
    assert_eq 1 "$(grep -c '^    status: suspended since' <<<"$out")" "gd suspended categories" || true
    assert_eq 1 "$(grep -c '^    status: active since' <<<"$out")" "gd active categories" || true
    assert_contains "history:" "$out" "gd ServiceHistory" || true
    assert_contains "http://127.0.0.1:$PORT/trustlist/hk.xml  territory HK" "$out" "gd points at hk" || true
    assert_contains "policy: 1.2.156.99999.810.2 (prefix match)" "$out" "gd policy" || true
    assert_contains "supply point: crl file://$D/gd/personal-ca/crl.der" "$out" "gd CRL supply point" || true
    out=$(cd "$D" && "$TG" tl show lists/hk.xml --operator-cert operators/hk-operator.pem 2>&1) || true
    assert_eq 2 "$(grep -c '^    status: active since' <<<"$out")" "hk active categories" || true
    assert_contains "policy: 2.16.344.8.2.2008.810.2 (prefix match)" "$out" "hk policy" || true
    assert_contains "http://127.0.0.1:$PORT/trustlist/gd.xml  territory CN" "$out" "hk points at gd" || true
    assert_contains "supply point: ocsp http://127.0.0.1:$((PORT + 1))/" "$out" "hk OCSP supply point" || true
}

test_resign_template() {
    t_name "unsigned templates: reinstate the suspended category, re-sign with tl sign, tl show agrees"
    local out rc=0
    sed -e "s|<tsl:ServiceStatus>$SUSPENDED</tsl:ServiceStatus>|<tsl:ServiceStatus>$GRANTED</tsl:ServiceStatus>|" \
        -e 's|<tsl:TSLSequenceNumber>1<|<tsl:TSLSequenceNumber>2<|' \
        "$D/lists/gd.unsigned.xml" >"$WORK/gd2.unsigned.xml"
    (cd "$D" && "$TG" tl sign --key operators/gd-operator.key --cert operators/gd-operator.pem \
        "$WORK/gd2.unsigned.xml" "$WORK/gd2.xml") >/dev/null 2>&1 || rc=$?
    assert_eq 0 "$rc" "tl sign" || return 0
    out=$("$TG" tl show "$WORK/gd2.xml" --operator-cert "$D/operators/gd-operator.pem" 2>&1) || true
    assert_contains "sequence:    2" "$out" "sequence" || true
    assert_eq 0 "$(grep -c '^    status: suspended' <<<"$out")" "suspended categories" || true
    assert_eq 2 "$(grep -c '^    status: active since' <<<"$out")" "active categories" || true
}

# The upstream responders in port order: "PORT SIDE SLUG" per line.
upstreams_want() {
    printf '%s\n' "$((PORT + 1)) hk rsa-ca" "$((PORT + 2)) hk ecc-ca" \
        "$((PORT + 3)) gd personal-ca" "$((PORT + 4)) gd organisation-ca"
}

# list_urls FILE: "ELEMENT PORT" for every http://127.0.0.1 URL in a trust
# list (ELEMENT: the URL's element, or its parent's for tsl:URI).
list_urls() {
    python3 - "$1" <<'EOF'
import re, sys, xml.etree.ElementTree as ET
parents = {}
root = ET.parse(sys.argv[1]).getroot()
for p in root.iter():
    for c in p:
        parents[c] = p
name = lambda e: e.tag.split("}")[-1]
for e in root.iter():
    m = re.match(r"http://127\.0\.0\.1:(\d+)/", (e.text or "").strip())
    if m:
        el = name(parents[e]) if name(e) == "URI" else name(e)
        print(el, m.group(1))
EOF
}

test_demo_port() {
    t_name "demo --port N: trustgate and every URL naming it on N, the CAs' OCSP supply points on N+1..N+4, upstreams.txt"
    local k port side slug fp got out f
    # upstreams.txt: PORT<TAB>command, in the documented order, -port = PORT
    got=$(sed -n 's|^\([0-9]*\)\topenssl ocsp -index \([a-z]*\)/\([a-z-]*\)/index\.txt .* -port \([0-9]*\) -nmin 60$|\1 \2 \3 \4|p' \
        "$D/upstreams.txt" | awk '$1 == $4 { print $1, $2, $3 }')
    assert_eq "$(upstreams_want)" "$got" "upstreams.txt: port, side, CA" || true
    assert_eq 4 "$(wc -l <"$D/upstreams.txt")" "upstreams.txt lines" || true
    assert_eq 2 "$(grep -c -- "-rmd sm3 -rsigopt distid:$ID -port" "$D/upstreams.txt")" "SM2 responders sign with SM3 and the ID" || true
    # the lists: each CA's OCSP supply point is its upstream responder
    while read -r port side slug; do
        fp=$(openssl x509 -in "$D/$side/$slug/ca.pem" -outform DER | sha256sum | cut -d' ' -f1)
        got=$("$TG" tl show "$D/lists/$side.xml" --operator-cert "$D/operators/$side-operator.pem" 2>&1 |
            awk -v fp="$fp" '$1 == "sha256" { cur = $2 } /supply point: ocsp/ && cur == fp { print $4 }')
        assert_eq "http://127.0.0.1:$port/" "$got" "$side list: $slug OCSP supply point" || true
    done < <(upstreams_want)
    # every other URL in the lists names trustgate on N
    for f in gd.xml hk.xml gd.unsigned.xml hk.unsigned.xml; do
        out=$(list_urls "$D/lists/$f")
        got=$(awk '$1 == "ServiceSupplyPoint" { print $2 }' <<<"$out" | LC_ALL=C sort | tr '\n' ' ')
        case $f in
        gd*) assert_eq "$((PORT + 3)) $((PORT + 4)) " "$got" "lists/$f: supply point ports" || true ;;
        hk*) assert_eq "$((PORT + 1)) $((PORT + 2)) " "$got" "lists/$f: supply point ports" || true ;;
        esac
        got=$(awk '$1 != "ServiceSupplyPoint" { print $1 }' <<<"$out" | LC_ALL=C sort -u | tr '\n' ' ')
        assert_eq "DistributionPoints ElectronicAddress SchemeInformationURI TSLLocation TSPInformationURI " \
            "$got" "lists/$f: elements naming trustgate" || true
        got=$(awk '$1 != "ServiceSupplyPoint" { print $2 }' <<<"$out" | LC_ALL=C sort -u | tr '\n' ' ')
        assert_eq "$PORT " "$got" "lists/$f: trustgate's port" || true
    done
    # certificates (AIA, CRL DP), trustgate.ini and README.txt
    got=$(cd "$D" && for f in */*/ee-*.pem; do
        openssl x509 -in "$f" -noout -ext authorityInfoAccess,crlDistributionPoints
    done | grep -oE '127\.0\.0\.1:[0-9]+' | LC_ALL=C sort | uniq -c | awk '{ print $1, $2 }')
    assert_eq "16 127.0.0.1:$PORT" "$got" "AIA and CRL DP of the 8 end-entity certificates" || true
    assert_eq "listen = 127.0.0.1:$PORT" "$(grep '^listen' "$D/trustgate.ini")" "trustgate.ini listen" || true
    out=$(cat "$D/README.txt")
    assert_contains "listens on 127.0.0.1:$PORT" "$out" "README: listen address" || true
    assert_contains "trustgate query --url http://127.0.0.1:$PORT/ocsp" "$out" "README: query URL" || true
    for k in 1 2 3 4; do
        assert_contains "-port $((PORT + k)) -nmin 60" "$out" "README: upstream responder $k" || true
        assert_contains "upstream: OCSP http://127.0.0.1:$((PORT + k))/" "$out" "README: category $k" || true
    done
    got=$(grep -oE '127\.0\.0\.1:[0-9]+' "$D/README.txt" | cut -d: -f2 | LC_ALL=C sort -u | tr '\n' ' ')
    assert_eq "$PORT $((PORT + 1)) $((PORT + 2)) $((PORT + 3)) $((PORT + 4)) " "$got" "README: ports" || true
    # nothing left on the default ports (':' is not in base64, so PEM
    # and certificate text cannot match by chance)
    got=$(cd "$D" && { grep -lE ':808[0-4]([^0-9]|$)' README.txt trustgate.ini upstreams.txt lists/*.xml || true; })
    assert_eq "" "$got" "files still naming 8080..8084" || true
}

test_demo_port_usage() {
    t_name "demo: a bad --port is a usage error (exit 2, nothing made); usage shows --port"
    local bad rc out d3=$WORK/demo-badport
    for bad in 80 1023 65532 70000 123456 abc 8080x -1 "" " 8080"; do
        rc=0
        out=$("$TG" demo --port "$bad" "$d3" 2>&1) || rc=$?
        assert_eq 2 "$rc" "--port '$bad': exit status ($out)" || true
        assert_contains "1024 to 65531" "$out" "--port '$bad': message" || true
    done
    rc=0
    out=$("$TG" demo "$d3" --port 2>&1) || rc=$?
    assert_eq 2 "$rc" "--port without a value ($out)" || true
    assert_contains "--port needs a value" "$out" "--port without a value: message" || true
    [[ ! -e $d3 ]] || fail "a usage error still made $d3"
    out=$("$TG" demo --help 2>&1) || true
    assert_contains "usage: trustgate demo [--force] [--port N] DIR" "$out" "demo --help" || true
    assert_contains "N+1 to N+4" "$out" "demo --help: upstream ports" || true
}

# upstream_query PORT SIDE SLUG: the CA's own responder on PORT, asked with
# openssl ocsp (the response verified against the CA for RSA/ECDSA; SM2:
# statuses only, openssl passes no SM2 ID) and with trustgate query (every
# algorithm; the delegated responder of the CA, the nonce).
upstream_query() {
    local port=$1 side=$2 slug=$3 out verify=(-CAfile "$2/$3/ca.pem" -partial_chain)
    [[ $side == gd ]] && verify=(-noverify)
    out=$(cd "$D" && timeout 10 openssl ocsp -url "http://127.0.0.1:$port/" -issuer "$side/$slug/ca.pem" \
        -cert "$side/$slug/ee-good.pem" -cert "$side/$slug/ee-revoked.pem" "${verify[@]}" 2>&1) || true
    [[ $side == gd ]] || assert_contains "Response verify OK" "$out" "$slug ($port): openssl verification" || true
    assert_contains "$side/$slug/ee-good.pem: good" "$out" "$slug ($port): openssl good" || true
    assert_contains "$side/$slug/ee-revoked.pem: revoked" "$out" "$slug ($port): openssl revoked" || true
    assert_contains "Reason: keyCompromise" "$out" "$slug ($port): openssl reason" || true
    query --url "http://127.0.0.1:$port/" --issuer "$side/$slug/ca.pem" --cert "$side/$slug/ee-good.pem" --timeout-ms 5000
    assert_eq 0 "$QRC" "$slug good: exit status ($QOUT)" || true
    assert_eq good "$(line certStatus)" "$slug good: certStatus" || true
    assert_match "^delegated responder of the CA " "$(line signer)" "$slug good: signer" || true
    query --url "http://127.0.0.1:$port/" --issuer "$side/$slug/ca.pem" --cert "$side/$slug/ee-revoked.pem" \
        --nonce --timeout-ms 5000
    assert_eq 1 "$QRC" "$slug revoked: exit status ($QOUT)" || true
    assert_eq "keyCompromise (1)" "$(line reason)" "$slug revoked: reason" || true
    assert_eq echoed "$(line nonce)" "$slug revoked: nonce" || true
    if [[ $side == gd ]]; then
        assert_eq "OK (sm2-with-sm3)" "$(line signature)" "$slug: SM2 upstream signature" || true
    fi
    no_sanitizer_report "$slug"
}

test_demo_run() {
    t_name "scripts/demo-run.sh: the four upstream responders answer for their CAs, trustgate /healthz; SIGTERM stops all of it"
    local log=$WORK/demo-run.log run_pid i pid port side slug kids=() comms left
    bash "$ROOT/scripts/demo-run.sh" "$D" "$TG" >"$log" 2>&1 &
    run_pid=$!
    PIDS+=("$run_pid")
    # trustgate starts once every upstream accepts connections
    for i in 1 2 3; do
        wait_healthy "$PORT" "$run_pid" && break
    done
    if ! kill -0 "$run_pid" 2>/dev/null ||
        [[ $(curl -s --max-time 2 "http://127.0.0.1:$PORT/healthz") != ok* ]]; then
        fail "demo-run.sh did not bring trustgate up; its log:"
        tail -n 20 "$log" | sed 's/^/        | /'
        kill -TERM "$run_pid" 2>/dev/null || true
        return 0
    fi
    # its children: the four responders and trustgate
    mapfile -t kids < <(pgrep -P "$run_pid")
    PIDS+=("${kids[@]}")
    comms=$(for pid in "${kids[@]}"; do cat "/proc/$pid/comm" 2>/dev/null; done | LC_ALL=C sort | uniq -c |
        awk '{ print $1, $2 }' | tr '\n' ' ')
    assert_eq "4 openssl 1 trustgate " "$comms" "demo-run.sh's processes" || true
    assert_eq "$PORT $((PORT + 1)) $((PORT + 2)) $((PORT + 3)) $((PORT + 4)) " \
        "$(ports_listening "$PORT" $((PORT + 1)) $((PORT + 2)) $((PORT + 3)) $((PORT + 4)))" "ports listening" || true
    assert_file_match "upstream OCSP responders on 127\.0\.0\.1 ports $((PORT + 1)) $((PORT + 2)) $((PORT + 3)) $((PORT + 4)) \(PIDs" \
        "$log" "demo-run.sh names the responders" || true
    while read -r port side slug; do
        upstream_query "$port" "$side" "$slug"
    done < <(upstreams_want)
    for ((i = 1; i <= 4; i++)); do
        [[ -s $D/upstream-$((PORT + i)).log ]] || fail "no $D/upstream-$((PORT + i)).log"
    done

    kill -TERM "$run_pid" 2>/dev/null || true
    wait_exit "$run_pid" 15 || true
    assert_eq 0 "$EXIT_RC" "demo-run.sh exit status after SIGTERM (trustgate's)" || true
    assert_file_match "SIGTERM: draining" "$log" "trustgate got the SIGTERM" || true
    left=""
    for pid in "${kids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            left+=" $pid($(cat "/proc/$pid/comm" 2>/dev/null))"
        else
            forget_pid "$pid"
        fi
    done
    assert_eq "" "$left" "processes of the run still alive" || true
    [[ $EXIT_RC == running ]] || forget_pid "$run_pid"
    assert_eq "" "$(ports_listening "$PORT" $((PORT + 1)) $((PORT + 2)) $((PORT + 3)) $((PORT + 4)))" \
        "ports still listening" || true
    if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$log"; then
        fail "sanitizer report in the demo-run.sh log"
    fi
}

# ---------------------------------------------------------------------------
# trustgate serve on the demo configuration, asked with trustgate query

test_query_suspended_sm2() {
    t_name "query: suspended GD category -> SM2-signed revoked/certificateHold at the suspension time"
    local since
    query --url "$URL" --issuer gd/organisation-ca/ca.pem --cert gd/organisation-ca/ee-good.pem \
        --signer signers/gd-responder.pem --sm3 --nonce
    assert_eq 1 "$QRC" "exit status ($QOUT)" || true
    assert_eq revoked "$(line certStatus)" "certStatus" || true
    assert_eq "certificateHold (6)" "$(line reason)" "reason" || true
    assert_eq "OK (sm2-with-sm3)" "$(line signature)" "signature" || true
    assert_match "^trusted responder \(--signer\) CN=GD Demo trustgate OCSP Responder \(SM2\)" \
        "$(line signer)" "signer" || true
    assert_eq echoed "$(line nonce)" "nonce" || true
    since=$(cd "$D" && "$TG" tl show lists/gd.xml --operator-cert operators/gd-operator.pem |
        sed -n 's/^    status: suspended since \([^ ]*\).*/\1/p')
    assert_eq "$since" "$(line revocationTime)" "revocationTime = suspension start" || true
    # the revoked certificate of the same category gets the same answer
    query --url "$URL" --issuer gd/organisation-ca/ca.pem --cert gd/organisation-ca/ee-revoked.pem \
        --signer signers/gd-responder.pem --get --json
    assert_eq 1 "$QRC" "GET --json exit status ($QOUT)" || true
    assert_contains '"reason":"certificateHold"' "$QOUT" "GET --json reason" || true
    no_sanitizer_report "query"
}

test_query_tampered() {
    t_name "query --respin: the saved response verifies; one flipped signature bit is refused"
    local args=(--issuer gd/organisation-ca/ca.pem --cert gd/organisation-ca/ee-good.pem
        --signer signers/gd-responder.pem)
    query --url "$URL" "${args[@]}" --out "$WORK/resp.der"
    assert_eq 1 "$QRC" "fetch exit status ($QOUT)" || return 0
    query --respin "$WORK/resp.der" "${args[@]}"
    assert_eq 1 "$QRC" "saved response: exit status ($QOUT)" || true
    assert_eq "OK (sm2-with-sm3)" "$(line signature)" "saved response: signature" || true
    flip_sig "$WORK/resp.der" "$WORK/resp-bad.der" || { fail "cannot find the signature"; return 0; }
    assert_eq 1 "$(cmp -l "$WORK/resp.der" "$WORK/resp-bad.der" | wc -l)" "bytes changed" || true
    query --respin "$WORK/resp-bad.der" "${args[@]}"
    assert_eq 4 "$QRC" "tampered: exit status ($QOUT)" || true
    assert_eq "FAILED (bad_signature)" "$(line verification)" "tampered: verification" || true
    # the right bytes but the wrong trust: no --signer, and trustgate is
    # not a delegated responder of the CA
    query --respin "$WORK/resp.der" --issuer gd/organisation-ca/ca.pem --cert gd/organisation-ca/ee-good.pem
    assert_eq 4 "$QRC" "no --signer: exit status ($QOUT)" || true
    assert_eq "FAILED (unauthorized_signer)" "$(line verification)" "no --signer: verification" || true
    no_sanitizer_report "query"
}

# wait_crls: until the server holds a fresh CRL for each of the three
# active demo CAs (GET /crl/ JSON), 10 s.
wait_crls() {
    local i n
    for ((i = 0; i < 100; i++)); do
        n=$(curl -s "http://127.0.0.1:$PORT/crl/" | grep -o '"fresh":true' | wc -l) || n=0
        ((n >= 3)) && return 0
        sleep 0.1
    done
    fail "the server holds $n fresh CRLs after 10 s, want 3"
}

test_query_active_crl() {
    t_name "query: active issuers -> signed good / revoked from their CRLs (ECDSA for hk, SM2 for gd), every hash, POST and GET"
    wait_crls
    query --url "$URL" --issuer hk/rsa-ca/ca.pem --cert hk/rsa-ca/ee-good.pem \
        --signer signers/hk-responder.pem --nonce
    assert_eq 0 "$QRC" "hk rsa good, nonce: exit status ($QOUT)" || true
    assert_eq good "$(line certStatus)" "hk rsa: certStatus" || true
    assert_eq "OK (ecdsa-with-sha256)" "$(line signature)" "hk rsa: signature" || true
    query --url "$URL" --issuer hk/rsa-ca/ca.pem --cert hk/rsa-ca/ee-revoked.pem \
        --signer signers/hk-responder.pem
    assert_eq 1 "$QRC" "hk rsa revoked: exit status ($QOUT)" || true
    assert_eq "keyCompromise (1)" "$(line reason)" "hk rsa revoked: reason" || true
    query --url "$URL" --issuer hk/ecc-ca/ca.pem --cert hk/ecc-ca/ee-good.pem \
        --signer signers/hk-responder.pem --sha256 --get --json
    assert_eq 0 "$QRC" "hk ecc GET sha256: exit status ($QOUT)" || true
    assert_contains '"cert_status":"good"' "$QOUT" "hk ecc: cert_status" || true
    assert_contains '"signature_algorithm":"ecdsa-with-sha256"' "$QOUT" "hk ecc: algorithm" || true
    local h
    for h in --sha1 --sha256 --sm3; do
        query --url "$URL" --issuer gd/personal-ca/ca.pem --cert gd/personal-ca/ee-good.pem \
            --signer signers/gd-responder.pem "$h"
        assert_eq 0 "$QRC" "gd personal good $h: exit status ($QOUT)" || true
        assert_eq "OK (sm2-with-sm3)" "$(line signature)" "gd personal $h: signature" || true
        query --url "$URL" --issuer gd/personal-ca/ca.pem --cert gd/personal-ca/ee-revoked.pem \
            --signer signers/gd-responder.pem "$h" --get
        assert_eq 1 "$QRC" "gd personal revoked $h: exit status ($QOUT)" || true
        assert_eq "keyCompromise (1)" "$(line reason)" "gd personal revoked $h: reason" || true
    done
    no_sanitizer_report "query"
}

test_query_errors() {
    t_name "query: unauthorized issuer exits 2, closed port 5, not OCSP 5, usage 64"
    query --url "$URL" --issuer hk/root.pem --cert hk/rsa-ca/ca.pem
    assert_eq 2 "$QRC" "issuer on no list ($QOUT)" || true
    assert_eq "unauthorized (6)" "$(line responseStatus)" "responseStatus" || true
    query --url "http://127.0.0.1:$(free_port)/ocsp" --issuer hk/rsa-ca/ca.pem --cert hk/rsa-ca/ee-good.pem
    assert_eq 5 "$QRC" "closed port ($QOUT)" || true
    query --url "http://127.0.0.1:$PORT/healthz" --issuer hk/rsa-ca/ca.pem --cert hk/rsa-ca/ee-good.pem --get
    assert_eq 5 "$QRC" "not an OCSP endpoint ($QOUT)" || true
    query --issuer hk/rsa-ca/ca.pem
    assert_eq 64 "$QRC" "usage" || true
    no_sanitizer_report "query"
}

test_openssl_vafile() {
    t_name "openssl ocsp -VAfile accepts trustgate's ECDSA answers for the demo HK CAs: good and revoked with time and reason"
    local out ca
    for ca in ecc-ca rsa-ca; do
        out=$(cd "$D" && openssl ocsp -url "$URL" -issuer hk/$ca/ca.pem -cert hk/$ca/ee-good.pem \
            -cert hk/$ca/ee-revoked.pem -VAfile signers/hk-responder.pem 2>&1) || true
        assert_contains "Response verify OK" "$out" "$ca: openssl verification" || true
        assert_contains "ee-good.pem: good" "$out" "$ca: good" || true
        assert_contains "ee-revoked.pem: revoked" "$out" "$ca: revoked" || true
        assert_contains "Reason: keyCompromise" "$out" "$ca: reason" || true
        assert_match "Revocation Time: [A-Z][a-z]{2} +[0-9]+ [0-9:]{8} [0-9]{4} GMT" "$out" "$ca: revocation time" || true
    done
}

# hk_list SEQ STATUS_URI: the HK RSA category set to STATUS_URI.
hk_list() { side_list hk "$1" "HK Personal e-Cert (RSA)" "$2"; }

# wait_query EXIT ARGS...: repeats the query until it exits with EXIT (5 s).
wait_query() {
    local want=$1 i
    shift
    for ((i = 0; i < 50; i++)); do
        query "$@"
        [[ $QRC == "$want" ]] && return 0
        sleep 0.1
    done
    assert_eq "$want" "$QRC" "query exit status; output: $QOUT"
}

test_hk_lifecycle() {
    local args=(--url "$URL" --issuer hk/rsa-ca/ca.pem --cert hk/rsa-ca/ee-good.pem
        --signer signers/hk-responder.pem --sha256)
    local base=http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus
    t_name "demo HK list: suspend the RSA CA -> signed revoked, certificateHold"
    hk_list 2 urn:gdhk-mr:svcstatus:suspended
    wait_query 1 "${args[@]}"
    assert_eq "certificateHold (6)" "$(line reason)" "reason"
    local out
    out=$(cd "$D" && openssl ocsp -url "$URL" -issuer hk/rsa-ca/ca.pem -cert hk/rsa-ca/ee-good.pem \
        -VAfile signers/hk-responder.pem -resp_text 2>&1) || true
    assert_contains "Response verify OK" "$out" "openssl -VAfile verifies the ECDSA-signed rejection"
    assert_contains "Revocation Reason: certificateHold (0x6)" "$out" "openssl sees certificateHold"
    t_name "demo HK list: reinstate it -> signed good again (from its CRL)"
    hk_list 3 "$base/granted"
    wait_query 0 "${args[@]}"
    t_name "demo HK list: terminate it -> signed revoked, privilegeWithdrawn"
    hk_list 4 "$base/withdrawn"
    wait_query 1 "${args[@]}"
    assert_eq "privilegeWithdrawn (9)" "$(line reason)" "reason"
    t_name "demo HK list: the ECDSA CA, untouched, still answers signed good"
    query --url "$URL" --issuer hk/ecc-ca/ca.pem --cert hk/ecc-ca/ee-good.pem \
        --signer signers/hk-responder.pem
    assert_eq 0 "$QRC" "ECDSA CA status; output: $QOUT"
}

test_gd_reinstated() {
    t_name "demo GD list: the organisation category reinstated -> good / revoked from its CRL (trustgate query verifies SM2; openssl ocsp reads the status)"
    local base=http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus ca out
    side_list gd 2 "GD Organisation Signing CA" "$base/granted"
    wait_query 0 --url "$URL" --issuer gd/organisation-ca/ca.pem \
        --cert gd/organisation-ca/ee-good.pem --signer signers/gd-responder.pem --sm3
    assert_eq "OK (sm2-with-sm3)" "$(line signature)" "organisation good: signature"
    query --url "$URL" --issuer gd/organisation-ca/ca.pem --cert gd/organisation-ca/ee-revoked.pem \
        --signer signers/gd-responder.pem
    assert_eq 1 "$QRC" "organisation revoked: exit status ($QOUT)"
    assert_eq "keyCompromise (1)" "$(line reason)" "organisation revoked: reason"
    assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "$(line revocationTime)" "organisation revoked: time"
    # openssl cannot check SM2 response signatures (no distinguishing ID),
    # but it reads the statuses of both GD CAs
    for ca in personal-ca organisation-ca; do
        out=$(cd "$D" && openssl ocsp -url "$URL" -issuer gd/$ca/ca.pem -cert gd/$ca/ee-good.pem \
            -cert gd/$ca/ee-revoked.pem -noverify -no_nonce 2>&1) || true
        assert_contains "ee-good.pem: good" "$out" "openssl: gd $ca good" || true
        assert_contains "ee-revoked.pem: revoked" "$out" "openssl: gd $ca revoked" || true
        assert_contains "Reason: keyCompromise" "$out" "openssl: gd $ca reason" || true
        assert_match "Revocation Time: [A-Z][a-z]{2} +[0-9]+ [0-9:]{8} [0-9]{4} GMT" "$out" "openssl: gd $ca time" || true
    done
}

# ---------------------------------------------------------------------------

t_name "setup: trustgate demo --port N makes a world (N..N+4 free)"
# trustgate on PORT, the CAs' upstream responders on PORT+1..PORT+4
PORT=$(free_port_run 5) || PORT=
URL=http://127.0.0.1:$PORT/ocsp
rc=0
out=$("$TG" demo --port "$PORT" "$D" 2>&1) || rc=$?
if ((rc != 0)) || [[ ! -f $D/trustgate.ini ]]; then
    fail "trustgate demo failed (exit $rc):"
    printf '%s\n' "$out" | tail -n 20 | sed 's/^/        | /'
    t_summary
    exit 1
fi
t_end

run_test test_demo_layout
run_test test_demo_port
run_test test_demo_port_usage
run_test test_demo_refuses_nonempty
run_test test_chains_rsa_ecdsa
run_test test_chains_sm2
run_test test_crls
run_test test_ee_contents
run_test test_lists_xmlsec
run_test test_check
run_test test_tl_show
run_test test_resign_template
run_test test_demo_run

t_name "setup: trustgate serve -c DIR/trustgate.ini starts on the demo world"
SRV_PID=
if start_server "$D"; then
    t_end
    run_test test_query_suspended_sm2
    run_test test_query_tampered
    run_test test_query_active_crl
    run_test test_query_errors
    run_test test_openssl_vafile
    run_test test_hk_lifecycle
    run_test test_gd_reinstated
    t_name "server exits 0 on SIGTERM; no sanitizer report in its log"
    kill -TERM "$SRV_PID" 2>/dev/null || true
    wait_exit "$SRV_PID" 5 || true
    assert_eq 0 "$EXIT_RC" "exit status" || true
    if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$D/stderr.log"; then
        fail "sanitizer report in the server log"
    fi
    t_end
else
    fail "the server did not start on the demo configuration"
    t_end
fi

t_summary
