/* LMDB status store (SPEC §7). See cache.h for the threading and
 * durability contract.
 *
 * Value layouts are native-endian (an LMDB environment is not portable
 * across architectures anyway) and decoded with memcpy, because LMDB only
 * guarantees 2-byte alignment of values. */
#include "cache/cache.h"

#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEY_MAX TG_CERTID_KEY_MAX
#define BATCH_MAX 64
#define MAX_READERS 256
/* 2: the revoked index became one packed value per CA (was one record per
 * serial). */
#define SCHEMA_VERSION 3
/* LMDB refuses larger values (MDB_BAD_VALSIZE). */
#define VAL_MAX ((size_t)UINT32_MAX)

/* ocsp value: ver u8 | source u8 | status u8 | reason i8 | generation u64 |
 * this i64 | next i64 | produced i64 | revocation time i64 | DER */
#define OCSP_HDR_LEN 44
/* crl value: ver u8 | number_len u8 | number[20] | this i64 | next i64 | DER */
#define CRL_HDR_LEN 38
/* revoked value, one per CA (key: CA id): ver u8 | width u8 | pad[2] |
 * count u64 | count records of width + RIX_REC_EXTRA bytes, each
 * serial_len u8 | serial left-aligned, zero-padded to width |
 * revocation_time i64 | reason i8, sorted by serial as LMDB orders keys
 * (memcmp over the common length, shorter first), duplicates kept. width is
 * the CRL's longest serial. A lookup is a binary search in the mapped
 * value; replacing a CRL rewrites one value instead of a million records. */
#define RIX_HDR_LEN 12
#define RIX_VERSION 1
#define RIX_REC_EXTRA 10

/* Index builder records use the same layout with width = max_len, so the
 * writer only has to drop padding when the CRL's serials are shorter. */
struct tg_cache_rindex {
    size_t cap;     /* entries */
    size_t count;   /* entries added */
    size_t max_len; /* serial bytes per record */
    size_t width;   /* longest serial added */
    size_t stride;  /* max_len + RIX_REC_EXTRA */
    uint8_t *rec;   /* cap * stride bytes, zeroed */
    int sorted;     /* by the writer thread, in place */
};

enum { DB_OCSP, DB_CRL, DB_REVOKED, DB_TRUSTLIST, DB_META, DB_COUNT };
static const char *const db_names[DB_COUNT] = {"ocsp", "crl", "revoked", "trustlist", "meta"};

typedef enum { OP_PUT_OCSP, OP_PUT_CRL, OP_PUT_TL, OP_DEL_OCSP, OP_DEL_CRL, OP_DEL_TL } op_kind_t;

typedef struct op {
    struct op *next;
    op_kind_t kind;
    size_t key_len;
    uint8_t key[KEY_MAX];
    uint8_t *val; /* owned encoded value (puts; the header for OP_PUT_CRL) */
    size_t val_len;
    uint8_t *der; /* owned CRL DER (OP_PUT_CRL), or NULL when spilled: */
    int der_fd;   /* owned unlinked file holding it (see spill_der), or -1 */
    size_t der_len;
    tg_cache_rindex_t *rindex; /* owned, NULL = empty (OP_PUT_CRL) */
    tg_cache_done_cb cb;
    void *arg;
    int status;
} op_t;

