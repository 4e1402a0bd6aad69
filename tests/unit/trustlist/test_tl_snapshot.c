/* Snapshots: the CertID index under every hash algorithm, CA grouping and
 * status aggregation over categories, services removed by a newer list,
 * rollback, reference counts and the swap slot. */
#include "tests/unit/trustlist/tlt.h"

#include "pki/certid.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(tl_snapshot, .init = tlt_setup, .fini = tlt_teardown);

static time_t T(const char *s)
{
    time_t t = 0;
    cr_assert_eq(tg_tl_parse_time(s, strlen(s), &t), 0, "%s", s);
    return t;
}

static tg_tl_list_t *parse(const tlt_list_t *L)
{
    tg_buf_t b;
    tg_buf_init(&b);
    tlt_build(L, &b);
    tg_tl_refusal_t why;
    tg_tl_list_t *l = NULL;
    cr_assert_eq(tg_tl_parse(b.data, b.len, &why, &l), 0, "%s", why.message);
    tg_buf_free(&b);
    return l;
}

static tg_tl_snapshot_t *snap1(tg_tl_list_t *l, const char *name, const tg_tl_snapshot_t *prev)
{
    tg_tl_snapshot_t *s = NULL;
    cr_assert_eq(tg_tl_snapshot_new(&l, &name, 1, prev, &s), 0);
    return s;
}

static const tg_tl_ca_t *find(const tg_tl_snapshot_t *s, X509 *ca, tg_hash_alg_t alg)
{
    static const uint8_t serial[] = {0x01, 0x02};
    tg_certid_t id;
    cr_assert_eq(tg_pki_certid_for(ca, alg, serial, sizeof(serial), &id), 0);
    return tg_tl_snapshot_find(s, &id);
}

static int ca_has(const tg_tl_ca_t *ca, X509 *x)
{
    for (size_t i = 0; i < ca->n_certs; i++) {
        if (X509_cmp(ca->certs[i], x) == 0)
            return 1;
    }
    return 0;
}

typedef struct {
    EVP_PKEY *k[4];
    X509 *ca[4];   /* four distinct CAs */
    X509 *reissue; /* same subject and key as ca[0], different certificate */
    X509 *stranger;
} cas_t;

static void make_cas(cas_t *c)
{
    static const char *const names[] = {"CA zero", "CA one", "CA two", "CA three"};
    for (int i = 0; i < 4; i++) {
        c->k[i] = tlt_key(i == 1 ? "rsa" : "ec");
        c->ca[i] = tlt_cert(names[i], c->k[i], NULL, c->k[i], 1);
    }
    c->reissue = tlt_cert("CA zero", c->k[0], NULL, c->k[0], 1);
    EVP_PKEY *k = tlt_key("ec");
    c->stranger = tlt_cert("CA zero", k, NULL, k, 1); /* same name, other key */
    EVP_PKEY_free(k);
}

static void free_cas(cas_t *c)
{
    for (int i = 0; i < 4; i++) {
        EVP_PKEY_free(c->k[i]);
        X509_free(c->ca[i]);
    }
    X509_free(c->reissue);
    X509_free(c->stranger);
}

