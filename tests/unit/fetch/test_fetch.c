/* fetch/: the fetcher thread against a tiny HTTP/1.1 server that runs in
 * this process on a loopback port (one thread per connection, keep-alive):
 * headers and conditional GET, large bodies with and without
 * Content-Length, limits, timeouts, cut bodies, errors, POST, file: URLs,
 * concurrency, tg_fetcher_call ordering and shutdown with work in flight. */
#include "common/err.h"
#include "common/log.h"
#include "fetch/fetch.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BIG_LEN (((size_t)8 << 20) + 12345) /* not a power of two: doubling never lands on it */
#define MAX_CONNS 64

/* ---- the test server ---------------------------------------------------------- */

static struct {
    int lfd;
    int port;
    int stop[2]; /* written once at teardown: every server thread returns */
    pthread_t acceptor;
    pthread_mutex_t mu;
    pthread_t threads[MAX_CONNS];
    int fds[MAX_CONNS];
    int n;
    atomic_int accepted;
    atomic_int stalls; /* requests for /stall being held */
} S;

static uint8_t *big;

/* Waits until fd is readable; 0 when the server is stopping. */
static int wait_readable(int fd)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = S.stop[0], .events = POLLIN}};
    for (;;) {
        int r = poll(p, 2, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || (p[1].revents & POLLIN))
            return 0;
        if (p[0].revents)
            return 1;
    }
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_str(int fd, const char *s)
{
    return send_all(fd, s, strlen(s));
}

/* Copies the value of header name from the head (trimmed) into out; "" when
 * absent. */
static void header(const char *head, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l != NULL; l = strstr(l + 2, "\r\n")) {
        const char *s = l + 2;
        if (strncasecmp(s, name, nl) != 0 || s[nl] != ':')
            continue;
        s += nl + 1;
        while (*s == ' ')
            s++;
        const char *e = strstr(s, "\r\n");
        size_t n = (size_t)(e - s);
        if (n >= cap)
            n = cap - 1;
        memcpy(out, s, n);
        out[n] = '\0';
        return;
    }
}