struct tg_cache {
    MDB_env *env;
    char *dir; /* the environment's folder (spilled CRLs) */
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

static int ocsp_key(tg_cache_source_t source, const tg_certid_t *id, uint8_t *key, size_t *out_len)
{
    if ((unsigned)source > TG_CACHE_SRC_SIGNED_LIST)
        return TG_EINVAL;
    size_t n = tg_certid_key(id, key);
    if (n == 0)
        return TG_EINVAL;
    /* one record per CertID and source: an upstream answer and the one
     * trustgate signed for the same certificate live side by side */
    key[0] = (uint8_t)((unsigned)source << 4 | key[0]);
    *out_len = n;
    return 0;
}

static int64_t get_i64(const uint8_t *p)
{
    int64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Writes rec's value (OCSP_HDR_LEN header bytes, then the DER) to p, which
 * has room for OCSP_HDR_LEN + rec->der.n bytes. */
static void encode_ocsp(const tg_cache_ocsp_t *rec, uint8_t *p)
{
    memset(p, 0, OCSP_HDR_LEN);
    p[0] = 1;
    p[1] = rec->source;
    p[2] = rec->cert_status;
    p[3] = (uint8_t)rec->reason;
    memcpy(p + 4, &rec->generation, 8);
    memcpy(p + 12, &rec->this_update, 8);
    memcpy(p + 20, &rec->next_update, 8);
    memcpy(p + 28, &rec->produced_at, 8);
    memcpy(p + 36, &rec->revocation_time, 8);
    if (rec->der.n > 0)
        memcpy(p + OCSP_HDR_LEN, rec->der.p, rec->der.n);
}

static void decode_ocsp(const MDB_val *v, tg_cache_ocsp_t *out)
{
    const uint8_t *p = v->mv_data;
    out->source = p[1];
    memcpy(&out->generation, p + 4, 8);
    out->this_update = get_i64(p + 12);
    out->next_update = get_i64(p + 20);
    out->produced_at = get_i64(p + 28);
    out->cert_status = p[2];
    out->reason = (int8_t)p[3];
    out->revocation_time = get_i64(p + 36);
    out->der = TG_SLICE(p + OCSP_HDR_LEN, v->mv_size - OCSP_HDR_LEN);
}

static void decode_crl(const MDB_val *v, tg_cache_crl_t *out)
{
    const uint8_t *p = v->mv_data;
    /* bounded: a damaged record must not overflow a reader's buffer */
    out->crl_number_len = p[1] <= TG_CACHE_CRL_NUMBER_MAX ? p[1] : TG_CACHE_CRL_NUMBER_MAX;
    memcpy(out->crl_number, p + 2, TG_CACHE_CRL_NUMBER_MAX);
    out->this_update = get_i64(p + 22);
    out->next_update = get_i64(p + 30);
    out->der = TG_SLICE(p + CRL_HDR_LEN, v->mv_size - CRL_HDR_LEN);
}

/* Reads and checks an index value's header. Returns 0 with the record width
 * and count, or TG_EIO when the value is malformed. */
static int rix_header(const MDB_val *v, size_t *out_width, uint64_t *out_count)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size < RIX_HDR_LEN || p[0] != RIX_VERSION || p[1] == 0 || p[1] > TG_SERIAL_MAX_LEN)
        return TG_EIO;
    size_t width = p[1];
    uint64_t count;
    memcpy(&count, p + 4, sizeof count);
    size_t rs = width + RIX_REC_EXTRA;
    if (count > (v->mv_size - RIX_HDR_LEN) / rs || RIX_HDR_LEN + count * rs != v->mv_size)
        return TG_EIO;
    *out_width = width;
    *out_count = count;
    return 0;
}

/* ---- index builder ---------------------------------------------------------- */

int tg_cache_rindex_new(size_t n, size_t max_serial_len, tg_cache_rindex_t **out)
{
    if (out == NULL)
        return TG_EINVAL;
    *out = NULL;
    /* A sanity bound (documented); no CRL comes near it. */
    if (max_serial_len == 0 || max_serial_len > TG_SERIAL_MAX_LEN || n > UINT32_MAX)
        return TG_EINVAL;
    size_t stride = max_serial_len + RIX_REC_EXTRA;
    if (n > SIZE_MAX / stride)
        return TG_ENOMEM;
    tg_cache_rindex_t *ix = calloc(1, sizeof *ix);
    if (ix == NULL)
        return TG_ENOMEM;
    if (n > 0) {
        /* calloc: large blocks come as fresh zero pages, so the padding is
         * free and memory is touched only as entries arrive. */
        ix->rec = calloc(n, stride);
        if (ix->rec == NULL) {
            free(ix);
            return TG_ENOMEM;
        }
    }
    ix->cap = n;
    ix->max_len = max_serial_len;
    ix->stride = stride;
    *out = ix;
    return 0;
}

int tg_cache_rindex_add(tg_cache_rindex_t *ix, const uint8_t *serial, size_t serial_len,
                        int64_t revocation_time, int8_t reason)
{
    if (ix == NULL || ix->count >= ix->cap || serial == NULL || serial_len == 0 ||
        serial_len > ix->max_len)
        return TG_EINVAL;
    uint8_t *p = ix->rec + ix->count * ix->stride;
    p[0] = (uint8_t)serial_len;
    memcpy(p + 1, serial, serial_len);
    memcpy(p + 1 + ix->max_len, &revocation_time, 8);
    p[1 + ix->max_len + 8] = (uint8_t)reason;
    if (serial_len > ix->width)
        ix->width = serial_len;
    ix->count++;
    return 0;
}

size_t tg_cache_rindex_count(const tg_cache_rindex_t *ix)
{
    return ix == NULL ? 0 : ix->count;
}

