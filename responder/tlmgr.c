/* The trust-list manager: see tlmgr.h. */
#include "responder/tlmgr.h"

#include "common/file.h"
#include "common/log.h"
#include "cache/cache.h"
#include "responder/responder_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* A file event is followed by others while an editor or `cp` writes; wait
 * this long for quiet before loading (the rename of a finished file, the
 * recommended way, produces one event). */
#define FILE_SETTLE_MS 5
#define MAX_REASONS 20

typedef struct tl_source tl_source_t;
typedef struct reload_batch reload_batch_t;

/* A reload waiting for a source's next load to finish. */
typedef struct batch_ref {
    reload_batch_t *b;
    struct batch_ref *next;
} batch_ref_t;

typedef struct {
    const char *code;
    _Atomic uint64_t count;
} reason_count_t;

struct tl_source {
    tg_tlmgr_t *mgr;
    char name[TG_CONFIG_NAME_MAX + 1];
    char *source;
    int is_url;
    char *dir, *base; /* file sources: the folder watched and the file name */
    X509 **certs;
    size_t n_certs;
    uint32_t refresh_ms;
    long timeout_ms;
    int allow_file_urls;

    uv_fs_event_t watch;
    uv_timer_t timer;
    int handles_open;

    tg_tl_list_t *accepted;         /* the list in force (owned reference) */
    int busy, again;                /* a load is running; run another after it */
    batch_ref_t *deferred;          /* reloads answered by the next load */
    int retired;                    /* replaced by a configuration reload */
    tg_tl_fetch_cache_t http_cache; /* URL sources: conditional requests */

    /* metrics (main loop writes, workers read) */
    _Atomic uint64_t loads_ok, loads_unchanged;
    _Atomic int64_t last_ok;
    reason_count_t refused[MAX_REASONS];
};

struct reload_batch {
    tg_tlmgr_done_cb cb;
    void *arg;
    int pending, accepted, refused;
};

/* Sources replaced by a configuration reload: their handles close and their
 * loads finish on the loop, so they are freed later (next reload or exit). */
typedef struct retired {
    tl_source_t *sources;
    size_t n;
    struct retired *next;
} retired_t;

struct tg_tlmgr {
    tg_server_t *srv;
    tl_source_t *sources;
    size_t n_sources;
    retired_t *retired;
    pthread_mutex_t lock; /* guards sources against a metrics render */
    int started;
    tg_tl_snapshot_t *snap; /* the snapshot in force (owned reference) */
};

typedef struct {
    uv_work_t work;
    tl_source_t *src;
    batch_ref_t *batches; /* reloads this load answers */
    tg_buf_t bytes;
    int not_modified; /* HTTP 304, or the very bytes of the list in force */
    int have_known;
    uint8_t known_sha256[32]; /* the list in force, when have_known */
    tg_tl_list_t *list;
    tg_tl_refusal_t why;
    int rc;
    tg_tl_fetch_cache_t http_cache; /* copy in, updated copy out */
} load_job_t;

/* ---- helpers ------------------------------------------------------------ */

static void count_refusal(tl_source_t *s, const char *code)
{
    pthread_mutex_lock(&s->mgr->lock); /* /metrics reads the codes */
    for (size_t i = 0; i < MAX_REASONS; i++) {
        if (s->refused[i].code == NULL)
            s->refused[i].code = code; /* static strings */
        if (strcmp(s->refused[i].code, code) == 0) {
            atomic_fetch_add(&s->refused[i].count, 1);
            break;
        }
    }
    pthread_mutex_unlock(&s->mgr->lock);
}

/* Reads a file source; err says why not. */
static int read_file(const char *path, tg_buf_t *out, char *err, size_t err_len)
{
    int rc = tg_file_read(path, TG_TL_MAX_BYTES, out);
    if (rc == TG_ETOOBIG)
        snprintf(err, err_len, "%s: larger than %zu bytes", path, (size_t)TG_TL_MAX_BYTES);
    else if (rc != 0)
        snprintf(err, err_len, "%s: %s", path, rc == TG_EIO ? strerror(errno) : tg_strerror(rc));
    return rc;
}

