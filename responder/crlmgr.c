/* The CRL manager: see crlmgr.h.
 *
 * Threads: every CA record (crl_ca_t) belongs to the fetcher thread, which
 * schedules, fetches and takes results; the ingest thread parses, verifies
 * and writes one CRL at a time from a job that carries its own copies of
 * what it needs (the CA certificate, limits), so it never reads a CA record;
 * m->mu guards the CA list and the few fields /metrics reads. */
#include "responder/crlmgr.h"

#include "common/log.h"
#include "fetch/fetch.h"
#include "pki/crl.h"
#include "responder/responder_internal.h"

#include <errno.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIN_DELAY_S 5       /* never refetch one CRL more often */
#define BACKOFF_BASE_S 5    /* first retry after a failure; doubles */
#define CLOCK_SKEW_S 300    /* a thisUpdate this far ahead is accepted */
#define FAILURE_LOG_EVERY 8 /* a failure repeating: logged every 8th time in a row */
#define SWEEP_FIRST_S 60    /* the first sweep of expired cache entries */
#define SWEEP_EVERY_S 600   /* and the next ones */

/* Results of one fetch-and-ingest round, for metrics and logs. The first
 * two are successes. Refusal codes are tg_crl_verify's and the ones below. */
static const char *const reason_names[] = {
    "ok",
    "unchanged",
    "timeout",
    "too_big",
    "connect",
    "dns",
    "tls",
    "protocol",
    "file",
    "http_status",
    "canceled",
    "other",
    "malformed",
    "unsupported",
    "bad_signature",
    "wrong_issuer",
    "bad_times",
    "no_crl_sign",
    "expired",
    "not_yet_valid",
    "older",
    "number_backwards",
    "store_failed",
    "out_of_memory",
};
#define N_REASONS (sizeof(reason_names) / sizeof(reason_names[0]))

typedef struct crl_ca crl_ca_t;

struct crl_ca {
    crl_ca_t *next;
    tg_crlmgr_t *m;
    uint8_t id[TG_CACHE_CA_ID_LEN]; /* SHA-256 of the CA certificate */
    char hex[2 * TG_CACHE_CA_ID_LEN + 1];
    char list[TG_CONFIG_NAME_MAX + 1];
    char *url;
    X509 *cert; /* extension cache computed: shareable read-only */
    uv_timer_t timer;
    int timer_open;
    int busy;  /* a fetch or an ingest is running */
    int again; /* a refresh came while busy */
    int gone;  /* dropped from the lists: freed once idle and closed */
    int due;   /* on_update: fetch now */
    unsigned failures;
    /* limits from the configuration in force */
    long timeout_ms;
    size_t max_bytes;
    int allow_file_urls;
    int64_t refresh_s;
    const char *logged_reason; /* the failure last logged (static), or NULL */
    /* conditional requests; set only from a CRL that was taken or unchanged */
    char etag[256];
    char last_modified[64];
    /* read by /metrics under m->mu */
    int64_t last_ok;
    unsigned failures_now;
};

typedef struct ingest_job {
    struct ingest_job *next;
    tg_crlmgr_t *m;
    crl_ca_t *ca; /* not read by the ingest thread */
    uint8_t id[TG_CACHE_CA_ID_LEN];
    char label[TG_CONFIG_NAME_MAX + 2 + 2 * TG_CACHE_CA_ID_LEN + 1]; /* "hk/7b4b…" */
    X509 *cert;                                                      /* own reference */
    size_t max_bytes;
    tg_buf_t der;
    char etag[256];
    char last_modified[64];
    /* result */
    const char *reason;
    char detail[160];
} ingest_job_t;

struct tg_crlmgr {
    tg_cache_t *cache;
    tg_fetcher_t *fetcher;
    tg_cache_reader_t *freader; /* the fetcher thread's */
    uint64_t rng;               /* jitter (fetcher thread) */

    pthread_mutex_t mu;  /* cas (structure) and the metrics fields of each */
    crl_ca_t *cas;       /* wanted CAs */
    crl_ca_t *graveyard; /* dropped, waiting for their fetch or timer */
    size_t open_timers;  /* fetcher thread */
    pthread_cond_t closed_cv;
    int shut; /* fetcher thread finished closing the timers (under mu) */

    pthread_t ingest_thread;
    int ingest_started;
    pthread_mutex_t iq_mu;
    pthread_cond_t iq_cv;
    ingest_job_t *iq_head, *iq_tail;
    int iq_stop;

    _Atomic int stopping;
    _Atomic uint64_t results[N_REASONS];
};

static size_t reason_index(const char *reason)
{
    for (size_t i = 0; i < N_REASONS; i++) {
        if (strcmp(reason_names[i], reason) == 0)
            return i;
    }
    return 11; /* "other" */
}

static void count(tg_crlmgr_t *m, const char *reason)
{
    atomic_fetch_add_explicit(&m->results[reason_index(reason)], 1, memory_order_relaxed);
}

/* ---- the ingest thread ---------------------------------------------------- */

typedef struct {
    size_t n;
    size_t max_len;
} walk_size_t;

