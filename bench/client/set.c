/* CertID set file, index choice and PRNG (see set.h). */
#include "bench/client/set.h"

#include "common/buf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    tg_certid_t id; /* serial = the first of the range */
    uint64_t first; /* index of the first serial in the whole set */
    uint64_t count;
    int expect;
} entry_t;

struct tg_bench_set {
    entry_t *e;
    size_t n;
    uint64_t total;
};

static const char *const state_names[] = {
    [TG_BST_GOOD] = "good",
    [TG_BST_REVOKED] = "revoked",
    [TG_BST_UNKNOWN] = "unknown",
    [TG_BST_MALFORMED] = "malformedRequest",
    [TG_BST_INTERNAL] = "internalError",
    [TG_BST_TRYLATER] = "tryLater",
    [TG_BST_SIGREQ] = "sigRequired",
    [TG_BST_UNAUTH] = "unauthorized",
    [TG_BST_ANY] = "any",
    [TG_BST_NONE] = "none",
};

const char *tg_bench_state_name(int st)
{
    if (st < 0 || st > TG_BST_NONE)
        return "none";
    return state_names[st];
}

int tg_bench_state_parse(const char *s, int accept_any, int *out)
{
    for (int i = 0; i < TG_BST_NONE; i++) {
        if (strcmp(s, state_names[i]) == 0 && (i != TG_BST_ANY || accept_any)) {
            *out = i;
            return 0;
        }
    }
    return TG_EINVAL;
}

/* Decodes exactly n hex digits (n even, n/2 <= cap) into out. Returns the
 * byte count or -1. */
static int hex_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n == 0 || n % 2 != 0 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = tg_hex_digit((unsigned char)s[i]), lo = tg_hex_digit((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(n / 2);
}

/* Adds v to the big-endian number p[0..n). Returns the carry out (nonzero
 * when the sum does not fit in n bytes). */
static uint64_t be_add(uint8_t *p, size_t n, uint64_t v)
{
    for (size_t i = n; i-- > 0 && v != 0;) {
        uint64_t sum = (uint64_t)p[i] + (v & 0xff);
        p[i] = (uint8_t)sum;
        v = (v >> 8) + (sum >> 8);
    }
    return v;
}

static const struct {
    const char *name;
    tg_hash_alg_t alg;
} hash_names[] = {
    {"sha1", TG_HASH_SHA1},     {"sha256", TG_HASH_SHA256}, {"sha384", TG_HASH_SHA384},
    {"sha512", TG_HASH_SHA512}, {"sm3", TG_HASH_SM3},
};

/* Parses one non-comment line (modified in place) into *e and its label.
 * Returns NULL or a static reason. */
static const char *parse_line(char *line, entry_t *e, const char **out_label)
{
    char *save = NULL, *f[7];
    size_t nf = 0;
    for (char *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
        if (nf == 6)
            return "too many fields (hash namehash keyhash serial expect [label])";
        f[nf++] = t;
    }
    if (nf < 5)
        return "too few fields (hash namehash keyhash serial expect [label])";
    memset(e, 0, sizeof(*e));
    size_t h;
    for (h = 0; h < sizeof(hash_names) / sizeof(hash_names[0]); h++)
        if (strcmp(f[0], hash_names[h].name) == 0)
            break;
    if (h == sizeof(hash_names) / sizeof(hash_names[0]))
        return "unknown hash (sha1, sha256, sha384, sha512 or sm3)";
    e->id.alg = hash_names[h].alg;
    e->id.hash_len = (uint8_t)tg_hash_alg_len(e->id.alg);
    if (hex_decode(f[1], strlen(f[1]), e->id.name_hash, TG_HASH_MAX_LEN) != e->id.hash_len)
        return "issuerNameHash is not hex of the hash's length";
    if (hex_decode(f[2], strlen(f[2]), e->id.key_hash, TG_HASH_MAX_LEN) != e->id.hash_len)
        return "issuerKeyHash is not hex of the hash's length";

    char *plus = strchr(f[3], '+');
    size_t hexlen = plus ? (size_t)(plus - f[3]) : strlen(f[3]);
    int n = hex_decode(f[3], hexlen, e->id.serial, TG_SERIAL_MAX_LEN);
    if (n < 0)
        return "serial is not 1..64 bytes of hex";
    e->id.serial_len = (uint8_t)n;
    e->count = 1;
    if (plus) {
        char *end;
        errno = 0;
        if (plus[1] < '0' || plus[1] > '9')
            return "range count is not a number";
        unsigned long long c = strtoull(plus + 1, &end, 10);
        if (errno || *end != '\0' || c == 0)
            return "range count is not a number >= 1";
        const uint8_t *s = e->id.serial;
        if (s[0] & 0x80)
            return "range start is negative";
        if (n > 1 && s[0] == 0 && !(s[1] & 0x80))
            return "range start is not minimally encoded";
        uint8_t last[TG_SERIAL_MAX_LEN];
        memcpy(last, s, (size_t)n);
        if (be_add(last, (size_t)n, (uint64_t)c - 1) != 0 || (last[0] & 0x80))
            return "range overflows the start's length";
        e->count = c;
    }
    if (tg_bench_state_parse(f[4], 1, &e->expect) != 0)
        return "unknown expect (good, revoked, unknown, unauthorized, tryLater, "
               "malformedRequest, internalError, any)";
    *out_label = nf == 6 ? f[5] : "";
    return NULL;
}

static int selected(const char *label, const char *const *selects, size_t n_selects)
{
    if (n_selects == 0)
        return 1;
    for (size_t i = 0; i < n_selects; i++)
        if (strstr(label, selects[i]) != NULL)
            return 1;
    return 0;
}

int tg_bench_set_load(const char *path, const char *const *selects, size_t n_selects,
                      uint64_t limit, tg_bench_set_t **out_set)
{
    *out_set = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return TG_EIO;
    }
    int rc = TG_ENOMEM;
    char *line = NULL;
    size_t cap = 0, lineno = 0, ecap = 0;
    tg_bench_set_t *set = calloc(1, sizeof(*set));
    if (set == NULL)
        goto out;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *p = line + strspn(line, " \t\r\n");
        if (*p == '\0' || *p == '#')
            continue;
        entry_t e;
        const char *label = NULL, *why = parse_line(p, &e, &label);
        if (why != NULL) {
            fprintf(stderr, "%s:%zu: %s\n", path, lineno, why);
            rc = TG_EINVAL;
            goto out;
        }
        if (!selected(label, selects, n_selects) || (limit != 0 && set->total >= limit))
            continue; /* still read on: every line must parse */
        if (e.count > UINT64_MAX / 2 - set->total) {
            fprintf(stderr, "%s:%zu: set too large\n", path, lineno);
            rc = TG_EINVAL;
            goto out;
        }
        if (limit != 0 && e.count > limit - set->total)
            e.count = limit - set->total;
        if (set->n == ecap) {
            size_t ncap = ecap ? ecap * 2 : 64;
            entry_t *ne = realloc(set->e, ncap * sizeof(*ne));
            if (ne == NULL)
                goto out;
            set->e = ne;
            ecap = ncap;
        }
        e.first = set->total;
        set->e[set->n++] = e;
        set->total += e.count;
    }
    if (ferror(f)) {
        fprintf(stderr, "%s: read error\n", path);
        rc = TG_EIO;
        goto out;
    }
    if (set->total == 0) {
        fprintf(stderr, "%s: no CertID selected\n", path);
        rc = TG_EINVAL;
        goto out;
    }
    *out_set = set;
    set = NULL;
    rc = 0;
