/* The load mode: T worker threads, each with its own libuv loop and its
 * share of the connections. A connection keeps up to `pipeline` requests
 * outstanding (closed loop), or sends the requests scheduled for it at
 * t0 + i/R as they fall due (open loop: latency from the intended time, so
 * a busy connection's queue counts, wrk2-style). In steady state nothing is
 * allocated: every buffer belongs to its connection or worker from the
 * start, requests are written with one uv_try_write (uv_write for what
 * remains), responses are framed by llhttp. */
#include "bench/client/bench.h"
#include "bench/client/check.h"

#include <llhttp.h>
#include <uv.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define READ_BUF_BYTES (64 * 1024)
#define TICK_MS 10                      /* phases, timeouts, reconnects */
#define CONNECT_RETRY_NS (50 * 1000000) /* after a failed connect */
#define OPEN_MIN_GAP_NS 50000           /* open loop: at most 20k timer wake-ups/s */
#define PREBUILT_MAX 4096               /* sets up to this size get pre-built requests */

typedef struct {
    uint64_t intended_ns; /* latency is measured from here */
    uint64_t sent_ns;     /* the timeout runs from here */
    uint64_t idx;         /* CertID number in the set */
    uint8_t post, has_nonce;
    uint8_t late; /* sent after the end (--close keeps its promise): not counted */
    uint8_t nonce[TG_BENCH_NONCE_LEN];
} pending_t;

/* Request bytes for small sets without nonces: GET and POST per CertID. */
typedef struct {
    char *arena;
    size_t *off; /* 2n + 1 offsets: item 2*idx + post spans off[i]..off[i+1] */
    uint64_t n;
} prebuilt_t;

typedef enum { C_IDLE, C_CONNECTING, C_OPEN, C_CLOSING } conn_state_t;

struct worker;

typedef struct {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    llhttp_t parser;
    struct worker *w;
    conn_state_t state;
    int draining;    /* no new requests: the server announced close, or --close */
    int fatal;       /* error kind found inside a parser callback, or -1 */
    uint64_t gid;    /* connection number over all workers */
    pending_t *ring; /* outstanding requests, oldest at head */
    uint32_t head, count;
    char *out[2]; /* out[cur] collects requests; out[cur ^ 1] may be in uv_write */
    size_t out_len[2];
    int cur, writing;
    uint8_t *body; /* the response body, grown up to TG_BENCH_MAX_BODY */
    size_t body_len, body_cap;
    int http_status;
    uint64_t next_k;   /* open loop: requests of this connection issued */
    uint64_t since_ns; /* when the current connect started */
    uint64_t retry_at; /* IDLE: reconnect not before */
    int dirty;         /* open loop: queued for a fill */
    int sent_any;      /* a request went out on this connection */
} conn_t;

typedef struct worker {
    uv_loop_t loop;
    uv_timer_t tick;
    uv_poll_t tpoll;
    int tfd;
    uv_thread_t thread;
    const tg_bench_opts_t *o;
    const tg_bench_set_t *set;
    const prebuilt_t *pre;
    tg_bench_pick_t pick;
    tg_bench_rng_t rng;
    conn_t *conns;
    uint32_t n_conns, cap; /* cap: outstanding requests per connection */
    uint64_t first_gid, total_conns;
    uint64_t t0, t_measure, t_end, now;
    uint64_t limit;    /* completed responses to stop after (0 = none) */
    uint64_t released; /* open loop: global request numbers due so far */
    uint64_t armed_at; /* open loop: when the schedule timer fires (0 = disarmed) */
    uint64_t check_ctr;
    int stopping;         /* the run is over: draining */
    uint64_t drain_until; /* then every connection is closed */
    uint32_t n_active;    /* connections not C_IDLE */
    int handles_closed;
    char *rbuf;
    size_t req_max;
    conn_t **dirty;
    uint32_t n_dirty;
    tg_bench_stats_t st;
} worker_t;

