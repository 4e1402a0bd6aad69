/* cache/: the LMDB status store. Each test works in its own mkdtemp folder
 * and removes it at the end. */
#include "cache/cache.h"
#include "common/err.h"
#include "common/log.h"

#include <criterion/criterion.h>
#include <lmdb.h> /* only to fake an old schema and a damaged index */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[64];

static void setup(void)
{
    tg_log_set_level(TG_LOG_WARN);
    snprintf(dir, sizeof dir, "/tmp/tg_cache_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static char *env_path(void)
{
    static char p[96];
    snprintf(p, sizeof p, "%s/env", dir);
    return p;
}

static tg_certid_t mkid(tg_hash_alg_t alg, uint8_t hash_len, uint8_t issuer, uint32_t serial)
{
    tg_certid_t id;
    memset(&id, 0, sizeof id);
    id.alg = alg;
    id.hash_len = hash_len;
    memset(id.name_hash, issuer, hash_len);
    memset(id.key_hash, (uint8_t)(issuer + 1), hash_len);
    id.serial_len = 4;
    id.serial[0] = (uint8_t)(serial >> 24);
    id.serial[1] = (uint8_t)(serial >> 16);
    id.serial[2] = (uint8_t)(serial >> 8);
    id.serial[3] = (uint8_t)serial;
    return id;
}

static int put_ocsp_wait(tg_cache_t *c, const tg_certid_t *id, int64_t next, const char *der,
                         size_t der_len)
{
    tg_cache_ocsp_t rec = {.this_update = 100,
                           .next_update = next,
                           .produced_at = 101,
                           .generation = 7,
                           .source = TG_CACHE_SRC_UPSTREAM,
                           .der = TG_SLICE(der, der_len)};
    tg_cache_waiter_t w;
    tg_cache_waiter_init(&w);
    int rc = tg_cache_put_ocsp(c, id, &rec, tg_cache_waiter_cb, &w);
    if (rc != 0) {
        tg_cache_waiter_destroy(&w);
        return rc;
    }
    return tg_cache_waiter_wait(&w);
}

static int get_ocsp_copy(tg_cache_t *c, const tg_certid_t *id, char *buf, size_t cap,
                         tg_cache_ocsp_t *out_rec)
{
    tg_cache_reader_t *r;
    int rc = tg_cache_reader_new(c, &r);
    if (rc != 0)
        return rc;
    rc = tg_cache_rd_begin(r);
    if (rc == 0)
        rc = tg_cache_get_ocsp(r, TG_CACHE_SRC_UPSTREAM, id, out_rec);
    if (rc == 0) {
        size_t n = out_rec->der.n < cap - 1 ? out_rec->der.n : cap - 1;
        memcpy(buf, out_rec->der.p, n);
        buf[n] = 0;
        out_rec->der = TG_SLICE(NULL, 0);
    }
    tg_cache_rd_end(r);
    tg_cache_reader_free(r);
    return rc;
}

TestSuite(cache, .init = setup, .fini = teardown);

Test(cache, open_close_reopen_keeps_data)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    tg_certid_t id = mkid(TG_HASH_SHA1, 20, 1, 42);
    cr_assert_eq(put_ocsp_wait(c, &id, 5000, "DER-1", 5), 0);
    tg_cache_close(c);

    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    char buf[64];
    tg_cache_ocsp_t rec;
    cr_assert_eq(get_ocsp_copy(c, &id, buf, sizeof buf, &rec), 0);
    cr_assert_str_eq(buf, "DER-1");
    cr_assert_eq(rec.this_update, 100);
    cr_assert_eq(rec.next_update, 5000);
    cr_assert_eq(rec.produced_at, 101);
    cr_assert_eq(rec.generation, 7);
    cr_assert_eq(rec.source, TG_CACHE_SRC_UPSTREAM);
    tg_cache_stats_t st;
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.ocsp_entries, 1);
    cr_assert(st.used_bytes > 0 && st.used_bytes <= st.map_size);
    cr_assert_eq(st.map_size, 16u * 1024 * 1024);
    tg_cache_close(c);
    tg_cache_close(NULL);
}

