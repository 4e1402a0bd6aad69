/* CRL parsing and verification (RFC 5280 §5) for CRL ingestion.
 *
 * A CRL is walked as DER in place, never d2i'd whole: a CRL of a million
 * entries is never held parsed in memory. tg_crl_parse checks the outer
 * structure and reads the CRL-level fields; tg_crl_verify checks the issuer,
 * times and the (SM2-aware) signature against the CA certificate;
 * tg_crl_for_each_revoked then hands the revoked entries over one at a time.
 *
 * Profile (what is refused):
 * - anything but DER-shaped definite lengths, trailing bytes, a CRL larger
 *   than the caller's limit;
 * - a version other than v2 (or absent, v1, only without CRL or entry
 *   extensions: RFC 5280 §5.1.2.1);
 * - inner and outer signature algorithms that differ (§5.1.1.2);
 * - a missing nextUpdate (§5.1.2.5: conforming CAs MUST include it);
 * - delta CRLs (deltaCRLIndicator), indirect CRLs (certificateIssuer entry
 *   extension), and any unknown critical CRL or entry extension
 *   (TG_EUNSUPPORTED: well-formed, but trustgate cannot honour it);
 * - duplicate extensions, a cRLNumber longer than 20 octets or negative,
 *   a serial that is not a positive minimal INTEGER of at most
 *   TG_SERIAL_MAX_LEN content octets, a reasonCode outside 0..10 or equal
 *   to 7 (TG_EMALFORMED).
 * issuingDistributionPoint (always critical) is refused as an unknown
 * critical extension on purpose: a CRL limited to a partition, to some
 * reasons, or to user or CA certificates does not make "absent from the
 * CRL" mean "good" for every certificate of the CA. An empty
 * revokedCertificates SEQUENCE (which §5.1.2.6 says to omit) is tolerated.
 *
 * Nothing here logs or leaves anything on the OpenSSL error queue: a bad
 * CRL is an expected outcome with peer data. */
#ifndef TG_PKI_CRL_H
#define TG_PKI_CRL_H

#include "common/buf.h"
#include "common/err.h"
#include "pki/ocsp.h"

#include <openssl/types.h>

#include <stddef.h>
#include <stdint.h>

/* RFC 5280 §5.2.3: conforming CRL numbers are at most 20 octets. */
#define TG_CRL_NUMBER_MAX 20

/* What tg_crl_parse reads. Every slice points into the der given to
 * tg_crl_parse and is valid as long as that buffer is; the struct owns
 * nothing and needs no freeing. */
typedef struct {
    tg_slice_t tbs;      /* the whole tbsCertList TLV: the signed bytes */
    tg_slice_t sig_alg;  /* the outer signatureAlgorithm TLV (AlgorithmIdentifier) */
    tg_slice_t sig;      /* the signatureValue TLV (BIT STRING) */
    tg_slice_t issuer;   /* the issuer Name TLV */
    uint8_t version;     /* 0 (v1, version absent) or 1 (v2) */
    int64_t this_update; /* seconds since the epoch, UTC */
    int64_t next_update; /* seconds since the epoch, UTC (always present) */
    /* Content octets of the revokedCertificates SEQUENCE OF, not walked yet
     * (n == 0 when absent or empty); see tg_crl_for_each_revoked. */
    tg_slice_t revoked;
    /* cRLNumber as the content octets of its (non-negative, minimal) DER
     * INTEGER; crl_number_len is 0 when the extension is absent. */
    uint8_t crl_number_len;
    uint8_t crl_number[TG_CRL_NUMBER_MAX];
    /* The authorityKeyIdentifier extnValue contents (an AuthorityKeyIdentifier
     * SEQUENCE TLV); n == 0 when absent. */
    tg_slice_t aki;
} tg_crl_info_t;

/* One revoked entry, as handed to a tg_crl_for_each_revoked callback. The
 * fields match tg_cache_revoked_entry_t (cache/cache.h), which the caller
 * fills from it (pki does not depend on cache). */
