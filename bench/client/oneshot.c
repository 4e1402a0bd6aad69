/* The `flip` and `first` modes: one connection, one request at a time,
 * every response fully checked, timed from a moment the mode chooses.
 *
 * flip:  wait until the first CertID reads --from; T0; rename and/or ask
 *        the admin socket to reload; the first response reading --to ends
 *        it (latency = its arrival - T0).
 * first: from start, connect (retrying every 1 ms) and ask until the
 *        answer is the one the set file expects (cold-start time). */
#include "bench/client/bench.h"
#include "bench/client/check.h"

#include <llhttp.h>
#include <uv.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MS 1
#define ADMIN_MAX 256

/* ---- one-request client ------------------------------------------------ */

typedef enum { S_IDLE, S_CONNECTING, S_OPEN, S_CLOSING } sc_state_t;

typedef struct sc sc_t;

struct sc {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    llhttp_t parser;
    uv_loop_t *loop;
    sc_state_t state;
    int waiting; /* a request is out */
    int keep_alive;
    int fatal; /* error kind from a parser callback, or -1 */
    char req[4096];
    size_t req_len;
    uint8_t *body;
    size_t body_len, body_cap;
    int http_status;
    void (*on_ready)(sc_t *sc, int status);     /* connected (0) or failed (uv error) */
    void (*on_response)(sc_t *sc);              /* a whole response: http_status, body */
    void (*on_lost)(sc_t *sc, const char *why); /* closed under a request, or garbage */
    void *data;
};

static int sc_begin(llhttp_t *p)
{
    sc_t *sc = p->data;
    sc->body_len = 0;
    return 0;
}

static int sc_headers(llhttp_t *p)
{
    sc_t *sc = p->data;
    sc->http_status = llhttp_get_status_code(p);
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > TG_BENCH_MAX_BODY) {
        sc->fatal = TG_BERR_PARSE;
        return -1;
    }
    return 0;
}

static int sc_body(llhttp_t *p, const char *at, size_t n)
{
    sc_t *sc = p->data;
    if (n > TG_BENCH_MAX_BODY - sc->body_len) {
        sc->fatal = TG_BERR_PARSE;
        return -1;
    }
    if (sc->body_len + n > sc->body_cap) {
        size_t cap = sc->body_cap ? sc->body_cap * 2 : 4096;
        while (cap < sc->body_len + n)
            cap *= 2;
        uint8_t *nb = realloc(sc->body, cap);
        if (nb == NULL) {
            sc->fatal = TG_BERR_PARSE;
            return -1;
        }
        sc->body = nb;
        sc->body_cap = cap;
    }
    memcpy(sc->body + sc->body_len, at, n);
    sc->body_len += n;
    return 0;
}

static int sc_complete(llhttp_t *p)
{
    sc_t *sc = p->data;
    if (!sc->waiting) {
        sc->fatal = TG_BERR_PARSE;
        return -1;
    }
    sc->waiting = 0;
    sc->keep_alive = llhttp_should_keep_alive(p);
    return HPE_PAUSED; /* hand it over outside the parser */
}

static const llhttp_settings_t sc_settings = {
    .on_message_begin = sc_begin,
    .on_headers_complete = sc_headers,
    .on_body = sc_body,
    .on_message_complete = sc_complete,
};

static void sc_on_closed(uv_handle_t *h)
{
    sc_t *sc = h->data;
    sc->state = S_IDLE;
    sc->waiting = 0;
}

static void sc_close(sc_t *sc)
{
    if (sc->state == S_IDLE || sc->state == S_CLOSING)
        return;
    sc->state = S_CLOSING;
    uv_close((uv_handle_t *)&sc->tcp, sc_on_closed);
}

