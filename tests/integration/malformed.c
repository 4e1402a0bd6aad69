/* malformed: throws bad input at a running trustgate over loopback and checks
 * that every answer is a sane HTTP response or a closed connection, never a
 * hang or a refused connection (SPEC §5: "the server never crashes or leaks
 * on bad input").
 *
 * usage: malformed HOST PORT COUNT SEED
 *
 * Sends at least COUNT inputs over up to 20 parallel non-blocking
 * connections driven by poll(): fixed cases first (every truncation of two
 * real DER OCSP requests by POST and GET, huge DER lengths, limit breakers,
 * bogus chunked bodies, bad percent escapes, slow-loris, empty connections),
 * then seeded random ones. Each case carries its expectation:
 *
 *   - bad OCSP data in a well-formed HTTP request: 200 with the unsigned
 *     malformedRequest OCSPResponse, exactly 30 03 0a 01 01 (RFC 6960 §4.2.1);
 *   - anything else: a parseable HTTP/1.x response whose status is one of
 *     200 400 404 405 408 413 414 431, or the server closing the connection;
 *   - never: no answer and no close within 10 s, or a refused connection.
 *
 * At the end a valid request by POST and by GET must still get
 * `unauthorized` (30 03 0a 01 06: no trust list configured) and /healthz
 * must answer 200. Prints "malformed: sent N, ok N, failed N"; exits 1 when
 * anything failed. The whole run is bounded to about 55 s. */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#define N_SLOTS 20           /* parallel connections (16 + room for slow-loris) */
#define HANG_S 10.0          /* no progress for this long is a hang */
#define LAUNCH_BUDGET_S 35.0 /* stop starting new cases after this */
#define HARD_BUDGET_S 47.0   /* give up on the cases after this */
#define TOTAL_BUDGET_S 57.0  /* the final checks end by then */
#define MAX_HANGS 40         /* a server this stuck gets no more cases */
#define CLOSE_AFTER_S 5.0    /* 408/413/4xx parse errors must close within this */
#define MAX_RX (1024 * 1024) /* more than this from one answer is a failure */
#define DRIP_MS 100          /* slow-loris: one byte per 100 ms */
#define MAX_REPORTED 12      /* failures printed in detail */

static const unsigned char MALFORMED[] = {0x30, 0x03, 0x0a, 0x01, 0x01};
static const unsigned char UNAUTHORIZED[] = {0x30, 0x03, 0x0a, 0x01, 0x06};

/* What a case must get back. */
typedef enum {
    E_NONE,        /* we close right after sending; only connect() must work */
    E_GENERIC,     /* allowed status (any body) or close */
    E_MALFORMED,   /* 200 + malformedRequest, nothing else */
    E_OCSP,        /* 200 + malformedRequest or unauthorized */
    E_MALF_OR_400, /* 200 + malformedRequest, or 400, or close */
    E_ERR,         /* 400/413/414/431 or close; never 200 */
    E_TOOBIG,      /* 400/413/414/431 or close, then close */
    E_413,         /* 413, then close */
    E_408,         /* 408, then close */
    E_UNAUTH,      /* 200 + unauthorized (final checks) */
    E_OK200,       /* 200, any body (final checks) */
} expect_t;

typedef struct {
    unsigned char *p;
    size_t len;
    size_t cap;
} buf_t;

typedef struct {
    char desc[96];
    buf_t data;    /* bytes to send */
    int drip;      /* slow-loris: send one byte per DRIP_MS, forever */
    int shut_wr;   /* shutdown(SHUT_WR) once everything is sent */
    int abort_rst; /* close with SO_LINGER 0 (RST) when done */
    expect_t expect;
    int n_resp; /* responses expected (pipelining) */
} mcase_t;

typedef enum { S_FREE, S_CONNECTING, S_ACTIVE, S_WAIT_CLOSE } slot_state_t;

typedef struct {
    slot_state_t state;
    int fd;
    mcase_t c;
    size_t sent;
    int wr_shut;
    buf_t rx;
    int got; /* responses parsed so far */
    double start;
    double last_progress;
    double next_drip;
    double close_deadline;
} slot_t;

typedef struct {
    int status;
    int close_hdr; /* Connection: close */
    const unsigned char *body;
    size_t body_len;
    size_t consumed;
} resp_t;

static struct sockaddr_storage g_addr;
static socklen_t g_addr_len;
static unsigned long long g_seed;
static buf_t g_der[2]; /* two valid DER OCSP requests */
static unsigned long g_sent, g_ok, g_failed, g_reported, g_hangs;
static double g_t0;

/* ---------- small helpers ---------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "malformed: fatal: %s\n", what);
    exit(2);
}

static void buf_reserve(buf_t *b, size_t extra)
{
    if (b->len + extra <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) {
        cap *= 2;
    }
    unsigned char *p = realloc(b->p, cap);
    if (p == NULL) {
        die("out of memory");
    }
    b->p = p;
    b->cap = cap;
}

static void buf_put(buf_t *b, const void *p, size_t n)
{
    buf_reserve(b, n + 1);
    if (n > 0) {
        memcpy(b->p + b->len, p, n);
    }
    b->len += n;
}

static void buf_str(buf_t *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static void buf_byte(buf_t *b, unsigned char c)
{
    buf_put(b, &c, 1);
}

__attribute__((format(printf, 2, 3))) static void buf_fmt(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        die("vsnprintf");
    }
    buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void buf_free(buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* splitmix64: small, seedable, good enough for test input. */
typedef struct {
    unsigned long long s;
} rng_t;

static unsigned long long rng_next(rng_t *r)
{
    unsigned long long z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t rng_below(rng_t *r, size_t n)
{
    return n ? (size_t)(rng_next(r) % n) : 0;
}

static void rng_bytes(rng_t *r, buf_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        buf_byte(b, (unsigned char)rng_next(r));
    }
}

static void b64(buf_t *out, const unsigned char *p, size_t n)
{
    buf_reserve(out, 4 * ((n + 2) / 3) + 1);
    int k = EVP_EncodeBlock(out->p + out->len, p, (int)n);
    out->len += (size_t)k;
}

