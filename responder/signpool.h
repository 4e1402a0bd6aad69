/* The signing pool: threads of its own that sign OCSP answers off the
 * worker loops (SPEC §8; issue 5 item 3). It does not share libuv's thread
 * pool, so trust-list loads and signatures never wait behind each other,
 * and its queue is bounded: a full queue is the caller's cue to shed the
 * request with tryLater rather than let latency grow without bound. */
#ifndef TG_RESPONDER_SIGNPOOL_H
#define TG_RESPONDER_SIGNPOOL_H

#include "common/err.h"

#include <stddef.h>

typedef struct tg_signpool tg_signpool_t;
typedef struct tg_worker tg_worker_t;

/* Starts n_threads (>= 1) signing threads; at most max_jobs jobs may be
 * queued or running at once. Returns 0 and *out_pool (tg_signpool_free),
 * TG_EINVAL, TG_ENOMEM or TG_EIO (a thread did not start; logged). */
TG_WUR int tg_signpool_new(size_t n_threads, size_t max_jobs, tg_signpool_t **out_pool);

/* Runs work(arg) on a pool thread, then done(arg, 0) on w's loop
 * (tg_worker_post; done(arg, 1) on the pool thread if w no longer takes
 * mail). Any thread. Returns 0; TG_ETOOBIG when max_jobs are queued or
 * running (shed the request); TG_ESTATE when stopping; TG_ENOMEM. On an
 * error nothing runs. */
TG_WUR int tg_signpool_submit(tg_signpool_t *pool, tg_worker_t *w, void (*work)(void *arg),
                              void (*done)(void *arg, int canceled), void *arg);

/* Jobs queued or running now (relaxed; for metrics). */
size_t tg_signpool_depth(const tg_signpool_t *pool);

/* Lets the queued jobs finish (their done callbacks are posted as usual),
 * stops and joins the threads, and frees the pool. After the workers have
 * stopped taking new requests. NULL is fine. */
void tg_signpool_free(tg_signpool_t *pool);

#endif
