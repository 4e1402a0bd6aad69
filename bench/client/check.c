/* Response checks (see check.h): a DER walk over
 *
 *   OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED,
 *                               responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
 *   ResponseBytes ::= SEQUENCE { responseType OID, response OCTET STRING }
 *   BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, ... }
 *   ResponseData ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, responderID [1]|[2],
 *                               producedAt GeneralizedTime, responses SEQUENCE OF
 *                               SingleResponse, responseExtensions [1] EXPLICIT OPTIONAL }
 *   SingleResponse ::= SEQUENCE { certID CertID, certStatus [0]|[1]|[2], ... }
 *
 * (RFC 6960 §4.2.1, §4.2.2). Lengths are bounded by the input; nothing is
 * allocated, so garbage costs nothing but a `parse` error. */
#include "bench/client/check.h"

#include <string.h>

static const char *const err_names[TG_BERR_COUNT] = {
    "connect",     "http_status", "parse",  "ocsp_status", "certid",
    "cert_status", "nonce",       "closed", "timeout",
};

const char *tg_bench_err_name(int kind)
{
    return kind >= 0 && kind < TG_BERR_COUNT ? err_names[kind] : "none";
}

static const uint8_t oid_basic[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01};

/* Reads one TLV with a low tag number and a definite length of at most
 * four octets from *in into *out_tag and *out_val and advances *in.
 * Returns 0 or -1. */
static int der_get(tg_slice_t *in, uint8_t *out_tag, tg_slice_t *out_val)
{
    if (in->n < 2 || (in->p[0] & 0x1f) == 0x1f)
        return -1;
    size_t len = in->p[1], hl = 2;
    if (len & 0x80) {
        size_t nb = len & 0x7f;
        if (nb == 0 || nb > 4 || in->n < 2 + nb)
            return -1;
        len = 0;
        for (size_t i = 0; i < nb; i++)
            len = len << 8 | in->p[2 + i];
        hl += nb;
    }
    if (len > in->n - hl)
        return -1;
    *out_tag = in->p[0];
    *out_val = TG_SLICE(in->p + hl, len);
    in->p += hl + len;
    in->n -= hl + len;
    return 0;
}

/* Reads one TLV that must have tag. Returns 0 or -1. */
static int der_expect(tg_slice_t *in, uint8_t tag, tg_slice_t *out_val)
{
    uint8_t t;
    tg_slice_t save = *in;
    if (der_get(in, &t, out_val) != 0 || t != tag) {
        *in = save;
        return -1;
    }
    return 0;
}

static int slice_eq(tg_slice_t s, const uint8_t *p, size_t n)
{
    return s.n == n && memcmp(s.p, p, n) == 0;
}

/* Returns responseStatus and leaves what follows it in *out_rest, or -1. */
static int outer_status(const uint8_t *body, size_t n, tg_slice_t *out_rest)
{
    tg_slice_t in = TG_SLICE(body, n), seq, st;
    if (der_expect(&in, 0x30, &seq) != 0 || in.n != 0 || der_expect(&seq, 0x0a, &st) != 0 ||
        st.n != 1)
        return -1;
    *out_rest = seq;
    return st.p[0];
}

/* Compares a CertID SEQUENCE's contents with id (the hash parameters are
 * not compared: NULL and absent are both seen). Returns 1 on a match. */
static int certid_match(tg_slice_t cid, const tg_certid_t *id)
{
    tg_slice_t alg, oid, nh, kh, serial;
    size_t want_len;
    const uint8_t *want = tg_bench_hash_oid(id->alg, &want_len);
    if (der_expect(&cid, 0x30, &alg) != 0 || der_expect(&alg, 0x06, &oid) != 0 ||
        der_expect(&cid, 0x04, &nh) != 0 || der_expect(&cid, 0x04, &kh) != 0 ||
        der_expect(&cid, 0x02, &serial) != 0)
        return 0;
    return want != NULL && slice_eq(oid, want + 2, want_len - 2) &&
           slice_eq(nh, id->name_hash, id->hash_len) && slice_eq(kh, id->key_hash, id->hash_len) &&
           slice_eq(serial, id->serial, id->serial_len);
}

