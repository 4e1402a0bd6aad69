/* Signed OCSP responses, encoded by hand (see pki/ocsp_sign.h).
 *
 *   OCSPResponse ::= SEQUENCE {
 *      responseStatus ENUMERATED { successful (0), ... },
 *      responseBytes [0] EXPLICIT SEQUENCE {
 *         responseType OBJECT IDENTIFIER (id-pkix-ocsp-basic),
 *         response OCTET STRING (DER of BasicOCSPResponse) } }
 *   BasicOCSPResponse ::= SEQUENCE {
 *      tbsResponseData ResponseData, signatureAlgorithm AlgorithmIdentifier,
 *      signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate }
 *   ResponseData ::= SEQUENCE {
 *      version [0] EXPLICIT DEFAULT v1 (left out, DER),
 *      responderID byKey [2] EXPLICIT OCTET STRING,
 *      producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse,
 *      responseExtensions [1] EXPLICIT Extensions OPTIONAL }
 *   SingleResponse ::= SEQUENCE {
 *      certID CertID, certStatus CertStatus, thisUpdate GeneralizedTime,
 *      nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL }
 *   CertStatus ::= CHOICE { good [0] IMPLICIT NULL,
 *      revoked [1] IMPLICIT SEQUENCE { revocationTime GeneralizedTime,
 *                  revocationReason [0] EXPLICIT CRLReason OPTIONAL },
 *      unknown [2] IMPLICIT NULL }
 *
 * (RFC 6960 §4.2.1 and Appendix B.1: the module uses EXPLICIT tags.)
 * Sizes are computed first, then every byte is written once. */
#include "pki/ocsp_sign.h"

#include "common/log.h"

#include <stdlib.h>
#include <string.h>

#define TAG_INTEGER 0x02
#define TAG_BIT_STRING 0x03
#define TAG_OCTET_STRING 0x04
#define TAG_GENERALIZED_TIME 0x18
#define TAG_SEQUENCE 0x30
#define TAG_CTX0 0xa0 /* [0] constructed */
#define TAG_CTX1 0xa1 /* [1] constructed */

/* A GeneralizedTime TLV: 18 0F YYYYMMDDHHMMSSZ. */
#define TIME_TLV 17

/* DER of the OIDs, tag and length included. */
static const uint8_t oid_basic[] = {0x06, 0x09, 0x2b, 0x06, 0x01, 0x05,
                                    0x05, 0x07, 0x30, 0x01, 0x01}; /* 1.3.6.1.5.5.7.48.1.1 */
static const uint8_t oid_nonce[] = {0x06, 0x09, 0x2b, 0x06, 0x01, 0x05,
                                    0x05, 0x07, 0x30, 0x01, 0x02}; /* 1.3.6.1.5.5.7.48.1.2 */

static const struct {
    uint8_t len;
    uint8_t der[11];
} hash_oids[TG_HASH_COUNT] = {
    [TG_HASH_SHA1] = {7, {0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a}},
    [TG_HASH_SHA256] = {11, {0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01}},
    [TG_HASH_SHA384] = {11, {0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02}},
    [TG_HASH_SHA512] = {11, {0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03}},
    [TG_HASH_SM3] = {10, {0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x11}},
};

const char *tg_cert_status_name(tg_cert_status_t status)
{
    switch (status) {
    case TG_CERT_GOOD: return "good";
    case TG_CERT_REVOKED: return "revoked";
    case TG_CERT_UNKNOWN: return "unknown";
    }
    return "invalid";
}

/* ---- DER writing ---- */

static size_t len_len(size_t n)
{
    size_t k = 1;
    if (n >= 0x80) {
        for (; n; n >>= 8)
            k++;
    }
    return k;
}

/* Size of a TLV with n content bytes. */
static size_t tlv(size_t n)
{
    return 1 + len_len(n) + n;
}

static uint8_t *put_hdr(uint8_t *p, uint8_t tag, size_t n)
{
    *p++ = tag;
    if (n < 0x80) {
        *p++ = (uint8_t)n;
        return p;
    }
    size_t k = len_len(n) - 1;
    *p++ = (uint8_t)(0x80 | k);
    for (size_t i = k; i-- > 0;)
        *p++ = (uint8_t)(n >> (8 * i));
    return p;
}

static uint8_t *put(uint8_t *p, const void *src, size_t n)
{
    memcpy(p, src, n);
    return p + n;
}

