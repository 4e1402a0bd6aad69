/* Prometheus text exposition (format 0.0.4) of the workers' counters. */
#include "responder/responder_internal.h"

#include "common/log.h"
#include "responder/signpool.h"
#include "responder/upmgr.h"

#include <stddef.h>
#include <stdlib.h>

/* Upper bounds of the request-duration buckets, in nanoseconds. */
static const uint64_t bucket_ns[TG_DURATION_BUCKETS] = {
    50000,    100000,   250000,    500000,    1000000,   2500000,    5000000,    10000000,
    25000000, 50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000,
};

void tg_metrics_observe_duration(tg_metrics_t *m, uint64_t ns)
{
    size_t i = 0;
    while (i < TG_DURATION_BUCKETS && ns > bucket_ns[i])
        i++;
    TG_INC(m->duration_buckets[i]);
    TG_ADD(m->duration_sum_ns, ns);
}

/* Sums one counter over all workers: field0 is the counter in worker 0, and
 * the others sit at the same offset in the following array elements. */
static uint64_t sum_counter(const tg_server_t *srv, const tg_counter_t *field0)
{
    uint64_t s = 0;
    for (size_t i = 0; i < srv->n_workers; i++) {
        const tg_counter_t *f =
            (const tg_counter_t *)((const char *)field0 + i * sizeof(tg_worker_t));
        s += TG_LOAD(*f);
    }
    return s;
}

#define SUM(srv, field) sum_counter((srv), &(srv)->workers[0].metrics.field)

static int render_counter(tg_buf_t *out, const char *name, const char *help, uint64_t v)
{
    return tg_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                         (unsigned long long)v);
}

int tg_metrics_render_family(tg_buf_t *out, const char *name, const char *help, const char *label,
                             const char *const *values, const _Atomic uint64_t *counts, size_t n)
{
    int rc = tg_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t i = 0; i < n; i++)
        rc |= tg_buf_printf(
            out, "%s{%s=\"%s\"} %llu\n", name, label, values[i],
            (unsigned long long)atomic_load_explicit(&counts[i], memory_order_relaxed));
    return rc;
}

