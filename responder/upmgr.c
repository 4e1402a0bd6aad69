/* The upstream OCSP manager: see upmgr.h.
 *
 * Threads: asks arrive from worker loops through tg_fetcher_call; flights,
 * upstreams and the single-flight table belong to the fetcher thread;
 * results go back to each asking worker with tg_worker_post. m->mu guards
 * the upstream list and the fields /metrics reads. */
#include "responder/upmgr.h"

#include "common/log.h"
#include "fetch/fetch.h"
#include "pki/certid.h"
#include "responder/responder_internal.h"

#include <openssl/bn.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS 1024         /* single-flight hash table */
#define OPEN_SLOTS 256       /* breakers the workers check without a lock */
#define REFRESH_SLOTS 4096   /* recent refreshes, by CertID hash */
#define REFRESH_GAP_MS 60000 /* one refresh per CertID per minute at most */
#define KEY_MAX TG_CERTID_KEY_MAX

/* Results of an upstream round, for metrics. "ok" first. */
static const char *const result_names[] = {
    "ok",
    "breaker_open",
    "overloaded",
    "canceled",
    "timeout",
    "connect",
    "dns",
    "tls",
    "protocol",
    "too_big",
    "http_status",
    "upstream_status",
    "no_next_update",
    "malformed",
    "unauthorized_signer",
    "bad_signature",
    "bad_produced_at",
    "critical_extension",
    "nonce_mismatch",
    "certid_mismatch",
    "duplicate_single",
    "not_yet_valid",
    "expired",
    "internal_error",
    "other",
};
#define N_RESULTS (sizeof(result_names) / sizeof(result_names[0]))

/* Upstream latency histogram bounds, milliseconds. */
static const unsigned latency_ms[] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
#define N_LATENCY (sizeof(latency_ms) / sizeof(latency_ms[0]))

typedef struct waiter {
    struct waiter *next;
    tg_worker_t *w;
    tg_up_done_cb cb;
    void *arg;
    tg_up_result_t res;
} waiter_t;

typedef struct flight flight_t;

typedef struct upstream {
    struct upstream *next;
    char *url;
    unsigned inflight;
    flight_t *qhead, *qtail; /* waiting for a slot */
    unsigned failures;       /* in a row */
    int64_t open_until_ms;   /* breaker open until (monotonic ms) */
    /* read by /metrics under m->mu */
    int breaker_open;
    uint64_t requests;
} upstream_t;

struct flight {
    flight_t *hnext; /* hash chain */
    flight_t *qnext; /* upstream queue */
    tg_upmgr_t *m;
    uint8_t key[KEY_MAX];
    size_t key_len;
    size_t bucket;
    tg_certid_t id;
    X509 *issuer;
    long timeout_ms;
    upstream_t *up;
    waiter_t *waiters;
    uint64_t created_ms; /* the first ask */
    uint64_t t0_ms;      /* the request went out */
};

typedef struct {
    tg_upmgr_t *m;
    waiter_t *waiter;
    tg_certid_t id;
    char *url;
    X509 *issuer;
    long timeout_ms;
} ask_msg_t;

struct tg_upmgr {
    tg_cache_t *cache;
    tg_fetcher_t *fetcher;
    flight_t *table[BUCKETS];
    size_t waiting; /* waiters on all flights (fetcher thread) */
    pthread_mutex_t mu;
    upstream_t *upstreams;
    _Atomic int stopping;
    _Atomic uint64_t results[N_RESULTS];
    _Atomic uint64_t joins;
    _Atomic uint64_t refreshes;
    /* fetcher thread: when a CertID (by hash) was last refreshed, so an
     * upstream that keeps giving the same nextUpdate is not hammered */
    uint64_t refresh_hash[REFRESH_SLOTS];
    uint64_t refresh_at[REFRESH_SLOTS];
    _Atomic uint64_t latency[N_LATENCY + 1];
    _Atomic uint64_t latency_sum_ms;
    /* open breakers by URL hash, for tg_upmgr_breaker_open: a slot holds
     * the hash of the URL and until when (monotonic ms) it stays open */
    _Atomic uint64_t open_hash[OPEN_SLOTS];
    _Atomic int64_t open_until[OPEN_SLOTS];
};

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void count(tg_upmgr_t *m, const char *result)
{
    size_t i = 0;
    while (i < N_RESULTS && strcmp(result_names[i], result) != 0)
        i++;
    if (i == N_RESULTS)
        i = N_RESULTS - 1; /* "other" */
    atomic_fetch_add_explicit(&m->results[i], 1, memory_order_relaxed);
}

