/* tg_ocsp_req_decode and the fixed unsigned responses.
 *
 * Requests are made in the test with OpenSSL (an in-process issuer and
 * end-entity certificate), so every case states exactly what it changes;
 * the third-party vectors under $TG_VECTORS are decoded as well. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "pki/ocsp.h"
#include "pki/pki_internal.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include <fnmatch.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define NONCE_OID "1.3.6.1.5.5.7.48.1.2"
#define UNKNOWN_OID "1.3.6.1.4.1.99999.1"

static EVP_PKEY *ca_key;
static X509 *ca;
static X509 *ee; /* issued by ca, serial 0x0102030405 */

static X509 *make_cert(const char *cn, long serial, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *key)
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
    cr_assert(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    cr_assert(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    cr_assert(X509_set_pubkey(x, pub));
    cr_assert(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

static void setup(void)
{
    ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    cr_assert_not_null(ca_key);
    ca = make_cert("trustgate test CA", 1, ca_key, NULL, ca_key);
    EVP_PKEY *ee_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    cr_assert_not_null(ee_key);
    ee = make_cert("trustgate test EE", 0x0102030405L, ee_key, ca, ca_key);
    EVP_PKEY_free(ee_key);
}

static void teardown(void)
{
    X509_free(ee);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
}

TestSuite(ocsp_req, .init = setup, .fini = teardown);

/* ---- helpers ---- */

/* A CertID for the test CA with the given digest and serial. */
static OCSP_CERTID *certid_serial(const EVP_MD *md, const ASN1_INTEGER *serial)
{
    OCSP_CERTID *id =
        OCSP_cert_id_new(md, X509_get_subject_name(ca), X509_get0_pubkey_bitstr(ca), serial);
    cr_assert_not_null(id);
    return id;
}

static OCSP_CERTID *certid_long(const EVP_MD *md, long serial)
{
    ASN1_INTEGER *s = ASN1_INTEGER_new();
    cr_assert(ASN1_INTEGER_set(s, serial));
    OCSP_CERTID *id = certid_serial(md, s);
    ASN1_INTEGER_free(s);
    return id;
}

/* A request with n CertIDs of the EE certificate (as OCSP_cert_to_id makes
 * them) with digest md. */
static OCSP_REQUEST *new_req(const EVP_MD *md, int n)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    cr_assert_not_null(req);
    for (int i = 0; i < n; i++) {
        OCSP_CERTID *id = OCSP_cert_to_id(md, ee, ca);
        cr_assert_not_null(id);
        cr_assert_not_null(OCSP_request_add0_id(req, id));
    }
    return req;
}

static OCSP_REQUEST *req_with_id(OCSP_CERTID *id)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    cr_assert_not_null(req);
    cr_assert_not_null(OCSP_request_add0_id(req, id));
    return req;
}

/* DER of req in a heap block of exactly its length (so ASan sees any
 * overread); free with free(). */
static uint8_t *req_der(OCSP_REQUEST *req, size_t *out_len)
{
    int n = i2d_OCSP_REQUEST(req, NULL);
    cr_assert_gt(n, 0);
    uint8_t *der = malloc((size_t)n);
    cr_assert_not_null(der);
    unsigned char *p = der;
    cr_assert_eq(i2d_OCSP_REQUEST(req, &p), n);
    *out_len = (size_t)n;
    return der;
}

/* Decodes len bytes from a heap copy; asserts the OpenSSL error queue ends
 * empty whatever the result. */
static int decode_bytes(const uint8_t *der, size_t len, size_t max, tg_ocsp_req_t *out)
{
    uint8_t *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    if (len)
        memcpy(copy, der, len);
    int rc = tg_ocsp_req_decode(copy, len, max, out);
    free(copy);
    cr_assert_eq(ERR_peek_error(), 0, "OpenSSL error queue not empty after rc %d", rc);
    if (rc != 0) {
        cr_assert_eq(out->n_certids, 0);
        cr_assert_null(out->certids);
    }
    return rc;
}

/* Encodes req, frees it, decodes with max CertIDs. */
static int decode_req(OCSP_REQUEST *req, size_t max, tg_ocsp_req_t *out)
{
    size_t len;
    uint8_t *der = req_der(req, &len);
    OCSP_REQUEST_free(req);
    int rc = decode_bytes(der, len, max, out);
    free(der);
    return rc;
}

static int decode_req_rc(OCSP_REQUEST *req, size_t max)
{
    tg_ocsp_req_t r;
    int rc = decode_req(req, max, &r);
    tg_ocsp_req_clear(&r);
    return rc;
}

static X509_EXTENSION *make_ext(const char *oid, int crit, const uint8_t *val, size_t len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    cr_assert_not_null(obj);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    cr_assert(ASN1_OCTET_STRING_set(os, val, (int)len));
    X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, obj, crit, os);
    cr_assert_not_null(ext);
    ASN1_OBJECT_free(obj);
    ASN1_OCTET_STRING_free(os);
    return ext;
}

/* Adds an extension whose extnValue is exactly val. */
static void add_req_ext(OCSP_REQUEST *req, const char *oid, int crit, const uint8_t *val,
                        size_t len)
{
    X509_EXTENSION *ext = make_ext(oid, crit, val, len);
    cr_assert(OCSP_REQUEST_add_ext(req, ext, -1));
    X509_EXTENSION_free(ext);
}

static void add_one_ext(OCSP_REQUEST *req, int idx, const char *oid, int crit)
{
    static const uint8_t null_der[] = {0x05, 0x00};
    X509_EXTENSION *ext = make_ext(oid, crit, null_der, sizeof(null_der));
    cr_assert(OCSP_ONEREQ_add_ext(OCSP_request_onereq_get0(req, idx), ext, -1));
    X509_EXTENSION_free(ext);
}

/* Checks a decoded CertID against hashes computed independently of
 * OCSP_cert_id_new: the digest of the issuer name's DER and of the issuer
 * key's BIT STRING contents (RFC 6960 §4.1.1). */
static void check_certid(const tg_certid_t *c, tg_hash_alg_t alg, const EVP_MD *md,
                         const uint8_t *serial, size_t serial_len)
{
    unsigned char name_hash[EVP_MAX_MD_SIZE], key_hash[EVP_MAX_MD_SIZE];
    unsigned int nl, kl;
    cr_assert(X509_NAME_digest(X509_get_subject_name(ca), md, name_hash, &nl));
    cr_assert(X509_pubkey_digest(ca, md, key_hash, &kl));
    cr_assert_eq(c->alg, alg);
    cr_assert_eq(c->hash_len, nl);
    cr_assert_eq(tg_hash_alg_len(alg), nl);
    cr_assert(memcmp(c->name_hash, name_hash, nl) == 0);
    cr_assert(memcmp(c->key_hash, key_hash, kl) == 0);
    cr_assert_eq(c->serial_len, serial_len);
    cr_assert(memcmp(c->serial, serial, serial_len) == 0);
}

static const uint8_t ee_serial[] = {0x01, 0x02, 0x03, 0x04, 0x05};

/* ---- CertIDs and hash algorithms ---- */

