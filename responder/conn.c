/* One HTTP/1.1 connection: llhttp parsing, keep-alive and pipelining (answers
 * leave in request order because each is appended to `out` when its request
 * completes), limits, timers, lingering close. */
#include "responder/responder_internal.h"

#include "common/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Stop reading while this much output waits for a slow reader. */
#define OUT_HIGH_WATER (256 * 1024)
/* Buffers bigger than this are released when a connection goes idle, so
 * thousands of idle keep-alive connections cost little memory. */
#define IDLE_KEEP_BYTES (16 * 1024)
/* How long a half-closed connection may keep sending before it is cut. */
#define LINGER_MS 2000
/* Request-line and per-header-line framing not seen by the data callbacks. */
#define LINE_OVERHEAD 4

static int on_message_begin(llhttp_t *p);
static int on_url(llhttp_t *p, const char *at, size_t n);
static int on_header_field(llhttp_t *p, const char *at, size_t n);
static int on_header_field_complete(llhttp_t *p);
static int on_header_value(llhttp_t *p, const char *at, size_t n);
static int on_header_value_complete(llhttp_t *p);
static int on_headers_complete(llhttp_t *p);
static int on_body(llhttp_t *p, const char *at, size_t n);
static int on_message_complete(llhttp_t *p);

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void conn_flush(tg_conn_t *c);

/* ---- timers ------------------------------------------------------------ */

static void on_timer(uv_timer_t *t);

/* Sets the connection's deadline timeout_ms from now. The uv timer is only
 * re-armed when the new deadline is earlier than the time it is set for;
 * otherwise on_timer re-arms itself when it fires early. Under keep-alive
 * load this touches the timer heap about once per timeout period instead of
 * twice per request. */
static void conn_set_deadline(tg_conn_t *c, uint64_t timeout_ms)
{
    uint64_t now = uv_now(&c->w->loop);
    c->deadline_ms = now + timeout_ms;
    if (!uv_is_active((uv_handle_t *)&c->timer) || c->deadline_ms < c->timer_due_ms) {
        uv_timer_start(&c->timer, on_timer, timeout_ms, 0);
        c->timer_due_ms = c->deadline_ms;
    }
}

static void on_timer(uv_timer_t *t)
{
    tg_conn_t *c = t->data;
    uint64_t now = uv_now(&c->w->loop);
    if (now < c->deadline_ms) {
        uv_timer_start(&c->timer, on_timer, c->deadline_ms - now, 0);
        c->timer_due_ms = c->deadline_ms;
        return;
    }
    switch (c->state) {
    case TG_CONN_REQUEST:
        /* RFC 9110 §15.5.9: the client did not finish its request in time */
        TG_INC(c->w->metrics.timeouts_header);
        c->close_after_write = 1;
        c->state = TG_CONN_IDLE;
        uv_read_stop((uv_stream_t *)&c->tcp);
        tg_http_respond(c, TG_EP_OTHER, TG_HTTP_408, "text/plain", NULL,
                        TG_SLICE_LIT("request timeout\n"));
        conn_set_deadline(c, LINGER_MS); /* a reader that never reads is cut */
        conn_flush(c);
        break;
    case TG_CONN_IDLE:
        TG_INC(c->w->metrics.timeouts_idle);
        tg_conn_close(c);
        break;
    case TG_CONN_WAITING:
        /* the deferred work has its own bound; keep the connection */
        conn_set_deadline(c, c->w->cfg->header_timeout_ms);
        break;
    case TG_CONN_LINGER: tg_conn_close(c); break;
    case TG_CONN_CLOSING: break;
    }
}

/* ---- closing ----------------------------------------------------------- */