static int on_message_begin(llhttp_t *p);
static int on_headers_complete(llhttp_t *p);
static int on_body(llhttp_t *p, const char *at, size_t n);
static int on_message_complete(llhttp_t *p);

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void conn_connect(conn_t *c);
static void conn_flush(conn_t *c);
static void worker_stop(worker_t *w);

/* ---- open-loop schedule -------------------------------------------------
 * Global request i is due at t0 + i/R and belongs to connection i mod N, so
 * connection j sends requests j, j + N, j + 2N, ... */

/* Returns how many global requests are due at now. */
static uint64_t released_at(const worker_t *w, uint64_t now)
{
    if (now < w->t0)
        return 0;
    return (uint64_t)floor((double)(now - w->t0) / 1e9 * w->o->rate) + 1;
}

static uint64_t intended_of(const worker_t *w, uint64_t global)
{
    return w->t0 + (uint64_t)((double)global * 1e9 / w->o->rate);
}

/* Arms the schedule timer for at (not sooner than OPEN_MIN_GAP_NS from
 * now) unless it already fires no later. */
static void schedule_arm(worker_t *w, uint64_t at)
{
    if (at < w->now + OPEN_MIN_GAP_NS)
        at = w->now + OPEN_MIN_GAP_NS;
    if (w->armed_at != 0 && w->armed_at <= at)
        return;
    w->armed_at = at;
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)(at / 1000000000ULL),
                                          .tv_nsec = (long)(at % 1000000000ULL)}};
    (void)timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- requests ---------------------------------------------------------- */

/* Appends the request bytes for p to the collecting buffer. */
static void write_request(conn_t *c, const pending_t *p)
{
    worker_t *w = c->w;
    char *dst = c->out[c->cur] + c->out_len[c->cur];
    if (!p->has_nonce && w->pre != NULL) {
        uint64_t i = 2 * p->idx + p->post;
        size_t n = w->pre->off[i + 1] - w->pre->off[i];
        memcpy(dst, w->pre->arena + w->pre->off[i], n);
        c->out_len[c->cur] += n;
        return;
    }
    tg_certid_t id;
    uint8_t der[TG_BENCH_DER_MAX];
    (void)tg_bench_set_get(w->set, p->idx, &id);
    size_t dn = tg_bench_ocsp_request(&id, p->has_nonce ? p->nonce : NULL, der);
    c->out_len[c->cur] += tg_bench_http_request(&w->o->url, p->post, der, dn, dst);
}

/* Chooses, records and appends one new request. */
static void issue(conn_t *c, uint64_t intended)
{
    worker_t *w = c->w;
    const tg_bench_opts_t *o = w->o;
    pending_t *p = &c->ring[(c->head + c->count) % w->cap];
    c->count++;
    p->idx = tg_bench_pick(&w->pick, &w->rng);
    p->post =
        o->post_frac >= 1.0 || (o->post_frac > 0 && tg_bench_rng_unit(&w->rng) < o->post_frac);
    p->has_nonce =
        o->nonce_frac >= 1.0 || (o->nonce_frac > 0 && tg_bench_rng_unit(&w->rng) < o->nonce_frac);
    if (p->has_nonce) {
        for (size_t i = 0; i < TG_BENCH_NONCE_LEN; i += 8) {
            uint64_t r = tg_bench_rng_next(&w->rng);
            memcpy(p->nonce + i, &r, 8);
        }
    }
    p->intended_ns = intended;
    p->sent_ns = w->now;
    p->late = w->stopping || w->now >= w->t_end;
    write_request(c, p);
    c->sent_any = 1;
    if (o->close)
        c->draining = 1; /* one request per connection */
}

