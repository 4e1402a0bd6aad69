/* The status store: one LMDB environment holding OCSP responses, CRLs, the
 * revoked-serial index built from each CRL (one packed, sorted value per CA,
 * searched in place), accepted trust lists and metadata (SPEC §7).
 *
 * Threads: any number of reader threads, each with its own
 * tg_cache_reader_t (a reusable read transaction, MDB_NOTLS), and one writer
 * thread owned by the cache, fed by a bounded queue. Readers never block the
 * writer and the writer never blocks readers (LMDB MVCC).
 *
 * Durability: every write transaction is committed with LMDB's default
 * synchronous flush, so a write whose completion callback reported 0
 * survives kill -9 and power loss; after a crash the environment is always
 * consistent (LMDB's copy-on-write B+tree guarantee: a transaction is either
 * wholly visible or not at all). Readers left behind by a killed process are
 * cleared by mdb_reader_check at open.
 *
 * Schema: the value layouts carry a schema number in the meta database. When
 * tg_cache_open finds an environment written under another schema, it
 * empties the OCSP, CRL and revoked-index databases (they are caches, filled
 * again by the fetchers), keeps the trust lists (stored as received XML) and
 * logs it once.
 *
 * This is the only module that includes lmdb.h. */
#ifndef TG_CACHE_CACHE_H
#define TG_CACHE_CACHE_H

#include "common/buf.h"
#include "common/err.h"
#include "pki/ocsp.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define TG_CACHE_CA_ID_LEN 32      /* SHA-256 of the CA certificate */
#define TG_CACHE_CRL_NUMBER_MAX 20 /* RFC 5280 §5.2.3: at most 20 octets */
#define TG_CACHE_LIST_NAME_MAX 64  /* trust-list name bytes */
#define TG_CACHE_QUEUE_MAX 4096    /* queued writes before puts are refused */
#define TG_CACHE_CRL_GRACE_DEFAULT_S 3600

typedef struct tg_cache tg_cache_t;
typedef struct tg_cache_reader tg_cache_reader_t;

/* Where a cached OCSP response came from. */
typedef enum {
    TG_CACHE_SRC_UPSTREAM = 0,   /* the CA's responder, bytes as the CA signed them */
    TG_CACHE_SRC_SIGNED_CRL = 1, /* signed by us from CRL data */
    TG_CACHE_SRC_SIGNED_LIST = 2 /* signed by us from trust-list status */
} tg_cache_source_t;

/* An OCSP record. On reads, der points into the LMDB map (see
 * tg_cache_get_ocsp); on puts, der is the caller's and is copied. Times are
 * seconds since the epoch. */
typedef struct {
    int64_t this_update;
    int64_t next_update;
    int64_t produced_at;
    uint64_t generation; /* trust-list generation the answer was built under */
    uint8_t source;      /* tg_cache_source_t */
    /* the answer's status for the CertID (tg_cert_status_t, pki/ocsp_sign.h),
     * kept so a reader need not parse the DER; revoked only: */
    uint8_t cert_status;
    int8_t reason; /* CRLReason, -1 when absent */
    int64_t revocation_time;
    tg_slice_t der; /* the DER OCSPResponse */
} tg_cache_ocsp_t;

/* A CRL record; der as in tg_cache_ocsp_t (ignored by
 * tg_cache_put_crl_take, which takes the DER separately). */
typedef struct {
    int64_t this_update;
    int64_t next_update;
    uint8_t crl_number_len; /* 0 when the CRL has no cRLNumber */
    uint8_t crl_number[TG_CACHE_CRL_NUMBER_MAX];
    tg_slice_t der;
    /* Set by tg_cache_get_crl: entries in this CA's revoked index (0 when it
     * has none). Ignored on puts: the index gives it. */
    uint64_t n_revoked;
} tg_cache_crl_t;

/* A revoked-serial index under construction (one per CRL ingest): a compact
 * array of fixed-width records, sorted and written by the cache's writer
 * thread once handed to tg_cache_put_crl_take. Not thread-safe; fill it
 * from one thread at a time. */
typedef struct tg_cache_rindex tg_cache_rindex_t;

