/* SM2-aware signing and verification (see pki/sm2.h and
 * research/sm2-openssl.md). */
#include "pki/sm2.h"

#include "pki/pki_internal.h"

#include "common/log.h"

#include <openssl/asn1.h>
#include <openssl/asn1t.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <limits.h>
#include <string.h>

int tg_pki_peer_error(void)
{
    int rc = TG_EMALFORMED;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
            rc = TG_ENOMEM;
    }
    return rc;
}

static int is_eddsa(const EVP_PKEY *pkey)
{
    return EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448");
}

int tg_pki_is_sm2(const EVP_PKEY *pkey)
{
    return pkey != NULL && EVP_PKEY_is_a(pkey, "SM2");
}

int tg_pki_default_md(const EVP_PKEY *pkey, const EVP_MD **out_md)
{
    if (pkey == NULL)
        return TG_EUNSUPPORTED;
    if (tg_pki_is_sm2(pkey)) {
        *out_md = EVP_sm3();
        return 0;
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) { /* not "RSA-PSS": a PSS-only key has its own rules */
        *out_md = EVP_sha256();
        return 0;
    }
    if (is_eddsa(pkey)) {
        *out_md = NULL;
        return 0;
    }
    if (EVP_PKEY_is_a(pkey, "EC")) {
        char name[64];
        size_t n = 0;
        if (EVP_PKEY_get_group_name(pkey, name, sizeof(name), &n) != 1) {
            ERR_clear_error(); /* explicit curve parameters: not ours */
            return TG_EUNSUPPORTED;
        }
        int nid = OBJ_txt2nid(name);
        if (nid == NID_undef)
            nid = EC_curve_nist2nid(name);
        ERR_clear_error();
        switch (nid) {
        case NID_X9_62_prime256v1: *out_md = EVP_sha256(); return 0;
        case NID_secp384r1: *out_md = EVP_sha384(); return 0;
        case NID_secp521r1: *out_md = EVP_sha512(); return 0;
        default: return TG_EUNSUPPORTED;
        }
    }
    return TG_EUNSUPPORTED;
}

int tg_pki_set_sm2_id(X509 *cert)
{
    if (cert == NULL || X509_get_signature_nid(cert) != NID_SM2_with_SM3)
        return 0;
    ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();
    if (id == NULL || !ASN1_OCTET_STRING_set(id, (const unsigned char *)TG_SM2_ID, TG_SM2_ID_LEN)) {
        ASN1_OCTET_STRING_free(id);
        ERR_clear_error();
        return TG_ENOMEM;
    }
    X509_set0_distinguishing_id(cert, id); /* takes id, frees any earlier one */
    return 0;
}

/* SM2 goes with SM3 only (OpenSSL: "sm2sig_set_mdname: invalid digest");
 * EdDSA hashes internally and takes no digest. */
static int pick_md(EVP_PKEY *pkey, const EVP_MD **md)
{
    if (tg_pki_is_sm2(pkey)) {
        if (*md == NULL)
            *md = EVP_sm3();
        else if (EVP_MD_get_type(*md) != NID_sm3)
            return TG_EINVAL;
    } else if (is_eddsa(pkey) && *md != NULL) {
        return TG_EINVAL;
    }
    return 0;
}

int tg_pki_digest_sign_init(EVP_MD_CTX *mctx, EVP_PKEY *pkey, const EVP_MD *md)
{
    if (mctx == NULL || pkey == NULL)
        return TG_EINVAL;
    int rc = pick_md(pkey, &md);
    if (rc != 0)
        return rc;
    EVP_PKEY_CTX *pctx = NULL; /* owned by mctx */
    if (EVP_DigestSignInit(mctx, &pctx, md, NULL, pkey) != 1) {
        tg_log_openssl("EVP_DigestSignInit");
        return TG_ECRYPTO;
    }
    /* GM/T 0009-2012 default ID; OpenSSL 3.0 would use an empty one. */
    if (tg_pki_is_sm2(pkey) && EVP_PKEY_CTX_set1_id(pctx, TG_SM2_ID, TG_SM2_ID_LEN) != 1) {
        tg_log_openssl("EVP_PKEY_CTX_set1_id");
        return TG_ECRYPTO;
    }
    return 0;
}