Test(tl_snapshot, index_every_hash_algorithm)
{
    cas_t c;
    make_cas(&c);
    tlt_list_t L = {
        .seq = 1,
        .n_svcs = 2,
        .svcs = {{.name = "A", .certs = {c.ca[0], c.ca[1]}, .n_certs = 2},
                 {.name = "B",
                  .certs = {c.ca[2]},
                  .n_certs = 1,
                  .hist = {{TG_TL_STATUS_PREFIX "granted", "2020-01-01T00:00:00Z", c.ca[3]}},
                  .n_hist = 1}}};
    tg_tl_list_t *l = parse(&L);
    tg_tl_snapshot_t *s = snap1(l, "hk", NULL);
    tg_tl_list_free(l); /* the snapshot holds its own reference */
    cr_expect_eq(tg_tl_snapshot_ca_count(s), 4);
    for (int i = 0; i < 4; i++) {
        for (int alg = 0; alg < TG_HASH_COUNT; alg++) {
            const tg_tl_ca_t *ca = find(s, c.ca[i], (tg_hash_alg_t)alg);
            cr_assert_not_null(ca, "CA %d under %s", i, tg_hash_alg_name((tg_hash_alg_t)alg));
            cr_expect(ca_has(ca, c.ca[i]));
            cr_expect_str_eq(ca->list_name, "hk");
            cr_expect_eq(ca->list_index, 0);
        }
        uint8_t fp[32];
        unsigned int n;
        cr_assert(X509_digest(c.ca[i], EVP_sha256(), fp, &n));
        const tg_tl_ca_t *ca = tg_tl_snapshot_find_sha256(s, fp);
        cr_assert_not_null(ca);
        cr_expect(ca_has(ca, c.ca[i]));
    }
    /* The history identity is indexed with its service. */
    const tg_tl_ca_t *h = find(s, c.ca[3], TG_HASH_SM3);
    cr_assert_eq(h->n_services, 1);
    cr_expect_str_eq(h->services[0]->name, "B");
    /* Unknown issuers, same name with another key, broken CertIDs. */
    for (int alg = 0; alg < TG_HASH_COUNT; alg++) {
        cr_expect_null(find(s, c.stranger, (tg_hash_alg_t)alg));
    }
    tg_certid_t id;
    static const uint8_t serial[] = {1};
    cr_assert_eq(tg_pki_certid_for(c.ca[0], TG_HASH_SHA256, serial, 1, &id), 0);
    id.hash_len = 20;
    cr_expect_null(tg_tl_snapshot_find(s, &id));
    id.hash_len = 32;
    id.alg = TG_HASH_SHA1; /* right bytes, wrong algorithm */
    cr_expect_null(tg_tl_snapshot_find(s, &id));
    id.alg = (tg_hash_alg_t)17;
    cr_expect_null(tg_tl_snapshot_find(s, &id));
    uint8_t zero[32] = {0};
    cr_expect_null(tg_tl_snapshot_find_sha256(s, zero));
    tg_tl_snapshot_unref(s);
    free_cas(&c);
}

Test(tl_snapshot, same_name_and_key_is_one_ca)
{
    /* A re-issued CA certificate (same subject and key) yields the same
     * CertID issuer hashes: one CA with both certificates and both
     * categories. */
    cas_t c;
    make_cas(&c);
    tlt_list_t L = {.seq = 1,
                    .n_svcs = 2,
                    .svcs = {{.name = "A", .certs = {c.ca[0]}, .n_certs = 1},
                             {.name = "B", .certs = {c.reissue}, .n_certs = 1}}};
    tg_tl_list_t *l = parse(&L);
    tg_tl_snapshot_t *s = snap1(l, "gd", NULL);
    cr_expect_eq(tg_tl_snapshot_ca_count(s), 1);
    const tg_tl_ca_t *ca = find(s, c.reissue, TG_HASH_SHA1);
    cr_assert_not_null(ca);
    cr_expect_eq(ca->n_certs, 2);
    cr_expect_eq(ca->n_services, 2);
    cr_expect_eq(X509_cmp(ca->certs[0], c.ca[0]), 0); /* the first one listed */
    uint8_t fp[32];
    unsigned int n;
    cr_assert(X509_digest(c.reissue, EVP_sha256(), fp, &n));
    cr_expect_eq(tg_tl_snapshot_find_sha256(s, fp), ca);
    cr_assert(X509_digest(c.ca[0], EVP_sha256(), fp, &n));
    cr_expect_eq(memcmp(ca->sha256, fp, 32), 0);
    tg_tl_snapshot_unref(s);
    tg_tl_list_free(l);
    free_cas(&c);
}

