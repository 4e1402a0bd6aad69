/* The fetcher: see fetch.h.
 *
 * One thread runs one libuv loop. curl's multi handle tells us which
 * sockets to watch (on_socket: one uv_poll_t per socket, found again through
 * curl_multi_assign) and when to wake it (on_timer_set: one uv_timer_t);
 * we tell it what happened with curl_multi_socket_action and collect
 * finished transfers with curl_multi_info_read. Other threads post calls to
 * a mutex-protected FIFO and wake the loop with a uv_async_t; stopping is
 * such a wake-up with f->stopping set. */
#include "fetch/fetch.h"

#include "common/clock.h"
#include "common/log.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* With no max_bytes, a Content-Length beyond this is not trusted for the
 * up-front allocation (the peer controls it); the buffer grows as bytes
 * actually arrive instead. */
#define PREALLOC_MAX ((size_t)64 << 20)

typedef struct call {
    struct call *next;
    void (*fn)(void *arg, int canceled);
    void *arg;
} call_t;

/* One socket curl asked us to watch. Freed in its close callback. */
typedef struct sock_ctx {
    uv_poll_t poll;
    tg_fetcher_t *f;
    curl_socket_t fd;
    struct sock_ctx *prev, *next;
} sock_ctx_t;

/* One fetch in flight. */
typedef struct fetch {
    tg_fetcher_t *f;
    CURL *h;
    struct curl_slist *hdrs;
    tg_fetch_cb cb;
    void *arg;
    size_t max_bytes;
    uint64_t t0_ns;
    int is_file;
    int too_big; /* the write callback refused a chunk over max_bytes */
    int nomem;   /* the write callback could not store a chunk */
    int sized;   /* the body was pre-sized from Content-Length */
    struct fetch *prev, *next;
    tg_fetch_res_t res;
    char errbuf[CURL_ERROR_SIZE];
} fetch_t;

struct tg_fetcher {
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t timer;
    CURLM *multi;
    pthread_t thread;
    uv_sem_t started;

    /* Guarded by mu; stopping is also read without it by tg_fetch_start. */
    pthread_mutex_t mu;
    call_t *head, *tail;
    atomic_int stopping;

    /* Fetcher thread only. */
    int closing;
    fetch_t *fetches;
    sock_ctx_t *socks;

    atomic_uint_fast64_t n_started;
    atomic_uint_fast64_t n_completed[TG_FETCH_REASON_COUNT];
    atomic_uint_fast64_t n_bytes;
    atomic_uint_fast64_t n_in_flight;
};

static const char *const reason_names[TG_FETCH_REASON_COUNT] = {
    [TG_FETCH_OK] = "ok",
    [TG_FETCH_NOT_MODIFIED] = "not_modified",
    [TG_FETCH_HTTP_STATUS] = "http_status",
    [TG_FETCH_TIMEOUT] = "timeout",
    [TG_FETCH_TOO_BIG] = "too_big",
    [TG_FETCH_CONNECT] = "connect",
    [TG_FETCH_DNS] = "dns",
    [TG_FETCH_TLS] = "tls",
    [TG_FETCH_PROTOCOL] = "protocol",
    [TG_FETCH_FILE] = "file",
    [TG_FETCH_CANCELED] = "canceled",
    [TG_FETCH_OTHER] = "other",
};

const char *tg_fetch_reason_name(tg_fetch_reason_t r)
{
    if ((unsigned)r >= TG_FETCH_REASON_COUNT)
        return reason_names[TG_FETCH_OTHER];
    return reason_names[r];
}

static void count(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---- sockets and timer: curl → libuv ------------------------------------ */

static void check_done(tg_fetcher_t *f);

static void on_sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sock_close(sock_ctx_t *c)
{
    tg_fetcher_t *f = c->f;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        f->socks = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    /* uv_close stops the poll and removes the fd from epoll at once, so curl
     * may close the fd and reuse its number right after. */
    uv_close((uv_handle_t *)&c->poll, on_sock_closed);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_ctx_t *c = p->data;
    tg_fetcher_t *f = c->f;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    /* c may be closed inside this call (CURL_POLL_REMOVE); not used after. */
    curl_multi_socket_action(f->multi, c->fd, flags, &running);
    check_done(f);
}

/* CURLMOPT_SOCKETFUNCTION. */
static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    tg_fetcher_t *f = userp;
    sock_ctx_t *c = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (c != NULL) {
            curl_multi_assign(f->multi, s, NULL);
            sock_close(c);
        }
        return 0;
    }
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL)
            return -1;
        int rc = uv_poll_init_socket(&f->loop, &c->poll, s);
        if (rc != 0) {
            tg_error("fetch: uv_poll_init_socket(%d): %s", (int)s, uv_strerror(rc));
            free(c);
            return -1;
        }
        c->poll.data = c;
        c->f = f;
        c->fd = s;
        c->next = f->socks;
        if (f->socks != NULL)
            f->socks->prev = c;
        f->socks = c;
        curl_multi_assign(f->multi, s, c);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    int rc = uv_poll_start(&c->poll, events, on_poll);
    if (rc != 0) {
        tg_error("fetch: uv_poll_start(%d): %s", (int)s, uv_strerror(rc));
        return -1;
    }
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    tg_fetcher_t *f = t->data;
    int running;
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(f);
}

