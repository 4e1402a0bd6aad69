/* Routing of complete requests and the writing of HTTP/1.1 answers
 * (SPEC §5). */
#include "responder/responder_internal.h"

#include "common/log.h"
#include "responder/getpath.h"

#include <stdio.h>
#include <string.h>

#define TG_HTTP_ROW(code, text) {code, text, sizeof(text) - 1},
static const struct {
    int num;
    const char *text;
    size_t text_len;
} http_codes[] = {TG_HTTP_CODES(TG_HTTP_ROW)};
#undef TG_HTTP_ROW

int tg_http_code_number(tg_http_code_t code)
{
    return http_codes[code].num;
}

static const char *const endpoint_names[TG_EP_COUNT] = {
    "ocsp_get", "ocsp_post", "crl", "trustlist", "healthz", "readyz", "metrics", "other",
};

const char *tg_endpoint_name(tg_endpoint_t ep)
{
    return endpoint_names[ep];
}

/* Appends pieces without a format parser: this runs for every answer. */
#define PUT(b, s, n) (memcpy((b)->data + (b)->len, (s), (n)), (b)->len += (n))
#define PUT_LIT(b, s) PUT(b, s, sizeof(s) - 1)

static void access_log(tg_conn_t *c, tg_endpoint_t ep, tg_http_code_t code, size_t body_len,
                       uint64_t dur_ns)
{
    tg_worker_t *w = c->w;
    char when[TG_HTTP_DATE_LEN + 1];
    tg_http_date(time(NULL), when);
    const char *m = llhttp_method_name((llhttp_method_t)llhttp_get_method(&c->parser));
    /* the URL is printable ASCII (llhttp refuses anything else); keep the
     * line bounded */
    int url_len = c->url.len > 512 ? 512 : (int)c->url.len;
    tg_buf_t line;
    tg_buf_init(&line);
    int rc = tg_buf_printf(
        &line, "%s [%s] \"%s %.*s%s\" %d %zu %s ocsp=%s %.3fms\n", c->peer[0] ? c->peer : "-", when,
        m, url_len, c->url.data ? (const char *)c->url.data : "", c->url.len > 512 ? "..." : "",
        http_codes[code].num, body_len, endpoint_names[ep],
        c->last_ocsp_status >= 0 ? tg_ocsp_status_name((tg_ocsp_status_t)c->last_ocsp_status) : "-",
        (double)dur_ns / 1e6);
    if (rc == 0)
        tg_worker_access_log(w, &line);
    tg_buf_free(&line);
}

void tg_http_respond(tg_conn_t *c, tg_endpoint_t ep, tg_http_code_t code, const char *ctype,
                     const char *extra_headers, tg_slice_t body)
{
    tg_worker_t *w = c->w;
    size_t ctype_len = ctype ? strlen(ctype) : 0;
    size_t extra_len = extra_headers ? strlen(extra_headers) : 0;
    int head_only = llhttp_get_method(&c->parser) == HTTP_HEAD;
    size_t need = 256 + ctype_len + extra_len + w->gen->tl_header_len + (head_only ? 0 : body.n);
    if (tg_buf_reserve(&c->out, need) != 0) {
        /* no memory for an answer: end the connection rather than send a
         * partial one */
        tg_error("out of memory answering a request; closing the connection");
        c->close_after_write = 1;
        return;
    }
    tg_buf_t *b = &c->out;
    char num[21];
    size_t n;

    PUT_LIT(b, "HTTP/1.1 ");
    n = tg_u64_to_dec((uint64_t)http_codes[code].num, num);
    PUT(b, num, n);
    PUT_LIT(b, " ");
    PUT(b, http_codes[code].text, http_codes[code].text_len);
    PUT_LIT(b, "\r\nDate: ");
    PUT(b, tg_worker_date(w), TG_HTTP_DATE_LEN);
    PUT_LIT(b, "\r\nServer: trustgate\r\n");
    if (ctype) {
        PUT_LIT(b, "Content-Type: ");
        PUT(b, ctype, ctype_len);
        PUT_LIT(b, "\r\n");
    }
    if (code != TG_HTTP_304) { /* RFC 9110 §8.6: a 304 has no Content-Length of its own */
        PUT_LIT(b, "Content-Length: ");
        n = tg_u64_to_dec(body.n, num);
        PUT(b, num, n);
        PUT_LIT(b, "\r\n");
    }
    PUT(b, extra_headers ? extra_headers : "", extra_len);
    PUT(b, w->gen->tl_header, w->gen->tl_header_len);
    if (c->close_after_write)
        PUT_LIT(b, "Connection: close\r\n");
    PUT_LIT(b, "\r\n");
    if (!head_only && body.n)
        PUT(b, body.p, body.n);

    uint64_t dur = tg_now_ns() - c->req_start_ns;
    TG_INC(w->metrics.http_requests[ep][code]);
    tg_metrics_observe_duration(&w->metrics, dur);
    if (w->cfg->access_log != NULL)
        access_log(c, ep, code, body.n, dur);
}

