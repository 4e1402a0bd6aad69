/* CRL parsing, verification and the revoked-entry walk (pki/crl.h).
 *
 * CRLs are made in the test with OpenSSL (RSA and ECDSA with
 * X509_CRL_sign, SM2 with tg_pki_sign_crl, which sets the standard ID);
 * third-party CRLs come from $TG_VECTORS (default /work/shared/vectors). */
#include "pki/crl.h"
#include "pki/sm2.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_BYTES ((size_t)64 << 20)
#define NOW ((time_t)1750000000) /* 2025-06-15T15:06:40Z */

/* ---- helpers ---- */

typedef enum { K_RSA, K_P256, K_SM2 } kind_t;

static EVP_PKEY *keygen(kind_t k)
{
    EVP_PKEY *key = NULL;
    switch (k) {
    case K_RSA: key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048); break;
    case K_P256: key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); break;
    case K_SM2: key = EVP_PKEY_Q_keygen(NULL, NULL, "SM2"); break;
    }
    cr_assert_not_null(key);
    return key;
}

/* A self-signed CA called cn; ku, when not NULL, is its keyUsage. */
static X509 *make_ca(const char *cn, EVP_PKEY *key, const char *ku)
{
    X509 *x = X509_new();
    cr_assert_not_null(x);
    cr_assert(X509_set_version(x, X509_VERSION_3));
    cr_assert(ASN1_INTEGER_set(X509_get_serialNumber(x), 1));
    X509_NAME *name = X509_NAME_new();
    cr_assert(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0));
    cr_assert(X509_set_subject_name(x, name));
    cr_assert(X509_set_issuer_name(x, name));
    X509_NAME_free(name);
    cr_assert(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    cr_assert(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    cr_assert(X509_set_pubkey(x, key));
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext =
        X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    cr_assert_not_null(ext);
    cr_assert(X509_add_ext(x, ext, -1));
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
    cr_assert_not_null(ext);
    cr_assert(X509_add_ext(x, ext, -1));
    X509_EXTENSION_free(ext);
    if (ku != NULL) {
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, ku);
        cr_assert_not_null(ext);
        cr_assert(X509_add_ext(x, ext, -1));
        X509_EXTENSION_free(ext);
    }
    cr_assert_eq(tg_pki_sign_x509(x, key, NULL), 0);
    return x;
}

typedef struct {
    size_t n_entries;     /* serials 0x1000 + i, reason i % 12 (7, 11: none) */
    long crl_number;      /* < 0: none */
    int no_next_update;   /* leave nextUpdate out */
    int next_before_this; /* nextUpdate an hour before thisUpdate */
    int delta;            /* add a deltaCRLIndicator */
    int unknown_critical; /* add a critical extension 1.2.3.4 */
    int negative_serial;  /* one entry with serial -5 */
    int cert_issuer;      /* one entry with a certificateIssuer extension */
    int aki;              /* add an authorityKeyIdentifier (keyid) */
    int v1;               /* version 1 (no CRL extensions unless asked) */
    time_t next_at;       /* nextUpdate, when not 0 */
} crl_opts_t;

/* Reason of entry i: reasons 0..10 except 7; -1 (no extension) otherwise. */
static int entry_reason(size_t i)
{
    int r = (int)(i % 12);
    return (r == 7 || r == 11) ? -1 : r;
}

