/* cache/: tg_cache_put_ocsp_batch, the synchronous bulk write. Each test
 * works in its own mkdtemp folder and removes it at the end. */
#include "cache/cache.h"
#include "common/err.h"
#include "common/log.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[64];

static void setup(void)
{
    tg_log_set_level(TG_LOG_WARN);
    snprintf(dir, sizeof dir, "/tmp/tg_batch_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* dir/name: one environment per name. */
static const char *env_at(const char *name)
{
    static char p[2][96];
    static int which;
    which ^= 1;
    snprintf(p[which], sizeof p[which], "%s/%s", dir, name);
    return p[which];
}

static tg_certid_t mkid(uint8_t issuer, uint32_t serial)
{
    tg_certid_t id;
    memset(&id, 0, sizeof id);
    id.alg = TG_HASH_SHA1;
    id.hash_len = 20;
    memset(id.name_hash, issuer, 20);
    memset(id.key_hash, (uint8_t)(issuer + 1), 20);
    id.serial_len = 4;
    id.serial[0] = (uint8_t)(serial >> 24);
    id.serial[1] = (uint8_t)(serial >> 16);
    id.serial[2] = (uint8_t)(serial >> 8);
    id.serial[3] = (uint8_t)serial;
    return id;
}

/* A batch of n records for serials serial_of(i); record i's DER is "der-"
 * plus its serial and a tag, padded with 'x' to der_len bytes (at least 24;
 * der_len 0: just the text). Owns ids, recs and the DER bytes. */
typedef struct {
    size_t n;
    tg_certid_t *ids;
    tg_cache_ocsp_t *recs;
    char *der;
    size_t stride;
} batch_t;

static void batch_make(batch_t *b, size_t n, uint8_t issuer, const uint32_t *serials, char tag,
                       size_t der_len)
{
    b->n = n;
    b->stride = der_len > 24 ? der_len : 24;
    b->ids = calloc(n, sizeof *b->ids);
    b->recs = calloc(n, sizeof *b->recs);
    b->der = malloc(n * b->stride);
    cr_assert(b->ids != NULL && b->recs != NULL && b->der != NULL);
    for (size_t i = 0; i < n; i++) {
        char *d = b->der + i * b->stride;
        int len = snprintf(d, b->stride, "der-%08x-%c", (unsigned)serials[i], tag);
        size_t dl = (size_t)len;
        if (der_len > dl) {
            memset(d + dl, 'x', der_len - dl);
            dl = der_len;
        }
        b->ids[i] = mkid(issuer, serials[i]);
        b->recs[i] = (tg_cache_ocsp_t){.this_update = 1000 + (int64_t)i,
                                       .next_update = 2000000000 + (int64_t)i,
                                       .produced_at = 1060 + (int64_t)i,
                                       .generation = 0,
                                       .source = TG_CACHE_SRC_UPSTREAM,
                                       .cert_status = (uint8_t)(i % 2),
                                       .reason = (int8_t)(i % 2 ? 1 : -1),
                                       .revocation_time = i % 2 ? 900 : 0,
                                       .der = TG_SLICE(d, dl)};
    }
}

static void batch_free(batch_t *b)
{
    free(b->ids);
    free(b->recs);
    free(b->der);
}

static uint32_t *seq(size_t n, uint32_t start)
{
    uint32_t *s = malloc(n * sizeof *s);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = start + (uint32_t)i;
    return s;
}

/* A deterministic shuffle (xorshift), so failures reproduce. */
static void shuffle(uint32_t *s, size_t n)
{
    uint32_t x = 2463534242u;
    for (size_t i = n; i > 1; i--) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        size_t j = x % i;
        uint32_t t = s[i - 1];
        s[i - 1] = s[j];
        s[j] = t;
    }
}

/* Asserts that every record of b reads back exactly as written. */
static void expect_batch(tg_cache_t *c, const batch_t *b)
{
    tg_cache_reader_t *r;
    cr_assert_eq(tg_cache_reader_new(c, &r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    for (size_t i = 0; i < b->n; i++) {
        tg_cache_ocsp_t got;
        const tg_cache_ocsp_t *want = &b->recs[i];
        cr_assert_eq(tg_cache_get_ocsp(r, TG_CACHE_SRC_UPSTREAM, &b->ids[i], &got), 0,
                     "record %zu missing", i);
        cr_assert_eq(got.der.n, want->der.n, "record %zu", i);
        cr_assert(want->der.n == 0 || memcmp(got.der.p, want->der.p, want->der.n) == 0,
                  "record %zu", i);
        cr_assert_eq(got.this_update, want->this_update);
        cr_assert_eq(got.next_update, want->next_update);
        cr_assert_eq(got.produced_at, want->produced_at);
        cr_assert_eq(got.generation, want->generation);
        cr_assert_eq(got.source, TG_CACHE_SRC_UPSTREAM);
        cr_assert_eq(got.cert_status, want->cert_status);
        cr_assert_eq(got.reason, want->reason);
        cr_assert_eq(got.revocation_time, want->revocation_time);
    }
    tg_cache_rd_end(r);
    tg_cache_reader_free(r);
}

/* Asserts that no record of b is in the cache. */
static void expect_none(tg_cache_t *c, const batch_t *b)
{
    tg_cache_reader_t *r;
    cr_assert_eq(tg_cache_reader_new(c, &r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    for (size_t i = 0; i < b->n; i++) {
        tg_cache_ocsp_t got;
        cr_assert_eq(tg_cache_get_ocsp(r, TG_CACHE_SRC_UPSTREAM, &b->ids[i], &got), TG_ENOTFOUND,
                     "record %zu of a failed batch is visible", i);
    }
    tg_cache_rd_end(r);
    tg_cache_reader_free(r);
}

static uint64_t ocsp_entries(tg_cache_t *c)
{
    tg_cache_stats_t st;
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    return st.ocsp_entries;
}

TestSuite(cache_batch, .init = setup, .fini = teardown);

Test(cache_batch, ascending_appends_reads_back_and_survives_reopen)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_at("env"), 64, &c), 0);
    const size_t n = 20000;
    uint32_t *s1 = seq(n, 0x10000000), *s2 = seq(n, 0x10000000 + (uint32_t)n);
    batch_t a, b;
    batch_make(&a, n, 1, s1, 'a', 0);
    batch_make(&b, n, 1, s2, 'b', 0);
    cr_assert_eq(tg_cache_put_ocsp_batch(c, a.ids, a.recs, a.n), 0);
    /* continues past the last key: appended again */
    cr_assert_eq(tg_cache_put_ocsp_batch(c, b.ids, b.recs, b.n), 0);
    expect_batch(c, &a);
    expect_batch(c, &b);
    cr_assert_eq(ocsp_entries(c), 2 * n);
    tg_cache_stats_t st;
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.map_full, 0);
    cr_assert_eq(st.write_errors, 0);
    cr_assert_eq(tg_cache_put_ocsp_batch(c, NULL, NULL, 0), 0); /* empty: nothing to do */
    tg_cache_close(c);

    cr_assert_eq(tg_cache_open(env_at("env"), 64, &c), 0);
    expect_batch(c, &a);
    expect_batch(c, &b);
    cr_assert_eq(ocsp_entries(c), 2 * n);
    tg_cache_close(c);
    batch_free(&a);
    batch_free(&b);
    free(s1);
    free(s2);
}

/* The same ascending batch, once appended to an empty db and once put
 * normally (a larger key is already stored, so MDB_APPEND cannot apply):
 * the appended tree packs its leaf pages full, the other splits them in
 * half, so the append shows in the pages used. */
Test(cache_batch, append_packs_pages_full)
{
    const size_t n = 20000;
    uint32_t *s = seq(n, 0x20000000);
    batch_t b, hi;
    batch_make(&b, n, 2, s, 'p', 100);
    uint32_t top = 0x7fffffff;
    batch_make(&hi, 1, 2, &top, 'h', 100);

    tg_cache_t *ca, *cb;
    cr_assert_eq(tg_cache_open(env_at("append"), 64, &ca), 0);
    cr_assert_eq(tg_cache_open(env_at("plain"), 64, &cb), 0);
    cr_assert_eq(tg_cache_put_ocsp_batch(cb, hi.ids, hi.recs, 1), 0);
    tg_cache_stats_t before_a, before_b, after_a, after_b;
    cr_assert_eq(tg_cache_stats(ca, &before_a), 0);
    cr_assert_eq(tg_cache_stats(cb, &before_b), 0);

    cr_assert_eq(tg_cache_put_ocsp_batch(ca, b.ids, b.recs, n), 0);
    cr_assert_eq(tg_cache_put_ocsp_batch(cb, b.ids, b.recs, n), 0);
    expect_batch(ca, &b);
    expect_batch(cb, &b);
    expect_batch(cb, &hi);
    cr_assert_eq(ocsp_entries(ca), n);
    cr_assert_eq(ocsp_entries(cb), n + 1);
    cr_assert_eq(tg_cache_stats(ca, &after_a), 0);
    cr_assert_eq(tg_cache_stats(cb, &after_b), 0);
    uint64_t grew_a = after_a.used_bytes - before_a.used_bytes;
    uint64_t grew_b = after_b.used_bytes - before_b.used_bytes;
    cr_assert(grew_a * 10 < grew_b * 7, "appended %llu bytes, put %llu bytes",
              (unsigned long long)grew_a, (unsigned long long)grew_b);
    tg_cache_close(ca);
    tg_cache_close(cb);
    batch_free(&b);
    batch_free(&hi);
    free(s);
}

Test(cache_batch, unordered_overlapping_and_duplicate_keys)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_at("env"), 64, &c), 0);
    const size_t n = 5000;
    uint32_t *s = seq(n, 0x30000000);
    shuffle(s, n);
    batch_t a;
    batch_make(&a, n, 3, s, 'u', 0);
    cr_assert_eq(tg_cache_put_ocsp_batch(c, a.ids, a.recs, n), 0);
    expect_batch(c, &a);
    cr_assert_eq(ocsp_entries(c), n);

    /* Ascending, but starting inside what is stored: replaces the middle
     * half and adds as many new serials past the end. */
    uint32_t *s2 = seq(n, 0x30000000 + (uint32_t)(n / 2));
    batch_t b;
    batch_make(&b, n, 3, s2, 'o', 0);
    cr_assert_eq(tg_cache_put_ocsp_batch(c, b.ids, b.recs, n), 0);
    expect_batch(c, &b);
    cr_assert_eq(ocsp_entries(c), n + n / 2);

    /* The same key twice in one batch: the later record wins. */
    uint32_t dup[3] = {0x30000001, 0x30000002, 0x30000001};
    batch_t d;
    batch_make(&d, 3, 3, dup, 'd', 0);
    d.recs[2].this_update = 777;
    cr_assert_eq(tg_cache_put_ocsp_batch(c, d.ids, d.recs, 3), 0);
    tg_cache_reader_t *r;
    cr_assert_eq(tg_cache_reader_new(c, &r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    tg_cache_ocsp_t got;
    cr_assert_eq(tg_cache_get_ocsp(r, TG_CACHE_SRC_UPSTREAM, &d.ids[0], &got), 0);
    cr_assert_eq(got.this_update, 777);
    tg_cache_rd_end(r);
    tg_cache_reader_free(r);
    cr_assert_eq(ocsp_entries(c), n + n / 2);

    /* Another source of the same CertIDs lives beside the upstream one. */
    batch_t e;
    batch_make(&e, 3, 3, dup, 'e', 0);
    for (size_t i = 0; i < 3; i++)
        e.recs[i].source = TG_CACHE_SRC_SIGNED_CRL;
    cr_assert_eq(tg_cache_put_ocsp_batch(c, e.ids, e.recs, 2), 0);
    cr_assert_eq(ocsp_entries(c), n + n / 2 + 2);

    tg_cache_close(c);
    batch_free(&a);
    batch_free(&b);
    batch_free(&d);
    batch_free(&e);
    free(s);
    free(s2);
}

/* Queued writes and a batch from another thread share LMDB's write lock:
 * both land. */
Test(cache_batch, beside_queued_writes)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_at("env"), 64, &c), 0);
    enum { QUEUED = 200 };
    static tg_cache_waiter_t w[QUEUED];
    static tg_certid_t qid[QUEUED];
    for (uint32_t i = 0; i < QUEUED; i++) {
        qid[i] = mkid(9, i);
        tg_cache_ocsp_t rec = {
            .next_update = 5000, .source = TG_CACHE_SRC_UPSTREAM, .der = TG_SLICE_LIT("queued")};
        tg_cache_waiter_init(&w[i]);
        cr_assert_eq(tg_cache_put_ocsp(c, &qid[i], &rec, tg_cache_waiter_cb, &w[i]), 0);
    }
    const size_t n = 10000;
    uint32_t *s = seq(n, 0x40000000);
    batch_t b;
    batch_make(&b, n, 4, s, 'q', 0);
    cr_assert_eq(tg_cache_put_ocsp_batch(c, b.ids, b.recs, n), 0);
    for (size_t i = 0; i < QUEUED; i++)
        cr_assert_eq(tg_cache_waiter_wait(&w[i]), 0);
    expect_batch(c, &b);
    cr_assert_eq(ocsp_entries(c), n + QUEUED);
    tg_cache_close(c);
    batch_free(&b);
    free(s);
}

