/* The HTTP layer's limits and framing, against a real server running in
 * this process on a loopback port: 413, 408, idle timeout, pipelining order,
 * Connection: close, 100-continue, max_connections. */
#include "common/log.h"
#include "config/config.h"
#include "pki/ocsp.h"
#include "responder/server.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static tg_server_t *srv;
static char tmpdir[64];
static pthread_t srv_thread;
static int port;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void *run_server(void *arg)
{
    (void)arg;
    int rc = tg_server_run(srv);
    return (void *)(intptr_t)rc;
}

static void start_server(const char *extra)
{
    signal(SIGPIPE, SIG_IGN);
    tg_log_set_level(TG_LOG_ERROR);
    cr_assert(tg_ocsp_init() == 0);
    port = free_port();
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tg-http-limits.XXXXXX");
    cr_assert(mkdtemp(tmpdir) != NULL);
    char ini[1024];
    snprintf(ini, sizeof(ini),
             "[server]\nlisten = 127.0.0.1:%d\nworkers = 1\nmax_request_bytes = 2048\n"
             "header_timeout_ms = 300\nidle_timeout_ms = 400\nlog_level = error\n"
             "admin_socket = %s/admin.sock\n%s[cache]\npath = %s/cache\nmap_size_mb = 16\n",
             port, tmpdir, extra ? extra : "", tmpdir);
    tg_config_t *cfg = NULL;
    cr_assert(tg_config_load_string("/tmp/test-http-limits.ini", ini, &cfg) == 0);
    cr_assert(tg_server_new(cfg, NULL, &srv) == 0);
    cr_assert(pthread_create(&srv_thread, NULL, run_server, NULL) == 0);
}

static void stop_server(void)
{
    void *rc;
    tg_server_request_stop(srv);
    pthread_join(srv_thread, &rc);
    cr_expect((intptr_t)rc == 0);
    tg_server_free(srv); /* removes the admin socket */
    srv = NULL;
    char p[128];
    const char *files[] = {"cache/data.mdb", "cache/lock.mdb", "cache"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", tmpdir, files[i]);
        (void)remove(p);
    }
    cr_expect(rmdir(tmpdir) == 0, "%s not empty after the server stopped", tmpdir);
}

static void setup(void)
{
    start_server(NULL);
}

static int connect_server(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < 200; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            return fd;
        close(fd);
        usleep(10000); /* the server thread may still be starting */
    }
    cr_assert_fail("cannot connect to 127.0.0.1:%d", port);
    return -1;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the server may close early, e.g. after a 413 */
        p += w;
        n -= (size_t)w;
    }
}

/* Reads until the peer closes, want bytes containing `until` arrived, or
 * timeout_ms passes. Returns the bytes (NUL-terminated, caller frees) and
 * sets *closed when the peer closed. */
static char *recv_until(int fd, const char *until, int timeout_ms, int *closed)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    *closed = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        buf[len] = '\0';
        if (until && strstr(buf, until))
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        long el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (el >= timeout_ms)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(timeout_ms - el)) <= 0)
            break;
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0) {
            *closed = 1;
            break;
        }
        len += (size_t)r;
        if (len == cap)
            break;
    }
    buf[len] = '\0';
    return buf;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

TestSuite(http_limits, .init = setup, .fini = stop_server);

Test(http_limits, pipelined_requests_are_answered_in_order)
{
    int fd = connect_server();
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, req, sizeof(req) - 1);
    int closed;
    char *r = recv_until(fd, "\"ready\":false", 2000, &closed);
    cr_assert_eq(count(r, "HTTP/1.1 "), 3, "got: %s", r);
    char *a = strstr(r, "200 OK"), *b = strstr(r, "404 Not Found"), *c = strstr(r, "503 Service");
    cr_assert(a && b && c && a < b && b < c, "answers out of order: %s", r);
    cr_assert_not(closed, "keep-alive connection was closed");
    free(r);
    close(fd);
}

Test(http_limits, connection_close_is_honoured)
{
    int fd = connect_server();
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                       "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, req, sizeof(req) - 1);
    int closed;
    char *r = recv_until(fd, NULL, 2000, &closed);
    cr_assert(closed, "server kept the connection open");
    cr_assert_eq(count(r, "HTTP/1.1 200"), 1, "got: %s", r);
    cr_assert(strstr(r, "Connection: close\r\n"), "got: %s", r);
    free(r);
    close(fd);
}