/* ---- fetching (thread pool) -------------------------------------------- */

typedef struct {
    tg_buf_t *out;
    tg_tl_fetch_cache_t *cache;
    tg_tl_fetch_cache_t seen;
} fetch_ctx_t;

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    fetch_ctx_t *f = arg;
    size_t n = size * nmemb;
    if (f->out->len + n > TG_TL_MAX_BYTES || tg_buf_append(f->out, p, n) != 0)
        return 0; /* aborts the transfer */
    return n;
}

/* Keeps ETag and Last-Modified for the next conditional request. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    fetch_ctx_t *f = arg;
    size_t n = size * nmemb;
    const char *names[2] = {"etag:", "last-modified:"};
    char *dst[2] = {f->seen.etag, f->seen.last_modified};
    size_t cap[2] = {sizeof(f->seen.etag), sizeof(f->seen.last_modified)};
    for (int i = 0; i < 2; i++) {
        size_t l = strlen(names[i]);
        if (n <= l || strncasecmp(p, names[i], l) != 0)
            continue;
        size_t a = l, b = n;
        while (a < b && (p[a] == ' ' || p[a] == '\t'))
            a++;
        while (b > a && (p[b - 1] == '\r' || p[b - 1] == '\n' || p[b - 1] == ' '))
            b--;
        if (b - a < cap[i]) {
            memcpy(dst[i], p + a, b - a);
            dst[i][b - a] = '\0';
        }
    }
    return n;
}

static int fetch_url(const char *url, int allow_file_urls, long timeout_ms,
                     tg_tl_fetch_cache_t *cache, tg_buf_t *out, char *err, size_t err_len)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return TG_ENOMEM;
    fetch_ctx_t f = {.out = out, .cache = cache};
    struct curl_slist *hdrs = NULL;
    char line[512];
    if (cache != NULL && cache->etag[0]) {
        snprintf(line, sizeof(line), "If-None-Match: %s", cache->etag);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (cache != NULL && cache->last_modified[0]) {
        snprintf(line, sizeof(line), "If-Modified-Since: %s", cache->last_modified);
        hdrs = curl_slist_append(hdrs, line);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, allow_file_urls ? "http,https,file" : "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)TG_TL_MAX_BYTES);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &f);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "trustgate/" TG_VERSION);
    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK) {
        snprintf(err, err_len, "%s: %s", url, curl_easy_strerror(cc));
        return TG_EIO;
    }
    if (code == 304 && cache != NULL) {
        cache->not_modified = 1;
        return 0;
    }
    if (code != 0 && code != 200) {
        snprintf(err, err_len, "%s: HTTP %ld", url, code);
        return TG_EIO;
    }
    if (cache != NULL) {
        memcpy(cache->etag, f.seen.etag, sizeof(cache->etag));
        memcpy(cache->last_modified, f.seen.last_modified, sizeof(cache->last_modified));
        cache->not_modified = 0;
    }
    return 0;
}

int tg_tl_fetch_source(const char *source, int is_url, int allow_file_urls, long timeout_ms,
                       tg_tl_fetch_cache_t *cache, tg_buf_t *out, char *err, size_t err_len)
{
    if (cache != NULL)
        cache->not_modified = 0;
    if (is_url)
        return fetch_url(source, allow_file_urls, timeout_ms, cache, out, err, err_len);
    return read_file(source, out, err, err_len);
}

static void load_work(uv_work_t *w)
{
    load_job_t *job = w->data;
    tl_source_t *s = job->src;
    char err[256] = "";
    job->rc = tg_tl_fetch_source(s->source, s->is_url, s->allow_file_urls, s->timeout_ms,
                                 &job->http_cache, &job->bytes, err, sizeof(err));
    if (job->rc == 0 && job->http_cache.not_modified)
        job->not_modified = 1;
    if (job->rc != 0) {
        job->why.code = job->rc == TG_ETOOBIG ? "too_big" : "unavailable";
        snprintf(job->why.message, sizeof(job->why.message), "%s", err);
        return;
    }
    if (job->not_modified)
        return;
    /* The list in force, byte for byte (a reload, a touched file, a server
     * without ETags): verifying it again would change nothing. */
    uint8_t md[32];
    unsigned int md_len = 0;
    if (job->have_known &&
        EVP_Digest(job->bytes.data, job->bytes.len, md, &md_len, EVP_sha256(), NULL) == 1 &&
        md_len == sizeof(md) && memcmp(md, job->known_sha256, sizeof(md)) == 0) {
        job->not_modified = 1;
        return;
    }
    job->rc =
        tg_tl_load(job->bytes.data, job->bytes.len, s->certs, s->n_certs, &job->why, &job->list);
}

