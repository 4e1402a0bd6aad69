/* libFuzzer harness: tg_ocsp_req_decode.
 *
 * Each input is used twice:
 * 1. as raw bytes, checking what the decoder promises for anything: a known
 *    return code, an empty OpenSSL error queue, fields within their bounds;
 * 2. as a recipe for a well-formed DER OCSPRequest built here (version,
 *    CertIDs with supported and unsupported hash OIDs, right and wrong hash
 *    lengths, arbitrary serial octets, extensions critical or not, nonces
 *    wrapped or not, duplicates, a signature of good or bad shape, trailing
 *    or missing bytes), whose expected outcome the harness works out
 *    independently, so every rule of pki/ocsp.h is checked, not just "no
 *    crash". OpenSSL is not instrumented, so raw mutation alone rarely gets
 *    past d2i; the recipe gets there on every run. */
#include "pki/ocsp.h"

#include <openssl/crypto.h>
#include <openssl/err.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- allocation failures ----
 * OpenSSL's allocations are counted, and made to fail from a chosen one on
 * (-1: never), to drive the decoder's out-of-memory paths; LeakSanitizer
 * then checks that none of them leaks. (Criterion cannot do this: libgit2,
 * which it links, allocates with OpenSSL before any test runs.) */
static long oom_countdown = -1;
static long n_allocs;
static int oom_injected;

static int oom_now(void)
{
    n_allocs++;
    if (oom_countdown == 0) {
        oom_injected = 1;
        return 1;
    }
    if (oom_countdown > 0)
        oom_countdown--;
    return 0;
}

static void *oom_malloc(size_t n, const char *file, int line)
{
    (void)file, (void)line;
    return oom_now() ? NULL : malloc(n);
}

static void *oom_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file, (void)line;
    return oom_now() ? NULL : realloc(p, n);
}

static void oom_free(void *p, const char *file, int line)
{
    (void)file, (void)line;
    free(p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* Refused when something allocated with OpenSSL first; allocations are
     * then not counted and the out-of-memory runs are skipped. */
    if (!CRYPTO_set_mem_functions(oom_malloc, oom_realloc, oom_free))
        fprintf(stderr, "ocsp_req: cannot hook OpenSSL allocations; no OOM runs\n");
    return 0;
}

#define MAX_CERTIDS 8

static void check_invariants(int rc, const tg_ocsp_req_t *req)
{
    if (rc != 0 && rc != TG_EMALFORMED && rc != TG_ENOMEM)
        abort();
    if (ERR_peek_error() != 0)
        abort();
    if (rc != 0) {
        if (req->certids != NULL || req->n_certids != 0 || req->has_nonce)
            abort();
        return;
    }
    if (req->n_certids == 0 || req->n_certids > MAX_CERTIDS || req->certids == NULL)
        abort();
    for (size_t i = 0; i < req->n_certids; i++) {
        const tg_certid_t *c = &req->certids[i];
        if ((unsigned)c->alg >= TG_HASH_COUNT || c->hash_len != tg_hash_alg_len(c->alg))
            abort();
        if (c->serial_len == 0 || c->serial_len > TG_SERIAL_MAX_LEN)
            abort();
        /* Minimal, positive, non-zero DER INTEGER content. */
        if (c->serial[0] & 0x80)
            abort();
        if (c->serial_len > 1 && c->serial[0] == 0 && !(c->serial[1] & 0x80))
            abort();
        if (c->serial_len == 1 && c->serial[0] == 0)
            abort();
        if (!tg_certid_eq(c, c))
            abort();
    }
    if (req->has_nonce && (req->nonce_len == 0 || req->nonce_len > TG_NONCE_MAX_LEN))
        abort();
}

/* ---- the recipe reader ---- */

typedef struct {
    const uint8_t *p;
    size_t n;
} src_t;

static unsigned take(src_t *s)
{
    if (s->n == 0)
        return 0;
    s->n--;
    return *s->p++;
}

/* Copies n bytes from the recipe, padding with a constant once it runs out. */
static void take_bytes(src_t *s, uint8_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = s->n ? (uint8_t)take(s) : 0x5a;
}

/* ---- a DER writer with length fix-ups ---- */

#define DER_MAX 32768

typedef struct {
    uint8_t b[DER_MAX];
    size_t n;
} der_t;

static void put(der_t *d, const void *p, size_t n)
{
    if (n > DER_MAX - d->n)
        abort(); /* the recipe's sizes are bounded well below this */
    memcpy(d->b + d->n, p, n);
    d->n += n;
}

static void put1(der_t *d, uint8_t c)
{
    put(d, &c, 1);
}

static size_t begin(der_t *d, uint8_t tag)
{
    put1(d, tag);
    put1(d, 0);
    return d->n - 1;
}

static void end(der_t *d, size_t at)
{
    size_t len = d->n - (at + 1);
    if (len < 128) {
        d->b[at] = (uint8_t)len;
        return;
    }
    size_t extra = len < 256 ? 1 : 2;
    if (extra > DER_MAX - d->n || len > 0xffff)
        abort();
    memmove(d->b + at + 1 + extra, d->b + at + 1, len);
    d->b[at] = (uint8_t)(0x80 | extra);
    if (extra == 2)
        d->b[at + 1] = (uint8_t)(len >> 8);
    d->b[at + extra] = (uint8_t)len;
    d->n += extra;
}

static void put_tlv(der_t *d, uint8_t tag, const uint8_t *p, size_t n)
{
    size_t at = begin(d, tag);
    put(d, p, n);
    end(d, at);
}

/* ---- what the recipe can choose from ---- */

static const struct {
    uint8_t oid[9];
    uint8_t oid_len;
    int supported;
    tg_hash_alg_t alg;
    uint8_t len;
} algs[] = {
    {{0x2b, 0x0e, 0x03, 0x02, 0x1a}, 5, 1, TG_HASH_SHA1, 20},
    {{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01}, 9, 1, TG_HASH_SHA256, 32},
    {{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02}, 9, 1, TG_HASH_SHA384, 48},
    {{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03}, 9, 1, TG_HASH_SHA512, 64},
    {{0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x11}, 8, 1, TG_HASH_SM3, 32},
    {{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04}, 9, 0, TG_HASH_SHA1, 28}, /* sha224 */
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05}, 8, 0, TG_HASH_SHA1, 16},       /* md5 */
    {{0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f, 0x01}, 9, 0, TG_HASH_SHA1, 20}, /* private */
};
#define N_ALGS (sizeof(algs) / sizeof(algs[0]))

