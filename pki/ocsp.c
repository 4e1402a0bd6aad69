/* OCSP request decoding and the fixed unsigned responses.
 *
 * Decoding runs for every request on a worker loop, so it checks the
 * framing without allocating, parses once with OpenSSL's d2i (leaving out
 * a signature, which is never verified), walks the result without further
 * allocation (except the CertID array, and a d2i of the nonce when there is
 * one) and copies out only what the responder needs. Peer errors are
 * expected: they are never logged and the OpenSSL error queue is emptied on
 * every failure. */
#include "pki/ocsp.h"

#include "common/log.h"
#include "pki/pki_internal.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    size_t len;
    int nid;
} hash_algs[TG_HASH_COUNT] = {
    [TG_HASH_SHA1] = {"sha1", 20, NID_sha1},       [TG_HASH_SHA256] = {"sha256", 32, NID_sha256},
    [TG_HASH_SHA384] = {"sha384", 48, NID_sha384}, [TG_HASH_SHA512] = {"sha512", 64, NID_sha512},
    [TG_HASH_SM3] = {"sm3", 32, NID_sm3},
};

const char *tg_hash_alg_name(tg_hash_alg_t alg)
{
    if ((unsigned)alg >= TG_HASH_COUNT)
        return "unknown";
    return hash_algs[alg].name;
}

size_t tg_hash_alg_len(tg_hash_alg_t alg)
{
    if ((unsigned)alg >= TG_HASH_COUNT)
        return 0;
    return hash_algs[alg].len;
}

int tg_pki_hash_alg_from_nid(int nid, tg_hash_alg_t *out_alg)
{
    for (unsigned i = 0; i < TG_HASH_COUNT; i++) {
        if (hash_algs[i].nid == nid) {
            *out_alg = (tg_hash_alg_t)i;
            return 0;
        }
    }
    return TG_EUNSUPPORTED;
}

int tg_certid_eq(const tg_certid_t *a, const tg_certid_t *b)
{
    return a->alg == b->alg && a->hash_len == b->hash_len && a->serial_len == b->serial_len &&
           a->hash_len <= TG_HASH_MAX_LEN && a->serial_len <= TG_SERIAL_MAX_LEN &&
           memcmp(a->name_hash, b->name_hash, a->hash_len) == 0 &&
           memcmp(a->key_hash, b->key_hash, a->hash_len) == 0 &&
           memcmp(a->serial, b->serial, a->serial_len) == 0;
}

/* ---- request decoding ---- */

/* Reads one definite-length header at *p (before end) and checks its class,
 * tag and form; leaves *p at the contents and their length in *out_len.
 * ASN1_get_object reads headers as d2i does and allocates nothing. */
static int header(const unsigned char **p, const unsigned char *end, int want_cls, int want_tag,
                  int constructed, long *out_len)
{
    int tag, cls;
    if (*p >= end)
        return 0;
    int ret = ASN1_get_object(p, out_len, &tag, &cls, end - *p);
    /* 0x80: error; bit 0: indefinite length; else the constructed bit. */
    if (ret != (constructed ? V_ASN1_CONSTRUCTED : 0))
        return 0;
    return cls == want_cls && tag == want_tag;
}

/* Where the tbsRequest lies and whether a signature follows it. */
typedef struct {
    size_t tbs_off, tbs_len; /* the whole tbsRequest TLV */
    int has_signature;
} frame_t;

/* Checks the framing of an OCSPRequest before OpenSSL parses it:
 *
 *   OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest,
 *                              optionalSignature [0] EXPLICIT Signature OPTIONAL }
 *   TBSRequest  ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, ... }
 *   Signature   ::= SEQUENCE { signatureAlgorithm AlgorithmIdentifier,
 *                              signature BIT STRING,
 *                              certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
 *
 * - The two outer SEQUENCEs need definite lengths (RFC 6960 Appendix A.1:
 *   the body is DER), and nothing may follow the OCSPRequest.
 * - version: OpenSSL keeps it private, so it is read here; only v1 (an
 *   explicit v1, which DER forbids for a DEFAULT, is tolerated).
 * - The signature is never verified, so it is checked for shape only and
 *   left out of the d2i: OpenSSL 3.0 spends some 100 us decoding each
 *   attached certificate's key, which would make a request padded with
 *   certificates a thousand times dearer than a plain one. */
