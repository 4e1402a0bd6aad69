/* OCSP request decoding and fixed unsigned responses (RFC 6960, RFC 5019,
 * RFC 9654), on top of OpenSSL.
 *
 * Nothing here knows about HTTP: callers hand in DER bytes and get back
 * decoded CertIDs or prepared response bytes. */
#ifndef TG_PKI_OCSP_H
#define TG_PKI_OCSP_H

#include "common/buf.h"
#include "common/err.h"

#include <stddef.h>
#include <stdint.h>

/* CertID hash algorithms trustgate understands (SPEC §5). */
typedef enum {
    TG_HASH_SHA1 = 0,
    TG_HASH_SHA256 = 1,
    TG_HASH_SHA384 = 2,
    TG_HASH_SHA512 = 3,
    TG_HASH_SM3 = 4,
    TG_HASH_COUNT = 5,
} tg_hash_alg_t;

#define TG_HASH_MAX_LEN 64
#define TG_SERIAL_MAX_LEN 64 /* RFC 5280 allows 20 octets; leave room for the non-conforming */
#define TG_NONCE_MAX_LEN 128 /* RFC 9654 §2.1 */

/* Most extensions accepted in one extension list (requestExtensions or one
 * singleRequestExtensions). Real clients send one or two; the bound keeps
 * the duplicate check (quadratic) cheap on a worker loop. */
#define TG_OCSP_MAX_EXTENSIONS 32

/* OCSPResponseStatus (RFC 6960 §4.2.1). */
typedef enum {
    TG_OCSP_SUCCESSFUL = 0,
    TG_OCSP_MALFORMED_REQUEST = 1,
    TG_OCSP_INTERNAL_ERROR = 2,
    TG_OCSP_TRY_LATER = 3,
    TG_OCSP_SIG_REQUIRED = 5,
    TG_OCSP_UNAUTHORIZED = 6,
} tg_ocsp_status_t;

/* One CertID, copied out of the request.
 *
 * serial holds the content octets of the DER INTEGER: minimal, with a
 * leading 00 when the magnitude's top bit is set (serial 0x80 is "00 80").
 * Bytes past hash_len / serial_len are zero. */
typedef struct {
    tg_hash_alg_t alg;
    uint8_t hash_len; /* digest length of alg */
    uint8_t name_hash[TG_HASH_MAX_LEN];
    uint8_t key_hash[TG_HASH_MAX_LEN];
    uint8_t serial_len; /* content octets of the INTEGER, 1..TG_SERIAL_MAX_LEN */
    uint8_t serial[TG_SERIAL_MAX_LEN];
} tg_certid_t;

/* A decoded OCSPRequest. Holds copies; no pointers into the input. */
typedef struct {
    tg_certid_t *certids; /* n_certids entries, owned (tg_ocsp_req_clear) */
    size_t n_certids;
    int has_nonce;
    uint8_t nonce_len; /* 1..TG_NONCE_MAX_LEN when has_nonce */
    uint8_t nonce[TG_NONCE_MAX_LEN];
} tg_ocsp_req_t;

/* Returns the name of alg ("sha1", "sha256", "sha384", "sha512", "sm3"), or
 * "unknown" for a value outside the enum. Static; never NULL. */
const char *tg_hash_alg_name(tg_hash_alg_t alg);

/* Returns the digest length of alg in bytes (0 for a value outside the
 * enum). */
size_t tg_hash_alg_len(tg_hash_alg_t alg);

/* Returns 1 when a and b name the same certificate under the same hash
 * algorithm (algorithm, both hashes and serial equal), else 0. */
int tg_certid_eq(const tg_certid_t *a, const tg_certid_t *b);

