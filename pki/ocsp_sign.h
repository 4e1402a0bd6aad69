/* Signed OCSP responses (RFC 6960 §4.2): a BasicOCSPResponse, signed by a
 * tg_signer_t, wrapped in a successful OCSPResponse.
 *
 * The DER is written directly, not through OpenSSL's ASN.1 templates: the
 * signer's parts are encoded once at load (pki/signer.h), and a response
 * costs one signature plus a few hundred bytes of copying, which keeps
 * live-signed nonce answers close to the raw signing speed (SPEC §8). */
#ifndef TG_PKI_OCSP_SIGN_H
#define TG_PKI_OCSP_SIGN_H

#include "common/buf.h"
#include "common/err.h"
#include "pki/ocsp.h"
#include "pki/signer.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* CertStatus (RFC 6960 §4.2.1). */
typedef enum {
    TG_CERT_GOOD = 0,
    TG_CERT_REVOKED = 1,
    TG_CERT_UNKNOWN = 2,
} tg_cert_status_t;

/* CRLReason (RFC 5280 §5.3.1); 7 is unused. TG_CRL_REASON_NONE: no
 * revocationReason. */
#define TG_CRL_REASON_NONE (-1)
#define TG_CRL_REASON_UNSPECIFIED 0
#define TG_CRL_REASON_KEY_COMPROMISE 1
#define TG_CRL_REASON_CA_COMPROMISE 2
#define TG_CRL_REASON_AFFILIATION_CHANGED 3
#define TG_CRL_REASON_SUPERSEDED 4
#define TG_CRL_REASON_CESSATION_OF_OPERATION 5
#define TG_CRL_REASON_CERTIFICATE_HOLD 6
#define TG_CRL_REASON_REMOVE_FROM_CRL 8
#define TG_CRL_REASON_PRIVILEGE_WITHDRAWN 9
#define TG_CRL_REASON_AA_COMPROMISE 10

/* The latest time a GeneralizedTime can hold: 9999-12-31T23:59:59Z. */
#define TG_OCSP_TIME_MAX ((time_t)253402300799)

/* One SingleResponse. Times are seconds since the epoch, 0..TG_OCSP_TIME_MAX,
 * encoded as GeneralizedTime without fractions (RFC 5280 §4.1.2.5.2). */
typedef struct {
    const tg_certid_t *id; /* echoed as given: hash algorithm, hashes, serial; borrowed */
    tg_cert_status_t status;
    time_t revocation_time; /* revoked only */
    int reason;             /* revoked only: a CRLReason, or TG_CRL_REASON_NONE */
    time_t this_update;
    time_t next_update; /* 0: absent; else >= this_update */
} tg_ocsp_single_t;

/* Returns "good", "revoked" or "unknown" (or "invalid" outside the enum).
 * Static; never NULL. */
const char *tg_cert_status_name(tg_cert_status_t status);

/* Builds, signs and appends to out the DER of a successful OCSPResponse
 * holding a BasicOCSPResponse with:
 * - responderID byKey (the signer's key hash), producedAt = produced_at;
 * - one SingleResponse per entry of singles, in order; each CertID echoes
 *   the request's (hash algorithm OID with NULL parameters, as OpenSSL and
 *   Go write it, both hashes, serial); no singleExtensions;
 * - when nonce is not NULL, the nonce extension (id-pkix-ocsp-nonce,
 *   non-critical) whose extnValue is the DER OCTET STRING holding the
 *   nonce_len (1..TG_NONCE_MAX_LEN) nonce bytes (RFC 6960 §4.4.1,
 *   RFC 9654 §2.1);
 * - the signature by s (SM2: SM3 with the standard ID) and, in certs, the
 *   signer certificate, so a client can check a delegated responder.
 *
 * out may already hold data: the response is appended; on failure out's
 * length is restored (its capacity may have grown). Nothing is kept;
 * singles, their CertIDs and nonce are only read during the call.
 *
 * Returns 0, TG_EINVAL (NULL argument, n_singles 0, a status or reason
 * outside its enum, a time out of range, next_update before this_update,
 * a CertID whose lengths do not fit its algorithm, a nonce length out of
 * range), TG_ENOMEM, or TG_ECRYPTO (signing failed; logged once).
 * Thread-safe for a shared signer. */
TG_WUR int tg_ocsp_sign_response(const tg_signer_t *s, const tg_ocsp_single_t *singles,
                                 size_t n_singles, const uint8_t *nonce, size_t nonce_len,
                                 time_t produced_at, tg_buf_t *out);

#endif