static int check_frame(const uint8_t *der, size_t len, frame_t *out)
{
    const unsigned char *p = der;
    const unsigned char *end = der + len;
    long l;

    if (!header(&p, end, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, 1, &l) || l != end - p)
        return TG_EMALFORMED;
    const unsigned char *tbs = p;
    if (!header(&p, end, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, 1, &l))
        return TG_EMALFORMED;
    const unsigned char *tbs_end = p + l;
    out->tbs_off = (size_t)(tbs - der);
    out->tbs_len = (size_t)(tbs_end - tbs);
    out->has_signature = tbs_end != end;

    /* version [0] EXPLICIT INTEGER: v1(0) is the content octet 00 (OpenSSL
     * refuses padded forms). Absent means v1. */
    const unsigned char *q = p;
    int tag, cls;
    if (q >= tbs_end || (ASN1_get_object(&q, &l, &tag, &cls, tbs_end - q) & 0x80))
        return TG_EMALFORMED; /* not even a requestList */
    if (cls == V_ASN1_CONTEXT_SPECIFIC && tag == 0) {
        q = p;
        if (!header(&q, tbs_end, V_ASN1_CONTEXT_SPECIFIC, 0, 1, &l) ||
            !header(&q, tbs_end, V_ASN1_UNIVERSAL, V_ASN1_INTEGER, 0, &l) || l != 1 || q[0] != 0)
            return TG_EMALFORMED;
    }

    if (!out->has_signature)
        return 0;
    p = tbs_end;
    if (!header(&p, end, V_ASN1_CONTEXT_SPECIFIC, 0, 1, &l) || l != end - p)
        return TG_EMALFORMED;
    if (!header(&p, end, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, 1, &l) || l != end - p)
        return TG_EMALFORMED;
    if (!header(&p, end, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, 1, &l))
        return TG_EMALFORMED;
    p += l;
    if (!header(&p, end, V_ASN1_UNIVERSAL, V_ASN1_BIT_STRING, 0, &l) || l < 1)
        return TG_EMALFORMED;
    p += l;
    if (p == end)
        return 0;
    if (!header(&p, end, V_ASN1_CONTEXT_SPECIFIC, 0, 1, &l) || l != end - p)
        return TG_EMALFORMED;
    if (!header(&p, end, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, 1, &l) || l != end - p)
        return TG_EMALFORMED;
    while (p < end) { /* each Certificate a SEQUENCE, not looked into */
        if (!header(&p, end, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, 1, &l))
            return TG_EMALFORMED;
        p += l;
    }
    return 0;
}

/* d2i of the request without its signature: SEQUENCE { tbsRequest } in a
 * copy. Only signed requests, which are rare, pay for the copy. */
static OCSP_REQUEST *d2i_unsigned(const uint8_t *der, const frame_t *f, int *out_rc)
{
    size_t cap = f->tbs_len + 1 + 1 + sizeof(size_t);
    unsigned char *buf = malloc(cap);
    if (buf == NULL) {
        *out_rc = TG_ENOMEM;
        return NULL;
    }
    size_t n = 0;
    buf[n++] = 0x30;
    if (f->tbs_len < 0x80) {
        buf[n++] = (unsigned char)f->tbs_len;
    } else {
        unsigned k = 0;
        for (size_t v = f->tbs_len; v; v >>= 8)
            k++;
        buf[n++] = (unsigned char)(0x80 | k);
        for (unsigned i = k; i-- > 0;)
            buf[n++] = (unsigned char)(f->tbs_len >> (8 * i));
    }
    memcpy(buf + n, der + f->tbs_off, f->tbs_len);
    n += f->tbs_len;

    const unsigned char *p = buf;
    OCSP_REQUEST *req = d2i_OCSP_REQUEST(NULL, &p, (long)n);
    *out_rc = TG_EMALFORMED;
    if (req != NULL && p != buf + n) {
        OCSP_REQUEST_free(req);
        req = NULL;
    }
    free(buf);
    return req;
}