int tg_metrics_render(tg_server_t *srv, tg_buf_t *out)
{
    int rc = 0;
    rc |= tg_buf_printf(out,
                        "# HELP trustgate_build_info Build information.\n"
                        "# TYPE trustgate_build_info gauge\n"
                        "trustgate_build_info{version=\"%s\",revision=\"%s\"} 1\n",
                        TG_VERSION, TG_GIT_REV);
    rc |= tg_buf_printf(out,
                        "# HELP trustgate_workers Worker threads (one event loop each).\n"
                        "# TYPE trustgate_workers gauge\ntrustgate_workers %zu\n",
                        srv->n_workers);

    rc |= tg_buf_append_str(out, "# HELP trustgate_http_requests_total HTTP requests answered, "
                                 "by endpoint and status code.\n"
                                 "# TYPE trustgate_http_requests_total counter\n");
    for (int ep = 0; ep < TG_EP_COUNT; ep++) {
        for (int code = 0; code < TG_HTTP_CODE_COUNT; code++) {
            uint64_t v = SUM(srv, http_requests[ep][code]);
            if (v == 0 && code != TG_HTTP_200)
                continue;
            rc |= tg_buf_printf(out,
                                "trustgate_http_requests_total{endpoint=\"%s\",code=\"%d\"} %llu\n",
                                tg_endpoint_name((tg_endpoint_t)ep),
                                tg_http_code_number((tg_http_code_t)code), (unsigned long long)v);
        }
    }

    rc |= tg_buf_append_str(out, "# HELP trustgate_ocsp_responses_total OCSP responses sent, by "
                                 "OCSPResponseStatus.\n"
                                 "# TYPE trustgate_ocsp_responses_total counter\n");
    for (int s = 0; s < TG_OCSP_STATUS_SLOTS; s++) {
        if (s == 4)
            continue; /* 4 is not used (RFC 6960 §4.2.1) */
        rc |= tg_buf_printf(out, "trustgate_ocsp_responses_total{status=\"%s\"} %llu\n",
                            tg_ocsp_status_name((tg_ocsp_status_t)s),
                            (unsigned long long)SUM(srv, ocsp_responses[s]));
    }
    rc |= render_counter(out, "trustgate_ocsp_certids_total",
                         "Single requests (CertIDs) decoded from OCSP requests.",
                         SUM(srv, ocsp_certids));

    rc |= tg_buf_append_str(out, "# HELP trustgate_http_request_duration_seconds Time from the "
                                 "first byte of a request to its answer being queued.\n"
                                 "# TYPE trustgate_http_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i <= TG_DURATION_BUCKETS; i++) {
        cum += SUM(srv, duration_buckets[i]);
        if (i < TG_DURATION_BUCKETS)
            rc |= tg_buf_printf(out,
                                "trustgate_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                                (double)bucket_ns[i] / 1e9, (unsigned long long)cum);
        else
            rc |= tg_buf_printf(
                out, "trustgate_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)cum);
    }
    rc |= tg_buf_printf(out,
                        "trustgate_http_request_duration_seconds_sum %.9f\n"
                        "trustgate_http_request_duration_seconds_count %llu\n",
                        (double)SUM(srv, duration_sum_ns) / 1e9, (unsigned long long)cum);

    rc |= tg_buf_printf(out,
                        "# HELP trustgate_connections_open Open client connections.\n"
                        "# TYPE trustgate_connections_open gauge\n"
                        "trustgate_connections_open %llu\n",
                        (unsigned long long)atomic_load(&srv->conns_total));
    rc |= render_counter(out, "trustgate_connections_accepted_total", "Connections accepted.",
                         SUM(srv, conns_accepted));
    rc |= render_counter(out, "trustgate_connections_rejected_total",
                         "Connections refused because max_connections was reached.",
                         SUM(srv, conns_rejected));
    rc |= render_counter(out, "trustgate_http_parse_errors_total",
                         "Requests that were not valid HTTP/1.1 (answered 400).",
                         SUM(srv, http_parse_errors));
    rc |= render_counter(out, "trustgate_http_header_timeouts_total",
                         "Requests not received within header_timeout_ms (answered 408).",
                         SUM(srv, timeouts_header));
    rc |= render_counter(out, "trustgate_http_idle_timeouts_total",
                         "Keep-alive connections closed after idle_timeout_ms.",
                         SUM(srv, timeouts_idle));
    rc |= render_counter(out, "trustgate_http_too_large_total",
                         "Requests over max_request_bytes (answered 413).", SUM(srv, too_large));
    rc |= tg_buf_append_str(out, "# HELP trustgate_ocsp_decisions_total Single requests by "
                                 "decision (SPEC §5).\n"
                                 "# TYPE trustgate_ocsp_decisions_total counter\n");
    static const struct {
        const char *name;
        size_t off;
    } decisions[] = {
        {"unauthorized_not_listed", offsetof(tg_metrics_t, unauthorized_not_listed)},
        {"unauthorized_no_signer", offsetof(tg_metrics_t, unauthorized_no_signer)},
        {"revoked_suspended", offsetof(tg_metrics_t, rejections_suspended)},
        {"revoked_terminated", offsetof(tg_metrics_t, rejections_terminated)},
        {"good_crl", offsetof(tg_metrics_t, answers_crl_good)},
        {"revoked_crl", offsetof(tg_metrics_t, answers_crl_revoked)},
        {"trylater_no_status", offsetof(tg_metrics_t, trylater_no_status)},
        {"trylater_stale_crl", offsetof(tg_metrics_t, trylater_stale)},
        {"upstream_relayed", offsetof(tg_metrics_t, answers_upstream_relayed)},
        {"upstream_signed", offsetof(tg_metrics_t, answers_upstream_signed)},
    };
    for (size_t i = 0; i < sizeof(decisions) / sizeof(decisions[0]); i++)
        rc |= tg_buf_printf(out, "trustgate_ocsp_decisions_total{decision=\"%s\"} %llu\n",
                            decisions[i].name,
                            (unsigned long long)sum_counter(
                                srv, (const tg_counter_t *)((const char *)&srv->workers[0].metrics +
                                                            decisions[i].off)));
    rc |= tg_buf_printf(out,
                        "# HELP trustgate_ocsp_presigned_total Lookups of pre-signed answers "
                        "(hit: sent from the cache, nothing signed), and answers stored.\n"
                        "# TYPE trustgate_ocsp_presigned_total counter\n"
                        "trustgate_ocsp_presigned_total{result=\"hit\"} %llu\n"
                        "trustgate_ocsp_presigned_total{result=\"miss\"} %llu\n"
                        "trustgate_ocsp_presigned_total{result=\"stored\"} %llu\n"
                        "trustgate_ocsp_presigned_total{result=\"store_failed\"} %llu\n",
                        (unsigned long long)SUM(srv, presign_hits),
                        (unsigned long long)SUM(srv, presign_misses),
                        (unsigned long long)SUM(srv, presign_stored),
                        (unsigned long long)SUM(srv, presign_store_failed));
    rc |= tg_buf_printf(
        out,
        "# HELP trustgate_ocsp_answers_by_source_total Single answers by where their status "
        "came from: the CA's responder just now, its answer cached, its CRL, the trust list.\n"
        "# TYPE trustgate_ocsp_answers_by_source_total counter\n"
        "trustgate_ocsp_answers_by_source_total{source=\"upstream\"} %llu\n"
        "trustgate_ocsp_answers_by_source_total{source=\"cache\"} %llu\n"
        "trustgate_ocsp_answers_by_source_total{source=\"crl\"} %llu\n"
        "trustgate_ocsp_answers_by_source_total{source=\"trust_list\"} %llu\n",
        (unsigned long long)SUM(srv, answers_src_fetched),
        (unsigned long long)SUM(srv, answers_src_cached),
        (unsigned long long)(SUM(srv, answers_crl_good) + SUM(srv, answers_crl_revoked)),
        (unsigned long long)(SUM(srv, rejections_suspended) + SUM(srv, rejections_terminated)));
    rc |= render_counter(out, "trustgate_cache_read_errors_total",
                         "Cache reads on the answer path that failed (answered tryLater).",
                         SUM(srv, cache_errors));
    rc |= render_counter(out, "trustgate_ocsp_redecided_total",
                         "Signed answers decided again because the trust lists changed meanwhile.",
                         SUM(srv, answers_redecided));
    rc |= tg_buf_printf(out,
                        "# HELP trustgate_signing_queue_depth Signing jobs queued or running in "
                        "the signing pool (at most 64 per worker; more are shed with tryLater).\n"
                        "# TYPE trustgate_signing_queue_depth gauge\n"
                        "trustgate_signing_queue_depth %zu\n",
                        srv->signpool != NULL ? tg_signpool_depth(srv->signpool) : 0);
    rc |= render_counter(out, "trustgate_ocsp_sign_shed_total",
                         "Answers shed with tryLater because the signing queue was full.",
                         SUM(srv, sign_shed));
    rc |= tg_buf_append_str(out,
                            "# HELP trustgate_signing_operations_total OCSP responses signed, by "
                            "algorithm.\n"
                            "# TYPE trustgate_signing_operations_total counter\n");
    for (int a = 0; a < TG_SIGNER_ALG_COUNT; a++)
        rc |= tg_buf_printf(out, "trustgate_signing_operations_total{alg=\"%s\"} %llu\n",
                            tg_signer_alg_name((tg_signer_alg_t)a),
                            (unsigned long long)SUM(srv, signed_responses[a]));
    if (srv->tlmgr != NULL)
        rc |= tg_tlmgr_render_metrics(srv->tlmgr, out);
    if (srv->crlmgr != NULL)
        rc |= tg_crlmgr_render_metrics(srv->crlmgr, out);
    if (srv->upmgr != NULL)
        rc |= tg_upmgr_render_metrics(srv->upmgr, out);
    rc |= render_counter(out, "trustgate_upstream_asks_total",
                         "Answers that waited for the CA's own OCSP responder.",
                         SUM(srv, upstream_asks));
    rc |= render_counter(out, "trustgate_upstream_skipped_total",
                         "Answers that did not ask the CA's responder: its breaker was open.",
                         SUM(srv, upstream_skipped_open));
    tg_cache_stats_t cs;
    if (srv->cache != NULL && tg_cache_stats(srv->cache, &cs) == 0) {
        rc |= tg_buf_printf(
            out,
            "# HELP trustgate_cache_entries Entries per LMDB database.\n"
            "# TYPE trustgate_cache_entries gauge\n"
            "trustgate_cache_entries{db=\"ocsp\"} %llu\ntrustgate_cache_entries{db=\"crl\"} %llu\n"
            "trustgate_cache_entries{db=\"revoked\"} %llu\n"
            "trustgate_cache_entries{db=\"trustlist\"} %llu\n"
            "# HELP trustgate_cache_map_bytes LMDB map size and bytes in use.\n"
            "# TYPE trustgate_cache_map_bytes gauge\n"
            "trustgate_cache_map_bytes{kind=\"size\"} %llu\n"
            "trustgate_cache_map_bytes{kind=\"used\"} %llu\n"
            "# HELP trustgate_cache_map_full_total MDB_MAP_FULL occurrences (swept and retried).\n"
            "# TYPE trustgate_cache_map_full_total counter\ntrustgate_cache_map_full_total %llu\n"
            "# HELP trustgate_cache_writes_total Cache writes committed, and failed.\n"
            "# TYPE trustgate_cache_writes_total counter\n"
            "trustgate_cache_writes_total{result=\"ok\"} %llu\n"
            "trustgate_cache_writes_total{result=\"error\"} %llu\n",
            (unsigned long long)cs.ocsp_entries, (unsigned long long)cs.crl_entries,
            (unsigned long long)cs.revoked_entries, (unsigned long long)cs.trustlist_entries,
            (unsigned long long)cs.map_size, (unsigned long long)cs.used_bytes,
            (unsigned long long)cs.map_full, (unsigned long long)cs.writes,
            (unsigned long long)cs.write_errors);
    }
    return rc == 0 ? 0 : TG_ENOMEM;
}