static void sc_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char rbuf[64 * 1024]; /* one loop, one thread: read and parsed at once */
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void sc_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sc_t *sc = s->data;
    if (nread == 0 || sc->state != S_OPEN)
        return;
    if (nread < 0) {
        int was_waiting = sc->waiting;
        if (nread == UV_EOF && was_waiting && llhttp_finish(&sc->parser) == HPE_PAUSED) {
            sc_close(sc);
            sc->on_response(sc);
            return;
        }
        sc_close(sc);
        if (was_waiting)
            sc->on_lost(sc, nread == UV_EOF ? "closed by the server" : uv_strerror((int)nread));
        return;
    }
    const char *p = buf->base;
    size_t n = (size_t)nread;
    llhttp_errno_t err = llhttp_execute(&sc->parser, p, n);
    if (err == HPE_PAUSED) {
        /* one request at a time: anything after the response is garbage */
        size_t used = (size_t)(llhttp_get_error_pos(&sc->parser) - p);
        llhttp_resume(&sc->parser);
        if (used < n) {
            sc_close(sc);
            sc->on_lost(sc, "data after the response");
            return;
        }
        if (!sc->keep_alive)
            sc_close(sc);
        sc->on_response(sc);
        return;
    }
    if (err != HPE_OK) {
        sc_close(sc);
        sc->on_lost(sc, sc->fatal >= 0 ? "response too big" : llhttp_errno_name(err));
    }
}

static void sc_connected(uv_connect_t *req, int status)
{
    sc_t *sc = req->data;
    if (status == UV_ECANCELED || sc->state != S_CONNECTING)
        return;
    if (status == 0) {
        sc->state = S_OPEN;
        sc->fatal = -1;
        llhttp_init(&sc->parser, HTTP_RESPONSE, &sc_settings);
        sc->parser.data = sc;
        status = uv_read_start((uv_stream_t *)&sc->tcp, sc_alloc, sc_read);
    }
    if (status != 0)
        sc_close(sc);
    sc->on_ready(sc, status);
}

/* Starts a connection (state must be S_IDLE); on_ready tells how it went. */
static void sc_connect(sc_t *sc, const tg_bench_url_t *url)
{
    int rc = uv_tcp_init(sc->loop, &sc->tcp);
    if (rc != 0) {
        sc->on_ready(sc, rc);
        return;
    }
    sc->tcp.data = sc;
    sc->creq.data = sc;
    sc->state = S_CONNECTING;
    (void)uv_tcp_nodelay(&sc->tcp, 1);
    rc = uv_tcp_connect(&sc->creq, &sc->tcp, (const struct sockaddr *)&url->addr, sc_connected);
    if (rc != 0) {
        sc_close(sc);
        sc->on_ready(sc, rc);
    }
}

static void sc_written(uv_write_t *req, int status)
{
    sc_t *sc = req->data;
    if (status < 0 && status != UV_ECANCELED && sc->state == S_OPEN) {
        sc_close(sc);
        sc->on_lost(sc, uv_strerror(status));
    }
}

/* Writes the request (connection open, nothing outstanding). */
static void sc_send(sc_t *sc)
{
    uv_buf_t b = uv_buf_init(sc->req, (unsigned)sc->req_len);
    sc->waiting = 1;
    sc->wreq.data = sc;
    int rc = uv_write(&sc->wreq, (uv_stream_t *)&sc->tcp, &b, 1, sc_written);
    if (rc != 0) {
        sc_close(sc);
        sc->on_lost(sc, uv_strerror(rc));
    }
}

/* Builds the POST for the first CertID of the set (no nonce) into sc.
 * Returns what its line expects. */
static int sc_prepare(sc_t *sc, const tg_bench_opts_t *o, const tg_bench_set_t *set,
                      tg_certid_t *out_id)
{
    uint8_t der[TG_BENCH_DER_MAX];
    int expect = tg_bench_set_get(set, 0, out_id);
    size_t dn = tg_bench_ocsp_request(out_id, NULL, der);
    sc->req_len = tg_bench_http_request(&o->url, 1, der, dn, sc->req);
    return expect;
}

static double ms_between(uint64_t a, uint64_t b)
{
    return (double)(int64_t)(b - a) / 1e6;
}