/* Bodies at least this big count against LARGE_OUT_MAX: every download of
 * a CRL holds its own copy in the connection's output until written, so
 * slow readers must not be able to pile them up. */
#define LARGE_BODY 1048576
#define LARGE_OUT_MAX (512ULL * 1048576)

int tg_http_take_large(tg_conn_t *c, size_t n)
{
    if (n < LARGE_BODY)
        return 0;
    _Atomic uint64_t *total = &c->w->srv->large_out_bytes;
    uint64_t now = atomic_fetch_add_explicit(total, n, memory_order_relaxed);
    if (now + n > LARGE_OUT_MAX && now > 0) { /* one is always allowed */
        atomic_fetch_sub_explicit(total, n, memory_order_relaxed);
        return -1;
    }
    c->large_bytes += n;
    return 0;
}

void tg_http_release_large(tg_conn_t *c)
{
    if (c->large_bytes == 0)
        return;
    atomic_fetch_sub_explicit(&c->w->srv->large_out_bytes, c->large_bytes, memory_order_relaxed);
    c->large_bytes = 0;
}

static void respond_text(tg_conn_t *c, tg_endpoint_t ep, tg_http_code_t code, const char *text)
{
    tg_http_respond(c, ep, code, "text/plain; charset=utf-8", "Cache-Control: no-store\r\n",
                    TG_SLICE(text, strlen(text)));
}

static void method_not_allowed(tg_conn_t *c, tg_endpoint_t ep, const char *allow)
{
    char hdr[96];
    snprintf(hdr, sizeof(hdr), "Allow: %s\r\nCache-Control: no-store\r\n", allow);
    tg_http_respond(c, ep, TG_HTTP_405, "text/plain; charset=utf-8", hdr,
                    TG_SLICE_LIT("method not allowed\n"));
}

static void serve_metrics(tg_conn_t *c)
{
    tg_buf_t m;
    tg_buf_init(&m);
    if (tg_metrics_render(c->w->srv, &m) != 0) {
        respond_text(c, TG_EP_METRICS, TG_HTTP_503, "out of memory\n");
    } else {
        tg_http_respond(c, TG_EP_METRICS, TG_HTTP_200, "text/plain; version=0.0.4; charset=utf-8",
                        "Cache-Control: no-store\r\n", TG_SLICE(m.data, m.len));
    }
    tg_buf_free(&m);
}

/* SPEC §5: ready when the cache is open and every configured list is in
 * force and not past its NextUpdate. */
