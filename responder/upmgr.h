/* The upstream OCSP manager (SPEC §5, §7; issue 5): fetches a CA's answer
 * for one certificate from the CA's own OCSP responder, verifies it and
 * stores it in the cache, on its own fetcher thread (fetch/fetch.h).
 *
 * - Single flight: concurrent asks for one CertID make one upstream
 *   request; every asker gets the result.
 * - Per upstream (responder URL): at most TG_UP_MAX_INFLIGHT requests at
 *   once (the rest queue), and a circuit breaker: after TG_UP_BREAKER_FAILS
 *   failures in a row it stops asking for TG_UP_BREAKER_OPEN_S, answering
 *   every ask with "breaker_open" at once, then lets one probe through.
 * - Verification (pki/ocsp_verify.h) before anything is cached or handed
 *   out: signature (SM2 with the GM/T 0009 ID), signer = the CA or its
 *   delegated responder (id-kp-OCSPSigning), exactly one SingleResponse for
 *   the CertID asked about, thisUpdate not in the future, nextUpdate
 *   present and in the future. A refused answer is counted by reason and
 *   never cached. */
#ifndef TG_RESPONDER_UPMGR_H
#define TG_RESPONDER_UPMGR_H

#include "cache/cache.h"
#include "common/buf.h"
#include "common/err.h"
#include "pki/ocsp.h"
#include "pki/ocsp_verify.h"

#include <openssl/types.h>

#define TG_UP_MAX_INFLIGHT 8     /* requests in flight per upstream */
#define TG_UP_BREAKER_FAILS 5    /* failures in a row that open the breaker */
#define TG_UP_BREAKER_OPEN_S 30  /* how long it stays open */
#define TG_UP_MAX_BYTES 65536    /* largest upstream answer accepted */
#define TG_UP_MAX_WAITING 100000 /* asks waiting, all CertIDs; more fail at once */

typedef struct tg_upmgr tg_upmgr_t;
typedef struct tg_worker tg_worker_t;

/* What an ask gets back. */
typedef struct {
    /* NULL when a verified answer came; else why not, a static name for
     * metrics: "breaker_open", "overloaded", "timeout", "connect", ...
     * (fetch reasons), "http_status", "upstream_status" (not successful),
     * "no_next_update", or a verification error ("bad_signature",
     * "unauthorized_signer", "certid_mismatch", "expired", ...). */
    const char *reason;
    tg_buf_t der;              /* the answer as the CA signed it (owned) */
    tg_ocsp_verify_result_t v; /* its status and times */
} tg_up_result_t;

/* Delivered on the asking worker's loop. res is only valid during the call
 * (the callee may steal res->der). With canceled, the worker is gone: only
 * free arg. */
typedef void (*tg_up_done_cb)(void *arg, tg_up_result_t *res, int canceled);

/* One ask. Everything is copied (the certificate is up-ref'd). */
typedef struct {
    const tg_certid_t *id;
    const char *url; /* the CA's OCSP responder */
    X509 *issuer;    /* the CA certificate from the trust list */
    long timeout_ms;
} tg_up_ask_t;

/* Starts the manager (its fetcher thread). cache is borrowed and must
 * outlive it. Returns 0 and *out_mgr (tg_upmgr_free), or an error (logged). */
TG_WUR int tg_upmgr_new(tg_cache_t *cache, tg_upmgr_t **out_mgr);

/* Asks for a fresh verified answer for ask->id; cb(arg, ...) runs later on
 * w's loop (tg_worker_post), exactly once. Call from w's loop; the caller
 * keeps its loop up meanwhile (tg_worker_await_begin). Returns 0, or an
 * error (then cb is never called). */
TG_WUR int tg_upmgr_ask(tg_upmgr_t *mgr, tg_worker_t *w, const tg_up_ask_t *ask, tg_up_done_cb cb,
                        void *arg);

/* Refreshes the cached answer for ask->id in the background (nothing is
 * delivered; a fresh verified answer replaces the cached one): called when
 * an answer that is asked for nears its nextUpdate. Does nothing when a
 * request for that CertID is in the air. Any thread. Returns 0 or an
 * error. */
TG_WUR int tg_upmgr_refresh(tg_upmgr_t *mgr, const tg_up_ask_t *ask);

/* 1 while the breaker of the responder at url is open: the caller need
 * not ask (and counts that itself). Lock-free, any thread; after the open time is up it says 0, so
 * that one ask goes through as the probe. */
int tg_upmgr_breaker_open(tg_upmgr_t *mgr, const char *url);

/* Appends the manager's Prometheus metrics. Any thread. 0 or TG_ENOMEM. */
TG_WUR int tg_upmgr_render_metrics(tg_upmgr_t *mgr, tg_buf_t *out);

/* Stops the fetcher (asks in flight end as canceled, their callbacks run
 * with reason "canceled" or, when the worker is gone, canceled = 1) and
 * frees everything. After the workers stopped. NULL is fine. */
void tg_upmgr_free(tg_upmgr_t *mgr);

#endif