static int walk_size(void *arg, const tg_crl_entry_t *e)
{
    walk_size_t *s = arg;
    s->n++;
    if (e->serial_len > s->max_len)
        s->max_len = e->serial_len;
    return 0;
}

static int walk_add(void *arg, const tg_crl_entry_t *e)
{
    return tg_cache_rindex_add(arg, e->serial, e->serial_len, e->revocation_time, e->reason);
}

static const char *parse_reason(int rc)
{
    switch (rc) {
    case TG_ETOOBIG: return "too_big";
    case TG_EUNSUPPORTED: return "unsupported";
    case TG_ENOMEM: return "out_of_memory";
    default: return "malformed";
    }
}

/* 1 when old (held) is exactly the CRL der (parsed into info). The bytes
 * are compared only once number, thisUpdate and size agree, so a new CRL
 * never reads the held one's pages: those mapped pages would otherwise
 * count in the process's memory while a big CRL is ingested. */
static int same_crl(const tg_cache_crl_t *old, const tg_crl_info_t *info, tg_slice_t der)
{
    return old->der.n == der.n && old->this_update == info->this_update &&
           old->crl_number_len == info->crl_number_len &&
           memcmp(old->crl_number, info->crl_number, info->crl_number_len) == 0 &&
           memcmp(old->der.p, der.p, der.n) == 0;
}

/* 1 when the cache holds exactly these CRL bytes (parsed into info) for
 * CA id. */
static int same_as_stored(tg_cache_reader_t *rd, const uint8_t *id, const tg_crl_info_t *info,
                          tg_slice_t der)
{
    tg_cache_crl_t old;
    int same = 0;
    if (tg_cache_rd_begin(rd) != 0)
        return 0;
    if (tg_cache_get_crl(rd, id, &old) == 0)
        same = same_crl(&old, info, der);
    tg_cache_rd_end(rd);
    return same;
}

/* Decides whether a verified CRL may replace the one held (RFC 5280
 * §5.2.3: CRL numbers increase):
 * - the very same bytes: "unchanged";
 * - both numbered: the number must be higher ("number_backwards" for a
 *   lower one or the same one reused), whatever thisUpdate says;
 * - otherwise thisUpdate must be later ("older");
 * - but when the CRL held is past its nextUpdate it answers nothing any
 *   more, and any fresh, verified CRL replaces it (a CA that restarted its
 *   numbering must not be locked out for good); logged.
 * So two CRLs taken in turn always differ in number or thisUpdate, which
 * the pre-signed answers' key relies on. Returns NULL to go on, or the
 * reason. */
static const char *against_stored(tg_cache_reader_t *rd, const char *label, const uint8_t *id,
                                  const tg_crl_info_t *info, tg_slice_t der, int64_t now)
{
    tg_cache_crl_t old;
    const char *why = NULL;
    if (tg_cache_rd_begin(rd) != 0)
        return "store_failed";
    int rc = tg_cache_get_crl(rd, id, &old);
    if (rc == 0) {
        int numbered = info->crl_number_len > 0 && old.crl_number_len > 0;
        if (same_crl(&old, info, der))
            why = "unchanged"; /* stored meanwhile */
        else if (numbered && tg_crl_number_cmp(info->crl_number, info->crl_number_len,
                                               old.crl_number, old.crl_number_len) <= 0)
            why = "number_backwards";
        else if (!numbered && info->this_update <= old.this_update)
            why = "older";
        if (why != NULL && strcmp(why, "unchanged") != 0 && old.next_update <= now) {
            tg_warn("crl %s: taking a CRL that would be refused (%s) because the one held "
                    "expired %lld s ago",
                    label, why, (long long)(now - old.next_update));
            why = NULL;
        }
    } else if (rc != TG_ENOTFOUND) {
        why = "store_failed";
    }
    tg_cache_rd_end(rd);
    return why;
}

