/* URL parsing and request encoding (see req.h). */
#include "bench/client/req.h"

#include "common/buf.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const uint8_t oid_sha1[] = {0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a};
static const uint8_t oid_sha256[] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                     0x65, 0x03, 0x04, 0x02, 0x01};
static const uint8_t oid_sha384[] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                     0x65, 0x03, 0x04, 0x02, 0x02};
static const uint8_t oid_sha512[] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                     0x65, 0x03, 0x04, 0x02, 0x03};
/* 1.2.156.10197.1.401 (GB/T 32905 SM3) */
static const uint8_t oid_sm3[] = {0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x11};
const uint8_t tg_bench_nonce_oid[11] = {0x06, 0x09, 0x2b, 0x06, 0x01, 0x05,
                                        0x05, 0x07, 0x30, 0x01, 0x02};

const uint8_t *tg_bench_hash_oid(tg_hash_alg_t alg, size_t *out_len)
{
    switch (alg) {
    case TG_HASH_SHA1: *out_len = sizeof(oid_sha1); return oid_sha1;
    case TG_HASH_SHA256: *out_len = sizeof(oid_sha256); return oid_sha256;
    case TG_HASH_SHA384: *out_len = sizeof(oid_sha384); return oid_sha384;
    case TG_HASH_SHA512: *out_len = sizeof(oid_sha512); return oid_sha512;
    case TG_HASH_SM3: *out_len = sizeof(oid_sm3); return oid_sm3;
    default: *out_len = 0; return NULL;
    }
}

/* A DER writer that fills a buffer from its end backwards, so every
 * length is known when its header is written. */
typedef struct {
    uint8_t buf[TG_BENCH_DER_MAX];
    size_t pos;
} bw_t;

static void bw_bytes(bw_t *w, const void *p, size_t n)
{
    w->pos -= n;
    memcpy(w->buf + w->pos, p, n);
}

/* Writes tag and length for the len bytes already written after pos. */
static void bw_hdr(bw_t *w, uint8_t tag, size_t len)
{
    if (len >= 256) {
        w->buf[--w->pos] = (uint8_t)len;
        w->buf[--w->pos] = (uint8_t)(len >> 8);
        w->buf[--w->pos] = 0x82;
    } else if (len >= 128) {
        w->buf[--w->pos] = (uint8_t)len;
        w->buf[--w->pos] = 0x81;
    } else {
        w->buf[--w->pos] = (uint8_t)len;
    }
    w->buf[--w->pos] = tag;
}

size_t tg_bench_ocsp_request(const tg_certid_t *id, const uint8_t *nonce, uint8_t *out)
{
    bw_t w;
    w.pos = sizeof(w.buf);
    size_t end = w.pos;
    if (nonce != NULL) {
        /* requestExtensions [2] EXPLICIT Extensions { Extension { nonce,
         * extnValue OCTET STRING { OCTET STRING nonce } } } (RFC 8954 §2.1) */
        bw_bytes(&w, nonce, TG_BENCH_NONCE_LEN);
        bw_hdr(&w, 0x04, TG_BENCH_NONCE_LEN);
        bw_hdr(&w, 0x04, end - w.pos);
        bw_bytes(&w, tg_bench_nonce_oid, sizeof(tg_bench_nonce_oid));
        bw_hdr(&w, 0x30, end - w.pos);
        bw_hdr(&w, 0x30, end - w.pos);
        bw_hdr(&w, 0xa2, end - w.pos);
    }
    size_t list_end = w.pos;
    bw_bytes(&w, id->serial, id->serial_len);
    bw_hdr(&w, 0x02, id->serial_len);
    bw_bytes(&w, id->key_hash, id->hash_len);
    bw_hdr(&w, 0x04, id->hash_len);
    bw_bytes(&w, id->name_hash, id->hash_len);
    bw_hdr(&w, 0x04, id->hash_len);
    size_t alg_end = w.pos, oid_len;
    const uint8_t *oid = tg_bench_hash_oid(id->alg, &oid_len);
    if (id->alg != TG_HASH_SM3)
        bw_bytes(&w, "\x05\x00", 2); /* parameters NULL, as OpenSSL writes */
    bw_bytes(&w, oid, oid_len);
    bw_hdr(&w, 0x30, alg_end - w.pos);  /* AlgorithmIdentifier */
    bw_hdr(&w, 0x30, list_end - w.pos); /* CertID */
    bw_hdr(&w, 0x30, list_end - w.pos); /* Request */
    bw_hdr(&w, 0x30, list_end - w.pos); /* requestList */
    bw_hdr(&w, 0x30, end - w.pos);      /* TBSRequest */
    bw_hdr(&w, 0x30, end - w.pos);      /* OCSPRequest */
    memcpy(out, w.buf + w.pos, end - w.pos);
    return end - w.pos;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding (RFC 4648 §4); returns the length. */
static size_t base64(const uint8_t *p, size_t n, char *out)
{
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        o[0] = b64_alphabet[v >> 18];
        o[1] = b64_alphabet[(v >> 12) & 63];
        o[2] = b64_alphabet[(v >> 6) & 63];
        o[3] = b64_alphabet[v & 63];
        o += 4;
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        o[0] = b64_alphabet[v >> 18];
        o[1] = b64_alphabet[(v >> 12) & 63];
        o[2] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        o[3] = '=';
        o += 4;
    }
    return (size_t)(o - out);
}