enum { X_NONCE, X_ACCEPTABLE, X_LOCATOR, X_PRIVATE_A, X_PRIVATE_B, N_EXTS };
static const uint8_t ext_oids[N_EXTS][9] = {
    [X_NONCE] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02},
    [X_ACCEPTABLE] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x04},
    [X_LOCATOR] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x07},
    [X_PRIVATE_A] = {0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f, 0x02},
    [X_PRIVATE_B] = {0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f, 0x03},
};

/* What a request built from the recipe should decode to. */
typedef struct {
    int valid;
    size_t n_ids;
    tg_certid_t ids[MAX_CERTIDS];
    int has_nonce;
    uint8_t nonce[TG_NONCE_MAX_LEN];
    size_t nonce_len;
} expect_t;

/* Is v exactly the DER of an OCTET STRING of 1..128 octets? (RFC 9654) */
static int nonce_ok(const uint8_t *v, size_t n, expect_t *ex)
{
    size_t hdr, len;
    if (n < 2 || v[0] != 0x04)
        return 0;
    if (v[1] < 0x80) {
        hdr = 2;
        len = v[1];
    } else if (v[1] == 0x81 && n >= 3 && v[2] >= 0x80) {
        hdr = 3;
        len = v[2];
    } else {
        return 0;
    }
    if (n != hdr + len || len < 1 || len > TG_NONCE_MAX_LEN)
        return 0;
    memcpy(ex->nonce, v + hdr, len);
    ex->nonce_len = len;
    return 1;
}

/* One Extensions list of up to three entries. Returns 0 if the list must
 * make the request malformed. */