/* One entry of the revoked-serial index, as handed to tg_cache_put_crl.
 * serial uses the same encoding as tg_certid_t.serial (content octets of
 * the DER INTEGER), so a CertID's serial can be looked up directly.
 * (88 bytes each: prefer tg_cache_rindex_t for large CRLs.) */
typedef struct {
    uint8_t serial_len; /* 1..TG_SERIAL_MAX_LEN */
    uint8_t serial[TG_SERIAL_MAX_LEN];
    int64_t revocation_time;
    int8_t reason; /* CRLReason (RFC 5280 §5.3.1), -1 when absent */
} tg_cache_revoked_entry_t;

/* A revoked-serial lookup result (plain values, nothing borrowed). */
typedef struct {
    int64_t revocation_time;
    int8_t reason;
} tg_cache_revoked_t;

/* What tg_cache_sweep removed. */
typedef struct {
    uint64_t ocsp;    /* OCSP responses past nextUpdate */
    uint64_t crl;     /* CRLs past nextUpdate + grace */
    uint64_t revoked; /* revoked-index entries of those CRLs */
} tg_cache_sweep_counts_t;

/* Numbers for /metrics. */
typedef struct {
    uint64_t ocsp_entries;
    uint64_t crl_entries;
    uint64_t revoked_entries; /* sum of the CAs' revoked-index entry counts */
    uint64_t trustlist_entries;
    uint64_t map_size;   /* bytes */
    uint64_t used_bytes; /* (last used page + 1) * page size */
    uint64_t map_full;   /* MDB_MAP_FULL occurrences (first try and retry each count) */
    uint64_t writes;     /* queued writes committed */
    uint64_t write_errors;
    uint64_t stale_readers_cleared; /* by mdb_reader_check at open */
} tg_cache_stats_t;

/* Completion of a queued write, called on the cache's writer thread with 0,
 * TG_ENOTFOUND (delete of a missing key), TG_ETOOBIG (map full even after a
 * sweep and a retry; the write is dropped) or TG_EIO. Must not block for
 * long and must not call tg_cache_close. */
typedef void (*tg_cache_done_cb)(void *arg, int status);

/* Opens (creating it 0750 if missing) the environment directory path with a
 * map of map_size_mb MiB, runs mdb_reader_check, opens the named databases
 * (emptying the cached ones if the schema changed; see the top of this
 * file) and starts the writer thread. On success *out_cache is owned by the caller
 * and released with tg_cache_close. Returns TG_EINVAL for a bad argument,
 * TG_EIO when LMDB or the file system fails (logged), TG_ENOMEM. */
TG_WUR int tg_cache_open(const char *path, size_t map_size_mb, tg_cache_t **out_cache);

/* Processes every queued write (their callbacks run), stops the writer
 * thread and closes the environment. All readers must have been freed.
 * Accepts NULL. */
void tg_cache_close(tg_cache_t *cache);

/* Sets the grace period (seconds, >= 0) past a CRL's nextUpdate after which
 * the sweep run on MDB_MAP_FULL deletes it (default
 * TG_CACHE_CRL_GRACE_DEFAULT_S). Safe from any thread. */
void tg_cache_set_crl_grace(tg_cache_t *cache, int64_t grace_s);

/* Fills *out_stats. Safe from any thread. Returns 0 or TG_EIO. */
TG_WUR int tg_cache_stats(tg_cache_t *cache, tg_cache_stats_t *out_stats);

/* ---- Readers ------------------------------------------------------------
 *
 * One tg_cache_reader_t per thread (it is not thread-safe, but may move
 * between threads while idle thanks to MDB_NOTLS). Usage per request:
 *
 *     tg_cache_rd_begin(r); tg_cache_get_ocsp(r, id, &rec); ... use rec.der ...
 *     tg_cache_rd_end(r);
 *
 * begin/end renew and reset one read transaction (no allocation, no system
 * call in the common case). Keep the span short and never hold it across a
 * callback or an event-loop turn: an open read transaction pins its
 * snapshot and stops the writer from reusing pages. */