Test(cache, one_record_per_certid_and_source)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    tg_certid_t id = mkid(TG_HASH_SHA256, 32, 3, 77);
    cr_assert_eq(put_ocsp_wait(c, &id, 5000, "UPSTREAM", 8), 0);
    tg_cache_ocsp_t signed_rec = {.this_update = 200,
                                  .next_update = 6000,
                                  .source = TG_CACHE_SRC_SIGNED_CRL,
                                  .der = TG_SLICE("OURS", 4)};
    tg_cache_waiter_t w;
    tg_cache_waiter_init(&w);
    cr_assert_eq(tg_cache_put_ocsp(c, &id, &signed_rec, tg_cache_waiter_cb, &w), 0);
    cr_assert_eq(tg_cache_waiter_wait(&w), 0);

    tg_cache_reader_t *r;
    cr_assert_eq(tg_cache_reader_new(c, &r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    tg_cache_ocsp_t a, b, x;
    cr_assert_eq(tg_cache_get_ocsp(r, TG_CACHE_SRC_UPSTREAM, &id, &a), 0);
    cr_assert_eq(tg_cache_get_ocsp(r, TG_CACHE_SRC_SIGNED_CRL, &id, &b), 0);
    cr_assert(a.der.n == 8 && memcmp(a.der.p, "UPSTREAM", 8) == 0);
    cr_assert(b.der.n == 4 && memcmp(b.der.p, "OURS", 4) == 0);
    cr_assert_eq(b.source, TG_CACHE_SRC_SIGNED_CRL);
    cr_assert_eq(tg_cache_get_ocsp(r, TG_CACHE_SRC_SIGNED_LIST, &id, &x), TG_ENOTFOUND);
    cr_assert_eq(tg_cache_get_ocsp(r, (tg_cache_source_t)9, &id, &x), TG_EINVAL);
    tg_cache_rd_end(r);

    /* deleting one source leaves the other */
    tg_cache_waiter_init(&w);
    cr_assert_eq(tg_cache_delete_ocsp(c, TG_CACHE_SRC_UPSTREAM, &id, tg_cache_waiter_cb, &w), 0);
    cr_assert_eq(tg_cache_waiter_wait(&w), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    cr_assert_eq(tg_cache_get_ocsp(r, TG_CACHE_SRC_UPSTREAM, &id, &x), TG_ENOTFOUND);
    cr_assert_eq(tg_cache_get_ocsp(r, TG_CACHE_SRC_SIGNED_CRL, &id, &x), 0);
    tg_cache_rd_end(r);
    tg_cache_reader_free(r);
    tg_cache_close(c);
}

Test(cache, ocsp_keys_do_not_collide)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    /* Same serial and same leading hash bytes under different algorithms,
     * different issuers and different serials. */
    tg_certid_t ids[] = {
        mkid(TG_HASH_SHA1, 20, 1, 42),   mkid(TG_HASH_SHA256, 32, 1, 42),
        mkid(TG_HASH_SM3, 32, 1, 42),    mkid(TG_HASH_SHA512, 64, 1, 42),
        mkid(TG_HASH_SHA384, 48, 1, 42), mkid(TG_HASH_SHA1, 20, 2, 42),
        mkid(TG_HASH_SHA1, 20, 1, 43),
    };
    size_t n = sizeof ids / sizeof ids[0];
    for (size_t i = 0; i < n; i++) {
        char der[16];
        int len = snprintf(der, sizeof der, "resp-%zu", i);
        cr_assert_eq(put_ocsp_wait(c, &ids[i], 5000, der, (size_t)len), 0);
    }
    for (size_t i = 0; i < n; i++) {
        char buf[32], want[16];
        snprintf(want, sizeof want, "resp-%zu", i);
        tg_cache_ocsp_t rec;
        cr_assert_eq(get_ocsp_copy(c, &ids[i], buf, sizeof buf, &rec), 0);
        cr_assert_str_eq(buf, want);
    }
    tg_certid_t missing = mkid(TG_HASH_SHA256, 32, 2, 42);
    char buf[8];
    tg_cache_ocsp_t rec;
    cr_assert_eq(get_ocsp_copy(c, &missing, buf, sizeof buf, &rec), TG_ENOTFOUND);
    tg_certid_t bad = ids[0];
    bad.serial_len = 0;
    cr_assert_eq(get_ocsp_copy(c, &bad, buf, sizeof buf, &rec), TG_EINVAL);
    cr_assert_eq(tg_cache_put_ocsp(c, &bad, &rec, NULL, NULL), TG_EINVAL);

    /* Delete one; the others stay. */
    tg_cache_waiter_t w;
    tg_cache_waiter_init(&w);
    cr_assert_eq(tg_cache_delete_ocsp(c, TG_CACHE_SRC_UPSTREAM, &ids[0], tg_cache_waiter_cb, &w),
                 0);
    cr_assert_eq(tg_cache_waiter_wait(&w), 0);
    tg_cache_waiter_init(&w);
    cr_assert_eq(tg_cache_delete_ocsp(c, TG_CACHE_SRC_UPSTREAM, &ids[0], tg_cache_waiter_cb, &w),
                 0);
    cr_assert_eq(tg_cache_waiter_wait(&w), TG_ENOTFOUND);
    cr_assert_eq(get_ocsp_copy(c, &ids[0], buf, sizeof buf, &rec), TG_ENOTFOUND);
    cr_assert_eq(get_ocsp_copy(c, &ids[1], buf, sizeof buf, &rec), 0);
    tg_cache_close(c);
}

static void fill_ca(uint8_t ca[TG_CACHE_CA_ID_LEN], uint8_t v)
{
    memset(ca, v, TG_CACHE_CA_ID_LEN);
}

static tg_cache_revoked_entry_t *make_revoked(size_t n, uint32_t base)
{
    tg_cache_revoked_entry_t *r = calloc(n, sizeof *r);
    cr_assert_not_null(r);
    for (size_t i = 0; i < n; i++) {
        uint32_t s = base + (uint32_t)i * 3u;
        r[i].serial_len = 4;
        r[i].serial[0] = (uint8_t)(s >> 24);
        r[i].serial[1] = (uint8_t)(s >> 16);
        r[i].serial[2] = (uint8_t)(s >> 8);
        r[i].serial[3] = (uint8_t)s;
        r[i].revocation_time = 1000 + (int64_t)i;
        r[i].reason = (int8_t)(i % 11);
    }
    return r;
}

static int put_crl_wait(tg_cache_t *c, const uint8_t *ca, int64_t next,
                        const tg_cache_revoked_entry_t *rev, size_t n)
{
    tg_cache_crl_t crl = {.this_update = 10,
                          .next_update = next,
                          .crl_number_len = 2,
                          .crl_number = {0x01, 0x02},
                          .der = TG_SLICE_LIT("CRL-DER")};
    tg_cache_waiter_t w;
    tg_cache_waiter_init(&w);
    int rc = tg_cache_put_crl(c, ca, &crl, rev, n, tg_cache_waiter_cb, &w);
    if (rc != 0) {
        tg_cache_waiter_destroy(&w);
        return rc;
    }
    return tg_cache_waiter_wait(&w);
}

static void serial_of(uint32_t s, uint8_t out[4])
{
    out[0] = (uint8_t)(s >> 24);
    out[1] = (uint8_t)(s >> 16);
    out[2] = (uint8_t)(s >> 8);
    out[3] = (uint8_t)s;
}

Test(cache, crl_with_100k_revoked_one_txn)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 256, &c), 0);
    const size_t n = 100000;
    uint8_t ca1[32], ca2[32];
    fill_ca(ca1, 0xa1);
    fill_ca(ca2, 0xa2);
    tg_cache_revoked_entry_t *rev = make_revoked(n, 5000);
    cr_assert_eq(put_crl_wait(c, ca1, 9999, rev, n), 0);
    cr_assert_eq(put_crl_wait(c, ca2, 9999, rev, 10), 0);

    tg_cache_reader_t *r;
    cr_assert_eq(tg_cache_reader_new(c, &r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), TG_ESTATE);
    tg_cache_crl_t crl;
    cr_assert_eq(tg_cache_get_crl(r, ca1, &crl), 0);
    cr_assert_eq(crl.next_update, 9999);
    cr_assert_eq(crl.this_update, 10);
    cr_assert_eq(crl.crl_number_len, 2);
    cr_assert_eq(crl.crl_number[1], 0x02);
    cr_assert_eq(crl.der.n, 7);
    cr_assert(memcmp(crl.der.p, "CRL-DER", 7) == 0);
    cr_assert_eq(crl.n_revoked, n);
    for (size_t i = 0; i < n; i += 997) {
        uint8_t s[4];
        serial_of(5000 + (uint32_t)i * 3u, s);
        tg_cache_revoked_t rv;
        cr_assert_eq(tg_cache_get_revoked(r, ca1, s, 4, &rv), 0);
        cr_assert_eq(rv.revocation_time, 1000 + (int64_t)i);
        cr_assert_eq(rv.reason, (int8_t)(i % 11));
        serial_of(5001 + (uint32_t)i * 3u, s); /* between two revoked serials */
        cr_assert_eq(tg_cache_get_revoked(r, ca1, s, 4, &rv), TG_ENOTFOUND);
    }
    uint8_t s[4];
    serial_of(5000 + 20 * 3, s); /* revoked under ca1 only */
    tg_cache_revoked_t rv;
    cr_assert_eq(tg_cache_get_revoked(r, ca2, s, 4, &rv), TG_ENOTFOUND);
    tg_cache_rd_end(r);
    cr_assert_eq(tg_cache_get_crl(r, ca1, &crl), TG_ESTATE);

    tg_cache_stats_t st;
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.revoked_entries, n + 10);
    cr_assert_eq(st.crl_entries, 2);

    /* Replacing the CRL replaces its whole index. */
    cr_assert_eq(put_crl_wait(c, ca1, 9999, rev + 5, 3), 0);
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.revoked_entries, 3 + 10);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    cr_assert_eq(tg_cache_get_crl(r, ca1, &crl), 0);
    cr_assert_eq(crl.n_revoked, 3);
    serial_of(5000, s);
    cr_assert_eq(tg_cache_get_revoked(r, ca1, s, 4, &rv), TG_ENOTFOUND);
    serial_of(5000 + 5 * 3, s);
    cr_assert_eq(tg_cache_get_revoked(r, ca1, s, 4, &rv), 0);
    cr_assert_eq(tg_cache_get_revoked(r, ca2, s, 4, &rv), 0);
    tg_cache_rd_end(r);

    tg_cache_waiter_t w;
    tg_cache_waiter_init(&w);
    cr_assert_eq(tg_cache_delete_crl(c, ca2, tg_cache_waiter_cb, &w), 0);
    cr_assert_eq(tg_cache_waiter_wait(&w), 0);
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.revoked_entries, 3);
    cr_assert_eq(st.crl_entries, 1);

    tg_cache_reader_free(r);
    free(rev);
    tg_cache_close(c);
}