Test(tl_snapshot, categories_aggregate)
{
    cas_t c;
    make_cas(&c);
    X509 *x = c.ca[0];
    tlt_list_t L = {.seq = 1,
                    .n_svcs = 4,
                    .svcs = {
                        /* active until 2025-03-01, then withdrawn */
                        {.name = "A",
                         .status = TG_TL_STATUS_PREFIX "withdrawn",
                         .start = "2025-03-01T00:00:00Z",
                         .hist = {{TG_TL_STATUS_PREFIX "granted", "2024-01-01T00:00:00Z", NULL}},
                         .n_hist = 1,
                         .certs = {x},
                         .n_certs = 1},
                        /* suspended from 2025-02-01 */
                        {.name = "B",
                         .status = TG_TL_STATUS_SUSPENDED_URI,
                         .start = "2025-02-01T00:00:00Z",
                         .hist = {{TG_TL_STATUS_PREFIX "granted", "2024-06-01T00:00:00Z", NULL}},
                         .n_hist = 1,
                         .certs = {x},
                         .n_certs = 1},
                        /* suspended from 2025-04-01 (after being active) */
                        {.name = "C",
                         .status = TG_TL_STATUS_SUSPENDED_URI,
                         .start = "2025-04-01T00:00:00Z",
                         .hist = {{TG_TL_STATUS_PREFIX "accredited", "2024-06-01T00:00:00Z", NULL}},
                         .n_hist = 1,
                         .certs = {x},
                         .n_certs = 1},
                        /* an unknown status from 2024-09-01: terminated */
                        {.name = "D",
                         .status = "urn:x:odd",
                         .start = "2024-09-01T00:00:00Z",
                         .certs = {x},
                         .n_certs = 1},
                    }};
    tg_tl_list_t *l = parse(&L);
    tg_tl_snapshot_t *s = snap1(l, "gd", NULL);
    const tg_tl_ca_t *ca = find(s, x, TG_HASH_SHA256);
    cr_assert_not_null(ca);
    cr_assert_eq(ca->n_services, 4);
    time_t since;
    tg_tl_reason_t why;
    cr_expect_eq(tg_tl_ca_status_at(ca, T("2023-12-31T00:00:00Z"), &since, &why), TG_TL_NOT_LISTED);
    cr_expect_eq(since, 0);
    cr_expect_eq(why, TG_TL_REASON_NONE);
    cr_expect_eq(tg_tl_ca_status_at(ca, T("2024-07-01T00:00:00Z"), &since, &why), TG_TL_ACTIVE);
    cr_expect_eq(since, T("2024-06-01T00:00:00Z"));
    /* One category suspended, others active: active. */
    cr_expect_eq(tg_tl_ca_status_at(ca, T("2025-02-15T00:00:00Z"), &since, &why), TG_TL_ACTIVE);
    /* A withdrawn, B suspended, C active: active. */
    cr_expect_eq(tg_tl_ca_status_at(ca, T("2025-03-15T00:00:00Z"), NULL, NULL), TG_TL_ACTIVE);
    /* A withdrawn, B and C suspended: suspended since the latest suspension. */
    cr_expect_eq(tg_tl_ca_status_at(ca, T("2025-05-01T00:00:00Z"), &since, &why), TG_TL_SUSPENDED);
    cr_expect_eq(since, T("2025-04-01T00:00:00Z"));
    cr_expect_eq(why, TG_TL_REASON_STATUS);

    /* Counters of the list at two times. */
    tg_tl_counts_t n;
    cr_assert_eq(tg_tl_snapshot_counts(s, 0, T("2025-05-01T00:00:00Z"), &n), 0);
    cr_expect_eq(n.cas[TG_TL_SUSPENDED], 1);
    cr_expect_eq(n.services[TG_TL_SUSPENDED], 2);
    cr_expect_eq(n.services[TG_TL_TERMINATED], 2);
    cr_expect_eq(n.unknown_status_uris, 1);
    cr_assert_eq(tg_tl_snapshot_counts(s, 0, T("2024-07-01T00:00:00Z"), &n), 0);
    cr_expect_eq(n.cas[TG_TL_ACTIVE], 1);
    cr_expect_eq(n.services[TG_TL_ACTIVE], 3);
    cr_expect_eq(n.services[TG_TL_NOT_LISTED], 1);
    cr_expect_eq(tg_tl_snapshot_counts(s, 1, 0, &n), TG_EINVAL);
    tg_tl_snapshot_unref(s);
    tg_tl_list_free(l);

    /* Every category terminated: terminated since the latest termination. */
    tlt_list_t M = {.seq = 1,
                    .n_svcs = 2,
                    .svcs = {{.name = "A",
                              .status = TG_TL_STATUS_PREFIX "withdrawn",
                              .start = "2025-03-01T00:00:00Z",
                              .certs = {x},
                              .n_certs = 1},
                             {.name = "D",
                              .status = "urn:x:odd",
                              .start = "2024-09-01T00:00:00Z",
                              .certs = {x},
                              .n_certs = 1}}};
    l = parse(&M);
    s = snap1(l, "gd", NULL);
    ca = find(s, x, TG_HASH_SHA512);
    cr_expect_eq(tg_tl_ca_status_at(ca, T("2025-05-01T00:00:00Z"), &since, &why), TG_TL_TERMINATED);
    cr_expect_eq(since, T("2025-03-01T00:00:00Z"));
    cr_expect_eq(why, TG_TL_REASON_STATUS);
    cr_expect_eq(tg_tl_ca_status_at(ca, T("2025-01-01T00:00:00Z"), &since, &why), TG_TL_TERMINATED);
    cr_expect_eq(why, TG_TL_REASON_UNKNOWN_URI);
    tg_tl_snapshot_unref(s);
    tg_tl_list_free(l);
    free_cas(&c);
}