/* A DER CRL issued by ca/key (malloc'd; the caller frees). */
static uint8_t *make_crl(X509 *ca, EVP_PKEY *key, const crl_opts_t *o, size_t *out_len)
{
    X509_CRL *crl = X509_CRL_new();
    cr_assert_not_null(crl);
    /* v1 leaves the version out (X509_CRL_set_version would encode an
     * explicit 0, which we refuse like BoringSSL) */
    if (!o->v1)
        cr_assert(X509_CRL_set_version(crl, X509_CRL_VERSION_2));
    cr_assert(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)));
    ASN1_TIME *t = ASN1_TIME_set(NULL, NOW);
    cr_assert(X509_CRL_set1_lastUpdate(crl, t));
    if (!o->no_next_update) {
        time_t next = o->next_at ? o->next_at : o->next_before_this ? NOW - 3600 : NOW + 86400;
        cr_assert_not_null(ASN1_TIME_set(t, next));
        cr_assert(X509_CRL_set1_nextUpdate(crl, t));
    }
    for (size_t i = 0; i < o->n_entries; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        cr_assert_not_null(r);
        ASN1_INTEGER *s = ASN1_INTEGER_new();
        cr_assert(ASN1_INTEGER_set_int64(s, (int64_t)(0x1000 + i)));
        cr_assert(X509_REVOKED_set_serialNumber(r, s));
        ASN1_INTEGER_free(s);
        cr_assert_not_null(ASN1_TIME_set(t, NOW - (time_t)i));
        cr_assert(X509_REVOKED_set_revocationDate(r, t));
        if (entry_reason(i) >= 0) {
            ASN1_ENUMERATED *e = ASN1_ENUMERATED_new();
            cr_assert(ASN1_ENUMERATED_set(e, entry_reason(i)));
            cr_assert(X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, e, 0, 0));
            ASN1_ENUMERATED_free(e);
        }
        cr_assert(X509_CRL_add0_revoked(crl, r));
    }
    if (o->negative_serial || o->cert_issuer) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *s = ASN1_INTEGER_new();
        cr_assert(ASN1_INTEGER_set_int64(s, o->negative_serial ? -5 : 77));
        cr_assert(X509_REVOKED_set_serialNumber(r, s));
        ASN1_INTEGER_free(s);
        cr_assert(X509_REVOKED_set_revocationDate(r, t));
        if (o->cert_issuer) {
            GENERAL_NAMES *gns = GENERAL_NAMES_new();
            GENERAL_NAME *gn = GENERAL_NAME_new();
            gn->type = GEN_DIRNAME;
            gn->d.directoryName = X509_NAME_dup(X509_get_subject_name(ca));
            cr_assert(sk_GENERAL_NAME_push(gns, gn));
            cr_assert(X509_REVOKED_add1_ext_i2d(r, NID_certificate_issuer, gns, 1, 0));
            GENERAL_NAMES_free(gns);
        }
        cr_assert(X509_CRL_add0_revoked(crl, r));
    }
    ASN1_TIME_free(t);
    if (o->crl_number >= 0) {
        ASN1_INTEGER *n = ASN1_INTEGER_new();
        cr_assert(ASN1_INTEGER_set(n, o->crl_number));
        cr_assert(X509_CRL_add1_ext_i2d(crl, NID_crl_number, n, 0, 0));
        if (o->delta)
            cr_assert(X509_CRL_add1_ext_i2d(crl, NID_delta_crl, n, 1, 0));
        ASN1_INTEGER_free(n);
    }
    if (o->aki) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, ca, NULL, NULL, crl, 0);
        X509_EXTENSION *ext =
            X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid");
        cr_assert_not_null(ext);
        cr_assert(X509_CRL_add_ext(crl, ext, -1));
        X509_EXTENSION_free(ext);
    }
    if (o->unknown_critical) {
        ASN1_OBJECT *obj = OBJ_txt2obj("1.2.3.4", 1);
        ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
        cr_assert(ASN1_OCTET_STRING_set(v, (const unsigned char *)"\x05\x00", 2));
        X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, v);
        cr_assert_not_null(ext);
        cr_assert(X509_CRL_add_ext(crl, ext, -1));
        X509_EXTENSION_free(ext);
        ASN1_OCTET_STRING_free(v);
        ASN1_OBJECT_free(obj);
    }
    if (tg_pki_is_sm2(key))
        cr_assert_eq(tg_pki_sign_crl(crl, key, NULL), 0);
    else
        cr_assert(X509_CRL_sign(crl, key, EVP_sha256()));
    unsigned char *der = NULL;
    int len = i2d_X509_CRL(crl, &der);
    cr_assert_gt(len, 0);
    X509_CRL_free(crl);
    *out_len = (size_t)len;
    return der;
}