/* A batch that does not fit: TG_ETOOBIG, counted, and not one record of it
 * visible; what was there stays, and the cache keeps working. */
Test(cache_batch, map_full_writes_nothing)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_at("env"), 1, &c), 0);
    uint32_t k = 0x50000000;
    batch_t keep;
    batch_make(&keep, 1, 5, &k, 'k', 0);
    cr_assert_eq(tg_cache_put_ocsp_batch(c, keep.ids, keep.recs, 1), 0);

    /* ~4 MiB into a 1 MiB map; ascending (appended) then unordered */
    const size_t n = 2000;
    uint32_t *s = seq(n, 0x50000001);
    batch_t big;
    batch_make(&big, n, 5, s, 'B', 2000);
    cr_assert_eq(tg_cache_put_ocsp_batch(c, big.ids, big.recs, n), TG_ETOOBIG);
    expect_none(c, &big);
    shuffle(s, n);
    batch_t big2;
    batch_make(&big2, n, 5, s, 'C', 2000);
    cr_assert_eq(tg_cache_put_ocsp_batch(c, big2.ids, big2.recs, n), TG_ETOOBIG);
    expect_none(c, &big2);
    expect_batch(c, &keep);
    tg_cache_stats_t st;
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.ocsp_entries, 1);
    cr_assert(st.map_full >= 2);

    /* A batch that fits still goes in, after the failed ones. */
    cr_assert_eq(tg_cache_put_ocsp_batch(c, big.ids, big.recs, 50), 0);
    cr_assert_eq(ocsp_entries(c), 51);
    tg_cache_close(c);

    /* and the failed batches left nothing behind on disk either */
    cr_assert_eq(tg_cache_open(env_at("env"), 1, &c), 0);
    cr_assert_eq(ocsp_entries(c), 51);
    expect_batch(c, &keep);
    tg_cache_close(c);
    batch_free(&keep);
    batch_free(&big);
    batch_free(&big2);
    free(s);
}