static double elapsed_s(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Parses, verifies and stores job->der. Sets job->reason (and detail). */
static void ingest(tg_crlmgr_t *m, tg_cache_reader_t *rd, ingest_job_t *job)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const uint8_t *der = job->der.data;
    size_t len = job->der.len;
    tg_crl_info_t info;
    int rc = tg_crl_parse(der, len, job->max_bytes, &info);
    if (rc != 0) {
        job->reason = parse_reason(rc);
        snprintf(job->detail, sizeof(job->detail), "%s", tg_strerror(rc));
        return;
    }
    if (same_as_stored(rd, job->id, &info, TG_SLICE(der, len))) {
        job->reason = "unchanged"; /* e.g. a file: URL, which has no ETag */
        return;
    }
    tg_info("crl %s: ingesting %zu bytes", job->label, len);
    const char *why = NULL;
    rc = tg_crl_verify(&info, der, len, job->cert, &why);
    if (rc != 0) {
        job->reason = rc == TG_EMALFORMED && why != NULL ? why : parse_reason(rc);
        snprintf(job->detail, sizeof(job->detail), "not verified against the listed CA");
        return;
    }
    int64_t now = (int64_t)time(NULL);
    if (info.this_update > now + CLOCK_SKEW_S) {
        job->reason = "not_yet_valid";
        snprintf(job->detail, sizeof(job->detail), "thisUpdate is %lld s ahead",
                 (long long)(info.this_update - now));
        return;
    }
    if (info.next_update <= now) {
        job->reason = "expired";
        snprintf(job->detail, sizeof(job->detail), "nextUpdate passed %lld s ago",
                 (long long)(now - info.next_update));
        return;
    }
    why = against_stored(rd, job->label, job->id, &info, TG_SLICE(der, len), now);
    if (why != NULL) {
        job->reason = why;
        return;
    }

    /* Two walks over the DER: sizes first, so the index is allocated once
     * at its final size; the parsed CRL is never held as objects. */
    walk_size_t size = {0, 0};
    rc = tg_crl_for_each_revoked(&info, walk_size, &size);
    if (rc < 0) {
        job->reason = parse_reason(rc);
        snprintf(job->detail, sizeof(job->detail), "revoked entry: %s", tg_strerror(rc));
        return;
    }
    if (atomic_load(&m->stopping)) {
        job->reason = "canceled";
        return;
    }
    tg_cache_rindex_t *ix = NULL;
    if (size.n > 0) {
        rc = tg_cache_rindex_new(size.n, size.max_len, &ix);
        if (rc == 0)
            rc = tg_crl_for_each_revoked(&info, walk_add, ix);
        if (rc < 0) {
            tg_cache_rindex_free(ix);
            job->reason = parse_reason(rc);
            snprintf(job->detail, sizeof(job->detail), "indexing: %s", tg_strerror(rc));
            return;
        }
    }
    tg_cache_crl_t hdr;
    memset(&hdr, 0, sizeof(hdr));
    hdr.this_update = info.this_update;
    hdr.next_update = info.next_update;
    hdr.crl_number_len = info.crl_number_len;
    memcpy(hdr.crl_number, info.crl_number, info.crl_number_len);
    char number[2 * TG_CRL_NUMBER_MAX + 1];
    tg_hex_encode(info.crl_number, info.crl_number_len, 0, number);

    if (atomic_load(&m->stopping)) {
        tg_cache_rindex_free(ix);
        job->reason = "canceled";
        return;
    }
    tg_cache_waiter_t wt;
    tg_cache_waiter_init(&wt);
    /* takes job->der and ix whatever happens */
    rc = tg_cache_put_crl_take(m->cache, job->id, &hdr, &job->der, ix, tg_cache_waiter_cb, &wt);
    if (rc == 0)
        rc = tg_cache_waiter_wait(&wt);
    else
        tg_cache_waiter_destroy(&wt);
    if (rc != 0) {
        job->reason = "store_failed";
        snprintf(job->detail, sizeof(job->detail), "cache write: %s", tg_strerror(rc));
        return;
    }
    job->reason = "ok";
    tg_info("crl %s: in force: number 0x%s, %zu revoked, nextUpdate in %lld s (%.3f s to ingest)",
            job->label, info.crl_number_len ? number : "-", size.n,
            (long long)(info.next_update - now), elapsed_s(&t0));
}

/* Removes OCSP answers past their nextUpdate and CRLs long past theirs
 * (SPEC §7). On this thread, not the fetcher's: it scans the databases. */
static void sweep(tg_crlmgr_t *m)
{
    tg_cache_sweep_counts_t n;
    int rc = tg_cache_sweep(m->cache, (int64_t)time(NULL), TG_CACHE_CRL_GRACE_DEFAULT_S, &n);
    if (rc != 0)
        tg_warn("cache: sweep failed (%s); expired entries stay until the next one",
                tg_strerror(rc));
    else if (n.ocsp + n.crl > 0)
        tg_info("cache: swept %llu expired answers, %llu CRLs (%llu revoked entries)",
                (unsigned long long)n.ocsp, (unsigned long long)n.crl,
                (unsigned long long)n.revoked);
}

static void on_ingested(void *arg, int canceled);

static void *ingest_main(void *arg)
{
    tg_crlmgr_t *m = arg;
    tg_log_set_thread_tag("crl");
    tg_cache_reader_t *rd = NULL;
    if (tg_cache_reader_new(m->cache, &rd) != 0)
        tg_error("crl: no cache reader for the ingest thread; CRLs are stored unchecked "
                 "against the ones held");
    time_t next_sweep = time(NULL) + SWEEP_FIRST_S;
    for (;;) {
        pthread_mutex_lock(&m->iq_mu);
        int timed_out = 0;
        while (m->iq_head == NULL && !m->iq_stop && !timed_out) {
            struct timespec until = {.tv_sec = next_sweep, .tv_nsec = 0};
            timed_out = pthread_cond_timedwait(&m->iq_cv, &m->iq_mu, &until) == ETIMEDOUT;
        }
        ingest_job_t *job = m->iq_head;
        if (m->iq_stop) {
            pthread_mutex_unlock(&m->iq_mu);
            break;
        }
        if (job == NULL || time(NULL) >= next_sweep) {
            pthread_mutex_unlock(&m->iq_mu);
            sweep(m);
            next_sweep = time(NULL) + SWEEP_EVERY_S;
            continue;
        }
        m->iq_head = job->next;
        if (m->iq_head == NULL)
            m->iq_tail = NULL;
        pthread_mutex_unlock(&m->iq_mu);

        if (rd == NULL) {
            job->reason = "store_failed";
            snprintf(job->detail, sizeof(job->detail), "no cache reader");
        } else {
            ingest(m, rd, job);
        }
        tg_buf_free(&job->der); /* not taken by the cache: free it here, not later */
        if (tg_fetcher_call(m->fetcher, on_ingested, job) != 0) {
            /* stopping (or out of memory: the CA then waits for a reload);
             * the CA record is the fetcher thread's, not touched here */
            tg_error("crl %s: result lost (%s)", job->label, job->reason);
            X509_free(job->cert);
            free(job);
        }
    }
    tg_cache_reader_free(rd);
    return NULL;
}

