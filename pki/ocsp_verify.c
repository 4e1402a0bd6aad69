/* Verifying an OCSPResponse for one certificate (see pki/ocsp_verify.h).
 *
 * OpenSSL parses the response; the signature is checked here, over the
 * tbsResponseData bytes sliced from the input (OCSP_basic_verify checks a
 * re-encoding and passes no SM2 ID), and the responder authorisation of
 * RFC 6960 §4.2.2.2 is done here too, against the one issuer the caller
 * names rather than a certificate store. */
#include "pki/ocsp_verify.h"

#include "common/log.h"
#include "pki/pki_internal.h"
#include "pki/sm2.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ocsp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <limits.h>
#include <string.h>

#define TAG_ENUMERATED 0x0a
#define TAG_OCTET_STRING 0x04
#define TAG_OID 0x06
#define TAG_SEQUENCE 0x30
#define TAG_CTX0 0xa0

/* id-pkix-ocsp-basic, 1.3.6.1.5.5.7.48.1.1: the contents of the OID. */
static const uint8_t oid_basic[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01};

const char *tg_ocsp_signer_kind_name(tg_ocsp_signer_kind_t kind)
{
    switch (kind) {
    case TG_OCSP_SIGNER_TRUSTED: return "trusted";
    case TG_OCSP_SIGNER_ISSUER: return "issuer";
    case TG_OCSP_SIGNER_DELEGATED: return "delegated";
    }
    return "unknown";
}

/* ---- CertIDs ---- */

int tg_pki_certid_for_cert(X509 *issuer, X509 *cert, tg_hash_alg_t alg, tg_certid_t *out)
{
    if (issuer == NULL || cert == NULL || out == NULL || (unsigned)alg >= TG_HASH_COUNT)
        return TG_EINVAL;
    const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
    if (serial == NULL || ASN1_STRING_type(serial) != V_ASN1_INTEGER)
        return TG_EINVAL; /* negative */
    /* OpenSSL holds the magnitude; the CertID wants DER content octets. */
    const uint8_t *s = ASN1_STRING_get0_data(serial);
    size_t len = (size_t)ASN1_STRING_length(serial);
    while (len > 0 && s[0] == 0) {
        s++;
        len--;
    }
    if (len == 0)
        return TG_EINVAL;
    size_t pad = (s[0] & 0x80) ? 1 : 0;
    if (len + pad > TG_SERIAL_MAX_LEN)
        return TG_EINVAL;
    uint8_t content[TG_SERIAL_MAX_LEN] = {0};
    memcpy(content + pad, s, len);
    return tg_pki_certid_for(issuer, alg, content, len + pad, out);
}

/* ---- verification ---- */

/* Everything the checks share; freed in one place. */
typedef struct {
    const tg_ocsp_verify_opts_t *opts;
    tg_ocsp_verify_result_t *res;
    OCSP_RESPONSE *resp;
    OCSP_BASICRESP *bs;
    const uint8_t *tbs; /* tbsResponseData as received */
    size_t tbs_len;
    X509 *signer;
} vctx_t;

static int refuse(vctx_t *v, const char *why)
{
    v->res->error = why;
    return TG_EMALFORMED;
}

/* OpenSSL refused to parse peer data, or ran out of memory doing it. */
static int parse_failure(vctx_t *v)
{
    int nomem = 0;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
            nomem = 1;
    }
    if (nomem) {
        v->res->error = "internal_error";
        return TG_ENOMEM;
    }
    return refuse(v, "malformed");
}

/* A verification helper's result: TG_ENOMEM stays, any other failure is
 * the given refusal. */
static int failed(vctx_t *v, int rc, const char *why)
{
    if (rc == TG_ENOMEM) {
        v->res->error = "internal_error";
        return rc;
    }
    return refuse(v, why);
}

static int to_time(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm)) {
        ERR_clear_error();
        return -1;
    }
    *out = timegm(&tm);
    return 0;
}

/* OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED,
 *     responseBytes [0] EXPLICIT SEQUENCE { responseType OID,
 *                                           response OCTET STRING } OPTIONAL }
 * OpenSSL parses the whole; the walk finds the bytes of the
 * BasicOCSPResponse and, inside, of tbsResponseData, as received. */