int tg_pki_certid_from_ocsp(OCSP_CERTID *id, tg_certid_t *out)
{
    ASN1_OCTET_STRING *name_hash = NULL, *key_hash = NULL;
    ASN1_OBJECT *md = NULL;
    ASN1_INTEGER *serial = NULL;
    tg_hash_alg_t alg;

    if (id == NULL || !OCSP_id_get0_info(&name_hash, &md, &key_hash, &serial, id))
        return TG_EMALFORMED;
    if (md == NULL || name_hash == NULL || key_hash == NULL || serial == NULL)
        return TG_EMALFORMED;
    /* OBJ_obj2nid is a field read for OIDs OpenSSL knows (d2i resolves
     * them) and a table search otherwise. */
    if (tg_pki_hash_alg_from_nid(OBJ_obj2nid(md), &alg) != 0)
        return TG_EMALFORMED;
    size_t hlen = hash_algs[alg].len;
    if ((size_t)ASN1_STRING_length(name_hash) != hlen ||
        (size_t)ASN1_STRING_length(key_hash) != hlen)
        return TG_EMALFORMED;

    /* OpenSSL holds the magnitude and the sign in the type. RFC 5280
     * §4.1.2.2: serials are positive. */
    if (ASN1_STRING_type(serial) != V_ASN1_INTEGER)
        return TG_EMALFORMED;
    const unsigned char *s = ASN1_STRING_get0_data(serial);
    int slen = ASN1_STRING_length(serial);
    if (s == NULL || slen <= 0)
        return TG_EMALFORMED;
    while (slen > 0 && s[0] == 0) { /* defensive: d2i never pads */
        s++;
        slen--;
    }
    if (slen == 0)
        return TG_EMALFORMED; /* zero */
    size_t pad = (s[0] & 0x80) ? 1 : 0;
    if ((size_t)slen + pad > TG_SERIAL_MAX_LEN)
        return TG_EMALFORMED;

    memset(out, 0, sizeof(*out));
    out->alg = alg;
    out->hash_len = (uint8_t)hlen;
    memcpy(out->name_hash, ASN1_STRING_get0_data(name_hash), hlen);
    memcpy(out->key_hash, ASN1_STRING_get0_data(key_hash), hlen);
    out->serial_len = (uint8_t)((size_t)slen + pad);
    memcpy(out->serial + pad, s, (size_t)slen);
    return 0;
}

/* RFC 6960 §4.4.1 (and RFC 8954/9654): extnValue holds the DER of
 * Nonce ::= OCTET STRING (SIZE(1..128)), itself inside the extension's own
 * OCTET STRING. */
static int take_nonce(X509_EXTENSION *ext, tg_ocsp_req_t *out)
{
    const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
    const unsigned char *p = ASN1_STRING_get0_data(v);
    int vlen = ASN1_STRING_length(v);
    /* DER, not merely BER: a primitive OCTET STRING (d2i would also take
     * the constructed form) whose length is in the shortest form, which for
     * at most 128 octets is 04 LL, or 04 81 80 for exactly 128. */
    if (p == NULL || vlen < 2 || p[0] != V_ASN1_OCTET_STRING)
        return TG_EMALFORMED;
    if (p[1] & 0x80) {
        if (p[1] != 0x81 || vlen < 3 || p[2] < 0x80)
            return TG_EMALFORMED;
    }
    const unsigned char *q = p;
    ASN1_OCTET_STRING *inner = d2i_ASN1_OCTET_STRING(NULL, &q, vlen);
    if (inner == NULL)
        return tg_pki_peer_error();
    int rc = TG_EMALFORMED;
    int n = ASN1_STRING_length(inner);
    if (q == p + vlen && n >= 1 && n <= TG_NONCE_MAX_LEN) {
        memcpy(out->nonce, ASN1_STRING_get0_data(inner), (size_t)n);
        out->nonce_len = (uint8_t)n;
        out->has_nonce = 1;
        rc = 0;
    }
    ASN1_OCTET_STRING_free(inner);
    return rc;
}

