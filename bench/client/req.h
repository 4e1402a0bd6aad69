/* Request bytes for trustgate-bench: the target URL, the DER OCSPRequest
 * for one CertID (RFC 6960 §4.1.1, with an RFC 8954 nonce when asked) and
 * the HTTP/1.1 request around it (POST, or RFC 5019 §A.1 GET with the
 * standard base64 of the DER in the path). Nothing here allocates. */
#ifndef TG_BENCH_REQ_H
#define TG_BENCH_REQ_H

#include "common/err.h"
#include "pki/ocsp.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TG_BENCH_NONCE_LEN 32 /* RFC 8954 §2.1: 32 octets recommended */
#define TG_BENCH_DER_MAX 512  /* largest OCSPRequest built here (~300 used) */

/* Where the requests go, and the fixed parts of every request. */
typedef struct {
    struct sockaddr_storage addr; /* IPv4 or IPv6 literal with its port */
    char text[1100];              /* the URL as given */
    char get_head[1100];          /* "GET " PATH-without-trailing-slash "/" */
    char get_tail[400];           /* " HTTP/1.1" CRLF "Host: ..." CRLF [close] CRLF */
    char post_head[1500];         /* "POST " PATH ... "Content-Length: " */
    size_t get_head_len, get_tail_len, post_head_len;
} tg_bench_url_t;

/* Parses "http://HOST[:PORT][/PATH]" (HOST an IPv4 literal or a bracketed
 * IPv6 literal; PORT 80 when absent) into *out; close adds "Connection:
 * close" to every request. Returns 0 or TG_EINVAL (message printed). */
TG_WUR int tg_bench_url_parse(const char *text, int close, tg_bench_url_t *out);

/* Returns the DER of the AlgorithmIdentifier OID (tag and length included)
 * of alg, *out_len bytes of static storage; NULL for an unknown alg. */
const uint8_t *tg_bench_hash_oid(tg_hash_alg_t alg, size_t *out_len);

/* The DER of id-pkix-ocsp-nonce (1.3.6.1.5.5.7.48.1.2) with tag and length. */
extern const uint8_t tg_bench_nonce_oid[11];

/* Writes the DER OCSPRequest for id to out (room for TG_BENCH_DER_MAX
 * bytes): one Request, no signature, the hash parameters NULL for SHA-*
 * and absent for SM3, and when nonce is not NULL a requestExtensions [2]
 * with the nonce extension whose extnValue is OCTET STRING { OCTET STRING
 * (TG_BENCH_NONCE_LEN bytes at nonce) }. Returns the length. */
size_t tg_bench_ocsp_request(const tg_certid_t *id, const uint8_t *nonce, uint8_t *out);

/* Upper bound on the bytes tg_bench_http_request writes for u. */
size_t tg_bench_http_request_max(const tg_bench_url_t *u);

/* Writes one HTTP/1.1 request carrying the der_len bytes at der to out
 * (room for tg_bench_http_request_max bytes): POST to PATH with
 * Content-Type application/ocsp-request, or GET of PATH/base64(der).
 * Returns the length. */
size_t tg_bench_http_request(const tg_bench_url_t *u, int post, const uint8_t *der, size_t der_len,
                             char *out);

#endif