static void one_alg(const EVP_MD *md, tg_hash_alg_t alg)
{
    tg_ocsp_req_t r;
    cr_assert_eq(decode_req(new_req(md, 1), 4, &r), 0, "%s", tg_hash_alg_name(alg));
    cr_assert_eq(r.n_certids, 1);
    check_certid(&r.certids[0], alg, md, ee_serial, sizeof(ee_serial));
    cr_assert_eq(r.has_nonce, 0);
    tg_ocsp_req_clear(&r);
    cr_assert_null(r.certids);
    cr_assert_eq(r.n_certids, 0);
}

Test(ocsp_req, sha1)
{
    one_alg(EVP_sha1(), TG_HASH_SHA1);
}

Test(ocsp_req, sha256)
{
    one_alg(EVP_sha256(), TG_HASH_SHA256);
}

Test(ocsp_req, sha384)
{
    one_alg(EVP_sha384(), TG_HASH_SHA384);
}

Test(ocsp_req, sha512)
{
    one_alg(EVP_sha512(), TG_HASH_SHA512);
}

Test(ocsp_req, sm3)
{
    one_alg(EVP_sm3(), TG_HASH_SM3);
}

Test(ocsp_req, several_certids_mixed_algs)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    const EVP_MD *mds[] = {EVP_sha1(), EVP_sha256(), EVP_sm3(), EVP_sha512()};
    const tg_hash_alg_t algs[] = {TG_HASH_SHA1, TG_HASH_SHA256, TG_HASH_SM3, TG_HASH_SHA512};
    for (int i = 0; i < 4; i++)
        cr_assert_not_null(OCSP_request_add0_id(req, certid_long(mds[i], 100 + i)));
    tg_ocsp_req_t r;
    cr_assert_eq(decode_req(req, 4, &r), 0);
    cr_assert_eq(r.n_certids, 4);
    for (int i = 0; i < 4; i++) {
        uint8_t s = (uint8_t)(100 + i);
        check_certid(&r.certids[i], algs[i], mds[i], &s, 1);
    }
    cr_assert_not(tg_certid_eq(&r.certids[0], &r.certids[1]));
    tg_ocsp_req_clear(&r);
}

Test(ocsp_req, max_certids)
{
    cr_assert_eq(decode_req_rc(new_req(EVP_sha1(), 3), 3), 0);
    cr_assert_eq(decode_req_rc(new_req(EVP_sha1(), 3), 2), TG_EMALFORMED);
    cr_assert_eq(decode_req_rc(new_req(EVP_sha1(), 1), 0), TG_EMALFORMED);
    cr_assert_eq(decode_req_rc(new_req(EVP_sha1(), 20), 20), 0);
    cr_assert_eq(decode_req_rc(new_req(EVP_sha1(), 21), 20), TG_EMALFORMED);
}

Test(ocsp_req, no_certid)
{
    /* requestList is a SEQUENCE OF that may parse empty; RFC 6960 needs one. */
    static const uint8_t der[] = {0x30, 0x04, 0x30, 0x02, 0x30, 0x00};
    tg_ocsp_req_t r;
    cr_assert_eq(decode_bytes(der, sizeof(der), 4, &r), TG_EMALFORMED);
    tg_ocsp_req_clear(&r);
}

Test(ocsp_req, same_certid_twice_is_fine)
{
    tg_ocsp_req_t r;
    cr_assert_eq(decode_req(new_req(EVP_sha256(), 2), 4, &r), 0);
    cr_assert(tg_certid_eq(&r.certids[0], &r.certids[1]));
    tg_ocsp_req_clear(&r);
}

Test(ocsp_req, unsupported_hash)
{
    cr_assert_eq(decode_req_rc(new_req(EVP_md5(), 1), 4), TG_EMALFORMED);
    cr_assert_eq(decode_req_rc(new_req(EVP_sha224(), 1), 4), TG_EMALFORMED);
    /* One bad CertID spoils the request. */
    OCSP_REQUEST *req = new_req(EVP_sha256(), 2);
    cr_assert_not_null(OCSP_request_add0_id(req, OCSP_cert_to_id(EVP_md5(), ee, ca)));
    cr_assert_eq(decode_req_rc(req, 4), TG_EMALFORMED);
}

Test(ocsp_req, hash_length_must_match_alg)
{
    static const uint8_t twenty[20] = {1};
    ASN1_OCTET_STRING *nh, *kh;
    /* SHA-256 named, SHA-1 sized name hash. */
    OCSP_CERTID *id = certid_long(EVP_sha256(), 5);
    cr_assert(OCSP_id_get0_info(&nh, NULL, &kh, NULL, id));
    cr_assert(ASN1_OCTET_STRING_set(nh, twenty, 20));
    cr_assert_eq(decode_req_rc(req_with_id(id), 4), TG_EMALFORMED);
    /* Key hash one byte short. */
    id = certid_long(EVP_sha1(), 5);
    cr_assert(OCSP_id_get0_info(&nh, NULL, &kh, NULL, id));
    cr_assert(ASN1_OCTET_STRING_set(kh, twenty, 19));
    cr_assert_eq(decode_req_rc(req_with_id(id), 4), TG_EMALFORMED);
    /* Empty hashes. */
    id = certid_long(EVP_sha1(), 5);
    cr_assert(OCSP_id_get0_info(&nh, NULL, &kh, NULL, id));
    cr_assert(ASN1_OCTET_STRING_set(nh, twenty, 0));
    cr_assert_eq(decode_req_rc(req_with_id(id), 4), TG_EMALFORMED);
}

/* ---- serials ---- */

static int decode_serial_bytes(const uint8_t *mag, size_t n, int negative, tg_ocsp_req_t *r)
{
    BIGNUM *bn = BN_bin2bn(mag, (int)n, NULL);
    cr_assert_not_null(bn);
    BN_set_negative(bn, negative);
    ASN1_INTEGER *s = BN_to_ASN1_INTEGER(bn, NULL);
    cr_assert_not_null(s);
    BN_free(bn);
    OCSP_CERTID *id = certid_serial(EVP_sha1(), s);
    ASN1_INTEGER_free(s);
    return decode_req(req_with_id(id), 4, r);
}

Test(ocsp_req, serial_forms)
{
    tg_ocsp_req_t r;
    /* Top bit set: the DER content octets carry a leading 00. */
    const uint8_t x80[] = {0x80};
    cr_assert_eq(decode_serial_bytes(x80, 1, 0, &r), 0);
    cr_assert_eq(r.certids[0].serial_len, 2);
    cr_assert_eq(r.certids[0].serial[0], 0x00);
    cr_assert_eq(r.certids[0].serial[1], 0x80);
    tg_ocsp_req_clear(&r);

    /* 20 octets (RFC 5280's limit) and TG_SERIAL_MAX_LEN are fine. */
    uint8_t big[TG_SERIAL_MAX_LEN + 1];
    memset(big, 0x7f, sizeof(big));
    cr_assert_eq(decode_serial_bytes(big, 20, 0, &r), 0);
    cr_assert_eq(r.certids[0].serial_len, 20);
    tg_ocsp_req_clear(&r);
    cr_assert_eq(decode_serial_bytes(big, TG_SERIAL_MAX_LEN, 0, &r), 0);
    cr_assert_eq(r.certids[0].serial_len, TG_SERIAL_MAX_LEN);
    cr_assert(memcmp(r.certids[0].serial, big, TG_SERIAL_MAX_LEN) == 0);
    tg_ocsp_req_clear(&r);
    /* One more octet, or the pad octet pushing it over, is too long. */
    cr_assert_eq(decode_serial_bytes(big, TG_SERIAL_MAX_LEN + 1, 0, &r), TG_EMALFORMED);
    tg_ocsp_req_clear(&r);
    big[0] = 0x80;
    cr_assert_eq(decode_serial_bytes(big, TG_SERIAL_MAX_LEN, 0, &r), TG_EMALFORMED);
    tg_ocsp_req_clear(&r);
    cr_assert_eq(decode_serial_bytes(big, TG_SERIAL_MAX_LEN - 1, 0, &r), 0);
    cr_assert_eq(r.certids[0].serial_len, TG_SERIAL_MAX_LEN);
    tg_ocsp_req_clear(&r);
}