static void json_label(FILE *f, const tg_bench_opts_t *o, const char *mode)
{
    fprintf(f, "{\"tool\":\"trustgate-bench\",\"mode\":\"%s\",\"label\":", mode);
    tg_bench_json_str(f, o->label ? o->label : "");
}

static int json_close(FILE *f, const char *path)
{
    if (fclose(f) != 0) {
        fprintf(stderr, "trustgate-bench: %s: write failed\n", path);
        return -1;
    }
    return 0;
}

/* ---- flip -------------------------------------------------------------- */

typedef struct {
    const tg_bench_opts_t *o;
    uv_loop_t loop;
    sc_t sc;
    uv_timer_t deadline, retry;
    uv_pipe_t admin;
    uv_connect_t admin_creq;
    uv_write_t admin_wreq;
    int admin_open;
    char answer[ADMIN_MAX + 1];
    size_t answer_len;
    int answered;
    tg_certid_t id;
    int phase; /* 1 wait for --from, 2 acting, 3 wait for --to, 4 done */
    uint64_t t0, latency_ns;
    uint64_t before, after;
    int flipped, rc;
    const char *last; /* last state seen */
} flip_t;

static void flip_finish(flip_t *f, int rc)
{
    if (f->phase == 4)
        return;
    f->phase = 4;
    f->rc = rc;
    uv_timer_stop(&f->deadline);
    uv_timer_stop(&f->retry);
    sc_close(&f->sc);
    if (f->admin_open) {
        f->admin_open = 0;
        uv_close((uv_handle_t *)&f->admin, NULL);
    }
}

static void flip_send(flip_t *f)
{
    if (f->phase == 1 || f->phase == 3) {
        if (f->phase == 1)
            f->before++;
        else
            f->after++;
        sc_send(&f->sc);
    }
}

static void flip_retry(uv_timer_t *t)
{
    flip_t *f = t->data;
    if (f->sc.state == S_IDLE)
        sc_connect(&f->sc, &f->o->url);
    else if (f->sc.state == S_OPEN && !f->sc.waiting)
        flip_send(f);
    else if (f->sc.state == S_CLOSING)
        uv_timer_start(&f->retry, flip_retry, RETRY_MS, 0);
}

static void flip_ready(sc_t *sc, int status)
{
    flip_t *f = sc->data;
    if (f->phase == 4)
        return;
    if (status != 0) {
        fprintf(stderr, "flip: connect: %s\n", uv_strerror(status));
        uv_timer_start(&f->retry, flip_retry, RETRY_MS, 0);
        return;
    }
    flip_send(f);
}

static void flip_lost(sc_t *sc, const char *why)
{
    flip_t *f = sc->data;
    if (f->phase == 4)
        return;
    fprintf(stderr, "flip: connection lost (%s); reconnecting\n", why);
    uv_timer_start(&f->retry, flip_retry, 0, 0);
}

static void flip_deadline(uv_timer_t *t)
{
    flip_t *f = t->data;
    if (f->phase == 1)
        fprintf(stderr, "flip: no %s answer within %llu ms (last: %s)\n",
                tg_bench_state_name(f->o->from), (unsigned long long)f->o->timeout_ms, f->last);
    else if (!f->flipped)
        fprintf(stderr, "flip: no %s answer within %llu ms of the action (last: %s)\n",
                tg_bench_state_name(f->o->to), (unsigned long long)f->o->timeout_ms, f->last);
    else
        fprintf(stderr, "flip: the admin socket did not answer within %llu ms\n",
                (unsigned long long)f->o->timeout_ms);
    flip_finish(f, 1);
}

static void admin_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    flip_t *f = h->data;
    (void)suggested;
    *buf = uv_buf_init(f->answer + f->answer_len, (unsigned)(ADMIN_MAX - f->answer_len));
}