/* Appends base64 of p with '+', '/' and '=' percent-encoded (RFC 5019 §5). */
static void b64_pct(buf_t *out, const unsigned char *p, size_t n)
{
    buf_t t = {0};
    b64(&t, p, n);
    for (size_t i = 0; i < t.len; i++) {
        switch (t.p[i]) {
        case '+': buf_str(out, "%2B"); break;
        case '/': buf_str(out, "%2F"); break;
        case '=': buf_str(out, "%3D"); break;
        default: buf_byte(out, t.p[i]);
        }
    }
    buf_free(&t);
}

static void hexdump(FILE *f, const unsigned char *p, size_t n, size_t max)
{
    for (size_t i = 0; i < n && i < max; i++) {
        fprintf(f, "%02x%s", p[i], i + 1 < n && i + 1 < max ? " " : "");
    }
    if (n > max) {
        fprintf(f, " ...(%zu bytes)", n);
    }
}

/* ---------- the valid requests ---------- */

/* A self-signed P-256 certificate, and from it one OCSPRequest per digest:
 * a SHA-1 CertID without nonce and a SHA-256 CertID with a nonce. */
static void build_valid_requests(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();
    if (key == NULL || cert == NULL || name == NULL) {
        die("openssl setup");
    }
    if (!X509_set_version(cert, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"malformed test CA", -1, -1, 0) ||
        !X509_set_subject_name(cert, name) || !X509_set_issuer_name(cert, name) ||
        X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(cert), 86400) == NULL || !X509_set_pubkey(cert, key) ||
        !X509_sign(cert, key, EVP_sha256())) {
        die("building the test certificate");
    }
    const EVP_MD *mds[2] = {EVP_sha1(), EVP_sha256()};
    for (int i = 0; i < 2; i++) {
        OCSP_REQUEST *req = OCSP_REQUEST_new();
        OCSP_CERTID *id = OCSP_cert_to_id(mds[i], cert, cert);
        if (req == NULL || id == NULL || OCSP_request_add0_id(req, id) == NULL) {
            die("building the OCSP request");
        }
        if (i == 1 && !OCSP_request_add1_nonce(req, NULL, 16)) {
            die("adding the nonce");
        }
        unsigned char *der = NULL;
        int n = i2d_OCSP_REQUEST(req, &der);
        if (n <= 0) {
            die("i2d_OCSP_REQUEST");
        }
        buf_put(&g_der[i], der, (size_t)n);
        OPENSSL_free(der);
        OCSP_REQUEST_free(req);
    }
    X509_NAME_free(name);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* ---------- request builders ---------- */

