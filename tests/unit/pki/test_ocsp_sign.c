/* Signed OCSP responses (pki/ocsp_sign.h) and their verification
 * (pki/ocsp_verify.h).
 *
 * Every supported algorithm signs responses made in the test; each is
 * checked by our verifier and, independently, by OpenSSL (OCSP_basic_verify,
 * OCSP_resp_find_status, OCSP_check_nonce, and the openssl CLI). SM2 shows
 * the stock failure and our fix, both ways: OpenSSL- and CLI-made SM2
 * responses verify only with the standard ID. Third-party responses under
 * $TG_VECTORS (OpenSSL's and BoringSSL's OCSP test data) are verified too. */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */
#include "pki/certid.h"
#include "pki/ocsp_sign.h"
#include "pki/ocsp_verify.h"
#include "pki/pki_internal.h"
#include "pki/signer.h"
#include "pki/sm2.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- keys, certificates, a small PKI per algorithm ---- */

static const tg_signer_alg_t all_algs[] = {
    TG_SIGNER_RSA, TG_SIGNER_ECDSA_P256, TG_SIGNER_ECDSA_P384, TG_SIGNER_ED25519, TG_SIGNER_SM2,
};
#define N_ALGS (sizeof(all_algs) / sizeof(all_algs[0]))

static EVP_PKEY *keygen(tg_signer_alg_t alg)
{
    EVP_PKEY *k = NULL;
    switch (alg) {
    case TG_SIGNER_RSA: k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048); break;
    case TG_SIGNER_ECDSA_P256: k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); break;
    case TG_SIGNER_ECDSA_P384: k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"); break;
    case TG_SIGNER_ED25519: k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"); break;
    case TG_SIGNER_SM2: k = EVP_PKEY_Q_keygen(NULL, NULL, "SM2"); break;
    }
    cr_assert_not_null(k);
    return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    cr_assert_not_null(ext);
    cr_assert(X509_add_ext(x, ext, -1));
    X509_EXTENSION_free(ext);
}

/* Certificate valid from now+nb_s to now+na_s; signed SM2-aware. */
static X509 *make_cert_validity(const char *cn, long serial, EVP_PKEY *pub, X509 *issuer,
                                EVP_PKEY *issuer_key, int is_ca, const char *eku, long nb_s,
                                long na_s)
{
    X509 *x = X509_new();
    cr_assert_not_null(x);
    cr_assert(X509_set_version(x, X509_VERSION_3));
    cr_assert(ASN1_INTEGER_set(X509_get_serialNumber(x), serial));
    X509_NAME *name = X509_NAME_new();
    cr_assert(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0));
    cr_assert(X509_set_subject_name(x, name));
    X509_NAME_free(name);
    cr_assert(X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x)));
    cr_assert(X509_gmtime_adj(X509_getm_notBefore(x), nb_s));
    cr_assert(X509_gmtime_adj(X509_getm_notAfter(x), na_s));
    cr_assert(X509_set_pubkey(x, pub));
    X509 *iss = issuer ? issuer : x;
    add_ext(x, iss, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    add_ext(x, iss, NID_subject_key_identifier, "hash");
    if (issuer != NULL)
        add_ext(x, iss, NID_authority_key_identifier, "keyid:always");
    if (is_ca)
        add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    if (eku != NULL)
        add_ext(x, iss, NID_ext_key_usage, eku);
    cr_assert_eq(tg_pki_sign_x509(x, issuer_key, NULL), 0);
    return x;
}

static X509 *make_cert(const char *cn, long serial, EVP_PKEY *pub, X509 *issuer,
                       EVP_PKEY *issuer_key, int is_ca, const char *eku)
{
    return make_cert_validity(cn, serial, pub, issuer, issuer_key, is_ca, eku, -86400, 30 * 86400);
}

#define EE_SERIAL 0x0102030405L

/* A CA, its end-entity certificate and a delegated OCSP responder. */
typedef struct {
    tg_signer_alg_t alg;
    EVP_PKEY *ca_key, *ee_key, *resp_key;
    X509 *ca, *ee, *resp;
    tg_signer_t *ca_signer, *resp_signer;
} world_t;

static void world_init(world_t *w, tg_signer_alg_t alg)
{
    memset(w, 0, sizeof(*w));
    w->alg = alg;
    w->ca_key = keygen(alg);
    w->ca = make_cert("trustgate test CA", 1, w->ca_key, NULL, w->ca_key, 1, NULL);
    w->ee_key = keygen(alg);
    w->ee = make_cert("trustgate test EE", EE_SERIAL, w->ee_key, w->ca, w->ca_key, 0, NULL);
    w->resp_key = keygen(alg);
    w->resp =
        make_cert("trustgate test responder", 2, w->resp_key, w->ca, w->ca_key, 0, "OCSPSigning");
    cr_assert_eq(tg_signer_new(w->ca, w->ca_key, &w->ca_signer), 0);
    cr_assert_eq(tg_signer_new(w->resp, w->resp_key, &w->resp_signer), 0);
}

static void world_free(world_t *w)
{
    tg_signer_free(w->ca_signer);
    tg_signer_free(w->resp_signer);
    X509_free(w->ca);
    X509_free(w->ee);
    X509_free(w->resp);
    EVP_PKEY_free(w->ca_key);
    EVP_PKEY_free(w->ee_key);
    EVP_PKEY_free(w->resp_key);
}

static const EVP_MD *hash_md(tg_hash_alg_t alg)
{
    return tg_pki_hash_md(alg);
}

/* The CertID for a serial under the world's CA, made by OpenSSL (so it also
 * serves as the independent reference); *out_oid, when not NULL, gets the
 * OpenSSL object (caller frees). */
static tg_certid_t certid(const world_t *w, tg_hash_alg_t alg, long serial, OCSP_CERTID **out_oid)
{
    ASN1_INTEGER *ai = ASN1_INTEGER_new();
    cr_assert(ASN1_INTEGER_set(ai, serial));
    OCSP_CERTID *id = OCSP_cert_id_new(hash_md(alg), X509_get_subject_name(w->ca),
                                       X509_get0_pubkey_bitstr(w->ca), ai);
    cr_assert_not_null(id);
    ASN1_INTEGER_free(ai);
    tg_certid_t c;
    cr_assert_eq(tg_pki_certid_from_ocsp(id, &c), 0);
    if (out_oid != NULL)
        *out_oid = id;
    else
        OCSP_CERTID_free(id);
    return c;
}

static size_t tlv(size_t n)
{
    size_t k = 1;
    if (n >= 0x80)
        for (size_t v = n; v; v >>= 8)
            k++;
    return 1 + k + n;
}

static void sign_ok(const tg_signer_t *s, const tg_ocsp_single_t *singles, size_t n,
                    const uint8_t *nonce, size_t nonce_len, time_t produced, tg_buf_t *out)
{
    tg_buf_init(out);
    cr_assert_eq(tg_ocsp_sign_response(s, singles, n, nonce, nonce_len, produced, out), 0);
    cr_assert_gt(out->len, 0);
}

static int verify(const world_t *w, const tg_buf_t *der, const tg_certid_t *id,
                  const uint8_t *nonce, size_t nonce_len, X509 *trusted, time_t now,
                  tg_ocsp_verify_result_t *res)
{
    tg_ocsp_verify_opts_t o = {
        .issuer = w->ca,
        .trusted_signer = trusted,
        .certid = id,
        .nonce = nonce,
        .nonce_len = nonce_len,
        .now = now,
    };
    int rc = tg_ocsp_verify_response(der->data, der->len, &o, res);
    cr_assert_eq(ERR_peek_error(), 0, "the verifier leaves the error queue empty");
    return rc;
}

static void expect_refused(const world_t *w, const tg_buf_t *der, const tg_certid_t *id,
                           const uint8_t *nonce, size_t nonce_len, time_t now, const char *why)
{
    tg_ocsp_verify_result_t res;
    int rc = verify(w, der, id, nonce, nonce_len, NULL, now, &res);
    cr_assert_eq(rc, TG_EMALFORMED, "%s: expected refusal %s, got rc %d",
                 tg_signer_alg_name(w->alg), why, rc);
    cr_assert_not_null(res.error);
    cr_assert_str_eq(res.error, why, "%s", tg_signer_alg_name(w->alg));
}