static void free_der(uint8_t *der)
{
    OPENSSL_free(der);
}

typedef struct {
    size_t n;
    int seen_reason[12];
    int order_ok;
    int stop_after; /* 0: never */
} walk_t;

static int walk_cb(void *arg, const tg_crl_entry_t *e)
{
    walk_t *w = arg;
    cr_assert(e->serial_len >= 1 && e->serial_len <= TG_SERIAL_MAX_LEN);
    cr_assert_eq(e->serial[0] & 0x80, 0);
    cr_assert(e->reason >= -1 && e->reason <= 10 && e->reason != 7);
    w->seen_reason[e->reason + 1]++;
    w->n++;
    return (w->stop_after != 0 && w->n == (size_t)w->stop_after) ? 1 : 0;
}

/* Finds the entry for serial in the walk (OpenSSL sorts entries). */
typedef struct {
    uint64_t serial;
    int found;
    tg_crl_entry_t e;
} find_t;

static int find_cb(void *arg, const tg_crl_entry_t *e)
{
    find_t *f = arg;
    uint64_t v = 0;
    for (size_t i = 0; i < e->serial_len; i++)
        v = (v << 8) | e->serial[i];
    if (e->serial_len <= 8 && v == f->serial) {
        f->found = 1;
        f->e = *e;
        return 1;
    }
    return 0;
}

/* ---- parse + verify + walk for each algorithm ---- */

static void roundtrip(kind_t kind)
{
    EVP_PKEY *key = keygen(kind);
    X509 *ca = make_ca("CRL CA", key, "critical,keyCertSign,cRLSign");
    crl_opts_t o = {.n_entries = 30, .crl_number = 4242};
    size_t len;
    uint8_t *der = make_crl(ca, key, &o, &len);

    tg_crl_info_t info;
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
    cr_assert_eq(info.this_update, (int64_t)NOW);
    cr_assert_eq(info.next_update, (int64_t)NOW + 86400);
    cr_assert_eq(info.crl_number_len, 2);
    cr_assert_eq(info.crl_number[0], 0x10);
    cr_assert_eq(info.crl_number[1], 0x92);
    cr_assert_eq(info.aki.n, 0);
    cr_assert(info.tbs.p > der && info.tbs.p + info.tbs.n <= der + len);
    const char *why = "x";
    cr_assert_eq(tg_crl_verify(&info, der, len, ca, &why), 0);
    cr_assert_null(why);

    walk_t w = {0};
    cr_assert_eq(tg_crl_for_each_revoked(&info, walk_cb, &w), 30);
    cr_assert_eq(w.n, 30);
    for (int r = 0; r <= 10; r++)
        if (r != 7)
            cr_assert_gt(w.seen_reason[r + 1], 0, "reason %d", r);
    cr_assert_eq(w.seen_reason[7 + 1], 0);
    cr_assert_gt(w.seen_reason[0], 0); /* some without reasonCode */

    /* every entry carries its own time and reason */
    for (size_t i = 0; i < 30; i++) {
        find_t f = {.serial = 0x1000 + i};
        cr_assert_eq(tg_crl_for_each_revoked(&info, find_cb, &f) > 0, 1);
        cr_assert(f.found, "serial %zu", i);
        cr_assert_eq(f.e.revocation_time, (int64_t)NOW - (int64_t)i);
        cr_assert_eq(f.e.reason, entry_reason(i));
        cr_assert_eq(f.e.serial_len, 2);
    }

    /* early stop */
    walk_t w2 = {.stop_after = 5};
    cr_assert_eq(tg_crl_for_each_revoked(&info, walk_cb, &w2), 5);

    /* a wrong CA of the same algorithm, same name (other key), other name */
    EVP_PKEY *key2 = keygen(kind);
    X509 *same_name = make_ca("CRL CA", key2, NULL);
    X509 *other_name = make_ca("Other CA", key, NULL);
    cr_assert_eq(tg_crl_verify(&info, der, len, same_name, &why), TG_EMALFORMED);
    cr_assert_str_eq(why, "bad_signature");
    cr_assert_eq(tg_crl_verify(&info, der, len, other_name, &why), TG_EMALFORMED);
    cr_assert_str_eq(why, "wrong_issuer");
    cr_assert_eq(ERR_peek_error(), 0);

    X509_free(same_name);
    X509_free(other_name);
    EVP_PKEY_free(key2);
    free_der(der);
    X509_free(ca);
    EVP_PKEY_free(key);
}

