/* ocsp_poll: measures how long a status change takes to reach clients.
 *
 *   ocsp_poll HOST PORT REQUEST_DER WANT START_NS TIMEOUT_MS
 *
 * Sends the OCSP request (POST, keep-alive) again and again until the
 * answer's first SingleResponse has the wanted status (good, revoked,
 * unknown, or an OCSPResponseStatus name such as unauthorized), then prints
 * the milliseconds since START_NS (CLOCK_REALTIME nanoseconds, taken by the
 * caller just before it made the change) and exits 0. With START_NS 0 it
 * prints the CLOCK_REALTIME nanoseconds of the detection instead, so a
 * caller can start polling before the change and subtract later. Exits 1 on
 * timeout, 2 on errors. Signatures are not checked here: other tests do. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ocsp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int connect_to(const char *host, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Reads one HTTP response with Content-Length; returns the body length in
 * *out_len (body at *out_body inside buf) or -1. */
static int read_response(int fd, unsigned char *buf, size_t cap, unsigned char **out_body,
                         size_t *out_len)
{
    size_t len = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len < cap ? len : cap - 1] = 0;
        char *end = strstr((char *)buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        char *cl = strcasestr((char *)buf, "\r\nContent-Length:");
        if (cl == NULL || cl > end)
            return -1;
        size_t body = (size_t)strtoul(cl + 17, NULL, 10);
        size_t head = (size_t)(end + 4 - (char *)buf);
        while (len < head + body) {
            r = recv(fd, buf + len, cap - len, 0);
            if (r <= 0)
                return -1;
            len += (size_t)r;
        }
        *out_body = buf + head;
        *out_len = body;
        return 0;
    }
}

static const char *status_of(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    if (resp == NULL)
        return "garbage";
    int st = OCSP_response_status(resp);
    const char *out = OCSP_response_status_str(st);
    if (st == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
        OCSP_SINGLERESP *one = bs ? OCSP_resp_get0(bs, 0) : NULL;
        int reason = -1;
        int cs = one ? OCSP_single_get0_status(one, &reason, NULL, NULL, NULL) : -1;
        out = cs >= 0 ? OCSP_cert_status_str(cs) : "garbage";
        OCSP_BASICRESP_free(bs);
    }
    OCSP_RESPONSE_free(resp);
    return out;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: ocsp_poll HOST PORT REQUEST_DER WANT START_NS TIMEOUT_MS\n");
        return 2;
    }
    FILE *f = fopen(argv[3], "rb");
    if (f == NULL)
        return 2;
    unsigned char req[8192];
    size_t req_len = fread(req, 1, sizeof(req), f);
    fclose(f);
    long long start = atoll(argv[5]);
    long long deadline = now_ns() + atoll(argv[6]) * 1000000LL;
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/ocsp-request\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      argv[1], req_len);
    static unsigned char buf[1 << 16];
    int fd = -1;
    const char *last = "none";
    while (now_ns() < deadline) {
        if (fd < 0 && (fd = connect_to(argv[1], atoi(argv[2]))) < 0) {
            usleep(1000);
            continue;
        }
        unsigned char *body;
        size_t body_len;
        if (send(fd, head, (size_t)hl, MSG_NOSIGNAL) != hl ||
            send(fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len ||
            read_response(fd, buf, sizeof(buf), &body, &body_len) != 0) {
            close(fd);
            fd = -1;
            continue;
        }
        last = status_of(body, body_len);
        if (strcmp(last, argv[4]) == 0) {
            if (start == 0)
                printf("%lld\n", now_ns());
            else
                printf("%.3f\n", (double)(now_ns() - start) / 1e6);
            close(fd);
            return 0;
        }
    }
    fprintf(stderr, "ocsp_poll: still '%s' after %s ms (wanted '%s')\n", last, argv[6], argv[4]);
    if (fd >= 0)
        close(fd);
    return 1;
}