/* CURLMOPT_TIMERFUNCTION: one timer, re-armed as curl asks. Even a zero
 * timeout goes through the loop: curl must not be re-entered from here. */
static int on_timer_set(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    tg_fetcher_t *f = userp;
    if (uv_is_closing((uv_handle_t *)&f->timer))
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&f->timer);
    else if (uv_timer_start(&f->timer, on_timeout, (uint64_t)timeout_ms, 0) != 0)
        return -1;
    return 0;
}

/* ---- one transfer: curl callbacks ----------------------------------------- */

/* Copies the header value at p[0..n) into dst (cap bytes with the NUL),
 * trimmed of blanks and the line end; a value that does not fit is dropped
 * rather than truncated (a cut ETag would be a wrong one). */
static void take_value(const char *p, size_t n, char *dst, size_t cap)
{
    size_t a = 0;
    size_t b = n;
    while (a < b && (p[a] == ' ' || p[a] == '\t'))
        a++;
    while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t' || p[b - 1] == '\r' || p[b - 1] == '\n'))
        b--;
    if (b - a >= cap) {
        dst[0] = '\0';
        return;
    }
    memcpy(dst, p + a, b - a);
    dst[b - a] = '\0';
}

/* CURLOPT_HEADERFUNCTION: called once per header line of every response
 * (1xx, redirects and the final one); a status line starts afresh. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    fetch_t *x = arg;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        x->res.etag[0] = '\0';
        x->res.last_modified[0] = '\0';
        x->res.content_type[0] = '\0';
        x->res.body.len = 0;
        x->sized = 0;
        return n;
    }
    const char *colon = memchr(p, ':', n);
    if (colon == NULL)
        return n;
    size_t name_len = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vn = n - name_len - 1;
    tg_slice_t name = TG_SLICE(p, name_len);
    if (tg_slice_eq_str_nocase(name, "etag"))
        take_value(v, vn, x->res.etag, sizeof(x->res.etag));
    else if (tg_slice_eq_str_nocase(name, "last-modified"))
        take_value(v, vn, x->res.last_modified, sizeof(x->res.last_modified));
    else if (tg_slice_eq_str_nocase(name, "content-type"))
        take_value(v, vn, x->res.content_type, sizeof(x->res.content_type));
    return n;
}

/* Sizes the body for the announced length in one allocation, so a 40 MB
 * CRL is not copied through a chain of doublings. Done at the first body
 * chunk rather than at the end of the headers, because file: transfers
 * announce their size too but have no header lines. A failure here is not
 * one: appending grows the buffer as usual. */
static void presize(fetch_t *x)
{
    x->sized = 1;
    curl_off_t cl = -1;
    if (curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) != CURLE_OK || cl <= 0)
        return;
    size_t limit = x->max_bytes != 0 ? x->max_bytes : PREALLOC_MAX;
    if ((uint64_t)cl > limit)
        return;
    tg_buf_t *b = &x->res.body;
    size_t want = (size_t)cl;
    if (want <= b->cap)
        return;
    uint8_t *d = realloc(b->data, want);
    if (d == NULL)
        return;
    b->data = d;
    b->cap = want;
}

/* CURLOPT_WRITEFUNCTION. Returning less than n aborts the transfer with
 * CURLE_WRITE_ERROR; too_big or nomem says why. CURLOPT_MAXFILESIZE_LARGE
 * already refuses an announced Content-Length over the limit, this catches
 * bodies without one. */