static int parse(vctx_t *v, const uint8_t *der, size_t len)
{
    if (len > LONG_MAX)
        return refuse(v, "malformed");
    const unsigned char *dp = der;
    v->resp = d2i_OCSP_RESPONSE(NULL, &dp, (long)len);
    if (v->resp == NULL)
        return parse_failure(v);
    if (dp != der + len)
        return refuse(v, "malformed");
    if (OCSP_response_status(v->resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL)
        return refuse(v, "not_successful");

    const uint8_t *p = der, *end = der + len, *c;
    uint8_t tag;
    size_t n;
    if (tg_pki_der_next(&p, end, &tag, &c, &n) != 0 || tag != TAG_SEQUENCE || p != end)
        return refuse(v, "malformed");
    p = c;
    if (tg_pki_der_next(&p, end, &tag, &c, &n) != 0 || tag != TAG_ENUMERATED)
        return refuse(v, "malformed");
    if (tg_pki_der_next(&p, end, &tag, &c, &n) != 0 || tag != TAG_CTX0 || p != end)
        return refuse(v, "malformed");
    const uint8_t *rb_end = c + n;
    p = c;
    if (tg_pki_der_next(&p, rb_end, &tag, &c, &n) != 0 || tag != TAG_SEQUENCE || p != rb_end)
        return refuse(v, "malformed");
    p = c;
    if (tg_pki_der_next(&p, rb_end, &tag, &c, &n) != 0 || tag != TAG_OID ||
        n != sizeof(oid_basic) || memcmp(c, oid_basic, n) != 0)
        return refuse(v, "malformed"); /* not id-pkix-ocsp-basic */
    const uint8_t *basic;
    size_t basic_len;
    if (tg_pki_der_next(&p, rb_end, &tag, &basic, &basic_len) != 0 || tag != TAG_OCTET_STRING ||
        p != rb_end)
        return refuse(v, "malformed");

    if (tg_pki_der_tbs(basic, basic_len, &v->tbs, &v->tbs_len) != 0)
        return refuse(v, "malformed");
    const unsigned char *bp = basic;
    v->bs = d2i_OCSP_BASICRESP(NULL, &bp, (long)basic_len);
    if (v->bs == NULL)
        return parse_failure(v);
    if (bp != basic + basic_len)
        return refuse(v, "malformed");
    return 0;
}

/* ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash } */
static int responder_id_matches(X509 *cand, const ASN1_OCTET_STRING *key, const X509_NAME *name)
{
    if (name != NULL)
        return X509_NAME_cmp(name, X509_get_subject_name(cand)) == 0;
    if (key == NULL || ASN1_STRING_length(key) != SHA_DIGEST_LENGTH)
        return 0;
    uint8_t h[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!X509_pubkey_digest(cand, EVP_sha1(), h, &n) || n != SHA_DIGEST_LENGTH) {
        ERR_clear_error();
        return 0;
    }
    return memcmp(h, ASN1_STRING_get0_data(key), SHA_DIGEST_LENGTH) == 0;
}

static int valid_at(X509 *cert, time_t t)
{
    time_t nb, na;
    if (to_time(X509_get0_notBefore(cert), &nb) != 0 || to_time(X509_get0_notAfter(cert), &na) != 0)
        return 0;
    return nb <= t && t <= na;
}

/* RFC 6960 §4.2.2.2: a delegated responder's certificate is issued
 * directly by the CA that issued the certificate in question and carries
 * id-kp-OCSPSigning. Returns 1, 0, or TG_ENOMEM. */
static int delegate_authorised(vctx_t *v, X509 *cand)
{
    X509 *issuer = v->opts->issuer;
    EVP_PKEY *issuer_key = X509_get0_pubkey(issuer);
    if (issuer_key == NULL || X509_check_issued(issuer, cand) != X509_V_OK) {
        ERR_clear_error();
        return 0;
    }
    int rc = tg_pki_x509_verify_sm2aware(cand, issuer_key);
    if (rc == TG_ENOMEM)
        return rc;
    if (rc != 0)
        return 0;
    uint32_t flags = X509_get_extension_flags(cand);
    ERR_clear_error();
    if ((flags & EXFLAG_INVALID) || !(flags & EXFLAG_XKUSAGE) ||
        !(X509_get_extended_key_usage(cand) & XKU_OCSP_SIGN))
        return 0;
    return valid_at(cand, v->opts->now);
}

/* Finds the certificate that signed the response and checks the signature
 * with it. */
static int find_signer(vctx_t *v)
{
    const ASN1_OCTET_STRING *rid_key = NULL;
    const X509_NAME *rid_name = NULL;
    if (!OCSP_resp_get0_id(v->bs, &rid_key, &rid_name))
        return refuse(v, "malformed");
    const X509_ALGOR *alg = OCSP_resp_get0_tbs_sigalg(v->bs);
    const ASN1_BIT_STRING *sig = OCSP_resp_get0_signature(v->bs);
    if (alg == NULL || sig == NULL)
        return refuse(v, "malformed");

    const STACK_OF(X509) *certs = OCSP_resp_get0_certs(v->bs);
    int n_certs = certs == NULL ? 0 : sk_X509_num(certs);
    int saw_bad_signature = 0;
    /* Candidates: -2 trusted signer, -1 issuer, 0.. the response's certs. */
    for (int i = -2; i < n_certs; i++) {
        X509 *cand = i == -2   ? v->opts->trusted_signer
                     : i == -1 ? v->opts->issuer
                               : sk_X509_value(certs, i);
        if (cand == NULL || !responder_id_matches(cand, rid_key, rid_name))
            continue;
        tg_ocsp_signer_kind_t kind = TG_OCSP_SIGNER_DELEGATED;
        if (i == -2)
            kind = TG_OCSP_SIGNER_TRUSTED;
        else if (i == -1 || X509_cmp(cand, v->opts->issuer) == 0)
            kind = TG_OCSP_SIGNER_ISSUER;
        if (kind == TG_OCSP_SIGNER_DELEGATED) {
            int ok = delegate_authorised(v, cand);
            if (ok < 0)
                return failed(v, ok, "internal_error");
            if (!ok)
                continue;
        }
        EVP_PKEY *key = X509_get0_pubkey(cand);
        if (key == NULL) {
            ERR_clear_error();
            continue;
        }
        int rc = tg_pki_verify_signature(alg, sig, v->tbs, v->tbs_len, key);
        if (rc == TG_ENOMEM)
            return failed(v, rc, "internal_error");
        if (rc == 0) {
            v->signer = cand;
            v->res->signer = kind;
            return 0;
        }
        saw_bad_signature = 1;
    }
    return refuse(v, saw_bad_signature ? "bad_signature" : "unauthorized_signer");
}

/* RFC 6960 §4.4.1: extnValue is the DER of Nonce ::= OCTET STRING. */
static int nonce_equals(const ASN1_OCTET_STRING *value, const uint8_t *nonce, size_t nonce_len)
{
    uint8_t want[3 + TG_NONCE_MAX_LEN];
    size_t n = 0;
    want[n++] = TAG_OCTET_STRING;
    if (nonce_len >= 0x80)
        want[n++] = 0x81;
    want[n++] = (uint8_t)nonce_len;
    memcpy(want + n, nonce, nonce_len);
    n += nonce_len;
    return (size_t)ASN1_STRING_length(value) == n &&
           memcmp(ASN1_STRING_get0_data(value), want, n) == 0;
}

static int check_response_extensions(vctx_t *v)
{
    X509_EXTENSION *nonce = NULL;
    int n = OCSP_BASICRESP_get_ext_count(v->bs);
    for (int i = 0; i < n; i++) {
        X509_EXTENSION *ext = OCSP_BASICRESP_get_ext(v->bs, i);
        if (ext == NULL)
            return refuse(v, "malformed");
        if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) == NID_id_pkix_OCSP_Nonce) {
            if (nonce != NULL)
                return refuse(v, "malformed");
            nonce = ext;
        } else if (X509_EXTENSION_get_critical(ext)) {
            return refuse(v, "critical_extension");
        }
    }
    const tg_ocsp_verify_opts_t *o = v->opts;
    if (o->nonce == NULL)
        return 0;
    if (nonce == NULL)
        return o->allow_missing_nonce ? 0 : refuse(v, "nonce_mismatch");
    if (!nonce_equals(X509_EXTENSION_get_data(nonce), o->nonce, o->nonce_len))
        return refuse(v, "nonce_mismatch");
    v->res->nonce_echoed = 1;
    return 0;
}

