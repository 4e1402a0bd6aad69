/* LMDB status store (SPEC §7). See cache.h for the threading and
 * durability contract.
 *
 * Value layouts are native-endian (an LMDB environment is not portable
 * across architectures anyway) and decoded with memcpy, because LMDB only
 * guarantees 2-byte alignment of values. */
#include "cache/cache.h"

#include "common/log.h"

#include <errno.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define KEY_MAX (1 + 2 * TG_HASH_MAX_LEN + TG_SERIAL_MAX_LEN)
#define BATCH_MAX 64
#define MAX_READERS 256
#define SCHEMA_VERSION 1

/* ocsp value: ver u8 | source u8 | pad[2] | generation u64 | this i64 |
 * next i64 | produced i64 | DER */
#define OCSP_HDR_LEN 36
/* crl value: ver u8 | number_len u8 | number[20] | this i64 | next i64 | DER */
#define CRL_HDR_LEN 38
/* revoked value: time i64 | reason i8 */
#define REVOKED_VAL_LEN 9

enum { DB_OCSP, DB_CRL, DB_REVOKED, DB_TRUSTLIST, DB_META, DB_COUNT };
static const char *const db_names[DB_COUNT] = {"ocsp", "crl", "revoked", "trustlist", "meta"};

typedef enum { OP_PUT_OCSP, OP_PUT_CRL, OP_PUT_TL, OP_DEL_OCSP, OP_DEL_CRL, OP_DEL_TL } op_kind_t;

typedef struct op {
    struct op *next;
    op_kind_t kind;
    size_t key_len;
    uint8_t key[KEY_MAX];
    uint8_t *val; /* owned encoded value (puts) */
    size_t val_len;
    tg_cache_revoked_entry_t *revoked; /* owned copy (OP_PUT_CRL) */
    size_t n_revoked;
    tg_cache_done_cb cb;
    void *arg;
    int status;
} op_t;

struct tg_cache {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    pthread_t writer;
    int writer_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    op_t *head, *tail;
    size_t queued;
    int stopping;
    _Atomic int64_t crl_grace_s;
    _Atomic uint64_t map_full, writes, write_errors;
    uint64_t stale_readers_cleared;
};

struct tg_cache_reader {
    tg_cache_t *cache;
    MDB_txn *txn;
    int open;
};

/* Internal result of an LMDB write step: a TG_E* code, or MAP_FULL. */
#define RC_MAP_FULL 1

static int map_err(const char *what, int rc)
{
    if (rc == 0)
        return 0;
    if (rc == MDB_MAP_FULL)
        return RC_MAP_FULL;
    if (rc == MDB_NOTFOUND)
        return TG_ENOTFOUND;
    tg_error("cache: %s: %s", what, mdb_strerror(rc));
    return TG_EIO;
}

/* ---- encoding ------------------------------------------------------------ */

static int ocsp_key(const tg_certid_t *id, uint8_t *key, size_t *out_len)
{
    if (id == NULL || (unsigned)id->alg >= TG_HASH_COUNT || id->hash_len == 0 ||
        id->hash_len > TG_HASH_MAX_LEN || id->serial_len == 0 || id->serial_len > TG_SERIAL_MAX_LEN)
        return TG_EINVAL;
    /* alg | name hash | key hash | serial: the hash length is fixed by alg,
     * so the concatenation is unambiguous and never the serial alone. */
    size_t n = 0;
    key[n++] = (uint8_t)id->alg;
    memcpy(key + n, id->name_hash, id->hash_len);
    n += id->hash_len;
    memcpy(key + n, id->key_hash, id->hash_len);
    n += id->hash_len;
    memcpy(key + n, id->serial, id->serial_len);
    n += id->serial_len;
    *out_len = n;
    return 0;
}