static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    fetch_t *x = arg;
    size_t n = size * nmemb;
    count(&x->f->n_bytes, n);
    tg_buf_t *b = &x->res.body;
    if (x->max_bytes != 0 && n > x->max_bytes - b->len) {
        x->too_big = 1;
        return 0;
    }
    if (!x->sized)
        presize(x);
    if (tg_buf_append(b, p, n) != 0) {
        x->nomem = 1;
        return 0;
    }
    return n;
}

/* ---- completion ------------------------------------------------------------ */

static tg_fetch_reason_t reason_of(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT: return TG_FETCH_TIMEOUT;
    case CURLE_COULDNT_CONNECT: return TG_FETCH_CONNECT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return TG_FETCH_DNS;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED: return TG_FETCH_TLS;
    case CURLE_FILE_COULDNT_READ_FILE: return TG_FETCH_FILE;
    case CURLE_FILESIZE_EXCEEDED: return TG_FETCH_TOO_BIG;
    case CURLE_UNSUPPORTED_PROTOCOL: /* e.g. a redirect to file: */
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP_RETURNED_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3: return TG_FETCH_PROTOCOL;
    default: return TG_FETCH_OTHER;
    }
}

/* Effective URL for messages (the last one after redirects). */
static const char *url_of(fetch_t *x)
{
    char *u = NULL;
    if (curl_easy_getinfo(x->h, CURLINFO_EFFECTIVE_URL, &u) != CURLE_OK || u == NULL)
        return "?";
    return u;
}

static void unlink_fetch(fetch_t *x)
{
    tg_fetcher_t *f = x->f;
    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        f->fetches = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

static void free_fetch(fetch_t *x)
{
    if (x == NULL)
        return;
    tg_buf_free(&x->res.body);
    curl_easy_cleanup(x->h);
    curl_slist_free_all(x->hdrs);
    free(x);
}

/* Writes the human-readable error; a long URL or curl message is cut to
 * fit, on purpose. */
static void set_err(tg_fetch_res_t *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(tg_fetch_res_t *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->err, sizeof(res->err), fmt, ap);
    va_end(ap);
}

/* Fills x->res from the transfer's outcome (canceled: by tg_fetcher_free),
 * runs the callback, frees x. x is already out of the multi handle. */
static void finish(fetch_t *x, CURLcode cc, int canceled)
{
    tg_fetcher_t *f = x->f;
    tg_fetch_res_t *res = &x->res;
    tg_fetch_reason_t why;
    unlink_fetch(x);
    if (!x->is_file)
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &res->http_status);
    const char *url = url_of(x);
    size_t el = strlen(x->errbuf);
    while (el > 0 && (x->errbuf[el - 1] == '\n' || x->errbuf[el - 1] == '\r'))
        x->errbuf[--el] = '\0';
    const char *detail = el > 0 ? x->errbuf : curl_easy_strerror(cc);

    if (canceled) {
        res->rc = TG_ESTATE;
        why = TG_FETCH_CANCELED;
        set_err(res, "%s: canceled", url);
    } else if (cc == CURLE_OK) {
        res->rc = 0;
        if (x->is_file || (res->http_status >= 200 && res->http_status <= 299)) {
            why = TG_FETCH_OK;
        } else if (res->http_status == 304) {
            why = TG_FETCH_NOT_MODIFIED;
            res->not_modified = 1;
        } else {
            why = TG_FETCH_HTTP_STATUS;
            set_err(res, "%s: HTTP %ld", url, res->http_status);
        }
    } else if (x->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        res->rc = TG_ETOOBIG;
        why = TG_FETCH_TOO_BIG;
        set_err(res, "%s: body larger than %zu bytes", url, x->max_bytes);
    } else if (x->nomem) {
        res->rc = TG_ENOMEM;
        why = TG_FETCH_OTHER;
        set_err(res, "%s: out of memory for the body", url);
    } else {
        res->rc = TG_EIO;
        why = reason_of(cc);
        set_err(res, "%s: %s", url, detail);
    }
    if (res->rc != 0)
        tg_buf_free(&res->body);
    res->reason = reason_names[why];
    res->elapsed_ms = (tg_now_ns() - x->t0_ns) / 1000000u;
    tg_debug("fetch %s: %s, HTTP %ld, %zu bytes, %llu ms%s%s", url, res->reason, res->http_status,
             res->body.len, (unsigned long long)res->elapsed_ms, res->err[0] ? ": " : "", res->err);

    count(&f->n_completed[why], 1);
    atomic_fetch_sub_explicit(&f->n_in_flight, 1, memory_order_relaxed);
    x->cb(x->arg, res);
    free_fetch(x);
}

