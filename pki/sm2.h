/* SM2-aware signing and signature verification: the one place that knows
 * about the SM2 distinguishing ID.
 *
 * An SM2 signature covers Z_A = SM3(ENTL || ID || curve || public key) in
 * front of the message. GM/T 0009-2012 fixes the ID, when nothing else is
 * agreed, as the 16 bytes "1234567812345678", and every Chinese CA signs
 * with it; OpenSSL 3.0 defaults to an empty ID (openssl#23162) and passes no
 * ID at all in X509_CRL_verify and OCSP_basic_verify. Every SM2 sign and
 * verify path of trustgate therefore goes through these helpers (SPEC §5;
 * research/sm2-openssl.md).
 *
 * Signatures are always checked over the exact bytes that were signed,
 * sliced from the original DER, never over a re-encoding (which can differ
 * for input that is BER rather than DER).
 *
 * Verification results: 0 means the signature verifies; TG_EMALFORMED means
 * it does not, or the input does not parse, or the algorithm does not fit
 * the key. Such failures are an expected outcome with peer data: they are
 * not logged and the OpenSSL error queue is left empty. TG_ENOMEM is told
 * apart from them. */
#ifndef TG_PKI_SM2_H
#define TG_PKI_SM2_H

#include "common/err.h"

#include <openssl/types.h>

#include <stddef.h>
#include <stdint.h>

/* The GM/T 0009-2012 default distinguishing ID, and its length. */
#define TG_SM2_ID "1234567812345678"
#define TG_SM2_ID_LEN 16

/* Returns 1 when pkey is an SM2 key (OpenSSL 3 loads an EC key on curve
 * SM2 from PEM, SPKI or key generation as type "SM2"), else 0. NULL gives
 * 0. Does not take ownership. */
int tg_pki_is_sm2(const EVP_PKEY *pkey);

/* Picks the digest trustgate signs with for pkey: SHA-256 for RSA and
 * ECDSA P-256, SHA-384 for P-384, SHA-512 for P-521, SM3 for SM2, and NULL
 * (no digest) for Ed25519 and Ed448. *out_md is a static object, never
 * freed. Returns 0, or TG_EUNSUPPORTED for any other key (RSA-PSS keys,
 * other curves, DSA, ...). */
TG_WUR int tg_pki_default_md(const EVP_PKEY *pkey, const EVP_MD **out_md);

/* Makes cert verifiable with the standard SM2 ID: when cert's signature
 * algorithm is SM2-with-SM3, sets its distinguishing ID (which X509_verify
 * and X509_STORE chain checks use) to TG_SM2_ID, replacing any earlier one;
 * for any other signature algorithm, does nothing (OpenSSL refuses to
 * verify an RSA or ECDSA signature when an ID is set). Mutates cert: call
 * it before the certificate is shared between threads, e.g. on each trust
 * anchor and intermediate before it enters an X509_STORE. Returns 0 or
 * TG_ENOMEM. */
TG_WUR int tg_pki_set_sm2_id(X509 *cert);

/* EVP_DigestSignInit on mctx (a fresh or reset context the caller owns)
 * for pkey and md, plus the SM2 ID when pkey is SM2. For SM2, md must be
 * SM3 or NULL (meaning SM3): OpenSSL refuses SM2 with any other digest. For
 * Ed25519/Ed448 md must be NULL. pkey is borrowed and must outlive the
 * context's use. Returns 0, TG_EINVAL (SM2 with another digest), or
 * TG_ECRYPTO (logged). Thread-safe for a shared pkey. */
TG_WUR int tg_pki_digest_sign_init(EVP_MD_CTX *mctx, EVP_PKEY *pkey, const EVP_MD *md);

/* The verifying counterpart of tg_pki_digest_sign_init. Returns 0,
 * TG_EINVAL (SM2 with another digest), TG_EMALFORMED when OpenSSL refuses
 * the key/digest pair (not logged; the key usually comes from a peer's
 * certificate) or TG_ENOMEM. */
TG_WUR int tg_pki_digest_verify_init(EVP_MD_CTX *mctx, EVP_PKEY *pkey, const EVP_MD *md);