/* Decodes a DER OCSPRequest of len bytes into *out (which the caller owns
 * and must later pass to tg_ocsp_req_clear, also on failure). *out need not
 * be initialised: it is set empty first, without freeing what it held, so
 * clear a reused request before decoding into it again. On failure *out is
 * left empty.
 *
 * Checks: the whole input is one OCSPRequest with nothing after it; version
 * v1; 1..max_certids single requests; every CertID uses SHA-1, SHA-256,
 * SHA-384, SHA-512 or SM3 with hashes of that algorithm's length and a
 * positive serial of at most TG_SERIAL_MAX_LEN octets; at most one nonce
 * extension whose value is an OCTET STRING of 1..128 octets (RFC 9654); no
 * unknown critical extension and no duplicate extension. A signature on the
 * request is allowed and not checked.
 *
 * What answers malformedRequest (TG_EMALFORMED), in detail:
 * - not BER/DER that OpenSSL parses as an OCSPRequest, or bytes after it;
 * - an indefinite length on the OCSPRequest or tbsRequest SEQUENCE
 *   (RFC 6960 Appendix A.1: the body is DER; deeper BER is left to
 *   OpenSSL's tolerance);
 * - an optionalSignature not shaped [0] { SEQUENCE { SEQUENCE, BIT STRING,
 *   [0] { SEQUENCE OF SEQUENCE } OPTIONAL } }. Its contents are not
 *   parsed: the signature is never verified, and OpenSSL 3.0 needs some
 *   100 us per attached certificate, which a peer could use to make each
 *   request a thousand times dearer;
 * - an explicit version other than v1 (an explicit v1, which DER forbids
 *   for a DEFAULT, is accepted like OpenSSL, BouncyCastle and GnuTLS do);
 * - no single request, or more than max_certids;
 * - a CertID hash algorithm other than SHA-1/256/384/512 or SM3 (MD5,
 *   SHA-224, unknown OIDs): RFC 6960 has no better status for it, and
 *   unauthorized would wrongly say "not my CA"; the algorithm parameters
 *   (NULL or absent) are not checked;
 * - an issuerNameHash or issuerKeyHash not of that algorithm's length;
 * - a serial that is zero, negative (RFC 5280 §4.1.2.2) or longer than
 *   TG_SERIAL_MAX_LEN content octets;
 * - in requestExtensions: a nonce whose extnValue is not exactly one DER
 *   OCTET STRING (RFC 6960 §4.4.1) of 1..TG_NONCE_MAX_LEN octets
 *   (RFC 9654 §2.1); the same extension OID twice (RFC 5280 §4.2); more
 *   than TG_OCSP_MAX_EXTENSIONS extensions; a critical extension other than
 *   the nonce and acceptableResponses (RFC 6960 §4.4.3; trustgate always
 *   answers with id-pkix-ocsp-basic, which every client must accept, so the
 *   list's content is not checked);
 * - in each singleRequestExtensions: any critical extension (trustgate
 *   processes none, service locator included), a duplicate OID, or more
 *   than TG_OCSP_MAX_EXTENSIONS extensions.
 * Unknown non-critical extensions are ignored. requestorName is ignored.
 *
 * Returns 0, TG_EMALFORMED for anything a responder must answer with
 * malformedRequest (including unsupported hash algorithms and too many
 * CertIDs), or TG_ENOMEM (also when OpenSSL's parser ran out of memory).
 * Never logs peer errors (they are expected); the OpenSSL error queue is
 * left empty. Thread-safe; allocates only in OpenSSL's d2i, one array of
 * n_certids entries, and a copy of the tbsRequest for signed requests. */
TG_WUR int tg_ocsp_req_decode(const uint8_t *der, size_t len, size_t max_certids,
                              tg_ocsp_req_t *out);

/* Longest byte key tg_certid_key writes. */
#define TG_CERTID_KEY_MAX (1 + 2 * TG_HASH_MAX_LEN + TG_SERIAL_MAX_LEN)

/* Writes id as a byte key: algorithm | name hash | key hash | serial (the
 * hash length is fixed by the algorithm, so the concatenation is
 * unambiguous, and never the serial alone). key holds TG_CERTID_KEY_MAX
 * bytes. Returns its length, or 0 when id is not a valid CertID (NULL,
 * an algorithm out of range, empty or over-long hashes or serial). */
size_t tg_certid_key(const tg_certid_t *id, uint8_t *key);

/* Initialises *req to empty. */
void tg_ocsp_req_init(tg_ocsp_req_t *req);

/* Frees what *req owns and leaves it empty. NULL is fine. */
void tg_ocsp_req_clear(tg_ocsp_req_t *req);

/* Builds, once, the DER of the unsigned OCSPResponse for each non-successful
 * status (malformedRequest, internalError, tryLater, sigRequired,
 * unauthorized) with OpenSSL. Must be called once before
 * tg_ocsp_status_response, from one thread. Returns 0 or TG_ECRYPTO. */
TG_WUR int tg_ocsp_init(void);

/* Returns the prepared DER of the unsigned OCSPResponse with the given
 * non-successful status. The bytes are static (valid for the process
 * lifetime, never freed): five bytes, 30 03 0a 01 XX. status must not be
 * TG_OCSP_SUCCESSFUL; for it, for a value outside the enum, or before
 * tg_ocsp_init, the slice is empty (n == 0). Thread-safe after init. */
tg_slice_t tg_ocsp_status_response(tg_ocsp_status_t status);

/* Returns the RFC 6960 name of status ("successful", "malformedRequest",
 * ...), or "unknown" for a value outside the enum. Static; never NULL. */
const char *tg_ocsp_status_name(tg_ocsp_status_t status);

#endif