/* ---- accepting ----------------------------------------------------------- */

/* Builds and publishes a snapshot of every accepted list. */
static int publish(tg_tlmgr_t *mgr)
{
    tg_tl_list_t *lists[TG_CONFIG_MAX_TRUSTLISTS];
    const char *names[TG_CONFIG_MAX_TRUSTLISTS];
    size_t n = 0;
    for (size_t i = 0; i < mgr->n_sources; i++) {
        if (mgr->sources[i].accepted == NULL)
            continue;
        lists[n] = mgr->sources[i].accepted;
        names[n] = mgr->sources[i].name;
        n++;
    }
    tg_tl_snapshot_t *snap = NULL;
    int rc = tg_tl_snapshot_new(lists, names, n, mgr->snap, &snap);
    if (rc != 0)
        return rc;
    tg_server_t *srv = mgr->srv;
    rc = tg_server_publish(srv, srv->gen->cfgref, snap);
    if (rc != 0) {
        tg_tl_snapshot_unref(snap);
        return rc;
    }
    tg_tl_snapshot_unref(mgr->snap);
    mgr->snap = snap;
    return 0;
}

static void log_counts(tg_tlmgr_t *mgr, const tl_source_t *s)
{
    size_t idx;
    tg_tl_counts_t c;
    if (tg_tl_snapshot_list_index(mgr->snap, s->name, &idx) != 0 ||
        tg_tl_snapshot_counts(mgr->snap, idx, time(NULL), &c) != 0)
        return;
    tg_info("trust list %s: sequence %llu in force (%s, issued %lld): CAs active %zu, suspended "
            "%zu, terminated %zu; categories active %zu, suspended %zu, terminated %zu%s",
            s->name, (unsigned long long)s->accepted->sequence, s->accepted->territory,
            (long long)s->accepted->issued, c.cas[TG_TL_ACTIVE], c.cas[TG_TL_SUSPENDED],
            c.cas[TG_TL_TERMINATED], c.services[TG_TL_ACTIVE], c.services[TG_TL_SUSPENDED],
            c.services[TG_TL_TERMINATED],
            tg_tl_list_is_stale(s->accepted, time(NULL)) ? "; STALE: past its NextUpdate" : "");
}

/* Writer-thread callback of the cache: only failures are worth a line. The
 * name is the source's (static for the source's life). */
static void persisted(void *arg, int status)
{
    if (status != 0)
        tg_warn("trust list %s: not persisted in the cache: %s", (const char *)arg,
                tg_strerror(status));
}

/* Decides about a verified list: rollback check, no-op when unchanged, then
 * swap in, publish, persist. Returns 1 accepted (or unchanged), 0 refused. */
static int accept_list(tl_source_t *s, tg_tl_list_t *list, int persist)
{
    tg_tlmgr_t *mgr = s->mgr;
    if (s->accepted != NULL && memcmp(s->accepted->sha256, list->sha256, 32) == 0) {
        atomic_fetch_add(&s->loads_unchanged, 1);
        tg_tl_list_free(list);
        return 1;
    }
    tg_tl_refusal_t why = {0};
    if (tg_tl_check_successor(mgr->snap, s->name, list, &why) != 0) {
        count_refusal(s, why.code ? why.code : "rollback");
        tg_warn("trust list %s: refused (%s): %s; keeping sequence %llu", s->name,
                why.code ? why.code : "rollback", why.message,
                (unsigned long long)(s->accepted ? s->accepted->sequence : 0));
        tg_tl_list_free(list);
        return 0;
    }
    tg_tl_list_t *old = s->accepted;
    s->accepted = list;
    if (publish(mgr) != 0) {
        s->accepted = old;
        tg_tl_list_free(list);
        count_refusal(s, "internal");
        return 0;
    }
    tg_tl_list_free(old);
    atomic_fetch_add(&s->loads_ok, 1);
    atomic_store(&s->last_ok, (int64_t)time(NULL));
    log_counts(mgr, s);
    if (persist) {
        int rc = tg_cache_put_trustlist(mgr->srv->cache, TG_SLICE(s->name, strlen(s->name)),
                                        TG_SLICE(list->raw, list->raw_len), persisted, s->name);
        if (rc != 0)
            tg_warn("trust list %s: cannot queue it for the cache (%s); it will not survive a "
                    "restart without its source",
                    s->name, tg_strerror(rc));
    }
    return 1;
}