Test(crl, rsa)
{
    roundtrip(K_RSA);
}

Test(crl, p256)
{
    roundtrip(K_P256);
}

Test(crl, sm2)
{
    roundtrip(K_SM2);
}

/* Stock X509_CRL_verify passes no SM2 ID: it refuses a CRL signed with the
 * standard ID, which tg_crl_verify accepts. */
Test(crl, sm2_stock_openssl_fails)
{
    EVP_PKEY *key = keygen(K_SM2);
    X509 *ca = make_ca("SM2 CA", key, "critical,keyCertSign,cRLSign");
    crl_opts_t o = {.n_entries = 3, .crl_number = 1};
    size_t len;
    uint8_t *der = make_crl(ca, key, &o, &len);

    const unsigned char *q = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &q, (long)len);
    cr_assert_not_null(crl);
    cr_assert_leq(X509_CRL_verify(crl, X509_get0_pubkey(ca)), 0);
    ERR_clear_error();
    X509_CRL_free(crl);

    tg_crl_info_t info;
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
    const char *why;
    cr_assert_eq(tg_crl_verify(&info, der, len, ca, &why), 0);
    free_der(der);
    X509_free(ca);
    EVP_PKEY_free(key);
}

/* ---- refusals ---- */

typedef struct {
    EVP_PKEY *key;
    X509 *ca;
} fixture_t;

static fixture_t fixture(void)
{
    fixture_t f;
    f.key = keygen(K_P256);
    f.ca = make_ca("Refusal CA", f.key, "critical,keyCertSign,cRLSign");
    return f;
}

static void fixture_free(fixture_t *f)
{
    X509_free(f->ca);
    EVP_PKEY_free(f->key);
}

/* Parses a copy of exactly len bytes (ASan sees any over-read). */
static int parse_copy(const uint8_t *der, size_t len, size_t max, tg_crl_info_t *info)
{
    uint8_t *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, der, len);
    int rc = tg_crl_parse(copy, len, max, info);
    free(copy);
    return rc;
}

static int count_cb(void *arg, const tg_crl_entry_t *e)
{
    (void)e;
    (*(size_t *)arg)++;
    return 0;
}

Test(crl, tampered_tbs_and_signature)
{
    fixture_t f = fixture();
    crl_opts_t o = {.n_entries = 4, .crl_number = 1};
    size_t len;
    uint8_t *der = make_crl(f.ca, f.key, &o, &len);
    tg_crl_info_t info;
    const char *why;

    /* a serial byte in the TBS: still parses, no longer verifies */
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
    const uint8_t *r = info.revoked.p;
    cr_assert_eq(r[0], 0x30);
    cr_assert_eq(r[2], 0x02);
    size_t off = (size_t)(r + 4 - der);
    der[off] ^= 0x01;
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
    cr_assert_eq(tg_crl_verify(&info, der, len, f.ca, &why), TG_EMALFORMED);
    cr_assert_str_eq(why, "bad_signature");
    der[off] ^= 0x01;

    /* the last byte of the signature */
    der[len - 1] ^= 0x01;
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
    cr_assert_eq(tg_crl_verify(&info, der, len, f.ca, &why), TG_EMALFORMED);
    cr_assert_str_eq(why, "bad_signature");
    der[len - 1] ^= 0x01;
    cr_assert_eq(tg_crl_verify(&info, der, len, f.ca, &why), 0);
    cr_assert_eq(ERR_peek_error(), 0);
    free_der(der);
    fixture_free(&f);
}