size_t tg_bench_http_request_max(const tg_bench_url_t *u)
{
    size_t get = u->get_head_len + (TG_BENCH_DER_MAX + 2) / 3 * 4 + u->get_tail_len;
    size_t post = u->post_head_len + 24 + TG_BENCH_DER_MAX;
    return get > post ? get : post;
}

size_t tg_bench_http_request(const tg_bench_url_t *u, int post, const uint8_t *der, size_t der_len,
                             char *out)
{
    char *o = out;
    if (post) {
        memcpy(o, u->post_head, u->post_head_len);
        o += u->post_head_len;
        o += tg_u64_to_dec(der_len, o);
        memcpy(o, "\r\n\r\n", 4);
        o += 4;
        memcpy(o, der, der_len);
        o += der_len;
    } else {
        memcpy(o, u->get_head, u->get_head_len);
        o += u->get_head_len;
        o += base64(der, der_len, o);
        memcpy(o, u->get_tail, u->get_tail_len);
        o += u->get_tail_len;
    }
    return (size_t)(o - out);
}

static int url_fail(const char *text, const char *why)
{
    fprintf(stderr, "--url %s: %s\n", text, why);
    return TG_EINVAL;
}

int tg_bench_url_parse(const char *text, int close, tg_bench_url_t *out)
{
    memset(out, 0, sizeof(*out));
    if (strlen(text) >= 1024)
        return url_fail(text, "too long");
    snprintf(out->text, sizeof(out->text), "%s", text);
    if (strncasecmp(text, "http://", 7) != 0)
        return url_fail(text, "not http://HOST:PORT/PATH");
    const char *h = text + 7, *p;
    char host[64];
    int v6 = *h == '[';
    if (v6) {
        p = strchr(h, ']');
        if (p == NULL || (size_t)(p - h - 1) >= sizeof(host))
            return url_fail(text, "bad [IPv6] host");
        memcpy(host, h + 1, (size_t)(p - h - 1));
        host[p - h - 1] = '\0';
        p++;
    } else {
        p = h + strcspn(h, ":/");
        if ((size_t)(p - h) >= sizeof(host) || p == h)
            return url_fail(text, "bad host");
        memcpy(host, h, (size_t)(p - h));
        host[p - h] = '\0';
    }
    const char *hostport_end = p;
    unsigned long port = 80;
    if (*p == ':') {
        char *end;
        if (p[1] < '0' || p[1] > '9')
            return url_fail(text, "bad port");
        port = strtoul(p + 1, &end, 10);
        if (port == 0 || port > 65535 || (*end != '/' && *end != '\0'))
            return url_fail(text, "bad port");
        hostport_end = p = end;
    } else if (*p != '/' && *p != '\0') {
        return url_fail(text, "bad host");
    }
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out->addr;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return url_fail(text, "host is not an IPv6 literal");
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&out->addr;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            return url_fail(text, "host is not an IPv4 literal");
    }
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return url_fail(text, "path has a space or control character");
    int hostlen = (int)(hostport_end - h);
    size_t plen = strlen(p);
    size_t glen = plen > 0 && p[plen - 1] == '/' ? plen - 1 : plen;
    const char *conn = close ? "Connection: close\r\n" : "";
    out->get_head_len =
        (size_t)snprintf(out->get_head, sizeof(out->get_head), "GET %.*s/", (int)glen, p);
    out->get_tail_len = (size_t)snprintf(out->get_tail, sizeof(out->get_tail),
                                         " HTTP/1.1\r\nHost: %.*s\r\n%s\r\n", hostlen, h, conn);
    out->post_head_len = (size_t)snprintf(
        out->post_head, sizeof(out->post_head),
        "POST %s HTTP/1.1\r\nHost: %.*s\r\nContent-Type: application/ocsp-request\r\n%s"
        "Content-Length: ",
        plen ? p : "/", hostlen, h, conn);
    return 0;
}