/* Exactly one SingleResponse for the CertID asked about. */
static int find_single(vctx_t *v, OCSP_SINGLERESP **out_single)
{
    OCSP_SINGLERESP *match = NULL;
    int n = OCSP_resp_count(v->bs);
    for (int i = 0; i < n; i++) {
        OCSP_SINGLERESP *single = OCSP_resp_get0(v->bs, i);
        if (single == NULL)
            return refuse(v, "malformed");
        tg_certid_t id;
        /* The getter is const; tg_pki_certid_from_ocsp only reads. */
        if (tg_pki_certid_from_ocsp((OCSP_CERTID *)OCSP_SINGLERESP_get0_id(single), &id) != 0)
            continue; /* another hash algorithm, or unusable: not ours */
        if (!tg_certid_eq(&id, v->opts->certid))
            continue;
        if (match != NULL)
            return refuse(v, "duplicate_single");
        match = single;
    }
    if (match == NULL)
        return refuse(v, "certid_mismatch");
    int n_ext = OCSP_SINGLERESP_get_ext_count(match);
    for (int i = 0; i < n_ext; i++) {
        X509_EXTENSION *ext = OCSP_SINGLERESP_get_ext(match, i);
        if (ext == NULL)
            return refuse(v, "malformed");
        if (X509_EXTENSION_get_critical(ext))
            return refuse(v, "critical_extension");
    }
    *out_single = match;
    return 0;
}