Test(ocsp_req, serial_negative_or_zero)
{
    tg_ocsp_req_t r;
    const uint8_t five[] = {0x05};
    cr_assert_eq(decode_serial_bytes(five, 1, 1, &r), TG_EMALFORMED);
    tg_ocsp_req_clear(&r);
    cr_assert_eq(decode_req_rc(req_with_id(certid_long(EVP_sha1(), -1)), 4), TG_EMALFORMED);
    cr_assert_eq(decode_req_rc(req_with_id(certid_long(EVP_sha1(), 0)), 4), TG_EMALFORMED);
}

Test(ocsp_req, serial_zero_length)
{
    /* OCSP_cert_id_new without a serial leaves an empty INTEGER: 02 00. */
    OCSP_CERTID *id =
        OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(ca), X509_get0_pubkey_bitstr(ca), NULL);
    cr_assert_not_null(id);
    cr_assert_eq(decode_req_rc(req_with_id(id), 4), TG_EMALFORMED);
}

/* ---- nonce ---- */

static int nonce_req(size_t n, tg_ocsp_req_t *r)
{
    uint8_t val[200];
    for (size_t i = 0; i < sizeof(val); i++)
        val[i] = (uint8_t)(i + 1);
    OCSP_REQUEST *req = new_req(EVP_sha256(), 1);
    cr_assert(OCSP_request_add1_nonce(req, val, (int)n));
    return decode_req(req, 4, r);
}

Test(ocsp_req, nonce_sizes)
{
    tg_ocsp_req_t r;
    const size_t ok[] = {1, 16, 32, 127, 128};
    for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]); k++) {
        cr_assert_eq(nonce_req(ok[k], &r), 0, "nonce of %zu", ok[k]);
        cr_assert_eq(r.has_nonce, 1);
        cr_assert_eq(r.nonce_len, ok[k]);
        for (size_t i = 0; i < ok[k]; i++)
            cr_assert_eq(r.nonce[i], (uint8_t)(i + 1));
        tg_ocsp_req_clear(&r);
    }
    cr_assert_eq(nonce_req(129, &r), TG_EMALFORMED);
    tg_ocsp_req_clear(&r);
    cr_assert_eq(nonce_req(200, &r), TG_EMALFORMED);
    tg_ocsp_req_clear(&r);
}

static int nonce_value_rc(const uint8_t *val, size_t len, int crit)
{
    OCSP_REQUEST *req = new_req(EVP_sha1(), 1);
    add_req_ext(req, NONCE_OID, crit, val, len);
    return decode_req_rc(req, 4);
}

Test(ocsp_req, nonce_encoding)
{
    /* The wrapped form, written by hand, critical or not. */
    static const uint8_t good[] = {0x04, 0x02, 0xAA, 0xBB};
    cr_assert_eq(nonce_value_rc(good, sizeof(good), 0), 0);
    cr_assert_eq(nonce_value_rc(good, sizeof(good), 1), 0);
    /* Zero octets: OCSP_request_add1_nonce cannot make it. */
    static const uint8_t empty[] = {0x04, 0x00};
    cr_assert_eq(nonce_value_rc(empty, sizeof(empty), 0), TG_EMALFORMED);
    /* Not wrapped in an OCTET STRING (the pre-RFC 6960 bug). */
    static const uint8_t raw[] = {0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x11, 0x22};
    cr_assert_eq(nonce_value_rc(raw, sizeof(raw), 0), TG_EMALFORMED);
    static const uint8_t raw04[] = {0x04, 0x09, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x11, 0x22};
    cr_assert_eq(nonce_value_rc(raw04, sizeof(raw04), 0), TG_EMALFORMED); /* length lies */
    /* Wrapped, then trailing bytes. */
    static const uint8_t trailing[] = {0x04, 0x01, 0xAA, 0xBB};
    cr_assert_eq(nonce_value_rc(trailing, sizeof(trailing), 0), TG_EMALFORMED);
    /* Another type. */
    static const uint8_t integer[] = {0x02, 0x01, 0x05};
    cr_assert_eq(nonce_value_rc(integer, sizeof(integer), 0), TG_EMALFORMED);
    /* Empty extnValue. */
    cr_assert_eq(nonce_value_rc(integer, 0, 0), TG_EMALFORMED);
    /* BER, not DER: constructed, and a long-form length for 2 octets. */
    static const uint8_t constructed[] = {0x24, 0x80, 0x04, 0x01, 0xAA, 0x00, 0x00};
    cr_assert_eq(nonce_value_rc(constructed, sizeof(constructed), 0), TG_EMALFORMED);
    static const uint8_t longform[] = {0x04, 0x81, 0x02, 0xAA, 0xBB};
    cr_assert_eq(nonce_value_rc(longform, sizeof(longform), 0), TG_EMALFORMED);
    /* 128 octets need the long form, which is then minimal. */
    uint8_t n128[3 + 128] = {0x04, 0x81, 0x80};
    cr_assert_eq(nonce_value_rc(n128, sizeof(n128), 0), 0);
    uint8_t n129[3 + 129] = {0x04, 0x81, 0x81};
    cr_assert_eq(nonce_value_rc(n129, sizeof(n129), 0), TG_EMALFORMED);
}

Test(ocsp_req, duplicate_nonce)
{
    OCSP_REQUEST *req = new_req(EVP_sha1(), 1);
    /* OCSP_request_add1_nonce replaces an earlier nonce; add the second by
     * hand. */
    static const uint8_t second[] = {0x04, 0x02, 0xAA, 0xBB};
    cr_assert(OCSP_request_add1_nonce(req, NULL, 16));
    add_req_ext(req, NONCE_OID, 0, second, sizeof(second));
    cr_assert_eq(OCSP_REQUEST_get_ext_count(req), 2);
    cr_assert_eq(decode_req_rc(req, 4), TG_EMALFORMED);
}

/* ---- other extensions ---- */

static const uint8_t null_der[] = {0x05, 0x00};

Test(ocsp_req, unknown_extensions)
{
    OCSP_REQUEST *req = new_req(EVP_sha1(), 1);
    add_req_ext(req, UNKNOWN_OID, 0, null_der, sizeof(null_der));
    cr_assert_eq(decode_req_rc(req, 4), 0);

    req = new_req(EVP_sha1(), 1);
    add_req_ext(req, UNKNOWN_OID, 1, null_der, sizeof(null_der));
    cr_assert_eq(decode_req_rc(req, 4), TG_EMALFORMED);

    /* The same unknown extension twice, and a duplicate next to a nonce. */
    req = new_req(EVP_sha1(), 1);
    add_req_ext(req, UNKNOWN_OID, 0, null_der, sizeof(null_der));
    add_req_ext(req, UNKNOWN_OID, 0, null_der, sizeof(null_der));
    cr_assert_eq(decode_req_rc(req, 4), TG_EMALFORMED);

    req = new_req(EVP_sha1(), 1);
    add_req_ext(req, UNKNOWN_OID, 0, null_der, sizeof(null_der));
    cr_assert(OCSP_request_add1_nonce(req, NULL, 32));
    add_req_ext(req, UNKNOWN_OID, 0, null_der, sizeof(null_der));
    cr_assert_eq(decode_req_rc(req, 4), TG_EMALFORMED);
}

