/* Response checks for trustgate-bench (RFC 6960 §4.2): a quick look at
 * every response (HTTP 200, an OCSPResponse SEQUENCE and its
 * responseStatus) and a full walk of the BasicOCSPResponse on some (the
 * SingleResponse for the CertID asked, its certStatus and revocation
 * reason, the echoed nonce). A careful DER walk without allocation;
 * signatures are not verified (no keys are given, and SM2 would need the
 * signer's ID). */
#ifndef TG_BENCH_CHECK_H
#define TG_BENCH_CHECK_H

#include "bench/client/bench.h"

#include <stddef.h>
#include <stdint.h>

/* What one response said. */
typedef struct {
    int ocsp_status; /* responseStatus 0..6, or -1 when it does not parse */
    int cert_status; /* 0 good, 1 revoked, 2 unknown; -1 when not walked or not found */
    int reason;      /* CRLReason of a revoked answer, -1 when absent */
    int state;       /* tg_bench_state_t: the status seen (TG_BST_NONE when unknown) */
    int walked;      /* 1 when the full walk ran */
} tg_bench_verdict_t;

/* Checks a response with HTTP status http_status and body[0..n) (borrowed)
 * to the request for id (borrowed) whose line expects expect (a
 * tg_bench_state_t). nonce (TG_BENCH_NONCE_LEN bytes) is the nonce sent,
 * or NULL; the full walk runs when full is non-zero or a nonce was sent.
 * Fills *out and returns the first error kind found (TG_BERR_*) or
 * TG_BERR_NONE. */
int tg_bench_check(int http_status, const uint8_t *body, size_t n, const tg_certid_t *id,
                   int expect, const uint8_t *nonce, int full, tg_bench_verdict_t *out);

/* Checks the walker on built responses; prints failures. Returns 0 or -1. */
int tg_bench_check_selftest(void);

#endif