static void start_load(tl_source_t *s, reload_batch_t *batch);

static void batch_done(reload_batch_t *b, int accepted)
{
    if (b == NULL)
        return;
    if (accepted)
        b->accepted++;
    else
        b->refused++;
    if (--b->pending > 0)
        return;
    if (b->cb)
        b->cb(b->arg, b->accepted, b->refused);
    free(b);
}

static void complete_refs(batch_ref_t *r, int ok)
{
    while (r != NULL) {
        batch_ref_t *next = r->next;
        batch_done(r->b, ok);
        free(r);
        r = next;
    }
}

static void load_done(uv_work_t *w, int status)
{
    load_job_t *job = w->data;
    tl_source_t *s = job->src;
    s->busy = 0;
    int ok = 0;
    if (status != 0) {
        job->rc = TG_EUV;
        job->why.code = "internal";
    }
    if (s->retired) {
        /* replaced by a configuration reload: its result no longer counts,
         * and must neither be published nor persisted */
        tg_tl_list_free(job->list);
    } else if (job->rc == 0 && job->not_modified) {
        atomic_fetch_add(&s->loads_unchanged, 1);
        ok = 1;
    } else if (job->rc == 0) {
        ok = accept_list(s, job->list, 1);
        if (ok)
            s->http_cache = job->http_cache; /* conditional from now on */
    } else {
        count_refusal(s, job->why.code ? job->why.code : "internal");
        tg_warn("trust list %s: refused (%s): %s; keeping %s", s->name,
                job->why.code ? job->why.code : "internal", job->why.message,
                s->accepted ? "the list in force" : "no list (none accepted yet)");
    }
    batch_ref_t *batches = job->batches;
    tg_buf_free(&job->bytes);
    free(job);
    complete_refs(batches, ok);
    if (s->retired) {
        complete_refs(s->deferred, 0);
        s->deferred = NULL;
        s->again = 0;
    } else if (s->again) {
        s->again = 0;
        start_load(s, NULL); /* answers the reloads deferred meanwhile */
    }
}

/* Loads a source in the thread pool. A reload (batch) is answered by the
 * load that starts after it was asked for: when a load is already running
 * it may have read the old bytes, so the batch waits for the next one. */
static void start_load(tl_source_t *s, reload_batch_t *batch)
{
    if (batch != NULL) {
        batch_ref_t *ref = calloc(1, sizeof(*ref));
        if (ref == NULL) {
            batch_done(batch, 0);
        } else {
            ref->b = batch;
            ref->next = s->deferred;
            s->deferred = ref;
        }
    }
    if (s->retired) {
        complete_refs(s->deferred, 0);
        s->deferred = NULL;
        return;
    }
    if (s->busy) {
        s->again = 1;
        return;
    }
    load_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        complete_refs(s->deferred, 0);
        s->deferred = NULL;
        return;
    }
    job->src = s;
    job->batches = s->deferred;
    s->deferred = NULL;
    job->http_cache = s->http_cache;
    if (s->accepted != NULL) {
        job->have_known = 1;
        memcpy(job->known_sha256, s->accepted->sha256, sizeof(job->known_sha256));
    }
    job->work.data = job;
    if (uv_queue_work(&s->mgr->srv->loop, &job->work, load_work, load_done) != 0) {
        complete_refs(job->batches, 0);
        free(job);
        return;
    }
    s->busy = 1;
}