Test(ocsp_req, nonce_among_others)
{
    OCSP_REQUEST *req = new_req(EVP_sha1(), 2);
    add_req_ext(req, UNKNOWN_OID, 0, null_der, sizeof(null_der));
    uint8_t val[20] = {9, 8, 7};
    cr_assert(OCSP_request_add1_nonce(req, val, sizeof(val)));
    add_req_ext(req, "1.3.6.1.4.1.99999.2", 0, null_der, sizeof(null_der));
    tg_ocsp_req_t r;
    cr_assert_eq(decode_req(req, 4, &r), 0);
    cr_assert_eq(r.has_nonce, 1);
    cr_assert_eq(r.nonce_len, 20);
    cr_assert(memcmp(r.nonce, val, 20) == 0);
    cr_assert_eq(r.n_certids, 2);
    tg_ocsp_req_clear(&r);
}

Test(ocsp_req, acceptable_responses_critical_ok)
{
    /* AcceptableResponses ::= SEQUENCE OF OID { id-pkix-ocsp-basic } */
    static const uint8_t basic[] = {0x30, 0x0b, 0x06, 0x09, 0x2b, 0x06, 0x01,
                                    0x05, 0x05, 0x07, 0x30, 0x01, 0x01};
    OCSP_REQUEST *req = new_req(EVP_sha1(), 1);
    add_req_ext(req, "1.3.6.1.5.5.7.48.1.4", 1, basic, sizeof(basic));
    cr_assert_eq(decode_req_rc(req, 4), 0);
}

Test(ocsp_req, extension_count_bound)
{
    char oid[64];
    OCSP_REQUEST *req = new_req(EVP_sha1(), 1);
    for (int i = 0; i < TG_OCSP_MAX_EXTENSIONS; i++) {
        snprintf(oid, sizeof(oid), "1.3.6.1.4.1.99999.3.%d", i);
        add_req_ext(req, oid, 0, null_der, sizeof(null_der));
    }
    cr_assert_eq(decode_req_rc(req, 4), 0);
    req = new_req(EVP_sha1(), 1);
    for (int i = 0; i <= TG_OCSP_MAX_EXTENSIONS; i++) {
        snprintf(oid, sizeof(oid), "1.3.6.1.4.1.99999.3.%d", i);
        add_req_ext(req, oid, 0, null_der, sizeof(null_der));
    }
    cr_assert_eq(decode_req_rc(req, 4), TG_EMALFORMED);
}

Test(ocsp_req, single_request_extensions)
{
    OCSP_REQUEST *req = new_req(EVP_sha1(), 2);
    add_one_ext(req, 1, UNKNOWN_OID, 0);
    cr_assert_eq(decode_req_rc(req, 4), 0);

    req = new_req(EVP_sha1(), 2);
    add_one_ext(req, 1, UNKNOWN_OID, 1);
    cr_assert_eq(decode_req_rc(req, 4), TG_EMALFORMED);

    /* Service locator (RFC 6960 §4.4.6): not acted on, so not if critical. */
    req = new_req(EVP_sha1(), 1);
    add_one_ext(req, 0, "1.3.6.1.5.5.7.48.1.7", 0);
    cr_assert_eq(decode_req_rc(req, 4), 0);
    req = new_req(EVP_sha1(), 1);
    add_one_ext(req, 0, "1.3.6.1.5.5.7.48.1.7", 1);
    cr_assert_eq(decode_req_rc(req, 4), TG_EMALFORMED);

    req = new_req(EVP_sha1(), 1);
    add_one_ext(req, 0, UNKNOWN_OID, 0);
    add_one_ext(req, 0, UNKNOWN_OID, 0);
    cr_assert_eq(decode_req_rc(req, 4), TG_EMALFORMED);

    /* A nonce belongs in requestExtensions; elsewhere it is not taken. */
    req = new_req(EVP_sha1(), 1);
    add_one_ext(req, 0, NONCE_OID, 0);
    tg_ocsp_req_t r;
    cr_assert_eq(decode_req(req, 4, &r), 0);
    cr_assert_eq(r.has_nonce, 0);
    tg_ocsp_req_clear(&r);
}

Test(ocsp_req, signed_request_accepted)
{
    OCSP_REQUEST *req = new_req(EVP_sha256(), 1);
    cr_assert(OCSP_request_add1_nonce(req, NULL, 16));
    cr_assert(OCSP_request_sign(req, ca, ca_key, EVP_sha256(), NULL, OCSP_NOCERTS));
    size_t len;
    uint8_t *der = req_der(req, &len);
    OCSP_REQUEST_free(req);
    tg_ocsp_req_t r;
    cr_assert_eq(decode_bytes(der, len, 4, &r), 0);
    cr_assert_eq(r.has_nonce, 1);
    cr_assert_eq(r.nonce_len, 16);
    tg_ocsp_req_clear(&r);
    /* Without certs the signature BIT STRING ends the DER: spoil its last
     * byte. The signature is not checked, so nothing changes. */
    der[len - 1] ^= 0x01;
    cr_assert_eq(decode_bytes(der, len, 4, &r), 0);
    tg_ocsp_req_clear(&r);
    free(der);
}

/* ---- framing: version, trailing bytes, truncation, BER ---- */

/* Appends tag, a length in the given form (0: shortest, 1: 0x81 LL, 2: 0x82
 * LL LL, 'i': indefinite) and the content (which may overlap out). */
static size_t tlv(uint8_t *out, uint8_t tag, int form, const uint8_t *in, size_t n)
{
    size_t o = 0;
    out[o++] = tag;
    if (form == 'i') {
        out[o++] = 0x80;
    } else if (form == 0 && n < 128) {
        out[o++] = (uint8_t)n;
    } else if (form == 1 || (form == 0 && n < 256)) {
        cr_assert_lt(n, 256);
        out[o++] = 0x81;
        out[o++] = (uint8_t)n;
    } else {
        out[o++] = 0x82;
        out[o++] = (uint8_t)(n >> 8);
        out[o++] = (uint8_t)n;
    }
    memmove(out + o, in, n);
    o += n;
    if (form == 'i') {
        out[o++] = 0;
        out[o++] = 0;
    }
    return o;
}

/* A request built by hand around a real CertID: version bytes (or none),
 * lengths of the two outer SEQUENCEs in the given forms. */