static void serve_readyz(tg_conn_t *c)
{
    const tg_config_t *cfg = c->w->cfg;
    const tg_tl_snapshot_t *snap = c->w->snap;
    time_t now = time(NULL);
    tg_buf_t body;
    tg_buf_init(&body);
    int rc = tg_buf_append_str(&body, "{\"ready\":");
    size_t mark = body.len;
    int ready = 1;
    rc |= tg_buf_append_str(&body, "false,\"reasons\":[");
    if (c->w->srv->cache == NULL) {
        ready = 0;
        rc |= tg_buf_append_str(&body, "\"cache not open\"");
    }
    if (cfg->n_trustlists == 0) {
        rc |= tg_buf_printf(&body, "%s\"no trust list is configured\"", ready ? "" : ",");
        ready = 0;
    }
    for (size_t i = 0; i < cfg->n_trustlists; i++) {
        const char *name = cfg->trustlists[i].name;
        size_t idx;
        const char *why = NULL;
        if (snap == NULL || tg_tl_snapshot_list_index(snap, name, &idx) != 0)
            why = "not loaded";
        else if (tg_tl_list_is_stale(tg_tl_snapshot_list(snap, idx), now))
            why = "stale (past its NextUpdate)";
        if (why == NULL)
            continue;
        rc |= tg_buf_printf(&body, "%s\"trust list %s %s\"", ready ? "" : ",", name, why);
        ready = 0;
    }
    rc |= tg_buf_append_str(&body, "]}\n");
    if (ready) {
        body.len = mark;
        rc |= tg_buf_append_str(&body, "true,\"reasons\":[]}\n");
    }
    if (rc != 0)
        respond_text(c, TG_EP_READYZ, TG_HTTP_503, "out of memory\n");
    else
        tg_http_respond(c, TG_EP_READYZ, ready ? TG_HTTP_200 : TG_HTTP_503, "application/json",
                        "Cache-Control: no-store\r\n", TG_SLICE(body.data, body.len));
    tg_buf_free(&body);
}

static int is_base64_path_char(uint8_t ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/' || ch == '=' || ch == '%' || ch == '-' || ch == '_';
}

/* A DER OCSPRequest starts with a SEQUENCE tag (0x30), so its base64 starts
 * with 'M'; requiring that keeps ordinary unknown paths ("/nope") 404s
 * instead of malformed OCSP requests. */
static int looks_like_base64(tg_slice_t s)
{
    if (s.n == 0 || s.p[0] != 'M')
        return 0;
    for (size_t i = 0; i < s.n; i++) {
        if (!is_base64_path_char(s.p[i]))
            return 0;
    }
    return 1;
}

static int starts_with(tg_slice_t s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.n >= n && memcmp(s.p, prefix, n) == 0;
}

/* RFC 5019 §5 GET: the request is the URL-encoded base64 of the DER. */
static void serve_ocsp_get(tg_conn_t *c, tg_slice_t b64)
{
    /* base64 never decodes to more bytes than it has characters; the body
     * buffer is free on a GET */
    tg_buf_t *der = &c->body;
    der->len = 0;
    if (tg_buf_reserve(der, b64.n + 1) != 0) {
        respond_text(c, TG_EP_OCSP_GET, TG_HTTP_503, "out of memory\n");
        return;
    }
    size_t len = 0;
    int rc = tg_getpath_decode((const char *)b64.p, b64.n, der->data, der->cap, &len);
    if (rc != 0)
        len = 0; /* an empty request is malformed */
    tg_ocsp_answer(c, TG_EP_OCSP_GET, der->data, len);
}

static void serve_healthz(tg_conn_t *c, tg_slice_t path)
{
    (void)path;
    respond_text(c, TG_EP_HEALTHZ, TG_HTTP_200, "ok\n");
}

static void serve_readyz_route(tg_conn_t *c, tg_slice_t path)
{
    (void)path;
    serve_readyz(c);
}

static void serve_metrics_route(tg_conn_t *c, tg_slice_t path)
{
    (void)path;
    serve_metrics(c);
}