/* Walks responseBytes (rest). Sets *found, *status, *reason, *nonce_ok.
 * Returns 0, or -1 when the structure does not parse. */
static int walk_basic(tg_slice_t rest, const tg_certid_t *id, const uint8_t *nonce, int *found,
                      int *status, int *reason, int *nonce_ok)
{
    tg_slice_t rb0, rb, oid, octets, basic, tbs, skip, responses, single, cid, exts, list;
    uint8_t tag;
    if (der_expect(&rest, 0xa0, &rb0) != 0 || der_expect(&rb0, 0x30, &rb) != 0 ||
        der_expect(&rb, 0x06, &oid) != 0 || !slice_eq(oid, oid_basic, sizeof(oid_basic)) ||
        der_expect(&rb, 0x04, &octets) != 0 || der_expect(&octets, 0x30, &basic) != 0 ||
        der_expect(&basic, 0x30, &tbs) != 0)
        return -1;
    (void)der_expect(&tbs, 0xa0, &skip); /* version, DEFAULT v1 */
    if (der_get(&tbs, &tag, &skip) != 0 || (tag != 0xa1 && tag != 0xa2) ||
        der_expect(&tbs, 0x18, &skip) != 0 || der_expect(&tbs, 0x30, &responses) != 0)
        return -1;
    *found = 0;
    while (responses.n > 0 && !*found) {
        if (der_expect(&responses, 0x30, &single) != 0 || der_expect(&single, 0x30, &cid) != 0)
            return -1;
        if (!certid_match(cid, id))
            continue;
        tg_slice_t info, time, r0, r;
        if (der_get(&single, &tag, &info) != 0)
            return -1;
        *found = 1;
        if (tag == 0x80 && info.n == 0) {
            *status = 0;
        } else if (tag == 0xa1) {
            /* RevokedInfo ::= SEQUENCE { revocationTime, revocationReason [0] EXPLICIT } */
            *status = 1;
            if (der_expect(&info, 0x18, &time) != 0)
                return -1;
            if (der_expect(&info, 0xa0, &r0) == 0) {
                if (der_expect(&r0, 0x0a, &r) != 0 || r.n != 1)
                    return -1;
                *reason = r.p[0];
            }
        } else if (tag == 0x82 && info.n == 0) {
            *status = 2;
        } else {
            return -1;
        }
    }
    *nonce_ok = 0;
    if (nonce == NULL || der_expect(&tbs, 0xa1, &exts) != 0 || der_expect(&exts, 0x30, &list) != 0)
        return 0;
    while (list.n > 0) {
        tg_slice_t ext, eoid, crit, val;
        if (der_expect(&list, 0x30, &ext) != 0 || der_expect(&ext, 0x06, &eoid) != 0)
            return -1;
        (void)der_expect(&ext, 0x01, &crit);
        if (der_expect(&ext, 0x04, &val) != 0)
            return -1;
        if (!slice_eq(eoid, tg_bench_nonce_oid + 2, sizeof(tg_bench_nonce_oid) - 2))
            continue;
        /* extnValue: the OCTET STRING { nonce } sent (RFC 8954 §2.1) */
        *nonce_ok = val.n == TG_BENCH_NONCE_LEN + 2 && val.p[0] == 0x04 &&
                    val.p[1] == TG_BENCH_NONCE_LEN &&
                    memcmp(val.p + 2, nonce, TG_BENCH_NONCE_LEN) == 0;
        break;
    }
    return 0;
}

static int state_of_ocsp_status(int st)
{
    switch (st) {
    case 1: return TG_BST_MALFORMED;
    case 2: return TG_BST_INTERNAL;
    case 3: return TG_BST_TRYLATER;
    case 5: return TG_BST_SIGREQ;
    case 6: return TG_BST_UNAUTH;
    default: return TG_BST_NONE;
    }
}

