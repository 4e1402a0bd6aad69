/* CertID hashing (RFC 6960 §4.1.1): the issuer name hash is the hash of the
 * DER of the issuer's subject name, the issuer key hash the hash of the
 * issuer's subjectPublicKey BIT STRING contents. */
#ifndef TG_PKI_CERTID_H
#define TG_PKI_CERTID_H

#include "common/err.h"
#include "pki/ocsp.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Returns the OpenSSL digest for alg (static; never freed), or NULL. */
const EVP_MD *tg_pki_hash_md(tg_hash_alg_t alg);

/* Computes the issuer name hash and key hash of CA certificate ca under alg
 * into out_name_hash and out_key_hash (each tg_hash_alg_len(alg) bytes, at
 * most TG_HASH_MAX_LEN). ca is borrowed. Returns 0 or TG_ECRYPTO (logged). */
TG_WUR int tg_pki_issuer_hashes(const X509 *ca, tg_hash_alg_t alg, uint8_t *out_name_hash,
                                uint8_t *out_key_hash);

/* Fills *out with the CertID of the certificate with the given serial
 * (content octets of the INTEGER, 1..TG_SERIAL_MAX_LEN) issued by ca, under
 * alg. Returns 0, TG_EINVAL for a bad serial length, or TG_ECRYPTO. */
TG_WUR int tg_pki_certid_for(const X509 *ca, tg_hash_alg_t alg, const uint8_t *serial,
                             size_t serial_len, tg_certid_t *out);

#endif