static int64_t get_i64(const uint8_t *p)
{
    int64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void decode_ocsp(const MDB_val *v, tg_cache_ocsp_t *out)
{
    const uint8_t *p = v->mv_data;
    out->source = p[1];
    memcpy(&out->generation, p + 4, 8);
    out->this_update = get_i64(p + 12);
    out->next_update = get_i64(p + 20);
    out->produced_at = get_i64(p + 28);
    out->der = TG_SLICE(p + OCSP_HDR_LEN, v->mv_size - OCSP_HDR_LEN);
}

static void decode_crl(const MDB_val *v, tg_cache_crl_t *out)
{
    const uint8_t *p = v->mv_data;
    out->crl_number_len = p[1];
    memcpy(out->crl_number, p + 2, TG_CACHE_CRL_NUMBER_MAX);
    out->this_update = get_i64(p + 22);
    out->next_update = get_i64(p + 30);
    out->der = TG_SLICE(p + CRL_HDR_LEN, v->mv_size - CRL_HDR_LEN);
}

/* ---- write steps (inside a write transaction) ----------------------------- */

/* Deletes every revoked-index entry of CA ca (the 32-byte key prefix). */
static int delete_revoked_of(tg_cache_t *c, MDB_txn *txn, const uint8_t *ca, uint64_t *out_n)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, c->dbi[DB_REVOKED], &cur);
    if (rc != 0)
        return map_err("mdb_cursor_open", rc);
    MDB_val k = {.mv_size = TG_CACHE_CA_ID_LEN, .mv_data = (void *)ca}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= TG_CACHE_CA_ID_LEN &&
           memcmp(k.mv_data, ca, TG_CACHE_CA_ID_LEN) == 0) {
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0)
            break;
        if (out_n != NULL)
            (*out_n)++;
        /* Seek again rather than rely on the cursor's position after a
         * delete: O(log n) each, and unaffected by page merges. */
        k.mv_size = TG_CACHE_CA_ID_LEN;
        k.mv_data = (void *)ca;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND || rc == 0)
        return 0;
    return map_err("revoked range delete", rc);
}

/* LMDB's default key order: memcmp over the common length, shorter
 * first. Inserting in key order keeps the B+tree writes local. */
static int revoked_cmp(const void *a, const void *b)
{
    const tg_cache_revoked_entry_t *x = a, *y = b;
    size_t n = x->serial_len < y->serial_len ? x->serial_len : y->serial_len;
    int d = memcmp(x->serial, y->serial, n);
    if (d != 0)
        return d;
    return (int)x->serial_len - (int)y->serial_len;
}

static int apply_op(tg_cache_t *c, MDB_txn *txn, op_t *op)
{
    MDB_val k = {.mv_size = op->key_len, .mv_data = op->key};
    MDB_val v = {.mv_size = op->val_len, .mv_data = op->val};
    int rc;
    switch (op->kind) {
    case OP_PUT_OCSP: return map_err("mdb_put ocsp", mdb_put(txn, c->dbi[DB_OCSP], &k, &v, 0));
    case OP_PUT_TL:
        return map_err("mdb_put trustlist", mdb_put(txn, c->dbi[DB_TRUSTLIST], &k, &v, 0));
    case OP_DEL_OCSP: return map_err("mdb_del ocsp", mdb_del(txn, c->dbi[DB_OCSP], &k, NULL));
    case OP_DEL_TL:
        return map_err("mdb_del trustlist", mdb_del(txn, c->dbi[DB_TRUSTLIST], &k, NULL));
    case OP_DEL_CRL:
        rc = delete_revoked_of(c, txn, op->key, NULL);
        if (rc != 0)
            return rc;
        return map_err("mdb_del crl", mdb_del(txn, c->dbi[DB_CRL], &k, NULL));
    case OP_PUT_CRL: {
        rc = delete_revoked_of(c, txn, op->key, NULL);
        if (rc != 0)
            return rc;
        rc = mdb_put(txn, c->dbi[DB_CRL], &k, &v, 0);
        if (rc != 0)
            return map_err("mdb_put crl", rc);
        if (op->n_revoked > 1)
            qsort(op->revoked, op->n_revoked, sizeof *op->revoked, revoked_cmp);
        uint8_t rk[TG_CACHE_CA_ID_LEN + TG_SERIAL_MAX_LEN];
        uint8_t rv[REVOKED_VAL_LEN];
        memcpy(rk, op->key, TG_CACHE_CA_ID_LEN);
        for (size_t i = 0; i < op->n_revoked; i++) {
            const tg_cache_revoked_entry_t *e = &op->revoked[i];
            memcpy(rk + TG_CACHE_CA_ID_LEN, e->serial, e->serial_len);
            memcpy(rv, &e->revocation_time, 8);
            rv[8] = (uint8_t)e->reason;
            MDB_val rkv = {.mv_size = TG_CACHE_CA_ID_LEN + e->serial_len, .mv_data = rk};
            MDB_val rvv = {.mv_size = sizeof rv, .mv_data = rv};
            rc = mdb_put(txn, c->dbi[DB_REVOKED], &rkv, &rvv, 0);
            if (rc != 0)
                return map_err("mdb_put revoked", rc);
        }
        return 0;
    }
    }
    return TG_EINVAL;
}