static OCSP_RESPONSE *d2i_resp(const tg_buf_t *der)
{
    const unsigned char *p = der->data;
    OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, (long)der->len);
    cr_assert_not_null(r);
    cr_assert_eq(p, der->data + der->len);
    return r;
}

static time_t asn1_to_time(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;
    cr_assert(ASN1_TIME_to_tm(t, &tm));
    return timegm(&tm);
}

/* OpenSSL's own reading of what we signed: DER canonical (re-encodes to the
 * same bytes), signature good with the signer trusted (OCSP_TRUSTOTHER),
 * every status findable through OpenSSL's CertID, the nonce matching. */
static void openssl_cross_check(const world_t *w, const tg_signer_t *s, const tg_buf_t *der,
                                OCSP_CERTID **ids, const tg_ocsp_single_t *singles, size_t n,
                                const uint8_t *nonce, size_t nonce_len)
{
    OCSP_RESPONSE *r = d2i_resp(der);
    unsigned char *re = NULL;
    int relen = i2d_OCSP_RESPONSE(r, &re);
    cr_assert_eq((size_t)relen, der->len);
    cr_assert_arr_eq(re, der->data, der->len, "DER re-encodes to itself");
    OPENSSL_free(re);
    cr_assert_eq(OCSP_response_status(r), OCSP_RESPONSE_STATUS_SUCCESSFUL);
    OCSP_BASICRESP *bs = OCSP_response_get1_basic(r);
    cr_assert_not_null(bs);

    STACK_OF(X509) *certs = sk_X509_new_null();
    cr_assert(sk_X509_push(certs, tg_signer_cert(s)));
    X509_STORE *store = X509_STORE_new();
    int ok = OCSP_basic_verify(bs, certs, store, OCSP_TRUSTOTHER);
    if (w->alg == TG_SIGNER_SM2)
        cr_assert_neq(ok, 1, "stock OCSP_basic_verify must fail on SM2 with the standard ID");
    else
        cr_assert_eq(ok, 1, "OCSP_basic_verify %s", tg_signer_alg_name(w->alg));
    ERR_clear_error();
    X509_STORE_free(store);
    sk_X509_free(certs);

    for (size_t i = 0; i < n; i++) {
        int status = -1, reason = -2;
        ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
        cr_assert_eq(OCSP_resp_find_status(bs, ids[i], &status, &reason, &rev, &thisupd, &nextupd),
                     1);
        cr_assert_eq(status, (int)singles[i].status);
        cr_assert_eq(asn1_to_time(thisupd), singles[i].this_update);
        if (singles[i].next_update)
            cr_assert_eq(asn1_to_time(nextupd), singles[i].next_update);
        else
            cr_assert_null(nextupd);
        if (singles[i].status == TG_CERT_REVOKED) {
            cr_assert_eq(asn1_to_time(rev), singles[i].revocation_time);
            cr_assert_eq(reason, singles[i].reason);
        }
    }

    if (nonce != NULL) {
        OCSP_REQUEST *req = OCSP_REQUEST_new();
        cr_assert(OCSP_request_add1_nonce(req, (unsigned char *)nonce, (int)nonce_len));
        cr_assert_eq(OCSP_check_nonce(req, bs), 1, "OpenSSL sees the nonce echoed");
        OCSP_REQUEST_free(req);
    }
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(r);
}

/* ---- every algorithm, both signers, with and without a nonce ---- */

Test(ocsp_sign, sign_and_verify_every_algorithm)
{
    time_t now = time(NULL);
    static const uint8_t nonce[] = {0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04,
                                    0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c};
    for (size_t a = 0; a < N_ALGS; a++) {
        world_t w;
        world_init(&w, all_algs[a]);
        OCSP_CERTID *oids[4];
        tg_certid_t ids[4] = {
            certid(&w, TG_HASH_SHA1, EE_SERIAL, &oids[0]),
            certid(&w, TG_HASH_SHA256, 0x80, &oids[1]), /* serial 00 80 */
            certid(&w, TG_HASH_SM3, 7, &oids[2]),
            certid(&w, TG_HASH_SHA512, 9, &oids[3]),
        };
        cr_assert_eq(ids[1].serial_len, 2);
        tg_ocsp_single_t singles[4] = {
            {.id = &ids[0],
             .status = TG_CERT_GOOD,
             .this_update = now - 60,
             .next_update = now + 3600},
            {.id = &ids[1],
             .status = TG_CERT_REVOKED,
             .revocation_time = now - 86400,
             .reason = TG_CRL_REASON_KEY_COMPROMISE,
             .this_update = now - 60,
             .next_update = now + 7200},
            {.id = &ids[2], .status = TG_CERT_UNKNOWN, .this_update = now - 120},
            {.id = &ids[3],
             .status = TG_CERT_REVOKED,
             .revocation_time = 1000000000,
             .reason = TG_CRL_REASON_NONE,
             .this_update = now - 60,
             .next_update = now + 60},
        };
        const tg_signer_t *signers[2] = {w.ca_signer, w.resp_signer};
        for (int si = 0; si < 2; si++) {
            for (int with_nonce = 0; with_nonce < 2; with_nonce++) {
                const uint8_t *nc = with_nonce ? nonce : NULL;
                size_t nl = with_nonce ? sizeof(nonce) : 0;
                tg_buf_t der;
                sign_ok(signers[si], singles, 4, nc, nl, now, &der);
                for (size_t i = 0; i < 4; i++) {
                    tg_ocsp_verify_result_t res;
                    cr_assert_eq(verify(&w, &der, &ids[i], nc, nl, NULL, now, &res), 0,
                                 "%s signer %d nonce %d single %zu: %s", tg_signer_alg_name(w.alg),
                                 si, with_nonce, i, res.error ? res.error : "");
                    cr_assert_null(res.error);
                    cr_assert_eq(res.status, singles[i].status);
                    cr_assert_eq(res.this_update, singles[i].this_update);
                    cr_assert_eq(res.next_update, singles[i].next_update);
                    cr_assert_eq(res.produced_at, now);
                    cr_assert_eq(res.signer,
                                 si == 0 ? TG_OCSP_SIGNER_ISSUER : TG_OCSP_SIGNER_DELEGATED);
                    cr_assert_eq(res.nonce_echoed, with_nonce);
                    if (singles[i].status == TG_CERT_REVOKED) {
                        cr_assert_eq(res.revocation_time, singles[i].revocation_time);
                        cr_assert_eq(res.revocation_reason, singles[i].reason);
                    }
                }
                openssl_cross_check(&w, signers[si], &der, oids, singles, 4, nc, nl);
                tg_buf_free(&der);
            }
        }
        for (int i = 0; i < 4; i++)
            OCSP_CERTID_free(oids[i]);
        world_free(&w);
    }
}

/* The delegated responder passes OpenSSL's full responder authorisation
 * too (chain to the CA, id-kp-OCSPSigning, CertID issuer match). */
Test(ocsp_sign, openssl_full_verify_of_delegated_and_ca_signed)
{
    time_t now = time(NULL);
    for (size_t a = 0; a < N_ALGS; a++) {
        if (all_algs[a] == TG_SIGNER_SM2)
            continue; /* stock OpenSSL cannot: shown in the SM2 tests */
        world_t w;
        world_init(&w, all_algs[a]);
        tg_certid_t id = certid(&w, TG_HASH_SHA1, EE_SERIAL, NULL);
        tg_ocsp_single_t one = {.id = &id, .status = TG_CERT_GOOD, .this_update = now};
        const tg_signer_t *signers[2] = {w.ca_signer, w.resp_signer};
        for (int si = 0; si < 2; si++) {
            tg_buf_t der;
            sign_ok(signers[si], &one, 1, NULL, 0, now, &der);
            OCSP_RESPONSE *r = d2i_resp(&der);
            OCSP_BASICRESP *bs = OCSP_response_get1_basic(r);
            X509_STORE *store = X509_STORE_new();
            cr_assert(X509_STORE_add_cert(store, w.ca));
            cr_assert_eq(OCSP_basic_verify(bs, NULL, store, 0), 1, "%s signer %d",
                         tg_signer_alg_name(w.alg), si);
            X509_STORE_free(store);
            OCSP_BASICRESP_free(bs);
            OCSP_RESPONSE_free(r);
            tg_buf_free(&der);
        }
        world_free(&w);
    }
}

/* ---- responses made by OpenSSL's own encoder ---- */