static void iso_time(int64_t t, char out[21])
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* GET /crl/: every listed CA with its status and the CRL held, as JSON. */
static void serve_crl_index(tg_conn_t *c)
{
    tg_worker_t *w = c->w;
    const tg_tl_snapshot_t *snap = w->snap;
    time_t now = time(NULL);
    tg_buf_t b;
    tg_buf_init(&b);
    int rc = tg_buf_append_str(&b, "[");
    int rd_open = w->reader != NULL && tg_cache_rd_begin(w->reader) == 0;
    size_t n = snap != NULL ? tg_tl_snapshot_ca_count(snap) : 0;
    for (size_t i = 0; i < n; i++) {
        const tg_tl_ca_t *ca = tg_tl_snapshot_ca(snap, i);
        char hex[65];
        tg_hex_encode(ca->sha256, 32, 0, hex);
        tg_tl_status_t st = tg_tl_ca_status_at(ca, now, NULL, NULL);
        rc |= tg_buf_printf(&b,
                            "%s\n {\"list\":\"%s\",\"ca\":\"%s\",\"status\":\"%s\","
                            "\"url\":\"/crl/%s/%s.crl\",\"crl\":",
                            i ? "," : "", ca->list_name, hex, tg_tl_status_name(st), ca->list_name,
                            hex);
        tg_cache_crl_t crl;
        if (rd_open && tg_cache_get_crl(w->reader, ca->sha256, &crl) == 0) {
            char tu[21], nu[21], num[2 * TG_CACHE_CRL_NUMBER_MAX + 1];
            iso_time(crl.this_update, tu);
            iso_time(crl.next_update, nu);
            tg_hex_encode(crl.crl_number, crl.crl_number_len, 0, num);
            rc |= tg_buf_printf(&b,
                                "{\"this_update\":\"%s\",\"next_update\":\"%s\",\"number\":\"%s\","
                                "\"entries\":%llu,\"bytes\":%zu,\"fresh\":%s}}",
                                tu, nu, num, (unsigned long long)crl.n_revoked, crl.der.n,
                                (int64_t)now < crl.next_update ? "true" : "false");
        } else {
            rc |= tg_buf_append_str(&b, "null}");
        }
    }
    if (rd_open)
        tg_cache_rd_end(w->reader);
    rc |= tg_buf_append_str(&b, "\n]\n");
    if (rc != 0)
        respond_text(c, TG_EP_CRL, TG_HTTP_503, "out of memory\n");
    else
        tg_http_respond(c, TG_EP_CRL, TG_HTTP_200, "application/json",
                        "Cache-Control: no-store\r\n", TG_SLICE(b.data, b.len));
    tg_buf_free(&b);
}

static int unhex32(tg_slice_t s, uint8_t out[32])
{
    if (s.n != 64)
        return -1;
    for (size_t i = 0; i < 64; i++) {
        uint8_t ch = s.p[i], v;
        if (ch >= '0' && ch <= '9')
            v = (uint8_t)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            v = (uint8_t)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            v = (uint8_t)(ch - 'A' + 10);
        else
            return -1;
        out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | v : v << 4);
    }
    return 0;
}