/* Runs ops[0..n) in one write transaction. Returns 0 (each op's status set,
 * 0 or TG_ENOTFOUND) or the first failure, with nothing committed. */
static int run_txn(tg_cache_t *c, op_t **ops, size_t n)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(c->env, NULL, 0, &txn);
    if (rc != 0)
        return map_err("mdb_txn_begin", rc);
    for (size_t i = 0; i < n; i++) {
        rc = apply_op(c, txn, ops[i]);
        if (rc != 0 && rc != TG_ENOTFOUND) {
            mdb_txn_abort(txn);
            return rc;
        }
        ops[i]->status = rc;
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0)
        return map_err("mdb_txn_commit", rc);
    return 0;
}

static void run_single(tg_cache_t *c, op_t *op)
{
    int rc = run_txn(c, &op, 1);
    if (rc == RC_MAP_FULL) {
        atomic_fetch_add(&c->map_full, 1);
        tg_warn("cache: LMDB map full; sweeping expired entries and retrying once");
        tg_cache_sweep_counts_t sc;
        int64_t now = (int64_t)time(NULL);
        if (tg_cache_sweep(c, now, atomic_load(&c->crl_grace_s), &sc) == 0)
            tg_info("cache: sweep freed %llu ocsp, %llu crl, %llu revoked entries",
                    (unsigned long long)sc.ocsp, (unsigned long long)sc.crl,
                    (unsigned long long)sc.revoked);
        rc = run_txn(c, &op, 1);
        if (rc == RC_MAP_FULL) {
            atomic_fetch_add(&c->map_full, 1);
            tg_error("cache: LMDB map still full after sweep; write dropped");
            rc = TG_ETOOBIG;
        }
    }
    if (rc != 0)
        op->status = rc;
}

static void op_free(op_t *op)
{
    free(op->val);
    free(op->revoked);
    free(op);
}

static void process_batch(tg_cache_t *c, op_t **ops, size_t n)
{
    if (run_txn(c, ops, n) != 0) {
        /* One op spoiled the batch (map full, I/O): redo them one by one so
         * only the culprit fails. */
        for (size_t i = 0; i < n; i++)
            run_single(c, ops[i]);
    }
    for (size_t i = 0; i < n; i++) {
        if (ops[i]->status == 0)
            atomic_fetch_add(&c->writes, 1);
        else if (ops[i]->status != TG_ENOTFOUND)
            atomic_fetch_add(&c->write_errors, 1);
        if (ops[i]->cb != NULL)
            ops[i]->cb(ops[i]->arg, ops[i]->status);
        op_free(ops[i]);
    }
}

static void *writer_main(void *arg)
{
    tg_cache_t *c = arg;
    op_t *batch[BATCH_MAX];
    tg_log_set_thread_tag("cache-w");
    for (;;) {
        size_t n = 0;
        pthread_mutex_lock(&c->mu);
        while (c->head == NULL && !c->stopping)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->head == NULL && c->stopping) {
            pthread_mutex_unlock(&c->mu);
            return NULL;
        }
        while (c->head != NULL && n < BATCH_MAX) {
            batch[n++] = c->head;
            c->head = c->head->next;
            c->queued--;
        }
        if (c->head == NULL)
            c->tail = NULL;
        pthread_mutex_unlock(&c->mu);
        process_batch(c, batch, n);
    }
}