out:
    if (rc == TG_ENOMEM)
        fprintf(stderr, "%s: out of memory\n", path);
    tg_bench_set_free(set);
    free(line);
    fclose(f);
    return rc;
}

void tg_bench_set_free(tg_bench_set_t *set)
{
    if (set == NULL)
        return;
    free(set->e);
    free(set);
}

uint64_t tg_bench_set_size(const tg_bench_set_t *set)
{
    return set->total;
}

int tg_bench_set_get(const tg_bench_set_t *set, uint64_t idx, tg_certid_t *out_id)
{
    size_t lo = 0, hi = set->n; /* find the last entry with first <= idx */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (set->e[mid].first <= idx)
            lo = mid;
        else
            hi = mid;
    }
    const entry_t *e = &set->e[lo];
    *out_id = e->id;
    if (idx > e->first)
        (void)be_add(out_id->serial, out_id->serial_len, idx - e->first);
    return e->expect;
}

/* ---- PRNG and choice --------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void tg_bench_rng_seed(tg_bench_rng_t *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

/* Rejection-inversion helpers, as in Apache Commons RNG's
 * RejectionInversionZipfSampler: h(x) = x^-s and its integral
 * H(x) = (x^(1-s) - 1) / (1 - s), written to stay exact near s = 1. */
static double helper1(double x)
{
    return fabs(x) > 1e-8 ? log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
}

static double helper2(double x)
{
    return fabs(x) > 1e-8 ? expm1(x) / x : 1 + x * 0.5 * (1 + x * (1.0 / 3) * (1 + 0.25 * x));
}

static double h_integral(double s, double x)
{
    double lx = log(x);
    return helper2((1 - s) * lx) * lx;
}

static double h_of(double s, double x)
{
    return exp(-s * log(x));
}

static double h_integral_inv(double s, double x)
{
    double t = x * (1 - s);
    if (t < -1)
        t = -1;
    return exp(helper1(t) * x);
}

void tg_bench_pick_init(tg_bench_pick_t *p, uint64_t n, double s)
{
    p->n = n;
    p->s = s;
    if (s > 0) {
        p->h_x1 = h_integral(s, 1.5) - 1;
        p->h_n = h_integral(s, (double)n + 0.5);
        p->cut = 2 - h_integral_inv(s, h_integral(s, 2.5) - h_of(s, 2));
    }
}

