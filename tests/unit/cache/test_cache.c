/* cache/: the LMDB status store. Each test works in its own mkdtemp folder
 * and removes it at the end. */
#include "cache/cache.h"
#include "common/err.h"
#include "common/log.h"

#include <criterion/criterion.h>
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
        rc = tg_cache_get_ocsp(r, id, out_rec);
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

TestSuite(cache, .init = setup, .fini = teardown, .timeout = 120);

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
    cr_assert_eq(tg_cache_delete_ocsp(c, &ids[0], tg_cache_waiter_cb, &w), 0);
    cr_assert_eq(tg_cache_waiter_wait(&w), 0);
    tg_cache_waiter_init(&w);
    cr_assert_eq(tg_cache_delete_ocsp(c, &ids[0], tg_cache_waiter_cb, &w), 0);
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
        int rc = tg_cache_get_ocsp(r, &id, &rec);
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