static int enqueue(tg_cache_t *c, op_t *op, tg_cache_done_cb cb, void *arg)
{
    op->cb = cb;
    op->arg = arg;
    op->next = NULL;
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    if (c->stopping)
        rc = TG_ESTATE;
    else if (c->queued >= TG_CACHE_QUEUE_MAX)
        rc = TG_ETOOBIG;
    if (rc == 0) {
        if (c->tail != NULL)
            c->tail->next = op;
        else
            c->head = op;
        c->tail = op;
        c->queued++;
        pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    if (rc != 0)
        op_free(op);
    return rc;
}

static op_t *op_new(op_kind_t kind, size_t val_len)
{
    op_t *op = calloc(1, sizeof *op);
    if (op == NULL)
        return NULL;
    op->kind = kind;
    if (val_len > 0) {
        op->val = malloc(val_len);
        if (op->val == NULL) {
            free(op);
            return NULL;
        }
        op->val_len = val_len;
    }
    return op;
}

/* ---- open / close ---------------------------------------------------------- */

static int open_dbs(tg_cache_t *c)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(c->env, NULL, 0, &txn);
    if (rc != 0)
        return map_err("mdb_txn_begin", rc);
    for (int i = 0; i < DB_COUNT; i++) {
        rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &c->dbi[i]);
        if (rc != 0) {
            mdb_txn_abort(txn);
            tg_error("cache: mdb_dbi_open %s: %s", db_names[i], mdb_strerror(rc));
            return TG_EIO;
        }
    }
    uint32_t ver = SCHEMA_VERSION;
    MDB_val k = {.mv_size = 6, .mv_data = "schema"}, v = {.mv_size = sizeof ver, .mv_data = &ver};
    rc = mdb_put(txn, c->dbi[DB_META], &k, &v, 0);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return map_err("mdb_put meta", rc) == RC_MAP_FULL ? TG_ETOOBIG : TG_EIO;
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0)
        return map_err("mdb_txn_commit", rc) == RC_MAP_FULL ? TG_ETOOBIG : TG_EIO;
    return 0;
}

int tg_cache_open(const char *path, size_t map_size_mb, tg_cache_t **out_cache)
{
    if (path == NULL || out_cache == NULL || map_size_mb == 0 ||
        map_size_mb > SIZE_MAX / (1024 * 1024))
        return TG_EINVAL;
    *out_cache = NULL;
    if (mkdir(path, 0750) != 0 && errno != EEXIST) {
        tg_error("cache: mkdir %s: %s", path, strerror(errno));
        return TG_EIO;
    }
    tg_cache_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return TG_ENOMEM;
    atomic_init(&c->crl_grace_s, TG_CACHE_CRL_GRACE_DEFAULT_S);
    atomic_init(&c->map_full, 0);
    atomic_init(&c->writes, 0);
    atomic_init(&c->write_errors, 0);
    int err = TG_EIO;
    int mu_ok = 0;
    int rc = mdb_env_create(&c->env);
    if (rc != 0) {
        tg_error("cache: mdb_env_create: %s", mdb_strerror(rc));
        c->env = NULL;
        goto out;
    }
    if ((rc = mdb_env_set_maxdbs(c->env, DB_COUNT)) != 0 ||
        (rc = mdb_env_set_maxreaders(c->env, MAX_READERS)) != 0 ||
        (rc = mdb_env_set_mapsize(c->env, map_size_mb * 1024 * 1024)) != 0) {
        tg_error("cache: mdb_env_set_*: %s", mdb_strerror(rc));
        goto out;
    }
    /* MDB_NOTLS: read transactions belong to tg_cache_reader_t objects, not
     * threads; default sync flags keep every commit durable. */
    rc = mdb_env_open(c->env, path, MDB_NOTLS, 0640);
    if (rc != 0) {
        tg_error("cache: mdb_env_open %s: %s", path, mdb_strerror(rc));
        goto out;
    }
    int dead = 0;
    rc = mdb_reader_check(c->env, &dead);
    if (rc != 0) {
        tg_error("cache: mdb_reader_check: %s", mdb_strerror(rc));
        goto out;
    }
    c->stale_readers_cleared = (uint64_t)dead;
    tg_info("cache: opened %s (%zu MiB), cleared %d stale reader(s)", path, map_size_mb, dead);
    err = open_dbs(c);
    if (err != 0)
        goto out;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        err = TG_ENOMEM;
        goto out;
    }
    if (pthread_cond_init(&c->cv, NULL) != 0) {
        pthread_mutex_destroy(&c->mu);
        err = TG_ENOMEM;
        goto out;
    }
    mu_ok = 1;
    if (pthread_create(&c->writer, NULL, writer_main, c) != 0) {
        tg_error("cache: cannot start the writer thread");
        err = TG_EIO;
        goto out;
    }
    c->writer_started = 1;
    *out_cache = c;
    return 0;
