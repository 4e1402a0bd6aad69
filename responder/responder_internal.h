/* Internal structures of the responder module: server, workers,
 * connections and metrics. Not part of any other module's contract. */
#ifndef TG_RESPONDER_INTERNAL_H
#define TG_RESPONDER_INTERNAL_H

#include "common/buf.h"
#include "common/clock.h"
#include "config/config.h"
#include "pki/ocsp.h"
#include "pki/signer.h"
#include "trustlist/trustlist.h"
#include "responder/server.h"
#include "responder/tlmgr.h"
#include "responder/crlmgr.h"
#include "cache/cache.h"

#include <llhttp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <uv.h>

/* ---- metrics ----------------------------------------------------------
 * Each worker owns its counters and is their only writer, so an increment is
 * a relaxed load and store (a plain add on x86, no locked instruction);
 * /metrics sums all workers with relaxed loads. */
typedef _Atomic uint64_t tg_counter_t;

#define TG_INC(c) TG_ADD(c, 1)
#define TG_ADD(c, v)                                                                               \
    atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (v),            \
                          memory_order_relaxed)
#define TG_LOAD(c) atomic_load_explicit(&(c), memory_order_relaxed)

typedef enum {
    TG_EP_OCSP_GET = 0,
    TG_EP_OCSP_POST,
    TG_EP_CRL,
    TG_EP_TRUSTLIST,
    TG_EP_HEALTHZ,
    TG_EP_READYZ,
    TG_EP_METRICS,
    TG_EP_OTHER,
    TG_EP_COUNT
} tg_endpoint_t;

/* HTTP status codes trustgate sends; metrics index them by position. */
#define TG_HTTP_CODES(X)                                                                           \
    X(100, "Continue")                                                                             \
    X(200, "OK")                                                                                   \
    X(304, "Not Modified")                                                                         \
    X(400, "Bad Request")                                                                          \
    X(403, "Forbidden")                                                                            \
    X(404, "Not Found")                                                                            \
    X(405, "Method Not Allowed")                                                                   \
    X(408, "Request Timeout")                                                                      \
    X(413, "Content Too Large")                                                                    \
    X(500, "Internal Server Error")                                                                \
    X(503, "Service Unavailable")

#define TG_HTTP_ENUM(code, text) TG_HTTP_##code,
typedef enum { TG_HTTP_CODES(TG_HTTP_ENUM) TG_HTTP_CODE_COUNT } tg_http_code_t;
#undef TG_HTTP_ENUM

#define TG_OCSP_STATUS_SLOTS 7 /* OCSPResponseStatus values 0..6 */
#define TG_SIGNER_ALG_COUNT (TG_SIGNER_SM2 + 1)
#define TG_DURATION_BUCKETS 16
#define TG_SIGN_JOBS_PER_WORKER 64 /* signing jobs queued or running per worker */