static void admin_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    flip_t *f = s->data;
    (void)buf;
    if (nread > 0)
        f->answer_len += (size_t)nread;
    char *nl = memchr(f->answer, '\n', f->answer_len);
    if (nl == NULL && nread >= 0 && f->answer_len < ADMIN_MAX)
        return;
    if (nl != NULL)
        f->answer_len = (size_t)(nl - f->answer);
    f->answer[f->answer_len] = '\0';
    f->answered = 1;
    uv_read_stop(s);
    printf("admin: %s\n", f->answer_len ? f->answer : "(no answer)");
    if (strncmp(f->answer, "ok", 2) != 0) {
        fprintf(stderr, "flip: the admin socket refused the reload\n");
        flip_finish(f, 1);
    } else if (f->flipped) {
        flip_finish(f, 0);
    }
}

static void admin_written(uv_write_t *req, int status)
{
    flip_t *f = req->data;
    if (status < 0 && status != UV_ECANCELED && f->phase != 4) {
        fprintf(stderr, "flip: admin socket write: %s\n", uv_strerror(status));
        flip_finish(f, 1);
    }
}

/* T0, then the reload command; phase 3 starts. */
static void admin_connected(uv_connect_t *req, int status)
{
    flip_t *f = req->data;
    if (f->phase == 4)
        return;
    if (status != 0) {
        fprintf(stderr, "flip: admin socket %s: %s\n", f->o->admin, uv_strerror(status));
        flip_finish(f, 1);
        return;
    }
    static char cmd[] = "reload\n";
    uv_buf_t b = uv_buf_init(cmd, sizeof(cmd) - 1);
    f->admin_wreq.data = f;
    f->t0 = uv_hrtime();
    if (uv_write(&f->admin_wreq, (uv_stream_t *)&f->admin, &b, 1, admin_written) != 0 ||
        uv_read_start((uv_stream_t *)&f->admin, admin_alloc, admin_read) != 0) {
        fprintf(stderr, "flip: admin socket write failed\n");
        flip_finish(f, 1);
        return;
    }
    f->phase = 3;
    uv_timer_start(&f->deadline, flip_deadline, f->o->timeout_ms, 0);
    flip_retry(&f->retry);
}

/* Phase 2: rename and/or reload (T0 just before the reload command when
 * there is one, else just before the rename). */
static void flip_act(flip_t *f)
{
    const tg_bench_opts_t *o = f->o;
    f->phase = 2;
    uv_timer_stop(&f->deadline);
    if (o->admin == NULL)
        f->t0 = uv_hrtime();
    if (o->rename_src != NULL && rename(o->rename_src, o->rename_dst) != 0) {
        fprintf(stderr, "flip: rename %s %s: %s\n", o->rename_src, o->rename_dst, strerror(errno));
        flip_finish(f, 1);
        return;
    }
    if (o->admin == NULL) {
        f->phase = 3;
        uv_timer_start(&f->deadline, flip_deadline, o->timeout_ms, 0);
        flip_retry(&f->retry);
        return;
    }
    uv_pipe_init(&f->loop, &f->admin, 0);
    f->admin.data = f;
    f->admin_open = 1;
    f->admin_creq.data = f;
    uv_pipe_connect(&f->admin_creq, &f->admin, o->admin, admin_connected);
}

static void flip_response(sc_t *sc)
{
    flip_t *f = sc->data;
    const tg_bench_opts_t *o = f->o;
    uint64_t now = uv_hrtime();
    if (f->phase == 4)
        return;
    tg_bench_verdict_t v;
    int kind =
        tg_bench_check(sc->http_status, sc->body, sc->body_len, &f->id, TG_BST_ANY, NULL, 1, &v);
    if (kind != TG_BERR_NONE) {
        fprintf(stderr, "flip: bad response (%s, HTTP %d)\n", tg_bench_err_name(kind),
                sc->http_status);
        flip_finish(f, 1);
        return;
    }
    f->last = tg_bench_state_name(v.state);
    if (f->phase == 1 && v.state == o->from) {
        flip_act(f);
        return;
    }
    if (f->phase == 3 && !f->flipped && v.state == o->to &&
        (o->to_reason < 0 || (v.state == TG_BST_REVOKED && v.reason == o->to_reason))) {
        f->latency_ns = now - f->t0;
        f->flipped = 1;
        if (o->admin == NULL || f->answered) {
            flip_finish(f, 0);
            return;
        }
        return; /* wait for the admin answer (the deadline still runs) */
    }
    if (f->flipped)
        return;
    uv_timer_start(&f->retry, flip_retry, 0, 0);
}

