/* Latency histogram for trustgate-bench: log-linear buckets in nanoseconds,
 * HdrHistogram-like. Every power-of-two range is split into 128 linear
 * sub-buckets, so a recorded value is known to better than 1% (values below
 * 256 ns exactly). A fixed array, no allocation: one per worker thread,
 * merged at the end. Values above TG_HIST_MAX_NS (60 s) land in the last
 * bucket; min, max and the mean stay exact. */
#ifndef TG_BENCH_HIST_H
#define TG_BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

#define TG_HIST_SUB_BITS 7
#define TG_HIST_SUB (1u << TG_HIST_SUB_BITS) /* sub-buckets per power of two */
#define TG_HIST_MAX_NS 60000000000ULL        /* 60 s: 2^35 <= max < 2^36 */
/* buckets 0..255 are exact, then 128 per power of two; the last one holds
 * 60 s (top bit 35, so index (35 - 7) * 128 + (60 s >> 28)) */
#define TG_HIST_BUCKETS ((35 - TG_HIST_SUB_BITS) * TG_HIST_SUB + (TG_HIST_MAX_NS >> 28) + 1)

typedef struct {
    uint64_t counts[TG_HIST_BUCKETS];
    uint64_t total;
    uint64_t min_ns, max_ns; /* exact; min_ns is UINT64_MAX while empty */
    double sum_ns;           /* for the mean */
} tg_hist_t;

/* Sets h empty. */
void tg_hist_init(tg_hist_t *h);

/* Records one value in nanoseconds. */
void tg_hist_record(tg_hist_t *h, uint64_t ns);

/* Adds every count of src to dst (src unchanged). */
void tg_hist_merge(tg_hist_t *dst, const tg_hist_t *src);

/* Returns the bucket that holds ns (clamped to the last bucket). */
size_t tg_hist_bucket(uint64_t ns);

/* Returns the highest value (ns) that falls into bucket i. */
uint64_t tg_hist_bucket_upper(size_t i);

/* Returns the value at percentile p (0..100) in ns: the upper edge of the
 * bucket holding the ceil(p% * total)-th smallest value, capped at the
 * exact maximum; p = 100 gives the exact maximum. 0 when empty. */
uint64_t tg_hist_percentile(const tg_hist_t *h, double p);

/* Returns the mean in ns (0 when empty). */
double tg_hist_mean(const tg_hist_t *h);

/* Checks bucket edges and percentiles on known distributions; prints what
 * fails to stderr. Returns 0 when everything holds, else -1. */
int tg_hist_selftest(void);

#endif