static void conn_unref(tg_conn_t *c)
{
    if (--c->refs > 0)
        return;
    tg_worker_t *w = c->w;
    atomic_fetch_sub_explicit(&w->srv->conns_total, 1, memory_order_relaxed);
    tg_http_release_large(c);
    tg_buf_free(&c->url);
    tg_buf_free(&c->body);
    tg_buf_free(&c->if_none_match);
    tg_buf_free(&c->if_modified_since);
    tg_buf_free(&c->out);
    tg_buf_free(&c->wbuf);
    tg_buf_free(&c->pending_in);
    free(c);
    tg_worker_conn_gone(w);
}

static void on_close(uv_handle_t *h)
{
    conn_unref(h->data);
}

void tg_conn_close(tg_conn_t *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    c->state = TG_CONN_CLOSING;
    tg_worker_t *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_close);
    uv_close((uv_handle_t *)&c->timer, on_close);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    tg_conn_t *c = req->data;
    if (status < 0)
        tg_conn_close(c);
    /* else: keep discarding input until EOF or the linger deadline */
}

/* ---- reading ----------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    tg_conn_t *c = h->data;
    /* One buffer per worker: read_cb consumes it completely before the loop
     * reads from any other connection. */
    buf->base = (char *)c->w->readbuf;
    buf->len = sizeof(c->w->readbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void read_start(tg_conn_t *c)
{
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc != 0 && rc != UV_EALREADY)
        tg_conn_close(c);
}

/* Reads while a request can be taken: not when an answer is pending, the
 * connection ends after its writes, or a slow reader has too much queued. */
static void update_reading(tg_conn_t *c)
{
    if (c->closed || c->state == TG_CONN_LINGER)
        return;
    if (c->state == TG_CONN_WAITING || c->close_after_write || c->backpressure ||
        c->out.len + c->wbuf.len > OUT_HIGH_WATER)
        uv_read_stop((uv_stream_t *)&c->tcp);
    else
        read_start(c);
}

static void feed(tg_conn_t *c, const char *data, size_t len);
static int flush_direct(tg_conn_t *c);

/* Parsing paused for backpressure and the output is written: parse the
 * requests that waited. A loop rather than recursion through the write
 * path, so a long pipeline costs no stack. */
static void resume_parsing(tg_conn_t *c)
{
    if (c->in_resume)
        return;
    c->in_resume = 1;
    while (c->backpressure && !c->closed && !c->writing) {
        c->backpressure = 0;
        llhttp_resume(&c->parser);
        tg_buf_t in = c->pending_in;
        tg_buf_init(&c->pending_in);
        feed(c, (const char *)in.data, in.len);
        tg_buf_free(&in);
        if (!flush_direct(c))
            break; /* a queued write is in flight; on_write comes back here */
    }
    c->in_resume = 0;
}

/* Everything queued has been written. */
static void writes_done(tg_conn_t *c)
{
    tg_http_release_large(c);
    if (c->backpressure) {
        resume_parsing(c);
        if (c->closed || c->writing || c->backpressure)
            return;
    }
    if (c->state == TG_CONN_WAITING)
        return; /* an answer is still to come; tg_conn_async_end flushes it */
    if (c->close_after_write) {
        if (c->state == TG_CONN_LINGER || c->state == TG_CONN_CLOSING)
            return;
        /* Lingering close: send FIN, then read and discard what the client
         * still sends, so the kernel does not answer it with a RST that
         * destroys the response in flight (e.g. a 413 before the body). */
        c->state = TG_CONN_LINGER;
        c->sreq.data = c;
        if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
            tg_conn_close(c);
            return;
        }
        conn_set_deadline(c, LINGER_MS);
        read_start(c);
        return;
    }
    if (c->draining && c->state == TG_CONN_IDLE) {
        tg_conn_close(c);
        return;
    }
    if (c->out.cap > IDLE_KEEP_BYTES)
        tg_buf_free(&c->out);
    if (c->wbuf.cap > IDLE_KEEP_BYTES)
        tg_buf_free(&c->wbuf);
    update_reading(c);
}