int tg_http_etag_listed(const tg_conn_t *c, const char *etag)
{
    tg_slice_t h = TG_SLICE(c->if_none_match.data, c->if_none_match.len);
    size_t n = strlen(etag);
    for (size_t i = 0; i < h.n;) {
        while (i < h.n && (h.p[i] == ' ' || h.p[i] == '\t' || h.p[i] == ','))
            i++;
        if (i < h.n && h.p[i] == '*')
            return 1;
        if (i + 2 <= h.n && h.p[i] == 'W' && h.p[i + 1] == '/')
            i += 2;
        size_t start = i;
        while (i < h.n && h.p[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (h.p[end - 1] == ' ' || h.p[end - 1] == '\t'))
            end--;
        if (end - start == n && memcmp(h.p + start, etag, n) == 0)
            return 1;
    }
    return 0;
}

/* GET /crl/{list}/{ca}.crl: the CRL held for the CA whose certificate has
 * that SHA-256, bytes as the CA signed them; 403 (no-store) while the CA
 * is suspended or terminated; 404 for a CA not on that list or without a
 * CRL yet. */
static void serve_crl_file(tg_conn_t *c, tg_slice_t rest)
{
    tg_worker_t *w = c->w;
    const uint8_t *slash = memchr(rest.p, '/', rest.n);
    uint8_t fp[32];
    if (slash == NULL || w->snap == NULL) {
        respond_text(c, TG_EP_CRL, TG_HTTP_404, "no such CRL\n");
        return;
    }
    tg_slice_t list = TG_SLICE(rest.p, (size_t)(slash - rest.p));
    tg_slice_t file = TG_SLICE(slash + 1, rest.n - list.n - 1);
    if (file.n != 68 || memcmp(file.p + 64, ".crl", 4) != 0 ||
        unhex32(TG_SLICE(file.p, 64), fp) != 0) {
        respond_text(c, TG_EP_CRL, TG_HTTP_404, "no such CRL\n");
        return;
    }
    const tg_tl_ca_t *ca = tg_tl_snapshot_find_sha256(w->snap, fp);
    if (ca == NULL || !tg_slice_eq_str(list, ca->list_name)) {
        respond_text(c, TG_EP_CRL, TG_HTTP_404, "no such CA on this list\n");
        return;
    }
    time_t now = time(NULL), since = 0;
    tg_tl_status_t st = tg_tl_ca_status_at(ca, now, &since, NULL);
    if (st != TG_TL_ACTIVE) {
        char why[96], when[TG_HTTP_DATE_LEN + 1];
        tg_http_date(since, when);
        snprintf(why, sizeof(why), "CA %s since %s\n", tg_tl_status_name(st), when);
        respond_text(c, TG_EP_CRL, TG_HTTP_403, why);
        return;
    }
    if (w->reader == NULL || tg_cache_rd_begin(w->reader) != 0) {
        respond_text(c, TG_EP_CRL, TG_HTTP_503, "cache unavailable\n");
        return;
    }
    tg_cache_crl_t crl;
    if (tg_cache_get_crl(w->reader, ca->sha256, &crl) != 0) {
        tg_cache_rd_end(w->reader);
        respond_text(c, TG_EP_CRL, TG_HTTP_404, "no CRL held for this CA yet\n");
        return;
    }
    /* the ETag names this CRL: its thisUpdate, number and size */
    char etag[96], num[2 * TG_CACHE_CRL_NUMBER_MAX + 1];
    tg_hex_encode(crl.crl_number, crl.crl_number_len, 0, num);
    snprintf(etag, sizeof(etag), "\"%llx-%s-%zx\"", (unsigned long long)crl.this_update, num,
             crl.der.n);
    int64_t max_age = crl.next_update - (int64_t)now;
    if (max_age > (int64_t)w->cfg->http_max_age_s)
        max_age = w->cfg->http_max_age_s;
    if (max_age < 0)
        max_age = 0;
    char hdr[384], lm[TG_HTTP_DATE_LEN + 1], exp[TG_HTTP_DATE_LEN + 1];
    tg_http_date((time_t)crl.this_update, lm);
    tg_http_date((time_t)crl.next_update, exp);
    snprintf(hdr, sizeof(hdr),
             "Cache-Control: max-age=%lld, public, no-transform, must-revalidate\r\n"
             "Last-Modified: %s\r\nExpires: %s\r\nETag: %s\r\n",
             (long long)max_age, lm, exp, etag);
    int not_modified = 0;
    time_t ims;
    if (c->if_none_match.len > 0)
        not_modified = tg_http_etag_listed(c, etag);
    else if (c->if_modified_since.len > 0 &&
             tg_http_date_parse((const char *)c->if_modified_since.data, c->if_modified_since.len,
                                &ims) == 0)
        not_modified = (int64_t)ims >= crl.this_update;
    int head_only = llhttp_get_method(&c->parser) == HTTP_HEAD;
    if (not_modified)
        tg_http_respond(c, TG_EP_CRL, TG_HTTP_304, NULL, hdr, TG_SLICE(NULL, 0));
    else if (!head_only && tg_http_take_large(c, crl.der.n) != 0)
        tg_http_respond(c, TG_EP_CRL, TG_HTTP_503, "text/plain; charset=utf-8",
                        "Retry-After: 5\r\nCache-Control: no-store\r\n",
                        TG_SLICE_LIT("too many CRL downloads in progress; retry\n"));
    else
        tg_http_respond(c, TG_EP_CRL, TG_HTTP_200, "application/pkix-crl", hdr, crl.der);
    tg_cache_rd_end(w->reader);
}

static void serve_crl(tg_conn_t *c, tg_slice_t path)
{
    if (tg_slice_eq_str(path, "/crl/") || tg_slice_eq_str(path, "/crl"))
        serve_crl_index(c);
    else
        serve_crl_file(c, TG_SLICE(path.p + 5, path.n - 5));
}

static int hex_eq(const uint8_t *bin, size_t n, tg_slice_t hex)
{
    static const char digits[] = "0123456789abcdef";
    if (hex.n != 2 * n + 2)
        return 0; /* quoted: "..." */
    for (size_t i = 0; i < n; i++) {
        if (hex.p[1 + 2 * i] != digits[bin[i] >> 4] || hex.p[2 + 2 * i] != digits[bin[i] & 15])
            return 0;
    }
    return hex.p[0] == '"' && hex.p[hex.n - 1] == '"';
}

/* GET /trustlist/{name}.xml: the verified list in force, byte for byte as
 * received, so each side republishes the other's (Measures §2). The ETag is
 * the SHA-256 of the bytes. */
static void serve_trustlist(tg_conn_t *c, tg_slice_t path)
{
    tg_slice_t rest = TG_SLICE(path.p + 11, path.n - 11); /* after "/trustlist/" */
    const tg_tl_snapshot_t *snap = c->w->snap;
    char name[TG_CONFIG_NAME_MAX + 1];
    size_t idx;
    if (rest.n < 5 || rest.n - 4 > TG_CONFIG_NAME_MAX ||
        memcmp(rest.p + rest.n - 4, ".xml", 4) != 0) {
        respond_text(c, TG_EP_TRUSTLIST, TG_HTTP_404, "no such trust list\n");
        return;
    }
    memcpy(name, rest.p, rest.n - 4);
    name[rest.n - 4] = '\0';
    if (snap == NULL || tg_tl_snapshot_list_index(snap, name, &idx) != 0) {
        respond_text(c, TG_EP_TRUSTLIST, TG_HTTP_404, "no such trust list in force\n");
        return;
    }
    const tg_tl_list_t *l = tg_tl_snapshot_list(snap, idx);
    char hdr[256], lm[TG_HTTP_DATE_LEN + 1];
    size_t n = 0;
    tg_http_date(l->issued, lm);
    n += (size_t)snprintf(hdr, sizeof(hdr), "ETag: \"");
    tg_hex_encode(l->sha256, 32, 0, hdr + n);
    n += 64;
    snprintf(hdr + n, sizeof(hdr) - n, "\"\r\nLast-Modified: %s\r\nCache-Control: max-age=%u\r\n",
             lm, c->w->cfg->http_max_age_s);
    if (c->if_none_match.len > 0 &&
        hex_eq(l->sha256, 32, TG_SLICE(c->if_none_match.data, c->if_none_match.len))) {
        tg_http_respond(c, TG_EP_TRUSTLIST, TG_HTTP_304, NULL, hdr, TG_SLICE(NULL, 0));
        return;
    }
    /* ETSI TS 119 612 §6.1: the MIME type of an XML trusted list */
    tg_http_respond(c, TG_EP_TRUSTLIST, TG_HTTP_200, "application/vnd.etsi.tsl+xml", hdr,
                    TG_SLICE(l->raw, l->raw_len));
}

typedef void (*get_handler_t)(tg_conn_t *c, tg_slice_t path);

/* Resources that only GET and HEAD reach; prefix routes end in '/'. */
static const struct {
    const char *path;
    int prefix;
    tg_endpoint_t ep;
    get_handler_t fn;
} get_routes[] = {
    {"/healthz", 0, TG_EP_HEALTHZ, serve_healthz},
    {"/readyz", 0, TG_EP_READYZ, serve_readyz_route},
    {"/metrics", 0, TG_EP_METRICS, serve_metrics_route},
    {"/crl", 0, TG_EP_CRL, serve_crl},
    {"/crl/", 1, TG_EP_CRL, serve_crl},
    {"/trustlist/", 1, TG_EP_TRUSTLIST, serve_trustlist},
};

void tg_http_handle(tg_conn_t *c)
{
    uint8_t method = llhttp_get_method(&c->parser);
    int is_get = method == HTTP_GET || method == HTTP_HEAD;
    tg_slice_t url = TG_SLICE(c->url.data, c->url.len);
    tg_worker_refresh(c->w);
    c->last_ocsp_status = -1;

    /* absolute-form (RFC 9112 §3.2.2), as sent through proxies */
    if (starts_with(url, "http://") || starts_with(url, "https://")) {
        size_t skip = url.p[4] == 's' ? 8 : 7;
        const uint8_t *p = memchr(url.p + skip, '/', url.n - skip);
        url = p ? TG_SLICE(p, (size_t)(url.p + url.n - p)) : TG_SLICE_LIT("/");
    }
    tg_slice_t path = url;
    const uint8_t *q = path.n ? memchr(url.p, '?', url.n) : NULL;
    if (q != NULL)
        path.n = (size_t)(q - url.p);

    for (size_t i = 0; i < sizeof(get_routes) / sizeof(get_routes[0]); i++) {
        int hit = get_routes[i].prefix ? starts_with(path, get_routes[i].path)
                                       : tg_slice_eq_str(path, get_routes[i].path);
        if (!hit)
            continue;
        if (is_get)
            get_routes[i].fn(c, path);
        else
            method_not_allowed(c, get_routes[i].ep, "GET, HEAD");
        return;
    }

    /* OCSP: POST to the responder URL, GET with the request in the path */
    if (tg_slice_eq_str(path, "/") || tg_slice_eq_str(path, "/ocsp") ||
        tg_slice_eq_str(path, "/ocsp/")) {
        if (method == HTTP_POST)
            tg_ocsp_answer(c, TG_EP_OCSP_POST, c->body.data, c->body.len);
        else if (is_get)
            serve_ocsp_get(c, TG_SLICE(NULL, 0));
        else
            method_not_allowed(c, TG_EP_OCSP_POST, "GET, HEAD, POST");
        return;
    }
    /* Under /ocsp/ everything is an OCSP request (undecodable ones are
     * malformedRequest); at the root only what looks like one. */
    int under_ocsp = starts_with(path, "/ocsp/");
    tg_slice_t b64 = under_ocsp   ? TG_SLICE(path.p + 6, path.n - 6)
                     : path.n > 0 ? TG_SLICE(path.p + 1, path.n - 1)
                                  : path;
    if (under_ocsp || (path.n > 0 && path.p[0] == '/' && looks_like_base64(b64))) {
        if (is_get)
            serve_ocsp_get(c, b64);
        else
            method_not_allowed(c, TG_EP_OCSP_GET, "GET, HEAD");
        return;
    }
    respond_text(c, TG_EP_OTHER, TG_HTTP_404, "not found\n");
}