Test(tl_snapshot, removed_service_terminated_from_new_issue_time)
{
    cas_t c;
    make_cas(&c);
    tlt_list_t v1 = {
        .seq = 1,
        .issued = "2025-01-01T00:00:00Z",
        .n_svcs = 3,
        .svcs = {{.name = "A", .certs = {c.ca[0]}, .n_certs = 1},
                 {.name = "B", .certs = {c.ca[1]}, .n_certs = 1, .ocsp = "http://b/"},
                 {.name = "C",
                  .status = TG_TL_STATUS_PREFIX "withdrawn",
                  .start = "2024-06-01T00:00:00Z",
                  .hist = {{TG_TL_STATUS_PREFIX "granted", "2023-01-01T00:00:00Z", NULL}},
                  .n_hist = 1,
                  .certs = {c.ca[2]},
                  .n_certs = 1}}};
    tlt_list_t v2 = v1;
    v2.seq = 2;
    v2.issued = "2025-02-01T08:00:00+08:00";
    v2.n_svcs = 1; /* B and C are gone */
    tg_tl_list_t *l1 = parse(&v1), *l2 = parse(&v2);
    tg_tl_snapshot_t *s1 = snap1(l1, "hk", NULL);
    tg_tl_snapshot_t *s2 = snap1(l2, "hk", s1);
    tg_tl_snapshot_unref(s1);
    tg_tl_list_free(l1);

    const tg_tl_ca_t *b = find(s2, c.ca[1], TG_HASH_SHA1);
    cr_assert_not_null(b);
    time_t since;
    tg_tl_reason_t why;
    cr_expect_eq(tg_tl_ca_status_at(b, T("2025-03-01T00:00:00Z"), &since, &why), TG_TL_TERMINATED);
    cr_expect_eq(since, T("2025-02-01T00:00:00Z"));
    cr_expect_eq(why, TG_TL_REASON_REMOVED);
    cr_expect_eq(tg_tl_ca_status_at(b, T("2025-01-31T23:59:59Z"), &since, &why), TG_TL_ACTIVE);
    cr_assert_eq(b->n_services, 1);
    cr_expect_eq(b->services[0]->removed, 1);
    cr_expect_str_eq(b->services[0]->supply_points[0].uri, "http://b/");
    /* C was withdrawn before it vanished: its termination time stays. */
    const tg_tl_ca_t *cc = find(s2, c.ca[2], TG_HASH_SHA256);
    cr_expect_eq(tg_tl_ca_status_at(cc, T("2025-03-01T00:00:00Z"), &since, &why), TG_TL_TERMINATED);
    cr_expect_eq(since, T("2024-06-01T00:00:00Z"));
    cr_expect_eq(why, TG_TL_REASON_STATUS);
    tg_tl_counts_t n;
    cr_assert_eq(tg_tl_snapshot_counts(s2, 0, T("2025-03-01T00:00:00Z"), &n), 0);
    cr_expect_eq(n.removed_services, 2);
    cr_expect_eq(n.cas[TG_TL_ACTIVE], 1);
    cr_expect_eq(n.cas[TG_TL_TERMINATED], 2);
    size_t nr;
    cr_expect_not_null(tg_tl_snapshot_removed(s2, 0, &nr));
    cr_expect_eq(nr, 2);

    /* Still missing from the next list: still terminated from the first
     * list that lacked it. */
    tlt_list_t v3 = v2;
    v3.seq = 3;
    v3.issued = "2025-03-01T00:00:00Z";
    tg_tl_list_t *l3 = parse(&v3);
    tg_tl_snapshot_t *s3 = snap1(l3, "hk", s2);
    tg_tl_snapshot_unref(s2);
    tg_tl_list_free(l2);
    b = find(s3, c.ca[1], TG_HASH_SHA384);
    cr_expect_eq(tg_tl_ca_status_at(b, T("2025-04-01T00:00:00Z"), &since, &why), TG_TL_TERMINATED);
    cr_expect_eq(since, T("2025-02-01T00:00:00Z"));

    /* Back on a later list: its own entries rule again. */
    tlt_list_t v4 = v1;
    v4.seq = 4;
    v4.issued = "2025-04-01T00:00:00Z";
    tg_tl_list_t *l4 = parse(&v4);
    tg_tl_snapshot_t *s4 = snap1(l4, "hk", s3);
    b = find(s4, c.ca[1], TG_HASH_SM3);
    cr_expect_eq(tg_tl_ca_status_at(b, T("2025-04-02T00:00:00Z"), &since, &why), TG_TL_ACTIVE);
    cr_expect_eq(b->services[0]->removed, 0);
    cr_assert_eq(tg_tl_snapshot_counts(s4, 0, T("2025-04-02T00:00:00Z"), &n), 0);
    cr_expect_eq(n.removed_services, 0);

    /* A list of another name is not a successor. */
    tg_tl_snapshot_t *other = snap1(l2 = parse(&v2), "gd", s4);
    cr_expect_eq(tg_tl_snapshot_ca_count(other), 1);
    tg_tl_snapshot_unref(other);
    tg_tl_list_free(l2);

    tg_tl_snapshot_unref(s3);
    tg_tl_snapshot_unref(s4);
    tg_tl_list_free(l3);
    tg_tl_list_free(l4);
    free_cas(&c);
}