static size_t hand_req(uint8_t *out, const uint8_t *version, size_t vlen, int outer_form,
                       int tbs_form)
{
    OCSP_CERTID *id = certid_long(EVP_sha1(), 42);
    uint8_t a[512], b[512];
    unsigned char *p = a;
    int n = i2d_OCSP_CERTID(id, &p);
    OCSP_CERTID_free(id);
    cr_assert_gt(n, 0);
    size_t m = tlv(b, 0x30, 0, a, (size_t)n); /* Request */
    m = tlv(a, 0x30, 0, b, m);                /* requestList */
    if (vlen)
        memcpy(b, version, vlen);
    memcpy(b + vlen, a, m);
    m = tlv(a, 0x30, tbs_form, b, vlen + m); /* tbsRequest */
    return tlv(out, 0x30, outer_form, a, m); /* OCSPRequest */
}

static int hand_rc(const uint8_t *version, size_t vlen, int outer_form, int tbs_form)
{
    uint8_t der[600];
    size_t n = hand_req(der, version, vlen, outer_form, tbs_form);
    tg_ocsp_req_t r;
    int rc = decode_bytes(der, n, 4, &r);
    if (rc == 0) {
        uint8_t s = 42;
        check_certid(&r.certids[0], TG_HASH_SHA1, EVP_sha1(), &s, 1);
    }
    tg_ocsp_req_clear(&r);
    return rc;
}

Test(ocsp_req, version)
{
    static const uint8_t v1[] = {0xa0, 0x03, 0x02, 0x01, 0x00};
    static const uint8_t v2[] = {0xa0, 0x03, 0x02, 0x01, 0x01};
    static const uint8_t vneg[] = {0xa0, 0x03, 0x02, 0x01, 0xff};
    static const uint8_t vbig[] = {0xa0, 0x04, 0x02, 0x02, 0x01, 0x00};
    static const uint8_t vpad[] = {0xa0, 0x04, 0x02, 0x02, 0x00, 0x00};
    static const uint8_t vlong[] = {0xa0, 0x81, 0x03, 0x02, 0x81, 0x01, 0x00};
    static const uint8_t vlong2[] = {0xa0, 0x81, 0x03, 0x02, 0x81, 0x01, 0x01};
    cr_assert_eq(hand_rc(NULL, 0, 0, 0), 0);
    cr_assert_eq(hand_rc(v1, sizeof(v1), 0, 0), 0); /* explicit DEFAULT: tolerated */
    cr_assert_eq(hand_rc(v2, sizeof(v2), 0, 0), TG_EMALFORMED);
    cr_assert_eq(hand_rc(vneg, sizeof(vneg), 0, 0), TG_EMALFORMED);
    cr_assert_eq(hand_rc(vbig, sizeof(vbig), 0, 0), TG_EMALFORMED);
    cr_assert_eq(hand_rc(vpad, sizeof(vpad), 0, 0), TG_EMALFORMED);
    /* Where OpenSSL takes BER length forms, the version is still found. */
    int rc = hand_rc(vlong, sizeof(vlong), 1, 2);
    cr_assert(rc == 0 || rc == TG_EMALFORMED);
    if (rc == 0)
        cr_assert_eq(hand_rc(vlong2, sizeof(vlong2), 1, 2), TG_EMALFORMED);
}

Test(ocsp_req, ber_lengths)
{
    static const uint8_t v1[] = {0xa0, 0x03, 0x02, 0x01, 0x00};
    static const uint8_t v2[] = {0xa0, 0x03, 0x02, 0x01, 0x01};
    static const uint8_t v2_indef[] = {0xa0, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00};
    static const uint8_t v1_indef[] = {0xa0, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00};
    /* Long-form lengths, even non-minimal ones, are tolerated as OpenSSL
     * does; indefinite lengths on the outer two SEQUENCEs and on the version
     * are not (RFC 6960 Appendix A.1 asks for DER). */
    const int forms[] = {0, 1, 2, 'i'};
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) {
            int indef = forms[i] == 'i' || forms[j] == 'i';
            cr_assert_eq(hand_rc(NULL, 0, forms[i], forms[j]), indef ? TG_EMALFORMED : 0);
            cr_assert_eq(hand_rc(v1, sizeof(v1), forms[i], forms[j]), indef ? TG_EMALFORMED : 0);
            cr_assert_eq(hand_rc(v2, sizeof(v2), forms[i], forms[j]), TG_EMALFORMED);
            cr_assert_eq(hand_rc(v2_indef, sizeof(v2_indef), forms[i], forms[j]), TG_EMALFORMED);
            cr_assert_eq(hand_rc(v1_indef, sizeof(v1_indef), forms[i], forms[j]), TG_EMALFORMED);
        }
    }
}

/* An unsigned request's tbsRequest TLV followed by sig, all in an
 * OCSPRequest SEQUENCE; decoded. */
static int with_signature(const uint8_t *sig, size_t sig_len)
{
    size_t len;
    OCSP_REQUEST *req = new_req(EVP_sha256(), 2);
    cr_assert(OCSP_request_add1_nonce(req, NULL, 16));
    uint8_t *der = req_der(req, &len);
    OCSP_REQUEST_free(req);
    /* Skip the outer header (short or 81 LL form here). */
    size_t hdr = der[1] < 0x80 ? 2 : 2 + (der[1] & 0x7f);
    uint8_t inner[2048], out[2100];
    cr_assert_lt(len - hdr + sig_len, sizeof(inner));
    memcpy(inner, der + hdr, len - hdr);
    memcpy(inner + len - hdr, sig, sig_len);
    size_t n = tlv(out, 0x30, 0, inner, len - hdr + sig_len);
    free(der);
    tg_ocsp_req_t r;
    int rc = decode_bytes(out, n, 4, &r);
    if (rc == 0)
        cr_assert_eq(r.n_certids, 2);
    tg_ocsp_req_clear(&r);
    return rc;
}

Test(ocsp_req, signature_shape)
{
    /* [0] { SEQUENCE { AlgorithmIdentifier, BIT STRING, [0] { certs } } };
     * the algorithm identifier is 12 octets, the BIT STRING 5. */
#define SIG_ALG 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02
#define SIG_BITS 0x03, 0x03, 0x00, 0xaa, 0xbb
    static const uint8_t plain[] = {0xa0, 0x13, 0x30, 0x11, SIG_ALG, SIG_BITS};
    cr_assert_eq(with_signature(plain, sizeof(plain)), 0);
    /* Certificates are not parsed: any SEQUENCE passes. */
    static const uint8_t certs[] = {0xa0, 0x1d, 0x30, 0x1b, SIG_ALG, SIG_BITS, 0xa0, 0x08,
                                    0x30, 0x06, 0x30, 0x00, 0x30,    0x02,     0x05, 0x00};
    cr_assert_eq(with_signature(certs, sizeof(certs)), 0);
    static const uint8_t no_certs[] = {0xa0,     0x17, 0x30, 0x15, SIG_ALG,
                                       SIG_BITS, 0xa0, 0x02, 0x30, 0x00};
    cr_assert_eq(with_signature(no_certs, sizeof(no_certs)), 0);

    /* Shape errors. */
    static const uint8_t cert_not_seq[] = {0xa0, 0x19, 0x30, 0x17, SIG_ALG, SIG_BITS,
                                           0xa0, 0x04, 0x30, 0x02, 0x05,    0x00};
    cr_assert_eq(with_signature(cert_not_seq, sizeof(cert_not_seq)), TG_EMALFORMED);
    static const uint8_t no_bits[] = {0xa0, 0x0e, 0x30, 0x0c, SIG_ALG};
    cr_assert_eq(with_signature(no_bits, sizeof(no_bits)), TG_EMALFORMED);
    static const uint8_t empty_bits[] = {0xa0, 0x10, 0x30, 0x0e, SIG_ALG, 0x03, 0x00};
    cr_assert_eq(with_signature(empty_bits, sizeof(empty_bits)), TG_EMALFORMED);
    static const uint8_t extra[] = {0xa0, 0x15, 0x30, 0x13, SIG_ALG, SIG_BITS, 0x05, 0x00};
    cr_assert_eq(with_signature(extra, sizeof(extra)), TG_EMALFORMED);
    static const uint8_t after_sig[] = {0xa0, 0x13, 0x30, 0x11, SIG_ALG, SIG_BITS, 0x05, 0x00};
    cr_assert_eq(with_signature(after_sig, sizeof(after_sig)), TG_EMALFORMED);
    static const uint8_t wrong_tag[] = {0xa1, 0x13, 0x30, 0x11, SIG_ALG, SIG_BITS};
    cr_assert_eq(with_signature(wrong_tag, sizeof(wrong_tag)), TG_EMALFORMED);
    static const uint8_t indef[] = {0xa0, 0x80, 0x30, 0x11, SIG_ALG, SIG_BITS, 0x00, 0x00};
    cr_assert_eq(with_signature(indef, sizeof(indef)), TG_EMALFORMED);
    static const uint8_t short_len[] = {0xa0, 0x12, 0x30, 0x11, SIG_ALG, SIG_BITS};
    cr_assert_eq(with_signature(short_len, sizeof(short_len)), TG_EMALFORMED);
    static const uint8_t empty[] = {0xa0, 0x00};
    cr_assert_eq(with_signature(empty, sizeof(empty)), TG_EMALFORMED);
#undef SIG_ALG
#undef SIG_BITS
}

