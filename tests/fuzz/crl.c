/* libFuzzer harness: tg_crl_parse, tg_crl_for_each_revoked and
 * tg_crl_verify (pki/crl.h), and the indexing of what they accept
 * (cache/cache.h: the packed revoked index, written to a real LMDB
 * environment in a temporary folder and read back).
 *
 * Each input is used twice:
 * 1. as raw bytes: parsed with max_bytes = size, and when it parses, walked
 *    and verified against a fixed P-256 CA;
 * 2. as a list of (offset, xor) edits applied to a valid signed CRL made at
 *    start-up (with reasons, a CRL number and an AKI), so that the walk and
 *    the extension parsers see inputs that are almost right, which raw
 *    mutation rarely reaches.
 * Checked for every input: no crash, a known return code, fields within
 * their bounds, slices inside the input, an empty OpenSSL error queue. */
#include "cache/cache.h"
#include "pki/crl.h"
#include "pki/sm2.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *ca_key;
static X509 *ca_cert;
static uint8_t *base_der;
static size_t base_len;
static tg_cache_t *cache;
static tg_cache_reader_t *reader;
static char cache_dir[64];

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    CHECK(ext != NULL);
    CHECK(X509_add_ext(x, ext, -1));
    X509_EXTENSION_free(ext);
}

static void make_world(void)
{
    ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    CHECK(ca_key != NULL);
    ca_cert = X509_new();
    CHECK(ca_cert != NULL);
    CHECK(X509_set_version(ca_cert, X509_VERSION_3));
    CHECK(ASN1_INTEGER_set(X509_get_serialNumber(ca_cert), 1));
    X509_NAME *name = X509_NAME_new();
    CHECK(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"Fuzz CA", -1,
                                     -1, 0));
    CHECK(X509_set_subject_name(ca_cert, name));
    CHECK(X509_set_issuer_name(ca_cert, name));
    X509_NAME_free(name);
    CHECK(X509_gmtime_adj(X509_getm_notBefore(ca_cert), 0));
    CHECK(X509_gmtime_adj(X509_getm_notAfter(ca_cert), 86400));
    CHECK(X509_set_pubkey(ca_cert, ca_key));
    add_ext(ca_cert, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(ca_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(ca_cert, NID_subject_key_identifier, "hash");
    CHECK(tg_pki_sign_x509(ca_cert, ca_key, NULL) == 0);
    /* compute the extension cache once, as a shared certificate would */
    CHECK(X509_check_purpose(ca_cert, -1, 0) == 1);

    X509_CRL *crl = X509_CRL_new();
    CHECK(crl != NULL);
    CHECK(X509_CRL_set_version(crl, X509_CRL_VERSION_2));
    CHECK(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)));
    ASN1_TIME *t = ASN1_TIME_set(NULL, 1750000000);
    CHECK(X509_CRL_set1_lastUpdate(crl, t));
    CHECK(ASN1_TIME_set(t, 1750086400) != NULL);
    CHECK(X509_CRL_set1_nextUpdate(crl, t));
    for (int i = 0; i < 6; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *s = ASN1_INTEGER_new();
        CHECK(r != NULL && s != NULL);
        CHECK(ASN1_INTEGER_set_int64(s, (int64_t)0x7f00 + i * 0x41));
        CHECK(X509_REVOKED_set_serialNumber(r, s));
        ASN1_INTEGER_free(s);
        CHECK(X509_REVOKED_set_revocationDate(r, t));
        if (i % 2 == 0) {
            ASN1_ENUMERATED *e = ASN1_ENUMERATED_new();
            CHECK(ASN1_ENUMERATED_set(e, i));
            CHECK(X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, e, 0, 0));
            ASN1_ENUMERATED_free(e);
        }
        CHECK(X509_CRL_add0_revoked(crl, r));
    }
    ASN1_TIME_free(t);
    ASN1_INTEGER *n = ASN1_INTEGER_new();
    CHECK(ASN1_INTEGER_set(n, 300));
    CHECK(X509_CRL_add1_ext_i2d(crl, NID_crl_number, n, 0, 0));
    ASN1_INTEGER_free(n);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca_cert, NULL, NULL, crl, 0);
    X509_EXTENSION *aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid");
    CHECK(aki != NULL);
    CHECK(X509_CRL_add_ext(crl, aki, -1));
    X509_EXTENSION_free(aki);
    CHECK(X509_CRL_sign(crl, ca_key, EVP_sha256()));
    unsigned char *der = NULL;
    int len = i2d_X509_CRL(crl, &der);
    CHECK(len > 0);
    X509_CRL_free(crl);
    base_der = der;
    base_len = (size_t)len;

    /* the unmodified CRL must pass everything */
    tg_crl_info_t info;
    CHECK(tg_crl_parse(base_der, base_len, base_len, &info) == 0);
    CHECK(tg_crl_verify(&info, base_der, base_len, ca_cert, NULL) == 0);
    CHECK(info.aki.n > 0 && info.crl_number_len == 2);
}