static size_t bucket_of(const uint8_t *key, size_t n)
{
    return (size_t)(tg_fnv1a(TG_FNV1A_INIT, key, n) % BUCKETS);
}

/* Publishes an upstream's breaker state for the workers' lock-free check. */
static void publish_breaker(tg_upmgr_t *m, const upstream_t *up)
{
    uint64_t h = tg_fnv1a(TG_FNV1A_INIT, up->url, strlen(up->url));
    size_t slot = (size_t)(h % OPEN_SLOTS);
    if (up->breaker_open) {
        atomic_store_explicit(&m->open_hash[slot], h, memory_order_relaxed);
        atomic_store_explicit(&m->open_until[slot], up->open_until_ms, memory_order_release);
    } else if (atomic_load_explicit(&m->open_hash[slot], memory_order_relaxed) == h) {
        atomic_store_explicit(&m->open_until[slot], 0, memory_order_release);
    }
}

/* ---- delivering results ------------------------------------------------- */

static void deliver(void *arg, int canceled)
{
    waiter_t *wt = arg;
    wt->cb(wt->arg, &wt->res, canceled);
    tg_buf_free(&wt->res.der);
    free(wt);
}

/* Ends a flight: every waiter gets the result (its own copy of the DER). */
static void complete(flight_t *f, const char *reason, const uint8_t *der, size_t len,
                     const tg_ocsp_verify_result_t *v)
{
    tg_upmgr_t *m = f->m;
    for (flight_t **pp = &m->table[f->bucket]; *pp != NULL; pp = &(*pp)->hnext) {
        if (*pp == f) {
            *pp = f->hnext;
            break;
        }
    }
    for (waiter_t *wt = f->waiters, *next; wt != NULL; wt = next) {
        next = wt->next;
        m->waiting--;
        wt->res.reason = reason;
        if (reason == NULL) {
            wt->res.v = *v;
            if (tg_buf_append(&wt->res.der, der, len) != 0)
                wt->res.reason = "internal_error";
        }
        tg_worker_post(wt->w, deliver, wt);
    }
    X509_free(f->issuer);
    free(f);
}

/* ---- the upstream request ------------------------------------------------ */

/* The DER OCSPRequest for id (no nonce: the answer is shared and cached,
 * RFC 5019), built with OpenSSL from the CA certificate; the CertID must
 * come out as the client's. */
static int build_request(const tg_certid_t *id, X509 *issuer, tg_buf_t *out)
{
    const EVP_MD *md = tg_pki_hash_md(id->alg);
    BIGNUM *bn = BN_bin2bn(id->serial, (int)id->serial_len, NULL);
    ASN1_INTEGER *serial = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    OCSP_CERTID *cid = md != NULL && serial != NULL
                           ? OCSP_cert_id_new(md, X509_get_subject_name(issuer),
                                              X509_get0_pubkey_bitstr(issuer), serial)
                           : NULL;
    int rc = TG_ECRYPTO;
    if (req != NULL && cid != NULL && OCSP_request_add0_id(req, cid) != NULL) {
        cid = NULL; /* the request owns it */
        unsigned char *p = NULL;
        int n = i2d_OCSP_REQUEST(req, &p);
        if (n > 0)
            rc = tg_buf_append(out, p, (size_t)n);
        OPENSSL_free(p);
    }
    if (rc != 0)
        tg_log_openssl("building an upstream OCSP request");
    OCSP_CERTID_free(cid);
    OCSP_REQUEST_free(req);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return rc;
}

static void start_flight(flight_t *f);

/* Starts queued flights while the upstream has room; when its breaker has
 * opened meanwhile, the queued ones fail at once instead. */