/* Copies the list persisted in the cache for s into out. Returns 0,
 * TG_ENOTFOUND (nothing persisted yet) or another error. */
static int read_persisted(tl_source_t *s, tg_buf_t *out)
{
    tg_cache_reader_t *r = NULL;
    int rc = tg_cache_reader_new(s->mgr->srv->cache, &r);
    if (rc != 0)
        return rc;
    rc = tg_cache_rd_begin(r);
    if (rc == 0) {
        tg_slice_t xml;
        rc = tg_cache_get_trustlist(r, TG_SLICE(s->name, strlen(s->name)), &xml);
        if (rc == 0 && tg_buf_append(out, xml.p, xml.n) != 0)
            rc = TG_ENOMEM; /* copied: the slice lives only in the transaction */
        tg_cache_rd_end(r);
    }
    tg_cache_reader_free(r);
    return rc;
}

/* Synchronous load at start-up (before the loop runs): from the cache
 * (from_cache) or from the source. */
static void load_now(tl_source_t *s, int from_cache)
{
    load_job_t job;
    memset(&job, 0, sizeof(job));
    job.src = s;
    job.work.data = &job;
    if (from_cache) {
        job.rc = read_persisted(s, &job.bytes);
        if (job.rc == TG_ENOTFOUND) {
            tg_buf_free(&job.bytes);
            return; /* nothing persisted yet */
        }
        if (job.rc == 0)
            job.rc = tg_tl_load(job.bytes.data, job.bytes.len, s->certs, s->n_certs, &job.why,
                                &job.list);
        else
            job.why.code = "internal";
    } else {
        load_work(&job.work);
    }
    if (job.rc == 0 && job.list != NULL) {
        accept_list(s, job.list, !from_cache);
    } else if (job.rc != 0) {
        count_refusal(s, job.why.code ? job.why.code : "internal");
        tg_warn("trust list %s: %s refused (%s): %s", s->name,
                from_cache ? "the copy in the cache" : s->source,
                job.why.code ? job.why.code : "internal", job.why.message);
    }
    tg_buf_free(&job.bytes);
}

/* ---- sources ------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
    tl_source_t *s = t->data;
    start_load(s, NULL);
}

static void on_file_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)events;
    tl_source_t *s = h->data;
    if (status < 0) {
        tg_warn("trust list %s: watching %s: %s", s->name, s->dir, uv_strerror(status));
        return;
    }
    /* the folder is watched, so a file replaced by rename is seen too */
    if (filename != NULL && strcmp(filename, s->base) != 0)
        return;
    uv_timer_start(&s->timer, on_timer, FILE_SETTLE_MS, 0);
}

static void source_closed(uv_handle_t *h)
{
    tl_source_t *s = h->data;
    s->handles_open--;
}

static void source_clear(tl_source_t *s)
{
    tg_tl_list_free(s->accepted);
    tg_tl_certs_free(s->certs, s->n_certs);
    free(s->source);
    free(s->dir);
    free(s->base);
    memset(s, 0, sizeof(*s));
}