/* ---- the fetcher thread ---------------------------------------------------- */

static uint64_t next_random(tg_crlmgr_t *m)
{
    /* xorshift64*: jitter only, not security */
    uint64_t x = m->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    m->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void ca_free(crl_ca_t *ca)
{
    X509_free(ca->cert);
    free(ca->url);
    free(ca);
}

/* Frees a dropped CA once nothing refers to it any more. */
static void maybe_free(crl_ca_t *ca)
{
    tg_crlmgr_t *m = ca->m;
    if (!ca->gone || ca->busy || ca->timer_open || atomic_load(&m->stopping))
        return;
    pthread_mutex_lock(&m->mu);
    for (crl_ca_t **pp = &m->graveyard; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == ca) {
            *pp = ca->next;
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
    ca_free(ca);
}

static void on_timer_closed(uv_handle_t *h)
{
    crl_ca_t *ca = h->data;
    tg_crlmgr_t *m = ca->m;
    ca->timer_open = 0;
    pthread_mutex_lock(&m->mu);
    m->open_timers--;
    if (m->open_timers == 0 && m->shut)
        pthread_cond_broadcast(&m->closed_cv);
    pthread_mutex_unlock(&m->mu);
    if (atomic_load(&m->stopping))
        return;
    maybe_free(ca);
}

static void start_fetch(crl_ca_t *ca);

static void on_timer(uv_timer_t *t)
{
    start_fetch(t->data);
}

/* nextUpdate of the CRL held for ca, or 0 when none (fetcher thread). */
static int64_t held_next_update(crl_ca_t *ca)
{
    tg_crlmgr_t *m = ca->m;
    tg_cache_crl_t crl;
    int64_t next = 0;
    if (m->freader != NULL && tg_cache_rd_begin(m->freader) == 0) {
        if (tg_cache_get_crl(m->freader, ca->id, &crl) == 0)
            next = crl.next_update;
        tg_cache_rd_end(m->freader);
    }
    return next;
}

/* Arms the next fetch: every refresh_s while all is well, sooner as
 * nextUpdate nears (half the time left, at least MIN_DELAY_S); after a
 * failure, exponential backoff from BACKOFF_BASE_S up to refresh_s. Each
 * delay gets ±10 % jitter so that CAs do not fetch in lockstep. */
static void schedule(crl_ca_t *ca, int ok)
{
    tg_crlmgr_t *m = ca->m;
    int64_t now = (int64_t)time(NULL);
    int64_t delay = ca->refresh_s;
    if (ok) {
        int64_t next = held_next_update(ca);
        if (next != 0 && (next - now) / 2 < delay)
            delay = (next - now) / 2;
    } else {
        unsigned shift = ca->failures > 0 ? ca->failures - 1 : 0;
        int64_t backoff = (int64_t)BACKOFF_BASE_S << (shift > 16 ? 16 : shift);
        if (backoff < delay)
            delay = backoff;
    }
    if (delay < MIN_DELAY_S)
        delay = MIN_DELAY_S;
    uint64_t ms = (uint64_t)delay * 1000;
    uint64_t jitter = ms / 5; /* the ±10 % window */
    ms = ms - jitter / 2 + (jitter ? next_random(m) % jitter : 0);
    uv_timer_start(&ca->timer, on_timer, ms, 0);
}

/* Ends a round: counts and logs the result, then schedules the next. */
static void finish(crl_ca_t *ca, const char *reason, const char *detail)
{
    tg_crlmgr_t *m = ca->m;
    int ok = strcmp(reason, "ok") == 0 || strcmp(reason, "unchanged") == 0;
    ca->busy = 0;
    count(m, reason);
    pthread_mutex_lock(&m->mu);
    if (ok) {
        ca->failures = 0;
        ca->last_ok = (int64_t)time(NULL);
    } else {
        ca->failures++;
    }
    ca->failures_now = ca->failures;
    pthread_mutex_unlock(&m->mu);
    /* every new kind of failure is logged; a repeated one now and then */
    if (!ok && (ca->failures == 1 || ca->logged_reason == NULL ||
                strcmp(reason, ca->logged_reason) != 0 || ca->failures % FAILURE_LOG_EVERY == 0)) {
        ca->logged_reason = reason;
        tg_warn("crl %s/%s: %s%s%s (%u in a row; the CRL held stays in force) from %s", ca->list,
                ca->hex, reason, detail && *detail ? ": " : "", detail ? detail : "", ca->failures,
                ca->url);
    }
    if (ok)
        ca->logged_reason = NULL;
    if (ca->gone || atomic_load(&m->stopping)) {
        maybe_free(ca);
        return;
    }
    if (ca->again) {
        ca->again = 0;
        start_fetch(ca);
        return;
    }
    schedule(ca, ok);
}

static void on_ingested(void *arg, int canceled)
{
    ingest_job_t *job = arg;
    crl_ca_t *ca = job->ca;
    if (!canceled && !atomic_load(&job->m->stopping)) {
        if (strcmp(job->reason, "ok") == 0 || strcmp(job->reason, "unchanged") == 0) {
            memcpy(ca->etag, job->etag, sizeof(ca->etag));
            memcpy(ca->last_modified, job->last_modified, sizeof(ca->last_modified));
        }
        finish(ca, job->reason, job->detail);
    } else {
        ca->busy = 0; /* freed with the manager */
    }
    X509_free(job->cert);
    tg_buf_free(&job->der);
    free(job);
}

static void queue_ingest(crl_ca_t *ca, tg_fetch_res_t *res)
{
    tg_crlmgr_t *m = ca->m;
    ingest_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        finish(ca, "out_of_memory", NULL);
        return;
    }
    job->m = m;
    job->ca = ca;
    memcpy(job->id, ca->id, sizeof(job->id));
    snprintf(job->label, sizeof(job->label), "%s/%s", ca->list, ca->hex);
    X509_up_ref(ca->cert);
    job->cert = ca->cert;
    job->max_bytes = ca->max_bytes;
    job->der = res->body; /* stolen */
    tg_buf_init(&res->body);
    snprintf(job->etag, sizeof(job->etag), "%s", res->etag);
    snprintf(job->last_modified, sizeof(job->last_modified), "%s", res->last_modified);
    pthread_mutex_lock(&m->iq_mu);
    if (m->iq_tail != NULL)
        m->iq_tail->next = job;
    else
        m->iq_head = job;
    m->iq_tail = job;
    pthread_cond_signal(&m->iq_cv);
    pthread_mutex_unlock(&m->iq_mu);
}

static void on_fetched(void *arg, tg_fetch_res_t *res)
{
    crl_ca_t *ca = arg;
    if (atomic_load(&ca->m->stopping)) {
        ca->busy = 0;
        return;
    }
    if (ca->gone) {
        ca->busy = 0;
        maybe_free(ca);
        return;
    }
    if (res->rc != 0) {
        finish(ca, res->reason ? res->reason : "other", res->err);
    } else if (res->not_modified) {
        if (held_next_update(ca) <= (int64_t)time(NULL)) {
            /* the upstream still has nothing newer than a stale CRL: not a
             * success; ask unconditionally next time */
            ca->etag[0] = ca->last_modified[0] = '\0';
            finish(ca, "expired", "not modified upstream, and the CRL held is past its nextUpdate");
        } else {
            finish(ca, "unchanged", NULL);
        }
    } else if (res->http_status != 0 && (res->http_status < 200 || res->http_status > 299)) {
        char detail[64];
        snprintf(detail, sizeof(detail), "HTTP status %ld", res->http_status);
        finish(ca, "http_status", detail);
    } else {
        queue_ingest(ca, res);
    }
}

static void start_fetch(crl_ca_t *ca)
{
    if (ca->busy) {
        ca->again = 1;
        return;
    }
    uv_timer_stop(&ca->timer);
    tg_fetch_req_t req;
    memset(&req, 0, sizeof(req));
    req.url = ca->url;
    req.method = "GET";
    req.accept = "application/pkix-crl, */*;q=0.5";
    req.if_none_match = ca->etag[0] ? ca->etag : NULL;
    req.if_modified_since = ca->last_modified[0] ? ca->last_modified : NULL;
    req.max_bytes = ca->max_bytes;
    req.timeout_ms = ca->timeout_ms;
    req.allow_file_urls = ca->allow_file_urls;
    ca->busy = 1;
    int rc = tg_fetch_start(ca->m->fetcher, &req, on_fetched, ca);
    if (rc != 0)
        finish(ca, "other", tg_strerror(rc));
}

/* The CRL location of a CA: the list's crl_url override for it if any,
 * else the first CRL ServiceSupplyPoint among its categories, http(s)
 * preferred, file: only when allowed. NULL: none. */
static const char *crl_url_of(const tg_tl_ca_t *ca, const tg_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_trustlists; i++) {
        const tg_config_trustlist_t *tl = &cfg->trustlists[i];
        if (strcmp(tl->name, ca->list_name) != 0)
            continue;
        for (size_t j = 0; j < tl->n_crl_urls; j++) {
            if (memcmp(tl->crl_urls[j].ca, ca->sha256, sizeof(ca->sha256)) == 0)
                return tl->crl_urls[j].url;
        }
    }
    return tg_tl_ca_supply_uri(ca, TG_TL_SUPPLY_CRL, cfg->allow_file_urls);
}