int tg_bench_flip_run(const tg_bench_opts_t *o, const tg_bench_set_t *set)
{
    flip_t *f = calloc(1, sizeof(*f));
    if (f == NULL || uv_loop_init(&f->loop) != 0) {
        fprintf(stderr, "trustgate-bench: cannot set up the loop\n");
        free(f);
        return 2;
    }
    f->o = o;
    f->last = "nothing";
    f->phase = 1;
    f->sc.loop = &f->loop;
    f->sc.data = f;
    f->sc.on_ready = flip_ready;
    f->sc.on_response = flip_response;
    f->sc.on_lost = flip_lost;
    (void)sc_prepare(&f->sc, o, set, &f->id);
    uv_timer_init(&f->loop, &f->deadline);
    uv_timer_init(&f->loop, &f->retry);
    f->deadline.data = f->retry.data = f;
    uv_timer_start(&f->deadline, flip_deadline, o->timeout_ms, 0);
    sc_connect(&f->sc, &o->url);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&f->deadline, NULL);
    uv_close((uv_handle_t *)&f->retry, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&f->loop);

    int rc = f->rc;
    if (f->flipped)
        printf("flip: %.3f ms (requests after action: %llu)\n", (double)f->latency_ns / 1e6,
               (unsigned long long)f->after);
    if (o->json) {
        FILE *j = fopen(o->json, "w");
        if (j == NULL) {
            fprintf(stderr, "trustgate-bench: %s: %s\n", o->json, strerror(errno));
            rc = 2;
        } else {
            json_label(j, o, "flip");
            if (f->flipped)
                fprintf(j, ",\"latency_ms\":%.3f", (double)f->latency_ns / 1e6);
            else
                fputs(",\"latency_ms\":null", j);
            fprintf(j, ",\"requests_before\":%llu,\"requests_after\":%llu,\"admin_answer\":",
                    (unsigned long long)f->before, (unsigned long long)f->after);
            if (f->answered)
                tg_bench_json_str(j, f->answer);
            else
                fputs("null", j);
            fputs("}\n", j);
            if (json_close(j, o->json) != 0)
                rc = 2;
        }
    }
    free(f->sc.body);
    free(f);
    return rc;
}

/* ---- first ------------------------------------------------------------- */

typedef struct {
    const tg_bench_opts_t *o;
    uv_loop_t loop;
    sc_t sc;
    uv_timer_t deadline, retry;
    tg_certid_t id;
    int expect;
    uint64_t t_start, t_done;
    struct timespec wall_done;
    uint64_t attempts;
    int done, rc;
    char last[96];
} first_t;

static void first_finish(first_t *f, int rc)
{
    if (f->done)
        return;
    f->done = 1;
    f->rc = rc;
    uv_timer_stop(&f->deadline);
    uv_timer_stop(&f->retry);
    sc_close(&f->sc);
}

static void first_attempt(uv_timer_t *t)
{
    first_t *f = t->data;
    if (f->done)
        return;
    if (f->sc.state != S_IDLE) { /* still closing the last try */
        uv_timer_start(&f->retry, first_attempt, RETRY_MS, 0);
        return;
    }
    f->attempts++;
    sc_connect(&f->sc, &f->o->url);
}

static void first_again(first_t *f)
{
    sc_close(&f->sc);
    uv_timer_start(&f->retry, first_attempt, RETRY_MS, 0);
}