void tg_cache_rindex_free(tg_cache_rindex_t *ix)
{
    if (ix == NULL)
        return;
    free(ix->rec);
    free(ix);
}

/* Sorting. The records are ordered by (serial zero-padded to width, then
 * serial_len), which is exactly LMDB's key order on the real serials (memcmp
 * over the common length, shorter first): padding only appends zeros, which
 * sort lowest, so two serials compare the same padded as real unless one is
 * the other plus trailing zeros (01 and 01 00), and then the length puts the
 * shorter first. So the key of a record is its width padded serial bytes,
 * then its length byte. An in-place MSD radix sort (American flag sort) on
 * that key sorts a million 16-byte serials in about 85 ms here, where qsort
 * over an index array took 400 ms, needs no extra memory, and leaves the
 * records contiguous for one memcpy into LMDB. */

#define RIX_SMALL 32 /* below this, insertion sort */

static unsigned rix_key(const uint8_t *r, size_t depth, size_t width)
{
    return depth < width ? r[1 + depth] : r[0];
}

/* Compares the keys of x and y from byte depth on. */
static int rix_key_cmp(const uint8_t *x, const uint8_t *y, size_t depth, size_t width)
{
    if (depth < width) {
        int d = memcmp(x + 1 + depth, y + 1 + depth, width - depth);
        if (d != 0)
            return d;
    }
    return (int)x[0] - (int)y[0];
}

static void rix_swap(uint8_t *a, uint8_t *b, size_t stride, uint8_t *tmp)
{
    memcpy(tmp, a, stride);
    memcpy(a, b, stride);
    memcpy(b, tmp, stride);
}

static void rix_insertion_sort(uint8_t *base, size_t n, size_t stride, size_t depth, size_t width,
                               uint8_t *tmp)
{
    for (size_t i = 1; i < n; i++) {
        uint8_t *p = base + i * stride;
        if (rix_key_cmp(p - stride, p, depth, width) <= 0)
            continue;
        memcpy(tmp, p, stride);
        size_t j = i;
        do {
            memcpy(base + j * stride, base + (j - 1) * stride, stride);
            j--;
        } while (j > 0 && rix_key_cmp(base + (j - 1) * stride, tmp, depth, width) > 0);
        memcpy(base + j * stride, tmp, stride);
    }
}

/* Sorts n records of stride bytes at base on their key bytes depth..width
 * (width + 1 key bytes in all). Recursion depth is at most width + 1. */
static void rix_radix_sort(uint8_t *base, size_t n, size_t stride, size_t depth, size_t width,
                           uint8_t *tmp)
{
    size_t next[256], end[256];
    for (; n > 1 && depth <= width; depth++) {
        if (n <= RIX_SMALL) {
            rix_insertion_sort(base, n, stride, depth, width, tmp);
            return;
        }
        memset(end, 0, sizeof end); /* counts first */
        for (size_t i = 0; i < n; i++)
            end[rix_key(base + i * stride, depth, width)]++;
        if (end[rix_key(base, depth, width)] == n)
            continue; /* one bucket (a shared prefix): next byte, no moves */
        size_t sum = 0;
        for (unsigned b = 0; b < 256; b++) {
            next[b] = sum;
            sum += end[b];
            end[b] = sum;
        }
        /* Each swap puts one record into its bucket for good. */
        for (unsigned b = 0; b < 256; b++) {
            while (next[b] < end[b]) {
                uint8_t *p = base + next[b] * stride;
                unsigned k = rix_key(p, depth, width);
                if (k == b)
                    next[b]++;
                else
                    rix_swap(p, base + next[k]++ * stride, stride, tmp);
            }
        }
        size_t start = 0;
        for (unsigned b = 0; b < 256; start = end[b], b++)
            if (end[b] - start > 1)
                rix_radix_sort(base + start * stride, end[b] - start, stride, depth + 1, width,
                               tmp);
        return;
    }
}

/* Sorts ix in place (once: a retry after MDB_MAP_FULL finds it sorted).
 * Runs on the writer thread before the write transaction starts. Bytes
 * past ix->width are zero in every record, so they are not looked at. */
static void rix_sort(tg_cache_rindex_t *ix)
{
    if (ix == NULL || ix->sorted)
        return;
    uint8_t tmp[TG_SERIAL_MAX_LEN + RIX_REC_EXTRA];
    if (ix->count > 1)
        rix_radix_sort(ix->rec, ix->count, ix->stride, 0, ix->width, tmp);
    ix->sorted = 1;
}

