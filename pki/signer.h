/* The responder signer: a certificate and its private key, checked once at
 * load and then read-only, with the pieces of every signed OCSP response
 * that depend on the signer alone (responderID, signature algorithm,
 * certificate) encoded in advance.
 *
 * Algorithms: RSA (2048 bits and more) with SHA-256, ECDSA P-256 with
 * SHA-256, ECDSA P-384 with SHA-384, Ed25519, and SM2 with SM3 and the
 * GM/T 0009 distinguishing ID "1234567812345678" (SPEC §5).
 *
 * Thread-safety: after tg_signer_load / tg_signer_new returns, a signer is
 * immutable; every function below may be called on it from any number of
 * threads at once (each signature uses its own EVP_MD_CTX) until
 * tg_signer_free. */
#ifndef TG_PKI_SIGNER_H
#define TG_PKI_SIGNER_H

#include "common/buf.h"
#include "common/err.h"

#include <openssl/types.h>

#include <stddef.h>
#include <stdint.h>

typedef struct tg_signer tg_signer_t;

typedef enum {
    TG_SIGNER_RSA = 0,        /* RSA PKCS#1 v1.5 with SHA-256 */
    TG_SIGNER_ECDSA_P256 = 1, /* ECDSA P-256 with SHA-256 */
    TG_SIGNER_ECDSA_P384 = 2, /* ECDSA P-384 with SHA-384 */
    TG_SIGNER_ED25519 = 3,    /* Ed25519 (no separate digest) */
    TG_SIGNER_SM2 = 4,        /* SM2 with SM3 and the standard ID */
} tg_signer_alg_t;

/* Length of the byKey responderID hash (SHA-1, RFC 6960 §4.2.1). */
#define TG_SIGNER_KEY_HASH_LEN 20

/* Largest signature a signer may produce (RSA up to 8192 bits). */
#define TG_SIGNER_MAX_SIG_LEN 1024

/* Loads the signer certificate (the first PEM certificate in cert_path)
 * and its private key (PEM, PKCS#8 or traditional, unencrypted, from
 * key_path), then checks them as tg_signer_new does.
 *
 * A key_path starting with "pkcs11:" is a PKCS#11 URI, not supported yet:
 * TG_EUNSUPPORTED, logged. Returns 0 with *out_signer set (the caller owns
 * it: tg_signer_free), or TG_EIO (a file cannot be read; logged with
 * errno), TG_ECRYPTO (not PEM, or an encrypted key; logged), TG_ECONFIG,
 * TG_EUNSUPPORTED or TG_ENOMEM; *out_signer is untouched on failure.
 * Start-up only: it reads files. */
TG_WUR int tg_signer_load(const char *cert_path, const char *key_path, tg_signer_t **out_signer);

/* Makes a signer from a certificate and private key already in memory
 * (tests, the demo-world generator). Takes a reference on both (the caller
 * keeps and frees its own).
 *
 * Checks: the key is one of the algorithms above (RSA of at least 2048
 * bits; an RSA-PSS-only key, another curve or DSA is TG_EUNSUPPORTED); it
 * matches the certificate's public key (X509_check_private_key; else
 * TG_ECONFIG). Warns, without failing, when the certificate is not a CA
 * (the CA itself may sign its responses) yet lacks the id-kp-OCSPSigning
 * extended key usage (RFC 6960 §4.2.2.2), when its keyUsage lacks
 * digitalSignature, or when it is outside its validity period now.
 * Returns 0 with *out_signer set (tg_signer_free), or TG_EUNSUPPORTED,
 * TG_ECONFIG, TG_EINVAL (NULL argument), TG_ECRYPTO or TG_ENOMEM, each
 * logged once; *out_signer is untouched on failure. */
TG_WUR int tg_signer_new(X509 *cert, EVP_PKEY *key, tg_signer_t **out_signer);

/* Adds a reference to s (a signer is immutable once made, so any number
 * of owners may share it) and returns s. NULL is fine. */
tg_signer_t *tg_signer_ref(tg_signer_t *s);

/* Drops one reference to s; the last one frees it and drops its OpenSSL
 * references. NULL is fine. */
void tg_signer_free(tg_signer_t *s);

/* Returns the signer's algorithm. */
tg_signer_alg_t tg_signer_alg(const tg_signer_t *s);

/* Returns a static name for alg ("rsa", "ecdsa-p256", "ecdsa-p384",
 * "ed25519", "sm2"), or "unknown" for a value outside the enum. */
const char *tg_signer_alg_name(tg_signer_alg_t alg);

/* Returns the signer certificate, borrowed: valid until tg_signer_free;
 * the caller must not free or modify it (X509_up_ref to keep it longer). */
X509 *tg_signer_cert(const tg_signer_t *s);

/* Returns the SHA-1 hash of the signer's subjectPublicKey BIT STRING
 * contents (TG_SIGNER_KEY_HASH_LEN bytes): the byKey responderID. Borrowed,
 * valid until tg_signer_free. */
const uint8_t *tg_signer_key_hash(const tg_signer_t *s);

/* Prepared DER, borrowed and valid until tg_signer_free:
 * - responderID byKey: [2] EXPLICIT OCTET STRING (the key hash);
 * - the signature AlgorithmIdentifier, as OpenSSL's provider states it;
 * - the signer certificate. */
tg_slice_t tg_signer_responder_id_der(const tg_signer_t *s);
tg_slice_t tg_signer_sigalg_der(const tg_signer_t *s);
tg_slice_t tg_signer_cert_der(const tg_signer_t *s);

/* Returns the largest signature the signer can produce, in bytes
 * (at most TG_SIGNER_MAX_SIG_LEN). */
size_t tg_signer_max_sig_len(const tg_signer_t *s);

/* Signs the len bytes at msg with the signer's algorithm (SM2: SM3 with
 * the standard ID). out_sig has room for *inout_sig_len bytes, which must
 * be at least tg_signer_max_sig_len(s); on success *inout_sig_len is the
 * signature's length. Returns 0, TG_EINVAL (buffer too small), TG_ENOMEM
 * or TG_ECRYPTO (logged). Thread-safe:
 * uses a fresh EVP_MD_CTX per call. */
TG_WUR int tg_signer_sign(const tg_signer_t *s, const uint8_t *msg, size_t len, uint8_t *out_sig,
                          size_t *inout_sig_len);

#endif