static void check_done(tg_fetcher_t *f)
{
    CURLMsg *m;
    int pending;
    while ((m = curl_multi_info_read(f->multi, &pending)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        /* m is invalid once the handle is removed: read it first. */
        CURL *e = m->easy_handle;
        CURLcode cc = m->data.result;
        char *priv = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
        curl_multi_remove_handle(f->multi, e);
        finish((fetch_t *)(void *)priv, cc, 0);
    }
}

/* ---- starting a fetch ------------------------------------------------------ */

/* 1 when s holds CR, LF (header injection) or is too long for a line. */
static int bad_value(const char *s)
{
    return strpbrk(s, "\r\n") != NULL || strlen(s) > 1024;
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    if (value == NULL)
        return 0;
    if (bad_value(value))
        return TG_EINVAL;
    char line[1100];
    snprintf(line, sizeof(line), "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(*list, line);
    if (l == NULL)
        return TG_ENOMEM;
    *list = l;
    return 0;
}

static int setopt_rc(CURLcode cc)
{
    if (cc == CURLE_OK)
        return 0;
    if (cc == CURLE_OUT_OF_MEMORY)
        return TG_ENOMEM;
    tg_error("fetch: curl_easy_setopt: %s", curl_easy_strerror(cc));
    return TG_EINVAL;
}

/* Sets every option of x's easy handle for req. */
static int configure(fetch_t *x, const tg_fetch_req_t *req, int is_post)
{
    CURL *h = x->h;
    long timeout = req->timeout_ms > 0 ? req->timeout_ms : TG_FETCH_DEFAULT_TIMEOUT_MS;
    long connect = timeout < TG_FETCH_CONNECT_TIMEOUT_MS ? timeout : TG_FETCH_CONNECT_TIMEOUT_MS;
    int rc;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if ((rc = setopt_rc(curl_easy_setopt(h, opt, val))) != 0)                                  \
            return rc;                                                                             \
    } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PRIVATE, (void *)x);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, req->allow_file_urls ? "http,https,file" : "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, TG_FETCH_MAX_REDIRS);
    SET(CURLOPT_TIMEOUT_MS, timeout);
    SET(CURLOPT_CONNECTTIMEOUT_MS, connect);
    SET(CURLOPT_USERAGENT, "trustgate/" TG_VERSION);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, (void *)x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, (void *)x);
    if (req->max_bytes != 0 && req->max_bytes < (uint64_t)INT64_MAX)
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_bytes);
    if (is_post) {
        SET(CURLOPT_POST, 1L);
        /* The size first: COPYPOSTFIELDS copies that many bytes, NULs too. */
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body.n);
        SET(CURLOPT_COPYPOSTFIELDS, req->body.n ? (const char *)req->body.p : "");
    }
    SET(CURLOPT_HTTPHEADER, x->hdrs);
#undef SET
    return 0;
}

/* Builds x->hdrs from req. */
static int build_headers(fetch_t *x, const tg_fetch_req_t *req, int is_post)
{
    int rc;
    if ((rc = add_header(&x->hdrs, "Accept", req->accept)) != 0 ||
        (rc = add_header(&x->hdrs, "If-None-Match", req->if_none_match)) != 0 ||
        (rc = add_header(&x->hdrs, "If-Modified-Since", req->if_modified_since)) != 0)
        return rc;
    if (is_post) {
        if ((rc = add_header(&x->hdrs, "Content-Type", req->content_type)) != 0)
            return rc;
        /* No 100-continue round trip: responders answer small POSTs at once. */
        struct curl_slist *l = curl_slist_append(x->hdrs, "Expect:");
        if (l == NULL)
            return TG_ENOMEM;
        x->hdrs = l;
    }
    return 0;
}

