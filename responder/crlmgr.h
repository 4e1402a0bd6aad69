/* The CRL manager (SPEC §5, §7; issue 4 item 2): keeps the CRL of every
 * listed CA fetched, verified and indexed in the cache.
 *
 * For each CA of the trust lists in force that is not terminated (active,
 * suspended, or listed from a later time) and names a CRL supply point, it fetches the CRL on the
 * fetcher thread (libcurl multi, fetch/fetch.h), verifies it on its own ingest thread (pki/crl.h:
 * issuer, times, SM2-aware signature against the CA certificate from the list; the CRL number never
 * goes backwards) and stores the CRL with its revoked-serial index in one cache write. Nothing here
 * runs on a worker loop. A refused or failed fetch keeps the CRL in force and retries with jittered
 * exponential backoff; a good one is refetched (conditionally) every refresh_s of its list, or
 * sooner as its nextUpdate comes near. The ingest thread also sweeps the cache of answers past
 * their nextUpdate and CRLs an hour past theirs, a minute after start and every ten minutes (SPEC
 * §7). */
#ifndef TG_RESPONDER_CRLMGR_H
#define TG_RESPONDER_CRLMGR_H

#include "cache/cache.h"
#include "common/buf.h"
#include "common/err.h"

typedef struct tg_crlmgr tg_crlmgr_t;
struct tg_gen; /* responder_internal.h */

/* Creates the manager and starts its fetcher and ingest threads; it fetches
 * nothing until the first tg_crlmgr_update. cache is borrowed and must
 * outlive the manager. Returns 0 and *out_mgr (tg_crlmgr_free), TG_ENOMEM,
 * TG_EUV or TG_EIO (logged). */
TG_WUR int tg_crlmgr_new(tg_cache_t *cache, tg_crlmgr_t **out_mgr);

/* Takes up the CAs of a new generation (a reference to gen is taken): new CAs are fetched at once,
 * CAs no longer listed (or terminated) are dropped (their cached CRL stays until swept), and
 * configuration changes (URLs, limits) apply to the next fetch. Any
 * thread; returns at once. */
void tg_crlmgr_update(tg_crlmgr_t *mgr, struct tg_gen *gen);

/* Fetches every CRL now (SIGHUP, admin `reload`). Any thread. */
void tg_crlmgr_refresh(tg_crlmgr_t *mgr);

/* Appends the manager's Prometheus metrics: fetches by result, and per CA
 * the CRL's age, time to nextUpdate, entry count, number, last success and
 * consecutive failures. Any thread. Returns 0 or TG_ENOMEM. */
TG_WUR int tg_crlmgr_render_metrics(tg_crlmgr_t *mgr, tg_buf_t *out);

/* Stops the threads (a running ingest finishes its current walk and is
 * abandoned before its write; a write already queued completes, in
 * tg_cache_close at the latest), drops every CA and frees the manager. Not
 * from the fetcher thread. NULL is fine. */
void tg_crlmgr_free(tg_crlmgr_t *mgr);

#endif