static int build_exts(der_t *d, src_t *s, int request_level, expect_t *ex)
{
    unsigned count = take(s) % 4;
    int ok = 1, seen[N_EXTS] = {0};
    if (count == 0)
        return 1;
    size_t list = begin(d, 0x30);
    for (unsigned i = 0; i < count; i++) {
        unsigned c = take(s);
        unsigned which = c % N_EXTS;
        int crit = (c >> 3) & 1;
        int explicit_false = !crit && ((c >> 4) & 1);
        unsigned mode = (c >> 5) & 3;
        uint8_t v[3 + 160];
        size_t vn;
        if (which == X_NONCE && (mode == 0 || mode == 2)) {
            /* Wrapped: in the shortest length form (mode 0), or always in
             * the 81 LL form, which is not DER below 128 (mode 2). */
            size_t len = take(s) % 140;
            v[0] = 0x04;
            if (mode == 2 || len >= 128) {
                v[1] = 0x81, v[2] = (uint8_t)len;
                vn = 3;
            } else {
                v[1] = (uint8_t)len;
                vn = 2;
            }
            take_bytes(s, v + vn, len);
            vn += len;
        } else {
            vn = take(s) % 8;
            take_bytes(s, v, vn);
        }

        size_t ext = begin(d, 0x30);
        put_tlv(d, 0x06, ext_oids[which], 9);
        if (crit)
            put(d, (const uint8_t[]){0x01, 0x01, 0xff}, 3);
        else if (explicit_false)
            put(d, (const uint8_t[]){0x01, 0x01, 0x00}, 3);
        put_tlv(d, 0x04, v, vn);
        end(d, ext);

        if (seen[which])
            ok = 0; /* duplicate */
        seen[which] = 1;
        if (!request_level) {
            if (crit)
                ok = 0;
        } else if (which == X_NONCE) {
            if (nonce_ok(v, vn, ex))
                ex->has_nonce = 1;
            else
                ok = 0;
        } else if (which != X_ACCEPTABLE && crit) {
            ok = 0;
        }
    }
    end(d, list);
    return ok;
}

/* Builds the request into d and works out *ex. */
static void build(src_t *s, der_t *d, expect_t *ex)
{
    memset(ex, 0, sizeof(*ex));
    ex->valid = 1;
    d->n = 0;

    unsigned vmode = take(s);
    unsigned n_ids = take(s) % (MAX_CERTIDS + 3);
    if (n_ids == 0 || n_ids > MAX_CERTIDS)
        ex->valid = 0;
    ex->n_ids = n_ids;

    size_t outer = begin(d, 0x30);
    size_t tbs = begin(d, 0x30);
    switch (vmode % 4) {
    case 0: break;
    case 1: put(d, (const uint8_t[]){0xa0, 0x03, 0x02, 0x01, 0x00}, 5); break;
    case 2:
        put(d, (const uint8_t[]){0xa0, 0x03, 0x02, 0x01, 0x01}, 5);
        ex->valid = 0;
        break;
    default: {
        uint8_t b = (uint8_t)take(s);
        put(d, (const uint8_t[]){0xa0, 0x03, 0x02, 0x01, b}, 5);
        if (b != 0)
            ex->valid = 0;
    }
    }
    if ((vmode >> 2) & 1) /* requestorName [1] dNSName "abc": ignored */
        put(d, (const uint8_t[]){0xa1, 0x05, 0x82, 0x03, 'a', 'b', 'c'}, 7);

    size_t list = begin(d, 0x30);
    for (unsigned i = 0; i < n_ids; i++) {
        unsigned c = take(s);
        unsigned a = c % N_ALGS;
        int params = (c >> 3) & 1;
        size_t nl = (c >> 4) & 1 ? take(s) % 70 : algs[a].len;
        size_t kl = (c >> 5) & 1 ? take(s) % 70 : algs[a].len;
        size_t sl = take(s) % 72;
        uint8_t nh[70], kh[70], serial[72];
        take_bytes(s, nh, nl);
        take_bytes(s, kh, kl);
        take_bytes(s, serial, sl);
        /* Biases towards valid serials: the top bit clear unless asked. */
        if (sl && !((c >> 6) & 1))
            serial[0] &= 0x7f;

        size_t one = begin(d, 0x30);
        size_t cid = begin(d, 0x30);
        size_t alg = begin(d, 0x30);
        put_tlv(d, 0x06, algs[a].oid, algs[a].oid_len);
        if (params)
            put(d, (const uint8_t[]){0x05, 0x00}, 2);
        end(d, alg);
        put_tlv(d, 0x04, nh, nl);
        put_tlv(d, 0x04, kh, kl);
        put_tlv(d, 0x02, serial, sl);
        end(d, cid);
        if ((c >> 7) & 1) {
            size_t x = begin(d, 0xa0); /* singleRequestExtensions [0] */
            if (!build_exts(d, s, 0, ex))
                ex->valid = 0;
            end(d, x);
            if (d->n == x + 1) /* empty [0] is not DER of an Extensions */
                d->n = x - 1;
        }
        end(d, one);

        int ok = algs[a].supported && nl == algs[a].len && kl == algs[a].len;
        /* A DER INTEGER: 1+ octets, minimal; then positive, non-zero and at
         * most TG_SERIAL_MAX_LEN octets for us. */
        if (sl == 0 || (serial[0] & 0x80) || (sl == 1 && serial[0] == 0) ||
            (sl > 1 && serial[0] == 0 && !(serial[1] & 0x80)) || sl > TG_SERIAL_MAX_LEN)
            ok = 0;
        if (!ok)
            ex->valid = 0;
        if (ok && i < MAX_CERTIDS) {
            tg_certid_t *t = &ex->ids[i];
            t->alg = algs[a].alg;
            t->hash_len = (uint8_t)nl;
            memcpy(t->name_hash, nh, nl);
            memcpy(t->key_hash, kh, kl);
            t->serial_len = (uint8_t)sl;
            memcpy(t->serial, serial, sl);
        }
    }
    end(d, list);

    if (take(s) & 1) {
        size_t x = begin(d, 0xa2); /* requestExtensions [2] */
        size_t before = d->n;
        if (!build_exts(d, s, 1, ex))
            ex->valid = 0;
        if (d->n == before)
            d->n = x - 1;
        else
            end(d, x);
    }
    end(d, tbs);

    /* optionalSignature: checked for shape only, its contents never
     * parsed, so random bytes inside are fine. */
    unsigned sig = take(s) % 8;
    if (sig < 3) {
        static const uint8_t ecdsa_sha256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                               0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
        uint8_t junk[80];
        size_t x = begin(d, 0xa0);
        size_t seq = begin(d, 0x30);
        put(d, ecdsa_sha256, sizeof(ecdsa_sha256));
        if (sig == 2) {
            put(d, (const uint8_t[]){0x03, 0x00}, 2); /* no unused-bits octet */
            ex->valid = 0;
        } else {
            size_t bl = 1 + take(s) % 72;
            take_bytes(s, junk, bl);
            put_tlv(d, 0x03, junk, bl);
        }
        if (sig == 1) {
            size_t c0 = begin(d, 0xa0);
            size_t list2 = begin(d, 0x30);
            for (unsigned i = take(s) % 4; i > 0; i--) {
                size_t cl = take(s) % 40;
                take_bytes(s, junk, cl);
                put_tlv(d, 0x30, junk, cl);
            }
            end(d, list2);
            end(d, c0);
        }
        end(d, seq);
        end(d, x);
    }
    end(d, outer);

    /* Spoil the framing now and then. */
    unsigned tail = take(s) % 16;
    if (tail == 0) {
        put1(d, (uint8_t)take(s));
        ex->valid = 0;
    } else if (tail == 1) {
        d->n -= 1 + take(s) % d->n;
        ex->valid = 0;
    }
}