Test(crl, truncated_trailing_and_size)
{
    fixture_t f = fixture();
    crl_opts_t o = {.n_entries = 20, .crl_number = 9};
    size_t len;
    uint8_t *der = make_crl(f.ca, f.key, &o, &len);
    tg_crl_info_t info;
    size_t tried = 0;
    for (size_t k = 0; k < len; k += 7, tried++)
        cr_assert_lt(parse_copy(der, k, MAX_BYTES, &info), 0, "truncated at %zu", k);
    cr_log_info("truncations tried: %zu of %zu bytes", tried, len);

    uint8_t *longer = malloc(len + 1);
    memcpy(longer, der, len);
    longer[len] = 0;
    cr_assert_eq(tg_crl_parse(longer, len + 1, MAX_BYTES, &info), TG_EMALFORMED);
    free(longer);

    cr_assert_eq(tg_crl_parse(der, len, len - 1, &info), TG_ETOOBIG);
    cr_assert_eq(tg_crl_parse(der, len, len, &info), 0);
    cr_assert_eq(tg_crl_parse(NULL, len, len, &info), TG_EINVAL);
    free_der(der);
    fixture_free(&f);
}

Test(crl, next_update_rules)
{
    fixture_t f = fixture();
    size_t len;
    tg_crl_info_t info;
    const char *why;

    crl_opts_t missing = {.n_entries = 1, .crl_number = 1, .no_next_update = 1};
    uint8_t *der = make_crl(f.ca, f.key, &missing, &len);
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), TG_EMALFORMED);
    free_der(der);

    crl_opts_t before = {.n_entries = 1, .crl_number = 1, .next_before_this = 1};
    der = make_crl(f.ca, f.key, &before, &len);
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
    cr_assert_eq(tg_crl_verify(&info, der, len, f.ca, &why), TG_EMALFORMED);
    cr_assert_str_eq(why, "bad_times");
    free_der(der);
    fixture_free(&f);
}

Test(crl, unsupported_and_bad_entries)
{
    fixture_t f = fixture();
    size_t len, n = 0;
    tg_crl_info_t info;

    crl_opts_t delta = {.n_entries = 1, .crl_number = 3, .delta = 1};
    uint8_t *der = make_crl(f.ca, f.key, &delta, &len);
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), TG_EUNSUPPORTED);
    free_der(der);

    crl_opts_t crit = {.n_entries = 1, .crl_number = 3, .unknown_critical = 1};
    der = make_crl(f.ca, f.key, &crit, &len);
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), TG_EUNSUPPORTED);
    free_der(der);

    crl_opts_t neg = {.n_entries = 2, .crl_number = 3, .negative_serial = 1};
    der = make_crl(f.ca, f.key, &neg, &len);
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
    cr_assert_eq(tg_crl_for_each_revoked(&info, count_cb, &n), TG_EMALFORMED);
    free_der(der);

    crl_opts_t indirect = {.n_entries = 2, .crl_number = 3, .cert_issuer = 1};
    der = make_crl(f.ca, f.key, &indirect, &len);
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
    cr_assert_eq(tg_crl_for_each_revoked(&info, count_cb, &n), TG_EUNSUPPORTED);
    free_der(der);
    fixture_free(&f);
}

Test(crl, ca_without_crl_sign)
{
    EVP_PKEY *key = keygen(K_P256);
    X509 *ca = make_ca("KU CA", key, "critical,keyCertSign");
    X509 *ca_no_ku = make_ca("KU CA", key, NULL);
    crl_opts_t o = {.n_entries = 1, .crl_number = 1};
    size_t len;
    uint8_t *der = make_crl(ca, key, &o, &len);
    tg_crl_info_t info;
    const char *why;
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
    cr_assert_eq(tg_crl_verify(&info, der, len, ca, &why), TG_EMALFORMED);
    cr_assert_str_eq(why, "no_crl_sign");
    cr_assert_eq(tg_crl_verify(&info, der, len, ca_no_ku, &why), 0);
    free_der(der);
    X509_free(ca);
    X509_free(ca_no_ku);
    EVP_PKEY_free(key);
}