Test(cache, trustlist_round_trip)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    const char *xml = "<TrustServiceStatusList>gd</TrustServiceStatusList>";
    tg_cache_waiter_t w;
    tg_cache_waiter_init(&w);
    cr_assert_eq(tg_cache_put_trustlist(c, TG_SLICE_LIT("gd"), TG_SLICE(xml, strlen(xml)),
                                        tg_cache_waiter_cb, &w),
                 0);
    cr_assert_eq(tg_cache_waiter_wait(&w), 0);
    tg_cache_close(c);
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    tg_cache_reader_t *r;
    cr_assert_eq(tg_cache_reader_new(c, &r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    tg_slice_t out;
    cr_assert_eq(tg_cache_get_trustlist(r, TG_SLICE_LIT("gd"), &out), 0);
    cr_assert_eq(out.n, strlen(xml));
    cr_assert(memcmp(out.p, xml, out.n) == 0);
    cr_assert_eq(tg_cache_get_trustlist(r, TG_SLICE_LIT("hk"), &out), TG_ENOTFOUND);
    tg_cache_rd_end(r);
    tg_cache_waiter_init(&w);
    cr_assert_eq(tg_cache_delete_trustlist(c, TG_SLICE_LIT("gd"), tg_cache_waiter_cb, &w), 0);
    cr_assert_eq(tg_cache_waiter_wait(&w), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    cr_assert_eq(tg_cache_get_trustlist(r, TG_SLICE_LIT("gd"), &out), TG_ENOTFOUND);
    tg_cache_rd_end(r);
    tg_cache_reader_free(r);
    tg_cache_close(c);
}

Test(cache, sweep_removes_expired_keeps_fresh)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    /* Interleave expired (next 100) and fresh (next 10000) entries so
     * adjacent deletions are exercised. */
    for (uint32_t i = 0; i < 200; i++) {
        tg_certid_t id = mkid(TG_HASH_SHA256, 32, 1, i);
        int64_t next = (i % 3 == 0) ? 10000 : 100;
        cr_assert_eq(put_ocsp_wait(c, &id, next, "x", 1), 0);
    }
    uint8_t old_ca[32], fresh_ca[32], grace_ca[32];
    fill_ca(old_ca, 1);
    fill_ca(fresh_ca, 2);
    fill_ca(grace_ca, 3);
    tg_cache_revoked_entry_t *rev = make_revoked(50, 1);
    cr_assert_eq(put_crl_wait(c, old_ca, 100, rev, 50), 0);
    cr_assert_eq(put_crl_wait(c, fresh_ca, 10000, rev, 20), 0);
    cr_assert_eq(put_crl_wait(c, grace_ca, 900, rev, 5), 0); /* past, within grace */
    free(rev);

    tg_cache_sweep_counts_t sc;
    cr_assert_eq(tg_cache_sweep(c, 1000, 500, &sc), 0);
    cr_assert_eq(sc.ocsp, 133);
    cr_assert_eq(sc.crl, 1);
    cr_assert_eq(sc.revoked, 50);
    tg_cache_stats_t st;
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.ocsp_entries, 67);
    cr_assert_eq(st.crl_entries, 2);
    cr_assert_eq(st.revoked_entries, 25);
    for (uint32_t i = 0; i < 200; i++) {
        tg_certid_t id = mkid(TG_HASH_SHA256, 32, 1, i);
        char buf[8];
        tg_cache_ocsp_t rec;
        cr_assert_eq(get_ocsp_copy(c, &id, buf, sizeof buf, &rec), i % 3 == 0 ? 0 : TG_ENOTFOUND);
    }
    /* Idempotent. */
    cr_assert_eq(tg_cache_sweep(c, 1000, 500, &sc), 0);
    cr_assert_eq(sc.ocsp + sc.crl + sc.revoked, 0);
    tg_cache_close(c);
}

Test(cache, map_full_fails_cleanly)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 1, &c), 0);
    tg_certid_t keep = mkid(TG_HASH_SHA1, 20, 9, 1);
    cr_assert_eq(put_ocsp_wait(c, &keep, INT64_MAX, "keep", 4), 0);
    static char der[2000];
    memset(der, 'D', sizeof der);
    int rc = 0;
    uint32_t i;
    for (i = 0; i < 100000; i++) {
        tg_certid_t id = mkid(TG_HASH_SHA256, 32, 1, i);
        /* fresh entries: the sweep cannot free anything */
        rc = put_ocsp_wait(c, &id, INT64_MAX, der, sizeof der);
        if (rc != 0)
            break;
    }
    cr_assert_eq(rc, TG_ETOOBIG, "got %d after %u puts", rc, i);
    tg_cache_stats_t st;
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert(st.map_full >= 1);
    cr_assert(st.write_errors >= 1);
    uint64_t before = st.map_full;

    /* Reads still work. */
    char buf[16];
    tg_cache_ocsp_t rec;
    cr_assert_eq(get_ocsp_copy(c, &keep, buf, sizeof buf, &rec), 0);
    cr_assert_str_eq(buf, "keep");
    tg_certid_t first = mkid(TG_HASH_SHA256, 32, 1, 0);
    cr_assert_eq(get_ocsp_copy(c, &first, buf, sizeof buf, &rec), 0);

    /* Again: the counter moves once more, nothing crashes. */
    tg_certid_t more = mkid(TG_HASH_SHA256, 32, 2, 0);
    cr_assert_eq(put_ocsp_wait(c, &more, INT64_MAX, der, sizeof der), TG_ETOOBIG);
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert(st.map_full > before);

    /* Once entries expire, the sweep on MAP_FULL makes room and the write
     * goes through. */
    tg_cache_close(c);
    cr_assert_eq(tg_cache_open(env_path(), 1, &c), 0);
    tg_cache_sweep_counts_t sc;
    cr_assert_eq(tg_cache_sweep(c, INT64_MAX, 0, &sc), 0);
    cr_assert_eq(sc.ocsp, 0); /* next_update == INT64_MAX is not < now */
    tg_cache_close(c);
}

Test(cache, map_full_sweep_then_retry_succeeds)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 1, &c), 0);
    static char der[2000];
    memset(der, 'E', sizeof der);
    int rc = 0;
    uint32_t i;
    for (i = 0; i < 100000; i++) {
        tg_certid_t id = mkid(TG_HASH_SHA256, 32, 1, i);
        /* long expired: the sweep on MAP_FULL can free them */
        rc = put_ocsp_wait(c, &id, 1, der, sizeof der);
        if (rc != 0)
            break;
        tg_cache_stats_t st;
        cr_assert_eq(tg_cache_stats(c, &st), 0);
        if (st.map_full > 0)
            break;
    }
    cr_assert_eq(rc, 0, "write failed (%d) although the sweep could free room", rc);
    tg_cache_stats_t st;
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert(st.map_full >= 1, "map never filled after %u puts", i);
    tg_cache_close(c);
}

typedef struct {
    tg_cache_t *c;
    int errors;
    int found;
} reader_arg_t;

static void *reader_thread(void *p)
{
    reader_arg_t *a = p;
    tg_cache_reader_t *r;
    if (tg_cache_reader_new(a->c, &r) != 0) {
        a->errors++;
        return NULL;
    }
    for (int round = 0; round < 20000; round++) {
        if (tg_cache_rd_begin(r) != 0) {
            a->errors++;
            break;
        }
        tg_certid_t id = mkid(TG_HASH_SHA256, 32, 1, (uint32_t)(round % 500));
        tg_cache_ocsp_t rec;
        int rc = tg_cache_get_ocsp(r, TG_CACHE_SRC_UPSTREAM, &id, &rec);
        if (rc == 0) {
            a->found++;
            if (rec.der.n != 3 || memcmp(rec.der.p, "abc", 3) != 0)
                a->errors++;
        } else if (rc != TG_ENOTFOUND) {
            a->errors++;
        }
        tg_cache_rd_end(r);
    }
    tg_cache_reader_free(r);
    return NULL;
}

Test(cache, concurrent_readers_while_writing)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 64, &c), 0);
    pthread_t th[4];
    reader_arg_t args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (reader_arg_t){.c = c};
        cr_assert_eq(pthread_create(&th[i], NULL, reader_thread, &args[i]), 0);
    }
    /* Queue writes without waiting on each, so the writer batches. */
    tg_cache_waiter_t w;
    tg_cache_waiter_init(&w);
    for (uint32_t i = 0; i < 500; i++) {
        tg_certid_t id = mkid(TG_HASH_SHA256, 32, 1, i);
        tg_cache_ocsp_t rec = {.next_update = 5000, .der = TG_SLICE_LIT("abc")};
        int last = i == 499;
        cr_assert_eq(
            tg_cache_put_ocsp(c, &id, &rec, last ? tg_cache_waiter_cb : NULL, last ? &w : NULL), 0);
    }
    cr_assert_eq(tg_cache_waiter_wait(&w), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(args[i].errors, 0);
    }
    tg_cache_stats_t st;
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.ocsp_entries, 500);
    cr_assert_eq(st.writes, 500);
    cr_assert_eq(st.write_errors, 0);
    tg_cache_close(c);
}

/* Forks a child that opens the environment (and, with hold_txn, starts a
 * read transaction), reports readiness through a pipe and then sleeps
 * until killed. Returns the child's pid once it is ready. */