out:
    if (mu_ok) {
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
    }
    if (c->env != NULL)
        mdb_env_close(c->env);
    free(c);
    return err;
}

void tg_cache_close(tg_cache_t *cache)
{
    if (cache == NULL)
        return;
    pthread_mutex_lock(&cache->mu);
    cache->stopping = 1;
    pthread_cond_signal(&cache->cv);
    pthread_mutex_unlock(&cache->mu);
    if (cache->writer_started)
        pthread_join(cache->writer, NULL);
    pthread_cond_destroy(&cache->cv);
    pthread_mutex_destroy(&cache->mu);
    mdb_env_close(cache->env);
    free(cache);
}

void tg_cache_set_crl_grace(tg_cache_t *cache, int64_t grace_s)
{
    atomic_store(&cache->crl_grace_s, grace_s);
}

int tg_cache_stats(tg_cache_t *cache, tg_cache_stats_t *out_stats)
{
    memset(out_stats, 0, sizeof *out_stats);
    MDB_txn *txn;
    int rc = mdb_txn_begin(cache->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        tg_error("cache: stats mdb_txn_begin: %s", mdb_strerror(rc));
        return TG_EIO;
    }
    uint64_t *counts[] = {&out_stats->ocsp_entries, &out_stats->crl_entries,
                          &out_stats->revoked_entries, &out_stats->trustlist_entries};
    for (int i = 0; i < 4; i++) {
        MDB_stat st;
        rc = mdb_stat(txn, cache->dbi[i], &st);
        if (rc != 0) {
            mdb_txn_abort(txn);
            tg_error("cache: mdb_stat: %s", mdb_strerror(rc));
            return TG_EIO;
        }
        *counts[i] = st.ms_entries;
    }
    mdb_txn_abort(txn);
    MDB_envinfo info;
    MDB_stat est;
    if ((rc = mdb_env_info(cache->env, &info)) != 0 || (rc = mdb_env_stat(cache->env, &est)) != 0) {
        tg_error("cache: mdb_env_info: %s", mdb_strerror(rc));
        return TG_EIO;
    }
    out_stats->map_size = info.me_mapsize;
    out_stats->used_bytes = ((uint64_t)info.me_last_pgno + 1) * est.ms_psize;
    out_stats->map_full = atomic_load(&cache->map_full);
    out_stats->writes = atomic_load(&cache->writes);
    out_stats->write_errors = atomic_load(&cache->write_errors);
    out_stats->stale_readers_cleared = cache->stale_readers_cleared;
    return 0;
}

/* ---- readers ------------------------------------------------------------------ */

int tg_cache_reader_new(tg_cache_t *cache, tg_cache_reader_t **out_reader)
{
    if (cache == NULL || out_reader == NULL)
        return TG_EINVAL;
    *out_reader = NULL;
    tg_cache_reader_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return TG_ENOMEM;
    int rc = mdb_txn_begin(cache->env, NULL, MDB_RDONLY, &r->txn);
    if (rc != 0) {
        tg_error("cache: reader mdb_txn_begin: %s", mdb_strerror(rc));
        free(r);
        return TG_EIO;
    }
    /* Keep the reader slot, release the snapshot until rd_begin. */
    mdb_txn_reset(r->txn);
    r->cache = cache;
    *out_reader = r;
    return 0;
}

void tg_cache_reader_free(tg_cache_reader_t *reader)
{
    if (reader == NULL)
        return;
    mdb_txn_abort(reader->txn);
    free(reader);
}

int tg_cache_rd_begin(tg_cache_reader_t *reader)
{
    if (reader->open)
        return TG_ESTATE;
    int rc = mdb_txn_renew(reader->txn);
    if (rc != 0) {
        tg_error("cache: mdb_txn_renew: %s", mdb_strerror(rc));
        return TG_EIO;
    }
    reader->open = 1;
    return 0;
}