Test(crl, no_entries_no_extensions)
{
    fixture_t f = fixture();
    crl_opts_t o = {.crl_number = -1};
    size_t len, n = 0;
    uint8_t *der = make_crl(f.ca, f.key, &o, &len);
    tg_crl_info_t info;
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
    cr_assert_eq(info.crl_number_len, 0);
    cr_assert_eq(info.revoked.n, 0);
    cr_assert_eq(tg_crl_for_each_revoked(&info, count_cb, &n), 0);
    cr_assert_eq(tg_crl_verify(&info, der, len, f.ca, NULL), 0);
    free_der(der);
    fixture_free(&f);
}

/* A CA that rolled its key keeps its name: the CRL's authorityKeyIdentifier
 * tells them apart before any signature is checked. */
Test(crl, authority_key_identifier)
{
    EVP_PKEY *key = keygen(K_P256), *key2 = keygen(K_P256);
    X509 *ca = make_ca("AKI CA", key, NULL);
    X509 *rolled = make_ca("AKI CA", key2, NULL);
    crl_opts_t o = {.n_entries = 2, .crl_number = 1, .aki = 1};
    size_t len;
    uint8_t *der = make_crl(ca, key, &o, &len);
    tg_crl_info_t info;
    const char *why;
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
    cr_assert_gt(info.aki.n, 0);
    cr_assert_eq(info.aki.p[0], 0x30);
    cr_assert_eq(tg_crl_verify(&info, der, len, ca, &why), 0);
    cr_assert_eq(tg_crl_verify(&info, der, len, rolled, &why), TG_EMALFORMED);
    cr_assert_str_eq(why, "wrong_issuer");
    free_der(der);
    X509_free(ca);
    X509_free(rolled);
    EVP_PKEY_free(key);
    EVP_PKEY_free(key2);
}

/* v1 CRLs: accepted without extensions; entry extensions need v2. */
Test(crl, version_1)
{
    fixture_t f = fixture();
    size_t len, n = 0;
    tg_crl_info_t info;
    crl_opts_t plain = {.n_entries = 11, .crl_number = -1, .v1 = 1};
    uint8_t *der = make_crl(f.ca, f.key, &plain, &len);
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
    cr_assert_eq(info.version, 0);
    cr_assert_eq(tg_crl_verify(&info, der, len, f.ca, NULL), 0);
    /* entries 0..10 carry reasons except 7: v1 must not */
    cr_assert_eq(tg_crl_for_each_revoked(&info, count_cb, &n), TG_EMALFORMED);
    free_der(der);

    crl_opts_t with_ext = {.crl_number = 5, .v1 = 1};
    der = make_crl(f.ca, f.key, &with_ext, &len);
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), TG_EMALFORMED);
    free_der(der);
    fixture_free(&f);
}

/* UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280 §5.1.2.4). */
Test(crl, times)
{
    fixture_t f = fixture();
    const time_t at[] = {(time_t)2524607999, (time_t)2524608000, (time_t)4102444800,
                         (time_t)951782400 /* 2000-02-29 */};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        crl_opts_t o = {.crl_number = 1, .next_at = at[i]};
        size_t len;
        uint8_t *der = make_crl(f.ca, f.key, &o, &len);
        tg_crl_info_t info;
        cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
        cr_assert_eq(info.next_update, (int64_t)at[i], "%zu: %lld", i, (long long)info.next_update);
        free_der(der);
    }
    fixture_free(&f);
}

/* ---- CRL numbers ---- */

