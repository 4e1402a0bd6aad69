/* The responder signer (see pki/signer.h). */
#include "pki/signer.h"

#include "common/log.h"
#include "pki/sm2.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A signature AlgorithmIdentifier is a dozen bytes (RSA: 15). */
#define SIGALG_MAX 64
/* [2] EXPLICIT OCTET STRING of a SHA-1 hash: A2 16 04 14 <20 bytes>. */
#define RID_LEN (4 + TG_SIGNER_KEY_HASH_LEN)

struct tg_signer {
    X509 *cert;
    EVP_PKEY *key;
    const EVP_MD *md; /* NULL for Ed25519 */
    tg_signer_alg_t alg;
    size_t max_sig_len;
    uint8_t key_hash[TG_SIGNER_KEY_HASH_LEN];
    uint8_t rid_der[RID_LEN];
    uint8_t sigalg_der[SIGALG_MAX];
    size_t sigalg_len;
    unsigned char *cert_der; /* OPENSSL_malloc'd by i2d_X509 */
    size_t cert_der_len;
    uint64_t id; /* unique in the process: keys the per-thread contexts */
    atomic_int refs;
};

static atomic_uint_fast64_t next_signer_id = 1;

const char *tg_signer_alg_name(tg_signer_alg_t alg)
{
    switch (alg) {
    case TG_SIGNER_RSA: return "rsa";
    case TG_SIGNER_ECDSA_P256: return "ecdsa-p256";
    case TG_SIGNER_ECDSA_P384: return "ecdsa-p384";
    case TG_SIGNER_ED25519: return "ed25519";
    case TG_SIGNER_SM2: return "sm2";
    }
    return "unknown";
}

/* Never prompt on a terminal for a passphrase: encrypted keys fail. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Which of the supported algorithms key is, and the digest that goes with
 * it. Logs why a key is refused. */
static int detect_alg(EVP_PKEY *key, tg_signer_alg_t *out_alg, const EVP_MD **out_md)
{
    const char *type = EVP_PKEY_get0_type_name(key);
    if (type == NULL)
        type = "unknown";
    if (tg_pki_is_sm2(key)) {
        *out_alg = TG_SIGNER_SM2;
        *out_md = EVP_sm3();
        return 0;
    }
    if (EVP_PKEY_is_a(key, "RSA")) {
        int bits = EVP_PKEY_get_bits(key);
        if (bits < 2048) {
            tg_error("signer: RSA key of %d bits; at least 2048 are required", bits);
            return TG_ECONFIG;
        }
        *out_alg = TG_SIGNER_RSA;
        *out_md = EVP_sha256();
        return 0;
    }
    if (EVP_PKEY_is_a(key, "ED25519")) {
        *out_alg = TG_SIGNER_ED25519;
        *out_md = NULL;
        return 0;
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        const EVP_MD *md = NULL;
        if (tg_pki_default_md(key, &md) == 0 && md != NULL) {
            int nid = EVP_MD_get_type(md);
            if (nid == NID_sha256 || nid == NID_sha384) {
                *out_alg = nid == NID_sha256 ? TG_SIGNER_ECDSA_P256 : TG_SIGNER_ECDSA_P384;
                *out_md = md;
                return 0;
            }
        }
        char group[64] = "unknown";
        size_t n = 0;
        if (EVP_PKEY_get_group_name(key, group, sizeof(group), &n) != 1)
            ERR_clear_error();
        tg_error("signer: EC key on curve %s; supported: P-256, P-384, SM2", group);
        return TG_EUNSUPPORTED;
    }
    tg_error("signer: %s keys are not supported (RSA, ECDSA P-256/P-384, Ed25519, SM2 are)", type);
    return TG_EUNSUPPORTED;
}

/* The signature AlgorithmIdentifier exactly as OpenSSL's provider encodes
 * it when it signs (ASN1_item_sign_ctx asks the same question). */