/* Creates a reader for cache in *out_reader (caller frees it with
 * tg_cache_reader_free before tg_cache_close). Returns 0, TG_ENOMEM or
 * TG_EIO (e.g. all LMDB reader slots taken). */
TG_WUR int tg_cache_reader_new(tg_cache_t *cache, tg_cache_reader_t **out_reader);

/* Ends any open transaction and frees the reader. Accepts NULL. */
void tg_cache_reader_free(tg_cache_reader_t *reader);

/* Starts a read transaction on the newest committed snapshot. Returns 0,
 * TG_ESTATE if one is already open, TG_EIO. */
TG_WUR int tg_cache_rd_begin(tg_cache_reader_t *reader);

/* Ends the read transaction; every slice obtained inside it becomes
 * invalid. Harmless when none is open. */
void tg_cache_rd_end(tg_cache_reader_t *reader);

/* Looks up the OCSP response from source for id (algorithm, both hashes
 * and serial): each CertID holds one record per source (an upstream answer
 * as received, an answer trustgate signed). On 0, *out_rec holds the header and out_rec->der points
 * into the map: read-only, valid until tg_cache_rd_end. Returns TG_ENOTFOUND, TG_EINVAL (bad
 * CertID), TG_ESTATE (no transaction open), TG_EIO. Does not allocate. */
TG_WUR int tg_cache_get_ocsp(tg_cache_reader_t *reader, tg_cache_source_t source,
                             const tg_certid_t *id, tg_cache_ocsp_t *out_rec);

/* Looks up the CRL of the CA whose certificate has SHA-256 ca_id, and the
 * number of entries of its revoked index (out_crl->n_revoked). Borrowing
 * and errors as tg_cache_get_ocsp. */
TG_WUR int tg_cache_get_crl(tg_cache_reader_t *reader, const uint8_t ca_id[TG_CACHE_CA_ID_LEN],
                            tg_cache_crl_t *out_crl);

/* Looks up serial (content octets of the INTEGER, serial_len bytes; exact
 * match of bytes and length, so 01 and 00 01 and 01 00 are three serials)
 * in the revoked index of CA ca_id by binary search in the mapped value:
 * no allocation, O(log n). Returns 0 with *out_revoked filled (copied; with
 * duplicate entries in the CRL, any one of them), TG_ENOTFOUND when not
 * revoked (or no CRL, or an empty index), TG_EINVAL, TG_ESTATE, TG_EIO (a
 * malformed stored index). */
TG_WUR int tg_cache_get_revoked(tg_cache_reader_t *reader, const uint8_t ca_id[TG_CACHE_CA_ID_LEN],
                                const uint8_t *serial, size_t serial_len,
                                tg_cache_revoked_t *out_revoked);

/* Looks up the stored trust list called name. On 0, *out_xml points into
 * the map, valid until tg_cache_rd_end. Errors as tg_cache_get_ocsp. */
TG_WUR int tg_cache_get_trustlist(tg_cache_reader_t *reader, tg_slice_t name, tg_slice_t *out_xml);

/* ---- Writes (queued to the writer thread) --------------------------------
 *
 * Every put/delete copies its inputs (except tg_cache_put_crl_take, which
 * takes them over) and returns at once: 0 when queued (cb, if not NULL, is
 * then called exactly once with the outcome), TG_EINVAL, TG_ENOMEM,
 * TG_ETOOBIG when the queue holds TG_CACHE_QUEUE_MAX writes (or a value
 * would exceed LMDB's 4 GiB limit), TG_ESTATE while closing. On a synchronous failure cb is never
 * called. Writes are applied in queue order; several are batched per
 * transaction. Never blocks, so it may be called from an event loop. */

/* Stores (replaces) the OCSP response for id under rec->source. */
TG_WUR int tg_cache_put_ocsp(tg_cache_t *cache, const tg_certid_t *id, const tg_cache_ocsp_t *rec,
                             tg_cache_done_cb cb, void *arg);

