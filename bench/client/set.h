/* The CertID set of trustgate-bench: the set file (one CertID, or a range
 * of consecutive serials, per line, with the answer to expect), the choice
 * of an index over it (uniform or Zipf), and the PRNG behind the choice.
 *
 * Ranges are never expanded: an index is mapped to its line by binary
 * search over the lines' first indexes and the offset added to the serial. */
#ifndef TG_BENCH_SET_H
#define TG_BENCH_SET_H

#include "common/err.h"
#include "pki/ocsp.h"

#include <stddef.h>
#include <stdint.h>

/* What a line expects, and what a response says (its state). The first
 * three need responseStatus successful and that certStatus; the next five
 * are non-successful responseStatus values. */
typedef enum {
    TG_BST_GOOD,
    TG_BST_REVOKED,
    TG_BST_UNKNOWN,
    TG_BST_MALFORMED,
    TG_BST_INTERNAL,
    TG_BST_TRYLATER,
    TG_BST_SIGREQ,
    TG_BST_UNAUTH,
    TG_BST_ANY,  /* expect only: any parseable OCSPResponse */
    TG_BST_NONE, /* state only: nothing usable (unparseable, CertID missing) */
} tg_bench_state_t;

/* Returns the name of a state ("good", "tryLater", ...; static). */
const char *tg_bench_state_name(int st);

/* Parses a state name into *out. accept_any allows "any". Returns 0 or
 * TG_EINVAL. */
TG_WUR int tg_bench_state_parse(const char *s, int accept_any, int *out);

typedef struct tg_bench_set tg_bench_set_t;

/* Reads the set file at path, keeping the lines whose label contains one of
 * the n_selects texts (all lines when n_selects is 0), and at most limit
 * CertIDs (0 = no limit). On success *out_set is owned by the caller
 * (tg_bench_set_free). Errors are printed once as "FILE:LINE: reason" (or
 * "FILE: reason") and return TG_EINVAL, TG_EIO or TG_ENOMEM. */
TG_WUR int tg_bench_set_load(const char *path, const char *const *selects, size_t n_selects,
                             uint64_t limit, tg_bench_set_t **out_set);

/* Releases a set (NULL is fine). */
void tg_bench_set_free(tg_bench_set_t *set);

/* Returns the number of CertIDs in the set (ranges counted in full). */
uint64_t tg_bench_set_size(const tg_bench_set_t *set);

/* Fills *out_id with CertID number idx (< size) and returns what its line
 * expects (a tg_bench_state_t). */
int tg_bench_set_get(const tg_bench_set_t *set, uint64_t idx, tg_certid_t *out_id);

/* ---- PRNG and index choice -------------------------------------------- */

/* xoshiro256**: fast, good enough for choosing; not cryptographic. */
typedef struct {
    uint64_t s[4];
} tg_bench_rng_t;

/* Seeds r from seed and a stream number (one stream per thread). */
void tg_bench_rng_seed(tg_bench_rng_t *r, uint64_t seed, uint64_t stream);

/* Returns the next 64 random bits. */
static inline uint64_t tg_bench_rng_next(tg_bench_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5;
    uint64_t res = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}

/* Returns a uniform double in [0, 1). */
static inline double tg_bench_rng_unit(tg_bench_rng_t *r)
{
    return (double)(tg_bench_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Chooses indexes in [0, n): uniform when s is 0, else index k with
 * probability proportional to 1/(k+1)^s, by rejection-inversion
 * (Hörmann and Derflinger 1996): O(1) memory and time for any n. Immutable
 * once initialised, so threads may share one. */
typedef struct {
    uint64_t n;
    double s;
    double h_x1, h_n, cut; /* rejection-inversion constants */
} tg_bench_pick_t;

/* Initialises *p for n >= 1 indexes with exponent s >= 0. */
void tg_bench_pick_init(tg_bench_pick_t *p, uint64_t n, double s);

/* Returns an index in [0, n) drawn with r. */
uint64_t tg_bench_pick(const tg_bench_pick_t *p, tg_bench_rng_t *r);

/* Checks the set arithmetic and the Zipf choice against expected
 * frequencies; prints failures to stderr. Returns 0 or -1. */
int tg_bench_set_selftest(void);

#endif