typedef struct {
    tg_counter_t http_requests[TG_EP_COUNT][TG_HTTP_CODE_COUNT];
    tg_counter_t ocsp_responses[TG_OCSP_STATUS_SLOTS];
    tg_counter_t ocsp_certids;                              /* single requests decoded */
    tg_counter_t duration_buckets[TG_DURATION_BUCKETS + 1]; /* last = +Inf */
    tg_counter_t duration_sum_ns;
    tg_counter_t conns_accepted;
    tg_counter_t conns_rejected; /* over max_connections */
    tg_counter_t http_parse_errors;
    tg_counter_t timeouts_header;
    tg_counter_t timeouts_idle;
    tg_counter_t too_large;
    /* OCSP decisions (SPEC §5) */
    tg_counter_t unauthorized_not_listed; /* issuer on no list, or not yet listed */
    tg_counter_t unauthorized_no_signer;  /* the list has no signer for the answer */
    tg_counter_t rejections_suspended;
    tg_counter_t rejections_terminated;
    tg_counter_t answers_crl_good;         /* from a fresh CRL */
    tg_counter_t answers_crl_revoked;      /* on a fresh CRL */
    tg_counter_t trylater_no_status;       /* active CA, no CRL held */
    tg_counter_t trylater_stale;           /* active CA, CRL past its nextUpdate */
    tg_counter_t cache_errors;             /* LMDB reads that failed */
    tg_counter_t answers_upstream_relayed; /* the CA's own answer, as received */
    tg_counter_t answers_upstream_signed;  /* its status, signed by us */
    tg_counter_t upstream_asks;            /* asks sent to the upstream manager */
    tg_counter_t answers_src_fetched;      /* from an upstream answer fetched for this request */
    tg_counter_t answers_src_cached;       /* from a cached upstream answer */
    tg_counter_t upstream_skipped_open;    /* not asked: the responder's breaker is open */
    tg_counter_t upstream_refresh_asks;    /* answers near nextUpdate asked to be refreshed */
    tg_counter_t presign_hits;             /* answered from a pre-signed answer */
    tg_counter_t presign_misses;           /* signed because none matched */
    tg_counter_t presign_stored;
    tg_counter_t presign_store_failed; /* cache write queue full or closing */
    tg_counter_t answers_redecided;    /* signed under a replaced generation */
    tg_counter_t sign_shed;            /* tryLater: the signing queue was full */
    tg_counter_t sign_queued;          /* signing jobs handed to the pool */
    tg_counter_t sign_done;            /* and finished: queued - done is the queue depth */
    tg_counter_t signed_responses[TG_SIGNER_ALG_COUNT];
} tg_metrics_t;

/* ---- configuration and generations --------------------------------------
 * A tg_cfgref_t is one loaded configuration with the signers it names. A
 * tg_gen_t is everything a worker answers from: a configuration and the
 * trust-list snapshot, swapped as one (SPEC §6). Both are immutable and
 * reference-counted; workers swap their reference on their own loop. */
/* What a signer's certificate and key files were when it was loaded: a
 * reload keeps the signer when neither file changed. */
typedef struct {
    int ok; /* both stat()s succeeded */
    struct stat cert, key;
} tg_signer_files_t;

typedef struct {
    tg_config_t *cfg;
    tg_signer_t *signers[TG_CONFIG_MAX_SIGNERS]; /* index = cfg->signers index */
    tg_signer_files_t files[TG_CONFIG_MAX_SIGNERS];
    _Atomic int refs;
} tg_cfgref_t;

typedef struct tg_gen {
    _Atomic int refs;
    uint64_t id;            /* increases with every publication */
    tg_cfgref_t *cfgref;    /* owned reference */
    tg_tl_snapshot_t *snap; /* owned reference; NULL: no list accepted yet */
    /* per configured list (cfg order): the signer index or -1 */
    int list_signer[TG_CONFIG_MAX_TRUSTLISTS];
    /* per configured list: the key pre-signed answers are stored under
     * (tg_cache_ocsp_t.generation). It changes with the list document and
     * the signer, and survives restarts, so a trust-list swap or a new
     * signer invalidates every pre-signed answer of that list (SPEC §6);
     * 0: nothing is pre-signed */
    uint64_t list_key[TG_CONFIG_MAX_TRUSTLISTS];
    /* "Trust-List-Sequence: gd=N, hk=M\r\n" (SPEC §5), on every answer */
    char tl_header[256];
    size_t tl_header_len;
} tg_gen_t;

/* ---- connection -------------------------------------------------------- */
typedef enum {
    TG_CONN_IDLE = 0, /* between requests (or before the first byte) */
    TG_CONN_REQUEST,  /* a request is being received */
    TG_CONN_WAITING,  /* its answer is being computed off the loop; parsing paused */
    TG_CONN_LINGER,   /* answered and half-closed; discarding input */
    TG_CONN_CLOSING,  /* uv_close called; waiting for the close callbacks */
} tg_conn_state_t;