static pid_t spawn_env_child(int hold_txn)
{
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        tg_cache_t *c;
        if (tg_cache_open(env_path(), 16, &c) != 0)
            _exit(1);
        tg_cache_reader_t *r;
        if (hold_txn && (tg_cache_reader_new(c, &r) != 0 || tg_cache_rd_begin(r) != 0))
            _exit(1);
        if (write(pipefd[1], "k", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(pipefd[1]);
    char ch;
    cr_assert_eq(read(pipefd[0], &ch, 1), 1);
    close(pipefd[0]);
    return pid;
}

static void kill_and_reap(pid_t pid)
{
    cr_assert_eq(kill(pid, SIGKILL), 0);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid); /* reaped: its pid is gone */
    cr_assert(WIFSIGNALED(status));
}

Test(cache, reader_check_after_killed_child)
{
    /* A live holder keeps the lock file shared, so the next open cannot
     * reset the reader table wholesale and mdb_reader_check has to find
     * the dead reader's slot. */
    pid_t holder = spawn_env_child(0);
    pid_t reader = spawn_env_child(1);
    kill_and_reap(reader);

    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    tg_cache_stats_t st;
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.stale_readers_cleared, 1);
    tg_certid_t id = mkid(TG_HASH_SHA1, 20, 1, 1);
    cr_assert_eq(put_ocsp_wait(c, &id, 5000, "after", 5), 0);
    tg_cache_close(c);
    kill_and_reap(holder);

    /* Alone, a later open resets the reader table itself: count 0, and
     * writes still succeed. */
    reader = spawn_env_child(1);
    kill_and_reap(reader);
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert(st.stale_readers_cleared <= 1);
    cr_assert_eq(put_ocsp_wait(c, &id, 6000, "again", 5), 0);
    char buf[16];
    tg_cache_ocsp_t rec;
    cr_assert_eq(get_ocsp_copy(c, &id, buf, sizeof buf, &rec), 0);
    cr_assert_str_eq(buf, "again");
    tg_cache_close(c);
}

Test(cache, kill9_durability)
{
    const uint32_t n = 300;
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        tg_cache_t *c;
        if (tg_cache_open(env_path(), 16, &c) != 0)
            _exit(1);
        tg_cache_waiter_t w;
        tg_cache_waiter_init(&w);
        for (uint32_t i = 0; i < n; i++) {
            tg_certid_t id = mkid(TG_HASH_SHA384, 48, 5, i);
            tg_cache_ocsp_t rec = {.next_update = 5000, .der = TG_SLICE_LIT("durable")};
            int last = i == n - 1;
            if (tg_cache_put_ocsp(c, &id, &rec, last ? tg_cache_waiter_cb : NULL,
                                  last ? &w : NULL) != 0)
                _exit(1);
        }
        if (tg_cache_waiter_wait(&w) != 0)
            _exit(1);
        if (write(pipefd[1], "d", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(pipefd[1]);
    char ch;
    cr_assert_eq(read(pipefd[0], &ch, 1), 1);
    close(pipefd[0]);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status));

    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    for (uint32_t i = 0; i < n; i++) {
        tg_certid_t id = mkid(TG_HASH_SHA384, 48, 5, i);
        char buf[16];
        tg_cache_ocsp_t rec;
        cr_assert_eq(get_ocsp_copy(c, &id, buf, sizeof buf, &rec), 0, "entry %u lost", i);
        cr_assert_str_eq(buf, "durable");
    }
    tg_cache_close(c);
}

