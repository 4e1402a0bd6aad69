/* The fetcher: upstream HTTP fetches (CRLs now, OCSP requests later) on one
 * thread of their own, which runs a libuv loop driving a libcurl multi
 * handle (CURLMOPT_SOCKETFUNCTION and CURLMOPT_TIMERFUNCTION on uv_poll_t
 * and uv_timer_t, the pattern of curl's docs/examples/multi-uv.c). Nothing
 * on that loop blocks; other threads reach it through tg_fetcher_call().
 *
 * Threads: tg_fetcher_new() and tg_fetcher_free() run on any thread but the
 * fetcher's; tg_fetcher_call(), tg_fetcher_on_thread() and
 * tg_fetcher_stats() on any thread; everything else, and every callback,
 * on the fetcher thread only.
 *
 * curl_global_init() is the caller's: main does it once before the first
 * tg_fetcher_new(), tests do it themselves. */
#ifndef TG_FETCH_FETCH_H
#define TG_FETCH_FETCH_H

#include "common/buf.h"
#include "common/err.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct tg_fetcher tg_fetcher_t;

/* Whole-transfer limit used when tg_fetch_req_t.timeout_ms is 0 or less. */
#define TG_FETCH_DEFAULT_TIMEOUT_MS 30000L

/* Connecting gives up after this, or after the whole timeout if shorter. */
#define TG_FETCH_CONNECT_TIMEOUT_MS 3000L

/* Redirects followed (http and https only). */
#define TG_FETCH_MAX_REDIRS 3L

/* Concurrent connections to one host (CURLMOPT_MAX_HOST_CONNECTIONS);
 * more fetches to that host wait in curl's queue. */
#define TG_FETCH_MAX_HOST_CONNECTIONS 8L

/* One fetch. Every string and the body are copied by tg_fetch_start(), so
 * the request may live on the caller's stack. Header values must not hold
 * CR or LF nor exceed 1024 bytes (TG_EINVAL). */
typedef struct {
    const char *url;               /* http://, https://; file: only with allow_file_urls */
    const char *method;            /* "GET" (default when NULL) or "POST" */
    tg_slice_t body;               /* POST body (copied) */
    const char *content_type;      /* POST Content-Type, e.g. "application/ocsp-request" */
    const char *accept;            /* Accept header or NULL */
    const char *if_none_match;     /* conditional GET (ETag) or NULL */
    const char *if_modified_since; /* HTTP-date or NULL */
    size_t max_bytes;              /* body limit; 0 = no limit */
    long timeout_ms;               /* whole transfer (<= 0: TG_FETCH_DEFAULT_TIMEOUT_MS);
                                      connect timeout = min(timeout, 3000) */
    int allow_file_urls;
} tg_fetch_req_t;

/* Why a fetch ended, as an index for the counters of tg_fetcher_stats_t;
 * tg_fetch_reason_name() gives the short code that tg_fetch_res_t.reason
 * holds. */
typedef enum {
    TG_FETCH_OK = 0,       /* "ok": 2xx, or a file read */
    TG_FETCH_NOT_MODIFIED, /* "not_modified": 304 */
    TG_FETCH_HTTP_STATUS,  /* "http_status": any other complete response */
    TG_FETCH_TIMEOUT,      /* "timeout" */
    TG_FETCH_TOO_BIG,      /* "too_big": over max_bytes */
    TG_FETCH_CONNECT,      /* "connect": refused or unreachable */
    TG_FETCH_DNS,          /* "dns": name did not resolve */
    TG_FETCH_TLS,          /* "tls": handshake or certificate */
    TG_FETCH_PROTOCOL,     /* "protocol": broken or cut response, bad redirect */
    TG_FETCH_FILE,         /* "file": a file: URL could not be read */
    TG_FETCH_CANCELED,     /* "canceled": tg_fetcher_free() */
    TG_FETCH_OTHER,        /* "other" */
    TG_FETCH_REASON_COUNT
} tg_fetch_reason_t;

/* Returns the static short code of r ("ok", "timeout", ...; "other" for
 * anything out of range). Never NULL; do not free. Any thread. */
const char *tg_fetch_reason_name(tg_fetch_reason_t r);