Test(crl, number_cmp)
{
    const uint8_t one[] = {0x01}, two[] = {0x02}, big[] = {0x00, 0x80}, bigger[] = {0x01, 0x00};
    const uint8_t zero[] = {0x00};
    cr_assert_lt(tg_crl_number_cmp(one, 1, two, 1), 0);
    cr_assert_gt(tg_crl_number_cmp(two, 1, one, 1), 0);
    cr_assert_eq(tg_crl_number_cmp(two, 1, two, 1), 0);
    cr_assert_gt(tg_crl_number_cmp(big, 2, two, 1), 0); /* 128 > 2 despite 00 */
    cr_assert_lt(tg_crl_number_cmp(big, 2, bigger, 2), 0);
    cr_assert_eq(tg_crl_number_cmp(zero, 1, NULL, 0), 0);
    cr_assert_lt(tg_crl_number_cmp(NULL, 0, one, 1), 0);

    /* as read from CRLs: 127 < 128 < 65536 */
    fixture_t f = fixture();
    long nums[] = {127, 128, 65536};
    uint8_t got[3][TG_CRL_NUMBER_MAX];
    size_t got_len[3];
    for (int i = 0; i < 3; i++) {
        crl_opts_t o = {.crl_number = nums[i]};
        size_t len;
        uint8_t *der = make_crl(f.ca, f.key, &o, &len);
        tg_crl_info_t info;
        cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
        memcpy(got[i], info.crl_number, info.crl_number_len);
        got_len[i] = info.crl_number_len;
        free_der(der);
    }
    cr_assert_eq(got_len[1], 2); /* 00 80 */
    cr_assert_lt(tg_crl_number_cmp(got[0], got_len[0], got[1], got_len[1]), 0);
    cr_assert_lt(tg_crl_number_cmp(got[1], got_len[1], got[2], got_len[2]), 0);
    cr_assert_gt(tg_crl_number_cmp(got[2], got_len[2], got[0], got_len[0]), 0);
    fixture_free(&f);
}

/* ---- a large CRL ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(crl, large_200k)
{
    fixture_t f = fixture();
    crl_opts_t o = {.n_entries = 200000, .crl_number = 77};
    size_t len;
    double t0 = now_s();
    uint8_t *der = make_crl(f.ca, f.key, &o, &len);
    double t1 = now_s();
    tg_crl_info_t info;
    cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
    const char *why;
    cr_assert_eq(tg_crl_verify(&info, der, len, f.ca, &why), 0);
    double t2 = now_s();
    walk_t w = {0};
    cr_assert_eq(tg_crl_for_each_revoked(&info, walk_cb, &w), 200000);
    double t3 = now_s();
    fprintf(stderr,
            "crl large_200k: %zu bytes; build %.2f s, parse+verify %.3f s, walk %.3f s "
            "(%.0f entries/s)\n",
            len, t1 - t0, t2 - t1, t3 - t2, 200000 / (t3 - t2));
    cr_assert_lt(t3 - t2, 1.0, "walk took %.3f s", t3 - t2);
    free_der(der);
    fixture_free(&f);
}

/* ---- third-party vectors ---- */

static const char *vectors_dir(void)
{
    const char *v = getenv("TG_VECTORS");
    return v != NULL && v[0] != '\0' ? v : "/work/shared/vectors";
}

static uint8_t *read_file(const char *path, size_t *out_len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *nb = realloc(buf, cap);
            cr_assert_not_null(nb);
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, fp);
        if (r == 0)
            break;
        n += r;
    }
    fclose(fp);
    *out_len = n;
    return buf;
}

/* DER of a file: as is, or the first "X509 CRL" PEM block (NULL when the
 * file is PEM without one). The raw PEM bytes are used, not a re-encoding,
 * so that non-DER input stays non-DER. */