/* Signs a one-answer response with OCSP_basic_sign_ctx; sm2_std_id
 * chooses the standard ID or OpenSSL's empty default. */
static void openssl_response(const world_t *w, X509 *signer, EVP_PKEY *key, OCSP_CERTID *id,
                             int sm2_std_id, unsigned long flags, tg_buf_t *out)
{
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    ASN1_TIME *thisupd = X509_gmtime_adj(NULL, -60);
    ASN1_TIME *nextupd = X509_gmtime_adj(NULL, 3600);
    cr_assert_not_null(
        OCSP_basic_add1_status(bs, id, V_OCSP_CERTSTATUS_GOOD, 0, NULL, thisupd, nextupd));
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const EVP_MD *md = NULL;
    cr_assert_eq(tg_pki_default_md(key, &md), 0);
    cr_assert_eq(EVP_DigestSignInit(m, &pctx, md, NULL, key), 1);
    if (w->alg == TG_SIGNER_SM2 && sm2_std_id)
        cr_assert_eq(EVP_PKEY_CTX_set1_id(pctx, TG_SM2_ID, TG_SM2_ID_LEN), 1);
    cr_assert_eq(OCSP_basic_sign_ctx(bs, signer, m, NULL, flags), 1);
    OCSP_RESPONSE *r = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
    cr_assert_not_null(r);
    unsigned char *d = NULL;
    int n = i2d_OCSP_RESPONSE(r, &d);
    cr_assert_gt(n, 0);
    tg_buf_init(out);
    cr_assert_eq(tg_buf_append(out, d, (size_t)n), 0);
    OPENSSL_free(d);
    OCSP_RESPONSE_free(r);
    EVP_MD_CTX_free(m);
    ASN1_TIME_free(thisupd);
    ASN1_TIME_free(nextupd);
    OCSP_BASICRESP_free(bs);
}

Test(ocsp_sign, openssl_made_responses_verify_and_sm2_empty_id_refused)
{
    time_t now = time(NULL);
    for (size_t a = 0; a < N_ALGS; a++) {
        world_t w;
        world_init(&w, all_algs[a]);
        OCSP_CERTID *oid;
        tg_certid_t id = certid(&w, TG_HASH_SHA256, EE_SERIAL, &oid);
        /* byName and byKey, CA-signed and delegated. */
        for (int variant = 0; variant < 4; variant++) {
            X509 *signer = variant < 2 ? w.ca : w.resp;
            EVP_PKEY *key = variant < 2 ? w.ca_key : w.resp_key;
            unsigned long flags = (variant & 1) ? OCSP_RESPID_KEY : 0;
            tg_buf_t der;
            openssl_response(&w, signer, key, oid, 1, flags, &der);
            tg_ocsp_verify_result_t res;
            cr_assert_eq(verify(&w, &der, &id, NULL, 0, NULL, now, &res), 0, "%s variant %d: %s",
                         tg_signer_alg_name(w.alg), variant, res.error);
            cr_assert_eq(res.status, TG_CERT_GOOD);
            tg_buf_free(&der);
            if (w.alg == TG_SIGNER_SM2) {
                /* Signed with OpenSSL's empty default ID: refused. */
                openssl_response(&w, signer, key, oid, 0, flags, &der);
                expect_refused(&w, &der, &id, NULL, 0, now, "bad_signature");
                tg_buf_free(&der);
            }
        }
        OCSP_CERTID_free(oid);
        world_free(&w);
    }
}

/* ---- tampering ---- */

Test(ocsp_sign, tampered_responses_refused)
{
    time_t now = time(NULL);
    for (size_t a = 0; a < N_ALGS; a++) {
        world_t w;
        world_init(&w, all_algs[a]);
        tg_certid_t id = certid(&w, TG_HASH_SHA1, EE_SERIAL, NULL);
        tg_ocsp_single_t one = {
            .id = &id, .status = TG_CERT_GOOD, .this_update = now - 10, .next_update = now + 3600};
        for (int si = 0; si < 2; si++) {
            const tg_signer_t *s = si ? w.resp_signer : w.ca_signer;
            tg_buf_t der;
            sign_ok(s, &one, 1, NULL, 0, now, &der);
            /* The signature's last byte sits just before certs. */
            size_t certs = tlv(tlv(tg_signer_cert_der(s).n));
            der.data[der.len - certs - 1] ^= 0x01;
            expect_refused(&w, &der, &id, NULL, 0, now, "bad_signature");
            der.data[der.len - certs - 1] ^= 0x01;
            /* One bit of the issuer name hash, inside tbsResponseData
             * (the key hash may also be the responderID). */
            uint8_t *hit = memmem(der.data, der.len, id.name_hash, id.hash_len);
            cr_assert_not_null(hit);
            hit[5] ^= 0x20;
            expect_refused(&w, &der, &id, NULL, 0, now, "bad_signature");
            hit[5] ^= 0x20;
            /* producedAt's seconds. */
            hit = memmem(der.data, der.len, "\x18\x0f", 2);
            cr_assert_not_null(hit);
            hit[2 + 13] = hit[2 + 13] == '0' ? '1' : '0';
            expect_refused(&w, &der, &id, NULL, 0, now, "bad_signature");
            tg_buf_free(&der);
        }
        world_free(&w);
    }
}

/* ---- responder authorisation ---- */

Test(ocsp_sign, delegated_responder_rules)
{
    time_t now = time(NULL);
    for (size_t a = 0; a < N_ALGS; a++) {
        world_t w;
        world_init(&w, all_algs[a]);
        tg_certid_t id = certid(&w, TG_HASH_SHA256, EE_SERIAL, NULL);
        tg_ocsp_single_t one = {.id = &id, .status = TG_CERT_GOOD, .this_update = now};

        /* Issued by another CA (same names), with the EKU. */
        EVP_PKEY *other_key = keygen(w.alg);
        X509 *other_ca = make_cert("trustgate test CA", 1, other_key, NULL, other_key, 1, NULL);
        EVP_PKEY *k = keygen(w.alg);
        X509 *foreign =
            make_cert("trustgate test responder", 2, k, other_ca, other_key, 0, "OCSPSigning");
        /* Issued by the CA, without the EKU; and expired. */
        X509 *no_eku = make_cert("responder without EKU", 3, k, w.ca, w.ca_key, 0, "serverAuth");
        X509 *expired = make_cert_validity("expired responder", 4, k, w.ca, w.ca_key, 0,
                                           "OCSPSigning", -10 * 86400, -86400);
        X509 *self = make_cert("self-signed responder", 5, k, NULL, k, 0, "OCSPSigning");
        struct {
            X509 *cert;
            const char *name;
        } bad[] = {{foreign, "foreign"}, {no_eku, "no_eku"}, {expired, "expired"}, {self, "self"}};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            tg_signer_t *s = NULL;
            cr_assert_eq(tg_signer_new(bad[i].cert, k, &s), 0);
            tg_buf_t der;
            sign_ok(s, &one, 1, NULL, 0, now, &der);
            expect_refused(&w, &der, &id, NULL, 0, now, "unauthorized_signer");
            /* Trusted outright (VAfile), the same response is accepted,
             * except when producedAt lies outside the certificate. */
            tg_ocsp_verify_result_t res;
            int rc = verify(&w, &der, &id, NULL, 0, bad[i].cert, now, &res);
            if (bad[i].cert == expired) {
                cr_assert_eq(rc, TG_EMALFORMED);
                cr_assert_str_eq(res.error, "bad_produced_at");
            } else {
                cr_assert_eq(rc, 0, "%s: %s", bad[i].name, res.error);
                cr_assert_eq(res.signer, TG_OCSP_SIGNER_TRUSTED);
            }
            tg_buf_free(&der);
            tg_signer_free(s);
        }
        X509_free(self);
        X509_free(expired);
        X509_free(no_eku);
        X509_free(foreign);
        X509_free(other_ca);
        EVP_PKEY_free(k);
        EVP_PKEY_free(other_key);

        /* (A delegated responder whose signature fails is in
         * tampered_responses_refused and the WKDOSC vectors.) */
        world_free(&w);
    }
}

/* ---- SingleResponse matching ---- */