static crl_ca_t *find_ca(crl_ca_t *list, const uint8_t *id)
{
    for (crl_ca_t *ca = list; ca != NULL; ca = ca->next) {
        if (memcmp(ca->id, id, sizeof(ca->id)) == 0)
            return ca;
    }
    return NULL;
}

static uint32_t list_refresh_s(const tg_config_t *cfg, const char *list)
{
    for (size_t i = 0; i < cfg->n_trustlists; i++) {
        if (strcmp(cfg->trustlists[i].name, list) == 0)
            return cfg->trustlists[i].refresh_s;
    }
    return 300;
}

/* Brings ca (new or kept) up to date with the generation. Returns 1 when
 * its URL changed (a fetch is due now). */
static int ca_configure(crl_ca_t *ca, const tg_tl_ca_t *tca, const tg_config_t *cfg,
                        const char *url)
{
    int changed = ca->url == NULL || strcmp(ca->url, url) != 0;
    if (changed) {
        char *u = strdup(url);
        if (u == NULL)
            return 0; /* keep the old one; the next generation retries */
        free(ca->url);
        ca->url = u;
        ca->etag[0] = ca->last_modified[0] = '\0';
    }
    if (ca->cert != tca->certs[0]) {
        X509_up_ref(tca->certs[0]);
        X509_free(ca->cert);
        ca->cert = tca->certs[0];
    }
    snprintf(ca->list, sizeof(ca->list), "%s", tca->list_name);
    ca->timeout_ms = (long)cfg->upstream_timeout_ms;
    ca->max_bytes = (size_t)cfg->max_crl_bytes;
    ca->allow_file_urls = cfg->allow_file_urls;
    ca->refresh_s = list_refresh_s(cfg, tca->list_name);
    return changed;
}