/* Replaces the CRL of CA ca_id and its whole revoked index with crl and the
 * n_revoked entries (any order; revoked[i].serial_len 1..TG_SERIAL_MAX_LEN),
 * in one write transaction: readers see the old CRL and index or the new
 * ones, never a mix. Copies crl->der and the entries (into a
 * tg_cache_rindex_t) and then works as tg_cache_put_crl_take; the caller
 * keeps everything it passed. */
TG_WUR int tg_cache_put_crl(tg_cache_t *cache, const uint8_t ca_id[TG_CACHE_CA_ID_LEN],
                            const tg_cache_crl_t *crl, const tg_cache_revoked_entry_t *revoked,
                            size_t n_revoked, tg_cache_done_cb cb, void *arg);

/* Creates in *out an empty index builder with room for n entries (n may be
 * 0; at most UINT32_MAX) whose serials are at most max_serial_len
 * (1..TG_SERIAL_MAX_LEN) bytes. Memory: about n * (max_serial_len + 10)
 * bytes, allocated here (zeroed pages, so touched only as entries are
 * added); pass the CRL's real longest serial, not TG_SERIAL_MAX_LEN, to keep
 * it small. The caller owns *out and frees it with tg_cache_rindex_free,
 * unless it hands it to tg_cache_put_crl_take. Returns 0, TG_EINVAL (bad
 * argument; *out is then NULL) or TG_ENOMEM. */
TG_WUR int tg_cache_rindex_new(size_t n, size_t max_serial_len, tg_cache_rindex_t **out);

/* Appends one entry, in any order (the writer sorts); serial (content
 * octets of the INTEGER, as tg_certid_t.serial) is copied. reason is the
 * CRLReason (RFC 5280 §5.3.1), -1 when absent. The same serial may be added
 * more than once. Returns 0, or TG_EINVAL when ix is full, serial is NULL,
 * serial_len is 0 or greater than ix's max_serial_len (ix unchanged). */
TG_WUR int tg_cache_rindex_add(tg_cache_rindex_t *ix, const uint8_t *serial, size_t serial_len,
                               int64_t revocation_time, int8_t reason);

/* Returns the number of entries added so far (0 for NULL). */
size_t tg_cache_rindex_count(const tg_cache_rindex_t *ix);

/* Frees an index builder that was not handed to tg_cache_put_crl_take.
 * Accepts NULL. */
void tg_cache_rindex_free(tg_cache_rindex_t *ix);

/* Like tg_cache_put_crl, but takes ownership instead of copying. der->data
 * (malloc'd, as every tg_buf_t's; the DER CertificateList, der->len bytes)
 * is moved out and *der left empty (tg_buf_init state) whatever the outcome,
 * and index (NULL or empty = no revoked entries) is owned by the cache from
 * the call on, even on a synchronous failure: the caller must not touch or
 * free either afterwards. crl->der and crl->n_revoked are ignored; crl
 * itself is only read during the call. The index is sorted on the writer
 * thread, not the caller's, and both buffers are copied straight into
 * LMDB's pages (MDB_RESERVE), then freed after cb. A DER of 1 MiB or more
 * is first written here, on the calling thread, to an unlinked temporary
 * file in the cache's folder and freed, so that it is never in memory
 * twice (the writer reads it into LMDB's pages): a big CRL costs file I/O
 * in this call, so make it from a worker thread, not an event loop. Returns as the other
 * writes; TG_EINVAL also when der is NULL or der->len > 0 with no data, and
 * TG_ETOOBIG when the DER or the packed index would exceed 4 GiB. */
TG_WUR int tg_cache_put_crl_take(tg_cache_t *cache, const uint8_t ca_id[TG_CACHE_CA_ID_LEN],
                                 const tg_cache_crl_t *crl, tg_buf_t *der, tg_cache_rindex_t *index,
                                 tg_cache_done_cb cb, void *arg);

/* Stores (replaces) the trust list called name (1..TG_CACHE_LIST_NAME_MAX
 * bytes). */
TG_WUR int tg_cache_put_trustlist(tg_cache_t *cache, tg_slice_t name, tg_slice_t xml,
                                  tg_cache_done_cb cb, void *arg);