static void first_ready(sc_t *sc, int status)
{
    first_t *f = sc->data;
    if (f->done)
        return;
    if (status != 0) {
        snprintf(f->last, sizeof(f->last), "connect: %s", uv_strerror(status));
        first_again(f);
        return;
    }
    sc_send(sc);
}

static void first_lost(sc_t *sc, const char *why)
{
    first_t *f = sc->data;
    if (f->done)
        return;
    snprintf(f->last, sizeof(f->last), "%s", why);
    first_again(f);
}

static void first_response(sc_t *sc)
{
    first_t *f = sc->data;
    if (f->done)
        return;
    tg_bench_verdict_t v;
    int kind =
        tg_bench_check(sc->http_status, sc->body, sc->body_len, &f->id, f->expect, NULL, 1, &v);
    if (kind == TG_BERR_NONE) {
        f->t_done = uv_hrtime();
        clock_gettime(CLOCK_REALTIME, &f->wall_done);
        first_finish(f, 0);
        return;
    }
    snprintf(f->last, sizeof(f->last), "HTTP %d, %s (%s)", sc->http_status,
             tg_bench_state_name(v.state), tg_bench_err_name(kind));
    first_again(f);
}

static void first_deadline(uv_timer_t *t)
{
    first_t *f = t->data;
    fprintf(stderr, "first: no %s answer within %llu ms (%llu attempts; last: %s)\n",
            tg_bench_state_name(f->expect), (unsigned long long)f->o->timeout_ms,
            (unsigned long long)f->attempts, f->last);
    first_finish(f, 1);
}

int tg_bench_first_run(const tg_bench_opts_t *o, const tg_bench_set_t *set)
{
    first_t *f = calloc(1, sizeof(*f));
    if (f == NULL || uv_loop_init(&f->loop) != 0) {
        fprintf(stderr, "trustgate-bench: cannot set up the loop\n");
        free(f);
        return 2;
    }
    f->o = o;
    snprintf(f->last, sizeof(f->last), "nothing");
    f->sc.loop = &f->loop;
    f->sc.data = f;
    f->sc.on_ready = first_ready;
    f->sc.on_response = first_response;
    f->sc.on_lost = first_lost;
    f->expect = sc_prepare(&f->sc, o, set, &f->id);
    uv_timer_init(&f->loop, &f->deadline);
    uv_timer_init(&f->loop, &f->retry);
    f->deadline.data = f->retry.data = f;
    f->t_start = uv_hrtime();
    uv_timer_start(&f->deadline, first_deadline, o->timeout_ms, 0);
    first_attempt(&f->retry);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&f->deadline, NULL);
    uv_close((uv_handle_t *)&f->retry, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&f->loop);

    int rc = f->rc, ok = rc == 0;
    double since_start = ok ? ms_between(f->t_start, f->t_done) : 0;
    double since_ns = 0;
    if (ok && o->has_since)
        since_ns = ((double)f->wall_done.tv_sec * 1e9 + (double)f->wall_done.tv_nsec -
                    (double)o->since_ns) /
                   1e6;
    if (ok)
        printf("first: %.3f ms (attempts %llu)\n", o->has_since ? since_ns : since_start,
               (unsigned long long)f->attempts);
    if (o->json) {
        FILE *j = fopen(o->json, "w");
        if (j == NULL) {
            fprintf(stderr, "trustgate-bench: %s: %s\n", o->json, strerror(errno));
            rc = 2;
        } else {
            json_label(j, o, "first");
            if (ok && o->has_since)
                fprintf(j, ",\"ms_since_ns\":%.3f", since_ns);
            else
                fputs(",\"ms_since_ns\":null", j);
            if (ok)
                fprintf(j, ",\"ms_since_start\":%.3f", since_start);
            else
                fputs(",\"ms_since_start\":null", j);
            fprintf(j, ",\"attempts\":%llu}\n", (unsigned long long)f->attempts);
            if (json_close(j, o->json) != 0)
                rc = 2;
        }
    }
    free(f->sc.body);
    free(f);
    return rc;
}