static void check_recipe(const uint8_t *data, size_t size)
{
    static der_t d;
    static expect_t ex;
    src_t s = {data, size};
    build(&s, &d, &ex);

    tg_ocsp_req_t req;
    n_allocs = 0;
    int rc = tg_ocsp_req_decode(d.b, d.n, MAX_CERTIDS, &req);
    long allocs = n_allocs;
    check_invariants(rc, &req);
    if (ex.valid != (rc == 0))
        abort();
    if (rc == 0) {
        if (req.n_certids != ex.n_ids || req.has_nonce != ex.has_nonce)
            abort();
        for (size_t i = 0; i < ex.n_ids; i++) {
            if (!tg_certid_eq(&req.certids[i], &ex.ids[i]))
                abort();
        }
        if (ex.has_nonce &&
            (req.nonce_len != ex.nonce_len || memcmp(req.nonce, ex.nonce, ex.nonce_len) != 0))
            abort();
    }
    tg_ocsp_req_clear(&req);

    /* Again, with one OpenSSL allocation failing: the result is the same,
     * TG_ENOMEM, or (when OpenSSL loses the reason with its error queue)
     * TG_EMALFORMED; never a leak. */
    if (allocs > 0) {
        oom_injected = 0;
        oom_countdown = (long)(take(&s) | take(&s) << 8) % allocs;
        int rc2 = tg_ocsp_req_decode(d.b, d.n, MAX_CERTIDS, &req);
        oom_countdown = -1;
        check_invariants(rc2, &req);
        if (!oom_injected && rc2 != rc)
            abort();
        if (oom_injected && rc2 != rc && rc2 != TG_ENOMEM && rc2 != TG_EMALFORMED)
            abort();
        tg_ocsp_req_clear(&req);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
    if (!initialised) {
        if (tg_ocsp_init() != 0)
            abort();
        initialised = 1;
    }

    tg_ocsp_req_t req;
    int rc = tg_ocsp_req_decode(data, size, MAX_CERTIDS, &req);
    check_invariants(rc, &req);
    tg_ocsp_req_clear(&req);

    check_recipe(data, size);
    return 0;
}