/* Request headers that trustgate acts on. */
typedef enum {
    TG_HDR_NONE = 0,
    TG_HDR_EXPECT,
    TG_HDR_IF_NONE_MATCH,
    TG_HDR_IF_MODIFIED_SINCE,
} tg_hdr_t;

typedef struct tg_worker tg_worker_t;
typedef struct tg_conn tg_conn_t;

struct tg_conn {
    uv_tcp_t tcp; /* embedded handles: the conn is freed in the last close cb */
    uv_timer_t timer;
    llhttp_t parser;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    tg_worker_t *w;
    tg_conn_t *prev, *next; /* worker's list of live connections */
    tg_conn_state_t state;
    int refs; /* open handles + asynchronous work in flight; freed at 0 */

    /* lazy deadline: the timer is re-armed only when a deadline moves
     * earlier than the time it is set for (see conn_set_deadline) */
    uint64_t deadline_ms;
    uint64_t timer_due_ms;

    /* the request being received */
    uint64_t req_start_ns;
    size_t req_bytes;
    tg_buf_t url;
    tg_buf_t body;
    char hfield[24];
    size_t hfield_len;
    tg_hdr_t cur_hdr;
    int expect_continue;
    tg_buf_t if_none_match;
    tg_buf_t if_modified_since;

    /* output: `out` collects answers (in request order, so pipelining keeps
     * its order); `wbuf` is the one write in flight */
    tg_buf_t out;
    tg_buf_t wbuf;
    tg_buf_t pending_in; /* bytes after a request whose answer is pending */
    int writing;
    int close_after_write;
    int draining;     /* server is stopping: answer what is in flight, then close */
    int closed;       /* tg_conn_close ran: nothing may touch the handles again */
    int error_sent;   /* an error answer ends this connection; no second one */
    int backpressure; /* parsing paused until queued output is written */
    int in_resume;    /* resume_parsing is running (no re-entry) */

    size_t large_bytes;   /* large bodies queued here, counted in srv->large_out_bytes */
    int last_ocsp_status; /* of the current request, -1 when not OCSP */
    char peer[48];        /* client address for the access log ("" when off) */
};

/* ---- worker ------------------------------------------------------------ */
struct tg_worker {
    int id;
    tg_server_t *srv;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t wake;           /* stop / reload / force, flags below */
    pthread_mutex_t wake_lock; /* wake_closed: no uv_async_send after close */
    int wake_closed;
    uv_timer_t tick; /* 1 s: access-log flush */
    uv_tcp_t listeners[TG_CONFIG_MAX_LISTEN];
    int listen_fds[TG_CONFIG_MAX_LISTEN];
    size_t n_listeners;
    int started;               /* loop initialised and running */
    _Atomic uint64_t gen_seen; /* the generation this worker answers from */
    _Atomic int exited;

    tg_gen_t *gen; /* this worker's reference; cfg and snap below come from it */
    const tg_config_t *cfg;
    const tg_tl_snapshot_t *snap; /* NULL: no list accepted yet */

    tg_conn_t *conns; /* live connections */
    size_t n_conns;
    int stopping;

    char date[TG_HTTP_DATE_LEN + 1];
    uint64_t date_sec; /* wall second that date shows */

    size_t sign_inflight; /* signing jobs of this worker in the thread pool */
    /* mail from other threads (tg_worker_post): the handle stays open, and
     * keeps the loop alive, while answers are awaited from upstream */
    uv_async_t mail;
    pthread_mutex_t mail_lock;
    struct tg_mail *mail_head, *mail_tail;
    int mail_open;             /* under mail_lock: posts are accepted */
    size_t up_waiting;         /* answers awaited from upstream (loop thread) */
    tg_cache_reader_t *reader; /* this worker's cache reader (NULL: none) */
    tg_buf_t access_buf;
    tg_metrics_t metrics;
    uint8_t readbuf[65536]; /* shared by all connections: consumed in read_cb */
};