/* Issues what the connection may send now, then writes it. */
static void conn_fill(conn_t *c)
{
    worker_t *w = c->w;
    if (c->state != C_OPEN || c->draining || w->stopping)
        return;
    w->now = uv_hrtime();
    if (w->now >= w->t_end)
        return;
    if (w->o->rate > 0) {
        uint64_t rel = released_at(w, w->now);
        uint64_t due = rel > c->gid ? (rel - 1 - c->gid) / w->total_conns + 1 : 0;
        while (c->count < w->cap && c->next_k < due && !c->draining) {
            issue(c, intended_of(w, c->gid + c->next_k * w->total_conns));
            c->next_k++;
        }
        /* caught up with room to spare: wake up for the next one. A full
         * connection needs no timer: its answers make room and call here. */
        if (c->count < w->cap && !c->draining)
            schedule_arm(w, intended_of(w, c->gid + c->next_k * w->total_conns));
    } else {
        while (c->count < w->cap && !c->draining)
            issue(c, w->now);
    }
    conn_flush(c);
}

/* ---- connection life --------------------------------------------------- */

static void worker_close_handles(worker_t *w);
static void conn_drop(conn_t *c, int kind);

static void on_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    worker_t *w = c->w;
    c->state = C_IDLE;
    w->n_active--;
    c->out_len[0] = c->out_len[1] = 0;
    c->cur = c->writing = 0;
    c->body_len = 0;
    c->draining = 0;
    if (w->stopping) {
        conn_drop(c, TG_BERR_CLOSED); /* kept for a new connection that will not come */
        if (w->n_active == 0)
            worker_close_handles(w);
    } else if (uv_hrtime() >= c->retry_at) {
        conn_connect(c);
    }
}

/* Closes the connection; it reconnects delay_ns later (from the tick when
 * not at once). Outstanding requests stay in the ring: the caller decides
 * whether they are lost (conn_drop) or written again on the new one. */
static void conn_close(conn_t *c, uint64_t delay_ns)
{
    if (c->state == C_IDLE || c->state == C_CLOSING)
        return;
    c->state = C_CLOSING;
    c->retry_at = uv_hrtime() + delay_ns;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* Closes an idle connection at the end of the run. `openssl ocsp` 3.0
 * spins when a connection closes without a request, so under --close one
 * that never sent gets a (late, uncounted) request and closes after it. */
static void conn_close_idle(conn_t *c)
{
    worker_t *w = c->w;
    if (w->o->close && !c->sent_any) {
        issue(c, uv_hrtime());
        conn_flush(c);
        return;
    }
    conn_close(c, 0);
}

/* Counts every outstanding request (but those sent after the end) as an
 * error of kind and forgets them. */
static void conn_drop(conn_t *c, int kind)
{
    worker_t *w = c->w;
    for (uint32_t i = 0; i < c->count; i++)
        if (!c->ring[(c->head + i) % w->cap].late)
            w->st.errors[kind]++;
    c->head = c->count = 0;
}

/* The server closed (EOF, reset, a failed write). Requests sent after a
 * response that announced the close are written again on the next
 * connection; otherwise they are lost (`closed`). */
static void conn_server_closed(conn_t *c)
{
    worker_t *w = c->w;
    if (c->count > 0 && !(c->draining && !w->o->close))
        conn_drop(c, TG_BERR_CLOSED);
    if (!w->stopping)
        w->st.reconnects++;
    conn_close(c, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *c = h->data;
    *buf = uv_buf_init(c->w->rbuf, READ_BUF_BYTES);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    worker_t *w = c->w;
    if (nread == 0 || c->state != C_OPEN)
        return;
    w->now = uv_hrtime();
    if (nread < 0) {
        if (nread == UV_EOF && llhttp_finish(&c->parser) != HPE_OK && c->fatal >= 0)
            conn_drop(c, c->fatal);
        conn_server_closed(c);
        return;
    }
    llhttp_errno_t err = llhttp_execute(&c->parser, buf->base, (size_t)nread);
    if (err != HPE_OK) {
        /* the response framing is lost: every outstanding request with it */
        conn_drop(c, c->fatal >= 0 ? c->fatal : TG_BERR_PARSE);
        if (!w->stopping)
            w->st.reconnects++;
        conn_close(c, 0);
    } else if (w->stopping) {
        if (c->count == 0)
            conn_close_idle(c);
    } else {
        conn_fill(c);
    }
    if (w->limit != 0 && w->st.completed >= w->limit)
        worker_stop(w);
}

static void on_write(uv_write_t *req, int status)
{
    conn_t *c = req->data;
    c->writing = 0;
    c->out_len[c->cur ^ 1] = 0;
    if (status == UV_ECANCELED || c->state != C_OPEN)
        return;
    if (status < 0) {
        conn_server_closed(c);
        return;
    }
    conn_flush(c);
}

/* Writes the collected requests: uv_try_write, then uv_write for the rest
 * (new requests collect in the other buffer meanwhile). */
static void conn_flush(conn_t *c)
{
    if (c->writing || c->out_len[c->cur] == 0 || c->state != C_OPEN)
        return;
    uv_buf_t b = uv_buf_init(c->out[c->cur], (unsigned)c->out_len[c->cur]);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r == (int)b.len) {
        c->out_len[c->cur] = 0;
        return;
    }
    if (r < 0 && r != UV_EAGAIN) {
        conn_server_closed(c);
        return;
    }
    if (r > 0) {
        b.base += r;
        b.len -= (unsigned)r;
    }
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        conn_server_closed(c);
        return;
    }
    c->writing = 1;
    c->cur ^= 1;
}