Test(tl_snapshot, rollback_refused)
{
    cas_t c;
    make_cas(&c);
    tlt_list_t v = {
        .seq = 7, .n_svcs = 1, .svcs = {{.name = "A", .certs = {c.ca[0]}, .n_certs = 1}}};
    tg_tl_list_t *l7 = parse(&v);
    v.seq = 6;
    tg_tl_list_t *l6 = parse(&v);
    v.seq = 7;
    v.tsp_name = "renamed";
    tg_tl_list_t *l7b = parse(&v);
    tg_tl_snapshot_t *s = snap1(l7, "hk", NULL);
    tg_tl_refusal_t why;
    cr_expect_eq(tg_tl_check_successor(s, "hk", l6, &why), TG_ESTATE);
    cr_expect_str_eq(why.code, "rollback");
    cr_expect_eq(tg_tl_check_successor(s, "gd", l6, &why), 0);
    cr_expect_eq(tg_tl_check_successor(NULL, "hk", l6, &why), 0);
    cr_expect_eq(tg_tl_check_successor(s, "hk", l7b, &why), 0); /* equal: accepted */
    const char *name = "hk";
    tg_tl_snapshot_t *bad = (tg_tl_snapshot_t *)1;
    cr_expect_eq(tg_tl_snapshot_new(&l6, &name, 1, s, &bad), TG_ESTATE);
    cr_expect_null(bad);
    /* Repeated names. */
    tg_tl_list_t *two[2] = {l7, l7b};
    const char *names[2] = {"hk", "hk"};
    cr_expect_eq(tg_tl_snapshot_new(two, names, 2, NULL, &bad), TG_ESTATE);
    tg_tl_snapshot_unref(s);
    tg_tl_list_free(l6);
    tg_tl_list_free(l7);
    tg_tl_list_free(l7b);
    free_cas(&c);
}