static uint8_t *crl_der(const char *path, size_t *out_len, int *out_pem)
{
    size_t n;
    uint8_t *raw = read_file(path, &n);
    cr_assert_not_null(raw, "%s", path);
    *out_pem = 0;
    if (n < 11 || memmem(raw, n, "-----BEGIN ", 11) == NULL) {
        *out_len = n;
        return raw;
    }
    *out_pem = 1;
    BIO *bio = BIO_new_mem_buf(raw, (int)n);
    cr_assert_not_null(bio);
    uint8_t *der = NULL;
    for (;;) {
        char *name = NULL, *header = NULL;
        unsigned char *data = NULL;
        long dlen = 0;
        if (!PEM_read_bio(bio, &name, &header, &data, &dlen))
            break;
        int is_crl = strcmp(name, "X509 CRL") == 0;
        if (is_crl) {
            der = malloc(dlen > 0 ? (size_t)dlen : 1);
            cr_assert_not_null(der);
            memcpy(der, data, (size_t)dlen);
            *out_len = (size_t)dlen;
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        if (is_crl)
            break;
    }
    ERR_clear_error();
    BIO_free(bio);
    free(raw);
    return der;
}

Test(crl, vectors)
{
    static const char *globs[] = {
        "boringssl/pki/testdata/crl_unittest-der/*.crl.der",
        "rustls-webpki/tests/crls/*.der",
        "pyca-cryptography/crl/*",
        "openssl/crltest-extracted/*",
        "openssl-fuzz-corpora/crl/*",
    };
    const char *dir = vectors_dir();
    struct stat st;
    if (stat(dir, &st) != 0)
        cr_skip_test("no vectors at %s", dir);
    size_t total = 0;
    for (size_t g = 0; g < sizeof(globs) / sizeof(globs[0]); g++) {
        char pattern[4096];
        snprintf(pattern, sizeof(pattern), "%s/%s", dir, globs[g]);
        glob_t gl;
        if (glob(pattern, 0, NULL, &gl) != 0) {
            fprintf(stderr, "crl vectors: %s: none\n", globs[g]);
            continue;
        }
        size_t files = 0, not_crl = 0, parsed = 0, walked = 0, by_code[16] = {0};
        for (size_t i = 0; i < gl.gl_pathc; i++) {
            if (stat(gl.gl_pathv[i], &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            files++;
            size_t len = 0;
            int pem;
            uint8_t *der = crl_der(gl.gl_pathv[i], &len, &pem);
            if (der == NULL) {
                not_crl++;
                continue;
            }
            tg_crl_info_t info;
            int rc = parse_copy(der, len, MAX_BYTES, &info);
            cr_assert(rc == 0 || rc == TG_EMALFORMED || rc == TG_EUNSUPPORTED || rc == TG_ETOOBIG,
                      "%s: %d", gl.gl_pathv[i], rc);
            if (rc == 0) {
                parsed++;
                /* the slices must lie inside der: reparse in place and walk */
                cr_assert_eq(tg_crl_parse(der, len, MAX_BYTES, &info), 0);
                size_t n = 0;
                int wrc = tg_crl_for_each_revoked(&info, count_cb, &n);
                cr_assert(wrc >= 0 || wrc == TG_EMALFORMED || wrc == TG_EUNSUPPORTED, "%s: %d",
                          gl.gl_pathv[i], wrc);
                if (wrc >= 0)
                    walked++;
            } else {
                by_code[-rc]++;
            }
            cr_assert_eq(ERR_peek_error(), 0, "%s left OpenSSL errors", gl.gl_pathv[i]);
            free(der);
        }
        fprintf(stderr,
                "crl vectors: %s: %zu files, %zu not CRLs, %zu parse (%zu also walk), "
                "refused %zu malformed / %zu unsupported / %zu too big\n",
                globs[g], files, not_crl, parsed, walked, by_code[-TG_EMALFORMED],
                by_code[-TG_EUNSUPPORTED], by_code[-TG_ETOOBIG]);
        total += files;
        globfree(&gl);
    }
    if (total == 0)
        cr_skip_test("no CRL vectors under %s", dir);
}