static void on_connect(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    worker_t *w = c->w;
    if (status == UV_ECANCELED || c->state != C_CONNECTING)
        return;
    if (status < 0) {
        w->st.errors[TG_BERR_CONNECT]++;
        conn_close(c, CONNECT_RETRY_NS);
        return;
    }
    c->state = C_OPEN;
    c->fatal = -1;
    c->sent_any = 0;
    if (w->stopping && !w->o->close) {
        conn_close(c, 0);
        return;
    }
    llhttp_init(&c->parser, HTTP_RESPONSE, &parser_settings);
    c->parser.data = c;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        w->st.errors[TG_BERR_CONNECT]++;
        conn_close(c, CONNECT_RETRY_NS);
        return;
    }
    /* requests a server-announced close left unanswered go out again */
    w->now = uv_hrtime();
    for (uint32_t i = 0; i < c->count; i++) {
        pending_t *p = &c->ring[(c->head + i) % w->cap];
        p->sent_ns = w->now;
        if (w->o->rate <= 0)
            p->intended_ns = w->now;
        write_request(c, p);
        c->sent_any = 1;
    }
    if (w->o->close && c->count > 0)
        c->draining = 1;
    conn_fill(c);
    if (w->o->close && c->count == 0 && (w->stopping || w->now >= w->t_end))
        issue(c, w->now); /* the run ended while connecting: see conn_close_idle */
    conn_flush(c);
}

static void conn_connect(conn_t *c)
{
    worker_t *w = c->w;
    c->since_ns = uv_hrtime();
    if (uv_tcp_init(&w->loop, &c->tcp) != 0) {
        w->st.errors[TG_BERR_CONNECT]++;
        c->retry_at = c->since_ns + CONNECT_RETRY_NS;
        return;
    }
    c->tcp.data = c;
    c->creq.data = c;
    c->state = C_CONNECTING;
    w->n_active++;
    (void)uv_tcp_nodelay(&c->tcp, 1);
    if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&w->o->url.addr, on_connect) !=
        0) {
        w->st.errors[TG_BERR_CONNECT]++;
        conn_close(c, CONNECT_RETRY_NS);
    }
}

/* ---- responses --------------------------------------------------------- */