int tg_pki_digest_verify_init(EVP_MD_CTX *mctx, EVP_PKEY *pkey, const EVP_MD *md)
{
    if (mctx == NULL || pkey == NULL)
        return TG_EINVAL;
    int rc = pick_md(pkey, &md);
    if (rc != 0)
        return rc;
    EVP_PKEY_CTX *pctx = NULL; /* owned by mctx */
    if (EVP_DigestVerifyInit(mctx, &pctx, md, NULL, pkey) != 1)
        return tg_pki_peer_error();
    if (tg_pki_is_sm2(pkey) && EVP_PKEY_CTX_set1_id(pctx, TG_SM2_ID, TG_SM2_ID_LEN) != 1)
        return tg_pki_peer_error();
    return 0;
}

int tg_pki_der_next(const uint8_t **p, const uint8_t *end, uint8_t *out_tag,
                    const uint8_t **out_content, size_t *out_len)
{
    const uint8_t *q = *p;
    if (q == NULL || end < q || end - q < 2)
        return TG_EMALFORMED;
    uint8_t tag = *q++;
    if ((tag & 0x1f) == 0x1f)
        return TG_EMALFORMED; /* high tag numbers: none in the structures we walk */
    size_t len = *q++;
    if (len & 0x80) {
        size_t k = len & 0x7f;
        if (k == 0 || k > sizeof(size_t) || (size_t)(end - q) < k)
            return TG_EMALFORMED; /* indefinite, or too long */
        len = 0;
        for (size_t i = 0; i < k; i++)
            len = (len << 8) | *q++;
    }
    if ((size_t)(end - q) < len)
        return TG_EMALFORMED;
    *out_tag = tag;
    *out_content = q;
    *out_len = len;
    *p = q + len;
    return 0;
}

#define TAG_SEQUENCE 0x30

int tg_pki_der_tbs(const uint8_t *der, size_t len, const uint8_t **out_tbs, size_t *out_tbs_len)
{
    if (der == NULL)
        return TG_EMALFORMED;
    const uint8_t *p = der, *end = der + len, *c;
    uint8_t tag;
    size_t n;
    if (tg_pki_der_next(&p, end, &tag, &c, &n) != 0 || tag != TAG_SEQUENCE || p != end)
        return TG_EMALFORMED;
    const uint8_t *tbs = c;
    p = c;
    if (tg_pki_der_next(&p, end, &tag, &c, &n) != 0 || tag != TAG_SEQUENCE)
        return TG_EMALFORMED;
    *out_tbs = tbs;
    *out_tbs_len = (size_t)(p - tbs);
    return 0;
}

/* Digests nobody may sign with any more. SHA-1 stays: CAs still sign OCSP
 * responses with it, and the CertID hash is a separate matter. */
static int md_refused(int mdnid)
{
    return mdnid == NID_md2 || mdnid == NID_md4 || mdnid == NID_md5 || mdnid == NID_md5_sha1;
}

/* Everything OBJ_find_sigid_algs cannot describe alone (RSA-PSS with its
 * parameters, ...): ASN1_item_verify_ex over the exact bytes, by wrapping
 * them in an ASN1_ANY of type SEQUENCE, which i2d emits verbatim. */
static int verify_item(const X509_ALGOR *alg, const ASN1_BIT_STRING *sig, const uint8_t *tbs,
                       size_t tbs_len, EVP_PKEY *key)
{
    if (tbs_len > INT_MAX)
        return TG_EMALFORMED;
    int rc = TG_ENOMEM;
    ASN1_OCTET_STRING *id = NULL;
    ASN1_TYPE *any = ASN1_TYPE_new();
    ASN1_STRING *seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
    if (any == NULL || seq == NULL || !ASN1_STRING_set(seq, tbs, (int)tbs_len))
        goto out;
    ASN1_TYPE_set(any, V_ASN1_SEQUENCE, seq); /* takes seq */
    seq = NULL;
    if (tg_pki_is_sm2(key)) {
        id = ASN1_OCTET_STRING_new();
        if (id == NULL ||
            !ASN1_OCTET_STRING_set(id, (const unsigned char *)TG_SM2_ID, TG_SM2_ID_LEN))
            goto out;
    }
    rc = ASN1_item_verify_ex(ASN1_ITEM_rptr(ASN1_ANY), alg, sig, any, id, key, NULL, NULL) == 1
             ? 0
             : TG_EMALFORMED;
out:
    if (rc != 0) {
        int e = tg_pki_peer_error();
        if (e == TG_ENOMEM)
            rc = e;
    }
    ASN1_OCTET_STRING_free(id);
    ASN1_STRING_free(seq);
    ASN1_TYPE_free(any);
    return rc;
}

