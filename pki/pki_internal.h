/* Helpers shared by the pki/ sources and their tests only; never included
 * from outside pki/. */
#ifndef TG_PKI_INTERNAL_H
#define TG_PKI_INTERNAL_H

#include "common/err.h"
#include "pki/ocsp.h"

#include <openssl/ocsp.h>

/* Maps an OpenSSL digest NID to a CertID hash algorithm (the reverse of
 * tg_pki_hash_md in pki/certid.h). Returns 0, or TG_EUNSUPPORTED for any
 * digest outside SPEC §5 (MD5, SHA-224, ...). */
TG_WUR int tg_pki_hash_alg_from_nid(int nid, tg_hash_alg_t *out_alg);

/* Copies an OpenSSL CertID (from a request or a SingleResponse) into *out.
 *
 * The serial is stored as the content octets of its DER INTEGER: minimal,
 * with a leading 00 when the top bit of the magnitude is set (serial 0x80 is
 * "00 80"), so the same certificate always yields the same bytes whatever
 * parsed it. Compare CertIDs with tg_certid_eq (pki/ocsp.h).
 *
 * Returns 0, or TG_EMALFORMED when the hash algorithm is not one of
 * SPEC §5, a hash is not exactly that algorithm's length, or the serial is
 * zero, negative or longer than TG_SERIAL_MAX_LEN content octets. Pushes
 * nothing onto the OpenSSL error queue. id is only read (OpenSSL's getter
 * is not const-qualified). */
TG_WUR int tg_pki_certid_from_ocsp(OCSP_CERTID *id, tg_certid_t *out);

/* Drains the OpenSSL error queue after a failure on peer-supplied data (an
 * expected outcome, not logged). Returns TG_ENOMEM when OpenSSL ran out of
 * memory, else TG_EMALFORMED. */
int tg_pki_peer_error(void);

#endif