Test(ocsp_req, signed_with_many_certs_is_cheap)
{
    /* A request signed with the CA and carrying 12 copies of it: the
     * certificates are not parsed, so this stays in the microseconds. */
    OCSP_REQUEST *req = new_req(EVP_sha256(), 1);
    STACK_OF(X509) *chain = sk_X509_new_null();
    for (int i = 0; i < 12; i++)
        cr_assert(sk_X509_push(chain, ca) > 0);
    cr_assert(OCSP_request_sign(req, ca, ca_key, EVP_sha256(), chain, 0));
    sk_X509_free(chain);
    size_t len;
    uint8_t *der = req_der(req, &len);
    OCSP_REQUEST_free(req);
    tg_ocsp_req_t r;
    cr_assert_eq(decode_bytes(der, len, 4, &r), 0);
    tg_ocsp_req_clear(&r);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(tg_ocsp_req_decode(der, len, 4, &r), 0);
        tg_ocsp_req_clear(&r);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e5;
    cr_log_info("signed request, %zu bytes, 13 certificates: %.1f us per decode", len, us);
    /* Generous for sanitizers and busy machines; parsing the certificates
     * costs over 1 ms. */
    cr_assert_lt(us, 500.0);
    free(der);
}

Test(ocsp_req, trailing_bytes)
{
    size_t len;
    OCSP_REQUEST *req = new_req(EVP_sha1(), 1);
    uint8_t *der = req_der(req, &len);
    OCSP_REQUEST_free(req);
    uint8_t *two = malloc(2 * len);
    cr_assert_not_null(two);
    memcpy(two, der, len);
    memcpy(two + len, der, len);
    tg_ocsp_req_t r;
    cr_assert_eq(decode_bytes(two, len, 4, &r), 0);
    tg_ocsp_req_clear(&r);
    cr_assert_eq(decode_bytes(two, len + 1, 4, &r), TG_EMALFORMED);
    cr_assert_eq(decode_bytes(two, 2 * len, 4, &r), TG_EMALFORMED);
    two[len] = 0;
    cr_assert_eq(decode_bytes(two, len + 1, 4, &r), TG_EMALFORMED);
    cr_assert_eq(decode_bytes(two, len + 2, 4, &r), TG_EMALFORMED); /* 00 00 */
    free(two);
    free(der);
}

Test(ocsp_req, truncated_at_every_length)
{
    OCSP_REQUEST *req = new_req(EVP_sha384(), 3);
    cr_assert(OCSP_request_add1_nonce(req, NULL, 32));
    add_one_ext(req, 2, UNKNOWN_OID, 0);
    cr_assert(OCSP_request_sign(req, ca, ca_key, EVP_sha256(), NULL, 0));
    size_t len;
    uint8_t *der = req_der(req, &len);
    OCSP_REQUEST_free(req);
    tg_ocsp_req_t r;
    cr_assert_eq(decode_bytes(der, len, 4, &r), 0);
    tg_ocsp_req_clear(&r);
    for (size_t n = 0; n < len; n++) {
        cr_assert_eq(decode_bytes(der, n, 4, &r), TG_EMALFORMED, "length %zu of %zu", n, len);
        tg_ocsp_req_clear(&r);
    }
    free(der);
}

Test(ocsp_req, every_byte_flipped)
{
    /* Not a correctness claim for each flip, only: a known code, no crash,
     * no leak, an empty error queue. */
    OCSP_REQUEST *req = new_req(EVP_sha256(), 2);
    cr_assert(OCSP_request_add1_nonce(req, NULL, 16));
    size_t len;
    uint8_t *der = req_der(req, &len);
    OCSP_REQUEST_free(req);
    size_t ok = 0;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            der[i] ^= (uint8_t)(1u << bit);
            tg_ocsp_req_t r;
            int rc = decode_bytes(der, len, 4, &r);
            cr_assert(rc == 0 || rc == TG_EMALFORMED, "byte %zu bit %d: rc %d", i, bit, rc);
            ok += rc == 0;
            tg_ocsp_req_clear(&r);
            der[i] ^= (uint8_t)(1u << bit);
        }
    }
    cr_log_info("bit flips: %zu of %zu still decode", ok, len * 8);
    free(der);
}

Test(ocsp_req, tiny_and_garbage)
{
    tg_ocsp_req_t r;
    /* The three bodies of bc-java's OCSPMalformedInputTest. */
    static const uint8_t m0[] = {0x30, 0x00};
    static const uint8_t m1[] = {0x30, 0x03, 0x30, 0x01, 0x00};
    static const uint8_t m2[] = {0x02, 0x01, 0x00};
    cr_assert_eq(decode_bytes(m0, sizeof(m0), 4, &r), TG_EMALFORMED);
    cr_assert_eq(decode_bytes(m1, sizeof(m1), 4, &r), TG_EMALFORMED);
    cr_assert_eq(decode_bytes(m2, sizeof(m2), 4, &r), TG_EMALFORMED);
    cr_assert_eq(decode_bytes(m0, 0, 4, &r), TG_EMALFORMED);
    cr_assert_eq(tg_ocsp_req_decode(NULL, 0, 4, &r), TG_EMALFORMED);
    static const uint8_t indef[] = {0x30, 0x80};
    cr_assert_eq(decode_bytes(indef, sizeof(indef), 4, &r), TG_EMALFORMED);
    static const uint8_t huge_len[] = {0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30};
    cr_assert_eq(decode_bytes(huge_len, sizeof(huge_len), 4, &r), TG_EMALFORMED);
    static const uint8_t text[] = "GET / HTTP/1.1\r\n";
    cr_assert_eq(decode_bytes(text, sizeof(text) - 1, 4, &r), TG_EMALFORMED);
    /* An OCSP response is no request. */
    cr_assert_eq(tg_ocsp_init(), 0);
    tg_slice_t resp = tg_ocsp_status_response(TG_OCSP_MALFORMED_REQUEST);
    cr_assert_eq(resp.n, 5);
    cr_assert_eq(decode_bytes(resp.p, resp.n, 4, &r), TG_EMALFORMED);
}