static void ca_drop(tg_crlmgr_t *m, crl_ca_t *ca)
{
    ca->gone = 1;
    ca->next = m->graveyard;
    m->graveyard = ca;
    if (ca->timer_open)
        uv_close((uv_handle_t *)&ca->timer, on_timer_closed);
}

typedef struct {
    tg_crlmgr_t *m;
    tg_gen_t *gen;
} update_t;

static void on_update(void *arg, int canceled)
{
    update_t *u = arg;
    tg_crlmgr_t *m = u->m;
    if (canceled || atomic_load(&m->stopping))
        goto out;
    if (m->freader == NULL && tg_cache_reader_new(m->cache, &m->freader) != 0)
        m->freader = NULL; /* schedules without nextUpdate */
    const tg_config_t *cfg = u->gen->cfgref->cfg;
    const tg_tl_snapshot_t *snap = u->gen->snap;
    time_t now = time(NULL);
    crl_ca_t *keep = NULL, *fresh = NULL;
    size_t n = snap != NULL ? tg_tl_snapshot_ca_count(snap) : 0;
    for (size_t i = 0; i < n; i++) {
        const tg_tl_ca_t *tca = tg_tl_snapshot_ca(snap, i);
        tg_tl_status_t st = tg_tl_ca_status_at(tca, now, NULL, NULL);
        if (st == TG_TL_TERMINATED)
            continue; /* a terminated CA's CRL answers nothing */
        /* active, suspended, or listed from a later time on: its CRL must
         * be held by the time it becomes active */
        const char *url = crl_url_of(tca, cfg);
        if (url == NULL || find_ca(keep, tca->sha256) || find_ca(fresh, tca->sha256))
            continue;
        pthread_mutex_lock(&m->mu);
        crl_ca_t *ca = find_ca(m->cas, tca->sha256);
        if (ca != NULL) { /* unlink from the old list */
            for (crl_ca_t **pp = &m->cas; *pp != NULL; pp = &(*pp)->next) {
                if (*pp == ca) {
                    *pp = ca->next;
                    break;
                }
            }
        }
        pthread_mutex_unlock(&m->mu);
        int due = 0;
        if (ca == NULL) {
            ca = calloc(1, sizeof(*ca));
            if (ca == NULL) {
                tg_error("crl: out of memory adding a CA");
                continue;
            }
            ca->m = m;
            memcpy(ca->id, tca->sha256, sizeof(ca->id));
            tg_hex_encode(ca->id, sizeof(ca->id), 0, ca->hex);
            uv_timer_init(tg_fetcher_loop(m->fetcher), &ca->timer);
            ca->timer.data = ca;
            ca->timer_open = 1;
            pthread_mutex_lock(&m->mu);
            m->open_timers++;
            pthread_mutex_unlock(&m->mu);
            due = 1;
        }
        if (ca_configure(ca, tca, cfg, url))
            due = 1;
        if (ca->url == NULL) {
            ca->next = fresh; /* no URL (out of memory): kept idle */
            fresh = ca;
            continue;
        }
        ca->next = due ? fresh : keep;
        if (due)
            fresh = ca;
        else
            keep = ca;
    }
    pthread_mutex_lock(&m->mu);
    crl_ca_t *old = m->cas;
    m->cas = NULL;
    for (crl_ca_t *ca = keep; ca != NULL;) {
        crl_ca_t *next = ca->next;
        ca->next = m->cas;
        m->cas = ca;
        ca = next;
    }
    for (crl_ca_t *ca = fresh; ca != NULL;) {
        crl_ca_t *next = ca->next;
        ca->next = m->cas;
        m->cas = ca;
        ca->due = ca->url != NULL;
        ca = next;
    }
    while (old != NULL) { /* not listed any more */
        crl_ca_t *next = old->next;
        tg_info("crl %s/%s: no longer fetched (CA not active on any list)", old->list, old->hex);
        ca_drop(m, old);
        old = next;
    }
    pthread_mutex_unlock(&m->mu);
    /* outside the lock: a fetch that fails at once takes it in finish() */
    for (crl_ca_t *ca = m->cas; ca != NULL; ca = ca->next) {
        if (ca->due) {
            ca->due = 0;
            start_fetch(ca);
        }
    }
out:
    tg_gen_unref(u->gen);
    free(u);
}