static void drain_queue(upstream_t *up)
{
    while (up->qhead != NULL && (up->inflight < TG_UP_MAX_INFLIGHT || up->breaker_open)) {
        flight_t *f = up->qhead;
        up->qhead = f->qnext;
        if (up->qhead == NULL)
            up->qtail = NULL;
        if (up->breaker_open) {
            /* as for a new ask: fail at once while open, and once the time
             * is up let one probe through at a time */
            if ((int64_t)now_ms() < up->open_until_ms || up->inflight > 0) {
                count(f->m, "breaker_open");
                complete(f, "breaker_open", NULL, 0, NULL);
            } else {
                start_flight(f);
            }
        } else if (up->inflight < TG_UP_MAX_INFLIGHT) {
            start_flight(f);
        } else {
            f->qnext = up->qhead; /* no room: back at the front */
            up->qhead = f;
            if (up->qtail == NULL)
                up->qtail = f;
            break;
        }
    }
}

static void record_outcome(tg_upmgr_t *m, upstream_t *up, int ok)
{
    pthread_mutex_lock(&m->mu);
    if (ok) {
        if (up->breaker_open)
            tg_info("upstream %s: answering again; breaker closed", up->url);
        up->failures = 0;
        up->breaker_open = 0;
    } else if (++up->failures >= TG_UP_BREAKER_FAILS) {
        if (!up->breaker_open)
            tg_warn("upstream %s: %u failures in a row; not asked for %d s (breaker open)", up->url,
                    up->failures, TG_UP_BREAKER_OPEN_S);
        up->breaker_open = 1;
        up->open_until_ms = (int64_t)now_ms() + TG_UP_BREAKER_OPEN_S * 1000;
    }
    publish_breaker(m, up);
    pthread_mutex_unlock(&m->mu);
}