static void close_cache(void)
{
    char path[96];
    tg_cache_reader_free(reader);
    tg_cache_close(cache);
    snprintf(path, sizeof(path), "%s/data.mdb", cache_dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", cache_dir);
    unlink(path);
    rmdir(cache_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    make_world();
    snprintf(cache_dir, sizeof(cache_dir), "/tmp/tg-fuzz-crl.XXXXXX");
    CHECK(mkdtemp(cache_dir) != NULL);
    CHECK(tg_cache_open(cache_dir, 64, &cache) == 0);
    CHECK(tg_cache_reader_new(cache, &reader) == 0);
    atexit(close_cache);
    return 0;
}

static int in(tg_slice_t s, const uint8_t *p, size_t n)
{
    return s.n == 0 || (s.p >= p && s.n <= n && (size_t)(s.p - p) <= n - s.n);
}

static int entry_cb(void *arg, const tg_crl_entry_t *e)
{
    size_t *count = arg;
    CHECK(e->serial_len >= 1 && e->serial_len <= TG_SERIAL_MAX_LEN);
    CHECK((e->serial[0] & 0x80) == 0);
    CHECK(e->reason >= -1 && e->reason <= 10 && e->reason != 7);
    (*count)++;
    /* stop at times, to exercise the early exit */
    return (*count == 1000) ? 1 : 0;
}

typedef struct {
    size_t n;
    size_t max_len;
} sizes_t;

static int size_cb(void *arg, const tg_crl_entry_t *e)
{
    sizes_t *s = arg;
    s->n++;
    if (e->serial_len > s->max_len)
        s->max_len = e->serial_len;
    return 0;
}

static int add_cb(void *arg, const tg_crl_entry_t *e)
{
    return tg_cache_rindex_add(arg, e->serial, e->serial_len, e->revocation_time, e->reason);
}

static int lookup_cb(void *arg, const tg_crl_entry_t *e)
{
    (void)arg;
    static const uint8_t ca[TG_CACHE_CA_ID_LEN] = {1};
    tg_cache_revoked_t r;
    CHECK(tg_cache_get_revoked(reader, ca, e->serial, e->serial_len, &r) == 0);
    CHECK(r.reason >= -1 && r.reason <= 10);
    return 0;
}

/* Indexes an accepted CRL the way the CRL manager does (sizes, then the
 * index, one cache write) and finds every entry again. */
static void index_and_find(const tg_crl_info_t *info, const uint8_t *p, size_t n)
{
    static const uint8_t ca[TG_CACHE_CA_ID_LEN] = {1};
    sizes_t sz = {0, 0};
    if (tg_crl_for_each_revoked(info, size_cb, &sz) < 0)
        return;
    tg_cache_rindex_t *ix = NULL;
    if (sz.n > 0) {
        CHECK(tg_cache_rindex_new(sz.n, sz.max_len, &ix) == 0);
        CHECK(tg_crl_for_each_revoked(info, add_cb, ix) == (int)sz.n);
        CHECK(tg_cache_rindex_count(ix) == sz.n);
    }
    tg_cache_crl_t hdr;
    memset(&hdr, 0, sizeof(hdr));
    hdr.this_update = info->this_update;
    hdr.next_update = info->next_update;
    hdr.crl_number_len = info->crl_number_len;
    memcpy(hdr.crl_number, info->crl_number, info->crl_number_len);
    tg_buf_t der;
    tg_buf_init(&der);
    CHECK(tg_buf_append(&der, p, n) == 0);
    tg_cache_waiter_t w;
    tg_cache_waiter_init(&w);
    CHECK(tg_cache_put_crl_take(cache, ca, &hdr, &der, ix, tg_cache_waiter_cb, &w) == 0);
    CHECK(tg_cache_waiter_wait(&w) == 0);
    CHECK(tg_cache_rd_begin(reader) == 0);
    tg_cache_crl_t got;
    CHECK(tg_cache_get_crl(reader, ca, &got) == 0);
    CHECK(got.n_revoked == sz.n && got.der.n == n && memcmp(got.der.p, p, n) == 0);
    CHECK(tg_crl_for_each_revoked(info, lookup_cb, NULL) == (int)sz.n);
    tg_cache_rd_end(reader);
}

static void run(const uint8_t *p, size_t n)
{
    tg_crl_info_t info;
    int rc = tg_crl_parse(p, n, n, &info);
    CHECK(rc == 0 || rc == TG_EMALFORMED || rc == TG_EUNSUPPORTED);
    CHECK(ERR_peek_error() == 0);
    if (rc != 0)
        return;
    CHECK(in(info.tbs, p, n) && in(info.sig_alg, p, n) && in(info.sig, p, n));
    CHECK(in(info.issuer, p, n) && in(info.revoked, p, n) && in(info.aki, p, n));
    CHECK(info.crl_number_len <= TG_CRL_NUMBER_MAX);
    CHECK(info.version <= 1);
    (void)tg_crl_number_cmp(info.crl_number, info.crl_number_len, base_der, 1);

    size_t count = 0;
    int w = tg_crl_for_each_revoked(&info, entry_cb, &count);
    CHECK(w >= 0 || w == TG_EMALFORMED || w == TG_EUNSUPPORTED);
    if (w >= 0)
        CHECK((size_t)w == count);
    CHECK(ERR_peek_error() == 0);
    if (w >= 0 && count < 1000)
        index_and_find(&info, p, n);

    const char *why = NULL;
    int v = tg_crl_verify(&info, p, n, ca_cert, &why);
    CHECK(v == 0 || v == TG_EMALFORMED || v == TG_ENOMEM);
    CHECK(v != TG_EMALFORMED || why != NULL);
    CHECK(ERR_peek_error() == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size);

    /* edits on the valid CRL: 3 bytes each, a 16-bit offset and an XOR;
     * a final odd byte, when present, truncates by that many bytes */
    uint8_t *copy = malloc(base_len);
    CHECK(copy != NULL);
    memcpy(copy, base_der, base_len);
    size_t len = base_len, i = 0;
    for (; i + 3 <= size && i < 3 * 16; i += 3) {
        size_t off = ((size_t)data[i] << 8 | data[i + 1]) % base_len;
        copy[off] ^= data[i + 2];
    }
    if (i < size && data[i] < len)
        len -= data[i];
    run(copy, len);
    free(copy);
    return 0;
}