/* The revocationReason of a revoked SingleResponse, read from its DER:
 * OpenSSL hands it over as an int cut from a long, so 2^32 + 1 would pass
 * as keyCompromise. Returns 0 with *out_reason a CRLReason (0..10, not 7)
 * or TG_CRL_REASON_NONE when absent; TG_EMALFORMED otherwise. */
static int reason_from_der(OCSP_SINGLERESP *single, int *out_reason)
{
    unsigned char *der = NULL;
    int n = i2d_OCSP_SINGLERESP(single, &der);
    int rc = TG_EMALFORMED;
    const uint8_t *p = der, *end = der + (n > 0 ? n : 0), *c;
    size_t len;
    uint8_t tag;
    /* SingleResponse SEQUENCE { certID, certStatus [1] IMPLICIT RevokedInfo
     * { revocationTime, revocationReason [0] EXPLICIT ENUMERATED OPTIONAL } */
    if (n <= 0 || tg_pki_der_next(&p, end, &tag, &c, &len) != 0 || tag != 0x30)
        goto out;
    p = c;
    end = c + len;
    if (tg_pki_der_next(&p, end, &tag, &c, &len) != 0 || tag != 0x30 || /* certID */
        tg_pki_der_next(&p, end, &tag, &c, &len) != 0 || tag != 0xa1)
        goto out;
    p = c;
    end = c + len;
    if (tg_pki_der_next(&p, end, &tag, &c, &len) != 0 || tag != 0x18) /* revocationTime */
        goto out;
    if (p == end) {
        *out_reason = TG_CRL_REASON_NONE;
        rc = 0;
        goto out;
    }
    if (tg_pki_der_next(&p, end, &tag, &c, &len) != 0 || tag != 0xa0 || p != end)
        goto out;
    p = c;
    end = c + len;
    if (tg_pki_der_next(&p, end, &tag, &c, &len) != 0 || tag != 0x0a || len != 1 || p != end ||
        c[0] > 10 || c[0] == 7)
        goto out;
    *out_reason = c[0];
    rc = 0;
out:
    OPENSSL_free(der);
    return rc;
}