static void on_refresh(void *arg, int canceled)
{
    tg_crlmgr_t *m = arg;
    if (canceled || atomic_load(&m->stopping))
        return;
    for (crl_ca_t *ca = m->cas; ca != NULL; ca = ca->next) {
        if (ca->url != NULL)
            start_fetch(ca);
    }
}

/* Closes every timer (fetcher thread) so the fetcher's loop can end. */
static void on_shutdown(void *arg, int canceled)
{
    (void)canceled;
    tg_crlmgr_t *m = arg;
    for (crl_ca_t *ca = m->cas; ca != NULL; ca = ca->next) {
        if (ca->timer_open && !uv_is_closing((uv_handle_t *)&ca->timer))
            uv_close((uv_handle_t *)&ca->timer, on_timer_closed);
    }
    tg_cache_reader_free(m->freader);
    m->freader = NULL;
    pthread_mutex_lock(&m->mu);
    m->shut = 1;
    if (m->open_timers == 0)
        pthread_cond_broadcast(&m->closed_cv);
    pthread_mutex_unlock(&m->mu);
}

/* ---- public ----------------------------------------------------------------- */

int tg_crlmgr_new(tg_cache_t *cache, tg_crlmgr_t **out_mgr)
{
    tg_crlmgr_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return TG_ENOMEM;
    m->cache = cache;
    m->rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x9E3779B97F4A7C15ULL;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->closed_cv, NULL);
    pthread_mutex_init(&m->iq_mu, NULL);
    pthread_cond_init(&m->iq_cv, NULL);
    int rc = tg_fetcher_new(&m->fetcher);
    if (rc != 0) {
        tg_error("crl: cannot start the fetcher (%s)", tg_strerror(rc));
        tg_crlmgr_free(m);
        return rc;
    }
    if (pthread_create(&m->ingest_thread, NULL, ingest_main, m) != 0) {
        tg_error("crl: cannot start the ingest thread");
        tg_crlmgr_free(m);
        return TG_EIO;
    }
    m->ingest_started = 1;
    *out_mgr = m;
    return 0;
}

void tg_crlmgr_update(tg_crlmgr_t *mgr, struct tg_gen *gen)
{
    update_t *u = malloc(sizeof(*u));
    if (u == NULL) {
        tg_error("crl: out of memory taking up a new generation");
        return;
    }
    u->m = mgr;
    u->gen = tg_gen_ref(gen);
    if (tg_fetcher_call(mgr->fetcher, on_update, u) != 0) {
        tg_gen_unref(u->gen);
        free(u);
    }
}

void tg_crlmgr_refresh(tg_crlmgr_t *mgr)
{
    if (tg_fetcher_call(mgr->fetcher, on_refresh, mgr) != 0)
        tg_warn("crl: refresh not started (stopping)");
}