static int on_message_begin(llhttp_t *p)
{
    conn_t *c = p->data;
    c->body_len = 0;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    conn_t *c = p->data;
    c->http_status = llhttp_get_status_code(p);
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > TG_BENCH_MAX_BODY) {
        c->fatal = TG_BERR_PARSE;
        return -1;
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    if (n > TG_BENCH_MAX_BODY - c->body_len) {
        c->fatal = TG_BERR_PARSE;
        return -1;
    }
    if (c->body_len + n > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        while (cap < c->body_len + n)
            cap *= 2;
        uint8_t *nb = realloc(c->body, cap);
        if (nb == NULL) {
            c->fatal = TG_BERR_PARSE; /* counted; the connection starts over */
            return -1;
        }
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, at, n);
    c->body_len += n;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    conn_t *c = p->data;
    worker_t *w = c->w;
    const tg_bench_opts_t *o = w->o;
    if (c->count == 0) {
        c->fatal = TG_BERR_PARSE; /* a response nobody asked for */
        return -1;
    }
    pending_t *q = &c->ring[c->head];
    c->head = (c->head + 1) % w->cap;
    c->count--;
    if (!llhttp_should_keep_alive(p))
        c->draining = 1;
    if (q->late)
        return 0;
    int full = q->has_nonce || o->check_every <= 1 || ++w->check_ctr % o->check_every == 0;
    tg_certid_t id;
    int expect = tg_bench_set_get(w->set, q->idx, &id);
    tg_bench_verdict_t v;
    int kind = tg_bench_check(c->http_status, c->body, c->body_len, &id, expect,
                              q->has_nonce ? q->nonce : NULL, full, &v);
    tg_bench_stats_t *st = &w->st;
    if (kind != TG_BERR_NONE)
        st->errors[kind]++;
    /* every request sent before the end is checked; the window counts */
    if (w->now >= w->t_measure && w->now < w->t_end && !w->stopping &&
        (w->limit == 0 || st->completed < w->limit)) {
        st->completed++;
        tg_hist_record(&st->hist, w->now > q->intended_ns ? w->now - q->intended_ns : 0);
        if (v.ocsp_status >= 0)
            st->ocsp_status[v.ocsp_status]++;
        if (v.walked)
            st->checked++;
        if (v.cert_status >= 0)
            st->cert_status[v.cert_status]++;
        if (w->limit != 0 && st->completed == w->limit)
            w->st.end_ns = w->now;
    }
    return 0;
}

/* ---- worker ------------------------------------------------------------ */

static void on_tick(uv_timer_t *t)
{
    worker_t *w = t->data;
    uint64_t now = w->now = uv_hrtime();
    if (!w->stopping && now >= w->t_end)
        worker_stop(w);
    uint64_t timeout = w->o->timeout_ms * 1000000ULL;
    for (uint32_t i = 0; i < w->n_conns; i++) {
        conn_t *c = &w->conns[i];
        if (w->stopping && c->state != C_IDLE && now >= w->drain_until) {
            conn_drop(c, TG_BERR_TIMEOUT); /* sent before the end, never answered */
            conn_close(c, 0);
        } else if (c->state == C_IDLE && !w->stopping && now >= c->retry_at) {
            conn_connect(c);
        } else if (c->state == C_CONNECTING && now - c->since_ns > timeout) {
            w->st.errors[TG_BERR_CONNECT] += !w->stopping;
            conn_close(c, 0);
        } else if (c->state == C_OPEN && c->count > 0 && now - c->ring[c->head].sent_ns > timeout) {
            /* the oldest is late: it and everything behind it are lost */
            conn_drop(c, TG_BERR_TIMEOUT);
            w->st.reconnects += !w->stopping;
            conn_close(c, 0);
        } else if (c->state == C_OPEN && c->count == 0 && c->draining && !w->stopping) {
            w->st.reconnects++; /* waited for a close that did not come */
            conn_close(c, 0);
        } else if (c->state == C_OPEN && c->count == 0 && w->stopping) {
            conn_close_idle(c);
        }
    }
}

static void mark_dirty(worker_t *w, conn_t *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        w->dirty[w->n_dirty++] = c;
    }
}