Test(cache, bad_arguments)
{
    tg_cache_t *c = NULL;
    cr_assert_eq(tg_cache_open(NULL, 16, &c), TG_EINVAL);
    cr_assert_eq(tg_cache_open(env_path(), 0, &c), TG_EINVAL);
    cr_assert_eq(tg_cache_open("/proc/nonexistent/x", 16, &c), TG_EIO);
    cr_assert_null(c);
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    uint8_t ca[32] = {0};
    tg_cache_crl_t crl = {.crl_number_len = 21};
    cr_assert_eq(tg_cache_put_crl(c, ca, &crl, NULL, 0, NULL, NULL), TG_EINVAL);
    cr_assert_eq(tg_cache_put_trustlist(c, TG_SLICE(NULL, 0), TG_SLICE_LIT("x"), NULL, NULL),
                 TG_EINVAL);
    tg_cache_reader_t *r;
    cr_assert_eq(tg_cache_reader_new(c, &r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    tg_cache_revoked_t rv;
    cr_assert_eq(tg_cache_get_revoked(r, ca, (const uint8_t *)"x", 0, &rv), TG_EINVAL);
    tg_cache_rd_end(r);
    tg_cache_rd_end(r);
    tg_cache_reader_free(r);
    tg_cache_reader_free(NULL);
    tg_cache_close(c);
}

/* ---- packed revoked index (tg_cache_rindex_t, tg_cache_put_crl_take) ---- */

static uint64_t rng_next(uint64_t *state)
{
    /* splitmix64: deterministic, good enough to spread serials */
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_fill(uint64_t *state, uint8_t *p, size_t n)
{
    while (n > 0) {
        uint64_t v = rng_next(state);
        size_t k = n < 8 ? n : 8;
        memcpy(p, &v, k);
        p += k;
        n -= k;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_der(tg_buf_t *b, size_t n, uint8_t fill)
{
    tg_buf_init(b);
    if (n == 0)
        return;
    cr_assert_eq(tg_buf_reserve(b, n), 0);
    memset(b->data, fill, n);
    b->data[0] = 0x30;
    b->data[n - 1] = 0xee;
    b->len = n;
}

static int put_take_wait(tg_cache_t *c, const uint8_t *ca, int64_t next, tg_buf_t *der,
                         tg_cache_rindex_t *ix)
{
    tg_cache_crl_t crl = {.this_update = 10,
                          .next_update = next,
                          .crl_number_len = 1,
                          .crl_number = {0x07},
                          .n_revoked = 12345 /* ignored */};
    tg_cache_waiter_t w;
    tg_cache_waiter_init(&w);
    int rc = tg_cache_put_crl_take(c, ca, &crl, der, ix, tg_cache_waiter_cb, &w);
    cr_assert_null(der->data, "der not taken");
    cr_assert_eq(der->len, 0);
    if (rc != 0) {
        tg_cache_waiter_destroy(&w);
        return rc;
    }
    return tg_cache_waiter_wait(&w);
}

static int lookup(tg_cache_reader_t *r, const uint8_t *ca, const void *serial, size_t n,
                  tg_cache_revoked_t *out)
{
    return tg_cache_get_revoked(r, ca, serial, n, out);
}

#define BIG_N 1000000u
#define BIG_SLOT 17 /* serial bytes per test slot */

/* Serial i of the big index: 16 random bytes, except every 1000th is 17
 * bytes, 00 then 16 random bytes with the top bit set (a DER INTEGER's sign
 * octet), so the stored width is 17 and lengths differ by a leading byte. */
static void big_serials(uint8_t *slots, uint8_t *lens)
{
    uint64_t st = 0x7e57ca5eull;
    for (size_t i = 0; i < BIG_N; i++) {
        uint8_t *s = slots + i * BIG_SLOT;
        if (i % 1000 == 0) {
            s[0] = 0;
            rng_fill(&st, s + 1, 16);
            s[1] |= 0x80;
            lens[i] = 17;
        } else {
            rng_fill(&st, s, 16);
            lens[i] = 16;
        }
    }
}

static int64_t big_time(size_t i)
{
    return 1600000000 + (int64_t)i;
}

static int8_t big_reason(size_t i)
{
    return (int8_t)((int)(i % 11) - 1);
}

Test(cache, take_1m_random_serials_lookup_and_replace)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 1024, &c), 0);
    uint8_t *slots = malloc((size_t)BIG_N * BIG_SLOT);
    uint8_t *lens = malloc(BIG_N);
    cr_assert(slots != NULL && lens != NULL);
    big_serials(slots, lens);
    uint8_t ca[32];
    fill_ca(ca, 0xb1);

    /* A 1M-entry CRL is about 45 bytes an entry of DER. */
    const size_t der_len = (size_t)BIG_N * 45;
    tg_buf_t der;
    make_der(&der, der_len, 0x5a);
    double t0 = now_s();
    tg_cache_rindex_t *ix;
    cr_assert_eq(tg_cache_rindex_new(BIG_N, 17, &ix), 0);
    for (size_t i = 0; i < BIG_N; i++)
        cr_assert_eq(
            tg_cache_rindex_add(ix, slots + i * BIG_SLOT, lens[i], big_time(i), big_reason(i)), 0);
    cr_assert_eq(tg_cache_rindex_count(ix), BIG_N);
    double t1 = now_s();
    cr_assert_eq(put_take_wait(c, ca, 9999, &der, ix), 0);
    double t2 = now_s();
    fprintf(stderr,
            "cache: 1M index: build %.0f ms (caller), put_crl_take + sort + commit %.0f ms "
            "(%zu MB DER)\n",
            (t1 - t0) * 1e3, (t2 - t1) * 1e3, der_len >> 20);

    tg_cache_reader_t *r;
    cr_assert_eq(tg_cache_reader_new(c, &r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    tg_cache_crl_t crl;
    cr_assert_eq(tg_cache_get_crl(r, ca, &crl), 0);
    cr_assert_eq(crl.n_revoked, BIG_N);
    cr_assert_eq(crl.der.n, der_len);
    cr_assert_eq(crl.der.p[0], 0x30);
    cr_assert_eq(crl.der.p[der_len - 1], 0xee);
    cr_assert_eq(crl.der.p[der_len / 2], 0x5a);
    cr_assert_eq(crl.next_update, 9999);
    cr_assert_eq(crl.crl_number_len, 1);

    /* 1M random lookups of present serials, in one read transaction. */
    uint64_t st = 42;
    size_t bad = 0;
    double t3 = now_s();
    for (size_t k = 0; k < BIG_N; k++) {
        size_t i = (size_t)(rng_next(&st) % BIG_N);
        tg_cache_revoked_t rv;
        if (lookup(r, ca, slots + i * BIG_SLOT, lens[i], &rv) != 0 ||
            rv.revocation_time != big_time(i) || rv.reason != big_reason(i))
            bad++;
    }
    double t4 = now_s();
    cr_assert_eq(bad, 0);
    /* 1M random absent serials. */
    uint8_t q[BIG_SLOT + 1];
    size_t found = 0;
    double t5 = now_s();
    for (size_t k = 0; k < BIG_N; k++) {
        rng_fill(&st, q, 16);
        tg_cache_revoked_t rv;
        if (lookup(r, ca, q, 16, &rv) != TG_ENOTFOUND)
            found++;
    }
    double t6 = now_s();
    cr_assert_eq(found, 0);
    fprintf(stderr, "cache: 1M-entry index lookups: %.0f ns present, %.0f ns absent\n",
            (t4 - t3) * 1e9 / BIG_N, (t6 - t5) * 1e9 / BIG_N);

    /* Per-request shape: a read transaction around each lookup. */
    tg_cache_rd_end(r);
    double t7 = now_s();
    for (size_t k = 0; k < 100000; k++) {
        size_t i = (size_t)(rng_next(&st) % BIG_N);
        tg_cache_revoked_t rv;
        cr_assert_eq(tg_cache_rd_begin(r), 0);
        if (lookup(r, ca, slots + i * BIG_SLOT, lens[i], &rv) != 0)
            bad++;
        tg_cache_rd_end(r);
    }
    double t8 = now_s();
    cr_assert_eq(bad, 0);
    fprintf(stderr, "cache: rd_begin + lookup + rd_end: %.0f ns\n", (t8 - t7) * 1e9 / 100000);

    /* Near misses: a leading byte more or less, a prefix, trailing zeros
     * (equal once zero-padded to the width, but different serials). */
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    for (size_t i = 0; i < BIG_N; i += 997) {
        const uint8_t *s = slots + i * BIG_SLOT;
        size_t n = lens[i];
        tg_cache_revoked_t rv;
        cr_assert_eq(lookup(r, ca, s, n, &rv), 0);
        cr_assert_eq(lookup(r, ca, s, n - 1, &rv), TG_ENOTFOUND);     /* prefix */
        cr_assert_eq(lookup(r, ca, s + 1, n - 1, &rv), TG_ENOTFOUND); /* leading byte less */
        memcpy(q, s, n);
        q[n] = 0;
        cr_assert_eq(lookup(r, ca, q, n + 1, &rv), TG_ENOTFOUND); /* trailing 00 */
        q[0] = 0;
        memcpy(q + 1, s, n);
        cr_assert_eq(lookup(r, ca, q, n + 1, &rv), TG_ENOTFOUND); /* leading 00 more */
    }
    for (size_t i = 0; i < BIG_N; i += 1000) { /* the 17-byte ones */
        const uint8_t *s = slots + i * BIG_SLOT;
        tg_cache_revoked_t rv;
        cr_assert_eq(lens[i], 17);
        cr_assert_eq(lookup(r, ca, s, 17, &rv), 0);
        cr_assert_eq(rv.revocation_time, big_time(i));
        cr_assert_eq(lookup(r, ca, s + 1, 16, &rv), TG_ENOTFOUND);
    }
    uint8_t other_ca[32];
    fill_ca(other_ca, 0xb2);
    tg_cache_revoked_t rv;
    cr_assert_eq(lookup(r, other_ca, slots, 16, &rv), TG_ENOTFOUND);
    cr_assert_eq(lookup(r, ca, q, 18, &rv), TG_ENOTFOUND); /* longer than the width */
    tg_cache_rd_end(r);

    tg_cache_stats_t stats;
    cr_assert_eq(tg_cache_stats(c, &stats), 0);
    cr_assert_eq(stats.revoked_entries, BIG_N);
    cr_assert_eq(stats.crl_entries, 1);

    /* Replace by a smaller CRL: the old index is gone as a whole. */
    const uint8_t s01[] = {0x01}, s0102[] = {0x01, 0x02};
    cr_assert_eq(tg_cache_rindex_new(3, 16, &ix), 0);
    cr_assert_eq(tg_cache_rindex_add(ix, s0102, 2, 22, 1), 0);
    cr_assert_eq(tg_cache_rindex_add(ix, slots + 5 * BIG_SLOT, 16, 55, 5), 0);
    cr_assert_eq(tg_cache_rindex_add(ix, s01, 1, 11, -1), 0);
    make_der(&der, 300, 0x11);
    double t9 = now_s();
    cr_assert_eq(put_take_wait(c, ca, 20000, &der, ix), 0);
    double t10 = now_s();
    fprintf(stderr, "cache: replacing the 1M index by 3 entries: %.0f ms\n", (t10 - t9) * 1e3);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    cr_assert_eq(tg_cache_get_crl(r, ca, &crl), 0);
    cr_assert_eq(crl.n_revoked, 3);
    cr_assert_eq(crl.der.n, 300);
    cr_assert_eq(crl.next_update, 20000);
    cr_assert_eq(lookup(r, ca, s01, 1, &rv), 0);
    cr_assert_eq(rv.revocation_time, 11);
    cr_assert_eq(rv.reason, -1);
    cr_assert_eq(lookup(r, ca, s0102, 2, &rv), 0);
    cr_assert_eq(rv.revocation_time, 22);
    cr_assert_eq(lookup(r, ca, slots + 5 * BIG_SLOT, 16, &rv), 0);
    cr_assert_eq(rv.revocation_time, 55);
    cr_assert_eq(rv.reason, 5);
    for (size_t i = 6; i < BIG_N; i += 9973)
        cr_assert_eq(lookup(r, ca, slots + i * BIG_SLOT, lens[i], &rv), TG_ENOTFOUND);
    tg_cache_rd_end(r);
    cr_assert_eq(tg_cache_stats(c, &stats), 0);
    cr_assert_eq(stats.revoked_entries, 3);

    tg_cache_reader_free(r);
    tg_cache_close(c);
    free(slots);
    free(lens);
}

typedef struct {
    uint8_t len;
    uint8_t b[4];
} ser_t;

Test(cache, rindex_order_prefixes_and_padding)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    /* Shuffled; 01 and 01 00 and 00 01 are distinct serials, and so are
     * 01 02 and 01 02 00 once all are zero-padded to width 3. */
    const ser_t present[] = {
        {2, {0x01, 0x02}}, {1, {0xff}},       {1, {0x01}},       {3, {0x01, 0x02, 0x03}},
        {1, {0x00}},       {2, {0x00, 0x01}}, {2, {0x01, 0x00}}, {3, {0x80, 0x00, 0x00}},
        {2, {0x7f, 0xff}},
    };
    const ser_t absent[] = {
        {3, {0x01, 0x00, 0x00}},
        {3, {0x01, 0x02, 0x00}},
        {1, {0x02}},
        {2, {0x01, 0x01}},
        {2, {0x00, 0x00}},
        {3, {0x00, 0x01, 0x00}},
        {3, {0x00, 0x00, 0x01}},
        {1, {0xfe}},
        {2, {0xff, 0x00}},
        {1, {0x80}},
        {2, {0x80, 0x00}},
        {4, {0x01, 0x02, 0x03, 0x04}},
        {1, {0x7f}},
    };
    const size_t np = sizeof present / sizeof present[0];
    const size_t na = sizeof absent / sizeof absent[0];
    uint8_t ca_wide[32], ca_tight[32];
    fill_ca(ca_wide, 0xc1);  /* built for 64-byte serials: padding dropped on write */
    fill_ca(ca_tight, 0xc2); /* built for exactly 3 */
    const uint8_t *cas[] = {ca_wide, ca_tight};
    const size_t max_lens[] = {TG_SERIAL_MAX_LEN, 3};
    for (int k = 0; k < 2; k++) {
        tg_cache_rindex_t *ix;
        cr_assert_eq(tg_cache_rindex_new(np, max_lens[k], &ix), 0);
        for (size_t i = 0; i < np; i++)
            cr_assert_eq(
                tg_cache_rindex_add(ix, present[i].b, present[i].len, 100 + (int64_t)i, (int8_t)i),
                0);
        tg_buf_t der;
        make_der(&der, 10, 0x01);
        cr_assert_eq(put_take_wait(c, cas[k], 9999, &der, ix), 0);
    }
    tg_cache_reader_t *r;
    cr_assert_eq(tg_cache_reader_new(c, &r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    for (int k = 0; k < 2; k++) {
        tg_cache_revoked_t rv;
        for (size_t i = 0; i < np; i++) {
            cr_assert_eq(lookup(r, cas[k], present[i].b, present[i].len, &rv), 0, "present %zu", i);
            cr_assert_eq(rv.revocation_time, 100 + (int64_t)i);
            cr_assert_eq(rv.reason, (int8_t)i);
        }
        for (size_t i = 0; i < na; i++)
            cr_assert_eq(lookup(r, cas[k], absent[i].b, absent[i].len, &rv), TG_ENOTFOUND,
                         "absent %zu", i);
        uint8_t long_serial[TG_SERIAL_MAX_LEN];
        memset(long_serial, 0xff, sizeof long_serial);
        cr_assert_eq(lookup(r, cas[k], long_serial, sizeof long_serial, &rv), TG_ENOTFOUND);
        cr_assert_eq(lookup(r, cas[k], long_serial, 0, &rv), TG_EINVAL);
        cr_assert_eq(lookup(r, cas[k], long_serial, TG_SERIAL_MAX_LEN + 1, &rv), TG_EINVAL);
        cr_assert_eq(lookup(r, cas[k], NULL, 1, &rv), TG_EINVAL);
        tg_cache_crl_t crl;
        cr_assert_eq(tg_cache_get_crl(r, cas[k], &crl), 0);
        cr_assert_eq(crl.n_revoked, np);
    }
    tg_cache_rd_end(r);
    tg_cache_reader_free(r);
    tg_cache_close(c);
}

/* Every serial of length 1..5 over a small alphabet (zeros, prefixes,
 * trailing zeros everywhere), about half of them in the index, some twice,
 * added in scrambled order: each must be found exactly when present. Large
 * enough to go through the radix passes, not only the small-range sort. */
Test(cache, rindex_exhaustive_small_alphabet)
{
    static const uint8_t alpha[] = {0x00, 0x01, 0x02, 0x7f, 0x80, 0xff};
    enum { A = 6, MAXL = 5, TOTAL = 6 + 36 + 216 + 1296 + 7776 };
    uint8_t(*ser)[MAXL] = calloc(TOTAL, MAXL);
    uint8_t *len = calloc(TOTAL, 1), *in = calloc(TOTAL, 1);
    cr_assert(ser != NULL && len != NULL && in != NULL);
    size_t m = 0;
    for (size_t l = 1; l <= MAXL; l++) {
        size_t combos = 1;
        for (size_t k = 0; k < l; k++)
            combos *= A;
        for (size_t v = 0; v < combos; v++, m++) {
            size_t x = v;
            for (size_t k = l; k-- > 0; x /= A)
                ser[m][k] = alpha[x % A];
            len[m] = (uint8_t)l;
        }
    }
    cr_assert_eq(m, TOTAL);
    uint64_t st = 99;
    size_t n = 0;
    for (size_t i = 0; i < TOTAL; i++) {
        uint64_t r = rng_next(&st) % 8;
        in[i] = r < 3 ? 0 : r < 7 ? 1 : 2; /* absent, once, twice */
        n += in[i];
    }
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    uint8_t ca[2][32];
    fill_ca(ca[0], 0x41);
    fill_ca(ca[1], 0x42);
    for (int w = 0; w < 2; w++) {
        tg_cache_rindex_t *ix;
        /* built for exactly 5 bytes (one memcpy) and for 64 (compacted) */
        cr_assert_eq(tg_cache_rindex_new(n, w == 0 ? MAXL : TG_SERIAL_MAX_LEN, &ix), 0);
        /* scrambled order: 7919 is coprime with TOTAL */
        for (size_t j = 0; j < TOTAL; j++) {
            size_t i = (j * 7919) % TOTAL;
            for (int t = 0; t < in[i]; t++)
                cr_assert_eq(tg_cache_rindex_add(ix, ser[i], len[i], (int64_t)i, (int8_t)t), 0);
        }
        tg_buf_t der;
        make_der(&der, 8, 0x09);
        cr_assert_eq(put_take_wait(c, ca[w], 9999, &der, ix), 0);
    }
    tg_cache_reader_t *r;
    cr_assert_eq(tg_cache_reader_new(c, &r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    for (int w = 0; w < 2; w++) {
        for (size_t i = 0; i < TOTAL; i++) {
            tg_cache_revoked_t rv;
            int rc = lookup(r, ca[w], ser[i], len[i], &rv);
            if (in[i]) {
                cr_assert_eq(rc, 0, "serial %zu (len %u) missing", i, len[i]);
                cr_assert_eq(rv.revocation_time, (int64_t)i);
            } else {
                cr_assert_eq(rc, TG_ENOTFOUND, "serial %zu (len %u) found", i, len[i]);
            }
        }
        tg_cache_crl_t crl;
        cr_assert_eq(tg_cache_get_crl(r, ca[w], &crl), 0);
        cr_assert_eq(crl.n_revoked, n);
    }
    tg_cache_rd_end(r);
    tg_cache_reader_free(r);
    tg_cache_close(c);
    free(ser);
    free(len);
    free(in);
}

Test(cache, rindex_duplicates_kept)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    const uint8_t a[] = {0x05, 0x05}, b[] = {0x05}, d[] = {0x05, 0x05, 0x05}, e[] = {0x09};
    tg_cache_rindex_t *ix;
    cr_assert_eq(tg_cache_rindex_new(7, 3, &ix), 0);
    cr_assert_eq(tg_cache_rindex_add(ix, e, 1, 9, 1), 0);
    cr_assert_eq(tg_cache_rindex_add(ix, a, 2, 1, 1), 0);
    cr_assert_eq(tg_cache_rindex_add(ix, e, 1, 9, 1), 0);
    cr_assert_eq(tg_cache_rindex_add(ix, b, 1, 3, 1), 0);
    cr_assert_eq(tg_cache_rindex_add(ix, a, 2, 2, 1), 0);
    cr_assert_eq(tg_cache_rindex_add(ix, d, 3, 4, 1), 0);
    cr_assert_eq(tg_cache_rindex_add(ix, e, 1, 9, 1), 0);
    uint8_t ca[32];
    fill_ca(ca, 0xd1);
    tg_buf_t der;
    make_der(&der, 64, 0x02);
    cr_assert_eq(put_take_wait(c, ca, 9999, &der, ix), 0);
    tg_cache_reader_t *r;
    cr_assert_eq(tg_cache_reader_new(c, &r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    tg_cache_revoked_t rv;
    cr_assert_eq(lookup(r, ca, a, 2, &rv), 0);
    cr_assert(rv.revocation_time == 1 || rv.revocation_time == 2);
    cr_assert_eq(lookup(r, ca, b, 1, &rv), 0);
    cr_assert_eq(rv.revocation_time, 3);
    cr_assert_eq(lookup(r, ca, d, 3, &rv), 0);
    cr_assert_eq(rv.revocation_time, 4);
    cr_assert_eq(lookup(r, ca, e, 1, &rv), 0);
    cr_assert_eq(rv.revocation_time, 9);
    const uint8_t f[] = {0x05, 0x06};
    cr_assert_eq(lookup(r, ca, f, 2, &rv), TG_ENOTFOUND);
    tg_cache_crl_t crl;
    cr_assert_eq(tg_cache_get_crl(r, ca, &crl), 0);
    cr_assert_eq(crl.n_revoked, 7);
    tg_cache_rd_end(r);
    tg_cache_stats_t st;
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.revoked_entries, 7);

    /* 07, 07 00 and 07 00 00, 40 times each, interleaved: equal once padded,
     * so only the length orders them, in groups too big for the small-range
     * sort. */
    const uint8_t z[] = {0x07, 0x00, 0x00, 0x00};
    uint8_t ca2[32];
    fill_ca(ca2, 0xd2);
    cr_assert_eq(tg_cache_rindex_new(120, 3, &ix), 0);
    for (int t = 0; t < 40; t++)
        for (size_t l = 3; l >= 1; l--)
            cr_assert_eq(tg_cache_rindex_add(ix, z, l, (int64_t)l, 0), 0);
    make_der(&der, 64, 0x02);
    cr_assert_eq(put_take_wait(c, ca2, 9999, &der, ix), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    for (size_t l = 1; l <= 3; l++) {
        cr_assert_eq(lookup(r, ca2, z, l, &rv), 0);
        cr_assert_eq(rv.revocation_time, (int64_t)l);
    }
    cr_assert_eq(lookup(r, ca2, z, 4, &rv), TG_ENOTFOUND);
    cr_assert_eq(lookup(r, ca2, z + 1, 1, &rv), TG_ENOTFOUND);
    tg_cache_rd_end(r);
    tg_cache_reader_free(r);
    tg_cache_close(c);
}

Test(cache, rindex_empty_and_null)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    uint8_t ca[32];
    fill_ca(ca, 0xe1);
    const uint8_t s[] = {0x42};

    /* n = 0: nothing can be added, the put stores a CRL without index. */
    tg_cache_rindex_t *ix;
    cr_assert_eq(tg_cache_rindex_new(0, 20, &ix), 0);
    cr_assert_eq(tg_cache_rindex_add(ix, s, 1, 1, 0), TG_EINVAL);
    cr_assert_eq(tg_cache_rindex_count(ix), 0);
    tg_buf_t der;
    make_der(&der, 100, 0x03);
    cr_assert_eq(put_take_wait(c, ca, 9999, &der, ix), 0);
    tg_cache_reader_t *r;
    cr_assert_eq(tg_cache_reader_new(c, &r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    tg_cache_crl_t crl;
    tg_cache_revoked_t rv;
    cr_assert_eq(tg_cache_get_crl(r, ca, &crl), 0);
    cr_assert_eq(crl.n_revoked, 0);
    cr_assert_eq(crl.der.n, 100);
    cr_assert_eq(lookup(r, ca, s, 1, &rv), TG_ENOTFOUND);
    tg_cache_rd_end(r);

    /* With entries, then replaced by a CRL with a NULL index and no DER. */
    cr_assert_eq(tg_cache_rindex_new(1, 1, &ix), 0);
    cr_assert_eq(tg_cache_rindex_add(ix, s, 1, 1, 0), 0);
    make_der(&der, 100, 0x03);
    cr_assert_eq(put_take_wait(c, ca, 9999, &der, ix), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    cr_assert_eq(lookup(r, ca, s, 1, &rv), 0);
    tg_cache_rd_end(r);
    make_der(&der, 0, 0);
    cr_assert_eq(put_take_wait(c, ca, 9999, &der, NULL), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    cr_assert_eq(lookup(r, ca, s, 1, &rv), TG_ENOTFOUND);
    cr_assert_eq(tg_cache_get_crl(r, ca, &crl), 0);
    cr_assert_eq(crl.n_revoked, 0);
    cr_assert_eq(crl.der.n, 0);
    tg_cache_rd_end(r);
    tg_cache_stats_t st;
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.revoked_entries, 0);
    cr_assert_eq(st.crl_entries, 1);

    /* The legacy put with no entries, then delete twice. */
    cr_assert_eq(put_crl_wait(c, ca, 9999, NULL, 0), 0);
    tg_cache_waiter_t w;
    tg_cache_waiter_init(&w);
    cr_assert_eq(tg_cache_delete_crl(c, ca, tg_cache_waiter_cb, &w), 0);
    cr_assert_eq(tg_cache_waiter_wait(&w), 0);
    tg_cache_waiter_init(&w);
    cr_assert_eq(tg_cache_delete_crl(c, ca, tg_cache_waiter_cb, &w), 0);
    cr_assert_eq(tg_cache_waiter_wait(&w), TG_ENOTFOUND);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    cr_assert_eq(tg_cache_get_crl(r, ca, &crl), TG_ENOTFOUND);
    tg_cache_rd_end(r);
    tg_cache_reader_free(r);
    tg_cache_close(c);
}

Test(cache, rindex_add_errors_and_take_on_failure)
{
    tg_cache_rindex_t *ix = (tg_cache_rindex_t *)1;
    cr_assert_eq(tg_cache_rindex_new(4, 0, &ix), TG_EINVAL);
    cr_assert_null(ix);
    cr_assert_eq(tg_cache_rindex_new(4, TG_SERIAL_MAX_LEN + 1, &ix), TG_EINVAL);
    cr_assert_eq(tg_cache_rindex_new(4, 4, NULL), TG_EINVAL);
    if (SIZE_MAX > UINT32_MAX)
        cr_assert_eq(tg_cache_rindex_new((size_t)UINT32_MAX + 1, 4, &ix), TG_EINVAL);

    cr_assert_eq(tg_cache_rindex_new(2, 4, &ix), 0);
    const uint8_t s[TG_SERIAL_MAX_LEN] = {1, 2, 3, 4, 5};
    cr_assert_eq(tg_cache_rindex_add(ix, s, 0, 1, 0), TG_EINVAL);
    cr_assert_eq(tg_cache_rindex_add(ix, s, 5, 1, 0), TG_EINVAL);
    cr_assert_eq(tg_cache_rindex_add(ix, NULL, 1, 1, 0), TG_EINVAL);
    cr_assert_eq(tg_cache_rindex_add(NULL, s, 1, 1, 0), TG_EINVAL);
    cr_assert_eq(tg_cache_rindex_count(ix), 0);
    cr_assert_eq(tg_cache_rindex_add(ix, s, 4, 1, 0), 0);
    cr_assert_eq(tg_cache_rindex_add(ix, s, 1, 1, 0), 0);
    cr_assert_eq(tg_cache_rindex_add(ix, s, 2, 1, 0), TG_EINVAL); /* full */
    cr_assert_eq(tg_cache_rindex_count(ix), 2);
    cr_assert_eq(tg_cache_rindex_count(NULL), 0);
    tg_cache_rindex_free(ix);
    tg_cache_rindex_free(NULL);

    /* Synchronous failures still take (and free) der and the index: the
     * asan run checks nothing leaks. */
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    uint8_t ca[32];
    fill_ca(ca, 0xf1);
    tg_cache_crl_t crl = {.next_update = 5};
    tg_buf_t der;

    make_der(&der, 1000, 0x04);
    cr_assert_eq(tg_cache_rindex_new(3, 4, &ix), 0);
    cr_assert_eq(tg_cache_put_crl_take(NULL, ca, &crl, &der, ix, NULL, NULL), TG_EINVAL);
    cr_assert(der.data == NULL && der.len == 0 && der.cap == 0);

    make_der(&der, 1000, 0x04);
    cr_assert_eq(tg_cache_rindex_new(3, 4, &ix), 0);
    crl.crl_number_len = TG_CACHE_CRL_NUMBER_MAX + 1;
    cr_assert_eq(tg_cache_put_crl_take(c, ca, &crl, &der, ix, NULL, NULL), TG_EINVAL);
    cr_assert(der.data == NULL && der.len == 0 && der.cap == 0);
    crl.crl_number_len = 0;

    make_der(&der, 1000, 0x04);
    cr_assert_eq(tg_cache_rindex_new(3, 4, &ix), 0);
    cr_assert_eq(tg_cache_put_crl_take(c, NULL, &crl, &der, ix, NULL, NULL), TG_EINVAL);
    cr_assert_null(der.data);
    cr_assert_eq(tg_cache_rindex_new(3, 4, &ix), 0);
    cr_assert_eq(tg_cache_put_crl_take(c, ca, &crl, NULL, ix, NULL, NULL), TG_EINVAL);
    make_der(&der, 1000, 0x04);
    cr_assert_eq(tg_cache_put_crl_take(c, ca, NULL, &der, NULL, NULL, NULL), TG_EINVAL);
    cr_assert_null(der.data);

    /* Nothing was stored. */
    tg_cache_stats_t st;
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.crl_entries, 0);
    cr_assert_eq(st.revoked_entries, 0);
    tg_cache_close(c);
}

/* Builds a CRL of n 8-byte serials (base + i) and der_len bytes of DER. */
static tg_cache_rindex_t *seq_index(size_t n, uint64_t base)
{
    tg_cache_rindex_t *ix;
    cr_assert_eq(tg_cache_rindex_new(n, 8, &ix), 0);
    for (size_t i = 0; i < n; i++) {
        uint8_t s[8];
        uint64_t v = base + i;
        for (int k = 7; k >= 0; k--, v >>= 8)
            s[k] = (uint8_t)v;
        cr_assert_eq(tg_cache_rindex_add(ix, s, 8, (int64_t)i, 0), 0);
    }
    return ix;
}

Test(cache, map_full_take_sweeps_and_retries_from_same_buffers)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 4, &c), 0);
    uint8_t old_ca[32], new_ca[32];
    fill_ca(old_ca, 0x31);
    fill_ca(new_ca, 0x32);
    /* Each CRL takes about 2.2 MB (1.5 MB DER + 40k * 18 bytes of index):
     * two do not fit in 4 MiB. */
    const size_t n = 40000, der_len = 1500000;
    tg_buf_t der;
    make_der(&der, der_len, 0x05);
    cr_assert_eq(put_take_wait(c, old_ca, 1 /* long expired */, &der, seq_index(n, 1000)), 0);
    tg_cache_stats_t st;
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.map_full, 0);

    make_der(&der, der_len, 0x06);
    cr_assert_eq(put_take_wait(c, new_ca, INT64_MAX, &der, seq_index(n, 5000000)), 0);
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert(st.map_full >= 1, "the second CRL should not have fit at first");
    cr_assert_eq(st.crl_entries, 1);
    cr_assert_eq(st.revoked_entries, n);

    tg_cache_reader_t *r;
    cr_assert_eq(tg_cache_reader_new(c, &r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    tg_cache_crl_t crl;
    cr_assert_eq(tg_cache_get_crl(r, old_ca, &crl), TG_ENOTFOUND);
    cr_assert_eq(tg_cache_get_crl(r, new_ca, &crl), 0);
    cr_assert_eq(crl.der.n, der_len);
    cr_assert_eq(crl.der.p[1], 0x06);
    cr_assert_eq(crl.n_revoked, n);
    for (size_t i = 0; i < n; i += 101) {
        uint8_t s[8];
        uint64_t v = 5000000 + i;
        for (int k = 7; k >= 0; k--, v >>= 8)
            s[k] = (uint8_t)v;
        tg_cache_revoked_t rv;
        cr_assert_eq(lookup(r, new_ca, s, 8, &rv), 0);
        cr_assert_eq(rv.revocation_time, (int64_t)i);
    }
    tg_cache_rd_end(r);
    tg_cache_reader_free(r);

    /* Too big even after a sweep: dropped with TG_ETOOBIG, nothing leaks. */
    make_der(&der, 6u << 20, 0x07);
    cr_assert_eq(put_take_wait(c, old_ca, INT64_MAX, &der, seq_index(10, 1)), TG_ETOOBIG);
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.crl_entries, 1);
    tg_cache_close(c);
}

/* Writes the schema number and, when bad_index, a malformed index value for
 * CA 0x77..77, straight through LMDB. */
static void poke_env(uint32_t schema, int bad_index)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, rev;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 8), 0);
    cr_assert_eq(mdb_env_open(env, env_path(), MDB_NOTLS, 0640), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    cr_assert_eq(mdb_dbi_open(txn, "revoked", 0, &rev), 0);
    MDB_val k = {.mv_size = 6, .mv_data = "schema"}, v = {.mv_size = 4, .mv_data = &schema};
    cr_assert_eq(mdb_put(txn, meta, &k, &v, 0), 0);
    if (bad_index) {
        uint8_t key[32], val[12 + 2 * 12] = {1, 2};
        memset(key, 0x77, sizeof key);
        uint64_t count = 5; /* but room for 2 */
        memcpy(val + 4, &count, 8);
        k = (MDB_val){.mv_size = 32, .mv_data = key};
        v = (MDB_val){.mv_size = sizeof val, .mv_data = val};
        cr_assert_eq(mdb_put(txn, rev, &k, &v, 0), 0);
        /* An old per-serial record (schema 1 layout). */
        uint8_t okey[36], oval[9] = {0};
        memset(okey, 0x78, sizeof okey);
        k = (MDB_val){.mv_size = sizeof okey, .mv_data = okey};
        v = (MDB_val){.mv_size = sizeof oval, .mv_data = oval};
        cr_assert_eq(mdb_put(txn, rev, &k, &v, 0), 0);
    }
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

Test(cache, schema_change_empties_caches_keeps_trustlists)
{
    tg_cache_t *c;
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    tg_certid_t id = mkid(TG_HASH_SHA1, 20, 1, 42);
    cr_assert_eq(put_ocsp_wait(c, &id, 5000, "DER-1", 5), 0);
    uint8_t ca[32];
    fill_ca(ca, 0x21);
    tg_cache_revoked_entry_t *rev = make_revoked(10, 1);
    cr_assert_eq(put_crl_wait(c, ca, 9999, rev, 10), 0);
    free(rev);
    tg_cache_waiter_t w;
    tg_cache_waiter_init(&w);
    cr_assert_eq(
        tg_cache_put_trustlist(c, TG_SLICE_LIT("gd"), TG_SLICE_LIT("<x/>"), tg_cache_waiter_cb, &w),
        0);
    cr_assert_eq(tg_cache_waiter_wait(&w), 0);
    tg_cache_close(c);

    /* Current schema, but a damaged index: lookups say TG_EIO, stats skip
     * it, nothing is dropped. */
    uint8_t bad_ca[32];
    fill_ca(bad_ca, 0x77);
    poke_env(3, 1);
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    tg_cache_stats_t st;
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.ocsp_entries, 1);
    cr_assert_eq(st.crl_entries, 1);
    cr_assert_eq(st.revoked_entries, 10);
    tg_cache_reader_t *r;
    cr_assert_eq(tg_cache_reader_new(c, &r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    tg_cache_revoked_t rv;
    cr_assert_eq(lookup(r, bad_ca, "\x01", 1, &rv), TG_EIO);
    tg_cache_rd_end(r);
    tg_cache_reader_free(r);
    tg_cache_close(c);

    /* An older schema: ocsp, crl and revoked emptied, trust lists kept. */
    poke_env(1, 1);
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.ocsp_entries, 0);
    cr_assert_eq(st.crl_entries, 0);
    cr_assert_eq(st.revoked_entries, 0);
    cr_assert_eq(st.trustlist_entries, 1);
    cr_assert_eq(tg_cache_reader_new(c, &r), 0);
    cr_assert_eq(tg_cache_rd_begin(r), 0);
    tg_slice_t xml;
    cr_assert_eq(tg_cache_get_trustlist(r, TG_SLICE_LIT("gd"), &xml), 0);
    cr_assert_eq(xml.n, 4);
    cr_assert_eq(lookup(r, bad_ca, "\x01", 1, &rv), TG_ENOTFOUND);
    tg_cache_rd_end(r);
    tg_cache_reader_free(r);
    cr_assert_eq(put_crl_wait(c, ca, 9999, NULL, 0), 0);
    tg_cache_close(c);

    /* Once upgraded, a reopen keeps what was written since. */
    cr_assert_eq(tg_cache_open(env_path(), 16, &c), 0);
    cr_assert_eq(tg_cache_stats(c, &st), 0);
    cr_assert_eq(st.crl_entries, 1);
    tg_cache_close(c);
}