/* Reads one DER header at *p (before end): a low tag number (one
 * identifier octet) and a definite length that fits before end. On success
 * sets *out_tag to the identifier octet, *out_content to the contents and
 * *out_len to their length, and leaves *p just after the element. Returns 0
 * or TG_EMALFORMED (also for an indefinite length). Allocates nothing and
 * pushes nothing onto the OpenSSL error queue. */
TG_WUR int tg_pki_der_next(const uint8_t **p, const uint8_t *end, uint8_t *out_tag,
                           const uint8_t **out_content, size_t *out_len);

/* Slices the first element out of a DER SEQUENCE: for a Certificate,
 * CertificateList or BasicOCSPResponse this is the signed TBS part. The
 * outer SEQUENCE must have a definite length and span exactly len bytes.
 * *out_tbs points into der (valid as long as der) and *out_tbs_len is the
 * whole TLV. Returns 0 or TG_EMALFORMED. */
TG_WUR int tg_pki_der_tbs(const uint8_t *der, size_t len, const uint8_t **out_tbs,
                          size_t *out_tbs_len);

/* Verifies that sig, under algorithm alg, is key's signature over the
 * tbs_len bytes at tbs, with the SM2 ID when key is SM2. The common
 * algorithms (RSA PKCS#1 v1.5 and ECDSA with SHA-1/2, SM2-with-SM3,
 * Ed25519, Ed448) are checked by streaming the bytes, with no copy;
 * anything else (RSA-PSS, ...) is left to OpenSSL's ASN1_item_verify_ex on
 * one copy. Signatures with MD2, MD4 or MD5 are refused. Nothing is kept.
 * Returns 0, TG_EMALFORMED (see the top of this header), TG_ENOMEM or
 * TG_EINVAL (NULL argument). Thread-safe. */
TG_WUR int tg_pki_verify_signature(const X509_ALGOR *alg, const ASN1_BIT_STRING *sig,
                                   const uint8_t *tbs, size_t tbs_len, EVP_PKEY *key);

/* Verifies cert's signature with issuer_key, SM2-aware, without touching
 * cert (unlike X509_verify with X509_set0_distinguishing_id, so it is safe
 * on a certificate shared between threads). Also requires the signature
 * algorithm inside the TBS to equal the outer one (RFC 5280 §4.1.1.2).
 * cert and issuer_key are borrowed. Returns 0, TG_EMALFORMED, TG_ENOMEM or
 * TG_EINVAL. */
TG_WUR int tg_pki_x509_verify_sm2aware(X509 *cert, EVP_PKEY *issuer_key);

/* Verifies a CRL's signature with issuer_key over the TBSCertList bytes
 * sliced from der, SM2-aware (X509_CRL_verify passes no SM2 ID and
 * verifies a re-encoding). der/len must be the exact encoding crl was
 * parsed from: the signature algorithm and value read from crl are checked
 * against those in der. Also requires the inner signature algorithm to
 * equal the outer one. Streams the TBS bytes: no copy of a large CRL is
 * made for the common algorithms. Everything is borrowed. Returns 0,
 * TG_EMALFORMED, TG_ENOMEM or TG_EINVAL. */
TG_WUR int tg_pki_crl_verify(X509_CRL *crl, const uint8_t *der, size_t len, EVP_PKEY *issuer_key);

/* Signs cert with key (X509_sign_ctx) using md, or the key's default digest
 * (tg_pki_default_md) when md is NULL; SM2 signs with SM3 and the standard
 * ID and then sets that ID on cert (tg_pki_set_sm2_id) so that it verifies
 * in place. The caller has filled in everything else; cert is modified,
 * key is borrowed. Returns 0, TG_EUNSUPPORTED (no default digest),
 * TG_EINVAL or TG_ECRYPTO (logged). For test and demo issuers; not
 * thread-safe on one cert. */
TG_WUR int tg_pki_sign_x509(X509 *cert, EVP_PKEY *key, const EVP_MD *md);

/* Signs crl like tg_pki_sign_x509 signs a certificate (X509_CRL_sign_ctx).
 * Returns 0, TG_EUNSUPPORTED, TG_EINVAL or TG_ECRYPTO (logged). */
TG_WUR int tg_pki_sign_crl(X509_CRL *crl, EVP_PKEY *key, const EVP_MD *md);

#endif