static void on_write(uv_write_t *req, int status)
{
    tg_conn_t *c = req->data;
    c->writing = 0;
    c->wbuf.len = 0;
    if (status < 0) {
        tg_conn_close(c);
        return;
    }
    if (c->out.len > 0)
        conn_flush(c);
    else
        writes_done(c);
}

/* Writes what `out` holds: first directly (no request object, no extra
 * loop iteration in the common case), then a queued write for the rest.
 * Returns 1 when everything is written, 0 when a write is in flight or the
 * connection closed. */
static int flush_direct(tg_conn_t *c)
{
    if (c->closed || c->writing)
        return 0;
    if (c->out.len == 0)
        return 1;
    uv_buf_t b = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n < 0 && n != UV_EAGAIN) {
        tg_conn_close(c);
        return 0;
    }
    if (n > 0 && (size_t)n == c->out.len) {
        c->out.len = 0;
        return 1;
    }
    if (n > 0)
        tg_buf_consume(&c->out, (size_t)n);
    tg_buf_t t = c->wbuf;
    c->wbuf = c->out;
    c->out = t;
    c->out.len = 0;
    b = uv_buf_init((char *)c->wbuf.data, (unsigned)c->wbuf.len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        tg_conn_close(c);
        return 0;
    }
    c->writing = 1;
    return 0;
}

static void conn_flush(tg_conn_t *c)
{
    if (flush_direct(c))
        writes_done(c);
}

/* Queues an error answer that ends the connection. */
static void fail_request(tg_conn_t *c, tg_http_code_t code, const char *msg)
{
    if (c->error_sent)
        return; /* llhttp reports a callback's refusal as its own error too */
    c->error_sent = 1;
    c->close_after_write = 1;
    tg_http_respond(c, TG_EP_OTHER, code, "text/plain", NULL, TG_SLICE(msg, strlen(msg)));
}

/* Parses bytes; answers are appended to `out` as requests complete. When a
 * request's answer is deferred, the bytes after it are kept in pending_in. */