int tg_fetch_start(tg_fetcher_t *f, const tg_fetch_req_t *req, tg_fetch_cb cb, void *arg)
{
    if (f == NULL || req == NULL || cb == NULL || req->url == NULL)
        return TG_EINVAL;
    if (!tg_fetcher_on_thread(f)) {
        tg_error("fetch: tg_fetch_start called off the fetcher thread");
        return TG_EINVAL;
    }
    if (f->closing || atomic_load(&f->stopping))
        return TG_ESTATE;
    int is_file = 0;
    if (strncasecmp(req->url, "file:", 5) == 0) {
        if (!req->allow_file_urls)
            return TG_EINVAL;
        is_file = 1;
    } else if (strncasecmp(req->url, "http://", 7) != 0 &&
               strncasecmp(req->url, "https://", 8) != 0) {
        return TG_EINVAL;
    }
    int is_post = 0;
    if (req->method != NULL && strcmp(req->method, "POST") == 0)
        is_post = 1;
    else if (req->method != NULL && strcmp(req->method, "GET") != 0)
        return TG_EINVAL;
    if (is_post && is_file)
        return TG_EINVAL;
    if (req->body.n != 0 && req->body.p == NULL)
        return TG_EINVAL;

    fetch_t *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return TG_ENOMEM;
    x->f = f;
    x->cb = cb;
    x->arg = arg;
    x->max_bytes = req->max_bytes;
    x->is_file = is_file;
    tg_buf_init(&x->res.body);
    int rc = TG_ENOMEM;
    x->h = curl_easy_init();
    if (x->h == NULL)
        goto out;
    if ((rc = build_headers(x, req, is_post)) != 0 || (rc = configure(x, req, is_post)) != 0)
        goto out;
    x->t0_ns = tg_now_ns();
    CURLMcode mc = curl_multi_add_handle(f->multi, x->h);
    if (mc != CURLM_OK) {
        tg_error("fetch: curl_multi_add_handle: %s", curl_multi_strerror(mc));
        rc = mc == CURLM_OUT_OF_MEMORY ? TG_ENOMEM : TG_EIO;
        goto out;
    }
    x->next = f->fetches;
    if (f->fetches != NULL)
        f->fetches->prev = x;
    f->fetches = x;
    count(&f->n_started, 1);
    count(&f->n_in_flight, 1);
    return 0;
out:
    free_fetch(x);
    return rc;
}

/* ---- calls from other threads and shutdown ------------------------------ */

/* Runs queued calls one at a time, so a call made while they run (by one of
 * them, or another thread) keeps its place, and a stop seen between two
 * calls cancels the rest. */
static void run_calls(tg_fetcher_t *f)
{
    for (;;) {
        pthread_mutex_lock(&f->mu);
        call_t *c = f->head;
        if (c != NULL) {
            f->head = c->next;
            if (f->head == NULL)
                f->tail = NULL;
        }
        int canceled = atomic_load(&f->stopping);
        pthread_mutex_unlock(&f->mu);
        if (c == NULL)
            return;
        c->fn(c->arg, canceled);
        free(c);
    }
}

static void close_stray(uv_handle_t *h, void *arg)
{
    tg_fetcher_t *f = arg;
    if (uv_is_closing(h) || h == (uv_handle_t *)&f->wake || h == (uv_handle_t *)&f->timer)
        return;
    tg_warn("fetch: a %s handle was left open on the fetcher loop; closing it",
            uv_handle_type_name(uv_handle_get_type(h)));
    uv_close(h, NULL);
}

/* The stop: cancel, drain, close every handle; uv_run then returns. */
static void shut_down(tg_fetcher_t *f)
{
    f->closing = 1;
    while (f->fetches != NULL) {
        fetch_t *x = f->fetches;
        curl_multi_remove_handle(f->multi, x->h);
        finish(x, CURLE_OK, 1);
    }
    run_calls(f);
    /* Cleanup closes cached connections; whatever sockets curl does not tell
     * us about are closed below. */
    curl_multi_cleanup(f->multi);
    f->multi = NULL;
    while (f->socks != NULL)
        sock_close(f->socks);
    uv_walk(&f->loop, close_stray, f);
    uv_close((uv_handle_t *)&f->timer, NULL);
    uv_close((uv_handle_t *)&f->wake, NULL);
}

static void on_wake(uv_async_t *a)
{
    tg_fetcher_t *f = a->data;
    if (f->closing)
        return;
    run_calls(f);
    if (atomic_load(&f->stopping))
        shut_down(f);
}