/* ---- write steps (inside a write transaction) ----------------------------- */

/* Deletes the revoked index of CA ca, adding its entry count to *out_n when
 * not NULL. A missing index is not an error. */
static int delete_revoked_of(tg_cache_t *c, MDB_txn *txn, const uint8_t *ca, uint64_t *out_n)
{
    MDB_val k = {.mv_size = TG_CACHE_CA_ID_LEN, .mv_data = (void *)ca}, v;
    int rc = mdb_get(txn, c->dbi[DB_REVOKED], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return map_err("mdb_get revoked", rc);
    size_t width;
    uint64_t count;
    if (out_n != NULL && rix_header(&v, &width, &count) == 0)
        *out_n += count;
    return map_err("mdb_del revoked", mdb_del(txn, c->dbi[DB_REVOKED], &k, NULL));
}

/* Writes the sorted index ix of CA ca (replacing any), or deletes the old
 * one when ix is empty. The value is reserved in LMDB's pages and filled
 * straight from the builder's records. */
static int put_revoked_of(tg_cache_t *c, MDB_txn *txn, const uint8_t *ca,
                          const tg_cache_rindex_t *ix)
{
    if (ix == NULL || ix->count == 0)
        return delete_revoked_of(c, txn, ca, NULL);
    size_t width = ix->width, rs = width + RIX_REC_EXTRA;
    MDB_val k = {.mv_size = TG_CACHE_CA_ID_LEN, .mv_data = (void *)ca};
    MDB_val v = {.mv_size = RIX_HDR_LEN + ix->count * rs, .mv_data = NULL};
    int rc = mdb_put(txn, c->dbi[DB_REVOKED], &k, &v, MDB_RESERVE);
    if (rc != 0)
        return map_err("mdb_put revoked", rc);
    uint8_t *p = v.mv_data;
    uint64_t count = ix->count;
    memset(p, 0, RIX_HDR_LEN);
    p[0] = RIX_VERSION;
    p[1] = (uint8_t)width;
    memcpy(p + 4, &count, sizeof count);
    p += RIX_HDR_LEN;
    if (width == ix->max_len) {
        memcpy(p, ix->rec, ix->count * rs); /* same layout: one copy */
        return 0;
    }
    /* Built for longer serials than the CRL has: drop the extra padding. */
    const size_t tail = 1 + ix->max_len; /* time and reason in the builder */
    const uint8_t *r = ix->rec;
    for (size_t i = 0; i < ix->count; i++, p += rs, r += ix->stride) {
        memcpy(p, r, 1 + width);
        memcpy(p + 1 + width, r + tail, RIX_REC_EXTRA - 1);
    }
    return 0;
}

/* Writes the CRL value (header + DER) reserved in LMDB's pages. */
static int put_crl_value(tg_cache_t *c, MDB_txn *txn, const op_t *op)
{
    MDB_val k = {.mv_size = op->key_len, .mv_data = (void *)op->key};
    MDB_val v = {.mv_size = CRL_HDR_LEN + op->der_len, .mv_data = NULL};
    int rc = mdb_put(txn, c->dbi[DB_CRL], &k, &v, MDB_RESERVE);
    if (rc != 0)
        return map_err("mdb_put crl", rc);
    memcpy(v.mv_data, op->val, CRL_HDR_LEN);
    uint8_t *dst = (uint8_t *)v.mv_data + CRL_HDR_LEN;
    if (op->der_fd < 0) {
        if (op->der_len > 0)
            memcpy(dst, op->der, op->der_len);
        return 0;
    }
    /* spilled: read the file straight into LMDB's pages (again on a retry) */
    for (size_t off = 0; off < op->der_len;) {
        ssize_t n = pread(op->der_fd, dst + off, op->der_len - off, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            tg_error("cache: reading a spilled CRL back: %s",
                     n < 0 ? strerror(errno) : "short file");
            return TG_EIO;
        }
        off += (size_t)n;
    }
    return 0;
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
    case OP_PUT_CRL:
        rc = put_crl_value(c, txn, op);
        if (rc != 0)
            return rc;
        return put_revoked_of(c, txn, op->key, op->rindex);
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

/* LMDB reuses a page freed by transaction T only in transactions after
 * T + 1 (mdb_find_oldest: txnid - 1), so the retry right after a sweep could
 * not use what the sweep freed, and a big value (a CRL, its index) would
 * fail again. Committing one small write in between lets the retry have
 * them. */
static void age_freed_pages(tg_cache_t *c)
{
    MDB_txn *txn;
    uint32_t ver = SCHEMA_VERSION;
    MDB_val k = {.mv_size = 6, .mv_data = "schema"}, v = {.mv_size = sizeof ver, .mv_data = &ver};
    int rc = mdb_txn_begin(c->env, NULL, 0, &txn);
    if (rc != 0) {
        map_err("mdb_txn_begin", rc);
        return;
    }
    rc = mdb_put(txn, c->dbi[DB_META], &k, &v, 0);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_MAP_FULL)
        map_err("schema rewrite", rc);
}

static void run_single(tg_cache_t *c, op_t *op)
{
    int rc = run_txn(c, &op, 1);
    if (rc == RC_MAP_FULL) {
        atomic_fetch_add(&c->map_full, 1);
        tg_warn("cache: LMDB map full; sweeping expired entries and retrying once");
        tg_cache_sweep_counts_t sc;
        int64_t now = (int64_t)time(NULL);
        if (tg_cache_sweep(c, now, atomic_load(&c->crl_grace_s), &sc) == 0) {
            tg_info("cache: sweep freed %llu ocsp, %llu crl, %llu revoked entries",
                    (unsigned long long)sc.ocsp, (unsigned long long)sc.crl,
                    (unsigned long long)sc.revoked);
            if (sc.ocsp + sc.crl > 0)
                age_freed_pages(c);
        }
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
    free(op->der);
    if (op->der_fd >= 0)
        close(op->der_fd);
    tg_cache_rindex_free(op->rindex);
    free(op);
}

static void process_batch(tg_cache_t *c, op_t **ops, size_t n)
{
    /* Sort CRL indexes before the write transaction, so the sort never
     * holds LMDB's writer lock. */
    for (size_t i = 0; i < n; i++)
        if (ops[i]->kind == OP_PUT_CRL)
            rix_sort(ops[i]->rindex);
    /* Ops keep every input until op_free below, so a retry (one by one, or
     * after a sweep on MDB_MAP_FULL) rewrites from the same buffers. */
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
    op->der_fd = -1;
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
    uint32_t ver = SCHEMA_VERSION, old = 0;
    MDB_val k = {.mv_size = 6, .mv_data = "schema"}, v;
    rc = mdb_get(txn, c->dbi[DB_META], &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return map_err("mdb_get meta", rc) == RC_MAP_FULL ? TG_ETOOBIG : TG_EIO;
    }
    int found = rc == 0;
    if (found && v.mv_size == sizeof old)
        memcpy(&old, v.mv_data, sizeof old);
    if (!found || old != SCHEMA_VERSION) {
        /* Other layouts: drop what the fetchers can fetch again; trust lists
         * are stored as received XML and stay. A new environment has
         * nothing to drop and nothing to log. */
        if (found)
            tg_warn("cache: schema %u, expected %u: emptying the ocsp, crl and revoked "
                    "databases (trust lists kept)",
                    (unsigned)old, (unsigned)SCHEMA_VERSION);
        const int drop[] = {DB_OCSP, DB_CRL, DB_REVOKED};
        rc = 0;
        for (size_t i = 0; i < sizeof drop / sizeof drop[0] && rc == 0; i++)
            rc = mdb_drop(txn, c->dbi[drop[i]], 0);
        if (rc == 0) {
            v = (MDB_val){.mv_size = sizeof ver, .mv_data = &ver};
            rc = mdb_put(txn, c->dbi[DB_META], &k, &v, 0);
        }
        if (rc != 0) {
            mdb_txn_abort(txn);
            return map_err("schema update", rc) == RC_MAP_FULL ? TG_ETOOBIG : TG_EIO;
        }
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
    if ((c->dir = strdup(path)) == NULL) {
        free(c);
        return TG_ENOMEM;
    }
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
    free(c->dir);
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
    free(cache->dir);
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
    const int dbs[] = {DB_OCSP, DB_CRL, DB_TRUSTLIST};
    uint64_t *counts[] = {&out_stats->ocsp_entries, &out_stats->crl_entries,
                          &out_stats->trustlist_entries};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        MDB_stat st;
        rc = mdb_stat(txn, cache->dbi[dbs[i]], &st);
        if (rc != 0) {
            mdb_txn_abort(txn);
            tg_error("cache: mdb_stat: %s", mdb_strerror(rc));
            return TG_EIO;
        }
        *counts[i] = st.ms_entries;
    }
    /* One index value per CA (a handful): add up their headers. */
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, cache->dbi[DB_REVOKED], &cur);
    if (rc != 0) {
        mdb_txn_abort(txn);
        tg_error("cache: mdb_cursor_open: %s", mdb_strerror(rc));
        return TG_EIO;
    }
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t width;
        uint64_t count;
        if (rix_header(&v, &width, &count) == 0)
            out_stats->revoked_entries += count;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc != MDB_NOTFOUND) {
        tg_error("cache: stats revoked: %s", mdb_strerror(rc));
        return TG_EIO;
    }
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

int tg_cache_get_ocsp(tg_cache_reader_t *reader, tg_cache_source_t source, const tg_certid_t *id,
                      tg_cache_ocsp_t *out_rec)
{
    uint8_t key[KEY_MAX];
    size_t n;
    if (ocsp_key(source, id, key, &n) != 0)
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
    out_crl->n_revoked = 0;
    rc = rd_get(reader, DB_REVOKED, &k, &v);
    if (rc == TG_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    size_t width;
    return rix_header(&v, &width, &out_crl->n_revoked);
}

int tg_cache_get_revoked(tg_cache_reader_t *reader, const uint8_t ca_id[TG_CACHE_CA_ID_LEN],
                         const uint8_t *serial, size_t serial_len, tg_cache_revoked_t *out_revoked)
{
    if (ca_id == NULL || serial == NULL || serial_len == 0 || serial_len > TG_SERIAL_MAX_LEN ||
        out_revoked == NULL)
        return TG_EINVAL;
    MDB_val k = {.mv_size = TG_CACHE_CA_ID_LEN, .mv_data = (void *)ca_id}, v;
    int rc = rd_get(reader, DB_REVOKED, &k, &v);
    if (rc != 0)
        return rc;
    size_t width;
    uint64_t count;
    if (rix_header(&v, &width, &count) != 0)
        return TG_EIO;
    if (serial_len > width)
        return TG_ENOTFOUND; /* longer than every serial of this CRL */
    const size_t rs = width + RIX_REC_EXTRA;
    const uint8_t *recs = (const uint8_t *)v.mv_data + RIX_HDR_LEN;
    /* Binary search in place; rix_header bounded count * rs by the value. */
    size_t lo = 0, hi = (size_t)count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const uint8_t *r = recs + mid * rs;
        size_t rl = r[0];
        if (rl == 0 || rl > width)
            return TG_EIO;
        int d = memcmp(r + 1, serial, rl < serial_len ? rl : serial_len);
        if (d == 0)
            d = (int)rl - (int)serial_len;
        if (d == 0) {
            out_revoked->revocation_time = get_i64(r + 1 + width);
            out_revoked->reason = (int8_t)r[1 + width + 8];
            return 0;
        }
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return TG_ENOTFOUND;
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
    if (ocsp_key((tg_cache_source_t)rec->source, id, key, &key_len) != 0)
        return TG_EINVAL;
    op_t *op = op_new(OP_PUT_OCSP, OCSP_HDR_LEN + rec->der.n);
    if (op == NULL)
        return TG_ENOMEM;
    memcpy(op->key, key, key_len);
    op->key_len = key_len;
    encode_ocsp(rec, op->val);
    return enqueue(cache, op, cb, arg);
}

/* A CRL this big is moved out of memory before it is queued (see
 * spill_der). */
#define SPILL_MIN_BYTES (1u << 20)

/* Writes the n bytes at p to an unlinked temporary file in the cache's
 * folder (O_TMPFILE) and returns its descriptor (the caller owns it), or -1
 * (logged once per process) when that fails: the caller then keeps the
 * bytes in memory. Spilling a big CRL before the write transaction means
 * its bytes are never in memory twice (the caller's buffer and LMDB's dirty
 * pages): the writer reads the file into the reserved value. */
static int spill_der(const tg_cache_t *c, const uint8_t *p, size_t n)
{
    static atomic_int warned;
    int fd = open(c->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    const char *what = "open(O_TMPFILE)";
    for (size_t off = 0; fd >= 0 && off < n;) {
        ssize_t w = write(fd, p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            what = "write";
            close(fd);
            fd = -1;
            break;
        }
        off += (size_t)w;
    }
    if (fd < 0 && atomic_exchange(&warned, 1) == 0)
        tg_warn("cache: cannot spill a big CRL to %s (%s: %s); it stays in memory until written",
                c->dir, what, strerror(errno));
    return fd;
}

int tg_cache_put_crl_take(tg_cache_t *cache, const uint8_t ca_id[TG_CACHE_CA_ID_LEN],
                          const tg_cache_crl_t *crl, tg_buf_t *der, tg_cache_rindex_t *index,
                          tg_cache_done_cb cb, void *arg)
{
    /* Take both buffers first: from here on they are ours to free, on
     * every path. */
    uint8_t *data = NULL;
    size_t len = 0;
    if (der != NULL) {
        data = der->data;
        len = der->len;
        tg_buf_init(der);
    }
    int rc = 0;
    if (cache == NULL || ca_id == NULL || crl == NULL || der == NULL ||
        crl->crl_number_len > TG_CACHE_CRL_NUMBER_MAX || (len > 0 && data == NULL))
        rc = TG_EINVAL;
    else if (len > VAL_MAX - CRL_HDR_LEN ||
             (index != NULL &&
              index->count > (VAL_MAX - RIX_HDR_LEN) / (index->width + RIX_REC_EXTRA)))
        rc = TG_ETOOBIG;
    op_t *op = rc == 0 ? op_new(OP_PUT_CRL, CRL_HDR_LEN) : NULL;
    if (op == NULL) {
        free(data);
        tg_cache_rindex_free(index);
        return rc != 0 ? rc : TG_ENOMEM;
    }
    op->der_len = len;
    op->rindex = index;
    if (len >= SPILL_MIN_BYTES && (op->der_fd = spill_der(cache, data, len)) >= 0)
        free(data);
    else
        op->der = data;
    memcpy(op->key, ca_id, TG_CACHE_CA_ID_LEN);
    op->key_len = TG_CACHE_CA_ID_LEN;
    uint8_t *p = op->val;
    memset(p, 0, CRL_HDR_LEN);
    p[0] = 1;
    p[1] = crl->crl_number_len;
    memcpy(p + 2, crl->crl_number, crl->crl_number_len);
    memcpy(p + 22, &crl->this_update, 8);
    memcpy(p + 30, &crl->next_update, 8);
    return enqueue(cache, op, cb, arg); /* frees op, der and index on failure */
}

int tg_cache_put_crl(tg_cache_t *cache, const uint8_t ca_id[TG_CACHE_CA_ID_LEN],
                     const tg_cache_crl_t *crl, const tg_cache_revoked_entry_t *revoked,
                     size_t n_revoked, tg_cache_done_cb cb, void *arg)
{
    if (cache == NULL || ca_id == NULL || crl == NULL || (n_revoked > 0 && revoked == NULL) ||
        crl->crl_number_len > TG_CACHE_CRL_NUMBER_MAX || (crl->der.n > 0 && crl->der.p == NULL))
        return TG_EINVAL;
    size_t max_len = 1;
    for (size_t i = 0; i < n_revoked; i++) {
        if (revoked[i].serial_len == 0 || revoked[i].serial_len > TG_SERIAL_MAX_LEN)
            return TG_EINVAL;
        if (revoked[i].serial_len > max_len)
            max_len = revoked[i].serial_len;
    }
    tg_cache_rindex_t *ix = NULL;
    int rc = 0;
    if (n_revoked > 0) {
        rc = tg_cache_rindex_new(n_revoked, max_len, &ix);
        for (size_t i = 0; rc == 0 && i < n_revoked; i++)
            rc = tg_cache_rindex_add(ix, revoked[i].serial, revoked[i].serial_len,
                                     revoked[i].revocation_time, revoked[i].reason);
        if (rc != 0) {
            tg_cache_rindex_free(ix);
            return rc;
        }
    }
    tg_buf_t der;
    tg_buf_init(&der);
    if (crl->der.n > 0 && tg_buf_append(&der, crl->der.p, crl->der.n) != 0) {
        tg_cache_rindex_free(ix);
        return TG_ENOMEM;
    }
    return tg_cache_put_crl_take(cache, ca_id, crl, &der, ix, cb, arg);
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

int tg_cache_delete_ocsp(tg_cache_t *cache, tg_cache_source_t source, const tg_certid_t *id,
                         tg_cache_done_cb cb, void *arg)
{
    uint8_t key[KEY_MAX];
    size_t key_len;
    if (cache == NULL || ocsp_key(source, id, key, &key_len) != 0)
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

/* ---- synchronous bulk write ------------------------------------------------ */

/* LMDB's default key order (mdb_cmp_memn): memcmp over the common length,
 * then the shorter first. */
static int key_cmp(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    int d = memcmp(a, b, a_len < b_len ? a_len : b_len);
    if (d != 0)
        return d;
    return a_len < b_len ? -1 : a_len > b_len;
}

/* Checks every record of a batch before a transaction starts, so a bad one
 * leaves nothing half-written. Sets *out_ascending when the keys are
 * strictly ascending (MDB_APPEND then needs only the db's last key). */
static int batch_check(const tg_certid_t *ids, const tg_cache_ocsp_t *recs, size_t n,
                       int *out_ascending)
{
    uint8_t key[2][KEY_MAX];
    size_t key_len[2] = {0, 0};
    int ascending = 1;
    for (size_t i = 0; i < n; i++) {
        const tg_cache_ocsp_t *rec = &recs[i];
        if (rec->der.n > 0 && rec->der.p == NULL)
            return TG_EINVAL;
        if (ocsp_key((tg_cache_source_t)rec->source, &ids[i], key[i & 1], &key_len[i & 1]) != 0)
            return TG_EINVAL;
        if (rec->der.n > VAL_MAX - OCSP_HDR_LEN)
            return TG_ETOOBIG;
        if (i > 0 && ascending &&
            key_cmp(key[(i - 1) & 1], key_len[(i - 1) & 1], key[i & 1], key_len[i & 1]) >= 0)
            ascending = 0;
    }
    *out_ascending = ascending;
    return 0;
}

/* Decides the put flags: MDB_APPEND when the batch (ascending) starts past
 * the last key already stored, so LMDB fills pages at the right edge of
 * the tree instead of searching for each key and splitting pages
 * half-full. first is the batch's first key. Returns 0 or an LMDB code. */
static int batch_flags(MDB_cursor *cur, const uint8_t *first, size_t first_len, int ascending,
                       unsigned *out_flags)
{
    *out_flags = 0;
    if (!ascending)
        return 0;
    MDB_val k, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == MDB_NOTFOUND || (rc == 0 && key_cmp(k.mv_data, k.mv_size, first, first_len) < 0))
        *out_flags = MDB_APPEND;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Turns a failed LMDB step of a batch into the public code, logging once. */
static int batch_err(tg_cache_t *c, const char *what, int rc, size_t n)
{
    if (rc == MDB_MAP_FULL) {
        atomic_fetch_add(&c->map_full, 1);
        tg_error("cache: batch of %zu OCSP records: LMDB map full (%s); nothing written", n, what);
        return TG_ETOOBIG;
    }
    if (rc == MDB_TXN_FULL) {
        tg_error("cache: batch of %zu OCSP records: too many dirty pages for one transaction "
                 "(%s); nothing written, split the batch",
                 n, what);
        return TG_ETOOBIG;
    }
    tg_error("cache: batch of %zu OCSP records: %s: %s; nothing written", n, what,
             mdb_strerror(rc));
    return TG_EIO;
}

int tg_cache_put_ocsp_batch(tg_cache_t *cache, const tg_certid_t *ids, const tg_cache_ocsp_t *recs,
                            size_t n)
{
    if (cache == NULL || (n > 0 && (ids == NULL || recs == NULL)))
        return TG_EINVAL;
    int ascending;
    int err = batch_check(ids, recs, n, &ascending);
    if (err != 0 || n == 0)
        return err;
    MDB_txn *txn;
    int rc = mdb_txn_begin(cache->env, NULL, 0, &txn);
    if (rc != 0)
        return batch_err(cache, "mdb_txn_begin", rc, n);
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, cache->dbi[DB_OCSP], &cur);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return batch_err(cache, "mdb_cursor_open", rc, n);
    }
    const char *what = "mdb_cursor_get last";
    unsigned flags = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t key[KEY_MAX];
        size_t key_len = 0;
        /* cannot fail: batch_check took the same keys */
        (void)ocsp_key((tg_cache_source_t)recs[i].source, &ids[i], key, &key_len);
        if (i == 0) {
            rc = batch_flags(cur, key, key_len, ascending, &flags);
            if (rc != 0)
                break;
            what = "mdb_cursor_put";
        }
        /* One cursor: with MDB_APPEND it stays at the right edge, so a put
         * costs no tree descent. The value is written straight into LMDB's
         * page (MDB_RESERVE). */
        MDB_val k = {.mv_size = key_len, .mv_data = key};
        MDB_val v = {.mv_size = OCSP_HDR_LEN + recs[i].der.n, .mv_data = NULL};
        rc = mdb_cursor_put(cur, &k, &v, flags | MDB_RESERVE);
        if (rc == 0)
            encode_ocsp(&recs[i], v.mv_data);
    }
    mdb_cursor_close(cur);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return batch_err(cache, what, rc, n);
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0)
        return batch_err(cache, "mdb_txn_commit", rc, n);
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
