/* The trust-list manager (SPEC §2, §6): keeps the list of every configured
 * side loaded, verified and in force. Runs on the server's main loop;
 * reading, fetching and verifying happen in libuv's thread pool, never on a
 * worker loop. An accepted list is persisted under the cache folder and
 * published to the workers as a new generation at once; a refused one
 * leaves the last good list in force and says why. */
#ifndef TG_RESPONDER_TLMGR_H
#define TG_RESPONDER_TLMGR_H

#include "common/buf.h"
#include "common/err.h"

typedef struct tg_server tg_server_t;
typedef struct tg_tlmgr tg_tlmgr_t;

/* Creates the manager for the server's current configuration and loads,
 * synchronously, each list's persisted copy and then its source, so the
 * server answers from the lists as soon as it listens. A list that cannot be
 * loaded is logged (the server still starts; /readyz says what is missing).
 * Publishes the first snapshot. Main thread, before the main loop runs.
 * Returns 0 and *out_mgr (free with tg_tlmgr_free), or TG_ENOMEM. */
TG_WUR int tg_tlmgr_new(tg_server_t *srv, tg_tlmgr_t **out_mgr);

/* Starts watching file sources (inotify through uv_fs_event, robust to a
 * file replaced by rename) and the periodic fetch of URL sources on the
 * server's main loop. Returns 0 or TG_EUV (logged). */
TG_WUR int tg_tlmgr_start(tg_tlmgr_t *mgr);

/* Completion of a reload: accepted and refused count the lists. */
typedef void (*tg_tlmgr_done_cb)(void *arg, int accepted, int refused);

/* Reloads every list from its source now (SIGHUP, admin `reload`). When
 * done (each list accepted, unchanged or refused, and any new snapshot
 * published), calls cb(arg, ...) on the main loop; cb may be NULL. */
void tg_tlmgr_reload(tg_tlmgr_t *mgr, tg_tlmgr_done_cb cb, void *arg);

/* Takes up a new configuration after a reload: lists are matched by name;
 * accepted lists are kept when they still verify against the new pinned
 * certificates; watchers and timers follow the new sources; then every list
 * is reloaded; cb as for tg_tlmgr_reload. Main loop. */
void tg_tlmgr_reconfigure(tg_tlmgr_t *mgr, tg_tlmgr_done_cb cb, void *arg);

/* Appends the manager's Prometheus metrics (loads, refusals by reason,
 * last success, sequence, staleness, CAs and categories per status).
 * Thread-safe (any worker). Returns 0 or TG_ENOMEM. */
TG_WUR int tg_tlmgr_render_metrics(tg_tlmgr_t *mgr, tg_buf_t *out);

/* Conditional-request state of a URL source. */
typedef struct {
    char etag[256];
    char last_modified[64];
    int not_modified; /* set by the last fetch: 304, out untouched */
} tg_tl_fetch_cache_t;

/* Reads a list source into out (appended): a file path, or an http(s) URL
 * (file: only with allow_file_urls) fetched with libcurl within timeout_ms,
 * conditionally when cache (may be NULL) holds an ETag or Last-Modified.
 * At most TG_TL_MAX_BYTES. Blocking: thread pool or command line only.
 * Returns 0 (see cache->not_modified), TG_EIO or TG_ETOOBIG with err set,
 * or TG_ENOMEM. */
TG_WUR int tg_tl_fetch_source(const char *source, int is_url, int allow_file_urls, long timeout_ms,
                              tg_tl_fetch_cache_t *cache, tg_buf_t *out, char *err, size_t err_len);

/* Stops watchers and timers (their handles close on the main loop). */
void tg_tlmgr_stop(tg_tlmgr_t *mgr);

/* Frees the manager after tg_tlmgr_stop and the main loop ended. NULL is
 * fine. */
void tg_tlmgr_free(tg_tlmgr_t *mgr);

#endif