int tg_pki_verify_signature(const X509_ALGOR *alg, const ASN1_BIT_STRING *sig, const uint8_t *tbs,
                            size_t tbs_len, EVP_PKEY *key)
{
    if (alg == NULL || sig == NULL || tbs == NULL || key == NULL)
        return TG_EINVAL;

    const ASN1_OBJECT *obj = NULL;
    int ptype = V_ASN1_UNDEF;
    const void *pval = NULL;
    X509_ALGOR_get0(&obj, &ptype, &pval, alg);
    int mdnid = NID_undef, pknid = NID_undef;
    int known = obj != NULL && OBJ_find_sigid_algs(OBJ_obj2nid(obj), &mdnid, &pknid);
    if (known && md_refused(mdnid))
        return TG_EMALFORMED;
    /* A signature is a whole number of octets (as ASN1_item_verify checks);
     * the struct is public in OpenSSL 3.0 and the flags have no getter. */
    if (ASN1_STRING_type(sig) == V_ASN1_BIT_STRING && (sig->flags & 0x07) != 0)
        return TG_EMALFORMED;

    /* The common algorithms carry no parameters (or NULL for RSA). */
    int simple = known && (ptype == V_ASN1_UNDEF || ptype == V_ASN1_NULL) &&
                 ((mdnid != NID_undef && (pknid == NID_rsaEncryption ||
                                          pknid == NID_X9_62_id_ecPublicKey || pknid == NID_sm2)) ||
                  (mdnid == NID_undef && (pknid == NID_ED25519 || pknid == NID_ED448)));
    if (!simple)
        return verify_item(alg, sig, tbs, tbs_len, key);

    /* The key must be of the algorithm's type: an SM2 key never verifies an
     * "ecdsa-with-SHA256" signature, nor an EC key an SM2 one. */
    if (!EVP_PKEY_is_a(key, OBJ_nid2sn(pknid)))
        return TG_EMALFORMED;
    const EVP_MD *md = NULL;
    if (mdnid != NID_undef && (md = EVP_get_digestbynid(mdnid)) == NULL)
        return TG_EMALFORMED;

    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    if (mctx == NULL)
        return TG_ENOMEM;
    int rc = tg_pki_digest_verify_init(mctx, key, md);
    if (rc == 0) {
        /* One shot: EdDSA needs the whole message; the others stream it. */
        if (EVP_DigestVerify(mctx, ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig), tbs,
                             tbs_len) != 1)
            rc = tg_pki_peer_error();
    }
    EVP_MD_CTX_free(mctx);
    return rc;
}

int tg_pki_x509_verify_sm2aware(X509 *cert, EVP_PKEY *issuer_key)
{
    if (cert == NULL || issuer_key == NULL)
        return TG_EINVAL;
    const ASN1_BIT_STRING *sig = NULL;
    const X509_ALGOR *alg = NULL;
    X509_get0_signature(&sig, &alg, cert);
    if (alg == NULL || sig == NULL || X509_ALGOR_cmp(alg, X509_get0_tbs_sigalg(cert)) != 0)
        return TG_EMALFORMED;

    /* i2d of a parsed certificate returns the bytes it was parsed from
     * (OpenSSL caches the TBS encoding). */
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);
    if (n <= 0)
        return tg_pki_peer_error();
    const uint8_t *tbs;
    size_t tbs_len;
    int rc = tg_pki_der_tbs(der, (size_t)n, &tbs, &tbs_len);
    if (rc == 0)
        rc = tg_pki_verify_signature(alg, sig, tbs, tbs_len, issuer_key);
    OPENSSL_free(der);
    return rc;
}