Test(ocsp_req, init_needs_no_clear_before)
{
    tg_ocsp_req_t r;
    memset(&r, 0xA5, sizeof(r)); /* garbage is overwritten, not freed */
    cr_assert_eq(decode_req(new_req(EVP_sha1(), 1), 4, &r), 0);
    tg_ocsp_req_clear(&r);
    tg_ocsp_req_clear(&r);
    tg_ocsp_req_clear(NULL);
}

/* ---- helpers of pki_internal.h and the names ---- */

Test(ocsp_req, hash_alg_table)
{
    const EVP_MD *mds[TG_HASH_COUNT] = {EVP_sha1(), EVP_sha256(), EVP_sha384(), EVP_sha512(),
                                        EVP_sm3()};
    const char *names[TG_HASH_COUNT] = {"sha1", "sha256", "sha384", "sha512", "sm3"};
    for (int i = 0; i < TG_HASH_COUNT; i++) {
        tg_hash_alg_t alg = (tg_hash_alg_t)i;
        cr_assert_str_eq(tg_hash_alg_name(alg), names[i]);
        cr_assert_eq(tg_hash_alg_len(alg), (size_t)EVP_MD_get_size(mds[i]));
        tg_hash_alg_t back;
        cr_assert_eq(tg_pki_hash_alg_from_nid(EVP_MD_get_type(mds[i]), &back), 0);
        cr_assert_eq(back, alg);
    }
    tg_hash_alg_t x;
    cr_assert_eq(tg_pki_hash_alg_from_nid(NID_md5, &x), TG_EUNSUPPORTED);
    cr_assert_eq(tg_pki_hash_alg_from_nid(NID_sha224, &x), TG_EUNSUPPORTED);
    cr_assert_eq(tg_pki_hash_alg_from_nid(NID_undef, &x), TG_EUNSUPPORTED);
    cr_assert_str_eq(tg_hash_alg_name(TG_HASH_COUNT), "unknown");
    cr_assert_eq(tg_hash_alg_len(TG_HASH_COUNT), 0);
}

/* ---- fixed unsigned responses ---- */

Test(ocsp_status, unsigned_responses_exact_bytes)
{
    cr_assert_eq(tg_ocsp_init(), 0);
    const tg_ocsp_status_t st[] = {TG_OCSP_MALFORMED_REQUEST, TG_OCSP_INTERNAL_ERROR,
                                   TG_OCSP_TRY_LATER, TG_OCSP_SIG_REQUIRED, TG_OCSP_UNAUTHORIZED};
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
        tg_slice_t s = tg_ocsp_status_response(st[i]);
        const uint8_t want[] = {0x30, 0x03, 0x0a, 0x01, (uint8_t)st[i]};
        cr_assert_eq(s.n, 5, "%s", tg_ocsp_status_name(st[i]));
        cr_assert(memcmp(s.p, want, 5) == 0, "%s", tg_ocsp_status_name(st[i]));
        /* Stable storage: the same bytes every call. */
        cr_assert_eq(tg_ocsp_status_response(st[i]).p, s.p);
    }
    const uint8_t malformed[] = {0x30, 0x03, 0x0a, 0x01, 0x01};
    cr_assert(memcmp(tg_ocsp_status_response(TG_OCSP_MALFORMED_REQUEST).p, malformed, 5) == 0);
    cr_assert_eq(tg_ocsp_status_response(TG_OCSP_SUCCESSFUL).n, 0);
    cr_assert_eq(tg_ocsp_status_response((tg_ocsp_status_t)4).n, 0);
    cr_assert_eq(tg_ocsp_status_response((tg_ocsp_status_t)7).n, 0);
    cr_assert_eq(tg_ocsp_status_response((tg_ocsp_status_t)-1).n, 0);
    cr_assert_eq(ERR_peek_error(), 0);
    /* Twice is harmless. */
    cr_assert_eq(tg_ocsp_init(), 0);
    cr_assert_eq(tg_ocsp_status_response(TG_OCSP_UNAUTHORIZED).n, 5);
}

Test(ocsp_status, unsigned_responses_parse_back)
{
    cr_assert_eq(tg_ocsp_init(), 0);
    const tg_ocsp_status_t st[] = {TG_OCSP_MALFORMED_REQUEST, TG_OCSP_INTERNAL_ERROR,
                                   TG_OCSP_TRY_LATER, TG_OCSP_SIG_REQUIRED, TG_OCSP_UNAUTHORIZED};
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
        tg_slice_t s = tg_ocsp_status_response(st[i]);
        const unsigned char *p = s.p;
        OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, (long)s.n);
        cr_assert_not_null(r);
        cr_assert_eq(p, s.p + s.n);
        cr_assert_eq(OCSP_response_status(r), (int)st[i]);
        cr_assert_null(OCSP_response_get1_basic(r));
        ERR_clear_error();
        OCSP_RESPONSE_free(r);
    }
}

Test(ocsp_status, names)
{
    cr_assert_str_eq(tg_ocsp_status_name(TG_OCSP_SUCCESSFUL), "successful");
    cr_assert_str_eq(tg_ocsp_status_name(TG_OCSP_MALFORMED_REQUEST), "malformedRequest");
    cr_assert_str_eq(tg_ocsp_status_name(TG_OCSP_INTERNAL_ERROR), "internalError");
    cr_assert_str_eq(tg_ocsp_status_name(TG_OCSP_TRY_LATER), "tryLater");
    cr_assert_str_eq(tg_ocsp_status_name(TG_OCSP_SIG_REQUIRED), "sigRequired");
    cr_assert_str_eq(tg_ocsp_status_name(TG_OCSP_UNAUTHORIZED), "unauthorized");
    cr_assert_str_eq(tg_ocsp_status_name((tg_ocsp_status_t)4), "unknown");
}

/* ---- third-party vectors ($TG_VECTORS) ---- */

static const char *vectors_dir(void)
{
    const char *d = getenv("TG_VECTORS");
    struct stat st;
    if (d == NULL || *d == '\0' || stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    return d;
}

static uint8_t *read_file(const char *path, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(buf, cap);
            cr_assert_not_null(nb);
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *out_len = len;
    return buf;
}

/* nftw has no user pointer: the walk's state. */
static struct {
    const char *const *patterns;
    size_t n_found, n_ok, n_malformed;
    const char *dir_filter; /* only files under a directory with this name part */
} walk;

static const char *const request_patterns[] = {
    "*.req.der",
    "ocsp_request*",
    "req-*.der",
    "*-req.der",
    "*Req.der",
    "*Request.der",
    "OCSPMalformedInputTest.*",
    NULL,
};

static int match_any(const char *name, const char *const *patterns)
{
    for (size_t i = 0; patterns[i]; i++) {
        if (fnmatch(patterns[i], name, 0) == 0)
            return 1;
    }
    return 0;
}

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    if (type != FTW_F)
        return 0;
    if (walk.patterns && !match_any(path + ftw->base, walk.patterns))
        return 0;
    if (walk.dir_filter && strstr(path, walk.dir_filter) == NULL)
        return 0;
    size_t len;
    uint8_t *der = read_file(path, &len);
    cr_assert_not_null(der, "cannot read %s", path);
    tg_ocsp_req_t r;
    int rc = decode_bytes(der, len, 16, &r);
    cr_assert(rc == 0 || rc == TG_EMALFORMED, "%s: rc %d", path, rc);
    walk.n_found++;
    if (rc == 0)
        walk.n_ok++;
    else
        walk.n_malformed++;
    tg_ocsp_req_clear(&r);
    free(der);
    return 0;
}