/* Which list an extension comes from, and so which critical ones we
 * understand. */
enum ext_list { EXT_REQUEST, EXT_SINGLE };

/* Checks one extension list: bounded size, no OID twice, no critical
 * extension we do not act on; takes the nonce from requestExtensions. Both
 * lists are reached through OpenSSL's typed getters, hence the two owners. */
static int check_extensions(OCSP_REQUEST *req, OCSP_ONEREQ *one, enum ext_list which,
                            tg_ocsp_req_t *out)
{
    int n = which == EXT_REQUEST ? OCSP_REQUEST_get_ext_count(req) : OCSP_ONEREQ_get_ext_count(one);
    if (n < 0 || n > TG_OCSP_MAX_EXTENSIONS)
        return TG_EMALFORMED;
    const ASN1_OBJECT *seen[TG_OCSP_MAX_EXTENSIONS];
    for (int i = 0; i < n; i++) {
        X509_EXTENSION *ext =
            which == EXT_REQUEST ? OCSP_REQUEST_get_ext(req, i) : OCSP_ONEREQ_get_ext(one, i);
        if (ext == NULL)
            return TG_EMALFORMED;
        const ASN1_OBJECT *obj = X509_EXTENSION_get_object(ext);
        if (obj == NULL)
            return TG_EMALFORMED;
        /* RFC 5280 §4.2: at most one instance of an extension per list. */
        for (int j = 0; j < i; j++) {
            if (OBJ_cmp(seen[j], obj) == 0)
                return TG_EMALFORMED;
        }
        seen[i] = obj;

        int nid = OBJ_obj2nid(obj);
        if (which == EXT_REQUEST && nid == NID_id_pkix_OCSP_Nonce) {
            int rc = take_nonce(ext, out);
            if (rc != 0)
                return rc;
            continue;
        }
        if (which == EXT_REQUEST && nid == NID_id_pkix_OCSP_acceptableResponses)
            continue; /* we always answer id-pkix-ocsp-basic (RFC 6960 §4.4.3) */
        if (X509_EXTENSION_get_critical(ext))
            return TG_EMALFORMED; /* critical and not understood */
    }
    return 0;
}

size_t tg_certid_key(const tg_certid_t *id, uint8_t *key)
{
    if (id == NULL || (unsigned)id->alg >= TG_HASH_COUNT || id->hash_len == 0 ||
        id->hash_len > TG_HASH_MAX_LEN || id->serial_len == 0 || id->serial_len > TG_SERIAL_MAX_LEN)
        return 0;
    size_t n = 0;
    key[n++] = (uint8_t)id->alg;
    memcpy(key + n, id->name_hash, id->hash_len);
    n += id->hash_len;
    memcpy(key + n, id->key_hash, id->hash_len);
    n += id->hash_len;
    memcpy(key + n, id->serial, id->serial_len);
    return n + id->serial_len;
}

void tg_ocsp_req_init(tg_ocsp_req_t *req)
{
    memset(req, 0, sizeof(*req));
}

void tg_ocsp_req_clear(tg_ocsp_req_t *req)
{
    if (req == NULL)
        return;
    free(req->certids);
    tg_ocsp_req_init(req);
}