int tg_fetcher_call(tg_fetcher_t *f, void (*fn)(void *arg, int canceled), void *arg)
{
    if (f == NULL || fn == NULL)
        return TG_EINVAL;
    call_t *c = malloc(sizeof(*c));
    if (c == NULL)
        return TG_ENOMEM;
    c->next = NULL;
    c->fn = fn;
    c->arg = arg;
    pthread_mutex_lock(&f->mu);
    if (atomic_load(&f->stopping)) {
        pthread_mutex_unlock(&f->mu);
        free(c);
        return TG_ESTATE;
    }
    if (f->tail != NULL)
        f->tail->next = c;
    else
        f->head = c;
    f->tail = c;
    /* Sent under the lock: once stopping is set no thread is still about to
     * touch the handle, which the loop then closes and frees. */
    uv_async_send(&f->wake);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

/* ---- lifetime ---------------------------------------------------------------- */

static void *fetcher_main(void *arg)
{
    tg_fetcher_t *f = arg;
    tg_log_set_thread_tag("fetch");
    f->thread = pthread_self();
    uv_sem_post(&f->started);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    if (rc != 0)
        tg_error("fetch: uv_loop_close: %s", uv_strerror(rc));
    return NULL;
}

/* Closes the handles of a loop whose thread never started. */
static void close_unstarted(tg_fetcher_t *f)
{
    uv_close((uv_handle_t *)&f->timer, NULL);
    uv_close((uv_handle_t *)&f->wake, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&f->loop);
}

int tg_fetcher_new(tg_fetcher_t **out_fetcher)
{
    *out_fetcher = NULL;
    tg_fetcher_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return TG_ENOMEM;
    int rc = uv_loop_init(&f->loop);
    if (rc != 0) {
        tg_error("fetch: uv_loop_init: %s", uv_strerror(rc));
        free(f);
        return TG_EUV;
    }
    (void)uv_async_init(&f->loop, &f->wake, on_wake); /* cannot fail on an open loop */
    (void)uv_timer_init(&f->loop, &f->timer);
    f->wake.data = f;
    f->timer.data = f;
    pthread_mutex_init(&f->mu, NULL);
    atomic_init(&f->stopping, 0);
    atomic_init(&f->n_started, 0);
    atomic_init(&f->n_bytes, 0);
    atomic_init(&f->n_in_flight, 0);
    for (int i = 0; i < TG_FETCH_REASON_COUNT; i++)
        atomic_init(&f->n_completed[i], 0);

    rc = TG_ENOMEM;
    f->multi = curl_multi_init();
    if (f->multi == NULL)
        goto fail;
    if (curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, (void *)f) != CURLM_OK ||
        curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_timer_set) != CURLM_OK ||
        curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, (void *)f) != CURLM_OK ||
        curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS, TG_FETCH_MAX_HOST_CONNECTIONS) !=
            CURLM_OK) {
        tg_error("fetch: curl_multi_setopt failed");
        rc = TG_EIO;
        goto fail;
    }
    if (uv_sem_init(&f->started, 0) != 0) {
        rc = TG_EIO;
        goto fail;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, fetcher_main, f) != 0) {
        tg_error("fetch: pthread_create failed");
        uv_sem_destroy(&f->started);
        rc = TG_EIO;
        goto fail;
    }
    /* The thread records its own id before this returns, so
     * tg_fetcher_on_thread never reads a half-written f->thread. */
    uv_sem_wait(&f->started);
    *out_fetcher = f;
    return 0;
fail:
    if (f->multi != NULL)
        curl_multi_cleanup(f->multi);
    close_unstarted(f);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return rc;
}

void tg_fetcher_free(tg_fetcher_t *f)
{
    if (f == NULL)
        return;
    if (tg_fetcher_on_thread(f)) {
        tg_error("fetch: tg_fetcher_free called on the fetcher thread");
        abort();
    }
    pthread_mutex_lock(&f->mu);
    atomic_store(&f->stopping, 1);
    uv_async_send(&f->wake);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    uv_sem_destroy(&f->started);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

uv_loop_t *tg_fetcher_loop(tg_fetcher_t *f)
{
    return &f->loop;
}

int tg_fetcher_on_thread(const tg_fetcher_t *f)
{
    return f != NULL && pthread_equal(pthread_self(), f->thread);
}

void tg_fetcher_stats(const tg_fetcher_t *f, tg_fetcher_stats_t *out_stats)
{
    memset(out_stats, 0, sizeof(*out_stats));
    if (f == NULL)
        return;
    out_stats->started = atomic_load_explicit(&f->n_started, memory_order_relaxed);
    for (int i = 0; i < TG_FETCH_REASON_COUNT; i++)
        out_stats->completed[i] = atomic_load_explicit(&f->n_completed[i], memory_order_relaxed);
    out_stats->bytes = atomic_load_explicit(&f->n_bytes, memory_order_relaxed);
    out_stats->in_flight = atomic_load_explicit(&f->n_in_flight, memory_order_relaxed);
}
