/* Log-linear latency histogram (see hist.h). Bucket i < 256 holds exactly
 * the value i; above, value v with top bit k (v in [2^k, 2^(k+1))) goes to
 * (k - 7) * 128 + (v >> (k - 7)), so each bucket is 2^(k-7) wide: a
 * relative width below 1/128. */
#include "bench/client/hist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tg_hist_init(tg_hist_t *h)
{
    memset(h, 0, sizeof(*h));
    h->min_ns = UINT64_MAX;
}

size_t tg_hist_bucket(uint64_t ns)
{
    if (ns > TG_HIST_MAX_NS)
        ns = TG_HIST_MAX_NS;
    if (ns < 2 * TG_HIST_SUB)
        return (size_t)ns;
    unsigned k = 63u - (unsigned)__builtin_clzll(ns);
    unsigned shift = k - TG_HIST_SUB_BITS;
    return (size_t)shift * TG_HIST_SUB + (size_t)(ns >> shift);
}

uint64_t tg_hist_bucket_upper(size_t i)
{
    if (i < 2 * TG_HIST_SUB)
        return i;
    unsigned shift = (unsigned)(i / TG_HIST_SUB) - 1;
    uint64_t lower = (uint64_t)(i % TG_HIST_SUB + TG_HIST_SUB) << shift;
    return lower + (1ULL << shift) - 1;
}

void tg_hist_record(tg_hist_t *h, uint64_t ns)
{
    h->counts[tg_hist_bucket(ns)]++;
    h->total++;
    h->sum_ns += (double)ns;
    if (ns < h->min_ns)
        h->min_ns = ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

void tg_hist_merge(tg_hist_t *dst, const tg_hist_t *src)
{
    for (size_t i = 0; i < TG_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum_ns += src->sum_ns;
    if (src->min_ns < dst->min_ns)
        dst->min_ns = src->min_ns;
    if (src->max_ns > dst->max_ns)
        dst->max_ns = src->max_ns;
}

uint64_t tg_hist_percentile(const tg_hist_t *h, double p)
{
    if (h->total == 0)
        return 0;
    if (p >= 100.0)
        return h->max_ns;
    if (p < 0.0)
        p = 0.0;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->total);
    if (rank < 1)
        rank = 1;
    if (rank > h->total)
        rank = h->total;
    uint64_t seen = 0;
    for (size_t i = 0; i < TG_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = tg_hist_bucket_upper(i);
            if (v > h->max_ns)
                v = h->max_ns;
            if (v < h->min_ns)
                v = h->min_ns;
            return v;
        }
    }
    return h->max_ns;
}

double tg_hist_mean(const tg_hist_t *h)
{
    return h->total ? h->sum_ns / (double)h->total : 0.0;
}

/* ---- self-test --------------------------------------------------------- */

static int expect_near(const char *what, double got, double want, double rel)
{
    double err = fabs(got - want) / (want != 0.0 ? want : 1.0);
    if (err <= rel)
        return 0;
    fprintf(stderr, "hist selftest: %s: got %.1f, want %.1f (error %.4f > %.4f)\n", what, got, want,
            err, rel);
    return -1;
}

int tg_hist_selftest(void)
{
    int rc = 0;
    /* bucket edges: contiguous, monotone, relative width < 1% */
    uint64_t prev_upper = 0;
    for (size_t i = 1; i < TG_HIST_BUCKETS; i++) {
        uint64_t up = tg_hist_bucket_upper(i), lo = prev_upper + 1;
        prev_upper = up;
        if (tg_hist_bucket(lo) != i || tg_hist_bucket(up) != i) {
            fprintf(stderr, "hist selftest: bucket %zu edges %llu..%llu map elsewhere\n", i,
                    (unsigned long long)lo, (unsigned long long)up);
            return -1;
        }
        if (lo >= 256 && (double)(up - lo + 1) / (double)lo > 1.0 / 128.0 + 1e-12) {
            fprintf(stderr, "hist selftest: bucket %zu too wide\n", i);
            return -1;
        }
    }
    if (tg_hist_bucket(TG_HIST_MAX_NS) != TG_HIST_BUCKETS - 1 ||
        tg_hist_bucket(UINT64_MAX) != TG_HIST_BUCKETS - 1) {
        fprintf(stderr, "hist selftest: 60 s does not land in the last bucket\n");
        return -1;
    }

    tg_hist_t *h = malloc(sizeof(*h)), *h2 = malloc(sizeof(*h2));
    if (h == NULL || h2 == NULL) {
        free(h);
        free(h2);
        return -1;
    }
    /* uniform 1 us .. 1000 us, 1 ns steps of 1000 values each half: two
     * histograms merged */
    tg_hist_init(h);
    tg_hist_init(h2);
    for (uint64_t v = 1000; v <= 1000000; v++)
        tg_hist_record(v % 2 ? h : h2, v);
    tg_hist_merge(h, h2);
    rc |= expect_near("uniform total", (double)h->total, 999001.0, 0);
    rc |= expect_near("uniform p50", (double)tg_hist_percentile(h, 50), 500500.0, 0.01);
    rc |= expect_near("uniform p90", (double)tg_hist_percentile(h, 90), 900100.0, 0.01);
    rc |= expect_near("uniform p99", (double)tg_hist_percentile(h, 99), 990010.0, 0.01);
    rc |= expect_near("uniform p100", (double)tg_hist_percentile(h, 100), 1000000.0, 0);
    rc |= expect_near("uniform mean", tg_hist_mean(h), 500500.0, 1e-9);
    rc |= expect_near("uniform min", (double)h->min_ns, 1000.0, 0);

    /* exponential, mean 100 us: p50 = ln 2 * mean, p99 = ln 100 * mean */
    tg_hist_init(h);
    uint64_t n = 2000000;
    for (uint64_t i = 0; i < n; i++) {
        double u = ((double)i + 0.5) / (double)n; /* quantiles, no PRNG needed */
        tg_hist_record(h, (uint64_t)(-log(1.0 - u) * 100000.0));
    }
    rc |= expect_near("exp p50", (double)tg_hist_percentile(h, 50), log(2.0) * 1e5, 0.01);
    rc |= expect_near("exp p99", (double)tg_hist_percentile(h, 99), log(100.0) * 1e5, 0.01);
    rc |= expect_near("exp p99.9", (double)tg_hist_percentile(h, 99.9), log(1000.0) * 1e5, 0.01);
    rc |= expect_near("exp mean", tg_hist_mean(h), 1e5, 0.01);

    /* one value, and a clamp beyond 60 s with an exact max */
    tg_hist_init(h);
    tg_hist_record(h, 123456789);
    rc |= expect_near("single p0", (double)tg_hist_percentile(h, 0), 123456789.0, 0);
    rc |= expect_near("single p50", (double)tg_hist_percentile(h, 50), 123456789.0, 0);
    tg_hist_record(h, 100000000000ULL);
    rc |= expect_near("clamp max", (double)tg_hist_percentile(h, 100), 1e11, 0);
    rc |= expect_near("clamp p50", (double)tg_hist_percentile(h, 50), 123456789.0, 0.01);
    if (h->counts[TG_HIST_BUCKETS - 1] != 1) {
        fprintf(stderr, "hist selftest: value beyond 60 s not in the last bucket\n");
        rc = -1;
    }
    free(h);
    free(h2);
    return rc ? -1 : 0;
}