int tg_ocsp_req_decode(const uint8_t *der, size_t len, size_t max_certids, tg_ocsp_req_t *out)
{
    tg_ocsp_req_init(out);
    if (der == NULL || len == 0 || len > LONG_MAX)
        return TG_EMALFORMED;

    frame_t f;
    int rc = check_frame(der, len, &f);
    if (rc != 0) {
        ERR_clear_error();
        return rc;
    }

    OCSP_REQUEST *req;
    if (f.has_signature) {
        req = d2i_unsigned(der, &f, &rc);
    } else {
        const unsigned char *p = der;
        req = d2i_OCSP_REQUEST(NULL, &p, (long)len);
        rc = TG_EMALFORMED;
        if (req != NULL && p != der + len) { /* bytes after the OCSPRequest */
            OCSP_REQUEST_free(req);
            req = NULL;
        }
    }
    if (req == NULL) {
        int err = tg_pki_peer_error();
        return rc == TG_ENOMEM ? rc : err;
    }

    rc = TG_EMALFORMED;
    int n = OCSP_request_onereq_count(req);
    if (n <= 0 || (size_t)n > max_certids)
        goto out;

    rc = check_extensions(req, NULL, EXT_REQUEST, out);
    if (rc != 0)
        goto out;

    out->certids = calloc((size_t)n, sizeof(*out->certids));
    if (out->certids == NULL) {
        rc = TG_ENOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        OCSP_ONEREQ *one = OCSP_request_onereq_get0(req, i);
        if (one == NULL) {
            rc = TG_EMALFORMED;
            goto out;
        }
        rc = tg_pki_certid_from_ocsp(OCSP_onereq_get0_id(one), &out->certids[i]);
        if (rc != 0)
            goto out;
        rc = check_extensions(NULL, one, EXT_SINGLE, out);
        if (rc != 0)
            goto out;
    }
    out->n_certids = (size_t)n;
    rc = 0;

out:
    OCSP_REQUEST_free(req);
    if (rc != 0) {
        tg_ocsp_req_clear(out);
        if (tg_pki_peer_error() == TG_ENOMEM && rc == TG_EMALFORMED)
            rc = TG_ENOMEM;
    }
    return rc;
}

/* ---- fixed unsigned responses ---- */

/* Indexed by tg_ocsp_status_t; an unsigned OCSPResponse is
 * SEQUENCE { ENUMERATED status }: five bytes. */
#define STATUS_SLOTS 7
#define STATUS_DER_MAX 8
static uint8_t status_der[STATUS_SLOTS][STATUS_DER_MAX];
static size_t status_der_len[STATUS_SLOTS];

static int is_error_status(int status)
{
    switch (status) {
    case TG_OCSP_MALFORMED_REQUEST:
    case TG_OCSP_INTERNAL_ERROR:
    case TG_OCSP_TRY_LATER:
    case TG_OCSP_SIG_REQUIRED:
    case TG_OCSP_UNAUTHORIZED: return 1;
    default: return 0;
    }
}

int tg_ocsp_init(void)
{
    static const tg_ocsp_status_t statuses[] = {
        TG_OCSP_MALFORMED_REQUEST, TG_OCSP_INTERNAL_ERROR, TG_OCSP_TRY_LATER,
        TG_OCSP_SIG_REQUIRED,      TG_OCSP_UNAUTHORIZED,
    };
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        int s = (int)statuses[i];
        OCSP_RESPONSE *resp = OCSP_response_create(s, NULL);
        if (resp == NULL) {
            tg_log_openssl("OCSP_response_create");
            return TG_ECRYPTO;
        }
        int n = i2d_OCSP_RESPONSE(resp, NULL);
        if (n <= 0 || n > STATUS_DER_MAX) {
            OCSP_RESPONSE_free(resp);
            tg_log_openssl("i2d_OCSP_RESPONSE");
            return TG_ECRYPTO;
        }
        unsigned char *w = status_der[s];
        int m = i2d_OCSP_RESPONSE(resp, &w);
        OCSP_RESPONSE_free(resp);
        if (m != n) {
            tg_log_openssl("i2d_OCSP_RESPONSE");
            return TG_ECRYPTO;
        }
        status_der_len[s] = (size_t)n;
    }
    return 0;
}

tg_slice_t tg_ocsp_status_response(tg_ocsp_status_t status)
{
    if (!is_error_status((int)status))
        return TG_SLICE(NULL, 0);
    return TG_SLICE(status_der[status], status_der_len[status]);
}

const char *tg_ocsp_status_name(tg_ocsp_status_t status)
{
    switch (status) {
    case TG_OCSP_SUCCESSFUL: return "successful";
    case TG_OCSP_MALFORMED_REQUEST: return "malformedRequest";
    case TG_OCSP_INTERNAL_ERROR: return "internalError";
    case TG_OCSP_TRY_LATER: return "tryLater";
    case TG_OCSP_SIG_REQUIRED: return "sigRequired";
    case TG_OCSP_UNAUTHORIZED: return "unauthorized";
    }
    return "unknown";
}