static void feed(tg_conn_t *c, const char *data, size_t len)
{
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    switch (e) {
    case HPE_OK: break;
    case HPE_PAUSED:
        /* on_message_complete paused: the answer is deferred, or the
         * connection ends after this request */
        if ((c->state == TG_CONN_WAITING || c->backpressure) && !c->close_after_write) {
            const char *pos = llhttp_get_error_pos(&c->parser);
            size_t used = pos != NULL ? (size_t)(pos - data) : len;
            if (tg_buf_append(&c->pending_in, data + used, len - used) != 0)
                c->close_after_write = 1;
        }
        break;
    case HPE_USER: /* a callback queued its own error answer */ break;
    case HPE_PAUSED_UPGRADE: /* answered; no protocol switch offered */
        c->close_after_write = 1;
        break;
    default:
        TG_INC(c->w->metrics.http_parse_errors);
        fail_request(c, TG_HTTP_400, "bad request\n");
        break;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tg_conn_t *c = s->data;
    if (nread == 0 || c->closed)
        return;
    if (nread < 0) {
        /* EOF after complete requests: still deliver their answers */
        if (nread == UV_EOF && c->state != TG_CONN_LINGER &&
            (c->writing || c->out.len || c->state == TG_CONN_WAITING)) {
            c->close_after_write = 1;
            uv_read_stop(s);
            return;
        }
        tg_conn_close(c);
        return;
    }
    if (c->state == TG_CONN_LINGER)
        return; /* discard */
    feed(c, buf->base, (size_t)nread);
    update_reading(c);
    conn_flush(c);
}

void tg_conn_async_begin(tg_conn_t *c)
{
    c->state = TG_CONN_WAITING;
    c->refs++;
}

int tg_conn_is_closing(const tg_conn_t *c)
{
    return c->closed;
}

void tg_conn_async_end(tg_conn_t *c)
{
    if (c->closed) {
        conn_unref(c);
        return;
    }
    c->refs--;
    c->state = TG_CONN_IDLE;
    conn_set_deadline(c, c->w->cfg->idle_timeout_ms);
    llhttp_resume(&c->parser);
    if (c->pending_in.len > 0 && !c->close_after_write) {
        tg_buf_t in = c->pending_in;
        tg_buf_init(&c->pending_in);
        feed(c, (const char *)in.data, in.len);
        tg_buf_free(&in);
    }
    update_reading(c);
    conn_flush(c);
}

/* ---- llhttp callbacks -------------------------------------------------- */

static tg_conn_t *conn_of(llhttp_t *p)
{
    return p->data;
}

/* Counts request bytes against max_request_bytes; over the limit the
 * request is answered 413 and the connection closes. */
static int count_bytes(tg_conn_t *c, size_t n)
{
    c->req_bytes += n;
    if (c->req_bytes <= c->w->cfg->max_request_bytes)
        return 0;
    TG_INC(c->w->metrics.too_large);
    fail_request(c, TG_HTTP_413, "request too large\n");
    c->state = TG_CONN_IDLE;
    return -1;
}

static int on_message_begin(llhttp_t *p)
{
    tg_conn_t *c = conn_of(p);
    c->state = TG_CONN_REQUEST;
    c->req_start_ns = tg_now_ns();
    c->req_bytes = LINE_OVERHEAD;
    c->url.len = 0;
    c->body.len = 0;
    c->hfield_len = 0;
    c->cur_hdr = TG_HDR_NONE;
    c->expect_continue = 0;
    c->if_none_match.len = 0;
    c->if_modified_since.len = 0;
    conn_set_deadline(c, c->w->cfg->header_timeout_ms);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    tg_conn_t *c = conn_of(p);
    if (count_bytes(c, n) != 0)
        return -1;
    return tg_buf_append(&c->url, at, n) == 0 ? 0 : -1;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    tg_conn_t *c = conn_of(p);
    if (count_bytes(c, n + LINE_OVERHEAD) != 0)
        return -1;
    /* keep only as much of the name as the longest one we act on; a longer
     * name (possibly split over several reads) matches nothing */
    if (c->hfield_len < sizeof(c->hfield)) {
        size_t room = sizeof(c->hfield) - c->hfield_len;
        size_t take = n < room ? n : room;
        memcpy(c->hfield + c->hfield_len, at, take);
    }
    c->hfield_len += n;
    if (c->hfield_len > sizeof(c->hfield))
        c->hfield_len = sizeof(c->hfield) + 1; /* too long: matches nothing */
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    tg_conn_t *c = conn_of(p);
    static const struct {
        const char *name;
        tg_hdr_t hdr;
    } known[] = {
        {"expect", TG_HDR_EXPECT},
        {"if-none-match", TG_HDR_IF_NONE_MATCH},
        {"if-modified-since", TG_HDR_IF_MODIFIED_SINCE},
    };
    c->cur_hdr = TG_HDR_NONE;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (c->hfield_len == strlen(known[i].name) &&
            strncasecmp(c->hfield, known[i].name, c->hfield_len) == 0)
            c->cur_hdr = known[i].hdr;
    }
    c->hfield_len = 0;
    /* a repeated If-None-Match is one list (RFC 9110 §5.3) */
    if (c->cur_hdr == TG_HDR_IF_NONE_MATCH && c->if_none_match.len > 0 &&
        tg_buf_append(&c->if_none_match, ", ", 2) != 0)
        return -1;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    tg_conn_t *c = conn_of(p);
    if (count_bytes(c, n) != 0)
        return -1;
    tg_buf_t *dst = NULL;
    switch (c->cur_hdr) {
    case TG_HDR_EXPECT: dst = &c->body; break; /* body is empty until headers end */
    case TG_HDR_IF_NONE_MATCH: dst = &c->if_none_match; break;
    case TG_HDR_IF_MODIFIED_SINCE: dst = &c->if_modified_since; break;
    case TG_HDR_NONE: return 0;
    }
    return tg_buf_append(dst, at, n) == 0 ? 0 : -1;
}