/* Bad records are found before the transaction starts: nothing written. */
Test(cache_batch, bad_arguments_write_nothing)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_at("env"), 16, &c), 0);
    uint32_t *s = seq(10, 0x60000000);
    batch_t b;
    batch_make(&b, 10, 6, s, 'x', 0);
    cr_assert_eq(tg_cache_put_ocsp_batch(NULL, b.ids, b.recs, 10), TG_EINVAL);
    cr_assert_eq(tg_cache_put_ocsp_batch(c, NULL, b.recs, 10), TG_EINVAL);
    cr_assert_eq(tg_cache_put_ocsp_batch(c, b.ids, NULL, 10), TG_EINVAL);

    b.ids[7].hash_len = 0; /* invalid CertID late in the batch */
    cr_assert_eq(tg_cache_put_ocsp_batch(c, b.ids, b.recs, 10), TG_EINVAL);
    b.ids[7] = mkid(6, s[7]);
    b.recs[9].source = 7; /* no such source */
    cr_assert_eq(tg_cache_put_ocsp_batch(c, b.ids, b.recs, 10), TG_EINVAL);
    b.recs[9].source = TG_CACHE_SRC_UPSTREAM;
    b.recs[4].der = TG_SLICE(NULL, 3); /* a length without bytes */
    cr_assert_eq(tg_cache_put_ocsp_batch(c, b.ids, b.recs, 10), TG_EINVAL);
    b.ids[0].serial_len = 0;
    cr_assert_eq(tg_cache_put_ocsp_batch(c, b.ids, b.recs, 1), TG_EINVAL);
    cr_assert_eq(ocsp_entries(c), 0);

    /* Restored, the same batch goes in; an empty DER is a valid value. */
    b.ids[0] = mkid(6, s[0]);
    b.recs[4].der = TG_SLICE(NULL, 0);
    cr_assert_eq(tg_cache_put_ocsp_batch(c, b.ids, b.recs, 10), 0);
    expect_batch(c, &b);
    tg_cache_close(c);
    batch_free(&b);
    free(s);
}