/* ---- server ------------------------------------------------------------ */
struct tg_server {
    char *config_path;
    uv_loop_t loop; /* main thread: signals and coordination */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_async_t notify; /* a worker exited, or a stop was requested */
    uv_timer_t drain_timer;

    pthread_mutex_t gen_lock; /* guards the gen pointer swap */
    tg_gen_t *gen;

    tg_worker_t *workers;
    size_t n_workers;
    _Atomic size_t n_exited;
    _Atomic int stop_requested;
    _Atomic int force_close;
    _Atomic uint64_t conns_total; /* open connections, all workers */
    /* bytes of large bodies (CRLs) queued to clients, all workers: each
     * download holds a copy until written, so their sum is capped */
    _Atomic uint64_t large_out_bytes;
    _Atomic uint64_t gen_id;    /* id of srv->gen, read by workers per request */
    struct ack_waiter *waiters; /* waiting for every worker to take up a generation */
    int main_closed;            /* the main loop's handles are closing */
    int stopping;

    tg_tlmgr_t *tlmgr;            /* trust lists (tlmgr.c) */
    tg_cache_t *cache;            /* the LMDB status store, open for the server's life */
    tg_crlmgr_t *crlmgr;          /* CRL fetching and ingestion (crlmgr.c) */
    struct tg_upmgr *upmgr;       /* upstream OCSP (upmgr.c) */
    struct tg_signpool *signpool; /* signing threads (signpool.c) */
    uv_pipe_t admin;              /* admin socket (admin.c) */
    struct admin_client *admin_clients;
    int admin_fd; /* bound by tg_server_new; -1 once the handle owns it */
    int admin_open;
    char *admin_path;

    pthread_mutex_t access_lock;
    int access_fd; /* -1 when the access log is off */

    uint64_t start_ms; /* uv_now of the main loop at start */
};

/* gen.c */
/* Loads the signers cfg names; on success *out_ref owns cfg (refcount 1).
 * A signer of prev (the configuration in force; NULL at start) with the
 * same name and files, unchanged on disk since it was loaded, is shared
 * instead of loaded again (a reload then costs no key parsing). prev is
 * borrowed. On failure cfg is left to the caller. Returns 0 or the error
 * (logged). */
TG_WUR int tg_cfgref_new(tg_config_t *cfg, const tg_cfgref_t *prev, tg_cfgref_t **out_ref);
void tg_cfgref_release(tg_cfgref_t *ref);
/* A new generation (refcount 1) holding new references to cfgref and snap
 * (snap may be NULL). NULL when out of memory. */
tg_gen_t *tg_gen_new(tg_cfgref_t *cfgref, tg_tl_snapshot_t *snap, uint64_t id);
tg_gen_t *tg_gen_ref(tg_gen_t *gen);
void tg_gen_unref(tg_gen_t *gen);

/* server.c */
/* Re-reads the configuration file (a bad one is logged and the current one
 * stays: the return value) and then reloads every trust list; cb (may be
 * NULL) is called on the main loop when the lists are done. */
int tg_server_reload(tg_server_t *srv, tg_tlmgr_done_cb cb, void *arg);
/* Returns a new reference to the current generation (any thread). */
tg_gen_t *tg_server_gen_acquire(tg_server_t *srv);
/* Calls cb(arg) on the main loop once every running worker answers from
 * the current generation (or a later one): from then on, nothing built
 * from an older one is sent (SPEC §6). May call cb at once. Main loop. */
void tg_server_when_taken_up(tg_server_t *srv, void (*cb)(void *arg), void *arg);
/* Publishes a generation made of cfgref and snap (new references are
 * taken) to every worker. Main loop only. Returns 0 or TG_ENOMEM. */
TG_WUR int tg_server_publish(tg_server_t *srv, tg_cfgref_t *cfgref, tg_tl_snapshot_t *snap);
void tg_server_access_write(tg_server_t *srv, const uint8_t *p, size_t n);