Test(ocsp_sign, duplicate_single_refused)
{
    time_t now = time(NULL);
    world_t w;
    world_init(&w, TG_SIGNER_ECDSA_P256);
    tg_certid_t id = certid(&w, TG_HASH_SHA1, EE_SERIAL, NULL);
    tg_certid_t other = certid(&w, TG_HASH_SHA1, 77, NULL);
    tg_ocsp_single_t same[2] = {
        {.id = &id, .status = TG_CERT_GOOD, .this_update = now},
        {.id = &id, .status = TG_CERT_GOOD, .this_update = now},
    };
    tg_buf_t der;
    sign_ok(w.ca_signer, same, 2, NULL, 0, now, &der);
    expect_refused(&w, &der, &id, NULL, 0, now, "duplicate_single");
    tg_buf_free(&der);
    same[1].status = TG_CERT_REVOKED;
    same[1].revocation_time = now - 5;
    same[1].reason = TG_CRL_REASON_NONE;
    sign_ok(w.ca_signer, same, 2, NULL, 0, now, &der);
    expect_refused(&w, &der, &id, NULL, 0, now, "duplicate_single");
    /* Another certificate's answer in the same response is unaffected. */
    tg_buf_free(&der);
    tg_ocsp_single_t mixed[3] = {
        {.id = &id, .status = TG_CERT_GOOD, .this_update = now},
        {.id = &other, .status = TG_CERT_GOOD, .this_update = now},
        {.id = &other, .status = TG_CERT_UNKNOWN, .this_update = now},
    };
    sign_ok(w.ca_signer, mixed, 3, NULL, 0, now, &der);
    tg_ocsp_verify_result_t res;
    cr_assert_eq(verify(&w, &der, &id, NULL, 0, NULL, now, &res), 0);
    expect_refused(&w, &der, &other, NULL, 0, now, "duplicate_single");
    tg_buf_free(&der);
    world_free(&w);
}

Test(ocsp_sign, certid_mismatch_refused)
{
    time_t now = time(NULL);
    world_t w;
    world_init(&w, TG_SIGNER_ECDSA_P256);
    tg_certid_t id = certid(&w, TG_HASH_SHA1, EE_SERIAL, NULL);
    tg_ocsp_single_t one = {.id = &id, .status = TG_CERT_GOOD, .this_update = now};
    tg_buf_t der;
    sign_ok(w.ca_signer, &one, 1, NULL, 0, now, &der);
    tg_certid_t other_serial = certid(&w, TG_HASH_SHA1, EE_SERIAL + 1, NULL);
    expect_refused(&w, &der, &other_serial, NULL, 0, now, "certid_mismatch");
    tg_certid_t other_hash = certid(&w, TG_HASH_SHA256, EE_SERIAL, NULL);
    expect_refused(&w, &der, &other_hash, NULL, 0, now, "certid_mismatch");

    /* A CertID that does not name the given issuer is a caller bug. */
    world_t w2;
    world_init(&w2, TG_SIGNER_ECDSA_P256);
    tg_certid_t foreign = certid(&w2, TG_HASH_SHA1, EE_SERIAL, NULL);
    tg_ocsp_verify_result_t res;
    cr_assert_eq(verify(&w, &der, &foreign, NULL, 0, NULL, now, &res), TG_EINVAL);
    cr_assert_str_eq(res.error, "internal_error");
    tg_ocsp_verify_opts_t o = {.issuer = w.ca, .now = now};
    cr_assert_eq(tg_ocsp_verify_response(der.data, der.len, &o, &res), TG_EINVAL);
    cr_assert_eq(tg_ocsp_verify_response(der.data, der.len, NULL, &res), TG_EINVAL);
    world_free(&w2);
    tg_buf_free(&der);
    world_free(&w);
}

Test(ocsp_sign, certid_for_cert_matches_openssl)
{
    world_t w;
    world_init(&w, TG_SIGNER_ECDSA_P256);
    for (int alg = 0; alg < TG_HASH_COUNT; alg++) {
        tg_certid_t mine, ref = certid(&w, (tg_hash_alg_t)alg, EE_SERIAL, NULL);
        cr_assert_eq(tg_pki_certid_for_cert(w.ca, w.ee, (tg_hash_alg_t)alg, &mine), 0);
        cr_assert(tg_certid_eq(&mine, &ref), "%s", tg_hash_alg_name((tg_hash_alg_t)alg));
    }
    /* Top bit set: a 00 goes in front. */
    EVP_PKEY *k = keygen(TG_SIGNER_ECDSA_P256);
    X509 *c = make_cert("high serial", 0x80, k, w.ca, w.ca_key, 0, NULL);
    tg_certid_t mine, ref = certid(&w, TG_HASH_SHA1, 0x80, NULL);
    cr_assert_eq(tg_pki_certid_for_cert(w.ca, c, TG_HASH_SHA1, &mine), 0);
    cr_assert_eq(mine.serial_len, 2);
    cr_assert(tg_certid_eq(&mine, &ref));
    cr_assert_eq(tg_pki_certid_for_cert(w.ca, NULL, TG_HASH_SHA1, &mine), TG_EINVAL);
    X509_free(c);
    EVP_PKEY_free(k);
    world_free(&w);
}

/* ---- nonces ---- */

Test(ocsp_sign, nonce_echo_rules)
{
    time_t now = time(NULL);
    world_t w;
    world_init(&w, TG_SIGNER_ED25519);
    tg_certid_t id = certid(&w, TG_HASH_SHA1, EE_SERIAL, NULL);
    tg_ocsp_single_t one = {.id = &id, .status = TG_CERT_GOOD, .this_update = now};
    uint8_t n1[TG_NONCE_MAX_LEN], n2[TG_NONCE_MAX_LEN];
    for (size_t i = 0; i < sizeof(n1); i++) {
        n1[i] = (uint8_t)i;
        n2[i] = (uint8_t)(i ^ 0x55);
    }
    /* 1, 16, 127 and 128 octets (128 needs a long-form length). */
    static const size_t lens[] = {1, 16, 127, 128};
    for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
        tg_buf_t der;
        sign_ok(w.ca_signer, &one, 1, n1, lens[l], now, &der);
        tg_ocsp_verify_result_t res;
        cr_assert_eq(verify(&w, &der, &id, n1, lens[l], NULL, now, &res), 0, "len %zu: %s", lens[l],
                     res.error);
        cr_assert_eq(res.nonce_echoed, 1);
        expect_refused(&w, &der, &id, n2, lens[l], now, "nonce_mismatch");
        if (lens[l] > 1)
            expect_refused(&w, &der, &id, n1, lens[l] - 1, now, "nonce_mismatch");
        /* No nonce sent: an echoed one does not matter. */
        cr_assert_eq(verify(&w, &der, &id, NULL, 0, NULL, now, &res), 0);
        cr_assert_eq(res.nonce_echoed, 0);
        OCSP_CERTID *oid;
        certid(&w, TG_HASH_SHA1, EE_SERIAL, &oid);
        openssl_cross_check(&w, w.ca_signer, &der, &oid, &one, 1, n1, lens[l]);
        OCSP_CERTID_free(oid);
        tg_buf_free(&der);
    }
    /* Sent, not echoed: refused unless allowed. */
    tg_buf_t der;
    sign_ok(w.ca_signer, &one, 1, NULL, 0, now, &der);
    expect_refused(&w, &der, &id, n1, 16, now, "nonce_mismatch");
    tg_ocsp_verify_opts_t o = {.issuer = w.ca,
                               .certid = &id,
                               .nonce = n1,
                               .nonce_len = 16,
                               .allow_missing_nonce = 1,
                               .now = now};
    tg_ocsp_verify_result_t res;
    cr_assert_eq(tg_ocsp_verify_response(der.data, der.len, &o, &res), 0);
    cr_assert_eq(res.nonce_echoed, 0);
    tg_buf_free(&der);
    /* A different nonce is refused even when a missing one is allowed. */
    sign_ok(w.ca_signer, &one, 1, n2, 16, now, &der);
    cr_assert_eq(tg_ocsp_verify_response(der.data, der.len, &o, &res), TG_EMALFORMED);
    cr_assert_str_eq(res.error, "nonce_mismatch");
    tg_buf_free(&der);
    world_free(&w);
}

/* ---- time window ---- */

