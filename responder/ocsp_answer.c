/* The OCSP endpoint: decode the request, decide every single request in it,
 * answer (SPEC §5). */
#include "responder/responder_internal.h"

/* The rejection and error answers are unsigned and must not be cached by an
 * intermediary (SPEC §5: rejections carry no-store). */
static const char no_store[] = "Cache-Control: no-store\r\n";

/* Decides the answer for one CertID. Every issuer is looked up in the
 * trust-list snapshot; until a list is loaded, every issuer is on no list,
 * which RFC 6960 §2.3 answers with unauthorized ("the responder is not
 * authorized to answer for this certificate"). */
static tg_ocsp_status_t decide_certid(const tg_conn_t *c, const tg_certid_t *id)
{
    (void)c;
    (void)id;
    return TG_OCSP_UNAUTHORIZED;
}

void tg_ocsp_answer(tg_conn_t *c, tg_endpoint_t ep, const uint8_t *der, size_t len)
{
    tg_worker_t *w = c->w;
    tg_ocsp_req_t req;
    tg_ocsp_req_init(&req);
    tg_ocsp_status_t st;
    int rc = tg_ocsp_req_decode(der, len, w->cfg->max_certids, &req);
    if (rc == 0) {
        TG_ADD(w->metrics.ocsp_certids, req.n_certids);
        /* An unsigned answer covers the whole request: one CertID that is
         * not ours makes the request unanswerable by us. */
        st = TG_OCSP_SUCCESSFUL;
        for (size_t i = 0; i < req.n_certids && st == TG_OCSP_SUCCESSFUL; i++) {
            tg_ocsp_status_t s = decide_certid(c, &req.certids[i]);
            if (s != TG_OCSP_SUCCESSFUL)
                st = s;
        }
        if (st == TG_OCSP_SUCCESSFUL)
            st = TG_OCSP_INTERNAL_ERROR; /* no signed answers exist yet */
    } else if (rc == TG_EMALFORMED) {
        st = TG_OCSP_MALFORMED_REQUEST;
    } else {
        st = TG_OCSP_INTERNAL_ERROR; /* out of memory */
    }
    tg_ocsp_req_clear(&req);
    c->last_ocsp_status = (int)st;
    TG_INC(w->metrics.ocsp_responses[st]);
    tg_http_respond(c, ep, TG_HTTP_200, "application/ocsp-response", no_store,
                    tg_ocsp_status_response(st));
}