void tg_cache_rd_end(tg_cache_reader_t *reader)
{
    if (reader == NULL || !reader->open)
        return;
    mdb_txn_reset(reader->txn);
    reader->open = 0;
}

static int rd_get(tg_cache_reader_t *r, int db, MDB_val *k, MDB_val *v)
{
    if (!r->open)
        return TG_ESTATE;
    int rc = mdb_get(r->txn, r->cache->dbi[db], k, v);
    if (rc == 0)
        return 0;
    return rc == MDB_NOTFOUND ? TG_ENOTFOUND : map_err("mdb_get", rc);
}

int tg_cache_get_ocsp(tg_cache_reader_t *reader, const tg_certid_t *id, tg_cache_ocsp_t *out_rec)
{
    uint8_t key[KEY_MAX];
    size_t n;
    if (ocsp_key(id, key, &n) != 0)
        return TG_EINVAL;
    MDB_val k = {.mv_size = n, .mv_data = key}, v;
    int rc = rd_get(reader, DB_OCSP, &k, &v);
    if (rc != 0)
        return rc;
    if (v.mv_size < OCSP_HDR_LEN)
        return TG_EIO;
    decode_ocsp(&v, out_rec);
    return 0;
}

int tg_cache_get_crl(tg_cache_reader_t *reader, const uint8_t ca_id[TG_CACHE_CA_ID_LEN],
                     tg_cache_crl_t *out_crl)
{
    MDB_val k = {.mv_size = TG_CACHE_CA_ID_LEN, .mv_data = (void *)ca_id}, v;
    int rc = rd_get(reader, DB_CRL, &k, &v);
    if (rc != 0)
        return rc;
    if (v.mv_size < CRL_HDR_LEN)
        return TG_EIO;
    decode_crl(&v, out_crl);
    return 0;
}

int tg_cache_get_revoked(tg_cache_reader_t *reader, const uint8_t ca_id[TG_CACHE_CA_ID_LEN],
                         const uint8_t *serial, size_t serial_len, tg_cache_revoked_t *out_revoked)
{
    if (serial == NULL || serial_len == 0 || serial_len > TG_SERIAL_MAX_LEN)
        return TG_EINVAL;
    uint8_t key[TG_CACHE_CA_ID_LEN + TG_SERIAL_MAX_LEN];
    memcpy(key, ca_id, TG_CACHE_CA_ID_LEN);
    memcpy(key + TG_CACHE_CA_ID_LEN, serial, serial_len);
    MDB_val k = {.mv_size = TG_CACHE_CA_ID_LEN + serial_len, .mv_data = key}, v;
    int rc = rd_get(reader, DB_REVOKED, &k, &v);
    if (rc != 0)
        return rc;
    if (v.mv_size != REVOKED_VAL_LEN)
        return TG_EIO;
    out_revoked->revocation_time = get_i64(v.mv_data);
    out_revoked->reason = (int8_t)((const uint8_t *)v.mv_data)[8];
    return 0;
}

int tg_cache_get_trustlist(tg_cache_reader_t *reader, tg_slice_t name, tg_slice_t *out_xml)
{
    if (name.n == 0 || name.n > TG_CACHE_LIST_NAME_MAX)
        return TG_EINVAL;
    MDB_val k = {.mv_size = name.n, .mv_data = (void *)name.p}, v;
    int rc = rd_get(reader, DB_TRUSTLIST, &k, &v);
    if (rc != 0)
        return rc;
    *out_xml = TG_SLICE(v.mv_data, v.mv_size);
    return 0;
}

/* ---- writes ------------------------------------------------------------------ */