/* Deletes the OCSP response from source for id. */
TG_WUR int tg_cache_delete_ocsp(tg_cache_t *cache, tg_cache_source_t source, const tg_certid_t *id,
                                tg_cache_done_cb cb, void *arg);

/* Deletes the CRL of CA ca_id and its revoked index (TG_ENOTFOUND via cb
 * when there was no CRL). */
TG_WUR int tg_cache_delete_crl(tg_cache_t *cache, const uint8_t ca_id[TG_CACHE_CA_ID_LEN],
                               tg_cache_done_cb cb, void *arg);

/* Deletes the trust list called name. */
TG_WUR int tg_cache_delete_trustlist(tg_cache_t *cache, tg_slice_t name, tg_cache_done_cb cb,
                                     void *arg);

/* Deletes OCSP responses whose nextUpdate < now and CRLs (with their
 * revoked index) whose nextUpdate + crl_grace_s < now, in one write
 * transaction from the calling thread (serialised with the writer by
 * LMDB). Fills *out_counts when not NULL. Returns 0, TG_EIO, or TG_ETOOBIG
 * if even the deletions cannot get pages. */
TG_WUR int tg_cache_sweep(tg_cache_t *cache, int64_t now, int64_t crl_grace_s,
                          tg_cache_sweep_counts_t *out_counts);

/* ---- Synchronous bulk write (tools, start-up) ---------------------------- */

/* Stores (replaces) n OCSP records, recs[i] for ids[i] under
 * recs[i].source, encoded as tg_cache_put_ocsp encodes them, in one write
 * transaction run on the calling thread: not queued, no callback. It
 * BLOCKS: on LMDB's write lock (shared with the writer thread and
 * tg_cache_sweep, so queued writes wait meanwhile), on the page writes and
 * on the synchronous flush at commit. Meant for tools (bench fills) and
 * start-up; never call it from an event loop.
 *
 * Ownership: ids, recs and their DER are only read during the call; the
 * caller keeps them. Readers see all n records or none of them (durable as
 * any commit once it returns 0).
 *
 * Speed: when the keys are strictly ascending (as LMDB orders the CertID
 * keys: same algorithm and issuer, serials of one length, increasing) and
 * the first sorts after the last key already stored, the records are
 * appended (MDB_APPEND: full pages, no search); otherwise each is an
 * ordinary put. Keep a batch to some tens of thousands of records (LMDB
 * bounds the pages one transaction may dirty).
 *
 * Returns 0 (also for n == 0), TG_EINVAL (cache NULL, ids or recs NULL
 * with n > 0, an invalid CertID or source, DER with a length but no bytes;
 * checked before anything is written), TG_ETOOBIG (LMDB map full, counted
 * in tg_cache_stats' map_full, or a batch too big for one transaction;
 * no sweep is tried, call tg_cache_sweep and retry if expired records may
 * make room; also for a value over LMDB's 4 GiB limit) or TG_EIO. On any
 * failure nothing of the batch is written; LMDB failures are logged once
 * (argument errors are not logged, as with the queued puts). The records
 * do not count in tg_cache_stats' writes (queued writes only). Callable
 * from any thread while the cache is open (not once tg_cache_close has
 * begun). */
TG_WUR int tg_cache_put_ocsp_batch(tg_cache_t *cache, const tg_certid_t *ids,
                                   const tg_cache_ocsp_t *recs, size_t n);

/* ---- Waiting for a write (tests, start-up, tools) ------------------------ */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int status;
} tg_cache_waiter_t;

/* Prepares w; pass tg_cache_waiter_cb and w as a write's cb and arg. */
void tg_cache_waiter_init(tg_cache_waiter_t *w);

/* The completion callback that signals a tg_cache_waiter_t. */
void tg_cache_waiter_cb(void *arg, int status);

/* Blocks until the write completed, releases w's resources and returns the
 * write's status. Call exactly once per init, and only when the write was
 * queued (its put returned 0); otherwise use tg_cache_waiter_destroy. */
TG_WUR int tg_cache_waiter_wait(tg_cache_waiter_t *w);

/* Releases an initialised waiter that was never used. */
void tg_cache_waiter_destroy(tg_cache_waiter_t *w);

#endif