static int sigalg_der(tg_signer_t *s)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    if (mctx == NULL) {
        tg_log_openssl("EVP_MD_CTX_new");
        return TG_ENOMEM;
    }
    int rc = tg_pki_digest_sign_init(mctx, s->key, s->md);
    if (rc != 0)
        goto out;
    OSSL_PARAM params[2] = {
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, s->sigalg_der,
                                sizeof(s->sigalg_der)),
        OSSL_PARAM_END,
    };
    EVP_PKEY_CTX *pctx = EVP_MD_CTX_get_pkey_ctx(mctx);
    if (pctx == NULL || EVP_PKEY_CTX_get_params(pctx, params) != 1 ||
        !OSSL_PARAM_modified(&params[0]) || params[0].return_size < 2 ||
        params[0].return_size > sizeof(s->sigalg_der) || s->sigalg_der[0] != 0x30) {
        tg_log_openssl("signer: signature AlgorithmIdentifier");
        rc = TG_ECRYPTO;
        goto out;
    }
    s->sigalg_len = params[0].return_size;
out:
    EVP_MD_CTX_free(mctx);
    return rc;
}

/* RFC 6960 §4.2.2.2: a delegated responder carries id-kp-OCSPSigning; the
 * CA itself needs nothing. Problems are warnings: the operator may know
 * better (a locally trusted responder, a clock that is off). */
static void warn_about(X509 *cert)
{
    char subject[256];
    if (X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject)) == NULL) {
        ERR_clear_error();
        snprintf(subject, sizeof(subject), "(unprintable subject)");
    }
    uint32_t flags = X509_get_extension_flags(cert);
    if (flags & EXFLAG_INVALID)
        tg_warn("signer certificate %s has invalid extensions", subject);
    if (!(flags & EXFLAG_CA)) {
        if (!(flags & EXFLAG_XKUSAGE) || !(X509_get_extended_key_usage(cert) & XKU_OCSP_SIGN))
            tg_warn("signer certificate %s is not a CA and lacks the id-kp-OCSPSigning "
                    "extended key usage: clients will refuse its responses (RFC 6960 "
                    "§4.2.2.2)",
                    subject);
        if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE))
            tg_warn("signer certificate %s: keyUsage lacks digitalSignature", subject);
    }
    if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0)
        tg_warn("signer certificate %s is not valid yet", subject);
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)
        tg_warn("signer certificate %s has expired", subject);
    ERR_clear_error();
}

int tg_signer_new(X509 *cert, EVP_PKEY *key, tg_signer_t **out_signer)
{
    if (cert == NULL || key == NULL || out_signer == NULL)
        return TG_EINVAL;

    tg_signer_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        tg_error("signer: out of memory");
        return TG_ENOMEM;
    }
    s->id = atomic_fetch_add(&next_signer_id, 1);
    atomic_init(&s->refs, 1);
    int rc = detect_alg(key, &s->alg, &s->md);
    if (rc != 0)
        goto fail;

    if (X509_check_private_key(cert, key) != 1) {
        tg_log_openssl("signer: the private key does not match the certificate");
        rc = TG_ECONFIG;
        goto fail;
    }
    int size = EVP_PKEY_get_size(key);
    if (size <= 0 || size > TG_SIGNER_MAX_SIG_LEN) {
        tg_error("signer: signatures of %d bytes are not supported (at most %d)", size,
                 TG_SIGNER_MAX_SIG_LEN);
        rc = TG_EUNSUPPORTED;
        goto fail;
    }
    s->max_sig_len = (size_t)size;

    if (!X509_up_ref(cert)) {
        tg_log_openssl("X509_up_ref");
        rc = TG_ECRYPTO;
        goto fail;
    }
    s->cert = cert;
    if (!EVP_PKEY_up_ref(key)) {
        tg_log_openssl("EVP_PKEY_up_ref");
        rc = TG_ECRYPTO;
        goto fail;
    }
    s->key = key;

    /* RFC 6960 §4.2.1: KeyHash is the SHA-1 of the subjectPublicKey BIT
     * STRING's value, without tag, length and unused-bits octet. */
    unsigned int hlen = 0;
    if (!X509_pubkey_digest(cert, EVP_sha1(), s->key_hash, &hlen) ||
        hlen != TG_SIGNER_KEY_HASH_LEN) {
        tg_log_openssl("signer: X509_pubkey_digest");
        rc = TG_ECRYPTO;
        goto fail;
    }
    s->rid_der[0] = 0xa2; /* byKey [2] EXPLICIT */
    s->rid_der[1] = 2 + TG_SIGNER_KEY_HASH_LEN;
    s->rid_der[2] = 0x04; /* KeyHash ::= OCTET STRING */
    s->rid_der[3] = TG_SIGNER_KEY_HASH_LEN;
    memcpy(s->rid_der + 4, s->key_hash, TG_SIGNER_KEY_HASH_LEN);

    rc = sigalg_der(s);
    if (rc != 0)
        goto fail;

    int n = i2d_X509(cert, &s->cert_der);
    if (n <= 0) {
        tg_log_openssl("signer: i2d_X509");
        rc = TG_ECRYPTO;
        goto fail;
    }
    s->cert_der_len = (size_t)n;

    warn_about(cert);
    *out_signer = s;
    return 0;