static int on_header_value_complete(llhttp_t *p)
{
    tg_conn_t *c = conn_of(p);
    if (c->cur_hdr == TG_HDR_EXPECT) {
        if (tg_slice_eq_str_nocase(TG_SLICE(c->body.data, c->body.len), "100-continue"))
            c->expect_continue = 1;
        c->body.len = 0;
    }
    c->cur_hdr = TG_HDR_NONE;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    tg_conn_t *c = conn_of(p);
    if ((p->flags & F_CONTENT_LENGTH) &&
        p->content_length > (uint64_t)c->w->cfg->max_request_bytes - c->req_bytes) {
        /* refuse before reading the body (RFC 9110 §15.5.14) */
        return count_bytes(c, (size_t)c->w->cfg->max_request_bytes + 1);
    }
    if (c->expect_continue && (p->flags & (F_CONTENT_LENGTH | F_CHUNKED))) {
        /* RFC 9110 §10.1.1: the client waits for this before the body */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (tg_buf_append(&c->out, cont, sizeof(cont) - 1) != 0)
            return -1;
        /* no flush here: a failed write would close the connection under
         * the parser; on_read flushes when llhttp returns */
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    tg_conn_t *c = conn_of(p);
    if (count_bytes(c, n) != 0)
        return -1;
    return tg_buf_append(&c->body, at, n) == 0 ? 0 : -1;
}

static int on_message_complete(llhttp_t *p)
{
    tg_conn_t *c = conn_of(p);
    if (!llhttp_should_keep_alive(p) || c->draining)
        c->close_after_write = 1;
    tg_http_handle(c);
    if (c->state == TG_CONN_WAITING)
        return HPE_PAUSED; /* tg_conn_async_end resumes */
    c->state = TG_CONN_IDLE;
    conn_set_deadline(c, c->w->cfg->idle_timeout_ms);
    if (c->url.cap > IDLE_KEEP_BYTES)
        tg_buf_free(&c->url);
    if (c->body.cap > IDLE_KEEP_BYTES)
        tg_buf_free(&c->body);
    /* without keep-alive, later pipelined bytes are not requests */
    if (c->close_after_write)
        return HPE_PAUSED;
    /* a read full of pipelined requests must not queue unbounded output:
     * pause until it is written (resume_parsing) */
    if (c->out.len + c->wbuf.len > OUT_HIGH_WATER) {
        c->backpressure = 1;
        return HPE_PAUSED;
    }
    return 0;
}

/* ---- accept and drain -------------------------------------------------- */

static void peer_text(tg_conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof(c->peer));
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer, sizeof(c->peer));
}

void tg_conn_accept(tg_worker_t *w, uv_stream_t *listener)
{
    tg_server_t *srv = w->srv;
    tg_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        tg_error("accept: out of memory");
        return;
    }
    c->w = w;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->refs = 2;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    atomic_fetch_add_explicit(&srv->conns_total, 1, memory_order_relaxed);

    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        tg_conn_close(c);
        return;
    }
    if (atomic_load_explicit(&srv->conns_total, memory_order_relaxed) > w->cfg->max_connections) {
        /* accept-and-close keeps the backlog moving; the client sees a
         * prompt reset instead of a hang */
        TG_INC(w->metrics.conns_rejected);
        tg_conn_close(c);
        return;
    }
    TG_INC(w->metrics.conns_accepted);
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    if (w->cfg->access_log != NULL)
        peer_text(c);
    conn_set_deadline(c, w->cfg->header_timeout_ms);
    if (w->stopping)
        c->draining = 1;
    read_start(c);
}

void tg_conn_drain(tg_conn_t *c)
{
    c->draining = 1;
    if (c->state == TG_CONN_IDLE && !c->writing && c->out.len == 0)
        tg_conn_close(c);
    else if (c->state == TG_CONN_IDLE || c->state == TG_CONN_WAITING)
        c->close_after_write = 1;
}