Test(http_limits, http10_without_keepalive_closes)
{
    int fd = connect_server();
    const char req[] = "GET /healthz HTTP/1.0\r\n\r\n";
    send_all(fd, req, sizeof(req) - 1);
    int closed;
    char *r = recv_until(fd, NULL, 2000, &closed);
    cr_assert(closed);
    cr_assert(strstr(r, "HTTP/1.1 200 OK"), "got: %s", r);
    free(r);
    close(fd);
}

Test(http_limits, oversized_body_gets_413_and_close)
{
    int fd = connect_server();
    const char req[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
    send_all(fd, req, sizeof(req) - 1);
    int closed;
    char *r = recv_until(fd, NULL, 2500, &closed);
    cr_assert(strstr(r, "HTTP/1.1 413 "), "got: %s", r);
    cr_assert(closed, "connection left open after 413");
    free(r);
    close(fd);
}

Test(http_limits, oversized_headers_get_413)
{
    int fd = connect_server();
    char big[4096];
    int n = snprintf(big, sizeof(big), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    memset(big + n, 'a', sizeof(big) - (size_t)n);
    send_all(fd, big, sizeof(big));
    send_all(fd, "\r\n\r\n", 4);
    int closed;
    char *r = recv_until(fd, NULL, 2500, &closed);
    cr_assert(strstr(r, "HTTP/1.1 413 "), "got: %s", r);
    cr_assert(closed);
    free(r);
    close(fd);
}

Test(http_limits, chunked_body_over_limit_gets_413)
{
    int fd = connect_server();
    const char head[] = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    send_all(fd, head, sizeof(head) - 1);
    char chunk[1100];
    int n = snprintf(chunk, sizeof(chunk), "400\r\n");
    memset(chunk + n, 'z', 0x400);
    memcpy(chunk + n + 0x400, "\r\n", 2);
    for (int i = 0; i < 3; i++)
        send_all(fd, chunk, (size_t)n + 0x400 + 2);
    int closed;
    char *r = recv_until(fd, NULL, 2500, &closed);
    cr_assert(strstr(r, "HTTP/1.1 413 "), "got: %s", r);
    free(r);
    close(fd);
}

Test(http_limits, slow_headers_get_408)
{
    int fd = connect_server();
    send_all(fd, "GET /hea", 8);
    int closed;
    char *r = recv_until(fd, NULL, 2000, &closed);
    cr_assert(strstr(r, "HTTP/1.1 408 "), "got: %s", r);
    cr_assert(closed);
    free(r);
    close(fd);
}

Test(http_limits, idle_keepalive_connection_is_closed)
{
    int fd = connect_server();
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, req, sizeof(req) - 1);
    int closed;
    char *r = recv_until(fd, "ok\n", 1000, &closed);
    cr_assert(strstr(r, "200 OK") && !closed);
    free(r);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = recv_until(fd, NULL, 3000, &closed);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_assert(closed, "idle connection not closed");
    cr_assert(ms >= 300 && ms < 2000, "closed after %ld ms, want about 400", ms);
    free(r);
    close(fd);
}

Test(http_limits, garbage_gets_400)
{
    int fd = connect_server();
    send_all(fd, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15);
    int closed;
    char *r = recv_until(fd, NULL, 2000, &closed);
    cr_assert(strstr(r, "HTTP/1.1 400 "), "got: %s", r);
    cr_assert(closed);
    free(r);
    close(fd);
}

Test(http_limits, expect_100_continue)
{
    int fd = connect_server();
    const char head[] = "POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                        "Expect: 100-continue\r\n\r\n";
    send_all(fd, head, sizeof(head) - 1);
    int closed;
    char *r = recv_until(fd, "\r\n\r\n", 1000, &closed);
    cr_assert(strncmp(r, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0, "got: %s", r);
    free(r);
    send_all(fd, "\x30\x00", 2);
    r = recv_until(fd, "\x30\x03\x0a\x01\x01", 1000, &closed);
    cr_assert(strstr(r, "application/ocsp-response"), "got: %s", r);
    free(r);
    close(fd);
}

Test(http_limits, head_has_no_body)
{
    int fd = connect_server();
    const char req[] = "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, req, sizeof(req) - 1);
    int closed;
    char *r = recv_until(fd, "ok\n", 1000, &closed);
    cr_assert_eq(count(r, "Content-Length: 3"), 2, "got: %s", r);
    cr_assert_eq(count(r, "ok\n"), 1, "HEAD carried a body: %s", r);
    free(r);
    close(fd);
}

Test(http_limits, wrong_method_gets_405_with_allow)
{
    int fd = connect_server();
    const char req[] = "DELETE /ocsp HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, req, sizeof(req) - 1);
    int closed;
    char *r = recv_until(fd, "allowed\n", 1000, &closed);
    cr_assert(strstr(r, "HTTP/1.1 405 "), "got: %s", r);
    cr_assert(strstr(r, "Allow: GET, HEAD, POST\r\n"), "got: %s", r);
    free(r);
    close(fd);
}

static void setup_two_conns(void)
{
    start_server("max_connections = 2\n");
}

Test(http_limits_maxconn, third_connection_is_refused, .init = setup_two_conns, .fini = stop_server)
{
    int a = connect_server(), b = connect_server();
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    int closed;
    send_all(a, req, sizeof(req) - 1);
    send_all(b, req, sizeof(req) - 1);
    free(recv_until(a, "ok\n", 1000, &closed));
    free(recv_until(b, "ok\n", 1000, &closed));
    int c = connect_server();
    send_all(c, req, sizeof(req) - 1);
    char *r = recv_until(c, NULL, 1000, &closed);
    cr_assert(closed && strstr(r, "200 OK") == NULL, "third connection was served: %s", r);
    free(r);
    close(a);
    close(b);
    close(c);
}

Test(http_limits, long_header_name_split_across_reads)
{
    /* a header name longer than the parser keeps, arriving in two reads,
     * once overflowed the name buffer */
    int fd = connect_server();
    char part1[64], part2[1200];
    int n = snprintf(part1, sizeof(part1), "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    memset(part1 + n, 'A', sizeof(part1) - (size_t)n);
    send_all(fd, part1, sizeof(part1));
    usleep(100000);
    memset(part2, 'B', sizeof(part2));
    send_all(fd, part2, sizeof(part2));
    send_all(fd, ": v\r\n\r\n", 7);
    int closed;
    char *r = recv_until(fd, "ok\n", 2000, &closed);
    cr_assert(strstr(r, "HTTP/1.1 200 OK"), "got: %s", r);
    free(r);
    close(fd);
}

Test(http_limits, oversized_content_length_gets_exactly_one_answer)
{
    int fd = connect_server();
    const char req[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
    send_all(fd, req, sizeof(req) - 1);
    int closed;
    char *r = recv_until(fd, NULL, 2500, &closed);
    cr_assert_eq(count(r, "HTTP/1.1 "), 1, "got: %s", r);
    cr_assert(strstr(r, "HTTP/1.1 413 "), "got: %s", r);
    free(r);
    close(fd);
}

Test(http_limits, expect_continue_then_reset_does_not_crash)
{
    /* the 100 Continue write fails when the client has already reset: the
     * connection must close once, outside the parser */
    for (int i = 0; i < 100; i++) {
        int fd = connect_server();
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        const char req[] = "POST /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                           "Content-Length: 1\r\n\r\nA";
        send_all(fd, req, sizeof(req) - 1);
        close(fd);
    }
    int fd = connect_server();
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, req, sizeof(req) - 1);
    int closed;
    char *r = recv_until(fd, "ok\n", 2000, &closed);
    cr_assert(strstr(r, "HTTP/1.1 200 OK"), "server gone after resets: %s", r);
    free(r);
    close(fd);
}

Test(http_limits, long_pipeline_is_answered_in_full_and_in_order)
{
    /* thousands of pipelined requests in a few reads: parsing pauses while
     * output waits (bounded memory) and resumes as the client reads */
    enum { N = 3000 };
    int fd = connect_server();
    static char reqs[N * 40];
    size_t len = 0;
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(reqs + len, sizeof(reqs) - len, "GET /%s HTTP/1.1\r\n\r\n",
                                i % 2 ? "healthz" : "nope!");
    send_all(fd, reqs, len);
    size_t cap = (size_t)N * 400, got = 0;
    char *buf = malloc(cap + 1);
    int oks = 0, notfound = 0;
    for (int spins = 0; spins < 400 && oks + notfound < N; spins++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = recv(fd, buf + got, cap - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
        oks = count(buf, "HTTP/1.1 200 OK");
        notfound = count(buf, "HTTP/1.1 404 ");
    }
    cr_assert_eq(oks, N / 2);
    cr_assert_eq(notfound, N / 2);
    /* order: 404, 200, 404, 200, ... */
    char *p = buf;
    for (int i = 0; i < N; i++) {
        char *next = strstr(p, "HTTP/1.1 ");
        cr_assert_not_null(next);
        cr_assert(strncmp(next + 9, i % 2 ? "200" : "404", 3) == 0, "answer %d out of order", i);
        p = next + 9;
    }
    free(buf);
    close(fd);
}
