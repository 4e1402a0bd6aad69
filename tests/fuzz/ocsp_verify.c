/* libFuzzer harness: tg_ocsp_verify_response (pki/ocsp_verify.h), the
 * check every response fetched from a CA's OCSP responder passes before it
 * is cached or relayed.
 *
 * At start-up a small world is built in memory: a P-256 CA with a
 * delegated responder (id-kp-OCSPSigning) and a separately trusted local
 * responder; an SM2 CA with an SM2 delegated responder (SM3 and the
 * GM/T 0009 ID, through pki/sm2.h); their CertIDs; and ten valid responses
 * made by trustgate's encoder (tg_ocsp_sign_response) and by OpenSSL's
 * (OCSP_basic_sign_ctx): good, revoked with and without a reason, unknown,
 * nonces (one of them critical), single and response extensions, several
 * and repeated SingleResponses, byName and byKey, with and without
 * certificates, signed by the CA, a delegated responder and a trusted one.
 * Each must be accepted with the expected answer, or start-up aborts.
 *
 * Each input is used twice:
 * 1. raw, as a response verified against each CA, with and without a
 *    nonce expectation;
 * 2. as a recipe on one of the valid responses. Byte 0: the response (low
 *    nibble), the mode (bit 4), whether every SingleResponse is repeated
 *    (bit 5, mode 1); byte 1: changes to the expectations (see
 *    make_opts); byte 2: the number of edits (mod 17); then the edits, 3
 *    bytes each (16-bit offset, xor); then the rest.
 *    Mode 0 edits the response as fetched (wrapping, signature,
 *    certificates: the signature and responder-authorisation paths); the
 *    rest's first byte, if any, truncates by that many bytes.
 *    Mode 1 edits tbsResponseData after appending the rest to its
 *    SingleResponses, and signs it again with the original signer's key,
 *    so that the checks behind the signature (producedAt, extensions,
 *    nonce, CertID match, duplicates, times) see almost-right input that
 *    the signature would otherwise stop.
 *
 * Checked for every input: no crash or leak; return code 0, TG_EMALFORMED
 * or TG_ENOMEM; on refusal a documented error name; on acceptance the
 * fields within their bounds and equal to what OpenSSL reads from the one
 * SingleResponse for the CertID asked about (and an accepted mode-0
 * response gives exactly the answer of its unedited original); an empty
 * OpenSSL error queue; the options unchanged.
 *
 * The keys are fixed and every ECDSA/SM2 signature is redrawn until it has
 * the longest encoding, so every response has the same layout on every run
 * and a recipe replays onto the same positions (only signature bytes
 * differ between runs); when a check fails, the response and the answer
 * are printed. TG_FUZZ_STATS=1 prints the refusal counts at exit. */
#include "common/log.h"
#include "pki/certid.h"
#include "pki/ocsp_sign.h"
#include "pki/ocsp_verify.h"
#include "pki/pki_internal.h"
#include "pki/signer.h"
#include "pki/sm2.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The response being checked, printed when a check fails: its signature
 * differs from run to run, so the recipe alone may not replay it. */
static const uint8_t *cur_der;
static size_t cur_len;
static const char *cur_what = "";
static const tg_ocsp_verify_result_t *cur_res;

static void check_failed(const char *file, int line, const char *expr)
{
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, expr);
    if (cur_res != NULL)
        fprintf(stderr,
                "result: error %s status %d revocation_time %lld reason %d this_update %lld "
                "next_update %lld produced_at %lld signer %d nonce_echoed %d\n",
                cur_res->error ? cur_res->error : "(none)", (int)cur_res->status,
                (long long)cur_res->revocation_time, cur_res->revocation_reason,
                (long long)cur_res->this_update, (long long)cur_res->next_update,
                (long long)cur_res->produced_at, (int)cur_res->signer, cur_res->nonce_echoed);
    if (cur_der != NULL) {
        fprintf(stderr, "response (%s path, %zu bytes):\n", cur_what, cur_len);
        for (size_t i = 0; i < cur_len; i++)
            fprintf(stderr, "%02x%s", cur_der[i], (i % 32 == 31 || i + 1 == cur_len) ? "\n" : "");
    }
    abort();
}

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            check_failed(__FILE__, __LINE__, #c);                                                  \
    } while (0)

/* The world's clock: every certificate and response time is relative to
 * it, and it is the "now" of the verification (2025-06-15). */
#define NOW ((time_t)1750000000)
#define DAY ((time_t)86400)
/* The longest DER ECDSA / SM2 signature on a 256-bit curve. */
#define SIG_LEN 72
#define MAX_EDITS 16
/* 0000-01-01T00:00:00Z, the earliest GeneralizedTime. */
#define TIME_MIN ((time_t)-62167219200LL)

/* Test keys, fixed so that responder key hashes and CertIDs are the same
 * on every run. Not secret. */