static int read_single(vctx_t *v, OCSP_SINGLERESP *single)
{
    tg_ocsp_verify_result_t *r = v->res;
    const tg_ocsp_verify_opts_t *o = v->opts;
    int reason = -1;
    ASN1_GENERALIZEDTIME *rev = NULL, *this_upd = NULL, *next_upd = NULL;
    int st = OCSP_single_get0_status(single, &reason, &rev, &this_upd, &next_upd);
    switch (st) {
    case V_OCSP_CERTSTATUS_GOOD: r->status = TG_CERT_GOOD; break;
    case V_OCSP_CERTSTATUS_UNKNOWN: r->status = TG_CERT_UNKNOWN; break;
    case V_OCSP_CERTSTATUS_REVOKED:
        r->status = TG_CERT_REVOKED;
        if (to_time(rev, &r->revocation_time) != 0)
            return refuse(v, "malformed");
        (void)reason; /* see reason_from_der */
        if (reason_from_der(single, &r->revocation_reason) != 0)
            return refuse(v, "malformed");
        break;
    default: return refuse(v, "malformed");
    }
    if (to_time(this_upd, &r->this_update) != 0)
        return refuse(v, "malformed");
    if (next_upd != NULL) {
        if (to_time(next_upd, &r->next_update) != 0 || r->next_update < r->this_update)
            return refuse(v, "malformed");
    }

    if (r->this_update > o->now + TG_OCSP_MAX_SKEW_S)
        return refuse(v, "not_yet_valid");
    if (next_upd != NULL) {
        if (r->next_update < o->now)
            return refuse(v, "expired");
    } else if (o->max_age_s > 0 && r->this_update < o->now - (time_t)o->max_age_s) {
        return refuse(v, "expired");
    }
    return 0;
}

static int verify(vctx_t *v, const uint8_t *der, size_t len)
{
    int rc = parse(v, der, len);
    if (rc != 0)
        return rc;
    rc = find_signer(v);
    if (rc != 0)
        return rc;

    /* The signer must have been valid when it signed (BoringSSL's
     * BAD_PRODUCED_AT), and producedAt must not lie ahead of us. */
    if (to_time(OCSP_resp_get0_produced_at(v->bs), &v->res->produced_at) != 0)
        return refuse(v, "malformed");
    if (!valid_at(v->signer, v->res->produced_at))
        return refuse(v, "bad_produced_at");
    if (v->res->produced_at > v->opts->now + TG_OCSP_MAX_SKEW_S)
        return refuse(v, "not_yet_valid");

    rc = check_response_extensions(v);
    if (rc != 0)
        return rc;
    OCSP_SINGLERESP *single = NULL;
    rc = find_single(v, &single);
    if (rc != 0)
        return rc;
    return read_single(v, single);
}

int tg_ocsp_verify_response(const uint8_t *der, size_t len, const tg_ocsp_verify_opts_t *opts,
                            tg_ocsp_verify_result_t *out_result)
{
    if (out_result == NULL)
        return TG_EINVAL;
    memset(out_result, 0, sizeof(*out_result));
    out_result->error = "internal_error";
    out_result->revocation_reason = TG_CRL_REASON_NONE;
    if (opts == NULL || opts->issuer == NULL || opts->certid == NULL || der == NULL ||
        (opts->nonce != NULL && (opts->nonce_len < 1 || opts->nonce_len > TG_NONCE_MAX_LEN)))
        return TG_EINVAL;

    /* The CertID must name opts->issuer, or the answer would be checked
     * against the wrong CA. */
    const tg_certid_t *id = opts->certid;
    uint8_t name_hash[TG_HASH_MAX_LEN], key_hash[TG_HASH_MAX_LEN];
    if ((unsigned)id->alg >= TG_HASH_COUNT || id->hash_len != tg_hash_alg_len(id->alg))
        return TG_EINVAL;
    int rc = tg_pki_issuer_hashes(opts->issuer, id->alg, name_hash, key_hash);
    if (rc != 0)
        return rc;
    if (memcmp(name_hash, id->name_hash, id->hash_len) != 0 ||
        memcmp(key_hash, id->key_hash, id->hash_len) != 0)
        return TG_EINVAL;

    vctx_t v = {.opts = opts, .res = out_result};
    rc = verify(&v, der, len);
    if (rc == 0)
        out_result->error = NULL;
    OCSP_BASICRESP_free(v.bs);
    OCSP_RESPONSE_free(v.resp);
    ERR_clear_error();
    return rc;
}