Test(ocsp_sign, time_window)
{
    time_t now = time(NULL);
    world_t w;
    world_init(&w, TG_SIGNER_ECDSA_P384);
    tg_certid_t id = certid(&w, TG_HASH_SHA384, EE_SERIAL, NULL);
    tg_ocsp_verify_result_t res;
    tg_buf_t der;

    tg_ocsp_single_t one = {
        .id = &id, .status = TG_CERT_GOOD, .this_update = now + 200, .next_update = now + 3600};
    sign_ok(w.ca_signer, &one, 1, NULL, 0, now, &der);
    cr_assert_eq(verify(&w, &der, &id, NULL, 0, NULL, now, &res), 0, "within the skew");
    tg_buf_free(&der);

    one.this_update = now + TG_OCSP_MAX_SKEW_S + 60;
    sign_ok(w.ca_signer, &one, 1, NULL, 0, now, &der);
    expect_refused(&w, &der, &id, NULL, 0, now, "not_yet_valid");
    tg_buf_free(&der);

    one.this_update = now - 7200;
    one.next_update = now - 1;
    sign_ok(w.ca_signer, &one, 1, NULL, 0, now - 7200, &der);
    expect_refused(&w, &der, &id, NULL, 0, now, "expired");
    tg_buf_free(&der);

    /* producedAt in the future. */
    one.this_update = now;
    one.next_update = now + 60;
    sign_ok(w.ca_signer, &one, 1, NULL, 0, now + 3600, &der);
    expect_refused(&w, &der, &id, NULL, 0, now, "not_yet_valid");
    tg_buf_free(&der);

    /* producedAt before the signer certificate was valid. */
    sign_ok(w.ca_signer, &one, 1, NULL, 0, now - 3 * 86400, &der);
    expect_refused(&w, &der, &id, NULL, 0, now, "bad_produced_at");
    tg_buf_free(&der);

    /* No nextUpdate: only max_age limits it. */
    one.this_update = now - 3 * 86400;
    one.next_update = 0;
    sign_ok(w.ca_signer, &one, 1, NULL, 0, now, &der);
    cr_assert_eq(verify(&w, &der, &id, NULL, 0, NULL, now, &res), 0);
    tg_ocsp_verify_opts_t o = {.issuer = w.ca, .certid = &id, .now = now, .max_age_s = 86400};
    cr_assert_eq(tg_ocsp_verify_response(der.data, der.len, &o, &res), TG_EMALFORMED);
    cr_assert_str_eq(res.error, "expired");
    o.max_age_s = 7 * 86400;
    cr_assert_eq(tg_ocsp_verify_response(der.data, der.len, &o, &res), 0);
    tg_buf_free(&der);
    world_free(&w);
}

/* ---- malformed and unsuccessful ---- */

Test(ocsp_sign, malformed_and_unsuccessful_refused)
{
    time_t now = time(NULL);
    world_t w;
    world_init(&w, TG_SIGNER_ECDSA_P256);
    tg_certid_t id = certid(&w, TG_HASH_SHA1, EE_SERIAL, NULL);
    tg_ocsp_single_t one = {.id = &id, .status = TG_CERT_GOOD, .this_update = now};
    tg_buf_t der;
    sign_ok(w.ca_signer, &one, 1, NULL, 0, now, &der);

    tg_buf_t cut = {.data = der.data, .len = der.len - 1};
    expect_refused(&w, &cut, &id, NULL, 0, now, "malformed");
    cut.len = 0;
    expect_refused(&w, &cut, &id, NULL, 0, now, "malformed");
    tg_buf_t longer;
    tg_buf_init(&longer);
    cr_assert_eq(tg_buf_append(&longer, der.data, der.len), 0);
    cr_assert_eq(tg_buf_append(&longer, "\0", 1), 0);
    expect_refused(&w, &longer, &id, NULL, 0, now, "malformed");
    tg_buf_free(&longer);

    /* responseType changed from id-pkix-ocsp-basic (outside the signed
     * part): not a basic response. */
    uint8_t *oid = memmem(der.data, der.len, "\x2b\x06\x01\x05\x05\x07\x30\x01\x01", 9);
    cr_assert_not_null(oid);
    oid[8] = 0x05;
    expect_refused(&w, &der, &id, NULL, 0, now, "malformed");
    oid[8] = 0x01;

    static const uint8_t statuses[] = {1, 2, 3, 5, 6};
    for (size_t i = 0; i < sizeof(statuses); i++) {
        uint8_t unsuccessful[] = {0x30, 0x03, 0x0a, 0x01, statuses[i]};
        tg_buf_t u = {.data = unsuccessful, .len = sizeof(unsuccessful)};
        expect_refused(&w, &u, &id, NULL, 0, now, "not_successful");
    }
    static const uint8_t garbage[] = {0x30, 0x03, 0x02, 0x01, 0x00};
    tg_buf_t g = {.data = (uint8_t *)garbage, .len = sizeof(garbage)};
    expect_refused(&w, &g, &id, NULL, 0, now, "malformed");
    tg_buf_free(&der);
    world_free(&w);
}

/* ---- the encoder's own refusals ---- */

Test(ocsp_sign, invalid_arguments)
{
    time_t now = time(NULL);
    world_t w;
    world_init(&w, TG_SIGNER_ECDSA_P256);
    tg_certid_t id = certid(&w, TG_HASH_SHA1, EE_SERIAL, NULL);
    tg_ocsp_single_t one = {.id = &id, .status = TG_CERT_GOOD, .this_update = now};
    static const uint8_t nonce[TG_NONCE_MAX_LEN + 1] = {1};
    tg_buf_t out;
    tg_buf_init(&out);
    cr_assert_eq(tg_buf_append(&out, "prefix", 6), 0);

#define EXPECT_EINVAL(...)                                                                         \
    do {                                                                                           \
        cr_assert_eq(tg_ocsp_sign_response(__VA_ARGS__), TG_EINVAL);                               \
        cr_assert_eq(out.len, 6, "out restored");                                                  \
    } while (0)

    EXPECT_EINVAL(w.ca_signer, &one, 0, NULL, 0, now, &out);
    EXPECT_EINVAL(NULL, &one, 1, NULL, 0, now, &out);
    EXPECT_EINVAL(w.ca_signer, NULL, 1, NULL, 0, now, &out);
    EXPECT_EINVAL(w.ca_signer, &one, 1, nonce, 0, now, &out);
    EXPECT_EINVAL(w.ca_signer, &one, 1, nonce, TG_NONCE_MAX_LEN + 1, now, &out);
    EXPECT_EINVAL(w.ca_signer, &one, 1, NULL, 0, (time_t)-1, &out);
    EXPECT_EINVAL(w.ca_signer, &one, 1, NULL, 0, TG_OCSP_TIME_MAX + 1, &out);

    tg_ocsp_single_t bad = one;
    bad.status = (tg_cert_status_t)3;
    EXPECT_EINVAL(w.ca_signer, &bad, 1, NULL, 0, now, &out);
    bad = one;
    bad.status = TG_CERT_REVOKED;
    bad.revocation_time = now;
    bad.reason = 7; /* unused value */
    EXPECT_EINVAL(w.ca_signer, &bad, 1, NULL, 0, now, &out);
    bad.reason = 11;
    EXPECT_EINVAL(w.ca_signer, &bad, 1, NULL, 0, now, &out);
    bad.reason = TG_CRL_REASON_NONE;
    bad.revocation_time = -5;
    EXPECT_EINVAL(w.ca_signer, &bad, 1, NULL, 0, now, &out);
    bad = one;
    bad.next_update = now - 1;
    EXPECT_EINVAL(w.ca_signer, &bad, 1, NULL, 0, now, &out);
    bad = one;
    bad.id = NULL;
    EXPECT_EINVAL(w.ca_signer, &bad, 1, NULL, 0, now, &out);

    tg_certid_t bad_id = id;
    bad_id.hash_len = 32; /* SHA-1 is 20 */
    bad = one;
    bad.id = &bad_id;
    EXPECT_EINVAL(w.ca_signer, &bad, 1, NULL, 0, now, &out);
    bad_id = id;
    bad_id.serial[0] = 0x80; /* negative */
    EXPECT_EINVAL(w.ca_signer, &bad, 1, NULL, 0, now, &out);
    bad_id = id;
    bad_id.serial_len = 0;
    EXPECT_EINVAL(w.ca_signer, &bad, 1, NULL, 0, now, &out);
    bad_id = id;
    bad_id.serial[0] = 0;
    bad_id.serial[1] = 0x01; /* 00 01..: not minimal */
    EXPECT_EINVAL(w.ca_signer, &bad, 1, NULL, 0, now, &out);
    bad_id = id;
    bad_id.alg = TG_HASH_COUNT;
    EXPECT_EINVAL(w.ca_signer, &bad, 1, NULL, 0, now, &out);
#undef EXPECT_EINVAL

    /* Success appends after what out held. */
    cr_assert_eq(tg_ocsp_sign_response(w.ca_signer, &one, 1, NULL, 0, now, &out), 0);
    cr_assert_arr_eq(out.data, "prefix", 6);
    tg_buf_t tail = {.data = out.data + 6, .len = out.len - 6};
    tg_ocsp_verify_result_t res;
    cr_assert_eq(verify(&w, &tail, &id, NULL, 0, NULL, now, &res), 0);
    tg_buf_free(&out);
    world_free(&w);

    cr_assert_str_eq(tg_cert_status_name(TG_CERT_REVOKED), "revoked");
    cr_assert_str_eq(tg_cert_status_name((tg_cert_status_t)9), "invalid");
    cr_assert_str_eq(tg_ocsp_signer_kind_name(TG_OCSP_SIGNER_DELEGATED), "delegated");
}