/* admin.c: tg_admin_listen returns a bound, listening fd or -1 (logged) */
int tg_admin_listen(const char *path);
TG_WUR int tg_admin_start(tg_server_t *srv);
void tg_admin_stop(tg_server_t *srv);

/* worker.c */
TG_WUR int tg_worker_start(tg_worker_t *w);
void tg_worker_wake(tg_worker_t *w);
const char *tg_worker_date(tg_worker_t *w);
void tg_worker_conn_gone(tg_worker_t *w);
/* Takes up the current generation if one was published since the worker
 * last looked: one atomic load when nothing changed (every request). */
void tg_worker_refresh(tg_worker_t *w);
void tg_worker_access_log(tg_worker_t *w, tg_buf_t *line);
/* Runs fn(arg, 0) on w's loop soon (FIFO); any thread. When w no longer
 * takes mail (stopped), fn(arg, 1) runs at once on the calling thread: fn
 * must then only release what arg owns. */
void tg_worker_post(tg_worker_t *w, void (*fn)(void *arg, int canceled), void *arg);
/* The loop thread counts the answers it awaits from other threads: while
 * any is awaited the worker's loop stays up (and keeps taking mail) even
 * when stopping. */
void tg_worker_await_begin(tg_worker_t *w);
void tg_worker_await_end(tg_worker_t *w);

/* conn.c */
void tg_conn_accept(tg_worker_t *w, uv_stream_t *listener);
void tg_conn_drain(tg_conn_t *c);
/* Marks the request being completed as answered later: parsing pauses (later
 * pipelined requests wait, so answers keep their order) and the connection
 * stays allocated until tg_conn_async_end. Call from the request handler. */
void tg_conn_async_begin(tg_conn_t *c);
/* Called on the connection's loop once the deferred answer has been queued
 * with tg_http_respond (or not, if the connection closed meanwhile): resumes
 * parsing and reading. The connection may be freed by this call. */
void tg_conn_async_end(tg_conn_t *c);
/* Returns 1 when the connection is closing (a deferred answer is moot). */
int tg_conn_is_closing(const tg_conn_t *c);
void tg_conn_close(tg_conn_t *c);

/* http.c: answers one complete request into c->out */
void tg_http_handle(tg_conn_t *c);
/* Accounts a body of n bytes about to be queued on c against the server's
 * cap on large bodies in flight (released once c has written everything).
 * Returns 0, or -1 when over the cap (answer 503 instead). */
int tg_http_take_large(tg_conn_t *c, size_t n);
/* Gives back what c accounted with tg_http_take_large. */
void tg_http_release_large(tg_conn_t *c);
/* appends a complete response; body may be empty; extra_headers is a block
 * of "Name: value\r\n" lines or NULL */
void tg_http_respond(tg_conn_t *c, tg_endpoint_t ep, tg_http_code_t code, const char *ctype,
                     const char *extra_headers, tg_slice_t body);
int tg_http_code_number(tg_http_code_t code);
/* 1 when the request's If-None-Match lists etag (the quoted opaque-tag) or
 * "*", with weak comparison (RFC 9110 §13.1.2); 0 otherwise */
int tg_http_etag_listed(const tg_conn_t *c, const char *etag);
const char *tg_endpoint_name(tg_endpoint_t ep);

/* ocsp_answer.c: answers an OCSP request given as DER */
void tg_ocsp_answer(tg_conn_t *c, tg_endpoint_t ep, const uint8_t *der, size_t len);

/* metrics.c */
void tg_metrics_observe_duration(tg_metrics_t *m, uint64_t ns);
TG_WUR int tg_metrics_render(tg_server_t *srv, tg_buf_t *out);
/* Appends the counter family name (HELP text help) with one sample per
 * label value: name{label="values[i]"} counts[i], i < n. Returns 0 or
 * TG_ENOMEM. */
TG_WUR int tg_metrics_render_family(tg_buf_t *out, const char *name, const char *help,
                                    const char *label, const char *const *values,
                                    const _Atomic uint64_t *counts, size_t n);

#endif
