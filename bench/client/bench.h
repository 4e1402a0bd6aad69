/* trustgate-bench: shared types of the load generator's modes (load, flip,
 * first): the parsed command line, the target URL, error kinds and the
 * counters each worker keeps. Internal to bench/client/. */
#ifndef TG_BENCH_BENCH_H
#define TG_BENCH_BENCH_H

#include "bench/client/hist.h"
#include "bench/client/req.h"
#include "bench/client/set.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Largest response body accepted; more is a `parse` error. */
#define TG_BENCH_MAX_BODY (1024 * 1024)

typedef enum { TG_BENCH_LOAD, TG_BENCH_FLIP, TG_BENCH_FIRST } tg_bench_mode_t;

/* Error kinds, in the order of the JSON "errors" object. */
typedef enum {
    TG_BERR_CONNECT,
    TG_BERR_HTTP_STATUS,
    TG_BERR_PARSE,
    TG_BERR_OCSP_STATUS,
    TG_BERR_CERTID,
    TG_BERR_CERT_STATUS,
    TG_BERR_NONCE,
    TG_BERR_CLOSED,
    TG_BERR_TIMEOUT,
    TG_BERR_COUNT,
    TG_BERR_NONE = -1,
} tg_bench_err_t;

/* Returns the JSON name of an error kind (static). */
const char *tg_bench_err_name(int kind);

/* The command line, validated. Strings point into argv. */
typedef struct {
    tg_bench_mode_t mode;
    const char *url_text;
    tg_bench_url_t url;
    const char *certids;
    const char **selects; /* n_selects entries, owned (free) */
    size_t n_selects;
    uint64_t limit_set; /* 0 = all */
    const char *json, *label;
    uint64_t timeout_ms;
    uint64_t seed;
    /* load */
    uint32_t connections, pipeline, threads;
    double duration_s, warmup_s;
    double rate; /* requests/s; 0 = closed loop */
    double zipf, post_frac, nonce_frac;
    uint32_t check_every;
    int close;
    uint64_t max_requests; /* 0 = no limit */
    /* flip */
    int from, to;  /* tg_bench_state_t */
    int to_reason; /* -1 = any */
    const char *rename_src, *rename_dst, *admin;
    /* first */
    int has_since;
    int64_t since_ns;
} tg_bench_opts_t;

/* What one worker counts; merged over workers at the end. Requests,
 * latency and statuses count responses completed inside the measured
 * window; errors count the whole run, warm-up included. */
typedef struct {
    uint64_t completed;
    uint64_t errors[TG_BERR_COUNT];
    uint64_t ocsp_status[7]; /* by responseStatus 0..6 (4 is never used) */
    uint64_t cert_status[3]; /* good, revoked, unknown (checked responses) */
    uint64_t checked;
    uint64_t reconnects;
    uint64_t end_ns; /* when this worker's measured window ended */
    tg_hist_t hist;  /* latency, ns */
} tg_bench_stats_t;

/* Runs the load mode over set (borrowed) with opts and merges what every
 * worker counted into *out (caller-owned, initialised here) and the
 * window's real length into *out_window_s. Returns 0, or a negative TG_E*
 * code after printing why (no result then). */
TG_WUR int tg_bench_load_run(const tg_bench_opts_t *opts, const tg_bench_set_t *set,
                             tg_bench_stats_t *out, double *out_window_s);

/* Runs `flip` and prints its line and JSON. Returns the exit status (0, 1
 * on a timeout or error, 2 on a setup error). */
int tg_bench_flip_run(const tg_bench_opts_t *opts, const tg_bench_set_t *set);

/* Runs `first` and prints its line and JSON. Returns the exit status. */
int tg_bench_first_run(const tg_bench_opts_t *opts, const tg_bench_set_t *set);

/* Writes s to f as a JSON string (quotes and escapes included). */
void tg_bench_json_str(FILE *f, const char *s);

#endif
