/* The OCSP endpoint: decode the request, decide every single request in it
 * against the trust-list snapshot, answer (SPEC §5).
 *
 *   issuer on no list (or not yet listed)      unauthorized
 *   issuer's categories all suspended          signed revoked, certificateHold,
 *                                              revocationTime = suspension start
 *   issuer terminated                          signed revoked, privilegeWithdrawn,
 *                                              revocationTime = termination time
 *   issuer active                              signed unknown: no status data is
 *                                              held yet, and never good without it
 *   any of the signed answers, no signer       unauthorized
 *
 * Signing never runs on the worker loop: it goes to libuv's thread pool and
 * the connection waits (tg_conn_async_begin), keeping pipelined answers in
 * order. An answer signed under a generation that was replaced meanwhile is
 * decided again under the new one, so nothing built from a superseded trust
 * list leaves after the swap (SPEC §6). */
#include "responder/responder_internal.h"

#include "common/log.h"
#include "pki/ocsp_sign.h"

#include <stdlib.h>
#include <string.h>

/* Signing jobs queued or running per worker before new ones are shed with
 * tryLater (RFC 6960 §2.3) rather than letting latency grow without bound.
 * Trust-list loads share libuv's pool, so the queue is kept short: at the
 * SM2 rate (~2,800/s per core) 64 jobs are ~25 ms of work. */
#define MAX_SIGN_INFLIGHT 64

/* The rejection and error answers must not be cached by an intermediary
 * (SPEC §5: rejections carry no-store); the signed `unknown` answers are
 * not status data either. */
static const char no_store[] = "Cache-Control: no-store\r\n";

