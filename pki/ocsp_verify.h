/* Verifying an OCSPResponse for one certificate, SM2-aware (RFC 6960
 * §3.2, §4.2.2.2): used by the `trustgate query` client and before an
 * upstream response is relayed or cached (SPEC §7).
 *
 * The CertID arithmetic itself lives in pki/certid.h. */
#ifndef TG_PKI_OCSP_VERIFY_H
#define TG_PKI_OCSP_VERIFY_H

#include "common/err.h"
#include "pki/certid.h"
#include "pki/ocsp.h"
#include "pki/ocsp_sign.h"

#include <openssl/types.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* How far thisUpdate and producedAt may lie in the future (clock skew
 * between the responder and us). */
#define TG_OCSP_MAX_SKEW_S 300

/* What to check a response against. Everything is borrowed for the call. */
typedef struct {
    /* Required: the CA that issued the certificate in question. It is
     * trusted as given (its own signature is not checked). */
    X509 *issuer;
    /* Optional: a responder certificate trusted outright (a locally
     * configured responder, OpenSSL's -VAfile); NULL for none. */
    X509 *trusted_signer;
    /* Required: the CertID asked about, computed from issuer (see
     * tg_pki_certid_for_cert, or tg_pki_certid_for in pki/certid.h); its
     * hashes must be issuer's. */
    const tg_certid_t *certid;
    /* The nonce sent in the request (NULL: none sent, none checked). */
    const uint8_t *nonce;
    size_t nonce_len;
    /* 0: a response without the nonce is refused when one was sent. 1:
     * it is accepted (RFC 5019 responders answer from a cache without
     * nonces); a different nonce is refused either way. */
    int allow_missing_nonce;
    /* The time to check validity at, seconds since the epoch. */
    time_t now;
    /* When > 0: refuse a response without nextUpdate whose thisUpdate is
     * older than now - max_age_s. */
    int64_t max_age_s;
} tg_ocsp_verify_opts_t;

/* Who signed an accepted response. */
typedef enum {
    TG_OCSP_SIGNER_TRUSTED = 0,   /* opts->trusted_signer */
    TG_OCSP_SIGNER_ISSUER = 1,    /* the CA itself */
    TG_OCSP_SIGNER_DELEGATED = 2, /* a responder certificate issued by the CA */
} tg_ocsp_signer_kind_t;

/* The outcome. On refusal only error is meaningful. */
typedef struct {
    /* NULL when the response was accepted; else a short static name for
     * metrics, never freed: "malformed", "not_successful",
     * "unauthorized_signer", "bad_signature", "bad_produced_at",
     * "critical_extension", "nonce_mismatch", "certid_mismatch",
     * "duplicate_single", "not_yet_valid", "expired", or "internal_error"
     * (out of memory, bad arguments). */
    const char *error;
    tg_cert_status_t status;
    time_t revocation_time; /* revoked only */
    int revocation_reason;  /* revoked only: CRLReason or TG_CRL_REASON_NONE */
    time_t this_update;
    time_t next_update; /* 0: absent */
    time_t produced_at;
    tg_ocsp_signer_kind_t signer;
    int nonce_echoed; /* 1 when the response carried the sent nonce */
} tg_ocsp_verify_result_t;

/* Verifies the DER OCSPResponse of len bytes against opts and reports the
 * status of opts->certid in *out_result.
 *
 * Refused ("error" in parentheses):
 * - not exactly one DER OCSPResponse, not id-pkix-ocsp-basic, an
 *   unparseable BasicOCSPResponse, nextUpdate before thisUpdate, two
 *   nonce extensions, or a revocationReason that is not a CRLReason
 *   (0..10 but 7) (malformed); a status other than successful
 *   (not_successful);
 * - no signer found (unauthorized_signer). The responderID (byName or
 *   byKey) picks the candidates, in order: opts->trusted_signer,
 *   opts->issuer, then the certificates in the response. A certificate
 *   from the response must be issued directly by opts->issuer (name and
 *   signature, SM2-aware), carry id-kp-OCSPSigning and be valid at now
 *   (RFC 6960 §4.2.2.2); nothing else is trusted, and the issuer's own
 *   chain is the caller's business. When a candidate is authorised but the
 *   signature does not verify with its key: bad_signature. The signature is
 *   checked over the tbsResponseData bytes as received, with the SM2 ID
 *   when the signer key is SM2;
 * - producedAt outside the signer certificate's validity (bad_produced_at,
 *   as BoringSSL), or more than TG_OCSP_MAX_SKEW_S in the future
 *   (not_yet_valid);
 * - an unknown critical extension in responseExtensions or in the
 *   matching SingleResponse (critical_extension; only the nonce is
 *   understood);
 * - a nonce was sent and the response carries a different one, or none
 *   unless opts->allow_missing_nonce (nonce_mismatch); the extension value
 *   must be the DER OCTET STRING of the sent nonce (RFC 6960 §4.4.1);
 * - no SingleResponse for opts->certid (certid_mismatch: same hash
 *   algorithm, hashes and serial), or more than one, even with the same
 *   status (duplicate_single). SingleResponses whose CertID cannot be
 *   parsed or uses another hash algorithm are skipped;
 * - thisUpdate more than TG_OCSP_MAX_SKEW_S after now (not_yet_valid);
 *   nextUpdate before now, or no nextUpdate and thisUpdate older than
 *   opts->max_age_s (expired).
 *
 * Returns 0 when accepted (out_result->error NULL, the fields set);
 * TG_EMALFORMED when refused (out_result->error names why; nothing is
 * logged: peer data); TG_EINVAL when opts lacks issuer or certid, or
 * certid's issuer hashes are not opts->issuer's (a caller bug: the answer
 * would be checked against the wrong CA); TG_ENOMEM; TG_ECRYPTO when the
 * issuer's hashes cannot be computed (logged). The OpenSSL error
 * queue is left empty. Nothing is kept; no argument is modified.
 * Thread-safe, also with certificates shared between threads. */
TG_WUR int tg_ocsp_verify_response(const uint8_t *der, size_t len,
                                   const tg_ocsp_verify_opts_t *opts,
                                   tg_ocsp_verify_result_t *out_result);

/* Fills *out with the CertID of cert (its serialNumber, stored as DER
 * content octets like tg_ocsp_req_decode stores it) under issuer, for the
 * query client and tests. Both certificates are borrowed. Returns 0,
 * TG_EINVAL (NULL argument, a zero or negative serial, or one longer than
 * TG_SERIAL_MAX_LEN encoded) or TG_ECRYPTO (logged). See pki/certid.h for
 * the CertID of a bare serial. */
TG_WUR int tg_pki_certid_for_cert(X509 *issuer, X509 *cert, tg_hash_alg_t alg, tg_certid_t *out);

/* Returns the static name of a tg_ocsp_signer_kind_t ("trusted", "issuer",
 * "delegated", or "unknown"). */
const char *tg_ocsp_signer_kind_name(tg_ocsp_signer_kind_t kind);

#endif