/* Answers one request; returns 1 to keep the connection, 0 to close it. */
static int answer(int fd, const char *method, const char *path, const char *head, const char *body,
                  size_t body_len)
{
    char h[512];
    char buf[4096];
    if (strcmp(path, "/etag") == 0) {
        header(head, "If-None-Match", h, sizeof(h));
        if (strcmp(h, "\"v1\"") == 0)
            return send_str(fd, "HTTP/1.1 304 Not Modified\r\neTaG:   \"v1\"  \r\n\r\n") == 0;
        return send_str(fd, "HTTP/1.1 200 OK\r\n"
                            "content-type: application/pkix-crl\r\n"
                            "eTaG:   \"v1\"  \r\n"
                            "LAST-modified:\tWed, 21 Oct 2015 07:28:00 GMT\r\n"
                            "Content-Length: 9\r\n\r\nhello crl") == 0;
    }
    if (strcmp(path, "/big") == 0) {
        snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", BIG_LEN);
        return send_str(fd, buf) == 0 && send_all(fd, big, BIG_LEN) == 0;
    }
    if (strcmp(path, "/big-nolen") == 0) {
        (void)(send_str(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n") == 0 &&
               send_all(fd, big, BIG_LEN) == 0);
        return 0;
    }
    if (strcmp(path, "/stall") == 0) {
        atomic_fetch_add(&S.stalls, 1);
        /* Until the client goes away or the server stops. */
        while (wait_readable(fd) && recv(fd, buf, sizeof(buf), 0) > 0)
            ;
        return 0;
    }
    if (strcmp(path, "/cut") == 0) {
        (void)(send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n") == 0 &&
               send_all(fd, big, 100) == 0);
        return 0;
    }
    if (strcmp(path, "/500") == 0)
        return send_str(fd,
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom") == 0;
    if (strcmp(path, "/redirect") == 0)
        return send_str(fd,
                        "HTTP/1.1 302 Found\r\nLocation: /etag\r\nContent-Length: 3\r\n\r\nxyz") ==
               0;
    if (strcmp(path, "/redirect-file") == 0)
        return send_str(fd, "HTTP/1.1 302 Found\r\nLocation: file:///etc/hostname\r\n"
                            "Content-Length: 0\r\n\r\n") == 0;
    if (strcmp(path, "/loop") == 0)
        return send_str(fd, "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n") ==
               0;
    if (strcmp(path, "/echo") == 0) {
        /* method, Content-Type, Accept, User-Agent, one per line, then the body. */
        char ct[128], acc[128], ua[128];
        header(head, "Content-Type", ct, sizeof(ct));
        header(head, "Accept", acc, sizeof(acc));
        header(head, "User-Agent", ua, sizeof(ua));
        int n = snprintf(buf, sizeof(buf), "%s\n%s\n%s\n%s\n", method, ct, acc, ua);
        char top[128];
        snprintf(top, sizeof(top), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                 (size_t)n + body_len);
        return send_str(fd, top) == 0 && send_all(fd, buf, (size_t)n) == 0 &&
               send_all(fd, body, body_len) == 0;
    }
    return send_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n") == 0;
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char req[16384];
    size_t have = 0;
    for (;;) {
        char *end;
        while ((end = memmem(req, have, "\r\n\r\n", 4)) == NULL) {
            if (have == sizeof(req) || !wait_readable(fd))
                goto out;
            ssize_t r = recv(fd, req + have, sizeof(req) - have, 0);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        size_t hlen = (size_t)(end - req) + 4;
        char head[8192];
        if (hlen >= sizeof(head))
            goto out;
        memcpy(head, req, hlen);
        head[hlen] = '\0';
        char cl[32];
        header(head, "Content-Length", cl, sizeof(cl));
        size_t blen = (size_t)strtoul(cl, NULL, 10);
        if (blen > sizeof(req) - hlen)
            goto out;
        while (have < hlen + blen) {
            if (!wait_readable(fd))
                goto out;
            ssize_t r = recv(fd, req + have, sizeof(req) - have, 0);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        char method[16], path[256];
        if (sscanf(head, "%15s %255s", method, path) != 2)
            goto out;
        if (!answer(fd, method, path, head, req + hlen, blen))
            goto out;
        memmove(req, req + hlen + blen, have - hlen - blen);
        have -= hlen + blen;
    }
out:
    /* FIN now (ends a body without Content-Length); teardown closes fd. */
    shutdown(fd, SHUT_RDWR);
    return NULL;
}

static void *acceptor_main(void *arg)
{
    (void)arg;
    while (wait_readable(S.lfd)) {
        int fd = accept(S.lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&S.mu);
        if (S.n == MAX_CONNS ||
            pthread_create(&S.threads[S.n], NULL, conn_main, (void *)(intptr_t)fd) != 0) {
            pthread_mutex_unlock(&S.mu);
            close(fd);
            continue;
        }
        S.fds[S.n++] = fd;
        atomic_fetch_add(&S.accepted, 1);
        pthread_mutex_unlock(&S.mu);
    }
    return NULL;
}

static void srv_start(void)
{
    memset(&S, 0, sizeof(S));
    pthread_mutex_init(&S.mu, NULL);
    cr_assert_eq(pipe(S.stop), 0);
    S.lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(S.lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(S.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(S.lfd, 64), 0);
    cr_assert_eq(getsockname(S.lfd, (struct sockaddr *)&a, &len), 0);
    S.port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&S.acceptor, NULL, acceptor_main, NULL), 0);
}

static void srv_stop(void)
{
    cr_assert_eq(write(S.stop[1], "x", 1), 1);
    pthread_join(S.acceptor, NULL);
    pthread_mutex_lock(&S.mu);
    int n = S.n;
    pthread_mutex_unlock(&S.mu);
    for (int i = 0; i < n; i++)
        shutdown(S.fds[i], SHUT_RDWR); /* unblocks a send to a client that stopped reading */
    for (int i = 0; i < n; i++) {
        pthread_join(S.threads[i], NULL);
        close(S.fds[i]);
    }
    close(S.lfd);
    close(S.stop[0]);
    close(S.stop[1]);
    pthread_mutex_destroy(&S.mu);
}

/* ---- fixture and helpers ------------------------------------------------------- */

static tg_fetcher_t *F;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    tg_log_set_level(TG_LOG_ERROR);
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    big = malloc(BIG_LEN);
    cr_assert_not_null(big);
    for (size_t i = 0; i < BIG_LEN; i++)
        big[i] = (uint8_t)(i * 7 + (i >> 13));
    srv_start();
    cr_assert_eq(tg_fetcher_new(&F), 0);
}

static void teardown(void)
{
    tg_fetcher_free(F);
    F = NULL;
    srv_stop();
    free(big);
    curl_global_cleanup();
}

static const char *url(const char *path)
{
    static char u[8][128];
    static int i;
    i = (i + 1) % 8;
    snprintf(u[i], sizeof(u[i]), "http://127.0.0.1:%d%s", S.port, path);
    return u[i];
}

/* One fetch driven from the test thread: started on the fetcher thread by a
 * tg_fetcher_call, its result copied out (body stolen) by the callback. */
typedef struct {
    tg_fetch_req_t req;
    int started, done, start_rc;
    int cb_on_thread;    /* the callback ran on the fetcher thread */
    int cb_inside_start; /* the callback ran before tg_fetch_start returned */
    tg_fetch_res_t res;
} job_t;

static void on_done(void *arg, tg_fetch_res_t *res)
{
    job_t *j = arg;
    pthread_mutex_lock(&mu);
    j->res = *res;
    tg_buf_init(&res->body); /* stolen */
    j->cb_on_thread = tg_fetcher_on_thread(F);
    j->cb_inside_start = !j->started;
    j->done = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* Starts j's fetch with cb on the fetcher thread and records the outcome. */
static void start_with(job_t *j, int canceled, tg_fetch_cb cb)
{
    int rc = canceled ? TG_ESTATE : tg_fetch_start(F, &j->req, cb, j);
    pthread_mutex_lock(&mu);
    j->start_rc = rc;
    j->started = 1;
    if (rc != 0)
        j->done = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void start_job(void *arg, int canceled)
{
    start_with(arg, canceled, on_done);
}

static void submit(job_t *j)
{
    cr_assert_eq(tg_fetcher_call(F, start_job, j), 0);
}

/* Waits (at most 5 s) until every job in js[0..n) is done. */
static void wait_jobs(job_t *js, int n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < n; i++)
        while (!js[i].done)
            if (pthread_cond_timedwait(&cv, &mu, &dl) == ETIMEDOUT)
                break;
    int all = 1;
    for (int i = 0; i < n; i++)
        all &= js[i].done;
    pthread_mutex_unlock(&mu);
    cr_assert(all, "fetches did not finish within 5 s");
    for (int i = 0; i < n; i++) {
        if (js[i].start_rc != 0)
            continue;
        cr_expect(js[i].cb_on_thread, "callback off the fetcher thread");
        cr_expect(!js[i].cb_inside_start, "callback inside tg_fetch_start");
    }
}

static void run(job_t *j)
{
    submit(j);
    wait_jobs(j, 1);
}

static void job_free(job_t *j)
{
    tg_buf_free(&j->res.body);
}

static int body_is(const job_t *j, const char *s)
{
    size_t n = strlen(s);
    return j->res.body.len == n && memcmp(j->res.body.data, s, n) == 0;
}

TestSuite(fetch, .init = setup, .fini = teardown);

/* ---- tests --------------------------------------------------------------------- */

Test(fetch, get_with_validators)
{
    job_t j = {.req = {.url = url("/etag"), .timeout_ms = 2000}};
    run(&j);
    cr_assert_eq(j.start_rc, 0);
    cr_assert_eq(j.res.rc, 0, "%s", j.res.err);
    cr_expect_str_eq(j.res.reason, "ok");
    cr_expect_eq(j.res.http_status, 200);
    cr_expect_eq(j.res.not_modified, 0);
    cr_expect(body_is(&j, "hello crl"));
    cr_expect_str_eq(j.res.etag, "\"v1\"");
    cr_expect_str_eq(j.res.last_modified, "Wed, 21 Oct 2015 07:28:00 GMT");
    cr_expect_str_eq(j.res.content_type, "application/pkix-crl");
    cr_expect_str_eq(j.res.err, "");
    job_free(&j);

    tg_fetcher_stats_t st;
    tg_fetcher_stats(F, &st);
    cr_expect_eq(st.started, 1);
    cr_expect_eq(st.completed[TG_FETCH_OK], 1);
    cr_expect_eq(st.bytes, 9);
    cr_expect_eq(st.in_flight, 0);
}

Test(fetch, conditional_get_not_modified)
{
    job_t j = {.req = {.url = url("/etag"),
                       .if_none_match = "\"v1\"",
                       .if_modified_since = "Wed, 21 Oct 2015 07:28:00 GMT"}};
    run(&j);
    cr_assert_eq(j.res.rc, 0, "%s", j.res.err);
    cr_expect_str_eq(j.res.reason, "not_modified");
    cr_expect_eq(j.res.http_status, 304);
    cr_expect_eq(j.res.not_modified, 1);
    cr_expect_eq(j.res.body.len, 0);
    cr_expect_str_eq(j.res.etag, "\"v1\"");
    job_free(&j);

    /* Another validator: a full answer. */
    job_t k = {.req = {.url = url("/etag"), .if_none_match = "\"v0\""}};
    run(&k);
    cr_expect_str_eq(k.res.reason, "ok");
    cr_expect(body_is(&k, "hello crl"));
    job_free(&k);

    tg_fetcher_stats_t st;
    tg_fetcher_stats(F, &st);
    cr_expect_eq(st.completed[TG_FETCH_NOT_MODIFIED], 1);
}

Test(fetch, big_body_with_length_is_presized)
{
    job_t j = {.req = {.url = url("/big"), .max_bytes = BIG_LEN}};
    run(&j);
    cr_assert_eq(j.res.rc, 0, "%s", j.res.err);
    cr_assert_eq(j.res.body.len, BIG_LEN);
    cr_expect(memcmp(j.res.body.data, big, BIG_LEN) == 0);
    /* One allocation of exactly Content-Length, not a doubling. */
    cr_expect_eq(j.res.body.cap, BIG_LEN);
    job_free(&j);
}

Test(fetch, big_body_without_length)
{
    job_t j = {.req = {.url = url("/big-nolen")}};
    run(&j);
    cr_assert_eq(j.res.rc, 0, "%s", j.res.err);
    cr_assert_eq(j.res.body.len, BIG_LEN);
    cr_expect(memcmp(j.res.body.data, big, BIG_LEN) == 0);
    job_free(&j);
}

Test(fetch, max_bytes_with_length)
{
    job_t j = {.req = {.url = url("/big"), .max_bytes = 1 << 20}};
    run(&j);
    cr_expect_eq(j.res.rc, TG_ETOOBIG);
    cr_expect_str_eq(j.res.reason, "too_big");
    cr_expect_eq(j.res.body.len, 0);
    cr_expect(strstr(j.res.err, "/big") != NULL, "%s", j.res.err);
    job_free(&j);

    /* The limit is inclusive. */
    job_t k = {.req = {.url = url("/etag"), .max_bytes = 9}};
    job_t l = {.req = {.url = url("/etag"), .max_bytes = 8}};
    run(&k);
    run(&l);
    cr_expect_str_eq(k.res.reason, "ok");
    cr_expect_str_eq(l.res.reason, "too_big");
    job_free(&k);
    job_free(&l);
}

Test(fetch, max_bytes_without_length)
{
    job_t j = {.req = {.url = url("/big-nolen"), .max_bytes = 1 << 20}};
    run(&j);
    cr_expect_eq(j.res.rc, TG_ETOOBIG);
    cr_expect_str_eq(j.res.reason, "too_big");
    cr_expect_eq(j.res.body.len, 0);
    job_free(&j);

    tg_fetcher_stats_t st;
    tg_fetcher_stats(F, &st);
    cr_expect_eq(st.completed[TG_FETCH_TOO_BIG], 1);
}

Test(fetch, timeout)
{
    job_t j = {.req = {.url = url("/stall"), .timeout_ms = 300}};
    run(&j);
    cr_expect_eq(j.res.rc, TG_EIO);
    cr_expect_str_eq(j.res.reason, "timeout");
    cr_expect_geq(j.res.elapsed_ms, 250);
    cr_expect_lt(j.res.elapsed_ms, 3000);
    cr_expect(strstr(j.res.err, "/stall") != NULL, "%s", j.res.err);
    job_free(&j);
}

Test(fetch, cut_mid_body)
{
    job_t j = {.req = {.url = url("/cut")}};
    run(&j);
    cr_expect_eq(j.res.rc, TG_EIO);
    cr_expect_str_eq(j.res.reason, "protocol");
    cr_expect_eq(j.res.body.len, 0);
    job_free(&j);
}

Test(fetch, http_500_is_a_response)
{
    job_t j = {.req = {.url = url("/500")}};
    run(&j);
    cr_expect_eq(j.res.rc, 0);
    cr_expect_str_eq(j.res.reason, "http_status");
    cr_expect_eq(j.res.http_status, 500);
    cr_expect(body_is(&j, "boom"));
    cr_expect(strstr(j.res.err, "500") != NULL, "%s", j.res.err);
    job_free(&j);
}

Test(fetch, post_body_and_headers)
{
    static const uint8_t der[] = {0x30, 0x03, 0x00, 0x0a, 0xff};
    job_t j = {.req = {.url = url("/echo"),
                       .method = "POST",
                       .body = TG_SLICE(der, sizeof(der)),
                       .content_type = "application/ocsp-request",
                       .accept = "application/ocsp-response"}};
    run(&j);
    cr_assert_eq(j.res.rc, 0, "%s", j.res.err);
    const char *head =
        "POST\napplication/ocsp-request\napplication/ocsp-response\ntrustgate/" TG_VERSION "\n";
    size_t hn = strlen(head);
    cr_assert_eq(j.res.body.len, hn + sizeof(der));
    cr_expect(memcmp(j.res.body.data, head, hn) == 0, "%.*s", (int)j.res.body.len,
              (const char *)j.res.body.data);
    cr_expect(memcmp(j.res.body.data + hn, der, sizeof(der)) == 0);
    job_free(&j);

    /* A GET says GET. */
    job_t k = {.req = {.url = url("/echo")}};
    run(&k);
    cr_expect(k.res.body.len > 4 && memcmp(k.res.body.data, "GET\n", 4) == 0);
    job_free(&k);
}

Test(fetch, redirects)
{
    job_t j = {.req = {.url = url("/redirect")}};
    run(&j);
    cr_expect_str_eq(j.res.reason, "ok");
    cr_expect(body_is(&j, "hello crl")); /* not the redirect's own body */
    cr_expect_str_eq(j.res.etag, "\"v1\"");
    job_free(&j);

    /* Never to file:, even when file: URLs are allowed. */
    job_t k = {.req = {.url = url("/redirect-file"), .allow_file_urls = 1}};
    run(&k);
    cr_expect_eq(k.res.rc, TG_EIO);
    cr_expect_str_eq(k.res.reason, "protocol");
    job_free(&k);

    job_t l = {.req = {.url = url("/loop")}};
    run(&l);
    cr_expect_eq(l.res.rc, TG_EIO);
    cr_expect_str_eq(l.res.reason, "protocol");
    job_free(&l);
}

Test(fetch, connect_refused)
{
    /* A port bound but never listened on refuses connections. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", ntohs(a.sin_port));
    job_t j = {.req = {.url = u, .timeout_ms = 2000}};
    run(&j);
    close(fd);
    cr_expect_eq(j.res.rc, TG_EIO);
    cr_expect_str_eq(j.res.reason, "connect");
    cr_expect(strstr(j.res.err, u) != NULL, "%s", j.res.err);
    cr_expect_eq(j.res.http_status, 0);
    job_free(&j);
}

Test(fetch, file_urls)
{
    char path[] = "/tmp/tg_fetch_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "file body", 9), 9);
    close(fd);
    char u[64];
    snprintf(u, sizeof(u), "file://%s", path);

    job_t j = {.req = {.url = u, .allow_file_urls = 1}};
    run(&j);
    cr_expect_eq(j.res.rc, 0, "%s", j.res.err);
    cr_expect_str_eq(j.res.reason, "ok");
    cr_expect_eq(j.res.http_status, 0);
    cr_expect(body_is(&j, "file body"));
    job_free(&j);

    /* Refused before curl when not allowed: no callback. */
    job_t k = {.req = {.url = u}};
    run(&k);
    cr_expect_eq(k.start_rc, TG_EINVAL);
    job_free(&k);

    unlink(path);
    job_t l = {.req = {.url = u, .allow_file_urls = 1}};
    run(&l);
    cr_expect_eq(l.res.rc, TG_EIO);
    cr_expect_str_eq(l.res.reason, "file");
    cr_expect(strstr(l.res.err, path) != NULL, "%s", l.res.err);
    job_free(&l);
}

Test(fetch, bad_requests_refused_synchronously)
{
    job_t js[] = {
        {.req = {.url = NULL}},
        {.req = {.url = url("/etag"), .method = "PUT"}},
        {.req = {.url = url("/etag"), .method = "get"}},
        {.req = {.url = "ftp://127.0.0.1/x"}},
        {.req = {.url = "127.0.0.1/x"}},
        {.req = {.url = url("/etag"), .if_none_match = "\"v1\"\r\nX-Evil: 1"}},
        {.req = {.url = url("/etag"), .accept = "a\nb"}},
        {.req = {.url = "FILE:///etc/hostname"}},
    };
    int n = (int)(sizeof(js) / sizeof(js[0]));
    for (int i = 0; i < n; i++)
        submit(&js[i]);
    wait_jobs(js, n);
    for (int i = 0; i < n; i++)
        cr_expect_eq(js[i].start_rc, TG_EINVAL, "request %d: %d", i, js[i].start_rc);

    /* Off the fetcher thread. */
    job_t j = {.req = {.url = url("/etag")}};
    cr_expect_eq(tg_fetch_start(F, &j.req, on_done, &j), TG_EINVAL);

    tg_fetcher_stats_t st;
    tg_fetcher_stats(F, &st);
    cr_expect_eq(st.started, 0);
}

Test(fetch, twenty_concurrent)
{
    job_t js[20];
    memset(js, 0, sizeof(js));
    char echo[64], etag[64];
    snprintf(echo, sizeof(echo), "%s", url("/echo"));
    snprintf(etag, sizeof(etag), "%s", url("/etag"));
    for (int i = 0; i < 20; i++) {
        js[i].req.url = i % 4 == 0 ? echo : etag;
        js[i].req.timeout_ms = 4000;
    }
    for (int i = 0; i < 20; i++)
        submit(&js[i]);
    wait_jobs(js, 20);
    for (int i = 0; i < 20; i++) {
        cr_expect_eq(js[i].res.rc, 0, "%d: %s", i, js[i].res.err);
        cr_expect_str_eq(js[i].res.reason, "ok");
        if (i % 4 != 0)
            cr_expect(body_is(&js[i], "hello crl"));
        job_free(&js[i]);
    }
    cr_expect_leq(atomic_load(&S.accepted), TG_FETCH_MAX_HOST_CONNECTIONS);

    tg_fetcher_stats_t st;
    tg_fetcher_stats(F, &st);
    cr_expect_eq(st.started, 20);
    cr_expect_eq(st.completed[TG_FETCH_OK], 20);
    cr_expect_eq(st.in_flight, 0);
}

Test(fetch, keep_alive_reuses_the_connection)
{
    for (int i = 0; i < 3; i++) {
        job_t j = {.req = {.url = url("/etag")}};
        run(&j);
        cr_expect_str_eq(j.res.reason, "ok");
        job_free(&j);
    }
    cr_expect_eq(atomic_load(&S.accepted), 1);
}

/* ---- tg_fetcher_call -------------------------------------------------------------- */

#define NCALLS 500
#define NTHREADS 4

typedef struct {
    int seen[NTHREADS * NCALLS];
    int n;
    int off_thread;
    int canceled;
} order_t;

static order_t ord;

typedef struct {
    int tag;
    int seq;
} tagged_t;

static tagged_t tags[NTHREADS][NCALLS];

static void record(void *arg, int canceled)
{
    tagged_t *t = arg;
    /* Only the fetcher thread writes ord; the test reads it after a final
     * call signals. */
    if (!tg_fetcher_on_thread(F))
        ord.off_thread++;
    if (canceled)
        ord.canceled++;
    ord.seen[ord.n++] = t->tag * NCALLS + t->seq;
}

static int flag;

static void signal_flag(void *arg, int canceled)
{
    (void)arg;
    (void)canceled;
    pthread_mutex_lock(&mu);
    flag = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void wait_flag(void)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    pthread_mutex_lock(&mu);
    while (!flag && pthread_cond_timedwait(&cv, &mu, &dl) != ETIMEDOUT)
        ;
    int f = flag;
    flag = 0;
    pthread_mutex_unlock(&mu);
    cr_assert(f, "the final call did not run");
}

Test(fetch, calls_run_in_order)
{
    cr_expect_eq(tg_fetcher_on_thread(F), 0);
    for (int i = 0; i < NCALLS; i++) {
        tags[0][i] = (tagged_t){.tag = 0, .seq = i};
        cr_assert_eq(tg_fetcher_call(F, record, &tags[0][i]), 0);
    }
    cr_assert_eq(tg_fetcher_call(F, signal_flag, NULL), 0);
    wait_flag();
    cr_assert_eq(ord.n, NCALLS);
    for (int i = 0; i < NCALLS; i++)
        cr_expect_eq(ord.seen[i], i);
    cr_expect_eq(ord.off_thread, 0);
    cr_expect_eq(ord.canceled, 0);
    cr_expect_not_null(tg_fetcher_loop(F));
}

static void *poster(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < NCALLS; i++) {
        tags[t][i] = (tagged_t){.tag = t, .seq = i};
        if (tg_fetcher_call(F, record, &tags[t][i]) != 0)
            return (void *)1;
        if (i % 64 == 0)
            sched_yield();
    }
    return NULL;
}

Test(fetch, calls_from_other_threads)
{
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, poster, (void *)(intptr_t)t), 0);
    for (int t = 0; t < NTHREADS; t++) {
        void *r;
        pthread_join(th[t], &r);
        cr_expect_null(r);
    }
    cr_assert_eq(tg_fetcher_call(F, signal_flag, NULL), 0);
    wait_flag();
    cr_assert_eq(ord.n, NTHREADS * NCALLS);
    /* Each thread's calls in its own order. */
    int next[NTHREADS] = {0};
    for (int i = 0; i < ord.n; i++) {
        int t = ord.seen[i] / NCALLS, s = ord.seen[i] % NCALLS;
        cr_expect_eq(s, next[t], "thread %d: call %d ran before %d", t, s, next[t]);
        next[t] = s + 1;
    }
    cr_expect_eq(ord.off_thread, 0);
}