int tg_pki_crl_verify(X509_CRL *crl, const uint8_t *der, size_t len, EVP_PKEY *issuer_key)
{
    if (crl == NULL || der == NULL || issuer_key == NULL)
        return TG_EINVAL;

    /* CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm,
     *                                signatureValue BIT STRING }
     * TBSCertList ::= SEQUENCE { version INTEGER OPTIONAL,
     *                            signature AlgorithmIdentifier, ... } */
    const uint8_t *p = der, *end = der + len, *c, *body;
    uint8_t tag;
    size_t n;
    if (tg_pki_der_next(&p, end, &tag, &body, &n) != 0 || tag != TAG_SEQUENCE || p != end)
        return TG_EMALFORMED;
    p = body;
    const uint8_t *tbs = p;
    if (tg_pki_der_next(&p, end, &tag, &c, &n) != 0 || tag != TAG_SEQUENCE)
        return TG_EMALFORMED;
    size_t tbs_len = (size_t)(p - tbs);
    const uint8_t *tbs_end = p;
    const uint8_t *outer_alg = p;
    if (tg_pki_der_next(&p, end, &tag, &c, &n) != 0 || tag != TAG_SEQUENCE)
        return TG_EMALFORMED;
    size_t outer_alg_len = (size_t)(p - outer_alg);
    const uint8_t *bits;
    size_t bits_len;
    if (tg_pki_der_next(&p, end, &tag, &bits, &bits_len) != 0 || tag != V_ASN1_BIT_STRING ||
        p != end || bits_len < 1)
        return TG_EMALFORMED;

    /* The inner algorithm must equal the outer one (RFC 5280 §5.1.1.2),
     * compared as encoded. */
    const uint8_t *q = tbs;
    if (tg_pki_der_next(&q, tbs_end, &tag, &c, &n) != 0)
        return TG_EMALFORMED;
    q = c;
    const uint8_t *inner_alg = q;
    if (tg_pki_der_next(&q, tbs_end, &tag, &c, &n) != 0)
        return TG_EMALFORMED;
    if (tag == V_ASN1_INTEGER) {
        inner_alg = q;
        if (tg_pki_der_next(&q, tbs_end, &tag, &c, &n) != 0)
            return TG_EMALFORMED;
    }
    if (tag != TAG_SEQUENCE || (size_t)(q - inner_alg) != outer_alg_len ||
        memcmp(inner_alg, outer_alg, outer_alg_len) != 0)
        return TG_EMALFORMED;

    /* der must be what crl was parsed from: the signatures agree. */
    const ASN1_BIT_STRING *sig = NULL;
    const X509_ALGOR *alg = NULL;
    X509_CRL_get0_signature(crl, &sig, &alg);
    if (sig == NULL || alg == NULL || (size_t)ASN1_STRING_length(sig) != bits_len - 1 ||
        memcmp(ASN1_STRING_get0_data(sig), bits + 1, bits_len - 1) != 0)
        return TG_EMALFORMED;

    return tg_pki_verify_signature(alg, sig, tbs, tbs_len, issuer_key);
}

/* X509_sign_ctx and X509_CRL_sign_ctx differ only in the object. */
static int sign_init(EVP_MD_CTX **out_mctx, EVP_PKEY *key, const EVP_MD *md)
{
    if (md == NULL) {
        int rc = tg_pki_default_md(key, &md);
        if (rc != 0) {
            tg_error("signing: unsupported key type %s", EVP_PKEY_get0_type_name(key));
            return rc;
        }
    }
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    if (mctx == NULL) {
        tg_log_openssl("EVP_MD_CTX_new");
        return TG_ENOMEM;
    }
    int rc = tg_pki_digest_sign_init(mctx, key, md);
    if (rc != 0) {
        EVP_MD_CTX_free(mctx);
        return rc;
    }
    *out_mctx = mctx;
    return 0;
}

int tg_pki_sign_x509(X509 *cert, EVP_PKEY *key, const EVP_MD *md)
{
    if (cert == NULL || key == NULL)
        return TG_EINVAL;
    EVP_MD_CTX *mctx = NULL;
    int rc = sign_init(&mctx, key, md);
    if (rc != 0)
        return rc;
    if (X509_sign_ctx(cert, mctx) <= 0) {
        tg_log_openssl("X509_sign_ctx");
        rc = TG_ECRYPTO;
    }
    EVP_MD_CTX_free(mctx);
    if (rc == 0)
        rc = tg_pki_set_sm2_id(cert);
    return rc;
}

int tg_pki_sign_crl(X509_CRL *crl, EVP_PKEY *key, const EVP_MD *md)
{
    if (crl == NULL || key == NULL)
        return TG_EINVAL;
    EVP_MD_CTX *mctx = NULL;
    int rc = sign_init(&mctx, key, md);
    if (rc != 0)
        return rc;
    if (X509_CRL_sign_ctx(crl, mctx) <= 0) {
        tg_log_openssl("X509_CRL_sign_ctx");
        rc = TG_ECRYPTO;
    }
    EVP_MD_CTX_free(mctx);
    return rc;
}