fail:
    tg_signer_free(s);
    return rc;
}

/* Reads the first PEM certificate (out_cert) or private key (out_key) in
 * path; logs failures. */
static int read_pem(const char *path, const char *what, X509 **out_cert, EVP_PKEY **out_key)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        tg_error("signer %s %s: %s", what, path, strerror(errno));
        return TG_EIO;
    }
    int ok;
    if (out_cert != NULL) {
        *out_cert = PEM_read_X509(f, NULL, no_password, NULL);
        ok = *out_cert != NULL;
    } else {
        *out_key = PEM_read_PrivateKey(f, NULL, no_password, NULL);
        ok = *out_key != NULL;
    }
    fclose(f);
    if (!ok) {
        char msg[512];
        snprintf(msg, sizeof(msg), "signer %s %s (unencrypted PEM expected)", what, path);
        tg_log_openssl(msg);
        return TG_ECRYPTO;
    }
    return 0;
}

int tg_signer_load(const char *cert_path, const char *key_path, tg_signer_t **out_signer)
{
    if (cert_path == NULL || key_path == NULL || out_signer == NULL)
        return TG_EINVAL;
    if (strncmp(key_path, "pkcs11:", 7) == 0) {
        tg_error("signer key %s: PKCS#11 keys are not supported yet; give a PEM key file",
                 key_path);
        return TG_EUNSUPPORTED;
    }
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int rc = read_pem(cert_path, "certificate", &cert, NULL);
    if (rc == 0)
        rc = read_pem(key_path, "key", NULL, &key);
    if (rc == 0)
        rc = tg_signer_new(cert, key, out_signer);
    if (rc == 0)
        tg_info("signer %s loaded (%s)", cert_path, tg_signer_alg_name((*out_signer)->alg));
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

tg_signer_t *tg_signer_ref(tg_signer_t *s)
{
    if (s != NULL)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void tg_signer_free(tg_signer_t *s)
{
    if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    OPENSSL_free(s->cert_der);
    X509_free(s->cert);
    EVP_PKEY_free(s->key);
    free(s);
}

tg_signer_alg_t tg_signer_alg(const tg_signer_t *s)
{
    return s->alg;
}

X509 *tg_signer_cert(const tg_signer_t *s)
{
    return s->cert;
}

const uint8_t *tg_signer_key_hash(const tg_signer_t *s)
{
    return s->key_hash;
}

tg_slice_t tg_signer_responder_id_der(const tg_signer_t *s)
{
    return TG_SLICE(s->rid_der, sizeof(s->rid_der));
}

tg_slice_t tg_signer_sigalg_der(const tg_signer_t *s)
{
    return TG_SLICE(s->sigalg_der, s->sigalg_len);
}

tg_slice_t tg_signer_cert_der(const tg_signer_t *s)
{
    return TG_SLICE(s->cert_der, s->cert_der_len);
}

size_t tg_signer_max_sig_len(const tg_signer_t *s)
{
    return s->max_sig_len;
}

/* Each signing thread keeps one initialised signing context for the last
 * signer it used and copies it for every signature: EVP_DigestSignInit
 * fetches the algorithms and sets up the key each time, which costs about
 * a fifth of an ECDSA P-256 signature. The template holds its own
 * reference to the key, so a signer freed meanwhile leaves nothing
 * dangling; it is replaced when the thread signs for another signer and
 * freed when the thread ends. */
typedef struct {
    uint64_t signer_id;
    EVP_MD_CTX *tmpl;
} sign_tls_t;

static pthread_key_t sign_tls_key;
static pthread_once_t sign_tls_once = PTHREAD_ONCE_INIT;
static int sign_tls_ok;

static void sign_tls_free(void *p)
{
    sign_tls_t *t = p;
    EVP_MD_CTX_free(t->tmpl);
    free(t);
}

static void sign_tls_init(void)
{
    sign_tls_ok = pthread_key_create(&sign_tls_key, sign_tls_free) == 0;
}

/* Initialises mctx for a signature by s: a copy of this thread's template
 * when it has one for s (made on first use), else a fresh init. */
static int sign_ctx_init(const tg_signer_t *s, EVP_MD_CTX *mctx)
{
    pthread_once(&sign_tls_once, sign_tls_init);
    sign_tls_t *t = sign_tls_ok ? pthread_getspecific(sign_tls_key) : NULL;
    if (t != NULL && t->signer_id == s->id && EVP_MD_CTX_copy_ex(mctx, t->tmpl) == 1)
        return 0;
    ERR_clear_error(); /* a failed copy falls back to a fresh init */
    int rc = tg_pki_digest_sign_init(mctx, s->key, s->md);
    if (rc != 0 || !sign_tls_ok)
        return rc;
    if (t == NULL) {
        if ((t = calloc(1, sizeof(*t))) == NULL)
            return 0;
        if (pthread_setspecific(sign_tls_key, t) != 0) {
            free(t);
            return 0;
        }
    }
    EVP_MD_CTX *tmpl = EVP_MD_CTX_new();
    if (tmpl != NULL && EVP_MD_CTX_copy_ex(tmpl, mctx) == 1) {
        EVP_MD_CTX_free(t->tmpl);
        t->tmpl = tmpl;
        t->signer_id = s->id;
    } else {
        EVP_MD_CTX_free(tmpl); /* not copyable (this provider): init each time */
        ERR_clear_error();
    }
    return 0;
}

int tg_signer_sign(const tg_signer_t *s, const uint8_t *msg, size_t len, uint8_t *out_sig,
                   size_t *inout_sig_len)
{
    if (s == NULL || (msg == NULL && len > 0) || out_sig == NULL || inout_sig_len == NULL ||
        *inout_sig_len < s->max_sig_len)
        return TG_EINVAL;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    if (mctx == NULL) {
        tg_log_openssl("EVP_MD_CTX_new");
        return TG_ENOMEM;
    }
    int rc = sign_ctx_init(s, mctx);
    if (rc == 0) {
        size_t sig_len = *inout_sig_len;
        if (EVP_DigestSign(mctx, out_sig, &sig_len, msg, len) != 1) {
            tg_log_openssl("EVP_DigestSign");
            rc = TG_ECRYPTO;
        } else {
            *inout_sig_len = sig_len;
        }
    }
    EVP_MD_CTX_free(mctx);
    return rc;
}