Test(tl_snapshot, two_lists)
{
    cas_t c;
    make_cas(&c);
    tlt_list_t gd = {.territory = "CN",
                     .seq = 3,
                     .n_svcs = 1,
                     .svcs = {{.name = "SM2 CA", .certs = {c.ca[0], c.ca[3]}, .n_certs = 2}}};
    tlt_list_t hk = {.territory = "HK",
                     .seq = 9,
                     .n_svcs = 1,
                     .svcs = {{.name = "RSA CA", .certs = {c.ca[1], c.ca[3]}, .n_certs = 2}}};
    tg_tl_list_t *lists[2] = {parse(&gd), parse(&hk)};
    const char *names[2] = {"gd", "hk"};
    tg_tl_snapshot_t *s = NULL;
    cr_assert_eq(tg_tl_snapshot_new(lists, names, 2, NULL, &s), 0);
    cr_expect_eq(tg_tl_snapshot_list_count(s), 2);
    size_t i = 9;
    cr_expect_eq(tg_tl_snapshot_list_index(s, "hk", &i), 0);
    cr_expect_eq(i, 1);
    cr_expect_eq(tg_tl_snapshot_list_index(s, "xx", &i), TG_ENOTFOUND);
    cr_expect_str_eq(tg_tl_snapshot_list_name(s, 0), "gd");
    cr_expect_eq(tg_tl_snapshot_list(s, 1), lists[1]);
    cr_expect_null(tg_tl_snapshot_list(s, 2));
    cr_expect_str_eq(find(s, c.ca[0], TG_HASH_SM3)->list_name, "gd");
    cr_expect_str_eq(find(s, c.ca[1], TG_HASH_SHA256)->list_name, "hk");
    /* On both lists: found on the first. */
    cr_expect_str_eq(find(s, c.ca[3], TG_HASH_SHA1)->list_name, "gd");
    cr_expect_eq(tg_tl_snapshot_ca_count(s), 4);
    for (size_t k = 0; k < tg_tl_snapshot_ca_count(s); k++)
        cr_expect_not_null(tg_tl_snapshot_ca(s, k));
    cr_expect_null(tg_tl_snapshot_ca(s, 4));
    tg_tl_snapshot_unref(s);
    tg_tl_list_free(lists[0]);
    tg_tl_list_free(lists[1]);
    /* An empty snapshot is valid. */
    cr_assert_eq(tg_tl_snapshot_new(NULL, NULL, 0, NULL, &s), 0);
    cr_expect_null(find(s, c.ca[0], TG_HASH_SHA1));
    tg_tl_snapshot_unref(s);
    free_cas(&c);
}

/* The publishing pattern of the responder: a current pointer swapped
 * under a lock; readers take their own reference and use it unlocked. */
typedef struct {
    pthread_mutex_t mu;
    tg_tl_snapshot_t *cur;
    X509 *ca;
    volatile int stop;
    unsigned long lookups;
} reader_t;