int tg_cache_put_ocsp(tg_cache_t *cache, const tg_certid_t *id, const tg_cache_ocsp_t *rec,
                      tg_cache_done_cb cb, void *arg)
{
    if (cache == NULL || rec == NULL || (rec->der.n > 0 && rec->der.p == NULL) ||
        rec->der.n > SIZE_MAX - OCSP_HDR_LEN)
        return TG_EINVAL;
    uint8_t key[KEY_MAX];
    size_t key_len;
    if (ocsp_key(id, key, &key_len) != 0)
        return TG_EINVAL;
    op_t *op = op_new(OP_PUT_OCSP, OCSP_HDR_LEN + rec->der.n);
    if (op == NULL)
        return TG_ENOMEM;
    memcpy(op->key, key, key_len);
    op->key_len = key_len;
    uint8_t *p = op->val;
    memset(p, 0, OCSP_HDR_LEN);
    p[0] = 1;
    p[1] = rec->source;
    memcpy(p + 4, &rec->generation, 8);
    memcpy(p + 12, &rec->this_update, 8);
    memcpy(p + 20, &rec->next_update, 8);
    memcpy(p + 28, &rec->produced_at, 8);
    if (rec->der.n > 0)
        memcpy(p + OCSP_HDR_LEN, rec->der.p, rec->der.n);
    return enqueue(cache, op, cb, arg);
}

int tg_cache_put_crl(tg_cache_t *cache, const uint8_t ca_id[TG_CACHE_CA_ID_LEN],
                     const tg_cache_crl_t *crl, const tg_cache_revoked_entry_t *revoked,
                     size_t n_revoked, tg_cache_done_cb cb, void *arg)
{
    if (cache == NULL || ca_id == NULL || crl == NULL || (n_revoked > 0 && revoked == NULL) ||
        crl->crl_number_len > TG_CACHE_CRL_NUMBER_MAX || (crl->der.n > 0 && crl->der.p == NULL) ||
        crl->der.n > SIZE_MAX - CRL_HDR_LEN || n_revoked > SIZE_MAX / sizeof *revoked)
        return TG_EINVAL;
    for (size_t i = 0; i < n_revoked; i++)
        if (revoked[i].serial_len == 0 || revoked[i].serial_len > TG_SERIAL_MAX_LEN)
            return TG_EINVAL;
    op_t *op = op_new(OP_PUT_CRL, CRL_HDR_LEN + crl->der.n);
    if (op == NULL)
        return TG_ENOMEM;
    if (n_revoked > 0) {
        op->revoked = malloc(n_revoked * sizeof *revoked);
        if (op->revoked == NULL) {
            op_free(op);
            return TG_ENOMEM;
        }
        memcpy(op->revoked, revoked, n_revoked * sizeof *revoked);
        op->n_revoked = n_revoked;
    }
    memcpy(op->key, ca_id, TG_CACHE_CA_ID_LEN);
    op->key_len = TG_CACHE_CA_ID_LEN;
    uint8_t *p = op->val;
    memset(p, 0, CRL_HDR_LEN);
    p[0] = 1;
    p[1] = crl->crl_number_len;
    memcpy(p + 2, crl->crl_number, crl->crl_number_len);
    memcpy(p + 22, &crl->this_update, 8);
    memcpy(p + 30, &crl->next_update, 8);
    if (crl->der.n > 0)
        memcpy(p + CRL_HDR_LEN, crl->der.p, crl->der.n);
    return enqueue(cache, op, cb, arg);
}

int tg_cache_put_trustlist(tg_cache_t *cache, tg_slice_t name, tg_slice_t xml, tg_cache_done_cb cb,
                           void *arg)
{
    if (cache == NULL || name.n == 0 || name.n > TG_CACHE_LIST_NAME_MAX || xml.n == 0 ||
        xml.p == NULL)
        return TG_EINVAL;
    op_t *op = op_new(OP_PUT_TL, xml.n);
    if (op == NULL)
        return TG_ENOMEM;
    memcpy(op->key, name.p, name.n);
    op->key_len = name.n;
    memcpy(op->val, xml.p, xml.n);
    return enqueue(cache, op, cb, arg);
}

int tg_cache_delete_ocsp(tg_cache_t *cache, const tg_certid_t *id, tg_cache_done_cb cb, void *arg)
{
    uint8_t key[KEY_MAX];
    size_t key_len;
    if (cache == NULL || ocsp_key(id, key, &key_len) != 0)
        return TG_EINVAL;
    op_t *op = op_new(OP_DEL_OCSP, 0);
    if (op == NULL)
        return TG_ENOMEM;
    memcpy(op->key, key, key_len);
    op->key_len = key_len;
    return enqueue(cache, op, cb, arg);
}