typedef struct {
    uint8_t serial_len; /* 1..TG_SERIAL_MAX_LEN */
    /* content octets of the DER INTEGER, the encoding of tg_certid_t.serial */
    uint8_t serial[TG_SERIAL_MAX_LEN];
    int64_t revocation_time; /* seconds since the epoch, UTC */
    int8_t reason;           /* CRLReason (RFC 5280 §5.3.1), -1 when absent */
} tg_crl_entry_t;

/* Called once per revoked entry, in CRL order. entry is only valid during
 * the call. Returns 0 to go on, a positive value to stop the walk early, or
 * a negative TG_E* code to abort it (returned by tg_crl_for_each_revoked as
 * is). */
typedef int (*tg_crl_entry_cb)(void *arg, const tg_crl_entry_t *entry);

/* Parses the CertificateList of len bytes at der (the whole input must be
 * exactly one CertificateList) into *out, walking the DER in place; the
 * revoked entries are only sliced, not checked (tg_crl_for_each_revoked
 * does that). *out borrows from der: its slices stay valid as long as der.
 * *out is undefined on failure. Returns 0, TG_ETOOBIG (len > max_bytes),
 * TG_EMALFORMED, or TG_EUNSUPPORTED (delta CRL, unknown critical
 * extension); TG_EINVAL for a NULL argument. Allocates nothing;
 * thread-safe. */
TG_WUR int tg_crl_parse(const uint8_t *der, size_t len, size_t max_bytes, tg_crl_info_t *out);

/* Verifies a parsed CRL against the CA certificate that should have issued
 * it: the issuer Name equals the CA's subject (X509_NAME_cmp), the CRL's
 * authorityKeyIdentifier keyIdentifier, when both it and the CA's
 * subjectKeyIdentifier are present, equals the latter, the CA's
 * keyUsage, when present, allows cRLSign, nextUpdate is after thisUpdate,
 * and the signature over info->tbs verifies with the CA's key (SM2 with the
 * standard distinguishing ID; pki/sm2.h). der/len are the buffer info was
 * parsed from (info's slices must lie inside it). Does not look at the
 * current time: freshness is the caller's.
 *
 * Returns 0; TG_EMALFORMED when refused, with *out_reason set to a static
 * string (never freed) naming why: "bad_signature", "wrong_issuer",
 * "bad_times", "no_crl_sign" or "malformed"; TG_ENOMEM; TG_EINVAL (NULL
 * argument, or info not inside der). Nothing is logged; everything is
 * borrowed; the CA certificate is not modified beyond OpenSSL's own
 * extension cache (compute it with X509_check_purpose before sharing the
 * certificate between threads). out_reason may be NULL. */
TG_WUR int tg_crl_verify(const tg_crl_info_t *info, const uint8_t *der, size_t len, X509 *issuer_ca,
                         const char **out_reason);

/* Walks info->revoked one entry at a time, checking each (see the top of
 * this header) and calling cb(arg, entry); nothing is allocated and the
 * entries are never held together. Returns the number of entries handed to
 * cb (including the one on which cb asked to stop), cb's negative return
 * value, TG_EMALFORMED / TG_EUNSUPPORTED when an entry is refused, or
 * TG_ETOOBIG past INT_MAX entries. An error may come after cb has seen
 * earlier entries: the caller must then drop the whole CRL (e.g. abort its
 * write transaction). */
TG_WUR int tg_crl_for_each_revoked(const tg_crl_info_t *info, tg_crl_entry_cb cb, void *arg);

/* Compares two CRL numbers given as content octets of non-negative DER
 * INTEGERs (as in tg_crl_info_t.crl_number), numerically; leading zero
 * octets are ignored and an empty number counts as 0. Returns <0, 0 or >0
 * like memcmp. A new CRL whose number compares < 0 against the stored one
 * goes backwards and must be refused (RFC 5280 §5.2.3). */
int tg_crl_number_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif
