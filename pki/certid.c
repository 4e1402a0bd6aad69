#include "pki/certid.h"

#include "common/log.h"

#include <string.h>

const EVP_MD *tg_pki_hash_md(tg_hash_alg_t alg)
{
    switch (alg) {
    case TG_HASH_SHA1: return EVP_sha1();
    case TG_HASH_SHA256: return EVP_sha256();
    case TG_HASH_SHA384: return EVP_sha384();
    case TG_HASH_SHA512: return EVP_sha512();
    case TG_HASH_SM3: return EVP_sm3();
    case TG_HASH_COUNT: break;
    }
    return NULL;
}

int tg_pki_issuer_hashes(const X509 *ca, tg_hash_alg_t alg, uint8_t *out_name_hash,
                         uint8_t *out_key_hash)
{
    const EVP_MD *md = tg_pki_hash_md(alg);
    if (md == NULL)
        return TG_EINVAL;
    unsigned char *name_der = NULL;
    int name_len = i2d_X509_NAME(X509_get_subject_name(ca), &name_der);
    if (name_len <= 0) {
        tg_log_openssl("i2d_X509_NAME");
        return TG_ECRYPTO;
    }
    const ASN1_BIT_STRING *key = X509_get0_pubkey_bitstr(ca);
    int ok = key != NULL &&
             EVP_Digest(name_der, (size_t)name_len, out_name_hash, NULL, md, NULL) == 1 &&
             EVP_Digest(ASN1_STRING_get0_data(key), (size_t)ASN1_STRING_length(key), out_key_hash,
                        NULL, md, NULL) == 1;
    OPENSSL_free(name_der);
    if (!ok) {
        tg_log_openssl("CertID issuer hashes");
        return TG_ECRYPTO;
    }
    return 0;
}

int tg_pki_certid_for(const X509 *ca, tg_hash_alg_t alg, const uint8_t *serial, size_t serial_len,
                      tg_certid_t *out)
{
    if (serial_len == 0 || serial_len > TG_SERIAL_MAX_LEN)
        return TG_EINVAL;
    memset(out, 0, sizeof(*out));
    int rc = tg_pki_issuer_hashes(ca, alg, out->name_hash, out->key_hash);
    if (rc != 0)
        return rc;
    out->alg = alg;
    out->hash_len = (uint8_t)tg_hash_alg_len(alg);
    out->serial_len = (uint8_t)serial_len;
    memcpy(out->serial, serial, serial_len);
    return 0;
}