/* Fills s from the configuration of one list. Returns 0 or an error. */
static int source_init(tg_tlmgr_t *mgr, tl_source_t *s, const tg_config_t *cfg,
                       const tg_config_trustlist_t *tl)
{
    s->mgr = mgr;
    snprintf(s->name, sizeof(s->name), "%s", tl->name);
    s->is_url = tl->source_is_url;
    s->refresh_ms = tl->refresh_s * 1000u;
    s->timeout_ms = (long)cfg->upstream_timeout_ms;
    s->allow_file_urls = cfg->allow_file_urls;
    if ((s->source = strdup(tl->source)) == NULL)
        return TG_ENOMEM;
    if (!s->is_url) {
        char *a = strdup(tl->source), *b = strdup(tl->source);
        if (a == NULL || b == NULL) {
            free(a);
            free(b);
            return TG_ENOMEM;
        }
        s->dir = strdup(dirname(a));
        s->base = strdup(basename(b));
        free(a);
        free(b);
        if (s->dir == NULL || s->base == NULL)
            return TG_ENOMEM;
    }
    for (size_t i = 0; i < tl->n_operator_certs; i++) {
        int rc = tg_tl_certs_load_pem(tl->operator_certs[i], &s->certs, &s->n_certs);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Loads what can be had now: the persisted copy first (so a restart
 * without the network serves at once), then a file source. URL sources are
 * fetched by tg_tlmgr_start, off the start-up path. */
static void source_initial_load(tl_source_t *s)
{
    load_now(s, 1);
    if (!s->is_url)
        load_now(s, 0);
    if (s->accepted == NULL)
        tg_warn("trust list %s: no list in force; its issuers are answered unauthorized", s->name);
}

static int source_start(tl_source_t *s)
{
    uv_loop_t *loop = &s->mgr->srv->loop;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->handles_open = 1;
    if (s->is_url) {
        /* first fetch at once, then every refresh_s */
        uv_timer_start(&s->timer, on_timer, 0, s->refresh_ms);
        return 0;
    }
    uv_fs_event_init(loop, &s->watch);
    s->watch.data = s;
    s->handles_open++;
    int rc = uv_fs_event_start(&s->watch, on_file_event, s->dir, 0);
    if (rc != 0) {
        tg_error("trust list %s: cannot watch %s: %s", s->name, s->dir, uv_strerror(rc));
        return TG_EUV;
    }
    return 0;
}

static void source_stop(tl_source_t *s)
{
    if (s->handles_open == 0)
        return;
    uv_close((uv_handle_t *)&s->timer, source_closed);
    if (!s->is_url)
        uv_close((uv_handle_t *)&s->watch, source_closed);
}

/* ---- the manager ------------------------------------------------------- */

int tg_tlmgr_new(tg_server_t *srv, tg_tlmgr_t **out_mgr)
{
    const tg_config_t *cfg = srv->gen->cfgref->cfg;
    tg_tlmgr_t *mgr = calloc(1, sizeof(*mgr));
    if (mgr == NULL)
        return TG_ENOMEM;
    mgr->srv = srv;
    pthread_mutex_init(&mgr->lock, NULL);
    mgr->sources = calloc(TG_CONFIG_MAX_TRUSTLISTS, sizeof(tl_source_t));
    if (mgr->sources == NULL) {
        tg_tlmgr_free(mgr);
        return TG_ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_trustlists; i++) {
        int rc = source_init(mgr, &mgr->sources[i], cfg, &cfg->trustlists[i]);
        mgr->n_sources++;
        if (rc != 0) {
            tg_tlmgr_free(mgr);
            return rc;
        }
    }
    for (size_t i = 0; i < mgr->n_sources; i++)
        source_initial_load(&mgr->sources[i]);
    *out_mgr = mgr;
    return 0;
}

int tg_tlmgr_start(tg_tlmgr_t *mgr)
{
    mgr->started = 1;
    for (size_t i = 0; i < mgr->n_sources; i++) {
        int rc = source_start(&mgr->sources[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void tg_tlmgr_reload(tg_tlmgr_t *mgr, tg_tlmgr_done_cb cb, void *arg)
{
    if (mgr->n_sources == 0) {
        if (cb)
            cb(arg, 0, 0);
        return;
    }
    reload_batch_t *b = calloc(1, sizeof(*b));
    if (b != NULL) {
        b->cb = cb;
        b->arg = arg;
        b->pending = (int)mgr->n_sources;
    } else if (cb) {
        cb(arg, 0, (int)mgr->n_sources);
    }
    for (size_t i = 0; i < mgr->n_sources; i++)
        start_load(&mgr->sources[i], b);
}

static int retired_idle(const retired_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->sources[i].handles_open > 0 || r->sources[i].busy)
            return 0;
    }
    return 1;
}

static void free_retired(tg_tlmgr_t *mgr, int all)
{
    for (retired_t **pp = &mgr->retired; *pp != NULL;) {
        retired_t *r = *pp;
        if (!all && !retired_idle(r)) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        for (size_t i = 0; i < r->n; i++)
            source_clear(&r->sources[i]);
        free(r->sources);
        free(r);
    }
}

void tg_tlmgr_reconfigure(tg_tlmgr_t *mgr, tg_tlmgr_done_cb cb, void *arg)
{
    free_retired(mgr, 0);
    const tg_config_t *cfg = mgr->srv->gen->cfgref->cfg;
    tl_source_t *fresh = calloc(TG_CONFIG_MAX_TRUSTLISTS, sizeof(tl_source_t));
    retired_t *r = calloc(1, sizeof(*r));
    if (fresh == NULL || r == NULL) {
        free(fresh);
        free(r);
        tg_error("trust lists: out of memory; keeping the previous sources");
        tg_tlmgr_reload(mgr, cb, arg);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_trustlists; i++, n++) {
        if (source_init(mgr, &fresh[i], cfg, &cfg->trustlists[i]) != 0) {
            tg_error("trust list %s: cannot set up; keeping the previous sources",
                     cfg->trustlists[i].name);
            for (size_t j = 0; j <= i; j++)
                source_clear(&fresh[j]);
            free(fresh);
            free(r);
            tg_tlmgr_reload(mgr, cb, arg);
            return;
        }
        /* keep the list in force when it still verifies (pins may change) */
        for (size_t j = 0; j < mgr->n_sources; j++) {
            tl_source_t *old = &mgr->sources[j];
            if (strcmp(old->name, fresh[i].name) != 0 || old->accepted == NULL)
                continue;
            tg_tl_refusal_t why = {0};
            tg_tl_list_t *again = NULL;
            if (tg_tl_load(old->accepted->raw, old->accepted->raw_len, fresh[i].certs,
                           fresh[i].n_certs, &why, &again) == 0)
                fresh[i].accepted = again;
            else
                tg_warn("trust list %s: the list in force does not verify with the new "
                        "operator certificates (%s); dropped",
                        fresh[i].name, why.code ? why.code : "?");
        }
    }
    for (size_t j = 0; j < mgr->n_sources; j++) {
        mgr->sources[j].retired = 1;
        source_stop(&mgr->sources[j]);
        complete_refs(mgr->sources[j].deferred, 0);
        mgr->sources[j].deferred = NULL;
    }
    /* the old sources' handles close on the loop; keep them until then */
    tl_source_t *old_sources = mgr->sources;
    size_t old_n = mgr->n_sources;
    pthread_mutex_lock(&mgr->lock);
    mgr->sources = fresh;
    mgr->n_sources = n;
    pthread_mutex_unlock(&mgr->lock);
    if (publish(mgr) != 0)
        tg_error("trust lists: cannot publish after the reload");
    if (mgr->started) {
        for (size_t i = 0; i < n; i++)
            (void)source_start(&fresh[i]); /* logged */
    }
    r->sources = old_sources;
    r->n = old_n;
    r->next = mgr->retired;
    mgr->retired = r;
    tg_tlmgr_reload(mgr, cb, arg);
}

static int render_source(const tl_source_t *s, const tg_tl_snapshot_t *snap, time_t now,
                         tg_buf_t *out)
{
    int rc = 0;
    const char *n = s->name;
    rc |= tg_buf_printf(out,
                        "trustgate_trustlist_loads_total{list=\"%s\",result=\"accepted\"} %llu\n",
                        n, (unsigned long long)atomic_load(&s->loads_ok));
    rc |= tg_buf_printf(out,
                        "trustgate_trustlist_loads_total{list=\"%s\",result=\"unchanged\"} %llu\n",
                        n, (unsigned long long)atomic_load(&s->loads_unchanged));
    for (size_t i = 0; i < MAX_REASONS && s->refused[i].code != NULL; i++)
        rc |= tg_buf_printf(
            out, "trustgate_trustlist_refused_total{list=\"%s\",reason=\"%s\"} %llu\n", n,
            s->refused[i].code, (unsigned long long)atomic_load(&s->refused[i].count));
    rc |=
        tg_buf_printf(out, "trustgate_trustlist_last_success_timestamp_seconds{list=\"%s\"} %lld\n",
                      n, (long long)atomic_load(&s->last_ok));
    size_t idx;
    if (snap == NULL || tg_tl_snapshot_list_index(snap, n, &idx) != 0) {
        rc |= tg_buf_printf(out, "trustgate_trustlist_loaded{list=\"%s\"} 0\n", n);
        return rc;
    }
    const tg_tl_list_t *l = tg_tl_snapshot_list(snap, idx);
    rc |= tg_buf_printf(out, "trustgate_trustlist_loaded{list=\"%s\"} 1\n", n);
    rc |= tg_buf_printf(out, "trustgate_trustlist_sequence{list=\"%s\"} %llu\n", n,
                        (unsigned long long)l->sequence);
    rc |= tg_buf_printf(out, "trustgate_trustlist_issued_timestamp_seconds{list=\"%s\"} %lld\n", n,
                        (long long)l->issued);
    rc |=
        tg_buf_printf(out, "trustgate_trustlist_next_update_timestamp_seconds{list=\"%s\"} %lld\n",
                      n, (long long)l->next_update);
    rc |= tg_buf_printf(out, "trustgate_trustlist_stale{list=\"%s\"} %d\n", n,
                        tg_tl_list_is_stale(l, now));
    tg_tl_counts_t c;
    if (tg_tl_snapshot_counts(snap, idx, now, &c) == 0) {
        for (int st = 0; st < TG_TL_STATUS_COUNT; st++) {
            rc |= tg_buf_printf(out, "trustgate_trustlist_cas{list=\"%s\",status=\"%s\"} %zu\n", n,
                                tg_tl_status_name((tg_tl_status_t)st), c.cas[st]);
            rc |= tg_buf_printf(out,
                                "trustgate_trustlist_categories{list=\"%s\",status=\"%s\"} %zu\n",
                                n, tg_tl_status_name((tg_tl_status_t)st), c.services[st]);
        }
    }
    return rc;
}

int tg_tlmgr_render_metrics(tg_tlmgr_t *mgr, tg_buf_t *out)
{
    tg_gen_t *gen = tg_server_gen_acquire(mgr->srv);
    time_t now = time(NULL);
    int rc = tg_buf_append_str(
        out, "# HELP trustgate_trustlist_loads_total Trust-list loads, by result.\n"
             "# TYPE trustgate_trustlist_loads_total counter\n"
             "# HELP trustgate_trustlist_refused_total Trust lists refused, by reason; the "
             "last good list stays in force.\n"
             "# TYPE trustgate_trustlist_refused_total counter\n"
             "# TYPE trustgate_trustlist_last_success_timestamp_seconds gauge\n"
             "# TYPE trustgate_trustlist_loaded gauge\n"
             "# TYPE trustgate_trustlist_sequence gauge\n"
             "# TYPE trustgate_trustlist_issued_timestamp_seconds gauge\n"
             "# TYPE trustgate_trustlist_next_update_timestamp_seconds gauge\n"
             "# HELP trustgate_trustlist_stale 1 when the list in force is past its NextUpdate.\n"
             "# TYPE trustgate_trustlist_stale gauge\n"
             "# HELP trustgate_trustlist_cas CAs on the list in force, by status now.\n"
             "# TYPE trustgate_trustlist_cas gauge\n"
             "# HELP trustgate_trustlist_categories Categories (TSPServices), by status now.\n"
             "# TYPE trustgate_trustlist_categories gauge\n");
    pthread_mutex_lock(&mgr->lock);
    for (size_t i = 0; i < mgr->n_sources; i++)
        rc |= render_source(&mgr->sources[i], gen->snap, now, out);
    pthread_mutex_unlock(&mgr->lock);
    tg_gen_unref(gen);
    return rc == 0 ? 0 : TG_ENOMEM;
}

void tg_tlmgr_stop(tg_tlmgr_t *mgr)
{
    if (mgr == NULL)
        return;
    for (size_t i = 0; i < mgr->n_sources; i++)
        source_stop(&mgr->sources[i]);
}

void tg_tlmgr_free(tg_tlmgr_t *mgr)
{
    if (mgr == NULL)
        return;
    free_retired(mgr, 1);
    for (size_t i = 0; mgr->sources != NULL && i < mgr->n_sources; i++)
        source_clear(&mgr->sources[i]);
    free(mgr->sources);
    tg_tl_snapshot_unref(mgr->snap);
    pthread_mutex_destroy(&mgr->lock);
    free(mgr);
}