static uint8_t *put_digits(uint8_t *p, int v, int width)
{
    for (int i = width; i-- > 0;) {
        p[i] = (uint8_t)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* Caller checked 0 <= t <= TG_OCSP_TIME_MAX. */
static uint8_t *put_time(uint8_t *p, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    *p++ = TAG_GENERALIZED_TIME;
    *p++ = TIME_TLV - 2;
    p = put_digits(p, tm.tm_year + 1900, 4);
    p = put_digits(p, tm.tm_mon + 1, 2);
    p = put_digits(p, tm.tm_mday, 2);
    p = put_digits(p, tm.tm_hour, 2);
    p = put_digits(p, tm.tm_min, 2);
    p = put_digits(p, tm.tm_sec, 2);
    *p++ = 'Z';
    return p;
}

/* ---- checks ---- */

static int time_ok(time_t t)
{
    return t >= 0 && t <= TG_OCSP_TIME_MAX;
}

/* The serial is the content octets of a positive DER INTEGER, as
 * tg_ocsp_req_decode stores it: minimal, top bit clear. */
static int certid_ok(const tg_certid_t *id)
{
    if (id == NULL || (unsigned)id->alg >= TG_HASH_COUNT ||
        id->hash_len != tg_hash_alg_len(id->alg) || id->serial_len < 1 ||
        id->serial_len > TG_SERIAL_MAX_LEN)
        return 0;
    if (id->serial[0] & 0x80)
        return 0;
    if (id->serial_len > 1 && id->serial[0] == 0 && !(id->serial[1] & 0x80))
        return 0;
    return 1;
}

static int reason_ok(int reason)
{
    return reason == TG_CRL_REASON_NONE || (reason >= 0 && reason <= 10 && reason != 7);
}

static int single_ok(const tg_ocsp_single_t *one)
{
    if (!certid_ok(one->id) || !time_ok(one->this_update))
        return 0;
    if (one->next_update != 0 &&
        (!time_ok(one->next_update) || one->next_update < one->this_update))
        return 0;
    switch (one->status) {
    case TG_CERT_GOOD:
    case TG_CERT_UNKNOWN: return 1;
    case TG_CERT_REVOKED: return time_ok(one->revocation_time) && reason_ok(one->reason);
    }
    return 0;
}

/* ---- sizes ---- */

static size_t certid_content(const tg_certid_t *id)
{
    return tlv(hash_oids[id->alg].len + 2u) + 2 * tlv(id->hash_len) + tlv(id->serial_len);
}

static size_t status_size(const tg_ocsp_single_t *one)
{
    if (one->status != TG_CERT_REVOKED)
        return 2;
    return tlv(TIME_TLV + (one->reason >= 0 ? 5u : 0u));
}

static size_t single_content(const tg_ocsp_single_t *one)
{
    return tlv(certid_content(one->id)) + status_size(one) + TIME_TLV +
           (one->next_update != 0 ? 2u + TIME_TLV : 0u);
}

static size_t nonce_ext_content(size_t nonce_len)
{
    return sizeof(oid_nonce) + tlv(tlv(nonce_len));
}

/* ---- writing the parts ---- */

static uint8_t *put_single(uint8_t *p, const tg_ocsp_single_t *one)
{
    const tg_certid_t *id = one->id;
    p = put_hdr(p, TAG_SEQUENCE, single_content(one));

    p = put_hdr(p, TAG_SEQUENCE, certid_content(id));
    p = put_hdr(p, TAG_SEQUENCE, hash_oids[id->alg].len + 2u);
    p = put(p, hash_oids[id->alg].der, hash_oids[id->alg].len);
    *p++ = 0x05; /* parameters NULL */
    *p++ = 0x00;
    p = put_hdr(p, TAG_OCTET_STRING, id->hash_len);
    p = put(p, id->name_hash, id->hash_len);
    p = put_hdr(p, TAG_OCTET_STRING, id->hash_len);
    p = put(p, id->key_hash, id->hash_len);
    p = put_hdr(p, TAG_INTEGER, id->serial_len);
    p = put(p, id->serial, id->serial_len);

    switch (one->status) {
    case TG_CERT_GOOD:
        *p++ = 0x80; /* [0] IMPLICIT NULL */
        *p++ = 0x00;
        break;
    case TG_CERT_UNKNOWN:
        *p++ = 0x82; /* [2] IMPLICIT NULL */
        *p++ = 0x00;
        break;
    case TG_CERT_REVOKED:
        p = put_hdr(p, TAG_CTX1, TIME_TLV + (one->reason >= 0 ? 5u : 0u));
        p = put_time(p, one->revocation_time);
        if (one->reason >= 0) {
            static const uint8_t hdr[] = {TAG_CTX0, 0x03, 0x0a, 0x01}; /* [0] ENUMERATED */
            p = put(p, hdr, sizeof(hdr));
            *p++ = (uint8_t)one->reason;
        }
        break;
    }

    p = put_time(p, one->this_update);
    if (one->next_update != 0) {
        p = put_hdr(p, TAG_CTX0, TIME_TLV);
        p = put_time(p, one->next_update);
    }
    return p;
}

/* Writes ResponseData at p; returns the end. */
static uint8_t *put_tbs(uint8_t *p, size_t tbs_content, size_t responses_content,
                        const tg_signer_t *s, const tg_ocsp_single_t *singles, size_t n_singles,
                        const uint8_t *nonce, size_t nonce_len, time_t produced_at)
{
    tg_slice_t rid = tg_signer_responder_id_der(s);
    p = put_hdr(p, TAG_SEQUENCE, tbs_content);
    p = put(p, rid.p, rid.n);
    p = put_time(p, produced_at);
    p = put_hdr(p, TAG_SEQUENCE, responses_content);
    for (size_t i = 0; i < n_singles; i++)
        p = put_single(p, &singles[i]);
    if (nonce != NULL) {
        size_t ext = nonce_ext_content(nonce_len);
        p = put_hdr(p, TAG_CTX1, tlv(tlv(ext)));
        p = put_hdr(p, TAG_SEQUENCE, tlv(ext));
        p = put_hdr(p, TAG_SEQUENCE, ext);
        p = put(p, oid_nonce, sizeof(oid_nonce));
        /* extnValue holds the DER of Nonce ::= OCTET STRING. */
        p = put_hdr(p, TAG_OCTET_STRING, tlv(nonce_len));
        p = put_hdr(p, TAG_OCTET_STRING, nonce_len);
        p = put(p, nonce, nonce_len);
    }
    return p;
}

int tg_ocsp_sign_response(const tg_signer_t *s, const tg_ocsp_single_t *singles, size_t n_singles,
                          const uint8_t *nonce, size_t nonce_len, time_t produced_at, tg_buf_t *out)
{
    if (s == NULL || singles == NULL || out == NULL || n_singles == 0 || !time_ok(produced_at))
        return TG_EINVAL;
    /* A SingleResponse is at most some 400 bytes: no size below overflows. */
    if (n_singles > ((size_t)1 << 24))
        return TG_EINVAL;
    if (nonce != NULL && (nonce_len < 1 || nonce_len > TG_NONCE_MAX_LEN))
        return TG_EINVAL;

    size_t responses_content = 0;
    for (size_t i = 0; i < n_singles; i++) {
        if (!single_ok(&singles[i]))
            return TG_EINVAL;
        responses_content += tlv(single_content(&singles[i]));
    }
    tg_slice_t rid = tg_signer_responder_id_der(s);
    size_t tbs_content = rid.n + TIME_TLV + tlv(responses_content);
    if (nonce != NULL)
        tbs_content += tlv(tlv(tlv(nonce_ext_content(nonce_len))));
    size_t tbs_len = tlv(tbs_content);

    /* Most responses hold one or a few answers: no allocation for them. */
    uint8_t stack_tbs[2048];
    uint8_t *tbs = stack_tbs;
    if (tbs_len > sizeof(stack_tbs)) {
        tbs = malloc(tbs_len);
        if (tbs == NULL) {
            tg_error("ocsp sign: out of memory");
            return TG_ENOMEM;
        }
    }
    uint8_t sig[TG_SIGNER_MAX_SIG_LEN];
    size_t sig_len = sizeof(sig);
    size_t old_len = out->len;
    int rc = 0;
    uint8_t *end = put_tbs(tbs, tbs_content, responses_content, s, singles, n_singles, nonce,
                           nonce_len, produced_at);
    if ((size_t)(end - tbs) != tbs_len) { /* a sizing bug must never leave the process */
        tg_error("ocsp sign: encoded %zu ResponseData bytes, expected %zu", (size_t)(end - tbs),
                 tbs_len);
        rc = TG_ECRYPTO;
        goto out;
    }
    rc = tg_signer_sign(s, tbs, tbs_len, sig, &sig_len);
    if (rc != 0)
        goto out;

    tg_slice_t alg = tg_signer_sigalg_der(s);
    tg_slice_t cert = tg_signer_cert_der(s);
    size_t certs = tlv(tlv(cert.n));
    size_t basic_content = tbs_len + alg.n + tlv(1 + sig_len) + certs;
    size_t basic = tlv(basic_content);
    size_t rb_content = sizeof(oid_basic) + tlv(basic);
    size_t resp_content = 3 + tlv(tlv(rb_content));
    size_t total = tlv(resp_content);

    rc = tg_buf_reserve(out, total);
    if (rc != 0) {
        tg_error("ocsp sign: out of memory");
        goto out;
    }
    uint8_t *p = out->data + out->len;
    uint8_t *start = p;
    p = put_hdr(p, TAG_SEQUENCE, resp_content);
    static const uint8_t successful[] = {0x0a, 0x01, 0x00};
    p = put(p, successful, sizeof(successful));
    p = put_hdr(p, TAG_CTX0, tlv(rb_content));
    p = put_hdr(p, TAG_SEQUENCE, rb_content);
    p = put(p, oid_basic, sizeof(oid_basic));
    p = put_hdr(p, TAG_OCTET_STRING, basic);
    p = put_hdr(p, TAG_SEQUENCE, basic_content);
    p = put(p, tbs, tbs_len);
    p = put(p, alg.p, alg.n);
    p = put_hdr(p, TAG_BIT_STRING, 1 + sig_len);
    *p++ = 0x00; /* no unused bits */
    p = put(p, sig, sig_len);
    p = put_hdr(p, TAG_CTX0, tlv(cert.n));
    p = put_hdr(p, TAG_SEQUENCE, cert.n);
    p = put(p, cert.p, cert.n);
    if ((size_t)(p - start) != total) {
        tg_error("ocsp sign: encoded %zu bytes, expected %zu", (size_t)(p - start), total);
        rc = TG_ECRYPTO;
        goto out;
    }
    out->len += total;

out:
    if (rc != 0)
        out->len = old_len;
    if (tbs != stack_tbs)
        free(tbs);
    return rc;
}