/* ---- shutdown with work in flight ------------------------------------------------- */

static struct {
    int a_running;
    int posted;       /* calls made by blocker that returned 0 */
    int final_rc;     /* the first tg_fetcher_call that failed */
    int ran_live;     /* posted calls run with canceled = 0 */
    int ran_canceled; /* ... with canceled = 1 */
    int start_rc_in_canceled;
    int fetch_started_in_cb;
} sd;

static job_t late_job; /* static: must a start wrongly succeed, the callback has a home */

static void late(void *arg, int canceled)
{
    (void)arg;
    /* The fetcher is stopping: starting anything must fail. */
    int rc = TG_ESTATE;
    if (canceled) {
        late_job.req.url = url("/etag");
        rc = tg_fetch_start(F, &late_job.req, on_done, &late_job);
    }
    pthread_mutex_lock(&mu);
    if (canceled)
        sd.ran_canceled++;
    else
        sd.ran_live++;
    if (rc != TG_ESTATE)
        sd.start_rc_in_canceled = rc == 0 ? 1 : rc;
    pthread_mutex_unlock(&mu);
}

/* Holds the loop, posting calls, until tg_fetcher_free (on the test thread)
 * makes posting fail: the calls posted meanwhile cannot have run. */
static void blocker(void *arg, int canceled)
{
    (void)arg;
    (void)canceled;
    int rc = tg_fetcher_call(F, late, NULL);
    pthread_mutex_lock(&mu);
    sd.posted += rc == 0;
    sd.a_running = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; rc == 0 && i < 4000; i++) {
        usleep(1000);
        rc = tg_fetcher_call(F, late, NULL);
        pthread_mutex_lock(&mu);
        sd.posted += rc == 0;
        pthread_mutex_unlock(&mu);
    }
    pthread_mutex_lock(&mu);
    sd.final_rc = rc;
    pthread_mutex_unlock(&mu);
}

