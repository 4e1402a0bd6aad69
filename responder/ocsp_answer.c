/* The OCSP endpoint: decode the request, decide every single request in it
 * against the trust-list snapshot and the status store, answer (SPEC §5).
 *
 *   issuer on no list (or not yet listed)      unauthorized
 *   issuer's categories all suspended          signed revoked, certificateHold,
 *                                              revocationTime = suspension start
 *   issuer terminated                          signed revoked, privilegeWithdrawn,
 *                                              revocationTime = termination time
 *   issuer active, fresh CRL held              signed good, or revoked with the
 *                                              CRL's time and reason; thisUpdate and
 *                                              nextUpdate are the CRL's
 *   issuer active, no CRL or a stale one       tryLater: never stale data
 *   any of the signed answers, no signer       unauthorized
 *
 * CRL-based answers to a single CertID without a nonce are pre-signed: the
 * first one is signed and stored in the cache under the CertID, keyed by
 * the list (document and signer: tg_gen_t.list_key) and the CRL it came
 * from; the next ones are copied from the cache, so the steady state signs
 * nothing. A trust-list swap or a new CRL changes the key, and the stored
 * answer is never served again (SPEC §6).
 *
 * Signing never runs on the worker loop: it goes to the signing pool
 * (signpool.h; bounded: a full pool sheds with tryLater) and the connection
 * waits (tg_conn_async_begin), keeping pipelined answers in
 * order. An answer signed under a generation that was replaced meanwhile is
 * decided again under the new one, so nothing built from a superseded trust
 * list leaves after the swap. */
#include "responder/responder_internal.h"

#include "common/log.h"
#include "pki/ocsp_sign.h"
#include "responder/signpool.h"
#include "responder/upmgr.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Signing jobs queued or running per worker before new ones are shed with
 * tryLater (RFC 6960 §2.3) rather than letting latency grow without bound:
 * at the SM2 rate (~2,800/s per core) 64 jobs are ~25 ms of work. The pool
 * as a whole holds TG_SIGN_JOBS_PER_WORKER per worker (server.c). */
#define MAX_SIGN_INFLIGHT TG_SIGN_JOBS_PER_WORKER

/* The rejection and error answers must not be cached by an intermediary
 * (SPEC §5: rejections carry no-store). */
static const char no_store[] = "Cache-Control: no-store\r\n";

/* How the answer to one request is made and may be cached (RFC 5019 §6). */
typedef struct {
    int no_store;        /* a trust-list rejection is among the answers */
    int64_t this_update; /* the latest thisUpdate of the status-based answers */
    int64_t next_update; /* the earliest nextUpdate */
    int presign;         /* one CertID, no nonce, status-based: store once signed */
    uint64_t key;        /* pre-signed key: list key mixed with the status source */
    /* relay: the answer is the CA's own, as received (mode = relay) */
    int relay;
    tg_slice_t relay_der; /* in the read transaction or the upstream result */
    int64_t produced_at;  /* relay: the upstream answer's */
    /* ask the CA's responder first (one CertID, no fresh status held) */
    int need_upstream;
    const tg_tl_ca_t *ca;
    const char *ocsp_url;
} verdict_t;

/* What an upstream ask for certids[0] brought, when start_answer runs again
 * after it. */
typedef struct {
    tg_up_result_t *res; /* res->reason NULL: a verified answer */
} up_inject_t;

typedef struct {
    tg_conn_t *c;
    tg_endpoint_t ep;
    tg_gen_t *gen; /* the generation the answer was decided under */
    tg_ocsp_req_t req;
    tg_ocsp_single_t *singles;
    const tg_signer_t *signer;
    verdict_t v;
    time_t now;
    tg_buf_t der;
    int rc;
} sign_job_t;

static void answer_unsigned(tg_conn_t *c, tg_endpoint_t ep, tg_ocsp_status_t st)
{
    c->last_ocsp_status = (int)st;
    TG_INC(c->w->metrics.ocsp_responses[st]);
    tg_http_respond(c, ep, TG_HTTP_200, "application/ocsp-response", no_store,
                    tg_ocsp_status_response(st));
}