int tg_bench_check(int http_status, const uint8_t *body, size_t n, const tg_certid_t *id,
                   int expect, const uint8_t *nonce, int full, tg_bench_verdict_t *out)
{
    *out = (tg_bench_verdict_t){
        .ocsp_status = -1, .cert_status = -1, .reason = -1, .state = TG_BST_NONE};
    if (http_status != 200)
        return TG_BERR_HTTP_STATUS;
    tg_slice_t rest;
    int st = outer_status(body, n, &rest);
    if (st < 0 || st == 4 || st > 6)
        return TG_BERR_PARSE;
    out->ocsp_status = st;
    int want_cert = expect <= TG_BST_UNKNOWN;
    if (st != 0) {
        out->state = state_of_ocsp_status(st);
        if (want_cert || (expect != TG_BST_ANY && expect != out->state))
            return TG_BERR_OCSP_STATUS;
        return TG_BERR_NONE;
    }
    if (!want_cert && expect != TG_BST_ANY)
        return TG_BERR_OCSP_STATUS;
    if (!full && nonce == NULL)
        return TG_BERR_NONE;
    int found = 0, status = -1, reason = -1, nonce_ok = 0;
    out->walked = 1;
    if (walk_basic(rest, id, nonce, &found, &status, &reason, &nonce_ok) != 0)
        return TG_BERR_PARSE;
    if (found) {
        out->cert_status = status;
        out->reason = reason;
        out->state = status; /* TG_BST_GOOD/REVOKED/UNKNOWN are 0/1/2 */
    }
    if (want_cert && !found)
        return TG_BERR_CERTID;
    if (want_cert && status != expect)
        return TG_BERR_CERT_STATUS;
    if (nonce != NULL && !nonce_ok)
        return TG_BERR_NONCE;
    return TG_BERR_NONE;
}

/* ---- self-test --------------------------------------------------------- */

#include "bench/client/req.h"

#include <openssl/ocsp.h>
#include <stdio.h>

/* Builds an unsigned-looking BasicOCSPResponse with OpenSSL (signed with a
 * throwaway EC key) answering id with status, echoing nonce. Returns the
 * DER length in *out (OPENSSL_free) or 0. */
static size_t make_response(const tg_certid_t *id, int status, int reason, const uint8_t *nonce,
                            uint8_t **out)
{
    size_t len = 0;
    uint8_t der[TG_BENCH_DER_MAX];
    size_t dn = tg_bench_ocsp_request(id, nonce, der);
    const unsigned char *p = der;
    OCSP_REQUEST *req = d2i_OCSP_REQUEST(NULL, &p, (long)dn);
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    ASN1_TIME *now = ASN1_TIME_set(NULL, 1700000000);
    OCSP_RESPONSE *resp = NULL;
    if (!req || !bs || !key || !cert || !now)
        goto out;
    OCSP_ONEREQ *one = OCSP_request_onereq_get0(req, 0);
    OCSP_CERTID *cid = OCSP_onereq_get0_id(one);
    if (!X509_set_pubkey(cert, key) ||
        !X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                                    (const unsigned char *)"t", -1, -1, 0) ||
        !OCSP_basic_add1_status(bs, cid, status, reason, status == 1 ? now : NULL, now, NULL) ||
        (nonce && OCSP_copy_nonce(bs, req) != 1) ||
        !OCSP_basic_sign(bs, cert, key, EVP_sha256(), NULL, OCSP_NOCERTS))
        goto out;
    resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
    int n = resp ? i2d_OCSP_RESPONSE(resp, out) : -1;
    len = n > 0 ? (size_t)n : 0;
out:
    OCSP_RESPONSE_free(resp);
    ASN1_TIME_free(now);
    X509_free(cert);
    EVP_PKEY_free(key);
    OCSP_BASICRESP_free(bs);
    OCSP_REQUEST_free(req);
    return len;
}

static int expect_kind(const char *what, int got, int want)
{
    if (got == want)
        return 0;
    fprintf(stderr, "check selftest: %s: error kind %s, want %s\n", what,
            got < 0 ? "none" : tg_bench_err_name(got), want < 0 ? "none" : tg_bench_err_name(want));
    return -1;
}