static void *reader(void *arg)
{
    reader_t *r = arg;
    tg_certid_t id;
    static const uint8_t serial[] = {1};
    if (tg_pki_certid_for(r->ca, TG_HASH_SHA1, serial, 1, &id) != 0)
        return NULL;
    while (!r->stop) {
        pthread_mutex_lock(&r->mu);
        tg_tl_snapshot_t *s = tg_tl_snapshot_ref(r->cur);
        pthread_mutex_unlock(&r->mu);
        if (tg_tl_snapshot_find(s, &id) == NULL)
            abort();
        tg_tl_snapshot_unref(s);
        r->lookups++;
    }
    return NULL;
}

Test(tl_snapshot, refcounts_across_threads)
{
    cas_t c;
    make_cas(&c);
    tlt_list_t v = {
        .seq = 1, .n_svcs = 1, .svcs = {{.name = "A", .certs = {c.ca[0]}, .n_certs = 1}}};
    tg_tl_list_t *l = parse(&v);
    tg_tl_snapshot_t *s = snap1(l, "hk", NULL);
    tg_tl_list_free(l);
    cr_assert_eq(tg_tl_snapshot_ref(s), s);
    tg_tl_snapshot_unref(s);
    const tg_tl_list_t *kept = tg_tl_snapshot_list(s, 0);
    cr_expect_eq(kept->sequence, 1); /* still alive through the snapshot */
    tg_tl_snapshot_unref(NULL);

    reader_t r = {.cur = s, .ca = c.ca[0]};
    pthread_mutex_init(&r.mu, NULL);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, reader, &r), 0);
    /* Swap new snapshots in while the reader looks up. */
    for (unsigned seq = 2; seq < 40; seq++) {
        v.seq = seq;
        l = parse(&v);
        pthread_mutex_lock(&r.mu);
        tg_tl_snapshot_t *prev = r.cur;
        tg_tl_snapshot_t *n = snap1(l, "hk", prev);
        r.cur = n;
        pthread_mutex_unlock(&r.mu);
        tg_tl_list_free(l);
        tg_tl_snapshot_unref(prev); /* readers may still hold it */
    }
    usleep(20000);
    r.stop = 1;
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_expect(r.lookups > 0);
    cr_expect_eq(tg_tl_snapshot_list(r.cur, 0)->sequence, 39);
    tg_tl_snapshot_unref(r.cur);
    pthread_mutex_destroy(&r.mu);
    free_cas(&c);
}

Test(tl_snapshot, public_vectors_indexed)
{
    DIR *d = opendir(tlt_vectors());
    if (d == NULL)
        cr_skip_test("no trust-list vectors under %s", tlt_vectors());
    tg_tl_list_t *lists[32];
    char names[32][16];
    const char *np[32];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 32) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".xml") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", tlt_vectors(), e->d_name);
        size_t sz;
        uint8_t *xml = tlt_read(path, &sz);
        tg_tl_refusal_t why;
        cr_assert_eq(tg_tl_parse(xml, sz, &why, &lists[n]), 0);
        free(xml);
        snprintf(names[n], sizeof(names[n]), "v%zu", n);
        np[n] = names[n];
        n++;
    }
    closedir(d);
    tg_tl_snapshot_t *s = NULL;
    cr_assert_eq(tg_tl_snapshot_new(lists, np, n, NULL, &s), 0);
    size_t cas = tg_tl_snapshot_ca_count(s);
    cr_expect(cas > 30, "%zu CAs", cas);
    /* Every certificate of every CA is found under every algorithm. */
    for (size_t i = 0; i < cas; i++) {
        const tg_tl_ca_t *ca = tg_tl_snapshot_ca(s, i);
        for (int alg = 0; alg < TG_HASH_COUNT; alg++) {
            const tg_tl_ca_t *f = find(s, ca->certs[ca->n_certs - 1], (tg_hash_alg_t)alg);
            cr_assert_not_null(f);
            /* The same CA, or the same CA on an earlier list. */
            cr_expect(f == ca || f->list_index < ca->list_index);
        }
    }
    tg_tl_snapshot_unref(s);
    for (size_t i = 0; i < n; i++)
        tg_tl_list_free(lists[i]);
}