typedef struct {
    uv_work_t work;
    tg_conn_t *c;
    tg_endpoint_t ep;
    tg_gen_t *gen; /* the generation the answer was decided under */
    tg_ocsp_req_t req;
    tg_ocsp_single_t *singles;
    const tg_signer_t *signer;
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

/* Decides every CertID of req under gen at time now. On success fills
 * singles[] and *out_signer and returns TG_OCSP_SUCCESSFUL; otherwise
 * returns the unsigned status to answer with (the whole request gets it: an
 * unsigned answer cannot differ per CertID). */
static tg_ocsp_status_t decide(tg_worker_t *w, const tg_gen_t *gen, const tg_ocsp_req_t *req,
                               time_t now, tg_ocsp_single_t *singles,
                               const tg_signer_t **out_signer)
{
    const tg_config_t *cfg = gen->cfgref->cfg;
    const tg_signer_t *signer = NULL;
    /* Answers about a CA's standing last as long as a client may cache
     * an answer; the list can change at any moment. */
    time_t valid = cfg->http_max_age_s > 60 ? cfg->http_max_age_s : 60;

    for (size_t i = 0; i < req->n_certids; i++) {
        const tg_certid_t *id = &req->certids[i];
        const tg_tl_ca_t *ca = gen->snap ? tg_tl_snapshot_find(gen->snap, id) : NULL;
        if (ca == NULL) {
            TG_INC(w->metrics.unauthorized_not_listed);
            return TG_OCSP_UNAUTHORIZED;
        }
        int li = cfg_list_index(cfg, ca->list_name);
        int si = li >= 0 ? gen->list_signer[li] : -1;
        const tg_signer_t *s = si >= 0 ? gen->cfgref->signers[si] : NULL;
        if (s == NULL || (signer != NULL && s != signer)) {
            /* no signer for this list, or CertIDs of lists with different
             * signers in one request: one response has one signature */
            TG_INC(w->metrics.unauthorized_no_signer);
            return TG_OCSP_UNAUTHORIZED;
        }
        signer = s;
        time_t since = 0;
        tg_tl_status_t st = tg_tl_ca_status_at(ca, now, &since, NULL);
        tg_ocsp_single_t *one = &singles[i];
        memset(one, 0, sizeof(*one));
        one->id = id;
        one->this_update = now;
        one->next_update = now + valid;
        one->reason = TG_CRL_REASON_NONE;
        switch (st) {
        case TG_TL_ACTIVE:
            one->status = TG_CERT_UNKNOWN;
            TG_INC(w->metrics.answers_active_unknown);
            break;
        case TG_TL_SUSPENDED:
            one->status = TG_CERT_REVOKED;
            one->reason = TG_CRL_REASON_CERTIFICATE_HOLD;
            one->revocation_time = since;
            TG_INC(w->metrics.rejections_suspended);
            break;
        case TG_TL_TERMINATED:
            one->status = TG_CERT_REVOKED;
            one->reason = TG_CRL_REASON_PRIVILEGE_WITHDRAWN;
            one->revocation_time = since;
            TG_INC(w->metrics.rejections_terminated);
            break;
        case TG_TL_NOT_LISTED:
        default: TG_INC(w->metrics.unauthorized_not_listed); return TG_OCSP_UNAUTHORIZED;
        }
    }
    *out_signer = signer;
    return TG_OCSP_SUCCESSFUL;
}

static void sign_job_free(sign_job_t *job)
{
    tg_ocsp_req_clear(&job->req);
    free(job->singles);
    tg_buf_free(&job->der);
    tg_gen_unref(job->gen);
    free(job);
}

/* Thread pool: the only blocking part. */
static void sign_work(uv_work_t *work)
{
    sign_job_t *job = work->data;
    job->rc = tg_ocsp_sign_response(
        job->signer, job->singles, job->req.n_certids, job->req.has_nonce ? job->req.nonce : NULL,
        job->req.has_nonce ? job->req.nonce_len : 0, job->now, &job->der);
}

static void start_answer(tg_conn_t *c, tg_endpoint_t ep, tg_ocsp_req_t *req, int waiting);

/* Back on the worker loop. */
static void sign_done(uv_work_t *work, int status)
{
    sign_job_t *job = work->data;
    tg_conn_t *c = job->c;
    tg_worker_t *w = c->w;
    tg_endpoint_t ep = job->ep;
    w->sign_inflight--;
    if (tg_conn_is_closing(c)) {
        sign_job_free(job);
        tg_conn_async_end(c);
        return;
    }
    tg_worker_refresh(w);
    if (w->gen != job->gen) {
        /* decided under a superseded generation: decide again */
        TG_INC(w->metrics.answers_redecided);
        tg_ocsp_req_t req = job->req;
        tg_ocsp_req_init(&job->req);
        sign_job_free(job);
        start_answer(c, ep, &req, 1);
        return;
    }
    if (status != 0 || job->rc != 0) {
        answer_unsigned(c, ep, TG_OCSP_INTERNAL_ERROR);
    } else {
        c->last_ocsp_status = TG_OCSP_SUCCESSFUL;
        TG_INC(w->metrics.ocsp_responses[TG_OCSP_SUCCESSFUL]);
        TG_INC(w->metrics.signed_responses[tg_signer_alg(job->signer)]);
        tg_http_respond(c, ep, TG_HTTP_200, "application/ocsp-response", no_store,
                        TG_SLICE(job->der.data, job->der.len));
    }
    sign_job_free(job);
    tg_conn_async_end(c);
}

/* Answers req (taken over: cleared or moved in every case) on c. Unsigned
 * answers go out at once; signed ones are built in the thread pool. With
 * `waiting`, c already waits for this answer (a re-decision) and is
 * released here when the answer is immediate. */
static void start_answer(tg_conn_t *c, tg_endpoint_t ep, tg_ocsp_req_t *req, int waiting)
{
    tg_worker_t *w = c->w;
    time_t now = time(NULL);
    const tg_signer_t *signer = NULL;
    tg_ocsp_single_t *singles = calloc(req->n_certids, sizeof(*singles));
    tg_ocsp_status_t st =
        singles == NULL ? TG_OCSP_INTERNAL_ERROR : decide(w, w->gen, req, now, singles, &signer);
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
        job->signer = signer;
        job->now = now;
        job->work.data = job;
        if (uv_queue_work(&w->loop, &job->work, sign_work, sign_done) == 0) {
            w->sign_inflight++;
            if (!waiting)
                tg_conn_async_begin(c);
            return;
        }
        *req = job->req; /* give it back for clearing below */
        tg_ocsp_req_init(&job->req);
        sign_job_free(job);
    }
    if (st == TG_OCSP_SUCCESSFUL)
        st = TG_OCSP_INTERNAL_ERROR; /* out of memory or no pool */
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
    start_answer(c, ep, &req, 0);
}