/* Enough answers that the ResponseData outgrows the stack buffer, and
 * lengths in every DER length form. */
Test(ocsp_sign, many_singles)
{
    time_t now = time(NULL);
    world_t w;
    world_init(&w, TG_SIGNER_RSA);
    enum { N = 500 };
    tg_certid_t *ids = calloc(N, sizeof(*ids));
    tg_ocsp_single_t *singles = calloc(N, sizeof(*singles));
    cr_assert(ids && singles);
    for (int i = 0; i < N; i++) {
        ids[i] = certid(&w, (tg_hash_alg_t)(i % TG_HASH_COUNT), 1000 + i, NULL);
        int reason = i % 11 == 7 ? TG_CRL_REASON_NONE : i % 11;
        singles[i] = (tg_ocsp_single_t){.id = &ids[i],
                                        .status = (tg_cert_status_t)(i % 3),
                                        .revocation_time = now - i,
                                        .reason = reason,
                                        .this_update = now - 10,
                                        .next_update = i % 4 ? now + 100 : 0};
    }
    tg_buf_t der;
    sign_ok(w.resp_signer, singles, N, NULL, 0, now, &der);
    cr_assert_gt(der.len, 65536, "three-byte lengths are exercised");
    for (int i = 0; i < N; i += 37) {
        tg_ocsp_verify_result_t res;
        cr_assert_eq(verify(&w, &der, &ids[i], NULL, 0, NULL, now, &res), 0, "%d: %s", i,
                     res.error);
        cr_assert_eq(res.status, singles[i].status);
        cr_assert_eq(res.next_update, singles[i].next_update);
        if (singles[i].status == TG_CERT_REVOKED)
            cr_assert_eq(res.revocation_reason, singles[i].reason);
    }
    OCSP_RESPONSE *r = d2i_resp(&der);
    OCSP_BASICRESP *bs = OCSP_response_get1_basic(r);
    cr_assert_eq(OCSP_resp_count(bs), N);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(r);
    tg_buf_free(&der);
    free(singles);
    free(ids);
    world_free(&w);
}

/* ---- temporary files for the CLI cross-checks ---- */