static void on_fetched(void *arg, tg_fetch_res_t *res)
{
    flight_t *f = arg;
    tg_upmgr_t *m = f->m;
    upstream_t *up = f->up;
    up->inflight--;
    uint64_t ms = now_ms() - f->t0_ms;
    size_t b = 0;
    while (b < N_LATENCY && ms > latency_ms[b])
        b++;
    atomic_fetch_add_explicit(&m->latency[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->latency_sum_ms, ms, memory_order_relaxed);

    const char *reason = NULL;
    tg_ocsp_verify_result_t v;
    memset(&v, 0, sizeof(v));
    if (res->rc != 0) {
        reason = res->reason != NULL ? res->reason : "other";
    } else if (res->http_status != 200) {
        reason = "http_status";
    } else {
        tg_ocsp_verify_opts_t opts = {
            .issuer = f->issuer, .certid = &f->id, .allow_missing_nonce = 1, .now = time(NULL)};
        int rc = tg_ocsp_verify_response(res->body.data, res->body.len, &opts, &v);
        if (rc != 0)
            reason = v.error != NULL ? v.error : "internal_error";
        else if (v.next_update == 0)
            reason = "no_next_update"; /* nothing to cache it by, nor to relay */
        if (reason != NULL && strcmp(reason, "not_successful") == 0)
            reason = "upstream_status";
    }
    int canceled = reason != NULL && strcmp(reason, "canceled") == 0;
    count(m, reason != NULL ? reason : "ok");
    if (!canceled)
        record_outcome(m, up, reason == NULL);
    if (reason == NULL) {
        /* the status goes with the bytes: sign mode, nonce requests and
         * multi-CertID requests answer from it without parsing again */
        tg_cache_ocsp_t rec = {
            .this_update = v.this_update,
            .next_update = v.next_update,
            .produced_at = v.produced_at,
            .source = TG_CACHE_SRC_UPSTREAM,
            .cert_status = (uint8_t)v.status,
            .reason =
                (int8_t)(v.status == TG_CERT_REVOKED ? v.revocation_reason : TG_CRL_REASON_NONE),
            .revocation_time = v.status == TG_CERT_REVOKED ? (int64_t)v.revocation_time : 0,
            .der = TG_SLICE(res->body.data, res->body.len)};
        int rc = tg_cache_put_ocsp(m->cache, &f->id, &rec, NULL, NULL);
        if (rc != 0)
            tg_warn("upstream %s: answer not cached (%s); it is still used once", up->url,
                    tg_strerror(rc));
    } else if (!canceled) {
        tg_info("upstream %s: no usable answer (%s%s%s)", up->url, reason, res->err[0] ? ": " : "",
                res->err);
    }
    complete(f, reason, res->body.data, res->body.len, &v);
    if (!atomic_load(&m->stopping))
        drain_queue(up);
}

static void start_flight(flight_t *f)
{
    tg_upmgr_t *m = f->m;
    upstream_t *up = f->up;
    /* the asker waits timeout_ms at most, time in the queue included */
    int64_t left = f->timeout_ms - (int64_t)(now_ms() - f->created_ms);
    if (left < 10) {
        count(m, "timeout");
        complete(f, "timeout", NULL, 0, NULL);
        return;
    }
    tg_buf_t body;
    tg_buf_init(&body);
    int rc = build_request(&f->id, f->issuer, &body);
    if (rc == 0) {
        tg_fetch_req_t req = {.url = up->url,
                              .method = "POST",
                              .body = TG_SLICE(body.data, body.len),
                              .content_type = "application/ocsp-request",
                              .accept = "application/ocsp-response",
                              .max_bytes = TG_UP_MAX_BYTES,
                              .timeout_ms = (long)left};
        f->t0_ms = now_ms();
        rc = tg_fetch_start(m->fetcher, &req, on_fetched, f);
    }
    tg_buf_free(&body);
    if (rc != 0) {
        count(m, "internal_error");
        complete(f, "internal_error", NULL, 0, NULL);
        return;
    }
    up->inflight++;
    pthread_mutex_lock(&m->mu);
    up->requests++;
    pthread_mutex_unlock(&m->mu);
}

static upstream_t *upstream_of(tg_upmgr_t *m, const char *url)
{
    for (upstream_t *up = m->upstreams; up != NULL; up = up->next) {
        if (strcmp(up->url, url) == 0)
            return up;
    }
    upstream_t *up = calloc(1, sizeof(*up));
    if (up == NULL || (up->url = strdup(url)) == NULL) {
        free(up);
        return NULL;
    }
    pthread_mutex_lock(&m->mu);
    up->next = m->upstreams;
    m->upstreams = up;
    pthread_mutex_unlock(&m->mu);
    return up;
}

static void on_ask(void *arg, int canceled)
{
    ask_msg_t *a = arg;
    tg_upmgr_t *m = a->m;
    waiter_t *wt = a->waiter;
    const char *fail = NULL;
    if (canceled || atomic_load(&m->stopping))
        fail = "canceled";
    else if (m->waiting >= TG_UP_MAX_WAITING)
        fail = "overloaded";
    uint8_t key[KEY_MAX];
    size_t n = tg_certid_key(&a->id, key);
    size_t b = bucket_of(key, n);
    flight_t *f = NULL;
    if (fail == NULL) {
        for (f = m->table[b]; f != NULL; f = f->hnext) {
            if (f->key_len == n && memcmp(f->key, key, n) == 0)
                break;
        }
    }
    if (f != NULL && wt == NULL) /* a refresh, and one is in the air already */
        goto out;
    if (f == NULL && wt == NULL && fail == NULL) {
        uint64_t h = tg_fnv1a(TG_FNV1A_INIT, key, n), t = now_ms();
        size_t slot = (size_t)(h % REFRESH_SLOTS);
        if (m->refresh_hash[slot] == h && t - m->refresh_at[slot] < REFRESH_GAP_MS)
            goto out; /* refreshed a moment ago */
        m->refresh_hash[slot] = h;
        m->refresh_at[slot] = t;
    }
    if (f != NULL) { /* single flight: wait for the one in the air */
        atomic_fetch_add_explicit(&m->joins, 1, memory_order_relaxed);
        wt->next = f->waiters;
        f->waiters = wt;
        m->waiting++;
        goto out;
    }
    upstream_t *up = fail == NULL ? upstream_of(m, a->url) : NULL;
    if (fail == NULL && up == NULL)
        fail = "internal_error";
    if (fail == NULL && up->breaker_open) {
        /* open: fail fast; once the time is up, one probe at a time */
        if ((int64_t)now_ms() < up->open_until_ms || up->inflight > 0)
            fail = "breaker_open";
    }
    if (fail == NULL && (f = calloc(1, sizeof(*f))) == NULL)
        fail = "internal_error";
    if (fail != NULL) {
        count(m, fail);
        if (wt != NULL) {
            wt->res.reason = fail;
            tg_worker_post(wt->w, deliver, wt);
        }
        goto out;
    }
    f->m = m;
    memcpy(f->key, key, n);
    f->key_len = n;
    f->bucket = b;
    f->id = a->id;
    f->issuer = a->issuer;
    a->issuer = NULL;
    f->timeout_ms = a->timeout_ms;
    f->created_ms = now_ms();
    f->up = up;
    f->waiters = wt; /* NULL for a refresh: the answer only goes to the cache */
    if (wt != NULL)
        m->waiting++;
    else
        atomic_fetch_add_explicit(&m->refreshes, 1, memory_order_relaxed);
    f->hnext = m->table[b];
    m->table[b] = f;
    if (up->inflight < TG_UP_MAX_INFLIGHT) {
        start_flight(f);
    } else {
        if (up->qtail != NULL)
            up->qtail->qnext = f;
        else
            up->qhead = f;
        up->qtail = f;
    }
out:
    X509_free(a->issuer);
    free(a->url);
    free(a);
}

/* ---- public ------------------------------------------------------------------ */

int tg_upmgr_new(tg_cache_t *cache, tg_upmgr_t **out_mgr)
{
    tg_upmgr_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return TG_ENOMEM;
    m->cache = cache;
    pthread_mutex_init(&m->mu, NULL);
    int rc = tg_fetcher_new(&m->fetcher);
    if (rc != 0) {
        tg_error("upstream: cannot start the fetcher (%s)", tg_strerror(rc));
        pthread_mutex_destroy(&m->mu);
        free(m);
        return rc;
    }
    *out_mgr = m;
    return 0;
}

/* Hands ask (copied) to the fetcher thread with its waiter (NULL: a
 * refresh). On failure nothing is kept (wt is the caller's). */
static int send_ask(tg_upmgr_t *mgr, waiter_t *wt, const tg_up_ask_t *ask)
{
    ask_msg_t *a = calloc(1, sizeof(*a));
    char *url = strdup(ask->url);
    if (a == NULL || url == NULL) {
        free(a);
        free(url);
        return TG_ENOMEM;
    }
    a->m = mgr;
    a->waiter = wt;
    a->id = *ask->id;
    a->url = url;
    X509_up_ref(ask->issuer);
    a->issuer = ask->issuer;
    a->timeout_ms = ask->timeout_ms;
    int rc = tg_fetcher_call(mgr->fetcher, on_ask, a);
    if (rc != 0) {
        X509_free(a->issuer);
        free(a->url);
        free(a);
    }
    return rc;
}

int tg_upmgr_ask(tg_upmgr_t *mgr, tg_worker_t *w, const tg_up_ask_t *ask, tg_up_done_cb cb,
                 void *arg)
{
    waiter_t *wt = calloc(1, sizeof(*wt));
    if (wt == NULL)
        return TG_ENOMEM;
    wt->w = w;
    wt->cb = cb;
    wt->arg = arg;
    tg_buf_init(&wt->res.der);
    int rc = send_ask(mgr, wt, ask);
    if (rc != 0)
        free(wt);
    return rc;
}

int tg_upmgr_refresh(tg_upmgr_t *mgr, const tg_up_ask_t *ask)
{
    return send_ask(mgr, NULL, ask);
}

int tg_upmgr_breaker_open(tg_upmgr_t *mgr, const char *url)
{
    uint64_t h = tg_fnv1a(TG_FNV1A_INIT, url, strlen(url));
    size_t slot = (size_t)(h % OPEN_SLOTS);
    int64_t until = atomic_load_explicit(&mgr->open_until[slot], memory_order_acquire);
    if (until == 0 || atomic_load_explicit(&mgr->open_hash[slot], memory_order_relaxed) != h ||
        (int64_t)now_ms() >= until)
        return 0;
    return 1;
}

int tg_upmgr_render_metrics(tg_upmgr_t *mgr, tg_buf_t *out)
{
    int rc = tg_metrics_render_family(
        out, "trustgate_upstream_requests_total",
        "Upstream OCSP asks by result (ok, failures, refused answers by reason).", "result",
        result_names, mgr->results, N_RESULTS);
    rc |= tg_buf_printf(out,
                        "# HELP trustgate_upstream_single_flight_joins_total Asks that waited "
                        "for a request already in the air for the same CertID.\n"
                        "# TYPE trustgate_upstream_single_flight_joins_total counter\n"
                        "trustgate_upstream_single_flight_joins_total %llu\n",
                        (unsigned long long)atomic_load(&mgr->joins));
    rc |= tg_buf_printf(out,
                        "# HELP trustgate_upstream_refreshes_total Requests made ahead of an "
                        "answer's nextUpdate because it was asked for.\n"
                        "# TYPE trustgate_upstream_refreshes_total counter\n"
                        "trustgate_upstream_refreshes_total %llu\n",
                        (unsigned long long)atomic_load(&mgr->refreshes));
    rc |= tg_buf_append_str(out, "# HELP trustgate_upstream_latency_seconds Upstream OCSP "
                                 "request durations.\n"
                                 "# TYPE trustgate_upstream_latency_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i <= N_LATENCY; i++) {
        cum += atomic_load_explicit(&mgr->latency[i], memory_order_relaxed);
        if (i < N_LATENCY)
            rc |= tg_buf_printf(out, "trustgate_upstream_latency_seconds_bucket{le=\"%g\"} %llu\n",
                                latency_ms[i] / 1000.0, (unsigned long long)cum);
        else
            rc |=
                tg_buf_printf(out, "trustgate_upstream_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
                              (unsigned long long)cum);
    }
    rc |=
        tg_buf_printf(out,
                      "trustgate_upstream_latency_seconds_sum %.3f\n"
                      "trustgate_upstream_latency_seconds_count %llu\n",
                      (double)atomic_load(&mgr->latency_sum_ms) / 1000.0, (unsigned long long)cum);
    rc |= tg_buf_append_str(out, "# HELP trustgate_upstream_breaker_open 1 while the circuit "
                                 "breaker of an upstream responder is open.\n"
                                 "# TYPE trustgate_upstream_breaker_open gauge\n");
    pthread_mutex_lock(&mgr->mu);
    for (upstream_t *up = mgr->upstreams; up != NULL; up = up->next) {
        /* a label value: no quote, backslash or line break from a list */
        char url[256];
        size_t n = 0;
        for (const char *p = up->url; *p != '\0' && n < sizeof(url) - 1; p++)
            url[n++] = (*p == '"' || *p == '\\' || *p == '\n') ? '_' : *p;
        url[n] = '\0';
        rc |= tg_buf_printf(out, "trustgate_upstream_breaker_open{url=\"%s\"} %d\n", url,
                            up->breaker_open);
    }
    pthread_mutex_unlock(&mgr->mu);
    return rc != 0 ? TG_ENOMEM : 0;
}

void tg_upmgr_free(tg_upmgr_t *mgr)
{
    if (mgr == NULL)
        return;
    atomic_store(&mgr->stopping, 1);
    /* fetches in flight end as canceled (their flights complete); asks not
     * yet taken run canceled */
    tg_fetcher_free(mgr->fetcher);
    for (size_t b = 0; b < BUCKETS; b++) { /* queued, never started */
        while (mgr->table[b] != NULL)
            complete(mgr->table[b], "canceled", NULL, 0, NULL);
    }
    while (mgr->upstreams != NULL) {
        upstream_t *up = mgr->upstreams;
        mgr->upstreams = up->next;
        free(up->url);
        free(up);
    }
    pthread_mutex_destroy(&mgr->mu);
    free(mgr);
}