int tg_bench_check_selftest(void)
{
    int rc = 0;
    tg_certid_t id;
    memset(&id, 0, sizeof(id));
    id.alg = TG_HASH_SHA256;
    id.hash_len = 32;
    memset(id.name_hash, 0x11, 32);
    memset(id.key_hash, 0x22, 32);
    id.serial_len = 2;
    id.serial[0] = 0x01;
    id.serial[1] = 0x23;
    uint8_t nonce[TG_BENCH_NONCE_LEN], other[TG_BENCH_NONCE_LEN];
    memset(nonce, 0x5a, sizeof(nonce));
    memset(other, 0xa5, sizeof(other));
    tg_bench_verdict_t v;
    uint8_t *der = NULL;
    size_t n = make_response(&id, V_OCSP_CERTSTATUS_REVOKED, 6, nonce, &der);
    if (n == 0) {
        fprintf(stderr, "check selftest: cannot build a response\n");
        return -1;
    }
    rc |= expect_kind("revoked ok", tg_bench_check(200, der, n, &id, TG_BST_REVOKED, nonce, 1, &v),
                      TG_BERR_NONE);
    if (v.cert_status != 1 || v.reason != 6 || v.state != TG_BST_REVOKED) {
        fprintf(stderr, "check selftest: revoked/6 read as %d/%d\n", v.cert_status, v.reason);
        rc = -1;
    }
    rc |= expect_kind("good wanted", tg_bench_check(200, der, n, &id, TG_BST_GOOD, NULL, 1, &v),
                      TG_BERR_CERT_STATUS);
    rc |= expect_kind("quick only", tg_bench_check(200, der, n, &id, TG_BST_GOOD, NULL, 0, &v),
                      TG_BERR_NONE);
    rc |= expect_kind("nonce", tg_bench_check(200, der, n, &id, TG_BST_REVOKED, other, 0, &v),
                      TG_BERR_NONCE);
    rc |= expect_kind("http", tg_bench_check(404, der, n, &id, TG_BST_REVOKED, NULL, 1, &v),
                      TG_BERR_HTTP_STATUS);
    rc |= expect_kind("unauth wanted", tg_bench_check(200, der, n, &id, TG_BST_UNAUTH, NULL, 1, &v),
                      TG_BERR_OCSP_STATUS);
    rc |= expect_kind("truncated", tg_bench_check(200, der, n - 1, &id, TG_BST_ANY, NULL, 1, &v),
                      TG_BERR_PARSE);
    for (size_t cut = 0; cut < n; cut++) /* no crash on any truncation */
        (void)tg_bench_check(200, der, cut, &id, TG_BST_REVOKED, nonce, 1, &v);
    tg_certid_t id2 = id;
    id2.serial[1] = 0x24;
    rc |= expect_kind("certid", tg_bench_check(200, der, n, &id2, TG_BST_REVOKED, NULL, 1, &v),
                      TG_BERR_CERTID);
    OPENSSL_free(der);
    der = NULL;
    n = make_response(&id, V_OCSP_CERTSTATUS_GOOD, -1, NULL, &der);
    rc |= expect_kind("good", tg_bench_check(200, der, n, &id, TG_BST_GOOD, NULL, 1, &v),
                      TG_BERR_NONE);
    rc |= expect_kind("no nonce echoed",
                      tg_bench_check(200, der, n, &id, TG_BST_GOOD, nonce, 1, &v), TG_BERR_NONCE);
    OPENSSL_free(der);
    static const uint8_t unauth[] = {0x30, 0x03, 0x0a, 0x01, 0x06};
    rc |= expect_kind("unauthorized",
                      tg_bench_check(200, unauth, sizeof(unauth), &id, TG_BST_UNAUTH, nonce, 1, &v),
                      TG_BERR_NONE);
    rc |= expect_kind("unauthorized vs good",
                      tg_bench_check(200, unauth, sizeof(unauth), &id, TG_BST_GOOD, NULL, 1, &v),
                      TG_BERR_OCSP_STATUS);
    rc |= expect_kind(
        "garbage", tg_bench_check(200, (const uint8_t *)"garbage", 7, &id, TG_BST_ANY, NULL, 1, &v),
        TG_BERR_PARSE);
    return rc ? -1 : 0;
}