static char tmpdir[64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tg-ocsp-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void rm_tmpdir(void)
{
    if (tmpdir[0] != '\0')
        nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static const char *tpath(char *buf, const char *file)
{
    snprintf(buf, 256, "%s/%s", tmpdir, file);
    return buf;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void write_pem_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert(PEM_write_X509(f, x));
    fclose(f);
}

static void write_pem_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
    fclose(f);
}

static char *read_file(const char *path, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = malloc(1 << 20);
    cr_assert_not_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    *out_len = n;
    return buf;
}

static int have_openssl_cli(void)
{
    return system("openssl version >/dev/null 2>&1") == 0;
}

/* openssl ocsp verifies what we signed (RSA and ECDSA P-256, CA-signed and
 * delegated). */
Test(ocsp_cli, openssl_cli_verifies_our_responses, .init = make_tmpdir, .fini = rm_tmpdir)
{
    if (!have_openssl_cli())
        cr_skip_test("openssl CLI not available");
    time_t now = time(NULL);
    static const tg_signer_alg_t algs[] = {TG_SIGNER_RSA, TG_SIGNER_ECDSA_P256};
    for (size_t a = 0; a < 2; a++) {
        world_t w;
        world_init(&w, algs[a]);
        tg_certid_t id = certid(&w, TG_HASH_SHA1, EE_SERIAL, NULL);
        tg_ocsp_single_t one = {.id = &id,
                                .status = TG_CERT_REVOKED,
                                .revocation_time = now - 3600,
                                .reason = TG_CRL_REASON_SUPERSEDED,
                                .this_update = now - 60,
                                .next_update = now + 3600};
        char ca[256], ee[256], rs[256], r[256], out[256], cmd[2048];
        write_pem_cert(tpath(ca, "ca.pem"), w.ca);
        write_pem_cert(tpath(ee, "ee.pem"), w.ee);
        write_pem_cert(tpath(rs, "resp.pem"), w.resp);
        for (int si = 0; si < 2; si++) {
            tg_buf_t der;
            sign_ok(si ? w.resp_signer : w.ca_signer, &one, 1, NULL, 0, now, &der);
            write_file(tpath(r, "r.der"), der.data, der.len);
            tpath(out, "out.txt");
            if (si == 0)
                snprintf(cmd, sizeof(cmd),
                         "openssl ocsp -respin %s -CAfile %s -issuer %s -cert %s -no_nonce "
                         ">%s 2>&1",
                         r, ca, ca, ee, out);
            else
                snprintf(cmd, sizeof(cmd),
                         "openssl ocsp -respin %s -CAfile %s -verify_other %s -issuer %s "
                         "-cert %s -no_nonce >%s 2>&1",
                         r, ca, rs, ca, ee, out);
            int rc = system(cmd);
            size_t n;
            char *text = read_file(out, &n);
            cr_assert_not_null(text);
            cr_assert_eq(rc, 0, "%s", text);
            cr_assert_not_null(strstr(text, "Response verify OK"), "%s", text);
            cr_assert_not_null(strstr(text, "revoked"), "%s", text);
            cr_assert_not_null(strstr(text, "superseded"), "%s", text);
            free(text);
            /* And -VAfile: the responder trusted outright. */
            snprintf(cmd, sizeof(cmd),
                     "openssl ocsp -respin %s -VAfile %s -issuer %s -cert %s -no_nonce >%s 2>&1", r,
                     si ? rs : ca, ca, ee, out);
            rc = system(cmd);
            text = read_file(out, &n);
            cr_assert_eq(rc, 0, "%s", text);
            cr_assert_not_null(strstr(text, "Response verify OK"), "%s", text);
            free(text);
            tg_buf_free(&der);
        }
        world_free(&w);
    }
}

/* The other direction for SM2: `openssl ocsp` as a one-shot responder
 * signs with SM3 and the standard ID, and our verifier accepts it; the
 * same without -rsigopt (OpenSSL's empty ID) is refused. */
Test(ocsp_cli, openssl_cli_sm2_responses, .init = make_tmpdir, .fini = rm_tmpdir)
{
    if (!have_openssl_cli())
        cr_skip_test("openssl CLI not available");
    world_t w;
    world_init(&w, TG_SIGNER_SM2);
    char ca[256], key[256], rs[256], rkey[256], idx[256], req[256], r[256], out[256];
    char cmd[4096];
    write_pem_cert(tpath(ca, "ca.pem"), w.ca);
    write_pem_key(tpath(key, "ca.key"), w.ca_key);
    write_pem_cert(tpath(rs, "resp.pem"), w.resp);
    write_pem_key(tpath(rkey, "resp.key"), w.resp_key);

    /* index.txt: status, expiry, revocation, serial (hex), file, subject. */
    FILE *f = fopen(tpath(idx, "index.txt"), "w");
    cr_assert_not_null(f);
    fprintf(f, "V\t491231235959Z\t\t%010lX\tunknown\t/CN=trustgate test EE\n", EE_SERIAL);
    fprintf(f, "R\t491231235959Z\t240101000000Z,keyCompromise\t0B\tunknown\t/CN=revoked\n");
    fclose(f);

    static const long serials[] = {EE_SERIAL, 0x0b};
    for (int which = 0; which < 2; which++) {
        OCSP_CERTID *oid;
        tg_certid_t id = certid(&w, TG_HASH_SHA1, serials[which], &oid);
        OCSP_REQUEST *rq = OCSP_REQUEST_new();
        cr_assert_not_null(OCSP_request_add0_id(rq, oid)); /* takes oid */
        unsigned char *d = NULL;
        int n = i2d_OCSP_REQUEST(rq, &d);
        cr_assert_gt(n, 0);
        write_file(tpath(req, "req.der"), d, (size_t)n);
        OPENSSL_free(d);
        OCSP_REQUEST_free(rq);

        /* CA-signed and delegated; standard ID and empty ID. */
        for (int variant = 0; variant < 4; variant++) {
            int delegated = variant & 1, std_id = variant < 2;
            tpath(r, "r.der");
            remove(r);
            snprintf(cmd, sizeof(cmd),
                     "openssl ocsp -index %s -CA %s -rsigner %s -rkey %s -rmd sm3 %s "
                     "-reqin %s -respout %s -ndays 1 >%s 2>&1",
                     idx, ca, delegated ? rs : ca, delegated ? rkey : key,
                     std_id ? "-rsigopt distid:1234567812345678" : "", req, r,
                     tpath(out, "out.txt"));
            int rc = system(cmd);
            size_t len;
            char *text = read_file(out, &len);
            cr_assert_eq(rc, 0, "%s\n%s", cmd, text);
            free(text);
            char *resp = read_file(r, &len);
            cr_assert_not_null(resp);
            tg_buf_t der = {.data = (uint8_t *)resp, .len = len};
            tg_ocsp_verify_result_t res;
            int vrc = verify(&w, &der, &id, NULL, 0, NULL, time(NULL), &res);
            if (std_id) {
                cr_assert_eq(vrc, 0, "variant %d: %s", variant, res.error);
                cr_assert_eq(res.signer,
                             delegated ? TG_OCSP_SIGNER_DELEGATED : TG_OCSP_SIGNER_ISSUER);
                if (which == 0) {
                    cr_assert_eq(res.status, TG_CERT_GOOD);
                } else {
                    cr_assert_eq(res.status, TG_CERT_REVOKED);
                    cr_assert_eq(res.revocation_reason, TG_CRL_REASON_KEY_COMPROMISE);
                    cr_assert_eq(res.revocation_time, 1704067200);
                }
                cr_assert_gt(res.next_update, res.this_update);
            } else {
                cr_assert_eq(vrc, TG_EMALFORMED, "empty ID must be refused");
                cr_assert_str_eq(res.error, "bad_signature");
            }
            free(resp);
        }
    }
    world_free(&w);
}

/* ---- third-party vectors ---- */

static const char *vectors_dir(void)
{
    const char *v = getenv("TG_VECTORS");
    return v != NULL && v[0] != '\0' ? v : "/work/shared/vectors";
}

static X509 *load_pem_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static time_t produced_at_of(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    cr_assert_not_null(r);
    OCSP_BASICRESP *bs = OCSP_response_get1_basic(r);
    cr_assert_not_null(bs);
    time_t t = asn1_to_time(OCSP_resp_get0_produced_at(bs));
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(r);
    return t;
}

/* OpenSSL's test/ocsp-tests, as test/recipes/80-test_ocsp.t runs them:
 * response, issuer (trusted as given), the certificate asked about. ND =
 * signed by the issuer, D = delegated responder; ISOP = invalid signature
 * on the response, WRID = wrong responderID, WINH/WIKH = wrong issuer
 * name/key hash in the CertID, WKDOSC = wrong key in the delegated
 * responder certificate, ISDOSC = invalid signature on it, WSNIC/WKIC =
 * wrong subject name/key in the issuer certificate given, ISIC = invalid
 * signature on the issuer certificate (accepted: the issuer is trusted as
 * given, as in OpenSSL's recipe). Verified at each response's producedAt. */
Test(ocsp_vectors, openssl_ocsp_tests)
{
    char base[512], der_dir[512];
    snprintf(base, sizeof(base), "%s/openssl/ocsp-tests", vectors_dir());
    snprintf(der_dir, sizeof(der_dir), "%s/openssl/ocsp-tests-der", vectors_dir());
    struct stat st;
    if (stat(base, &st) != 0 || stat(der_dir, &st) != 0)
        cr_skip_test("no OpenSSL OCSP vectors under %s", vectors_dir());

    static const struct {
        const char *id;     /* ND1 ... D3 */
        const char *issuer; /* suffix of the issuer file */
        const char *cert;   /* the certificate asked about */
    } fam[] = {
        {"ND1", "Issuer_ICA", "ND1_Cert_EE"},  {"ND2", "Issuer_Root", "ND2_Cert_ICA"},
        {"ND3", "Issuer_Root", "ND3_Cert_EE"}, {"D1", "Issuer_ICA", "D1_Cert_EE"},
        {"D2", "Issuer_Root", "D2_Cert_ICA"},  {"D3", "Issuer_Root", "D3_Cert_EE"},
    };
    /* prefix of the response file / of the issuer file, and the outcome. */
    static const struct {
        const char *resp_prefix;
        const char *issuer_prefix;
        int delegated_only;
        int accept;
    } kinds[] = {
        {"", "", 0, 1},       {"", "ISIC_", 0, 1}, {"ISOP_", "", 0, 0},   {"WRID_", "", 0, 0},
        {"WINH_", "", 0, 0},  {"WIKH_", "", 0, 0}, {"WKDOSC_", "", 1, 0}, {"ISDOSC_", "", 1, 0},
        {"", "WSNIC_", 0, 0}, {"", "WKIC_", 0, 0},
    };
    int accepted = 0, refused = 0;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
            if (kinds[k].delegated_only && fam[i].id[0] != 'D')
                continue;
            char rp[700], ip[700], cp[700];
            snprintf(rp, sizeof(rp), "%s/%s%s.der", der_dir, kinds[k].resp_prefix, fam[i].id);
            snprintf(ip, sizeof(ip), "%s/%s%s_%s.pem", base, kinds[k].issuer_prefix, fam[i].id,
                     fam[i].issuer);
            snprintf(cp, sizeof(cp), "%s/%s.pem", base, fam[i].cert);
            size_t len;
            char *der = read_file(rp, &len);
            X509 *issuer = load_pem_cert(ip);
            X509 *cert = load_pem_cert(cp);
            cr_assert_not_null(der, "%s", rp);
            cr_assert_not_null(issuer, "%s", ip);
            cr_assert_not_null(cert, "%s", cp);
            tg_certid_t id;
            cr_assert_eq(tg_pki_certid_for_cert(issuer, cert, TG_HASH_SHA1, &id), 0);
            tg_ocsp_verify_opts_t o = {
                .issuer = issuer,
                .certid = &id,
                .now = produced_at_of((const uint8_t *)der, len),
            };
            tg_ocsp_verify_result_t res;
            int rc = tg_ocsp_verify_response((const uint8_t *)der, len, &o, &res);
            cr_assert_eq(ERR_peek_error(), 0);
            if (kinds[k].accept) {
                cr_assert_eq(rc, 0, "%s with %s: %s", rp, ip, res.error);
                cr_assert_eq(res.status, TG_CERT_GOOD);
                cr_assert_eq(res.signer, fam[i].id[0] == 'D' ? TG_OCSP_SIGNER_DELEGATED
                                                             : TG_OCSP_SIGNER_ISSUER);
                accepted++;
            } else {
                cr_assert_eq(rc, TG_EMALFORMED, "%s with %s must be refused", rp, ip);
                cr_log_info("refused %s%s with %s%s_%s: %s", kinds[k].resp_prefix, fam[i].id,
                            kinds[k].issuer_prefix, fam[i].id, fam[i].issuer, res.error);
                refused++;
            }
            X509_free(cert);
            X509_free(issuer);
            free(der);
        }
    }
    /* ND1 through the cross-signed copy of its issuer (same name and key). */
    {
        char rp[700], ip[700], cp[700];
        snprintf(rp, sizeof(rp), "%s/ND1.der", der_dir);
        snprintf(ip, sizeof(ip), "%s/ND1_Issuer_ICA-Cross.pem", base);
        snprintf(cp, sizeof(cp), "%s/ND1_Cert_EE.pem", base);
        size_t len;
        char *der = read_file(rp, &len);
        X509 *issuer = load_pem_cert(ip);
        X509 *cert = load_pem_cert(cp);
        cr_assert(der && issuer && cert);
        tg_certid_t id;
        cr_assert_eq(tg_pki_certid_for_cert(issuer, cert, TG_HASH_SHA1, &id), 0);
        tg_ocsp_verify_opts_t o = {
            .issuer = issuer, .certid = &id, .now = produced_at_of((const uint8_t *)der, len)};
        tg_ocsp_verify_result_t res;
        cr_assert_eq(tg_ocsp_verify_response((const uint8_t *)der, len, &o, &res), 0);
        accepted++;
        X509_free(cert);
        X509_free(issuer);
        free(der);
    }
    printf("openssl ocsp-tests: %d accepted, %d refused, as expected\n", accepted, refused);
    cr_assert_eq(accepted, 13);
    cr_assert_eq(refused, 42);
}