Test(ocsp_req, vectors_all_requests)
{
    const char *dir = vectors_dir();
    if (dir == NULL)
        cr_skip_test("TG_VECTORS not set or not a directory");
    walk.patterns = request_patterns;
    walk.dir_filter = NULL;
    cr_assert_eq(nftw(dir, visit, 16, FTW_PHYS), 0);
    cr_log_info("vectors: %zu request files, %zu decoded, %zu malformed", walk.n_found, walk.n_ok,
                walk.n_malformed);
    fprintf(stderr, "ocsp_req vectors: %zu request files, %zu decoded, %zu malformed\n",
            walk.n_found, walk.n_ok, walk.n_malformed);
    cr_assert_gt(walk.n_found, 0);
}

Test(ocsp_req, vectors_fuzz_corpora)
{
    const char *dir = vectors_dir();
    if (dir == NULL)
        cr_skip_test("TG_VECTORS not set or not a directory");
    const char *sub[] = {"openssl-fuzz-corpora/asn1", "aws-lc/fuzz/ocsp_corpus", "boringssl/fuzz"};
    walk.patterns = NULL;
    for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, sub[i]);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        walk.dir_filter = strcmp(sub[i], "boringssl/fuzz") == 0 ? "/ocsp_" : NULL;
        cr_assert_eq(nftw(path, visit, 16, FTW_PHYS), 0);
    }
    fprintf(stderr, "ocsp_req corpora: %zu files, %zu decoded, %zu malformed\n", walk.n_found,
            walk.n_ok, walk.n_malformed);
}

/* Decodes one named vector; returns -100 when it is missing. */
static int vector_rc(const char *rel, tg_ocsp_req_t *r)
{
    const char *dir = vectors_dir();
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    size_t len;
    uint8_t *der = read_file(path, &len);
    tg_ocsp_req_init(r);
    if (der == NULL)
        return -100;
    int rc = decode_bytes(der, len, 16, r);
    free(der);
    return rc;
}

static void expect_vector(const char *rel, int want_rc, size_t want_ids, int want_nonce)
{
    tg_ocsp_req_t r;
    int rc = vector_rc(rel, &r);
    if (rc == -100) {
        cr_log_warn("missing vector %s", rel);
        return;
    }
    cr_assert_eq(rc, want_rc, "%s: rc %d, want %d", rel, rc, want_rc);
    if (rc == 0) {
        cr_assert_eq(r.n_certids, want_ids, "%s", rel);
        cr_assert_eq(r.has_nonce, want_nonce, "%s", rel);
    }
    tg_ocsp_req_clear(&r);
}

Test(ocsp_req, vectors_known_outcomes)
{
    if (vectors_dir() == NULL)
        cr_skip_test("TG_VECTORS not set or not a directory");
    expect_vector("bc-java/ocsp/OCSPMalformedInputTest.malformed0.der", TG_EMALFORMED, 0, 0);
    expect_vector("bc-java/ocsp/OCSPMalformedInputTest.malformed1.der", TG_EMALFORMED, 0, 0);
    expect_vector("bc-java/ocsp/OCSPMalformedInputTest.malformed2.der", TG_EMALFORMED, 0, 0);
    expect_vector("bc-java/ocsp/core-asn1-OCSPTest.unsignedReq.der", 0, 1, 0);
    expect_vector("bc-java/ocsp/core-asn1-OCSPTest.signedReq.der", 0, 1, 0);
    expect_vector("pyca-cryptography/ocsp/req-sha1.der", 0, 1, 0);
    expect_vector("pyca-cryptography/ocsp/req-multi-sha1.der", 0, 2, 0);
    expect_vector("pyca-cryptography/ocsp/req-ext-nonce.der", 0, 1, 1);
    expect_vector("pyca-cryptography/ocsp/req-ext-unknown-oid.der", 0, 1, 0);
    expect_vector("pyca-cryptography/ocsp/req-acceptable-responses.der", 0, 1, 0);
    expect_vector("pyca-cryptography/ocsp/req-duplicate-ext.der", TG_EMALFORMED, 0, 0);
    expect_vector("pyca-cryptography/ocsp/req-invalid-hash-alg.der", TG_EMALFORMED, 0, 0);
    expect_vector("golang-x-crypto/ocsp/ocspRequest.der", 0, 1, 0);
    expect_vector("aws-lc/crypto/ocsp/test/aws/ocsp_request.der", 0, 1, 1);
    expect_vector("aws-lc/crypto/ocsp/test/aws/ocsp_request_no_nonce.der", 0, 1, 0);
    expect_vector("aws-lc/crypto/ocsp/test/aws/ocsp_request_signed_sha256.der", 0, 1, 1);
    expect_vector("aws-lc/crypto/ocsp/test/aws/ocsp_request_attached_cert.der", 0, 1, 1);
    expect_vector("boringssl/pki/testdata/ocsp_unittest-der/good_response.req.der", 0, 1, 0);
    expect_vector("boringssl/pki/testdata/ocsp_unittest-der/good_response_invalid_serial.req.der",
                  TG_EMALFORMED, 0, 0);

    /* The nonce of pyca's req-ext-nonce.der, 16 octets. */
    tg_ocsp_req_t r;
    if (vector_rc("pyca-cryptography/ocsp/req-ext-nonce.der", &r) == 0) {
        static const uint8_t want[] = {0x7B, 0x80, 0x5A, 0x1D, 0x37, 0x26, 0xB8, 0xB8,
                                       0x4F, 0x48, 0xD2, 0xF8, 0xBF, 0xD7, 0x2D, 0xFD};
        cr_assert_eq(r.nonce_len, 16);
        cr_assert(memcmp(r.nonce, want, 16) == 0);
        static const uint8_t serial[] = {0x01, 0xAF, 0x1E, 0xFB, 0xDD, 0x5E, 0xAE, 0x09,
                                         0x52, 0x32, 0x0B, 0x24, 0xFE, 0x6B, 0x55, 0x68};
        cr_assert_eq(r.certids[0].serial_len, 16);
        cr_assert(memcmp(r.certids[0].serial, serial, 16) == 0);
    }
    tg_ocsp_req_clear(&r);
    /* pyca's req-acceptable-responses.der: serial E5 24 ... has its top bit
     * set, so 17 content octets with a leading 00. */
    if (vector_rc("pyca-cryptography/ocsp/req-acceptable-responses.der", &r) == 0) {
        cr_assert_eq(r.certids[0].serial_len, 17);
        cr_assert_eq(r.certids[0].serial[0], 0x00);
        cr_assert_eq(r.certids[0].serial[1], 0xE5);
    }
    tg_ocsp_req_clear(&r);
}