static const char pem_p256_ca[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgmK78br3b6irrpSrL\n"
    "WziJAVwlZO3xBV9eR3CegYw4k4KhRANCAAQC1/Q8cy4DvHT+8gWsiMxcJmWXver4\n"
    "PWtJpRNKVtJ6naa1LKoU9P1Dlyaaz7m+uSSCoYKD/mgKzJ4sOVOUCA1A\n"
    "-----END PRIVATE KEY-----\n";
static const char pem_p256_resp[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOzgGp9qA4vAQuBjF\n"
    "RLt+qzezILh0Z5okAPzw93ag04qhRANCAAS1Lyr8JSzeiFLImSyG3buyCjj0KXCY\n"
    "5lblQckz5w3Hwbu9HbqEv4Brilbk6P6UefVqjTnsCiB9UEf1/nJrWDj+\n"
    "-----END PRIVATE KEY-----\n";
static const char pem_p256_local[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgD8h84u4agB1f5JaM\n"
    "7k7PmtyjnLjyB2B4SgKCJ22wF7ihRANCAATDArN90JGDto1vibEyuW7shY9lhl8b\n"
    "rL3zM0U4qfV7d6G5sF3+1A7xM7Kh9DLBcLbe8qO0TeUoyXCOp1Q63yUO\n"
    "-----END PRIVATE KEY-----\n";
static const char pem_sm2_ca[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqBHM9VAYItBG0wawIBAQQgLP1ltjtMbHxJkQ06\n"
    "tz2/loaSc8Y5AyE55wLtqHmC5OehRANCAAS4gUsAX1m3tOXl2Yx5aLb6nH0u3cLz\n"
    "BuvPK1kr6T28E0l26+o6dUWC5CKWzRD9Tahb5xaAik8GII9Y93vmf9im\n"
    "-----END PRIVATE KEY-----\n";
static const char pem_sm2_resp[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqBHM9VAYItBG0wawIBAQQguh81eeRpsTQ1kLCR\n"
    "tKmzyhTtMrhWmJFnuOd9GaQzrXChRANCAATRrvuzDufVPCJ2HleaglQUvoUPrYa1\n"
    "W70AoE/i77M9hrOfpOYm4o+eSIObLXpZ5nIIi+REuGkMgvEO9CBsepnK\n"
    "-----END PRIVATE KEY-----\n";

static const uint8_t nonce16[16] = {0x6e, 0x6f, 0x6e, 0x63, 0x65, 0x2d, 0x66, 0x75,
                                    0x7a, 0x7a, 0x2d, 0x30, 0x31, 0x32, 0x33, 0x34};
static const uint8_t other_nonce[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static uint8_t nonce128[TG_NONCE_MAX_LEN]; /* filled at start-up */
static const uint8_t serial_main[] = {0x01, 0x02, 0x03, 0x04, 0x05};
static const uint8_t serial_other[] = {0x00, 0x80}; /* serial 0x80: DER needs the 00 */
/* id-pkix-ocsp-basic */
static const uint8_t oid_basic_tlv[] = {0x06, 0x09, 0x2b, 0x06, 0x01, 0x05,
                                        0x05, 0x07, 0x30, 0x01, 0x01};

/* One CA with its delegated responder. */
typedef struct {
    EVP_PKEY *ca_key, *resp_key;
    X509 *ca, *resp;
    tg_signer_t *ca_signer, *resp_signer;
    tg_certid_t id_main;  /* SHA-1 (P-256 world) or SM3 (SM2 world), serial_main */
    tg_certid_t id_other; /* SHA-256, serial_other */
} world_t;

enum { W_P256 = 0, W_SM2 = 1 };
static world_t worlds[2];
/* A responder certificate trusted outright (opts.trusted_signer): self-
 * signed, not issued by either CA, no id-kp-OCSPSigning. */
static EVP_PKEY *local_key;
static X509 *local_cert;
static tg_signer_t *local_signer;
/* Certificates with the P-256 delegated responder's name but the local
 * key, each unfit in one way: self-signed; issued by the CA without
 * id-kp-OCSPSigning; expired; fit, but not the key that signed. Put before
 * the real responder in one response, every check of a candidate runs. */
#define N_TWINS 4
static X509 *twins[N_TWINS];

/* A valid response and what it is checked against. */
typedef struct {
    const char *what;
    int world;
    const tg_certid_t *id;
    const uint8_t *nonce;
    size_t nonce_len;
    X509 *trusted;
    EVP_PKEY *key; /* the signer's, for mode 1 */
    const EVP_MD *md;
    uint8_t *der;
    size_t len;
    /* The pieces, as offsets into der: tbsResponseData (TLV), its
     * responses SEQUENCE (TLV start, content), the signatureAlgorithm TLV
     * and the certs [0] TLV (len 0 when absent). */
    size_t tbs_off, tbs_len, tbs_content_off;
    size_t resps_off, resps_content_off, resps_content_len, resps_end;
    size_t sigalg_off, sigalg_len, certs_off, certs_len;
    tg_ocsp_verify_result_t want; /* the answer under make_opts(mods 0) */
} base_t;

#define N_BASES 10
static base_t bases[N_BASES];

/* ---- statistics (TG_FUZZ_STATS) ---- */

static const char *const refusals[] = {
    "malformed",      "not_successful",  "unauthorized_signer",
    "bad_signature",  "bad_produced_at", "critical_extension",
    "nonce_mismatch", "certid_mismatch", "duplicate_single",
    "not_yet_valid",  "expired",
};
#define N_REFUSALS (sizeof(refusals) / sizeof(refusals[0]))
/* [path][0: accepted, 1 + i: refusals[i], N_REFUSALS + 1: ENOMEM] */
static unsigned long stats[3][N_REFUSALS + 2];

static void print_stats(void)
{
    static const char *const paths[3] = {"raw", "edit", "resign"};
    for (int p = 0; p < 3; p++) {
        fprintf(stderr, "ocsp_verify %-6s accepted=%lu", paths[p], stats[p][0]);
        for (size_t i = 0; i < N_REFUSALS; i++)
            fprintf(stderr, " %s=%lu", refusals[i], stats[p][i + 1]);
        fprintf(stderr, " enomem=%lu\n", stats[p][N_REFUSALS + 1]);
    }
}

/* ---- the world ---- */

static EVP_PKEY *load_key(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    CHECK(bio != NULL);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    CHECK(k != NULL);
    BIO_free(bio);
    return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    CHECK(ext != NULL);
    CHECK(X509_add_ext(x, ext, -1));
    X509_EXTENSION_free(ext);
}

/* A certificate signed SM2-aware (tg_pki_sign_x509) with the longest
 * signature; make_cert: valid from a year before NOW to twenty years
 * after. */
static X509 *make_cert_valid(const char *cn, long serial, EVP_PKEY *pub, X509 *issuer,
                             EVP_PKEY *issuer_key, int is_ca, const char *eku, time_t not_before,
                             time_t not_after)
{
    X509 *x = X509_new();
    CHECK(x != NULL);
    CHECK(X509_set_version(x, X509_VERSION_3));
    CHECK(ASN1_INTEGER_set(X509_get_serialNumber(x), serial));
    X509_NAME *name = X509_NAME_new();
    CHECK(name != NULL);
    CHECK(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0));
    CHECK(X509_set_subject_name(x, name));
    X509_NAME_free(name);
    X509 *iss = issuer != NULL ? issuer : x;
    CHECK(X509_set_issuer_name(x, X509_get_subject_name(iss)));
    CHECK(ASN1_TIME_set(X509_getm_notBefore(x), not_before) != NULL);
    CHECK(ASN1_TIME_set(X509_getm_notAfter(x), not_after) != NULL);
    CHECK(X509_set_pubkey(x, pub));
    add_ext(x, iss, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    add_ext(x, iss, NID_subject_key_identifier, "hash");
    if (issuer != NULL)
        add_ext(x, iss, NID_authority_key_identifier, "keyid:always");
    add_ext(x, iss, NID_key_usage,
            is_ca ? "critical,keyCertSign,cRLSign,digitalSignature" : "critical,digitalSignature");
    if (eku != NULL)
        add_ext(x, iss, NID_ext_key_usage, eku);
    for (int tries = 0;; tries++) {
        CHECK(tries < 200);
        CHECK(tg_pki_sign_x509(x, issuer_key, NULL) == 0);
        const ASN1_BIT_STRING *sig = NULL;
        X509_get0_signature(&sig, NULL, x);
        if (ASN1_STRING_length(sig) == SIG_LEN)
            break;
    }
    /* compute the extension cache once, as a shared certificate would */
    CHECK(X509_check_purpose(x, -1, 0) == 1);
    return x;
}

static X509 *make_cert(const char *cn, long serial, EVP_PKEY *pub, X509 *issuer,
                       EVP_PKEY *issuer_key, int is_ca, const char *eku)
{
    return make_cert_valid(cn, serial, pub, issuer, issuer_key, is_ca, eku, NOW - 365 * DAY,
                           NOW + 20 * 365 * DAY);
}

static void make_world(world_t *w, const char *ca_pem, const char *resp_pem, const char *label,
                       tg_hash_alg_t main_alg)
{
    char cn[64];
    w->ca_key = load_key(ca_pem);
    w->resp_key = load_key(resp_pem);
    snprintf(cn, sizeof(cn), "Fuzz %s CA", label);
    w->ca = make_cert(cn, 1, w->ca_key, NULL, w->ca_key, 1, NULL);
    snprintf(cn, sizeof(cn), "Fuzz %s OCSP Responder", label);
    w->resp = make_cert(cn, 2, w->resp_key, w->ca, w->ca_key, 0, "OCSPSigning");
    CHECK(tg_signer_new(w->ca, w->ca_key, &w->ca_signer) == 0);
    CHECK(tg_signer_new(w->resp, w->resp_key, &w->resp_signer) == 0);
    CHECK(tg_pki_certid_for(w->ca, main_alg, serial_main, sizeof(serial_main), &w->id_main) == 0);
    CHECK(tg_pki_certid_for(w->ca, TG_HASH_SHA256, serial_other, sizeof(serial_other),
                            &w->id_other) == 0);
}

/* OpenSSL's CertID for one of ours, checked to be the same. */
static OCSP_CERTID *ossl_certid(const world_t *w, const tg_certid_t *id)
{
    BIGNUM *bn = BN_bin2bn(id->serial, id->serial_len, NULL);
    CHECK(bn != NULL);
    ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
    CHECK(ai != NULL);
    BN_free(bn);
    OCSP_CERTID *cid = OCSP_cert_id_new(tg_pki_hash_md(id->alg), X509_get_subject_name(w->ca),
                                        X509_get0_pubkey_bitstr(w->ca), ai);
    CHECK(cid != NULL);
    ASN1_INTEGER_free(ai);
    tg_certid_t back;
    CHECK(tg_pki_certid_from_ocsp(cid, &back) == 0);
    CHECK(tg_certid_eq(&back, id));
    return cid;
}

static int resp_sig_len(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    CHECK(r != NULL && p == der + len);
    OCSP_BASICRESP *bs = OCSP_response_get1_basic(r);
    CHECK(bs != NULL);
    int n = ASN1_STRING_length(OCSP_resp_get0_signature(bs));
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(r);
    return n;
}

static void set_der(base_t *b, const uint8_t *p, size_t n)
{
    b->der = malloc(n);
    CHECK(b->der != NULL);
    memcpy(b->der, p, n);
    b->len = n;
}

/* Signs with trustgate's encoder; producedAt NOW - 30. */
static void sign_tg(base_t *b, const tg_signer_t *s, const tg_ocsp_single_t *singles, size_t n)
{
    for (int tries = 0;; tries++) {
        CHECK(tries < 200);
        tg_buf_t out;
        tg_buf_init(&out);
        CHECK(tg_ocsp_sign_response(s, singles, n, b->nonce, b->nonce_len, NOW - 30, &out) == 0);
        int sl = resp_sig_len(out.data, out.len);
        if (sl == SIG_LEN)
            set_der(b, out.data, out.len);
        tg_buf_free(&out);
        if (sl == SIG_LEN)
            return;
    }
}

/* Signs bs with OpenSSL's encoder (OCSP_basic_sign_ctx, the SM2 ID set by
 * tg_pki_digest_sign_init); then producedAt, which OpenSSL sets to the
 * wall clock, is moved to NOW - 30 and the data signed again; then the
 * n_add certificates at add are appended to certs (which the signature
 * does not cover). */
static void sign_ossl(base_t *b, OCSP_BASICRESP *bs, X509 *signer, EVP_PKEY *key,
                      STACK_OF(X509) * extra, unsigned long flags, X509 *const *add, size_t n_add)
{
    const EVP_MD *md = NULL;
    CHECK(tg_pki_default_md(key, &md) == 0);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    CHECK(m != NULL);
    CHECK(tg_pki_digest_sign_init(m, key, md) == 0);
    CHECK(OCSP_basic_sign_ctx(bs, signer, m, extra, flags) == 1);
    EVP_MD_CTX_free(m);
    /* The getters are const; the objects belong to bs, which is ours. */
    CHECK(ASN1_GENERALIZEDTIME_set((ASN1_GENERALIZEDTIME *)OCSP_resp_get0_produced_at(bs),
                                   NOW - 30) != NULL);
    for (int tries = 0;; tries++) {
        CHECK(tries < 200);
        m = EVP_MD_CTX_new();
        CHECK(m != NULL);
        CHECK(tg_pki_digest_sign_init(m, key, md) == 0);
        CHECK(ASN1_item_sign_ctx(ASN1_ITEM_rptr(OCSP_RESPDATA),
                                 (X509_ALGOR *)OCSP_resp_get0_tbs_sigalg(bs), NULL,
                                 (ASN1_BIT_STRING *)OCSP_resp_get0_signature(bs),
                                 OCSP_resp_get0_respdata(bs), m) > 0);
        EVP_MD_CTX_free(m);
        if (ASN1_STRING_length(OCSP_resp_get0_signature(bs)) == SIG_LEN)
            break;
    }
    for (size_t i = 0; i < n_add; i++)
        CHECK(OCSP_basic_add1_cert(bs, add[i]) == 1);
    OCSP_RESPONSE *r = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
    CHECK(r != NULL);
    unsigned char *d = NULL;
    int n = i2d_OCSP_RESPONSE(r, &d);
    CHECK(n > 0);
    set_der(b, d, (size_t)n);
    OPENSSL_free(d);
    OCSP_RESPONSE_free(r);
}

static ASN1_GENERALIZEDTIME *gt(time_t t)
{
    ASN1_GENERALIZEDTIME *g = ASN1_GENERALIZEDTIME_set(NULL, t);
    CHECK(g != NULL);
    return g;
}

static OCSP_SINGLERESP *ossl_add(OCSP_BASICRESP *bs, const world_t *w, const tg_certid_t *id,
                                 int status, int reason, time_t rev, time_t this_upd,
                                 time_t next_upd)
{
    OCSP_CERTID *cid = ossl_certid(w, id);
    ASN1_GENERALIZEDTIME *r = rev ? gt(rev) : NULL, *t = gt(this_upd);
    ASN1_GENERALIZEDTIME *n = next_upd ? gt(next_upd) : NULL;
    OCSP_SINGLERESP *s = OCSP_basic_add1_status(bs, cid, status, reason, r, t, n);
    CHECK(s != NULL);
    ASN1_GENERALIZEDTIME_free(r);
    ASN1_GENERALIZEDTIME_free(t);
    ASN1_GENERALIZEDTIME_free(n);
    OCSP_CERTID_free(cid);
    return s;
}

/* An extension whose extnValue is the given bytes. */
static X509_EXTENSION *raw_ext(ASN1_OBJECT *obj, int crit, const uint8_t *v, size_t n)
{
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    CHECK(os != NULL && ASN1_OCTET_STRING_set(os, v, (int)n));
    X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, obj, crit, os);
    CHECK(ext != NULL);
    ASN1_OCTET_STRING_free(os);
    return ext;
}

/* Finds tbsResponseData, its responses, the signature algorithm and the
 * certificates in b->der. */
static void dissect(base_t *b)
{
    const uint8_t *der = b->der, *p = der, *end = der + b->len, *c, *bend, *t0;
    uint8_t tag;
    size_t n;
    CHECK(tg_pki_der_next(&p, end, &tag, &c, &n) == 0 && tag == 0x30 && p == end);
    p = c;
    CHECK(tg_pki_der_next(&p, end, &tag, &c, &n) == 0 && tag == 0x0a);
    CHECK(tg_pki_der_next(&p, end, &tag, &c, &n) == 0 && tag == 0xa0 && p == end);
    p = c;
    CHECK(tg_pki_der_next(&p, end, &tag, &c, &n) == 0 && tag == 0x30 && p == end);
    p = c;
    CHECK(tg_pki_der_next(&p, end, &tag, &c, &n) == 0 && tag == 0x06);
    CHECK(tg_pki_der_next(&p, end, &tag, &c, &n) == 0 && tag == 0x04 && p == end);
    p = c;
    CHECK(tg_pki_der_next(&p, end, &tag, &c, &n) == 0 && tag == 0x30 && p == end);
    p = c;
    bend = c + n;
    t0 = p;
    CHECK(tg_pki_der_next(&p, bend, &tag, &c, &n) == 0 && tag == 0x30);
    b->tbs_off = (size_t)(t0 - der);
    b->tbs_len = (size_t)(p - t0);
    b->tbs_content_off = (size_t)(c - der);
    const uint8_t *q = c, *qend = c + n;
    b->resps_off = 0;
    while (q < qend) {
        const uint8_t *e0 = q, *ec;
        size_t en;
        CHECK(tg_pki_der_next(&q, qend, &tag, &ec, &en) == 0);
        if (tag == 0x30 && b->resps_off == 0) {
            b->resps_off = (size_t)(e0 - der);
            b->resps_content_off = (size_t)(ec - der);
            b->resps_content_len = en;
            b->resps_end = (size_t)(q - der);
        }
    }
    CHECK(b->resps_off != 0);
    t0 = p;
    CHECK(tg_pki_der_next(&p, bend, &tag, &c, &n) == 0 && tag == 0x30);
    b->sigalg_off = (size_t)(t0 - der);
    b->sigalg_len = (size_t)(p - t0);
    CHECK(tg_pki_der_next(&p, bend, &tag, &c, &n) == 0 && tag == 0x03);
    b->certs_off = (size_t)(p - der);
    b->certs_len = (size_t)(bend - p);
}

static void make_bases(void)
{
    world_t *pw = &worlds[W_P256], *sw = &worlds[W_SM2];
    base_t *b;
    OCSP_BASICRESP *bs;

    /* 0: P-256, CA-signed (trustgate), good */
    b = &bases[0];
    *b = (base_t){.what = "p256 ca good", .world = W_P256, .id = &pw->id_main, .key = pw->ca_key};
    {
        tg_ocsp_single_t s[] = {{.id = &pw->id_main,
                                 .status = TG_CERT_GOOD,
                                 .this_update = NOW - 60,
                                 .next_update = NOW + DAY}};
        sign_tg(b, pw->ca_signer, s, 1);
        b->want = (tg_ocsp_verify_result_t){.status = TG_CERT_GOOD,
                                            .revocation_reason = TG_CRL_REASON_NONE,
                                            .next_update = NOW + DAY,
                                            .signer = TG_OCSP_SIGNER_ISSUER};
    }

    /* 1: P-256, delegated (trustgate), revoked keyCompromise among three
     * singles, two of them for the same other CertID */
    b = &bases[1];
    *b = (base_t){.what = "p256 delegated revoked, 3 singles",
                  .world = W_P256,
                  .id = &pw->id_main,
                  .key = pw->resp_key};
    {
        tg_ocsp_single_t s[] = {
            {.id = &pw->id_other,
             .status = TG_CERT_GOOD,
             .this_update = NOW - 60,
             .next_update = NOW + DAY},
            {.id = &pw->id_main,
             .status = TG_CERT_REVOKED,
             .revocation_time = NOW - 3600,
             .reason = TG_CRL_REASON_KEY_COMPROMISE,
             .this_update = NOW - 60,
             .next_update = NOW + DAY},
            {.id = &pw->id_other,
             .status = TG_CERT_UNKNOWN,
             .this_update = NOW - 60,
             .next_update = NOW + DAY},
        };
        sign_tg(b, pw->resp_signer, s, 3);
        b->want = (tg_ocsp_verify_result_t){.status = TG_CERT_REVOKED,
                                            .revocation_time = NOW - 3600,
                                            .revocation_reason = TG_CRL_REASON_KEY_COMPROMISE,
                                            .next_update = NOW + DAY,
                                            .signer = TG_OCSP_SIGNER_DELEGATED};
    }

    /* 2: P-256, delegated (trustgate), good with a nonce, SHA-256 CertID */
    b = &bases[2];
    *b = (base_t){.what = "p256 delegated nonce",
                  .world = W_P256,
                  .id = &pw->id_other,
                  .nonce = nonce16,
                  .nonce_len = sizeof(nonce16),
                  .key = pw->resp_key};
    {
        tg_ocsp_single_t s[] = {{.id = &pw->id_other,
                                 .status = TG_CERT_GOOD,
                                 .this_update = NOW - 60,
                                 .next_update = NOW + DAY}};
        sign_tg(b, pw->resp_signer, s, 1);
        b->want = (tg_ocsp_verify_result_t){.status = TG_CERT_GOOD,
                                            .revocation_reason = TG_CRL_REASON_NONE,
                                            .next_update = NOW + DAY,
                                            .signer = TG_OCSP_SIGNER_DELEGATED,
                                            .nonce_echoed = 1};
    }

    /* 3: P-256, CA-signed (OpenSSL) byName: revoked superseded without
     * nextUpdate and with a non-critical invalidityDate; a second single
     * with a critical one; a critical nonce and an unknown non-critical
     * response extension */
    b = &bases[3];
    *b = (base_t){.what = "p256 openssl ca byName, extensions",
                  .world = W_P256,
                  .id = &pw->id_main,
                  .nonce = nonce16,
                  .nonce_len = sizeof(nonce16),
                  .key = pw->ca_key};
    bs = OCSP_BASICRESP_new();
    CHECK(bs != NULL);
    {
        OCSP_SINGLERESP *s = ossl_add(bs, pw, &pw->id_main, V_OCSP_CERTSTATUS_REVOKED,
                                      TG_CRL_REASON_SUPERSEDED, NOW - 10 * DAY, NOW - 60, 0);
        ASN1_GENERALIZEDTIME *inv = gt(NOW - 11 * DAY);
        CHECK(OCSP_SINGLERESP_add1_ext_i2d(s, NID_invalidity_date, inv, 0, 0) == 1);
        s = ossl_add(bs, pw, &pw->id_other, V_OCSP_CERTSTATUS_GOOD, 0, 0, NOW - 60, NOW + DAY);
        CHECK(OCSP_SINGLERESP_add1_ext_i2d(s, NID_invalidity_date, inv, 1, 0) == 1);
        ASN1_GENERALIZEDTIME_free(inv);
        uint8_t v[2 + sizeof(nonce16)] = {0x04, sizeof(nonce16)};
        memcpy(v + 2, nonce16, sizeof(nonce16));
        X509_EXTENSION *ext = raw_ext(OBJ_nid2obj(NID_id_pkix_OCSP_Nonce), 1, v, sizeof(v));
        CHECK(OCSP_BASICRESP_add_ext(bs, ext, -1) == 1);
        X509_EXTENSION_free(ext);
        /* an unknown id-pkix-ocsp extension, one bit away from the
         * nonce's OID (…48.1.2): an edit makes two nonces */
        static const uint8_t val[] = {0x04, 0x02, 0xab, 0xcd};
        ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.5.5.7.48.1.34", 1);
        CHECK(obj != NULL);
        ext = raw_ext(obj, 0, val, sizeof(val));
        ASN1_OBJECT_free(obj);
        CHECK(OCSP_BASICRESP_add_ext(bs, ext, -1) == 1);
        X509_EXTENSION_free(ext);
    }
    sign_ossl(b, bs, pw->ca, pw->ca_key, NULL, 0, NULL, 0);
    OCSP_BASICRESP_free(bs);
    b->want = (tg_ocsp_verify_result_t){.status = TG_CERT_REVOKED,
                                        .revocation_time = NOW - 10 * DAY,
                                        .revocation_reason = TG_CRL_REASON_SUPERSEDED,
                                        .signer = TG_OCSP_SIGNER_ISSUER,
                                        .nonce_echoed = 1};

    /* 4: P-256, delegated (OpenSSL) byName, unknown; certs: the four
     * twins, the CA, the responder */
    b = &bases[4];
    *b = (base_t){.what = "p256 openssl delegated byName, 2 certs",
                  .world = W_P256,
                  .id = &pw->id_main,
                  .key = pw->resp_key};
    bs = OCSP_BASICRESP_new();
    CHECK(bs != NULL);
    (void)ossl_add(bs, pw, &pw->id_main, V_OCSP_CERTSTATUS_UNKNOWN, 0, 0, NOW - 60, NOW + DAY);
    {
        X509 *certs[N_TWINS + 2];
        memcpy(certs, twins, sizeof(twins));
        certs[N_TWINS] = pw->ca;
        certs[N_TWINS + 1] = pw->resp;
        sign_ossl(b, bs, pw->resp, pw->resp_key, NULL, OCSP_NOCERTS, certs, N_TWINS + 2);
    }
    OCSP_BASICRESP_free(bs);
    b->want = (tg_ocsp_verify_result_t){.status = TG_CERT_UNKNOWN,
                                        .revocation_reason = TG_CRL_REASON_NONE,
                                        .next_update = NOW + DAY,
                                        .signer = TG_OCSP_SIGNER_DELEGATED};

    /* 5: P-256 CA's CertID, signed by the locally trusted responder */
    b = &bases[5];
    *b = (base_t){.what = "p256 trusted local responder",
                  .world = W_P256,
                  .id = &pw->id_main,
                  .trusted = local_cert,
                  .key = local_key};
    {
        tg_ocsp_single_t s[] = {{.id = &pw->id_main,
                                 .status = TG_CERT_GOOD,
                                 .this_update = NOW - 60,
                                 .next_update = NOW + DAY}};
        sign_tg(b, local_signer, s, 1);
        b->want = (tg_ocsp_verify_result_t){.status = TG_CERT_GOOD,
                                            .revocation_reason = TG_CRL_REASON_NONE,
                                            .next_update = NOW + DAY,
                                            .signer = TG_OCSP_SIGNER_TRUSTED};
    }

    /* 6: SM2, CA-signed (trustgate), good, SM3 CertID */
    b = &bases[6];
    *b = (base_t){.what = "sm2 ca good", .world = W_SM2, .id = &sw->id_main, .key = sw->ca_key};
    {
        tg_ocsp_single_t s[] = {{.id = &sw->id_main,
                                 .status = TG_CERT_GOOD,
                                 .this_update = NOW - 60,
                                 .next_update = NOW + DAY}};
        sign_tg(b, sw->ca_signer, s, 1);
        b->want = (tg_ocsp_verify_result_t){.status = TG_CERT_GOOD,
                                            .revocation_reason = TG_CRL_REASON_NONE,
                                            .next_update = NOW + DAY,
                                            .signer = TG_OCSP_SIGNER_ISSUER};
    }

    /* 7: SM2, delegated (trustgate), revoked without reason or nextUpdate,
     * nonce, a second single */
    b = &bases[7];
    *b = (base_t){.what = "sm2 delegated revoked, nonce",
                  .world = W_SM2,
                  .id = &sw->id_main,
                  .nonce = nonce16,
                  .nonce_len = sizeof(nonce16),
                  .key = sw->resp_key};
    {
        tg_ocsp_single_t s[] = {
            {.id = &sw->id_main,
             .status = TG_CERT_REVOKED,
             .revocation_time = NOW - 7200,
             .reason = TG_CRL_REASON_NONE,
             .this_update = NOW - 60},
            {.id = &sw->id_other,
             .status = TG_CERT_GOOD,
             .this_update = NOW - 60,
             .next_update = NOW + DAY},
        };
        sign_tg(b, sw->resp_signer, s, 2);
        b->want = (tg_ocsp_verify_result_t){.status = TG_CERT_REVOKED,
                                            .revocation_time = NOW - 7200,
                                            .revocation_reason = TG_CRL_REASON_NONE,
                                            .signer = TG_OCSP_SIGNER_DELEGATED,
                                            .nonce_echoed = 1};
    }

    /* 8: SM2, delegated (OpenSSL, standard ID) byKey, good, the longest
     * nonce (a two-byte DER length) */
    b = &bases[8];
    *b = (base_t){.what = "sm2 openssl delegated byKey nonce",
                  .world = W_SM2,
                  .id = &sw->id_main,
                  .nonce = nonce128,
                  .nonce_len = sizeof(nonce128),
                  .key = sw->resp_key};
    bs = OCSP_BASICRESP_new();
    CHECK(bs != NULL);
    (void)ossl_add(bs, sw, &sw->id_main, V_OCSP_CERTSTATUS_GOOD, 0, 0, NOW - 60, NOW + DAY);
    CHECK(OCSP_basic_add1_nonce(bs, (unsigned char *)nonce128, sizeof(nonce128)) == 1);
    sign_ossl(b, bs, sw->resp, sw->resp_key, NULL, OCSP_RESPID_KEY, NULL, 0);
    OCSP_BASICRESP_free(bs);
    b->want = (tg_ocsp_verify_result_t){.status = TG_CERT_GOOD,
                                        .revocation_reason = TG_CRL_REASON_NONE,
                                        .next_update = NOW + DAY,
                                        .signer = TG_OCSP_SIGNER_DELEGATED,
                                        .nonce_echoed = 1};

    /* 9: P-256, CA-signed (OpenSSL) byKey without certificates, revoked
     * privilegeWithdrawn, SHA-256 CertID */
    b = &bases[9];
    *b = (base_t){.what = "p256 openssl ca byKey nocerts",
                  .world = W_P256,
                  .id = &pw->id_other,
                  .key = pw->ca_key};
    bs = OCSP_BASICRESP_new();
    CHECK(bs != NULL);
    (void)ossl_add(bs, pw, &pw->id_other, V_OCSP_CERTSTATUS_REVOKED,
                   TG_CRL_REASON_PRIVILEGE_WITHDRAWN, NOW - 5 * DAY, NOW - 60, NOW + DAY);
    sign_ossl(b, bs, pw->ca, pw->ca_key, NULL, OCSP_RESPID_KEY | OCSP_NOCERTS, NULL, 0);
    OCSP_BASICRESP_free(bs);
    b->want = (tg_ocsp_verify_result_t){.status = TG_CERT_REVOKED,
                                        .revocation_time = NOW - 5 * DAY,
                                        .revocation_reason = TG_CRL_REASON_PRIVILEGE_WITHDRAWN,
                                        .next_update = NOW + DAY,
                                        .signer = TG_OCSP_SIGNER_ISSUER};

    for (int i = 0; i < N_BASES; i++) {
        b = &bases[i];
        b->want.this_update = NOW - 60;
        b->want.produced_at = NOW - 30;
        CHECK(tg_pki_default_md(b->key, &b->md) == 0);
        dissect(b);
    }
}

/* ---- expectations ---- */

/* Changes to a response's own expectations, by the bits of mods:
 * 0x01 nonce: a response with one is checked against another nonce (or,
 *      with 0x02, none); one without is asked for one (0x02: may be
 *      missing);
 * 0x04 max_age_s one hour;
 * 0x08 now two days later (past every nextUpdate); 0x40 now 400 s earlier
 *      (producedAt and thisUpdate beyond the skew); both: 21 years later
 *      (every certificate expired);
 * 0x10 the world's delegated responder trusted outright (or, for the
 *      trusted-responder response, no trusted signer);
 * 0x20 the response's other CertID;
 * 0x80 the other world's CA and CertID. */
static void make_opts(const base_t *b, uint8_t mods, tg_ocsp_verify_opts_t *o)
{
    const world_t *w = &worlds[b->world];
    memset(o, 0, sizeof(*o));
    o->issuer = w->ca;
    o->certid = b->id;
    o->trusted_signer = b->trusted;
    o->nonce = b->nonce;
    o->nonce_len = b->nonce_len;
    o->now = NOW;
    if (mods & 0x01) {
        if (b->nonce != NULL) {
            o->nonce = (mods & 0x02) ? NULL : other_nonce;
            o->nonce_len = (mods & 0x02) ? 0 : sizeof(other_nonce);
        } else {
            o->nonce = nonce16;
            o->nonce_len = sizeof(nonce16);
            o->allow_missing_nonce = (mods & 0x02) != 0;
        }
    } else if (mods & 0x02) {
        o->allow_missing_nonce = 1;
    }
    if (mods & 0x04)
        o->max_age_s = 3600;
    if ((mods & 0x48) == 0x48)
        o->now = NOW + 21 * 365 * DAY;
    else if (mods & 0x08)
        o->now = NOW + 2 * DAY;
    else if (mods & 0x40)
        o->now = NOW - 400;
    if (mods & 0x10)
        o->trusted_signer = b->trusted != NULL ? NULL : w->resp;
    if (mods & 0x20)
        o->certid = b->id == &w->id_main ? &w->id_other : &w->id_main;
    if (mods & 0x80) {
        const world_t *x = &worlds[!b->world];
        o->issuer = x->ca;
        o->certid = (mods & 0x20) ? &x->id_other : &x->id_main;
    }
}

/* ---- checks ---- */

static int time_ok(time_t t)
{
    return t >= TIME_MIN && t <= TG_OCSP_TIME_MAX;
}

static int refusal_index(const char *why)
{
    if (why == NULL)
        return -1;
    for (size_t i = 0; i < N_REFUSALS; i++)
        if (strcmp(why, refusals[i]) == 0)
            return (int)i;
    return -1;
}

static time_t asn1_time(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;
    CHECK(t != NULL && ASN1_TIME_to_tm(t, &tm) == 1);
    return timegm(&tm);
}

/* What OpenSSL reads from the accepted response: exactly one
 * SingleResponse for the CertID asked about, saying what the verifier
 * reported; the nonce as OpenSSL compares it. */
static void cross_check(const uint8_t *p, size_t n, const tg_ocsp_verify_opts_t *o,
                        const tg_ocsp_verify_result_t *r)
{
    const unsigned char *q = p;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &q, (long)n);
    CHECK(resp != NULL && q == p + n);
    OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
    CHECK(bs != NULL);
    CHECK(asn1_time(OCSP_resp_get0_produced_at(bs)) == r->produced_at);
    OCSP_SINGLERESP *match = NULL;
    int found = 0;
    for (int i = 0; i < OCSP_resp_count(bs); i++) {
        OCSP_SINGLERESP *s = OCSP_resp_get0(bs, i);
        tg_certid_t id;
        if (s == NULL ||
            tg_pki_certid_from_ocsp((OCSP_CERTID *)OCSP_SINGLERESP_get0_id(s), &id) != 0)
            continue;
        if (tg_certid_eq(&id, o->certid)) {
            match = s;
            found++;
        }
    }
    CHECK(found == 1); /* the CertID asked about, once */
    int reason = -2;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    int st = OCSP_single_get0_status(match, &reason, &rev, &thisupd, &nextupd);
    CHECK(st == (int)r->status);
    CHECK(asn1_time(thisupd) == r->this_update);
    CHECK((nextupd == NULL ? 0 : asn1_time(nextupd)) == r->next_update);
    if (st == V_OCSP_CERTSTATUS_REVOKED) {
        CHECK(asn1_time(rev) == r->revocation_time);
        CHECK((reason >= 0 ? reason : TG_CRL_REASON_NONE) == r->revocation_reason);
    }
    if (o->nonce != NULL) {
        OCSP_REQUEST *req = OCSP_REQUEST_new();
        CHECK(req != NULL);
        CHECK(OCSP_request_add1_nonce(req, (unsigned char *)o->nonce, (int)o->nonce_len) == 1);
        int c = OCSP_check_nonce(req, bs);
        /* 1: equal; -1: absent from the response (allowed missing) */
        CHECK(r->nonce_echoed ? c == 1 : c == -1);
        OCSP_REQUEST_free(req);
    }
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
}

static void check_accepted(const uint8_t *p, size_t n, const tg_ocsp_verify_opts_t *o,
                           const tg_ocsp_verify_result_t *r)
{
    CHECK(r->error == NULL);
    CHECK(r->status == TG_CERT_GOOD || r->status == TG_CERT_REVOKED ||
          r->status == TG_CERT_UNKNOWN);
    if (r->status == TG_CERT_REVOKED) {
        int reason_ok = r->revocation_reason >= TG_CRL_REASON_NONE &&
                        r->revocation_reason <= TG_CRL_REASON_AA_COMPROMISE &&
                        r->revocation_reason != 7;
        CHECK(reason_ok);
        CHECK(time_ok(r->revocation_time));
    } else {
        CHECK(r->revocation_reason == TG_CRL_REASON_NONE && r->revocation_time == 0);
    }
    CHECK(time_ok(r->this_update) && time_ok(r->produced_at));
    CHECK(r->this_update <= o->now + TG_OCSP_MAX_SKEW_S);
    CHECK(r->produced_at <= o->now + TG_OCSP_MAX_SKEW_S);
    if (r->next_update != 0)
        CHECK(time_ok(r->next_update) && r->next_update >= r->this_update &&
              r->next_update >= o->now);
    else if (o->max_age_s > 0)
        CHECK(r->this_update >= o->now - (time_t)o->max_age_s);
    CHECK(r->signer == TG_OCSP_SIGNER_TRUSTED || r->signer == TG_OCSP_SIGNER_ISSUER ||
          r->signer == TG_OCSP_SIGNER_DELEGATED);
    if (r->signer == TG_OCSP_SIGNER_TRUSTED)
        CHECK(o->trusted_signer != NULL);
    CHECK(r->nonce_echoed == 0 || r->nonce_echoed == 1);
    if (o->nonce == NULL)
        CHECK(r->nonce_echoed == 0);
    else if (!o->allow_missing_nonce)
        CHECK(r->nonce_echoed == 1);
    cross_check(p, n, o, r);
}

static int same_answer(const tg_ocsp_verify_result_t *a, const tg_ocsp_verify_result_t *b)
{
    return a->status == b->status && a->revocation_time == b->revocation_time &&
           a->revocation_reason == b->revocation_reason && a->this_update == b->this_update &&
           a->next_update == b->next_update && a->produced_at == b->produced_at &&
           a->signer == b->signer && a->nonce_echoed == b->nonce_echoed;
}

/* Verifies p/n under o and checks the outcome; path: 0 raw, 1 mode 0,
 * 2 mode 1. Returns the return code. */
static int run(int path, const uint8_t *p, size_t n, const tg_ocsp_verify_opts_t *o,
               tg_ocsp_verify_result_t *r)
{
    static const uint8_t empty[1];
    tg_ocsp_verify_opts_t o_copy = *o;
    tg_certid_t id_copy = *o->certid;
    static const char *const names[3] = {"raw", "edit", "resign"};
    cur_der = path > 0 ? p : NULL;
    cur_len = n;
    cur_what = names[path];
    cur_res = r;
    int rc = tg_ocsp_verify_response(n > 0 ? p : empty, n, o, r);
    CHECK(ERR_peek_error() == 0);
    CHECK(memcmp(&o_copy, o, sizeof(*o)) == 0);
    CHECK(memcmp(&id_copy, o->certid, sizeof(id_copy)) == 0);
    CHECK(rc == 0 || rc == TG_EMALFORMED || rc == TG_ENOMEM);
    if (rc == TG_ENOMEM) {
        CHECK(r->error != NULL && strcmp(r->error, "internal_error") == 0);
        stats[path][N_REFUSALS + 1]++;
    } else if (rc == TG_EMALFORMED) {
        int i = refusal_index(r->error);
        CHECK(i >= 0);
        stats[path][i + 1]++;
    } else {
        stats[path][0]++;
        check_accepted(n > 0 ? p : empty, n, o, r);
    }
    cur_der = NULL;
    cur_res = NULL;
    return rc;
}

/* ---- building the edited responses ---- */

static void append(tg_buf_t *b, const void *p, size_t n)
{
    CHECK(tg_buf_append(b, p, n) == 0);
}

/* Appends tag, the DER length of n and the n bytes at p. */
static void put_tlv(tg_buf_t *b, uint8_t tag, const uint8_t *p, size_t n)
{
    uint8_t h[6];
    size_t k = 0;
    h[k++] = tag;
    if (n < 0x80) {
        h[k++] = (uint8_t)n;
    } else if (n < 0x100) {
        h[k++] = 0x81;
        h[k++] = (uint8_t)n;
    } else if (n < 0x10000) {
        h[k++] = 0x82;
        h[k++] = (uint8_t)(n >> 8);
        h[k++] = (uint8_t)n;
    } else {
        CHECK(n < 0x1000000);
        h[k++] = 0x83;
        h[k++] = (uint8_t)(n >> 16);
        h[k++] = (uint8_t)(n >> 8);
        h[k++] = (uint8_t)n;
    }
    append(b, h, k);
    append(b, p, n);
}

/* Replaces *b by tag { *b }. */
static void wrap(tg_buf_t *b, uint8_t tag)
{
    tg_buf_t w;
    tg_buf_init(&w);
    put_tlv(&w, tag, b->data, b->len);
    tg_buf_free(b);
    *b = w;
}

static void apply_edits(uint8_t *p, size_t len, const uint8_t *edits, size_t n_edits)
{
    if (len == 0)
        return;
    for (size_t i = 0; i < n_edits; i++) {
        size_t off = ((size_t)edits[3 * i] << 8 | edits[3 * i + 1]) % len;
        p[off] ^= edits[3 * i + 2];
    }
}

/* Mode 1: the base's tbsResponseData with the singles repeated (dup) and
 * extra bytes appended to its responses, then edited, signed again with the
 * base's key and wrapped up with the base's signature algorithm and
 * certificates. */
static void build_resigned(const base_t *b, int dup, const uint8_t *edits, size_t n_edits,
                           const uint8_t *extra, size_t extra_len, tg_buf_t *out)
{
    const uint8_t *d = b->der;
    tg_buf_t t;
    tg_buf_init(&t);
    append(&t, d + b->resps_content_off, b->resps_content_len);
    if (dup)
        append(&t, d + b->resps_content_off, b->resps_content_len);
    if (extra_len > 0)
        append(&t, extra, extra_len);
    wrap(&t, 0x30);
    tg_buf_t tbs;
    tg_buf_init(&tbs);
    append(&tbs, d + b->tbs_content_off, b->resps_off - b->tbs_content_off);
    append(&tbs, t.data, t.len);
    append(&tbs, d + b->resps_end, b->tbs_off + b->tbs_len - b->resps_end);
    tg_buf_free(&t);
    wrap(&tbs, 0x30);
    apply_edits(tbs.data, tbs.len, edits, n_edits);

    uint8_t sig[1 + 256] = {0};
    size_t sig_len = sizeof(sig) - 1;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    CHECK(m != NULL);
    CHECK(tg_pki_digest_sign_init(m, b->key, b->md) == 0);
    CHECK(EVP_DigestSign(m, sig + 1, &sig_len, tbs.data, tbs.len) == 1);
    EVP_MD_CTX_free(m);

    tg_buf_t basic;
    tg_buf_init(&basic);
    append(&basic, tbs.data, tbs.len);
    tg_buf_free(&tbs);
    append(&basic, d + b->sigalg_off, b->sigalg_len);
    put_tlv(&basic, 0x03, sig, 1 + sig_len);
    append(&basic, d + b->certs_off, b->certs_len);
    wrap(&basic, 0x30);
    wrap(&basic, 0x04);
    tg_buf_t rb;
    tg_buf_init(&rb);
    append(&rb, oid_basic_tlv, sizeof(oid_basic_tlv));
    append(&rb, basic.data, basic.len);
    tg_buf_free(&basic);
    wrap(&rb, 0x30);
    wrap(&rb, 0xa0);
    static const uint8_t successful[] = {0x0a, 0x01, 0x00};
    append(out, successful, sizeof(successful));
    append(out, rb.data, rb.len);
    tg_buf_free(&rb);
    wrap(out, 0x30);
}

/* ---- start-up ---- */

static void expect(int base, uint8_t mods, const char *why)
{
    const base_t *b = &bases[base];
    tg_ocsp_verify_opts_t o;
    tg_ocsp_verify_result_t r;
    make_opts(b, mods, &o);
    int rc = tg_ocsp_verify_response(b->der, b->len, &o, &r);
    if (why == NULL ? rc != 0 : (rc != TG_EMALFORMED || strcmp(r.error, why) != 0)) {
        fprintf(stderr, "base %d (%s) mods 0x%02x: rc %d error %s, expected %s\n", base, b->what,
                mods, rc, r.error ? r.error : "(none)", why ? why : "acceptance");
        abort();
    }
    CHECK(ERR_peek_error() == 0);
}

static void check_bases(void)
{
    for (int i = 0; i < N_BASES; i++) {
        const base_t *b = &bases[i];
        tg_ocsp_verify_opts_t o;
        tg_ocsp_verify_result_t r;
        make_opts(b, 0, &o);
        expect(i, 0, NULL);
        CHECK(run(1, b->der, b->len, &o, &r) == 0);
        if (!same_answer(&r, &b->want)) {
            fprintf(stderr, "base %d (%s): unexpected answer\n", i, b->what);
            abort();
        }
        /* mode 1 without edits rebuilds the same response, newly signed */
        tg_buf_t out;
        tg_buf_init(&out);
        build_resigned(b, 0, NULL, 0, NULL, 0, &out);
        CHECK(memmem(out.data, out.len, b->der + b->tbs_off, b->tbs_len) != NULL);
        CHECK(run(2, out.data, out.len, &o, &r) == 0 && same_answer(&r, &b->want));
        tg_buf_free(&out);
        /* 21 years on, every certificate has expired: a delegated
         * responder is refused; the CA and a trusted responder are not
         * checked at now, but nextUpdate has passed */
        expect(i, 0x48,
               b->want.signer == TG_OCSP_SIGNER_DELEGATED ? "unauthorized_signer"
               : b->want.next_update != 0                 ? "expired"
                                                          : NULL);
    }
    /* a few refusals that the recipes rely on */
    expect(0, 0x08, "expired");
    expect(0, 0x40, "not_yet_valid");
    expect(0, 0x01, "nonce_mismatch");
    expect(0, 0x03, NULL);
    expect(0, 0x20, "certid_mismatch");
    expect(0, 0x80, "unauthorized_signer");
    expect(1, 0x20, "duplicate_single");
    expect(2, 0x01, "nonce_mismatch");
    expect(2, 0x03, NULL);
    expect(3, 0x20, "critical_extension");
    expect(3, 0x04, NULL);
    expect(3, 0x0c, "expired");
    expect(5, 0x10, "unauthorized_signer");
    expect(6, 0x10, NULL);
    expect(7, 0x0c, "expired");
    expect(8, 0x01, "nonce_mismatch");
    memset(stats, 0, sizeof(stats));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    make_world(&worlds[W_P256], pem_p256_ca, pem_p256_resp, "P-256", TG_HASH_SHA1);
    make_world(&worlds[W_SM2], pem_sm2_ca, pem_sm2_resp, "SM2", TG_HASH_SM3);
    CHECK(tg_pki_is_sm2(worlds[W_SM2].ca_key) && tg_pki_is_sm2(worlds[W_SM2].resp_key));
    local_key = load_key(pem_p256_local);
    local_cert = make_cert("Fuzz local OCSP responder", 3, local_key, NULL, local_key, 0, NULL);
    /* (it warns that the certificate lacks id-kp-OCSPSigning: the point) */
    tg_log_level_t level = tg_log_get_level();
    tg_log_set_level(TG_LOG_ERROR);
    CHECK(tg_signer_new(local_cert, local_key, &local_signer) == 0);
    tg_log_set_level(level);
    const world_t *pw = &worlds[W_P256];
    const char *rname = "Fuzz P-256 OCSP Responder";
    twins[0] = make_cert(rname, 10, local_key, NULL, local_key, 0, "OCSPSigning");
    twins[1] = make_cert(rname, 11, local_key, pw->ca, pw->ca_key, 0, NULL);
    twins[2] = make_cert_valid(rname, 12, local_key, pw->ca, pw->ca_key, 0, "OCSPSigning",
                               NOW - 365 * DAY, NOW - DAY);
    twins[3] = make_cert(rname, 13, local_key, pw->ca, pw->ca_key, 0, "OCSPSigning");
    for (size_t i = 0; i < sizeof(nonce128); i++)
        nonce128[i] = (uint8_t)(0x80 + i);
    make_bases();
    check_bases();
    if (getenv("TG_FUZZ_STATS") != NULL)
        atexit(print_stats);
    return 0;
}

/* ---- one input ---- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_ocsp_verify_opts_t o;
    tg_ocsp_verify_result_t r;

    /* 1: raw, against each CA, without and with a nonce expectation (the
     * second also trusting a responder outright) */
    for (int w = 0; w < 2; w++) {
        memset(&o, 0, sizeof(o));
        o.issuer = worlds[w].ca;
        o.certid = &worlds[w].id_main;
        o.now = NOW;
        (void)run(0, data, size, &o, &r);
        o.nonce = nonce16;
        o.nonce_len = sizeof(nonce16);
        o.trusted_signer = w == W_P256 ? local_cert : worlds[w].resp;
        (void)run(0, data, size, &o, &r);
    }

    /* 2: a recipe on a valid response */
    uint8_t b0 = size > 0 ? data[0] : 0, mods = size > 1 ? data[1] : 0;
    size_t n_edits = size > 2 ? data[2] % (MAX_EDITS + 1) : 0;
    size_t pos = size > 2 ? 3 : size;
    if (n_edits > (size - pos) / 3)
        n_edits = (size - pos) / 3;
    const uint8_t *edits = data + pos;
    pos += 3 * n_edits;
    const uint8_t *rest = data + pos;
    size_t rest_len = size - pos;
    const base_t *b = &bases[(b0 & 0x0f) % N_BASES];
    make_opts(b, mods, &o);

    tg_buf_t resp;
    tg_buf_init(&resp);
    if ((b0 & 0x10) == 0) {
        append(&resp, b->der, b->len);
        apply_edits(resp.data, resp.len, edits, n_edits);
        if (rest_len > 0 && rest[0] < resp.len)
            resp.len -= rest[0];
        if (run(1, resp.data, resp.len, &o, &r) == 0) {
            /* Only bytes outside tbsResponseData can have changed: the
             * answer must be the unedited response's. */
            tg_ocsp_verify_result_t want;
            CHECK(tg_ocsp_verify_response(b->der, b->len, &o, &want) == 0);
            CHECK(same_answer(&r, &want));
        }
    } else {
        build_resigned(b, (b0 & 0x20) != 0, edits, n_edits, rest, rest_len, &resp);
        (void)run(2, resp.data, resp.len, &o, &r);
    }
    tg_buf_free(&resp);
    CHECK(ERR_peek_error() == 0);
    return 0;
}