/* BoringSSL's pki/testdata/ocsp_unittest: each .pem holds the response,
 * the request, the CA and the certificate; verified at BoringSSL's time
 * (2017-03-05) with its one-week maximum age. Where BoringSSL accepts but
 * trustgate refuses, the comment says why. */
Test(ocsp_vectors, boringssl_ocsp_unittest)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/boringssl/pki/testdata/ocsp_unittest", vectors_dir());
    DIR *d = opendir(dir);
    if (d == NULL)
        cr_skip_test("no BoringSSL OCSP vectors under %s", vectors_dir());

    static const struct {
        const char *file;
        const char *want; /* NULL: accepted */
        tg_cert_status_t status;
    } table[] = {
        {"good_response.pem", NULL, TG_CERT_GOOD},
        {"good_response_sha256.pem", NULL, TG_CERT_GOOD},
        {"good_response_next_update.pem", NULL, TG_CERT_GOOD},
        {"ocsp_sign_direct.pem", NULL, TG_CERT_GOOD},
        {"ocsp_sign_indirect.pem", NULL, TG_CERT_GOOD},
        {"ocsp_extra_certs.pem", NULL, TG_CERT_GOOD},
        {"has_version.pem", NULL, TG_CERT_GOOD},
        {"responder_name.pem", NULL, TG_CERT_GOOD},
        {"responder_id.pem", NULL, TG_CERT_GOOD},
        {"has_extension.pem", NULL, TG_CERT_GOOD},
        {"has_single_extension.pem", NULL, TG_CERT_GOOD},
        {"revoke_response.pem", NULL, TG_CERT_REVOKED},
        {"revoke_response_reason.pem", NULL, TG_CERT_REVOKED},
        {"unknown_response.pem", NULL, TG_CERT_UNKNOWN},
        /* OpenSSL 3.0 refuses the non-minimal serial INTEGER (BoringSSL
         * tolerates it for now, crbug.com/533048005). */
        {"good_response_invalid_serial.pem", "malformed", TG_CERT_GOOD},
        {"bad_signature.pem", "bad_signature", TG_CERT_GOOD},
        {"bad_status.pem", "not_successful", TG_CERT_GOOD},
        {"malformed_request.pem", "not_successful", TG_CERT_GOOD},
        {"bad_ocsp_type.pem", "malformed", TG_CERT_GOOD},
        {"invalid_response.pem", "malformed", TG_CERT_GOOD},
        {"invalid_response_data.pem", "malformed", TG_CERT_GOOD},
        {"ocsp_sign_indirect_missing.pem", "unauthorized_signer", TG_CERT_GOOD},
        {"ocsp_sign_bad_indirect.pem", "unauthorized_signer", TG_CERT_GOOD},
        {"no_response.pem", "certid_mismatch", TG_CERT_GOOD},
        {"missing_response.pem", "certid_mismatch", TG_CERT_GOOD},
        {"other_response.pem", "certid_mismatch", TG_CERT_GOOD},
        {"multiple_response.pem", "duplicate_single", TG_CERT_GOOD},
        /* BoringSSL answers "revoked" here; one CertID answered twice is
         * refused outright by trustgate. */
        {"multiple_response_good_revoked.pem", "duplicate_single", TG_CERT_GOOD},
        {"has_critical_single_extension.pem", "critical_extension", TG_CERT_GOOD},
        {"has_critical_response_extension.pem", "critical_extension", TG_CERT_GOOD},
        /* BoringSSL understands the SCT list; trustgate does not, so a
         * critical one is refused (RFC 5280 §4.2). */
        {"has_critical_ct_extension.pem", "critical_extension", TG_CERT_GOOD},
        {"stale_response.pem", "expired", TG_CERT_GOOD},
        {"old_response.pem", "expired", TG_CERT_GOOD},
        {"future_response.pem", "not_yet_valid", TG_CERT_GOOD},
        {"produced_early_response.pem", "bad_produced_at", TG_CERT_GOOD},
        {"produced_late_response.pem", "bad_produced_at", TG_CERT_GOOD},
    };
    size_t n_table = sizeof(table) / sizeof(table[0]);

    int accepted = 0, refused = 0, seen = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".pem") != 0)
            continue;
        size_t t;
        for (t = 0; t < n_table; t++)
            if (strcmp(table[t].file, e->d_name) == 0)
                break;
        cr_assert_lt(t, n_table, "no expectation for %s", e->d_name);
        seen++;

        char path[800];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        BIO *bio = BIO_new_file(path, "r");
        cr_assert_not_null(bio);
        unsigned char *resp = NULL, *req = NULL, *ca_der = NULL;
        long resp_len = 0, req_len = 0, ca_len = 0;
        char *name, *header;
        unsigned char *data;
        long len;
        while (PEM_read_bio(bio, &name, &header, &data, &len) == 1) {
            if (strcmp(name, "OCSP RESPONSE") == 0) {
                resp = data;
                resp_len = len;
            } else if (strcmp(name, "OCSP REQUEST") == 0) {
                req = data;
                req_len = len;
            } else if (strcmp(name, "CA CERTIFICATE") == 0) {
                ca_der = data;
                ca_len = len;
            } else {
                OPENSSL_free(data);
            }
            OPENSSL_free(name);
            OPENSSL_free(header);
        }
        ERR_clear_error(); /* end of file */
        BIO_free(bio);
        cr_assert(resp && req && ca_der, "%s", e->d_name);

        const unsigned char *p = ca_der;
        X509 *ca = d2i_X509(NULL, &p, ca_len);
        cr_assert_not_null(ca);
        /* The CertID asked about is the request's; OpenSSL cannot parse
         * the one with the non-minimal serial 00 05, so that CertID is
         * built from the CA and serial 5. */
        p = req;
        OCSP_REQUEST *rq = d2i_OCSP_REQUEST(NULL, &p, req_len);
        tg_certid_t id;
        if (rq == NULL) {
            ERR_clear_error();
            cr_assert_str_eq(e->d_name, "good_response_invalid_serial.pem");
            static const uint8_t five[] = {0x05};
            cr_assert_eq(tg_pki_certid_for(ca, TG_HASH_SHA1, five, 1, &id), 0);
        } else {
            cr_assert_eq(
                tg_pki_certid_from_ocsp(OCSP_onereq_get0_id(OCSP_request_onereq_get0(rq, 0)), &id),
                0);
            OCSP_REQUEST_free(rq);
        }

        tg_ocsp_verify_opts_t o = {
            .issuer = ca,
            .certid = &id,
            .now = 1488672000, /* Mar 5 00:00:00 2017 GMT */
            .max_age_s = 7 * 86400,
        };
        tg_ocsp_verify_result_t res;
        int rc = tg_ocsp_verify_response(resp, (size_t)resp_len, &o, &res);
        cr_assert_eq(ERR_peek_error(), 0);
        if (table[t].want == NULL) {
            cr_assert_eq(rc, 0, "%s: %s", e->d_name, res.error);
            cr_assert_eq(res.status, table[t].status, "%s", e->d_name);
            accepted++;
        } else {
            cr_assert_eq(rc, TG_EMALFORMED, "%s must be refused", e->d_name);
            cr_assert_str_eq(res.error, table[t].want, "%s", e->d_name);
            refused++;
        }
        X509_free(ca);
        OPENSSL_free(resp);
        OPENSSL_free(req);
        OPENSSL_free(ca_der);
    }
    closedir(d);
    printf("boringssl ocsp_unittest: %d accepted, %d refused, as expected\n", accepted, refused);
    cr_assert_eq((size_t)seen, n_table, "every vector has an expectation and was run");
}