static void on_canceled(void *arg, tg_fetch_res_t *res)
{
    on_done(arg, res);
    /* Starting a fetch from a canceled callback fails. */
    late_job.req.url = url("/etag");
    if (tg_fetch_start(F, &late_job.req, on_done, &late_job) != TG_ESTATE) {
        pthread_mutex_lock(&mu);
        sd.fetch_started_in_cb = 1;
        pthread_mutex_unlock(&mu);
    }
}

static void start_cancelable(void *arg, int canceled)
{
    start_with(arg, canceled, on_canceled);
}

Test(fetch, free_with_fetches_in_flight)
{
    job_t js[3];
    memset(js, 0, sizeof(js));
    for (int i = 0; i < 3; i++) {
        js[i].req.url = url("/stall");
        js[i].req.timeout_ms = 10000;
        cr_assert_eq(tg_fetcher_call(F, start_cancelable, &js[i]), 0);
    }
    /* Wait until the server holds all three. */
    for (int i = 0; i < 300 && atomic_load(&S.stalls) < 3; i++)
        usleep(10000);
    cr_assert_eq(atomic_load(&S.stalls), 3);

    cr_assert_eq(tg_fetcher_call(F, blocker, NULL), 0);
    pthread_mutex_lock(&mu);
    while (!sd.a_running)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);

    tg_fetcher_free(F);
    F = NULL;

    /* Everything ran on the fetcher thread before tg_fetcher_free returned. */
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(js[i].start_rc, 0);
        cr_expect(js[i].done);
        cr_expect_eq(js[i].res.rc, TG_ESTATE);
        cr_expect_str_eq(js[i].res.reason, "canceled");
        cr_expect(strstr(js[i].res.err, "canceled") != NULL, "%s", js[i].res.err);
        cr_expect(js[i].cb_on_thread);
        job_free(&js[i]);
    }
    cr_expect_eq(sd.final_rc, TG_ESTATE);
    cr_expect_geq(sd.posted, 1);
    cr_expect_eq(sd.ran_canceled, sd.posted);
    cr_expect_eq(sd.ran_live, 0);
    cr_expect_eq(sd.start_rc_in_canceled, 0);
    cr_expect_eq(sd.fetch_started_in_cb, 0);
}

Test(fetch, free_null_and_idle)
{
    tg_fetcher_free(NULL);
    tg_fetcher_t *g = NULL;
    cr_assert_eq(tg_fetcher_new(&g), 0);
    cr_expect_eq(tg_fetcher_on_thread(g), 0);
    tg_fetcher_free(g);
    cr_expect_str_eq(tg_fetch_reason_name(TG_FETCH_CANCELED), "canceled");
    cr_expect_str_eq(tg_fetch_reason_name(TG_FETCH_REASON_COUNT), "other");
}