/* Index of the configured list called name, or -1. */
static int cfg_list_index(const tg_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_trustlists; i++) {
        if (strcmp(cfg->trustlists[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* Mixes the CRL an answer comes from into its list's key: a new CRL (other
 * thisUpdate, number or size) gives every pre-signed answer a new key. */
static uint64_t presign_key(uint64_t list_key, const tg_cache_crl_t *crl)
{
    uint64_t h = TG_FNV1A_INIT ^ list_key;
    uint64_t n = crl->der.n;
    h = tg_fnv1a(h, &crl->this_update, 8);
    h = tg_fnv1a(h, &n, 8);
    h = tg_fnv1a(h, crl->crl_number, crl->crl_number_len);
    return h != 0 ? h : 1;
}

/* A status for one CertID from the CA's own responder or from its CRL. */
typedef struct {
    tg_cert_status_t status;
    time_t revocation_time;
    int reason;
    int64_t this_update, next_update, produced_at;
    tg_slice_t der; /* upstream only: the answer as received */
} cand_t;

/* The fresh upstream answer for id: the one just fetched (inject), else the
 * cached one (read transaction open). Returns 1 when there is one. */
static int upstream_cand(tg_worker_t *w, const tg_certid_t *id, time_t now,
                         const up_inject_t *inject, cand_t *out)
{
    if (inject != NULL && inject->res != NULL && inject->res->reason == NULL) {
        const tg_ocsp_verify_result_t *r = &inject->res->v;
        out->status = r->status;
        out->revocation_time = r->revocation_time;
        out->reason = r->revocation_reason;
        out->this_update = r->this_update;
        out->next_update = r->next_update;
        out->produced_at = r->produced_at;
        out->der = TG_SLICE(inject->res->der.data, inject->res->der.len);
        return (int64_t)now < out->next_update;
    }
    tg_cache_ocsp_t rec;
    if (w->reader == NULL || tg_cache_get_ocsp(w->reader, TG_CACHE_SRC_UPSTREAM, id, &rec) != 0 ||
        rec.source != TG_CACHE_SRC_UPSTREAM || (int64_t)now >= rec.next_update ||
        rec.this_update > (int64_t)now + TG_OCSP_MAX_SKEW_S)
        return 0;
    out->status = (tg_cert_status_t)rec.cert_status;
    out->revocation_time = (time_t)rec.revocation_time;
    out->reason = rec.reason >= 0 ? rec.reason : TG_CRL_REASON_NONE;
    out->this_update = rec.this_update;
    out->next_update = rec.next_update;
    out->produced_at = rec.produced_at;
    out->der = rec.der;
    return 1;
}

/* The status of id from the CA's CRL (read transaction open). Returns 1
 * with *out and *out_crl filled when a fresh CRL is held; 0 otherwise,
 * with *out_stale set when the CRL held is past its nextUpdate. */
static int crl_cand(tg_worker_t *w, const tg_tl_ca_t *ca, const tg_certid_t *id, time_t now,
                    cand_t *out, tg_cache_crl_t *out_crl, int *out_stale)
{
    tg_cache_crl_t crl;
    *out_stale = 0;
    int rc = w->reader != NULL ? tg_cache_get_crl(w->reader, ca->sha256, &crl) : TG_ESTATE;
    if (rc != 0) {
        if (rc != TG_ENOTFOUND)
            TG_INC(w->metrics.cache_errors);
        return 0;
    }
    if ((int64_t)now >= crl.next_update) {
        *out_stale = 1;
        return 0;
    }
    tg_cache_revoked_t r;
    rc = tg_cache_get_revoked(w->reader, ca->sha256, id->serial, id->serial_len, &r);
    memset(out, 0, sizeof(*out));
    if (rc == 0) {
        out->status = TG_CERT_REVOKED;
        out->revocation_time = (time_t)r.revocation_time;
        out->reason = r.reason >= 0 ? r.reason : TG_CRL_REASON_NONE;
    } else if (rc == TG_ENOTFOUND) {
        out->status = TG_CERT_GOOD;
        out->reason = TG_CRL_REASON_NONE;
    } else {
        TG_INC(w->metrics.cache_errors);
        return 0;
    }
    out->this_update = crl.this_update;
    out->next_update = crl.next_update;
    *out_crl = crl;
    return 1;
}

/* Asks for a newer answer in the background when the one held nears its
 * nextUpdate: within refresh_ahead_s of it, spread over the last half of
 * that window by the CertID (so answers fetched together are not all
 * refreshed at once). Only answers that are asked for get refreshed. */
static void maybe_refresh(tg_worker_t *w, const tg_tl_ca_t *ca, const tg_certid_t *id,
                          const char *url, time_t now, const cand_t *up)
{
    int64_t ahead = w->cfg->refresh_ahead_s;
    uint64_t h = tg_fnv1a(TG_FNV1A_INIT, id->serial, id->serial_len);
    int64_t at = up->next_update - ahead / 2 - (int64_t)(h % (uint64_t)(ahead / 2 + 1));
    if ((int64_t)now < at || tg_upmgr_breaker_open(w->srv->upmgr, url))
        return;
    tg_up_ask_t ask = {.id = id,
                       .url = url,
                       .issuer = ca->certs[0],
                       .timeout_ms = (long)w->cfg->upstream_timeout_ms};
    if (tg_upmgr_refresh(w->srv->upmgr, &ask) == 0)
        TG_INC(w->metrics.upstream_refresh_asks);
}

/* Decides an active CA's certificate (read transaction open). Without a
 * fresh answer of the CA's own responder held, a lone CertID asks it first
 * (once). Then the newer of the CA's answer and its CRL wins (equal: the
 * CA's answer): the CA's answer is relayed as received in relay mode for a
 * lone CertID, else its status is signed; with neither, tryLater. Returns
 * TG_OCSP_SUCCESSFUL with *one filled (and *needs_signer), or with
 * v->relay / v->need_upstream set; or TG_OCSP_TRY_LATER. */
static tg_ocsp_status_t decide_active(tg_worker_t *w, const tg_gen_t *gen, int li,
                                      const tg_tl_ca_t *ca, const tg_ocsp_req_t *req, size_t i,
                                      time_t now, const up_inject_t *inject, tg_ocsp_single_t *one,
                                      int *needs_signer, verdict_t *v)
{
    const tg_config_t *cfg = gen->cfgref->cfg;
    const tg_certid_t *id = &req->certids[i];
    cand_t up, cr;
    tg_cache_crl_t crl;
    int stale = 0;
    int have_up = upstream_cand(w, id, now, i == 0 ? inject : NULL, &up);
    int have_crl = crl_cand(w, ca, id, now, &cr, &crl, &stale);
    uint64_t list_key = li >= 0 ? gen->list_key[li] : 0;
    const cand_t *use = NULL;
    const char *url = tg_tl_ca_supply_uri(ca, TG_TL_SUPPLY_OCSP, 0);
    int tried = inject != NULL && i == 0;
    if (!have_up && url != NULL && req->n_certids == 1 && !tried && w->srv->upmgr != NULL) {
        if (tg_upmgr_breaker_open(w->srv->upmgr, url)) {
            TG_INC(w->metrics.upstream_skipped_open);
            tried = 1; /* its CRL, or tryLater */
        }
    }
    if (!have_up && url != NULL && req->n_certids == 1 && !tried && w->srv->upmgr != NULL) {
        /* the CA's own answer first; its CRL is the fallback */
        v->need_upstream = 1;
        v->ca = ca;
        v->ocsp_url = url;
        return TG_OCSP_SUCCESSFUL;
    }
    if (have_up && url != NULL && w->srv->upmgr != NULL)
        maybe_refresh(w, ca, id, url, now, &up);
    if (have_up && (!have_crl || up.this_update >= cr.this_update)) {
        use = &up;
        if (tried && inject->res != NULL && inject->res->reason == NULL)
            TG_INC(w->metrics.answers_src_fetched);
        else
            TG_INC(w->metrics.answers_src_cached);
        if (req->n_certids == 1 && li >= 0 && cfg->trustlists[li].mode == TG_TL_MODE_RELAY) {
            v->relay = 1;
            v->relay_der = up.der;
            v->this_update = up.this_update;
            v->next_update = up.next_update;
            v->produced_at = up.produced_at;
            v->key = tg_fnv1a(TG_FNV1A_INIT, &up.this_update, 8) ^ (uint64_t)up.produced_at;
            TG_INC(w->metrics.answers_upstream_relayed);
            *needs_signer = 0;
            return TG_OCSP_SUCCESSFUL;
        }
        TG_INC(w->metrics.answers_upstream_signed);
        v->key =
            tg_fnv1a(tg_fnv1a(TG_FNV1A_INIT ^ list_key, &up.this_update, 8), &up.produced_at, 8);
    } else if (have_crl) {
        use = &cr;
        if (cr.status == TG_CERT_REVOKED)
            TG_INC(w->metrics.answers_crl_revoked);
        else
            TG_INC(w->metrics.answers_crl_good);
        v->key = presign_key(list_key, &crl);
    } else {
        /* (a failed ask to the CA's responder is counted by the upstream
         * manager) */
        if (stale)
            TG_INC(w->metrics.trylater_stale);
        else
            TG_INC(w->metrics.trylater_no_status);
        return TG_OCSP_TRY_LATER;
    }
    one->status = use->status;
    one->revocation_time = use->revocation_time;
    one->reason = use->reason;
    one->this_update = (time_t)use->this_update;
    one->next_update = (time_t)use->next_update;
    if (v->this_update < use->this_update)
        v->this_update = use->this_update;
    if (v->next_update == 0 || v->next_update > use->next_update)
        v->next_update = use->next_update;
    if (list_key == 0)
        v->key = 0;
    *needs_signer = 1;
    return TG_OCSP_SUCCESSFUL;
}

/* Decides every CertID of req under gen at time now, with a read
 * transaction open on w->reader. On success fills singles[], *out_signer
 * (NULL when nothing is to be signed) and *v and returns
 * TG_OCSP_SUCCESSFUL — or, with v->relay or v->need_upstream, asks the
 * caller to relay or to fetch; otherwise returns the unsigned status to
 * answer with (the whole request gets it: an unsigned answer cannot differ
 * per CertID). */
static tg_ocsp_status_t decide(tg_worker_t *w, const tg_gen_t *gen, const tg_ocsp_req_t *req,
                               time_t now, const up_inject_t *inject, tg_ocsp_single_t *singles,
                               const tg_signer_t **out_signer, verdict_t *v)
{
    const tg_config_t *cfg = gen->cfgref->cfg;
    const tg_signer_t *signer = NULL;
    /* Answers about a CA's standing last as long as a client may cache
     * an answer; the list can change at any moment. */
    time_t valid = cfg->http_max_age_s > 60 ? cfg->http_max_age_s : 60;
    memset(v, 0, sizeof(*v));
    int li = -1;

    for (size_t i = 0; i < req->n_certids; i++) {
        const tg_certid_t *id = &req->certids[i];
        const tg_tl_ca_t *ca = gen->snap ? tg_tl_snapshot_find(gen->snap, id) : NULL;
        if (ca == NULL) {
            TG_INC(w->metrics.unauthorized_not_listed);
            return TG_OCSP_UNAUTHORIZED;
        }
        li = cfg_list_index(cfg, ca->list_name);
        int si = li >= 0 ? gen->list_signer[li] : -1;
        const tg_signer_t *s = si >= 0 ? gen->cfgref->signers[si] : NULL;
        time_t since = 0;
        tg_tl_status_t st = tg_tl_ca_status_at(ca, now, &since, NULL);
        tg_ocsp_single_t *one = &singles[i];
        memset(one, 0, sizeof(*one));
        one->id = id;
        one->this_update = now;
        one->next_update = now + valid;
        one->reason = TG_CRL_REASON_NONE;
        int needs_signer = 1;
        switch (st) {
        case TG_TL_ACTIVE: {
            tg_ocsp_status_t r =
                decide_active(w, gen, li, ca, req, i, now, inject, one, &needs_signer, v);
            if (r != TG_OCSP_SUCCESSFUL)
                return r;
            if (v->relay || v->need_upstream)
                return TG_OCSP_SUCCESSFUL; /* a lone CertID: nothing to sign here */
            break;
        }
        case TG_TL_SUSPENDED:
            one->status = TG_CERT_REVOKED;
            one->reason = TG_CRL_REASON_CERTIFICATE_HOLD;
            one->revocation_time = since;
            v->no_store = 1;
            TG_INC(w->metrics.rejections_suspended);
            break;
        case TG_TL_TERMINATED:
            one->status = TG_CERT_REVOKED;
            one->reason = TG_CRL_REASON_PRIVILEGE_WITHDRAWN;
            one->revocation_time = since;
            v->no_store = 1;
            TG_INC(w->metrics.rejections_terminated);
            break;
        case TG_TL_NOT_LISTED:
        default: TG_INC(w->metrics.unauthorized_not_listed); return TG_OCSP_UNAUTHORIZED;
        }
        if (needs_signer && (s == NULL || (signer != NULL && s != signer))) {
            /* no signer for this list, or CertIDs of lists with different
             * signers in one request: one response has one signature */
            TG_INC(w->metrics.unauthorized_no_signer);
            return TG_OCSP_UNAUTHORIZED;
        }
        signer = s;
    }
    v->presign = req->n_certids == 1 && !req->has_nonce && !v->no_store && v->key != 0;
    *out_signer = signer;
    return TG_OCSP_SUCCESSFUL;
}

/* ---- HTTP caching (RFC 5019 §6) ------------------------------------------ */

/* Writes the caching headers of a CRL-based answer into hdr (cap >= 256):
 * max-age = min(nextUpdate - now, http_max_age_s), Last-Modified =
 * thisUpdate, Expires = nextUpdate, a weak ETag naming the signed answer.
 * Returns 1 when the client's conditional GET is satisfied (answer 304). */
static int cache_headers(tg_conn_t *c, tg_endpoint_t ep, time_t now, const verdict_t *v,
                         int64_t produced_at, char *hdr, size_t cap)
{
    int64_t max_age = v->next_update - (int64_t)now;
    if (max_age > (int64_t)c->w->cfg->http_max_age_s)
        max_age = c->w->cfg->http_max_age_s;
    if (max_age < 0)
        max_age = 0;
    char lm[TG_HTTP_DATE_LEN + 1], exp[TG_HTTP_DATE_LEN + 1], etag[48];
    tg_http_date((time_t)v->this_update, lm);
    tg_http_date((time_t)v->next_update, exp);
    snprintf(etag, sizeof(etag), "\"%016" PRIx64 "%" PRIx64 "\"", v->key, (uint64_t)produced_at);
    snprintf(hdr, cap,
             "Cache-Control: max-age=%lld, public, no-transform, must-revalidate\r\n"
             "Last-Modified: %s\r\nExpires: %s\r\nETag: W/%s\r\n",
             (long long)max_age, lm, exp, etag);
    if (ep != TG_EP_OCSP_GET)
        return 0; /* RFC 5019 caching is for GET; a POST is always answered */
    if (c->if_none_match.len > 0)
        return tg_http_etag_listed(c, etag);
    time_t since;
    if (c->if_modified_since.len > 0 && tg_http_date_parse((const char *)c->if_modified_since.data,
                                                           c->if_modified_since.len, &since) == 0)
        /* the stored answer is re-signed when the list or the signer
         * changes with the CRL unchanged: only an answer produced no later
         * than the client's copy is unmodified */
        return (int64_t)since >= v->this_update && (int64_t)since >= produced_at;
    return 0;
}

/* Queues a signed answer with its headers. */
static void answer_signed(tg_conn_t *c, tg_endpoint_t ep, time_t now, const verdict_t *v,
                          int64_t produced_at, tg_slice_t der)
{
    c->last_ocsp_status = TG_OCSP_SUCCESSFUL;
    TG_INC(c->w->metrics.ocsp_responses[TG_OCSP_SUCCESSFUL]);
    if (v->no_store) {
        tg_http_respond(c, ep, TG_HTTP_200, "application/ocsp-response", no_store, der);
        return;
    }
    char hdr[320];
    if (cache_headers(c, ep, now, v, produced_at, hdr, sizeof(hdr)))
        tg_http_respond(c, ep, TG_HTTP_304, NULL, hdr, TG_SLICE(NULL, 0));
    else
        tg_http_respond(c, ep, TG_HTTP_200, "application/ocsp-response", hdr, der);
}

/* ---- signing ---------------------------------------------------------------- */

static void sign_job_free(sign_job_t *job)
{
    tg_ocsp_req_clear(&job->req);
    free(job->singles);
    tg_buf_free(&job->der);
    tg_gen_unref(job->gen);
    free(job);
}

/* Thread pool: the only blocking part. */
static void sign_work(void *arg)
{
    sign_job_t *job = arg;
    job->rc = tg_ocsp_sign_response(
        job->signer, job->singles, job->req.n_certids, job->req.has_nonce ? job->req.nonce : NULL,
        job->req.has_nonce ? job->req.nonce_len : 0, job->now, &job->der);
}

/* Stores a freshly signed CRL-based answer for the next requests. */
static void presign_store(tg_worker_t *w, const sign_job_t *job)
{
    tg_cache_ocsp_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.this_update = job->singles[0].this_update;
    rec.next_update = job->singles[0].next_update;
    rec.produced_at = job->now;
    rec.generation = job->v.key;
    rec.source = TG_CACHE_SRC_SIGNED_CRL;
    rec.der = TG_SLICE(job->der.data, job->der.len);
    int rc = tg_cache_put_ocsp(w->srv->cache, &job->req.certids[0], &rec, NULL, NULL);
    if (rc == 0) {
        TG_INC(w->metrics.presign_stored);
    } else {
        /* the answer still goes out; the next request signs again */
        TG_INC(w->metrics.presign_store_failed);
    }
}

static void start_answer(tg_conn_t *c, tg_endpoint_t ep, tg_ocsp_req_t *req, int waiting,
                         const up_inject_t *inject);

/* Back on the worker loop. */
static void sign_done(void *arg, int canceled)
{
    sign_job_t *job = arg;
    if (canceled) { /* the worker stopped taking mail: nothing to answer */
        sign_job_free(job);
        return;
    }
    tg_conn_t *c = job->c;
    tg_worker_t *w = c->w;
    tg_endpoint_t ep = job->ep;
    w->sign_inflight--;
    int closing = tg_conn_is_closing(c);
    if (!closing)
        tg_worker_refresh(w);
    if (closing) {
        sign_job_free(job);
        tg_conn_async_end(c);
    } else if (w->gen != job->gen) {
        /* decided under a superseded generation: decide again */
        TG_INC(w->metrics.answers_redecided);
        tg_ocsp_req_t req = job->req;
        tg_ocsp_req_init(&job->req);
        sign_job_free(job);
        start_answer(c, ep, &req, 1, NULL);
    } else {
        if (job->rc != 0) {
            answer_unsigned(c, ep, TG_OCSP_INTERNAL_ERROR);
        } else {
            TG_INC(w->metrics.signed_responses[tg_signer_alg(job->signer)]);
            if (job->v.presign)
                presign_store(w, job);
            answer_signed(c, ep, time(NULL), &job->v, job->now,
                          TG_SLICE(job->der.data, job->der.len));
        }
        sign_job_free(job);
        tg_conn_async_end(c);
    }
    tg_worker_await_end(w); /* last: may close the worker's mail handle */
}

/* Answers from a pre-signed answer when one matches v (read transaction
 * open). Returns 1 when answered. */
static int answer_presigned(tg_conn_t *c, tg_endpoint_t ep, const tg_ocsp_req_t *req, time_t now,
                            const verdict_t *v)
{
    tg_worker_t *w = c->w;
    tg_cache_ocsp_t rec;
    if (tg_cache_get_ocsp(w->reader, TG_CACHE_SRC_SIGNED_CRL, &req->certids[0], &rec) != 0 ||
        rec.source != TG_CACHE_SRC_SIGNED_CRL || rec.generation != v->key ||
        rec.next_update != v->next_update || rec.this_update != v->this_update) {
        TG_INC(w->metrics.presign_misses);
        return 0;
    }
    TG_INC(w->metrics.presign_hits);
    answer_signed(c, ep, now, v, rec.produced_at, rec.der); /* copies rec.der */
    return 1;
}

/* Relays the CA's own answer as received (relay mode). */
static void answer_relay(tg_conn_t *c, tg_endpoint_t ep, time_t now, const verdict_t *v)
{
    answer_signed(c, ep, now, v, v->produced_at, v->relay_der); /* copies the DER */
}

/* An ask to the CA's responder on behalf of a waiting connection. */
typedef struct {
    tg_conn_t *c;
    tg_worker_t *w;
    tg_endpoint_t ep;
    tg_ocsp_req_t req;
} up_wait_t;

/* Back on the worker loop with the upstream result: decide again with it. */
static void on_upstream(void *arg, tg_up_result_t *res, int canceled)
{
    up_wait_t *uw = arg;
    if (canceled) { /* the worker is gone; nothing to answer */
        tg_ocsp_req_clear(&uw->req);
        free(uw);
        return;
    }
    tg_conn_t *c = uw->c;
    tg_worker_t *w = uw->w;
    tg_ocsp_req_t req = uw->req;
    tg_endpoint_t ep = uw->ep;
    free(uw);
    if (tg_conn_is_closing(c)) {
        tg_ocsp_req_clear(&req);
        tg_conn_async_end(c);
    } else {
        tg_worker_refresh(w);
        up_inject_t inject = {.res = res};
        start_answer(c, ep, &req, 1, &inject);
    }
    tg_worker_await_end(w); /* last: may close the worker's mail handle */
}

/* Asks the CA's responder for req's lone CertID; the connection waits.
 * Returns 1 when the ask is under way (req taken), 0 when it could not be
 * made (req untouched). */
static int ask_upstream(tg_conn_t *c, tg_endpoint_t ep, tg_ocsp_req_t *req, int waiting,
                        const verdict_t *v)
{
    tg_worker_t *w = c->w;
    up_wait_t *uw = calloc(1, sizeof(*uw));
    if (uw == NULL)
        return 0;
    uw->c = c;
    uw->w = w;
    uw->ep = ep;
    uw->req = *req;
    tg_up_ask_t ask = {.id = &uw->req.certids[0],
                       .url = v->ocsp_url,
                       .issuer = v->ca->certs[0],
                       .timeout_ms = (long)w->cfg->upstream_timeout_ms};
    tg_worker_await_begin(w);
    if (tg_upmgr_ask(w->srv->upmgr, w, &ask, on_upstream, uw) != 0) {
        tg_worker_await_end(w);
        free(uw);
        return 0;
    }
    TG_INC(w->metrics.upstream_asks);
    tg_ocsp_req_init(req);
    if (!waiting)
        tg_conn_async_begin(c);
    return 1;
}

/* Answers req (taken over: cleared or moved in every case) on c. Unsigned,
 * relayed and pre-signed answers go out at once; an answer that needs the
 * CA's responder waits for it; others are signed in the thread pool. With
 * `waiting`, c already waits for this answer (a re-decision) and is
 * released here when the answer is immediate. inject: what an upstream ask
 * for this request brought (NULL: none was made). */
static void start_answer(tg_conn_t *c, tg_endpoint_t ep, tg_ocsp_req_t *req, int waiting,
                         const up_inject_t *inject)
{
    tg_worker_t *w = c->w;
    time_t now = time(NULL);
    const tg_signer_t *signer = NULL;
    verdict_t v = {0};
    tg_ocsp_single_t *singles = calloc(req->n_certids, sizeof(*singles));
    /* one short read transaction for the decision and the copy of a stored
     * answer */
    int rd_open = w->reader != NULL && tg_cache_rd_begin(w->reader) == 0;
    tg_ocsp_status_t st = singles == NULL
                              ? TG_OCSP_INTERNAL_ERROR
                              : decide(w, w->gen, req, now, inject, singles, &signer, &v);
    int done = 0;
    if (st == TG_OCSP_SUCCESSFUL && v.relay) {
        answer_relay(c, ep, now, &v);
        done = 1;
    } else if (st == TG_OCSP_SUCCESSFUL && v.presign && rd_open &&
               answer_presigned(c, ep, req, now, &v)) {
        done = 1;
    }
    if (rd_open)
        tg_cache_rd_end(w->reader);
    if (st == TG_OCSP_SUCCESSFUL && v.need_upstream) {
        free(singles);
        if (ask_upstream(c, ep, req, waiting, &v))
            return;
        /* could not ask: decide as if the ask had failed */
        tg_up_result_t none = {.reason = "internal_error"};
        up_inject_t failed = {.res = &none};
        if (!waiting)
            tg_conn_async_begin(c);
        start_answer(c, ep, req, 1, &failed);
        return;
    }
    if (done) {
        free(singles);
        tg_ocsp_req_clear(req);
        if (waiting)
            tg_conn_async_end(c);
        return;
    }
    if (st == TG_OCSP_SUCCESSFUL && w->sign_inflight >= MAX_SIGN_INFLIGHT) {
        TG_INC(w->metrics.sign_shed);
        st = TG_OCSP_TRY_LATER;
    }
    sign_job_t *job = st == TG_OCSP_SUCCESSFUL ? calloc(1, sizeof(*job)) : NULL;
    if (job != NULL) {
        job->c = c;
        job->ep = ep;
        job->gen = tg_gen_ref(w->gen);
        job->req = *req;
        tg_ocsp_req_init(req);
        job->singles = singles;
        singles = NULL;
        /* the singles point at the CertIDs, which moved with the request */
        for (size_t i = 0; i < job->req.n_certids; i++)
            job->singles[i].id = &job->req.certids[i];
        job->signer = signer;
        job->v = v;
        job->now = now;
        tg_worker_await_begin(w);
        int rc = tg_signpool_submit(w->srv->signpool, w, sign_work, sign_done, job);
        if (rc == 0) {
            w->sign_inflight++;
            if (!waiting)
                tg_conn_async_begin(c);
            return;
        }
        tg_worker_await_end(w);
        if (rc == TG_ETOOBIG) { /* the pool is full: shed, do not queue */
            TG_INC(w->metrics.sign_shed);
            st = TG_OCSP_TRY_LATER;
        }
        *req = job->req; /* give it back for clearing below */
        tg_ocsp_req_init(&job->req);
        sign_job_free(job);
    }
    if (st == TG_OCSP_SUCCESSFUL)
        st = TG_OCSP_INTERNAL_ERROR; /* out of memory, or the pool is stopping */
    free(singles);
    tg_ocsp_req_clear(req);
    answer_unsigned(c, ep, st);
    if (waiting)
        tg_conn_async_end(c);
}

void tg_ocsp_answer(tg_conn_t *c, tg_endpoint_t ep, const uint8_t *der, size_t len)
{
    tg_worker_t *w = c->w;
    tg_ocsp_req_t req;
    tg_ocsp_req_init(&req);
    int rc = tg_ocsp_req_decode(der, len, w->cfg->max_certids, &req);
    if (rc != 0) {
        tg_ocsp_req_clear(&req);
        answer_unsigned(c, ep,
                        rc == TG_EMALFORMED ? TG_OCSP_MALFORMED_REQUEST : TG_OCSP_INTERNAL_ERROR);
        return;
    }
    TG_ADD(w->metrics.ocsp_certids, req.n_certids);
    start_answer(c, ep, &req, 0, NULL);
}