uint64_t tg_bench_pick(const tg_bench_pick_t *p, tg_bench_rng_t *r)
{
    if (p->n <= 1)
        return 0;
    if (p->s <= 0)
        return tg_bench_rng_next(r) % p->n; /* bias < n / 2^64: negligible */
    for (;;) {
        double u = p->h_n + tg_bench_rng_unit(r) * (p->h_x1 - p->h_n);
        double x = h_integral_inv(p->s, u);
        double kd = floor(x + 0.5);
        if (kd < 1)
            kd = 1;
        else if (kd > (double)p->n)
            kd = (double)p->n;
        if (kd - x <= p->cut || u >= h_integral(p->s, kd + 0.5) - h_of(p->s, kd))
            return (uint64_t)kd - 1;
    }
}

/* ---- self-test --------------------------------------------------------- */

static int zipf_check(uint64_t n, double s, uint64_t draws)
{
    double norm = 0;
    for (uint64_t k = 1; k <= n; k++)
        norm += pow((double)k, -s);
    tg_bench_pick_t p;
    tg_bench_pick_init(&p, n, s);
    tg_bench_rng_t r;
    tg_bench_rng_seed(&r, 42, 0);
    uint64_t c[3] = {0, 0, 0}, idx[3] = {0, 1, 9};
    for (uint64_t i = 0; i < draws; i++) {
        uint64_t k = tg_bench_pick(&p, &r);
        if (k >= n) {
            fprintf(stderr, "set selftest: zipf index %llu >= %llu\n", (unsigned long long)k,
                    (unsigned long long)n);
            return -1;
        }
        for (int j = 0; j < 3; j++)
            c[j] += k == idx[j];
    }
    for (int j = 0; j < 3; j++) {
        double want = (double)draws * pow((double)idx[j] + 1, -s) / norm;
        double tol = 5 * sqrt(want) + 1; /* 5 sigma */
        if (fabs((double)c[j] - want) > tol) {
            fprintf(stderr, "set selftest: zipf n=%llu s=%.2f index %llu: %llu draws, want %.0f\n",
                    (unsigned long long)n, s, (unsigned long long)idx[j], (unsigned long long)c[j],
                    want);
            return -1;
        }
    }
    return 0;
}

int tg_bench_set_selftest(void)
{
    int rc = 0;
    static const char *const bad[] = {
        "sha1 00 00 01 good", /* hash length */
        "md5 0000000000000000000000000000000000000000 "
        "0000000000000000000000000000000000000000 01 good", /* hash name */
        "sha1 0000000000000000000000000000000000000000 "
        "0000000000000000000000000000000000000000 7fff+2 good", /* range overflow */
        "sha1 0000000000000000000000000000000000000000 "
        "0000000000000000000000000000000000000000 80+1 good", /* negative start */
        "sha1 0000000000000000000000000000000000000000 "
        "0000000000000000000000000000000000000000 0001+5 good", /* not minimal */
        "sha1 0000000000000000000000000000000000000000 "
        "0000000000000000000000000000000000000000 01 maybe", /* expect */
        "sha1 0000000000000000000000000000000000000000 "
        "0000000000000000000000000000000000000000 01 good a b", /* fields */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char buf[256];
        entry_t e;
        const char *label;
        snprintf(buf, sizeof(buf), "%s", bad[i]);
        if (parse_line(buf, &e, &label) == NULL) {
            fprintf(stderr, "set selftest: accepted bad line %zu\n", i);
            rc = -1;
        }
    }
    /* a range crossing a byte carry: 00ff, 0100, 0101; 7ffe+2 ends at 7fff */
    char good[] = "sha256 0000000000000000000000000000000000000000000000000000000000000000 "
                  "1111111111111111111111111111111111111111111111111111111111111111 "
                  "00ff+3 revoked x/y";
    char good2[] = "sm3 0000000000000000000000000000000000000000000000000000000000000000 "
                   "1111111111111111111111111111111111111111111111111111111111111111 "
                   "7ffe+2 tryLater";
    entry_t e[2];
    const char *label;
    if (parse_line(good, &e[0], &label) != NULL || strcmp(label, "x/y") != 0 ||
        parse_line(good2, &e[1], &label) != NULL) {
        fprintf(stderr, "set selftest: refused a good line\n");
        return -1;
    }
    e[0].first = 0;
    e[1].first = 3;
    tg_bench_set_t set = {.e = e, .n = 2, .total = 5};
    static const uint8_t want[5][2] = {
        {0x00, 0xff}, {0x01, 0x00}, {0x01, 0x01}, {0x7f, 0xfe}, {0x7f, 0xff}};
    for (uint64_t i = 0; i < 5; i++) {
        tg_certid_t id;
        int ex = tg_bench_set_get(&set, i, &id);
        if (id.serial_len != 2 || memcmp(id.serial, want[i], 2) != 0 ||
            ex != (i < 3 ? TG_BST_REVOKED : TG_BST_TRYLATER) || id.hash_len != 32) {
            fprintf(stderr, "set selftest: index %llu maps wrong\n", (unsigned long long)i);
            rc = -1;
        }
    }
    rc |= zipf_check(1000, 1.0, 2000000);
    rc |= zipf_check(10000000, 1.2, 2000000);
    rc |= zipf_check(100, 0.5, 1000000);
    return rc ? -1 : 0;
}