/* The outcome of one fetch, handed to its callback. */
typedef struct {
    int rc;             /* 0: a complete HTTP response (any status) or a file read;
                           TG_ETOOBIG: over max_bytes; TG_ENOMEM: the body could not be
                           stored; TG_ESTATE: canceled by tg_fetcher_free(); TG_EIO: otherwise */
    const char *reason; /* static short code, see tg_fetch_reason_t */
    long http_status;   /* last response's status (after redirects); 0 for file: */
    int not_modified;   /* 1 on a 304 */
    tg_buf_t body;      /* the body when rc is 0 (empty otherwise); owned by the result:
                           the callback may steal it (copy the struct or the field out,
                           then tg_buf_init() the field), else it is freed after the call */
    char etag[256];     /* response ETag as sent, quotes included ("" if none or too long) */
    char last_modified[64];
    char content_type[128];
    char err[256];       /* human-readable, URL included ("" when reason is "ok" or
                            "not_modified") */
    uint64_t elapsed_ms; /* from tg_fetch_start() to completion */
} tg_fetch_res_t;

/* Called on the fetcher thread exactly once per started fetch. res and its
 * strings are valid only during the call, except a stolen body. The
 * callback may start new fetches (they fail with TG_ESTATE once the fetcher
 * is stopping). */
typedef void (*tg_fetch_cb)(void *arg, tg_fetch_res_t *res);

/* Creates a fetcher: its loop, curl multi handle and thread (tagged "fetch"
 * in logs), and returns once the thread runs. Any thread but a fetcher's.
 * Returns 0 and *out_fetcher (free with tg_fetcher_free), TG_ENOMEM, or
 * TG_EUV / TG_EIO (logged). */
TG_WUR int tg_fetcher_new(tg_fetcher_t **out_fetcher);

/* Stops and frees f; NULL is fine. Any thread except the fetcher's (that
 * would deadlock: it aborts). On the fetcher thread, before it exits: every
 * fetch in flight completes with rc TG_ESTATE, reason "canceled"; every
 * tg_fetcher_call() not yet run is run with canceled = 1 (in order); handles
 * a caller left open on tg_fetcher_loop() are closed without their close
 * callback, with a warning, so close yours first (e.g. in a
 * tg_fetcher_call()). Then joins the thread and frees everything. f must
 * not be used by any thread afterwards. */
void tg_fetcher_free(tg_fetcher_t *f);

/* Returns the fetcher's loop, for the caller's timers and the like. The
 * loop is the fetcher thread's: touch it and its handles only there. */
uv_loop_t *tg_fetcher_loop(tg_fetcher_t *f);

/* Returns 1 when called on f's thread, else 0. Any thread. */
int tg_fetcher_on_thread(const tg_fetcher_t *f);

/* Runs fn(arg, 0) on the fetcher thread soon; calls run in the order they
 * were made (FIFO across all threads). Any thread, including the fetcher's
 * (fn then runs later, never inside this call). arg is the caller's and
 * must live until fn has run. When the fetcher stops, calls not yet run
 * run with canceled = 1: fn must then only release what arg holds. Returns
 * 0 (fn will run exactly once), TG_ENOMEM, or TG_ESTATE when the fetcher is
 * stopping (fn will not run). */
TG_WUR int tg_fetcher_call(tg_fetcher_t *f, void (*fn)(void *arg, int canceled), void *arg);

/* Starts a fetch. Fetcher thread only. req is copied; arg is the caller's
 * and must live until cb has run. Returns 0 (cb will be called exactly once,
 * never from inside this call); TG_EINVAL for a bad request, refused before
 * curl sees it (NULL url or cb, a scheme other than http, https or file, a
 * file: URL without allow_file_urls, a method other than GET or POST, CR or
 * LF or over 1024 bytes in a header value) or when called off the fetcher thread; TG_ENOMEM; or
 * TG_ESTATE when the fetcher is stopping. On an error cb is not called. */
TG_WUR int tg_fetch_start(tg_fetcher_t *f, const tg_fetch_req_t *req, tg_fetch_cb cb, void *arg);

/* Counters since tg_fetcher_new(). Each is read atomically but the set is
 * not a consistent snapshot. */
typedef struct {
    uint64_t started;                          /* tg_fetch_start() calls that returned 0 */
    uint64_t completed[TG_FETCH_REASON_COUNT]; /* callbacks run, by reason */
    uint64_t bytes;                            /* body bytes received (all fetches) */
    uint64_t in_flight;                        /* started and not yet completed */
} tg_fetcher_stats_t;

/* Copies f's counters into *out_stats. Any thread (relaxed atomics). */
void tg_fetcher_stats(const tg_fetcher_t *f, tg_fetcher_stats_t *out_stats);

#endif