int tg_cache_delete_crl(tg_cache_t *cache, const uint8_t ca_id[TG_CACHE_CA_ID_LEN],
                        tg_cache_done_cb cb, void *arg)
{
    if (cache == NULL || ca_id == NULL)
        return TG_EINVAL;
    op_t *op = op_new(OP_DEL_CRL, 0);
    if (op == NULL)
        return TG_ENOMEM;
    memcpy(op->key, ca_id, TG_CACHE_CA_ID_LEN);
    op->key_len = TG_CACHE_CA_ID_LEN;
    return enqueue(cache, op, cb, arg);
}

int tg_cache_delete_trustlist(tg_cache_t *cache, tg_slice_t name, tg_cache_done_cb cb, void *arg)
{
    if (cache == NULL || name.n == 0 || name.n > TG_CACHE_LIST_NAME_MAX)
        return TG_EINVAL;
    op_t *op = op_new(OP_DEL_TL, 0);
    if (op == NULL)
        return TG_ENOMEM;
    memcpy(op->key, name.p, name.n);
    op->key_len = name.n;
    return enqueue(cache, op, cb, arg);
}

/* ---- sweeper ------------------------------------------------------------------ */

static int sweep_txn(tg_cache_t *c, MDB_txn *txn, int64_t now, int64_t grace,
                     tg_cache_sweep_counts_t *counts)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, c->dbi[DB_OCSP], &cur);
    if (rc != 0)
        return map_err("mdb_cursor_open", rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size >= OCSP_HDR_LEN && get_i64((const uint8_t *)v.mv_data + 20) >= now)
            continue;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        counts->ocsp++;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return map_err("sweep ocsp", rc);

    rc = mdb_cursor_open(txn, c->dbi[DB_CRL], &cur);
    if (rc != 0)
        return map_err("mdb_cursor_open", rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size >= CRL_HDR_LEN) {
            int64_t next = get_i64((const uint8_t *)v.mv_data + 30);
            if (next > INT64_MAX - grace || next + grace >= now)
                continue;
        }
        uint8_t ca[TG_CACHE_CA_ID_LEN] = {0};
        memcpy(ca, k.mv_data, k.mv_size < sizeof ca ? k.mv_size : sizeof ca);
        int err = delete_revoked_of(c, txn, ca, &counts->revoked);
        if (err != 0) {
            mdb_cursor_close(cur);
            return err;
        }
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        counts->crl++;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return map_err("sweep crl", rc);
    return 0;
}

int tg_cache_sweep(tg_cache_t *cache, int64_t now, int64_t crl_grace_s,
                   tg_cache_sweep_counts_t *out_counts)
{
    if (cache == NULL || crl_grace_s < 0)
        return TG_EINVAL;
    tg_cache_sweep_counts_t counts = {0};
    MDB_txn *txn;
    int rc = mdb_txn_begin(cache->env, NULL, 0, &txn);
    if (rc != 0)
        return map_err("mdb_txn_begin", rc) == RC_MAP_FULL ? TG_ETOOBIG : TG_EIO;
    int err = sweep_txn(cache, txn, now, crl_grace_s, &counts);
    if (err != 0) {
        mdb_txn_abort(txn);
        if (err == RC_MAP_FULL) {
            tg_error("cache: sweep: map full, cannot delete");
            return TG_ETOOBIG;
        }
        return err;
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        err = map_err("mdb_txn_commit", rc);
        return err == RC_MAP_FULL ? TG_ETOOBIG : TG_EIO;
    }
    if (out_counts != NULL)
        *out_counts = counts;
    return 0;
}

/* ---- waiter ------------------------------------------------------------------ */

void tg_cache_waiter_init(tg_cache_waiter_t *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->done = 0;
    w->status = 0;
}

void tg_cache_waiter_cb(void *arg, int status)
{
    tg_cache_waiter_t *w = arg;
    pthread_mutex_lock(&w->mu);
    w->status = status;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int tg_cache_waiter_wait(tg_cache_waiter_t *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    int status = w->status;
    pthread_mutex_unlock(&w->mu);
    tg_cache_waiter_destroy(w);
    return status;
}

void tg_cache_waiter_destroy(tg_cache_waiter_t *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}