/* Open loop: hands the requests now due to their connections and arms the
 * timer for the next one of this worker. */
static void on_schedule(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    worker_t *w = h->data;
    uint64_t expirations;
    if (read(w->tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        return;
    w->now = uv_hrtime();
    w->armed_at = 0;
    uint64_t rel = released_at(w, w->now), n = w->total_conns;
    int all_due = 0, all_full = 0;
    if (rel > w->released) {
        if (rel - w->released >= n) {
            all_due = 1;
            for (uint32_t i = 0; i < w->n_conns; i++)
                mark_dirty(w, &w->conns[i]);
        } else {
            for (uint64_t g = w->released; g < rel; g++) {
                uint64_t j = g % n;
                if (j >= w->first_gid && j < w->first_gid + w->n_conns)
                    mark_dirty(w, &w->conns[j - w->first_gid]);
            }
        }
        w->released = rel;
    }
    all_full = all_due;
    for (uint32_t i = 0; i < w->n_dirty; i++) {
        conn_t *c = w->dirty[i];
        c->dirty = 0;
        conn_fill(c);
        all_full &= c->state == C_OPEN && c->count == w->cap;
    }
    w->n_dirty = 0;
    /* every connection full (all were due, none has room): answers drive
     * the sending until one catches up and re-arms (conn_fill) */
    if (all_full)
        return;
    /* the next request number >= rel that one of our connections sends */
    uint64_t r = rel % n, base = rel - r, s = w->first_gid, e = s + w->n_conns, next;
    if (r < s)
        next = base + s;
    else if (r < e)
        next = rel;
    else
        next = base + n + s;
    schedule_arm(w, intended_of(w, next));
}

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

/* Closes the worker's own handles once every connection is closed; the
 * loop then ends. */
static void worker_close_handles(worker_t *w)
{
    if (w->handles_closed)
        return;
    w->handles_closed = 1;
    uv_close((uv_handle_t *)&w->tick, on_handle_closed);
    if (w->tfd >= 0)
        uv_close((uv_handle_t *)&w->tpoll, on_handle_closed);
}

/* Ends the run: nothing new is sent, nothing more enters the window.
 * Idle connections close at once; the others when their answers are in
 * (still checked: errors count), or at drain_until, one timeout later,
 * with what is still outstanding counted as `timeout`. */
static void worker_stop(worker_t *w)
{
    if (w->stopping)
        return;
    w->stopping = 1;
    if (w->st.end_ns == 0)
        w->st.end_ns = w->now < w->t_end ? w->now : w->t_end;
    w->drain_until = w->now + w->o->timeout_ms * 1000000ULL;
    if (w->tfd >= 0)
        uv_poll_stop(&w->tpoll);
    for (uint32_t i = 0; i < w->n_conns; i++) {
        conn_t *c = &w->conns[i];
        if (c->state == C_OPEN && c->count == 0)
            conn_close_idle(c);
        else if (c->state == C_CONNECTING && !w->o->close)
            conn_close(c, 0);
    }
    if (w->n_active == 0)
        worker_close_handles(w);
}

static void worker_main(void *arg)
{
    worker_t *w = arg;
    uv_timer_start(&w->tick, on_tick, TICK_MS, TICK_MS);
    if (w->tfd >= 0) {
        uv_poll_start(&w->tpoll, UV_READABLE, on_schedule);
        struct itimerspec its = {.it_value = {.tv_sec = (time_t)(w->t0 / 1000000000ULL),
                                              .tv_nsec = (long)(w->t0 % 1000000000ULL)}};
        (void)timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
        w->armed_at = w->t0;
    }
    w->now = uv_hrtime();
    if (w->o->max_requests != 0 && w->limit == 0) {
        w->st.end_ns = w->t_measure; /* nothing to do: fewer requests than threads */
        worker_stop(w);
    }
    for (uint32_t i = 0; i < w->n_conns && !w->stopping; i++)
        conn_connect(&w->conns[i]);
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* Sets up worker w's loop, handles and buffers. Returns 0 or TG_ENOMEM /
 * TG_EUV (printed). */
static int worker_init(worker_t *w)
{
    w->tfd = -1;
    if (uv_loop_init(&w->loop) != 0) {
        fprintf(stderr, "trustgate-bench: uv_loop_init failed\n");
        return TG_EUV;
    }
    uv_timer_init(&w->loop, &w->tick);
    w->tick.data = w;
    w->rbuf = malloc(READ_BUF_BYTES);
    w->conns = calloc(w->n_conns, sizeof(*w->conns));
    w->dirty = calloc(w->n_conns, sizeof(*w->dirty));
    if (w->rbuf == NULL || w->conns == NULL || w->dirty == NULL)
        goto nomem;
    for (uint32_t i = 0; i < w->n_conns; i++) {
        conn_t *c = &w->conns[i];
        c->w = w;
        c->gid = w->first_gid + i;
        c->fatal = -1;
        c->ring = calloc(w->cap, sizeof(*c->ring));
        c->out[0] = malloc(w->cap * w->req_max);
        c->out[1] = malloc(w->cap * w->req_max);
        if (c->ring == NULL || c->out[0] == NULL || c->out[1] == NULL)
            goto nomem;
    }
    if (w->o->rate > 0) {
        w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (w->tfd < 0 || uv_poll_init(&w->loop, &w->tpoll, w->tfd) != 0) {
            fprintf(stderr, "trustgate-bench: timerfd: %s\n", strerror(errno));
            if (w->tfd >= 0)
                close(w->tfd);
            w->tfd = -1;
            return TG_EUV;
        }
        w->tpoll.data = w;
    }
    return 0;
nomem:
    fprintf(stderr, "trustgate-bench: out of memory\n");
    return TG_ENOMEM;
}

/* Releases what worker_init acquired; the loop has no open handle left. */
static void worker_free(worker_t *w)
{
    if (w->conns != NULL) {
        for (uint32_t i = 0; i < w->n_conns; i++) {
            free(w->conns[i].ring);
            free(w->conns[i].out[0]);
            free(w->conns[i].out[1]);
            free(w->conns[i].body);
        }
    }
    if (w->tfd >= 0)
        close(w->tfd);
    free(w->conns);
    free(w->dirty);
    free(w->rbuf);
}

static void prebuilt_free(prebuilt_t *pre)
{
    if (pre == NULL)
        return;
    free(pre->arena);
    free(pre->off);
    free(pre);
}

/* Builds GET and POST bytes (no nonce) for every CertID of a small set.
 * Returns NULL when the set is too big or memory is short (requests are
 * then built as they go). */
static prebuilt_t *prebuild(const tg_bench_opts_t *o, const tg_bench_set_t *set, size_t req_max)
{
    uint64_t n = tg_bench_set_size(set);
    if (n > PREBUILT_MAX || o->nonce_frac >= 1.0)
        return NULL;
    prebuilt_t *pre = calloc(1, sizeof(*pre));
    if (pre == NULL)
        return NULL;
    pre->n = n;
    pre->arena = malloc((size_t)(2 * n) * req_max);
    pre->off = malloc((size_t)(2 * n + 1) * sizeof(*pre->off));
    if (pre->arena == NULL || pre->off == NULL) {
        prebuilt_free(pre);
        return NULL;
    }
    size_t at = 0;
    for (uint64_t i = 0; i < n; i++) {
        tg_certid_t id;
        uint8_t der[TG_BENCH_DER_MAX];
        (void)tg_bench_set_get(set, i, &id);
        size_t dn = tg_bench_ocsp_request(&id, NULL, der);
        for (int post = 0; post < 2; post++) {
            pre->off[2 * i + (uint64_t)post] = at;
            at += tg_bench_http_request(&o->url, post, der, dn, pre->arena + at);
        }
    }
    pre->off[2 * n] = at;
    return pre;
}

int tg_bench_load_run(const tg_bench_opts_t *o, const tg_bench_set_t *set, tg_bench_stats_t *out,
                      double *out_window_s)
{
    uint32_t T = o->threads;
    size_t req_max = tg_bench_http_request_max(&o->url);
    worker_t *ws = calloc(T, sizeof(*ws));
    if (ws == NULL) {
        fprintf(stderr, "trustgate-bench: out of memory\n");
        return TG_ENOMEM;
    }
    prebuilt_t *pre = prebuild(o, set, req_max);
    tg_bench_pick_t pick;
    tg_bench_pick_init(&pick, tg_bench_set_size(set), o->zipf);
    int rc = 0;
    uint32_t inited = 0, started = 0;
    uint64_t gid = 0;
    for (uint32_t t = 0; t < T; t++) {
        worker_t *w = &ws[t];
        w->o = o;
        w->set = set;
        w->pre = pre;
        w->pick = pick;
        tg_bench_rng_seed(&w->rng, o->seed, t);
        w->n_conns = o->connections / T + (t < o->connections % T);
        w->first_gid = gid;
        gid += w->n_conns;
        w->total_conns = o->connections;
        w->cap = o->close ? 1 : o->pipeline;
        w->req_max = req_max;
        if (o->max_requests != 0)
            w->limit = o->max_requests / T + (t < o->max_requests % T);
        tg_hist_init(&w->st.hist);
        if ((rc = worker_init(w)) != 0)
            goto out;
        inited++;
    }
    /* one clock for every worker: warm-up, window and schedule line up */
    uint64_t t0 = uv_hrtime() + 1000000;
    uint64_t warm = (uint64_t)(o->warmup_s * 1e9), dur = (uint64_t)(o->duration_s * 1e9);
    for (uint32_t t = 0; t < T; t++) {
        ws[t].t0 = t0;
        ws[t].t_measure = t0 + warm;
        ws[t].t_end = t0 + warm + dur;
    }
    for (; started < T; started++) {
        if (uv_thread_create(&ws[started].thread, worker_main, &ws[started]) != 0) {
            fprintf(stderr, "trustgate-bench: cannot start thread %u\n", started);
            rc = TG_EUV;
            break;
        }
    }
out:
    for (uint32_t t = 0; t < started; t++)
        uv_thread_join(&ws[t].thread);
    memset(out, 0, sizeof(*out));
    tg_hist_init(&out->hist);
    uint64_t end = 0;
    for (uint32_t t = 0; t < T; t++) {
        worker_t *w = &ws[t];
        if (t < inited) {
            /* a loop that never ran still owns its handles: close them */
            if (t >= started) {
                uv_close((uv_handle_t *)&w->tick, NULL);
                if (w->tfd >= 0)
                    uv_close((uv_handle_t *)&w->tpoll, NULL);
                uv_run(&w->loop, UV_RUN_DEFAULT);
            }
            (void)uv_loop_close(&w->loop);
        }
        worker_free(w);
        const tg_bench_stats_t *s = &w->st;
        out->completed += s->completed;
        for (int k = 0; k < TG_BERR_COUNT; k++)
            out->errors[k] += s->errors[k];
        for (int k = 0; k < 7; k++)
            out->ocsp_status[k] += s->ocsp_status[k];
        for (int k = 0; k < 3; k++)
            out->cert_status[k] += s->cert_status[k];
        out->checked += s->checked;
        out->reconnects += s->reconnects;
        tg_hist_merge(&out->hist, &s->hist);
        if (s->end_ns > end)
            end = s->end_ns;
    }
    uint64_t t_measure = ws[0].t_measure;
    *out_window_s = end > t_measure ? (double)(end - t_measure) / 1e9 : 0.0;
    if (o->max_requests == 0)
        *out_window_s = o->duration_s;
    out->end_ns = end;
    free(ws);
    prebuilt_free(pre);
    return rc;
}