static void http_post(buf_t *b, const char *path, const unsigned char *body, size_t n,
                      const char *ctype)
{
    buf_fmt(b, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", path);
    if (ctype != NULL) {
        buf_fmt(b, "Content-Type: %s\r\n", ctype);
    }
    buf_fmt(b, "Content-Length: %zu\r\n\r\n", n);
    buf_put(b, body, n);
}

static void http_get(buf_t *b, const char *prefix, const unsigned char *target, size_t n)
{
    buf_fmt(b, "GET %s", prefix);
    buf_put(b, target, n);
    buf_str(b, " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
}

static const char *const CTYPES[] = {"application/ocsp-request", "application/octet-stream",
                                     "text/plain", NULL, "application/ocsp-request; charset=x"};

static void post_ocsp(buf_t *b, rng_t *r, const unsigned char *body, size_t n)
{
    http_post(b, rng_below(r, 2) ? "/ocsp" : "/", body, n, CTYPES[rng_below(r, 5)]);
}

/* DER prefixes with absurd or invalid lengths. */
static const struct {
    const char *name;
    unsigned char b[12];
    size_t n;
} HUGE_LENS[] = {
    {"30 84 7fffffff", {0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}, 6},
    {"30 84 ffffffff", {0x30, 0x84, 0xff, 0xff, 0xff, 0xff}, 6},
    {"30 88 7fff...", {0x30, 0x88, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 10},
    {"30 89 ...", {0x30, 0x89, 0x01, 0, 0, 0, 0, 0, 0, 0, 0}, 11},
    {"30 8f", {0x30, 0x8f}, 2},
    {"30 80 (BER indefinite)", {0x30, 0x80, 0x30, 0x80, 0x00, 0x00, 0x00, 0x00}, 8},
    {"30 81 05 (non-minimal)", {0x30, 0x81, 0x05, 0x30, 0x03, 0x30, 0x01, 0x00}, 8},
    {"30 82 ffff", {0x30, 0x82, 0xff, 0xff}, 4},
    {"30 ff", {0x30, 0xff}, 2},
    {"nested 30 06 30 84 7fffffff", {0x30, 0x06, 0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}, 8},
    {"30 00", {0x30, 0x00}, 2},
    {"30 03 30 01 00", {0x30, 0x03, 0x30, 0x01, 0x00}, 5},
    {"02 01 00", {0x02, 0x01, 0x00}, 3},
    {"1f ff ff ff ff (high tag)", {0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00}, 7},
    {"00 00", {0x00, 0x00}, 2},
    {"30 01", {0x30, 0x01}, 2},
};
#define N_HUGE (sizeof(HUGE_LENS) / sizeof(HUGE_LENS[0]))

/* Bad percent escapes and bad base64 after /ocsp/. */
static const char *const BAD_PCT[] = {
    "%zz",     "MEIw%",      "MEIw%4", "%G0MEIw",      "ME%0",   "%%%%",
    "MEIw%00", "%u0041MEIw", "MA%3",   "MA%3d%3d%3D%", "%ff%fe", "%2",
};
#define N_BAD_PCT (sizeof(BAD_PCT) / sizeof(BAD_PCT[0]))

static const char *const BAD_B64[] = {
    "!!!!",  "MA==MA==", "MA=",      "M",        "MA===", "====",  "MEIw!A==",
    "****",  "MEIw.QQ",  "MA==x",    "~~~~",     "A",     "AB",    "ABC",
    "ABCDE", "MA=A",     "$$$$",     "MEIw;QQ=", "M%3DA", "MEIw,", "@@@@",
    "()()",  "'''",      "MEIwQDA+", "AAAA",     "////",  "++++",  "MAAA",
};
#define N_BAD_B64 (sizeof(BAD_B64) / sizeof(BAD_B64[0]))

/* Limit breakers and protocol oddities that must not be answered 200. */
static void limit_case(size_t k, mcase_t *c)
{
    buf_t *b = &c->data;
    c->expect = E_ERR;
    switch (k) {
    case 0:
        snprintf(c->desc, sizeof(c->desc), "Content-Length 100000000, no body");
        buf_str(b, "POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
                   "Content-Length: 100000000\r\n\r\n");
        c->expect = E_413;
        break;
    case 1:
        snprintf(c->desc, sizeof(c->desc), "Content-Length 2^31, some body");
        buf_str(b, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2147483648\r\n\r\n0123456789");
        c->expect = E_413;
        break;
    case 2:
        snprintf(c->desc, sizeof(c->desc), "Content-Length overflows 64 bits");
        buf_str(b, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n");
        break;
    case 3:
        snprintf(c->desc, sizeof(c->desc), "Content-Length -1");
        buf_str(b, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n0");
        break;
    case 4:
        snprintf(c->desc, sizeof(c->desc), "two different Content-Length");
        buf_str(b, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n"
                   "0\x00\x01");
        break;
    case 5:
        snprintf(c->desc, sizeof(c->desc), "Content-Length not a number");
        buf_str(b, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n0");
        break;
    case 6:
        snprintf(c->desc, sizeof(c->desc), "one 64 KiB header");
        buf_str(b, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
        for (int i = 0; i < 65536; i++) {
            buf_byte(b, 'a');
        }
        buf_str(b, "\r\n\r\n");
        c->expect = E_TOOBIG;
        break;
    case 7:
        snprintf(c->desc, sizeof(c->desc), "4000 small headers");
        buf_str(b, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
        for (int i = 0; i < 4000; i++) {
            buf_fmt(b, "X-H%d: v\r\n", i);
        }
        buf_str(b, "\r\n");
        c->expect = E_TOOBIG;
        break;
    case 8:
        snprintf(c->desc, sizeof(c->desc), "70 KiB request-target");
        buf_str(b, "GET /ocsp/");
        for (int i = 0; i < 70000; i++) {
            buf_byte(b, 'A');
        }
        buf_str(b, " HTTP/1.1\r\nHost: x\r\n\r\n");
        c->expect = E_TOOBIG;
        break;
    case 9:
        snprintf(c->desc, sizeof(c->desc), "64 KiB POST body (over max_request_bytes)");
        buf_str(b, "POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n");
        for (int i = 0; i < 65536; i++) {
            buf_byte(b, 0x30);
        }
        c->expect = E_TOOBIG;
        break;
    case 10:
        snprintf(c->desc, sizeof(c->desc), "header line without colon");
        buf_str(b, "GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n");
        break;
    case 11:
        snprintf(c->desc, sizeof(c->desc), "NUL in header value");
        buf_put(b, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 44);
        break;
    case 12:
        snprintf(c->desc, sizeof(c->desc), "space before colon");
        buf_str(b, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n30000");
        break;
    case 13:
        snprintf(c->desc, sizeof(c->desc), "chunk size 2^64");
        buf_str(b, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "10000000000000000\r\n0\r\n\r\n");
        break;
    case 14:
        snprintf(c->desc, sizeof(c->desc), "chunk size 100 MB");
        buf_str(b, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5F5E100\r\n0123456789");
        c->shut_wr = 1;
        break;
    case 15:
        snprintf(c->desc, sizeof(c->desc), "chunked body over the limit");
        buf_str(b, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (int i = 0; i < 40; i++) {
            buf_str(b, "400\r\n");
            for (int j = 0; j < 1024; j++) {
                buf_byte(b, 0x30);
            }
            buf_str(b, "\r\n");
        }
        buf_str(b, "0\r\n\r\n");
        c->expect = E_TOOBIG;
        break;
    case 16:
        snprintf(c->desc, sizeof(c->desc), "bad chunk size 'zz'");
        buf_str(b,
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n00\r\n0\r\n"
                "\r\n");
        break;
    case 17:
        snprintf(c->desc, sizeof(c->desc), "chunk without CRLF after data");
        buf_str(b, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n0000XX"
                   "0\r\n\r\n");
        break;
    case 18:
        snprintf(c->desc, sizeof(c->desc), "Transfer-Encoding: gzip, chunked");
        buf_str(b, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                   "2\r\n30\r\n0\r\n\r\n");
        c->expect = E_GENERIC; /* 400 or 415-less rejection; or decoded */
        c->shut_wr = 1;
        break;
    case 19:
        snprintf(c->desc, sizeof(c->desc), "Transfer-Encoding: identity");
        buf_str(b, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n30\r\n\r\n");
        c->expect = E_GENERIC;
        c->shut_wr = 1;
        break;
    case 20:
        snprintf(c->desc, sizeof(c->desc), "HTTP/2 preface");
        buf_str(b, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        c->expect = E_GENERIC;
        c->shut_wr = 1;
        break;
    case 21: {
        snprintf(c->desc, sizeof(c->desc), "TLS ClientHello");
        static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00,
                                              0x2b, 0x03, 0x03, 0x00, 0x01, 0x02, 0x03};
        buf_put(b, hello, sizeof(hello));
        c->expect = E_GENERIC;
        c->shut_wr = 1;
        break;
    }
    case 22:
        snprintf(c->desc, sizeof(c->desc), "HTTP/9.9");
        buf_str(b, "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n");
        c->expect = E_GENERIC;
        c->shut_wr = 1;
        break;
    case 23:
        snprintf(c->desc, sizeof(c->desc), "obs-fold header continuation");
        buf_str(b, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n");
        c->expect = E_GENERIC;
        c->shut_wr = 1;
        break;
    case 24:
        snprintf(c->desc, sizeof(c->desc), "bare LF line endings");
        buf_str(b, "GET /healthz HTTP/1.1\nHost: x\n\n");
        c->expect = E_GENERIC;
        c->shut_wr = 1;
        break;
    case 25:
        snprintf(c->desc, sizeof(c->desc), "unknown method");
        buf_str(b, "BREW /ocsp HTTP/1.1\r\nHost: x\r\n\r\n");
        c->expect = E_GENERIC;
        c->shut_wr = 1;
        break;
    case 26:
        snprintf(c->desc, sizeof(c->desc), "Expect: 100-continue, huge body");
        buf_str(b, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                   "Content-Length: 50000000\r\n\r\n");
        c->expect = E_413;
        break;
    default: die("limit_case index");
    }
}
#define N_LIMIT 27

/* Random cases; r is seeded from (SEED, case index). */
static void random_case(rng_t *r, mcase_t *c)
{
    buf_t *b = &c->data;
    buf_t t = {0};
    int kind = (int)rng_below(r, 15);
    c->expect = E_MALFORMED;
    c->n_resp = 1;
    switch (kind) {
    case 0: /* random bytes as HTTP */
        snprintf(c->desc, sizeof(c->desc), "random bytes");
        rng_bytes(r, b, 1 + rng_below(r, 2048));
        c->expect = E_GENERIC;
        c->shut_wr = 1;
        break;
    case 1: { /* a real request with bytes of its head mutated */
        snprintf(c->desc, sizeof(c->desc), "mutated HTTP head");
        post_ocsp(b, r, g_der[0].p, g_der[0].len);
        size_t head = b->len - g_der[0].len;
        for (size_t n = 1 + rng_below(r, 4); n > 0; n--) {
            b->p[rng_below(r, head)] = (unsigned char)rng_next(r);
        }
        c->expect = E_GENERIC;
        c->shut_wr = 1;
        break;
    }
    case 2:
    case 3: /* valid HTTP, random body */
        snprintf(c->desc, sizeof(c->desc), "POST random body");
        rng_bytes(r, &t, rng_below(r, 4096));
        post_ocsp(b, r, t.p, t.len);
        break;
    case 4: { /* random body that starts like a SEQUENCE */
        snprintf(c->desc, sizeof(c->desc), "POST 30 LL random");
        size_t n = 2 + rng_below(r, 300);
        buf_byte(&t, 0x30);
        buf_byte(&t, (unsigned char)rng_below(r, 256));
        rng_bytes(r, &t, n - 2);
        post_ocsp(b, r, t.p, t.len);
        break;
    }
    case 5: { /* huge-length prefix + random tail */
        size_t h = rng_below(r, N_HUGE);
        snprintf(c->desc, sizeof(c->desc), "POST %s + random", HUGE_LENS[h].name);
        buf_put(&t, HUGE_LENS[h].b, HUGE_LENS[h].n);
        rng_bytes(r, &t, rng_below(r, 64));
        post_ocsp(b, r, t.p, t.len);
        break;
    }
    case 6: { /* real DER with flipped bytes: malformed or a good parse */
        const buf_t *d = &g_der[rng_below(r, 2)];
        snprintf(c->desc, sizeof(c->desc), "POST mutated DER");
        buf_put(&t, d->p, d->len);
        for (size_t n = 1 + rng_below(r, 3); n > 0; n--) {
            t.p[rng_below(r, t.len)] ^= (unsigned char)(1u << rng_below(r, 8));
        }
        post_ocsp(b, r, t.p, t.len);
        c->expect = E_OCSP;
        break;
    }
    case 7: { /* real DER + trailing garbage */
        const buf_t *d = &g_der[rng_below(r, 2)];
        snprintf(c->desc, sizeof(c->desc), "POST DER + trailing bytes");
        buf_put(&t, d->p, d->len);
        rng_bytes(r, &t, 1 + rng_below(r, 16));
        post_ocsp(b, r, t.p, t.len);
        break;
    }
    case 8: { /* GET of base64 of garbage */
        buf_t raw = {0};
        rng_bytes(r, &raw, 1 + rng_below(r, 200));
        int pct = (int)rng_below(r, 2);
        snprintf(c->desc, sizeof(c->desc), "GET /ocsp/ base64 of random (%s)",
                 pct ? "escaped" : "raw");
        if (pct) {
            b64_pct(&t, raw.p, raw.len);
        } else {
            b64(&t, raw.p, raw.len);
        }
        http_get(b, "/ocsp/", t.p, t.len);
        buf_free(&raw);
        break;
    }
    case 9: { /* GET with bad base64 */
        const char *s = BAD_B64[rng_below(r, N_BAD_B64)];
        snprintf(c->desc, sizeof(c->desc), "GET /ocsp/%s", s);
        http_get(b, "/ocsp/", (const unsigned char *)s, strlen(s));
        break;
    }
    case 10: { /* GET with bad percent escapes */
        const char *s = BAD_PCT[rng_below(r, N_BAD_PCT)];
        snprintf(c->desc, sizeof(c->desc), "GET /ocsp/%s", s);
        http_get(b, "/ocsp/", (const unsigned char *)s, strlen(s));
        c->expect = E_MALF_OR_400;
        break;
    }
    case 11: { /* pipelined bad POSTs */
        int n = 2 + (int)rng_below(r, 3);
        snprintf(c->desc, sizeof(c->desc), "%d pipelined POSTs of random bodies", n);
        for (int i = 0; i < n; i++) {
            buf_t body = {0};
            rng_bytes(r, &body, rng_below(r, 200));
            post_ocsp(b, r, body.p, body.len);
            buf_free(&body);
        }
        c->n_resp = n;
        break;
    }
    case 12: { /* half a request, then close (or half-close and read) */
        const buf_t *d = &g_der[0];
        post_ocsp(&t, r, d->p, d->len);
        size_t cut = rng_below(r, t.len);
        buf_put(b, t.p, cut);
        if (rng_below(r, 2)) {
            snprintf(c->desc, sizeof(c->desc), "half request (%zu bytes), close", cut);
            c->expect = E_NONE;
        } else {
            snprintf(c->desc, sizeof(c->desc), "half request (%zu bytes), SHUT_WR", cut);
            c->expect = E_GENERIC;
            c->shut_wr = 1;
        }
        break;
    }
    case 13: { /* HTTP/1.0, random body */
        snprintf(c->desc, sizeof(c->desc), "HTTP/1.0 POST random body");
        size_t n = rng_below(r, 500);
        buf_fmt(b, "POST /ocsp HTTP/1.0\r\nContent-Length: %zu\r\n\r\n", n);
        rng_bytes(r, b, n);
        break;
    }
    default: { /* chunked random body: valid framing, bad OCSP */
        snprintf(c->desc, sizeof(c->desc), "POST chunked random body");
        buf_str(b, "POST /ocsp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (size_t n = 1 + rng_below(r, 4); n > 0; n--) {
            size_t len = 1 + rng_below(r, 100);
            buf_fmt(b, "%zx\r\n", len);
            rng_bytes(r, b, len);
            buf_str(b, "\r\n");
        }
        buf_str(b, "0\r\n\r\n");
        break;
    }
    }
    buf_free(&t);
    c->abort_rst = (int)rng_below(r, 4) == 0;
}

/* The fixed cases, in order; returns 0 past the end. */
static int fixed_case(size_t i, mcase_t *c)
{
    buf_t *b = &c->data;
    rng_t r = {g_seed ^ (0x5bd1e995ULL * (i + 1))};
    c->n_resp = 1;
    c->expect = E_MALFORMED;

    /* Slow-loris first, so they run beside everything else. */
    if (i < 4) {
        snprintf(c->desc, sizeof(c->desc), "slow-loris #%zu (1 byte / %d ms)", i, DRIP_MS);
        buf_str(b, i % 2 ? "POST /ocsp HTTP/1.1\r\nHost: x\r\nX-Slow: "
                         : "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
        for (int k = 0; k < 1000; k++) {
            buf_byte(b, 'a');
        }
        c->drip = 1;
        c->expect = E_408;
        return 1;
    }
    i -= 4;
    /* Every truncation of both DER requests, by POST. */
    for (int d = 0; d < 2; d++) {
        if (i < g_der[d].len) {
            snprintf(c->desc, sizeof(c->desc), "POST DER#%d cut at %zu/%zu", d, i, g_der[d].len);
            post_ocsp(b, &r, g_der[d].p, i);
            return 1;
        }
        i -= g_der[d].len;
    }
    /* ... by GET /ocsp/ (raw base64) and GET / (escaped base64). */
    for (int d = 0; d < 2; d++) {
        size_t n = g_der[d].len - 1;
        if (i < 2 * n) {
            size_t cut = 1 + i / 2;
            buf_t t = {0};
            if (i % 2) {
                snprintf(c->desc, sizeof(c->desc), "GET / escaped DER#%d cut at %zu", d, cut);
                b64_pct(&t, g_der[d].p, cut);
                http_get(b, "/", t.p, t.len);
            } else {
                snprintf(c->desc, sizeof(c->desc), "GET /ocsp/ raw DER#%d cut at %zu", d, cut);
                b64(&t, g_der[d].p, cut);
                http_get(b, "/ocsp/", t.p, t.len);
            }
            buf_free(&t);
            return 1;
        }
        i -= 2 * n;
    }
    /* Huge and invalid DER lengths, by POST and GET. */
    if (i < 2 * N_HUGE) {
        size_t h = i / 2;
        if (i % 2) {
            buf_t t = {0};
            snprintf(c->desc, sizeof(c->desc), "GET /ocsp/ %s", HUGE_LENS[h].name);
            b64(&t, HUGE_LENS[h].b, HUGE_LENS[h].n);
            http_get(b, "/ocsp/", t.p, t.len);
            buf_free(&t);
        } else {
            snprintf(c->desc, sizeof(c->desc), "POST %s", HUGE_LENS[h].name);
            post_ocsp(b, &r, HUGE_LENS[h].b, HUGE_LENS[h].n);
        }
        return 1;
    }
    i -= 2 * N_HUGE;
    if (i < N_LIMIT) {
        limit_case(i, c);
        return 1;
    }
    i -= N_LIMIT;
    if (i < N_BAD_PCT) {
        snprintf(c->desc, sizeof(c->desc), "GET /ocsp/%s", BAD_PCT[i]);
        http_get(b, "/ocsp/", (const unsigned char *)BAD_PCT[i], strlen(BAD_PCT[i]));
        c->expect = E_MALF_OR_400;
        return 1;
    }
    i -= N_BAD_PCT;
    if (i < N_BAD_B64) {
        snprintf(c->desc, sizeof(c->desc), "GET /ocsp/%s", BAD_B64[i]);
        http_get(b, "/ocsp/", (const unsigned char *)BAD_B64[i], strlen(BAD_B64[i]));
        return 1;
    }
    i -= N_BAD_B64;
    /* Connections that send nothing: plain close, and half-close. */
    if (i < 40) {
        if (i % 2) {
            snprintf(c->desc, sizeof(c->desc), "connect, send nothing, close");
            c->expect = E_NONE;
        } else {
            snprintf(c->desc, sizeof(c->desc), "connect, send nothing, SHUT_WR");
            c->expect = E_GENERIC;
            c->shut_wr = 1;
        }
        return 1;
    }
    return 0;
}

static void make_case(size_t idx, mcase_t *c)
{
    memset(c, 0, sizeof(*c));
    if (fixed_case(idx, c)) {
        return;
    }
    rng_t r = {g_seed * 0x100000001b3ULL + idx};
    rng_next(&r);
    random_case(&r, c);
}

/* ---------- response parsing ---------- */

static const unsigned char *find_crlfcrlf(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++) {
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
            return p + i;
        }
    }
    return NULL;
}

/* Parses one response at the start of p. Returns 1 complete, 0 need more,
 * -1 not HTTP. At eof a response without Content-Length ends there. */
static int parse_response(const unsigned char *p, size_t n, int eof, resp_t *out)
{
    memset(out, 0, sizeof(*out));
    if (n >= 5 && memcmp(p, "HTTP/", 5) != 0) {
        return -1;
    }
    if (n < 5 && memcmp(p, "HTTP/", n) != 0) {
        return -1;
    }
    const unsigned char *end = find_crlfcrlf(p, n);
    if (end == NULL) {
        return n > 65536 ? -1 : 0;
    }
    size_t head_len = (size_t)(end - p) + 4;
    if (head_len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ') {
        return -1;
    }
    int st = 0;
    for (int k = 9; k < 12; k++) {
        if (p[k] < '0' || p[k] > '9') {
            return -1;
        }
        st = st * 10 + (p[k] - '0');
    }
    out->status = st;
    long long clen = -1;
    int chunked = 0;
    /* header lines */
    const unsigned char *line = (const unsigned char *)memchr(p, '\n', head_len) + 1;
    while (line < end) {
        const unsigned char *nl = memchr(line, '\n', (size_t)(end + 2 - line));
        size_t ll = (size_t)(nl - line);
        char h[256];
        size_t cp = ll < sizeof(h) - 1 ? ll : sizeof(h) - 1;
        memcpy(h, line, cp);
        h[cp] = '\0';
        if (cp > 0 && h[cp - 1] == '\r') {
            h[cp - 1] = '\0';
        }
        if (strncasecmp(h, "content-length:", 15) == 0) {
            char *e = NULL;
            long long v = strtoll(h + 15, &e, 10);
            if (e == h + 15 || v < 0) {
                return -1;
            }
            clen = v;
        } else if (strncasecmp(h, "transfer-encoding:", 18) == 0 && strcasestr(h, "chunked")) {
            chunked = 1;
        } else if (strncasecmp(h, "connection:", 11) == 0 && strcasestr(h, "close")) {
            out->close_hdr = 1;
        }
        line = nl + 1;
    }
    const unsigned char *body = p + head_len;
    size_t avail = n - head_len;
    if (st == 204 || st == 304 || (st >= 100 && st < 200)) {
        out->consumed = head_len;
        return 1;
    }
    if (chunked) {
        /* Good enough for a checker: find each size line; the body is not
         * reassembled (only status matters for chunked answers here). */
        size_t off = 0;
        for (;;) {
            const unsigned char *nl = memchr(body + off, '\n', avail - off);
            if (nl == NULL) {
                return eof ? -1 : 0;
            }
            unsigned long sz = strtoul((const char *)body + off, NULL, 16);
            off = (size_t)(nl - body) + 1;
            if (sz == 0) {
                const unsigned char *fin = find_crlfcrlf(body + off - 2, avail - off + 2);
                if (fin == NULL) {
                    return eof ? -1 : 0;
                }
                out->body = body;
                out->body_len = 0;
                out->consumed = (size_t)(fin - p) + 4;
                return 1;
            }
            if (avail - off < sz + 2) {
                return eof ? -1 : 0;
            }
            off += sz + 2;
        }
    }
    if (clen < 0) {
        if (!eof) {
            return 0;
        }
        out->body = body;
        out->body_len = avail;
        out->consumed = n;
        return 1;
    }
    if (avail < (size_t)clen) {
        return eof ? -1 : 0;
    }
    out->body = body;
    out->body_len = (size_t)clen;
    out->consumed = head_len + (size_t)clen;
    return 1;
}

/* ---------- classification ---------- */

static int allowed_status(int st)
{
    static const int ok[] = {200, 400, 404, 405, 408, 413, 414, 431};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (ok[i] == st) {
            return 1;
        }
    }
    return 0;
}

static int body_is(const resp_t *r, const unsigned char *want)
{
    return r->body_len == 5 && memcmp(r->body, want, 5) == 0;
}

static int is_err_status(int st)
{
    return st == 400 || st == 413 || st == 414 || st == 431;
}

/* Returns NULL when the response fits the expectation, else why not. */
static const char *judge_response(expect_t e, const resp_t *r)
{
    switch (e) {
    case E_NONE:
    case E_GENERIC: return allowed_status(r->status) ? NULL : "status not in the allowed set";
    case E_MALFORMED:
        if (r->status != 200) {
            return "want 200 malformedRequest";
        }
        return body_is(r, MALFORMED) ? NULL : "want body 30 03 0a 01 01";
    case E_OCSP:
        if (r->status != 200) {
            return "want 200 with an OCSP response";
        }
        return body_is(r, MALFORMED) || body_is(r, UNAUTHORIZED)
                   ? NULL
                   : "want body malformedRequest or unauthorized";
    case E_MALF_OR_400:
        if (r->status == 400) {
            return NULL;
        }
        if (r->status != 200) {
            return "want 400 or 200 malformedRequest";
        }
        return body_is(r, MALFORMED) ? NULL : "want body 30 03 0a 01 01";
    case E_ERR:
    case E_TOOBIG: return is_err_status(r->status) ? NULL : "want 400/413/414/431";
    case E_413: return r->status == 413 ? NULL : "want 413";
    case E_408: return r->status == 408 ? NULL : "want 408";
    case E_UNAUTH:
        if (r->status != 200) {
            return "want 200 unauthorized";
        }
        return body_is(r, UNAUTHORIZED) ? NULL : "want body 30 03 0a 01 06";
    case E_OK200: return r->status == 200 ? NULL : "want 200";
    }
    return "bad expectation";
}

/* Does closing without (more) answers satisfy e? */
static int close_ok(expect_t e)
{
    return e == E_NONE || e == E_GENERIC || e == E_MALF_OR_400 || e == E_ERR || e == E_TOOBIG;
}

/* Must the server close after answering? */
static int must_close(expect_t e)
{
    return e == E_TOOBIG || e == E_413 || e == E_408;
}

/* Failures grouped by kind of case (its description without digits) and
 * reason, for the summary: one line per group instead of thousands. */
#define MAX_GROUPS 64
static struct {
    char key[160];
    unsigned long n;
} g_groups[MAX_GROUPS];
static size_t g_n_groups;

static void group_fail(const char *desc, const char *why)
{
    char key[160];
    size_t k = 0;
    for (const char *p = desc; *p != '\0' && k < 100; p++) {
        int digit = *p >= '0' && *p <= '9';
        if (!digit) {
            key[k++] = *p;
        } else if (p == desc || p[-1] < '0' || p[-1] > '9') {
            key[k++] = '#'; /* a number: cut lengths, counts */
        }
    }
    snprintf(key + k, sizeof(key) - k, " -> %s", why);
    for (size_t i = 0; i < g_n_groups; i++) {
        if (strcmp(g_groups[i].key, key) == 0) {
            g_groups[i].n++;
            return;
        }
    }
    if (g_n_groups < MAX_GROUPS) {
        snprintf(g_groups[g_n_groups].key, sizeof(g_groups[0].key), "%s", key);
        g_groups[g_n_groups++].n = 1;
    }
}

static void report_fail(const slot_t *s, const char *why, const resp_t *r)
{
    g_failed++;
    group_fail(s->c.desc, why);
    if (g_reported++ >= MAX_REPORTED) {
        return;
    }
    fprintf(stderr, "FAIL [%s] %s (t=%.2fs)", s->c.desc, why, now_s() - s->start);
    if (r != NULL && r->status) {
        fprintf(stderr, ": got HTTP %d, body ", r->status);
        hexdump(stderr, r->body, r->body_len, 16);
    } else if (s->rx.len > 0) {
        fprintf(stderr, ": received ");
        hexdump(stderr, s->rx.p, s->rx.len, 24);
    }
    fputc('\n', stderr);
}

/* ---------- connection slots ---------- */

static void slot_close(slot_t *s)
{
    if (s->fd >= 0) {
        if (s->c.abort_rst) {
            struct linger lg = {1, 0};
            setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        close(s->fd);
    }
    s->fd = -1;
    buf_free(&s->c.data);
    buf_free(&s->rx);
    s->state = S_FREE;
}

static void slot_finish(slot_t *s, const char *why, const resp_t *r)
{
    if (why == NULL) {
        g_ok++;
    } else {
        report_fail(s, why, r);
    }
    slot_close(s);
}

static void slot_start(slot_t *s, size_t idx)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    make_case(idx, &s->c);
    s->start = s->last_progress = now_s();
    s->next_drip = s->start;
    g_sent++;
    int fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        s->state = S_ACTIVE;
        slot_finish(s, "socket() failed", NULL);
        return;
    }
    s->fd = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&g_addr, g_addr_len) == 0) {
        s->state = S_ACTIVE;
    } else if (errno == EINPROGRESS) {
        s->state = S_CONNECTING;
    } else {
        s->state = S_ACTIVE;
        slot_finish(s, errno == ECONNREFUSED ? "connection refused" : "connect() failed", NULL);
    }
}

/* Sends what is due. Returns 0 to go on, -1 when the slot was finished. */
static int slot_send(slot_t *s, double t)
{
    const mcase_t *c = &s->c;
    if (c->drip) {
        if (t < s->next_drip || s->wr_shut) {
            return 0;
        }
        unsigned char ch = s->sent < c->data.len ? c->data.p[s->sent] : 'a';
        ssize_t k = send(s->fd, &ch, 1, MSG_NOSIGNAL);
        if (k == 1) {
            s->sent++;
            s->next_drip = t + DRIP_MS / 1000.0;
        } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
            s->wr_shut = 1; /* peer gone; read what it said */
        }
        return 0;
    }
    while (s->sent < c->data.len) {
        ssize_t k = send(s->fd, c->data.p + s->sent, c->data.len - s->sent, MSG_NOSIGNAL);
        if (k > 0) {
            s->sent += (size_t)k;
            s->last_progress = t;
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
            return 0;
        }
        /* EPIPE / ECONNRESET: the server stopped listening; read its answer */
        s->sent = c->data.len;
        s->wr_shut = 1;
        break;
    }
    if (c->expect == E_NONE) {
        slot_finish(s, NULL, NULL);
        return -1;
    }
    if (c->shut_wr && !s->wr_shut) {
        shutdown(s->fd, SHUT_WR);
        s->wr_shut = 1;
    }
    return 0;
}

/* Consumes parsed responses; eof says the peer closed. Returns -1 when the
 * slot was finished. */
static int slot_parse(slot_t *s, int eof, double t)
{
    for (;;) {
        resp_t r;
        if (s->state == S_WAIT_CLOSE) {
            if (eof) {
                slot_finish(s, NULL, NULL);
                return -1;
            }
            return 0;
        }
        if (s->rx.len == 0) {
            break;
        }
        int k = parse_response(s->rx.p, s->rx.len, eof, &r);
        if (k < 0) {
            slot_finish(s, "reply is not a valid HTTP/1.x response", NULL);
            return -1;
        }
        if (k == 0) {
            break;
        }
        if (r.status >= 100 && r.status < 200) {
            memmove(s->rx.p, s->rx.p + r.consumed, s->rx.len - r.consumed);
            s->rx.len -= r.consumed;
            continue;
        }
        const char *why = judge_response(s->c.expect, &r);
        if (why != NULL) {
            slot_finish(s, why, &r);
            return -1;
        }
        s->got++;
        memmove(s->rx.p, s->rx.p + r.consumed, s->rx.len - r.consumed);
        s->rx.len -= r.consumed;
        if (must_close(s->c.expect)) {
            s->state = S_WAIT_CLOSE;
            s->close_deadline = t + CLOSE_AFTER_S;
            continue;
        }
        if (s->got >= s->c.n_resp) {
            slot_finish(s, NULL, NULL);
            return -1;
        }
    }
    if (eof) {
        if (s->rx.len > 0) {
            slot_finish(s, "connection closed inside a response", NULL);
        } else if (close_ok(s->c.expect)) {
            slot_finish(s, NULL, NULL);
        } else {
            slot_finish(s, "server closed without the expected answer", NULL);
        }
        return -1;
    }
    return 0;
}

static int slot_recv(slot_t *s, double t)
{
    for (;;) {
        buf_reserve(&s->rx, 16384);
        ssize_t k = recv(s->fd, s->rx.p + s->rx.len, s->rx.cap - s->rx.len, 0);
        if (k > 0) {
            s->rx.len += (size_t)k;
            s->last_progress = t;
            if (s->rx.len > MAX_RX) {
                slot_finish(s, "more than 1 MiB of reply", NULL);
                return -1;
            }
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
            return slot_parse(s, 0, t);
        }
        /* 0 = orderly close; ECONNRESET = the server closed with unread
         * input (normal after an early 413/431): both are a close. */
        return slot_parse(s, 1, t);
    }
}

static void slot_check_timers(slot_t *s, double t)
{
    if (s->state == S_WAIT_CLOSE) {
        if (t > s->close_deadline) {
            slot_finish(s, "server did not close the connection after the error answer", NULL);
        }
        return;
    }
    double since = s->c.drip ? s->start : s->last_progress;
    if (t - since > HANG_S) {
        g_hangs++;
        slot_finish(s,
                    s->state == S_CONNECTING ? "connect() hangs" : "no answer and no close (hang)",
                    NULL);
    }
}

static void slot_connected(slot_t *s, double t)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        err = errno;
    }
    if (err != 0) {
        slot_finish(s, err == ECONNREFUSED ? "connection refused" : "connect() failed", NULL);
        return;
    }
    s->state = S_ACTIVE;
    s->last_progress = t;
    s->next_drip = t;
}

/* Runs cases [0, count) over N_SLOTS connections. */
static void run_all(size_t count)
{
    slot_t slots[N_SLOTS];
    struct pollfd pfd[N_SLOTS];
    size_t next = 0;
    for (int i = 0; i < N_SLOTS; i++) {
        slots[i].state = S_FREE;
        slots[i].fd = -1;
    }
    for (;;) {
        double t = now_s();
        int busy = 0;
        for (int i = 0; i < N_SLOTS; i++) {
            slot_t *s = &slots[i];
            if (s->state == S_FREE && next < count && t - g_t0 < LAUNCH_BUDGET_S &&
                g_hangs < MAX_HANGS) {
                slot_start(s, next++);
            }
            if (s->state == S_ACTIVE) {
                slot_send(s, t);
            }
            if (s->state != S_FREE) {
                slot_check_timers(s, t);
            }
            if (s->state != S_FREE && t - g_t0 > HARD_BUDGET_S) {
                slot_finish(s, "still running at the end of the time budget", NULL);
            }
            busy += s->state != S_FREE;
        }
        if (busy == 0 && (next >= count || t - g_t0 >= LAUNCH_BUDGET_S || g_hangs >= MAX_HANGS)) {
            break;
        }
        int timeout_ms = 20;
        for (int i = 0; i < N_SLOTS; i++) {
            slot_t *s = &slots[i];
            pfd[i].fd = -1;
            pfd[i].events = 0;
            pfd[i].revents = 0;
            if (s->state == S_FREE) {
                continue;
            }
            pfd[i].fd = s->fd;
            if (s->state == S_CONNECTING) {
                pfd[i].events = POLLOUT;
            } else {
                pfd[i].events = POLLIN;
                if (!s->c.drip && s->sent < s->c.data.len) {
                    pfd[i].events |= POLLOUT;
                }
            }
        }
        int n = poll(pfd, N_SLOTS, timeout_ms);
        if (n < 0 && errno != EINTR) {
            die("poll");
        }
        t = now_s();
        for (int i = 0; i < N_SLOTS && n > 0; i++) {
            slot_t *s = &slots[i];
            if (s->state == S_FREE || pfd[i].revents == 0) {
                continue;
            }
            if (s->state == S_CONNECTING) {
                slot_connected(s, t);
                if (s->state == S_ACTIVE) {
                    slot_send(s, t);
                }
                continue;
            }
            if ((pfd[i].revents & POLLOUT) && s->state == S_ACTIVE) {
                if (slot_send(s, t) < 0) {
                    continue;
                }
            }
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                slot_recv(s, t);
            }
        }
    }
    if (next < count) {
        fprintf(stderr, "FAIL only %zu of %zu cases started (%lu hangs, %.0f s)\n", next, count,
                g_hangs, now_s() - g_t0);
        g_failed++;
    }
}

/* ---------- final checks (blocking, one request each) ---------- */

static void final_check(const char *desc, buf_t *req, expect_t e, int left)
{
    slot_t s;
    memset(&s, 0, sizeof(s));
    s.fd = -1;
    snprintf(s.c.desc, sizeof(s.c.desc), "final: %s", desc);
    s.c.data = *req;
    s.c.expect = e;
    s.c.n_resp = 1;
    s.start = s.last_progress = now_s();
    memset(req, 0, sizeof(*req));
    g_sent++;
    int fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&g_addr, g_addr_len) < 0) {
        s.state = S_ACTIVE;
        slot_finish(&s, "cannot connect after the run", NULL);
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    /* 10 s each, less when the run already used most of the budget */
    double budget = (g_t0 + TOTAL_BUDGET_S - now_s()) / left;
    budget = budget > HANG_S ? HANG_S : budget < 1.0 ? 1.0 : budget;
    struct timeval tv = {(time_t)budget, (suseconds_t)((budget - (double)(time_t)budget) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    s.fd = fd;
    s.state = S_ACTIVE;
    size_t off = 0;
    while (off < s.c.data.len) {
        ssize_t k = send(fd, s.c.data.p + off, s.c.data.len - off, MSG_NOSIGNAL);
        if (k <= 0) {
            slot_finish(&s, "send failed", NULL);
            return;
        }
        off += (size_t)k;
    }
    for (;;) {
        buf_reserve(&s.rx, 16384);
        ssize_t k = recv(fd, s.rx.p + s.rx.len, s.rx.cap - s.rx.len, 0);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            slot_finish(&s, "no answer in time", NULL);
            return;
        }
        if (k > 0) {
            s.rx.len += (size_t)k;
        }
        if (slot_parse(&s, k <= 0, now_s()) < 0) {
            return;
        }
    }
}

static void final_checks(void)
{
    buf_t b = {0};
    http_post(&b, "/", g_der[0].p, g_der[0].len, "application/ocsp-request");
    final_check("POST / valid request", &b, E_UNAUTH, 5);
    http_post(&b, "/ocsp", g_der[1].p, g_der[1].len, "application/ocsp-request");
    final_check("POST /ocsp valid request with nonce", &b, E_UNAUTH, 4);
    buf_t t = {0};
    b64(&t, g_der[0].p, g_der[0].len);
    http_get(&b, "/ocsp/", t.p, t.len);
    final_check("GET /ocsp/ valid request", &b, E_UNAUTH, 3);
    t.len = 0;
    b64_pct(&t, g_der[1].p, g_der[1].len);
    http_get(&b, "/", t.p, t.len);
    final_check("GET / escaped valid request", &b, E_UNAUTH, 2);
    buf_free(&t);
    buf_str(&b, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    final_check("GET /healthz", &b, E_OK200, 1);
}

/* ---------- main ---------- */

static int resolve(const char *host, const char *port)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
        return -1;
    }
    memcpy(&g_addr, res->ai_addr, res->ai_addrlen);
    g_addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s HOST PORT COUNT SEED\n", argv[0]);
        return 2;
    }
    char *end = NULL;
    unsigned long long count = strtoull(argv[3], &end, 10);
    if (*argv[3] == '\0' || *end != '\0' || count == 0 || count > 10000000ULL) {
        fprintf(stderr, "malformed: bad COUNT %s\n", argv[3]);
        return 2;
    }
    g_seed = strtoull(argv[4], &end, 0);
    if (*argv[4] == '\0' || *end != '\0') {
        fprintf(stderr, "malformed: bad SEED %s\n", argv[4]);
        return 2;
    }
    if (resolve(argv[1], argv[2]) < 0) {
        fprintf(stderr, "malformed: cannot resolve %s port %s\n", argv[1], argv[2]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    build_valid_requests();
    g_t0 = now_s();
    run_all((size_t)count);
    final_checks();
    if (g_n_groups > 0) {
        fprintf(stderr, "failures by kind:\n");
        for (size_t i = 0; i < g_n_groups; i++) {
            fprintf(stderr, "  %6lu  %s\n", g_groups[i].n, g_groups[i].key);
        }
    }
    fprintf(stderr, "malformed: %.1f s, seed %llu\n", now_s() - g_t0, g_seed);
    printf("malformed: sent %lu, ok %lu, failed %lu\n", g_sent, g_ok, g_failed);
    buf_free(&g_der[0]);
    buf_free(&g_der[1]);
    return g_failed ? 1 : 0;
}