int tg_crlmgr_render_metrics(tg_crlmgr_t *mgr, tg_buf_t *out)
{
    int rc =
        tg_metrics_render_family(out, "trustgate_crl_fetches_total",
                                 "CRL fetch rounds by result (ok and unchanged are successes).",
                                 "result", reason_names, mgr->results, N_REASONS);
    tg_cache_reader_t *rd = NULL;
    if (tg_cache_reader_new(mgr->cache, &rd) != 0)
        rd = NULL;
    int64_t now = (int64_t)time(NULL);
    tg_buf_t age, left, entries, number, last_ok, fails;
    tg_buf_init(&age);
    tg_buf_init(&left);
    tg_buf_init(&entries);
    tg_buf_init(&number);
    tg_buf_init(&last_ok);
    tg_buf_init(&fails);
    rc |= tg_buf_append_str(&age, "# HELP trustgate_crl_age_seconds Seconds since the held "
                                  "CRL's thisUpdate.\n# TYPE trustgate_crl_age_seconds gauge\n");
    rc |=
        tg_buf_append_str(&left, "# HELP trustgate_crl_next_update_seconds Seconds until the held "
                                 "CRL's nextUpdate (negative: stale).\n"
                                 "# TYPE trustgate_crl_next_update_seconds gauge\n");
    rc |= tg_buf_append_str(&entries, "# HELP trustgate_crl_entries Revoked entries in the held "
                                      "CRL.\n# TYPE trustgate_crl_entries gauge\n");
    rc |= tg_buf_append_str(&number, "# HELP trustgate_crl_number The held CRL's cRLNumber "
                                     "(low 64 bits).\n# TYPE trustgate_crl_number gauge\n");
    rc |= tg_buf_append_str(&last_ok,
                            "# HELP trustgate_crl_last_success_timestamp_seconds Last fetch "
                            "that ended ok or unchanged.\n"
                            "# TYPE trustgate_crl_last_success_timestamp_seconds gauge\n");
    rc |= tg_buf_append_str(&fails, "# HELP trustgate_crl_consecutive_failures Failed rounds "
                                    "since the last success.\n"
                                    "# TYPE trustgate_crl_consecutive_failures gauge\n");
    pthread_mutex_lock(&mgr->mu);
    for (crl_ca_t *ca = mgr->cas; ca != NULL; ca = ca->next) {
        char lbl[160];
        snprintf(lbl, sizeof(lbl), "{list=\"%s\",ca=\"%s\"}", ca->list, ca->hex);
        rc |= tg_buf_printf(&last_ok, "trustgate_crl_last_success_timestamp_seconds%s %lld\n", lbl,
                            (long long)ca->last_ok);
        rc |= tg_buf_printf(&fails, "trustgate_crl_consecutive_failures%s %u\n", lbl,
                            ca->failures_now);
        tg_cache_crl_t crl;
        if (rd == NULL || tg_cache_rd_begin(rd) != 0)
            continue;
        if (tg_cache_get_crl(rd, ca->id, &crl) == 0) {
            uint64_t num = 0;
            for (size_t i = 0; i < crl.crl_number_len; i++)
                num = num << 8 | crl.crl_number[i];
            rc |= tg_buf_printf(&age, "trustgate_crl_age_seconds%s %lld\n", lbl,
                                (long long)(now - crl.this_update));
            rc |= tg_buf_printf(&left, "trustgate_crl_next_update_seconds%s %lld\n", lbl,
                                (long long)(crl.next_update - now));
            rc |= tg_buf_printf(&entries, "trustgate_crl_entries%s %llu\n", lbl,
                                (unsigned long long)crl.n_revoked);
            rc |= tg_buf_printf(&number, "trustgate_crl_number%s %llu\n", lbl,
                                (unsigned long long)num);
        }
        tg_cache_rd_end(rd);
    }
    pthread_mutex_unlock(&mgr->mu);
    tg_cache_reader_free(rd);
    rc |= tg_buf_append(out, age.data, age.len);
    rc |= tg_buf_append(out, left.data, left.len);
    rc |= tg_buf_append(out, entries.data, entries.len);
    rc |= tg_buf_append(out, number.data, number.len);
    rc |= tg_buf_append(out, last_ok.data, last_ok.len);
    rc |= tg_buf_append(out, fails.data, fails.len);
    tg_buf_free(&age);
    tg_buf_free(&left);
    tg_buf_free(&entries);
    tg_buf_free(&number);
    tg_buf_free(&last_ok);
    tg_buf_free(&fails);
    return rc != 0 ? TG_ENOMEM : 0;
}

void tg_crlmgr_free(tg_crlmgr_t *mgr)
{
    if (mgr == NULL)
        return;
    atomic_store(&mgr->stopping, 1);
    if (mgr->ingest_started) {
        pthread_mutex_lock(&mgr->iq_mu);
        mgr->iq_stop = 1;
        pthread_cond_signal(&mgr->iq_cv);
        pthread_mutex_unlock(&mgr->iq_mu);
        pthread_join(mgr->ingest_thread, NULL);
    }
    while (mgr->iq_head != NULL) { /* never started; the CAs are freed below */
        ingest_job_t *job = mgr->iq_head;
        mgr->iq_head = job->next;
        X509_free(job->cert);
        tg_buf_free(&job->der);
        free(job);
    }
    if (mgr->fetcher != NULL) {
        if (tg_fetcher_call(mgr->fetcher, on_shutdown, mgr) == 0) {
            pthread_mutex_lock(&mgr->mu);
            while (!mgr->shut || mgr->open_timers > 0)
                pthread_cond_wait(&mgr->closed_cv, &mgr->mu);
            pthread_mutex_unlock(&mgr->mu);
        }
        tg_fetcher_free(mgr->fetcher); /* fetches in flight end as canceled */
    }
    for (crl_ca_t **list = &mgr->cas;; list = &mgr->graveyard) {
        while (*list != NULL) {
            crl_ca_t *ca = *list;
            *list = ca->next;
            ca_free(ca);
        }
        if (list == &mgr->graveyard)
            break;
    }
    pthread_mutex_destroy(&mgr->mu);
    pthread_cond_destroy(&mgr->closed_cv);
    pthread_mutex_destroy(&mgr->iq_mu);
    pthread_cond_destroy(&mgr->iq_cv);
    free(mgr);
}
