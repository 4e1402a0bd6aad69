/* CRL parsing and verification: an in-place DER walk (see pki/crl.h). */
#include "pki/crl.h"

#include "pki/pki_internal.h"
#include "pki/sm2.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <limits.h>
#include <string.h>

#define TAG_BOOLEAN 0x01
#define TAG_INTEGER 0x02
#define TAG_BIT_STRING 0x03
#define TAG_OCTET_STRING 0x04
#define TAG_OID 0x06
#define TAG_ENUMERATED 0x0a
#define TAG_UTCTIME 0x17
#define TAG_GENTIME 0x18
#define TAG_SEQUENCE 0x30
#define TAG_CTX0 0xa0 /* [0] EXPLICIT, constructed */

/* id-ce arcs (2.5.29.x) of the extensions we know: the OID contents. */
#define ID_CE_LEN 3
static const uint8_t oid_crl_number[ID_CE_LEN] = {0x55, 0x1d, 0x14};  /* 2.5.29.20 */
static const uint8_t oid_reason[ID_CE_LEN] = {0x55, 0x1d, 0x15};      /* 2.5.29.21 */
static const uint8_t oid_inval_date[ID_CE_LEN] = {0x55, 0x1d, 0x18};  /* 2.5.29.24 */
static const uint8_t oid_delta[ID_CE_LEN] = {0x55, 0x1d, 0x1b};       /* 2.5.29.27 */
static const uint8_t oid_cert_issuer[ID_CE_LEN] = {0x55, 0x1d, 0x1d}; /* 2.5.29.29 */
static const uint8_t oid_aki[ID_CE_LEN] = {0x55, 0x1d, 0x23};         /* 2.5.29.35 */

/* One parsed Extension. */
typedef struct {
    const uint8_t *oid;
    size_t oid_len;
    int critical;
    const uint8_t *value; /* extnValue contents */
    size_t value_len;
} ext_t;

static int oid_is(const ext_t *e, const uint8_t oid[ID_CE_LEN])
{
    return e->oid_len == ID_CE_LEN && memcmp(e->oid, oid, ID_CE_LEN) == 0;
}

/* Reads one element of the expected tag. */
static int expect(const uint8_t **p, const uint8_t *end, uint8_t want, const uint8_t **out_c,
                  size_t *out_n)
{
    uint8_t tag;
    if (tg_pki_der_next(p, end, &tag, out_c, out_n) != 0 || tag != want)
        return TG_EMALFORMED;
    return 0;
}

/* Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE,
 *                          extnValue OCTET STRING } */
static int read_ext(const uint8_t **p, const uint8_t *end, ext_t *out)
{
    const uint8_t *c, *q, *qend, *b;
    size_t n, bn;
    uint8_t tag;
    if (expect(p, end, TAG_SEQUENCE, &c, &n) != 0)
        return TG_EMALFORMED;
    q = c;
    qend = c + n;
    if (expect(&q, qend, TAG_OID, &out->oid, &out->oid_len) != 0 || out->oid_len == 0)
        return TG_EMALFORMED;
    if (tg_pki_der_next(&q, qend, &tag, &b, &bn) != 0)
        return TG_EMALFORMED;
    out->critical = 0;
    if (tag == TAG_BOOLEAN) {
        /* DER: TRUE is FF; FALSE should be absent, tolerated when explicit. */
        if (bn != 1 || (b[0] != 0x00 && b[0] != 0xff))
            return TG_EMALFORMED;
        out->critical = b[0] == 0xff;
        if (tg_pki_der_next(&q, qend, &tag, &b, &bn) != 0)
            return TG_EMALFORMED;
    }
    if (tag != TAG_OCTET_STRING || q != qend)
        return TG_EMALFORMED;
    out->value = b;
    out->value_len = bn;
    return 0;
}

/* Checks that an INTEGER's content octets are minimal (X.690 §8.3.2). */
static int int_minimal(const uint8_t *c, size_t n)
{
    if (n == 0)
        return 0;
    if (n > 1 && ((c[0] == 0x00 && !(c[1] & 0x80)) || (c[0] == 0xff && (c[1] & 0x80))))
        return 0;
    return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const uint8_t *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return TG_EMALFORMED;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Time ::= CHOICE { UTCTime, GeneralizedTime } in the strict DER forms of
 * RFC 5280 §4.1.2.5: YYMMDDHHMMSSZ (YY < 50 is 20YY) or YYYYMMDDHHMMSSZ. */
static int parse_time(uint8_t tag, const uint8_t *c, size_t n, int64_t *out)
{
    unsigned y, mo, d, h, mi, s;
    size_t yl;
    if (tag == TAG_UTCTIME && n == 13)
        yl = 2;
    else if (tag == TAG_GENTIME && n == 15)
        yl = 4;
    else
        return TG_EMALFORMED;
    if (c[n - 1] != 'Z' || digits(c, yl, &y) != 0 || digits(c + yl, 2, &mo) != 0 ||
        digits(c + yl + 2, 2, &d) != 0 || digits(c + yl + 4, 2, &h) != 0 ||
        digits(c + yl + 6, 2, &mi) != 0 || digits(c + yl + 8, 2, &s) != 0)
        return TG_EMALFORMED;
    if (yl == 2)
        y += y < 50 ? 2000 : 1900;
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || s > 59)
        return TG_EMALFORMED;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return TG_EMALFORMED;
    *out = days_from_civil((int64_t)y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + s;
    return 0;
}

static int read_time(const uint8_t **p, const uint8_t *end, int64_t *out)
{
    const uint8_t *c;
    size_t n;
    uint8_t tag;
    if (tg_pki_der_next(p, end, &tag, &c, &n) != 0)
        return TG_EMALFORMED;
    return parse_time(tag, c, n, out);
}

/* crlExtensions: [0] EXPLICIT Extensions (RFC 5280 §5.2). */
static int parse_crl_exts(const uint8_t *c, size_t n, tg_crl_info_t *out)
{
    const uint8_t *p = c, *end = c + n, *s, *send;
    size_t sn;
    int seen_number = 0, seen_aki = 0, seen_delta = 0, unsupported = 0;
    if (expect(&p, end, TAG_SEQUENCE, &s, &sn) != 0 || p != end || sn == 0)
        return TG_EMALFORMED;
    p = s;
    send = s + sn;
    /* Walk every extension before refusing as unsupported, so that a
     * malformed one is told apart from a well-formed but unsupported one. */
    while (p < send) {
        ext_t e;
        if (read_ext(&p, send, &e) != 0)
            return TG_EMALFORMED;
        if (oid_is(&e, oid_crl_number)) {
            const uint8_t *q = e.value, *ic;
            size_t in;
            if (seen_number++ || expect(&q, e.value + e.value_len, TAG_INTEGER, &ic, &in) != 0 ||
                q != e.value + e.value_len || !int_minimal(ic, in) || (ic[0] & 0x80) ||
                in > TG_CRL_NUMBER_MAX)
                return TG_EMALFORMED;
            memcpy(out->crl_number, ic, in);
            out->crl_number_len = (uint8_t)in;
        } else if (oid_is(&e, oid_aki)) {
            const uint8_t *q = e.value, *ac;
            size_t an;
            if (seen_aki++ || expect(&q, e.value + e.value_len, TAG_SEQUENCE, &ac, &an) != 0 ||
                q != e.value + e.value_len)
                return TG_EMALFORMED;
            out->aki = TG_SLICE(e.value, e.value_len);
        } else if (oid_is(&e, oid_delta)) {
            if (seen_delta++)
                return TG_EMALFORMED;
            unsupported = 1; /* delta CRLs: not yet */
        } else if (e.critical) {
            unsupported = 1; /* e.g. issuingDistributionPoint: scope we cannot honour */
        }
    }
    return unsupported ? TG_EUNSUPPORTED : 0;
}

int tg_crl_parse(const uint8_t *der, size_t len, size_t max_bytes, tg_crl_info_t *out)
{
    if (der == NULL || out == NULL)
        return TG_EINVAL;
    if (len > max_bytes)
        return TG_ETOOBIG;
    memset(out, 0, sizeof(*out));

    /* CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm,
     *                                signatureValue }, and nothing after. */
    const uint8_t *p = der, *end = der + len, *c, *t;
    size_t n;
    uint8_t tag;
    if (expect(&p, end, TAG_SEQUENCE, &c, &n) != 0 || p != end)
        return TG_EMALFORMED;
    p = c;
    end = c + n;
    const uint8_t *tbs_c;
    size_t tbs_n;
    t = p;
    if (expect(&p, end, TAG_SEQUENCE, &tbs_c, &tbs_n) != 0)
        return TG_EMALFORMED;
    out->tbs = TG_SLICE(t, (size_t)(p - t));
    t = p;
    if (expect(&p, end, TAG_SEQUENCE, &c, &n) != 0)
        return TG_EMALFORMED;
    out->sig_alg = TG_SLICE(t, (size_t)(p - t));
    t = p;
    if (expect(&p, end, TAG_BIT_STRING, &c, &n) != 0 || n < 2 || c[0] != 0 || p != end)
        return TG_EMALFORMED;
    out->sig = TG_SLICE(t, (size_t)(p - t));

    /* TBSCertList ::= SEQUENCE { version Version OPTIONAL (v2), signature,
     *   issuer, thisUpdate, nextUpdate OPTIONAL, revokedCertificates
     *   OPTIONAL, crlExtensions [0] EXPLICIT OPTIONAL } */
    p = tbs_c;
    end = tbs_c + tbs_n;
    int v2 = 0;
    t = p;
    if (tg_pki_der_next(&p, end, &tag, &c, &n) != 0)
        return TG_EMALFORMED;
    if (tag == TAG_INTEGER) {
        if (n != 1 || c[0] != 1) /* v2(1); v1 is encoded by omission */
            return TG_EMALFORMED;
        v2 = 1;
        out->version = 1;
        t = p;
        if (tg_pki_der_next(&p, end, &tag, &c, &n) != 0)
            return TG_EMALFORMED;
    }
    /* §5.1.2.2: the same algorithm as signatureAlgorithm, byte for byte. */
    if (tag != TAG_SEQUENCE || (size_t)(p - t) != out->sig_alg.n ||
        memcmp(t, out->sig_alg.p, out->sig_alg.n) != 0)
        return TG_EMALFORMED;
    t = p;
    if (expect(&p, end, TAG_SEQUENCE, &c, &n) != 0)
        return TG_EMALFORMED;
    out->issuer = TG_SLICE(t, (size_t)(p - t));
    if (read_time(&p, end, &out->this_update) != 0)
        return TG_EMALFORMED;
    /* nextUpdate: OPTIONAL in the ASN.1, but §5.1.2.5 makes it a MUST and
     * without it nothing says when the data goes stale. */
    if (p == end || (*p != TAG_UTCTIME && *p != TAG_GENTIME))
        return TG_EMALFORMED;
    if (read_time(&p, end, &out->next_update) != 0)
        return TG_EMALFORMED;
    if (p < end && *p == TAG_SEQUENCE) {
        if (expect(&p, end, TAG_SEQUENCE, &c, &n) != 0)
            return TG_EMALFORMED;
        out->revoked = TG_SLICE(c, n);
    }
    if (p < end) {
        if (expect(&p, end, TAG_CTX0, &c, &n) != 0 || p != end || !v2)
            return TG_EMALFORMED; /* §5.1.2.1: extensions require v2 */
        return parse_crl_exts(c, n, out);
    }
    return 0;
}

/* crlEntryExtensions of one entry: reasonCode read, invalidityDate
 * ignored, certificateIssuer (indirect CRL) and unknown critical ones
 * refused. */
static int parse_entry_exts(const uint8_t *c, size_t n, tg_crl_entry_t *out)
{
    const uint8_t *p = c, *end = c + n;
    int seen_reason = 0, seen_inval = 0, unsupported = 0;
    if (n == 0)
        return TG_EMALFORMED; /* Extensions ::= SEQUENCE SIZE (1..MAX) */
    while (p < end) {
        ext_t e;
        if (read_ext(&p, end, &e) != 0)
            return TG_EMALFORMED;
        if (oid_is(&e, oid_reason)) {
            const uint8_t *q = e.value, *rc;
            size_t rn;
            if (seen_reason++ || expect(&q, e.value + e.value_len, TAG_ENUMERATED, &rc, &rn) != 0 ||
                q != e.value + e.value_len || rn != 1 || rc[0] > 10 || rc[0] == 7)
                return TG_EMALFORMED;
            out->reason = (int8_t)rc[0];
        } else if (oid_is(&e, oid_inval_date)) {
            if (seen_inval++)
                return TG_EMALFORMED;
        } else if (oid_is(&e, oid_cert_issuer) || e.critical) {
            unsupported = 1;
        }
    }
    return unsupported ? TG_EUNSUPPORTED : 0;
}

int tg_crl_for_each_revoked(const tg_crl_info_t *info, tg_crl_entry_cb cb, void *arg)
{
    if (info == NULL || cb == NULL || (info->revoked.p == NULL && info->revoked.n != 0))
        return TG_EINVAL;
    if (info->revoked.n == 0)
        return 0; /* also keeps NULL + 0 out */
    const uint8_t *p = info->revoked.p, *end = p + info->revoked.n;
    int count = 0;
    while (p < end) {
        const uint8_t *c, *q, *qend, *sc;
        size_t n, sn;
        tg_crl_entry_t e;
        int rc;
        if (count == INT_MAX)
            return TG_ETOOBIG;
        /* SEQUENCE { userCertificate CertificateSerialNumber, revocationDate
         *            Time, crlEntryExtensions Extensions OPTIONAL } */
        if (expect(&p, end, TAG_SEQUENCE, &c, &n) != 0)
            return TG_EMALFORMED;
        q = c;
        qend = c + n;
        if (expect(&q, qend, TAG_INTEGER, &sc, &sn) != 0 || !int_minimal(sc, sn) ||
            (sc[0] & 0x80) || (sn == 1 && sc[0] == 0) || sn > TG_SERIAL_MAX_LEN)
            return TG_EMALFORMED;
        e.serial_len = (uint8_t)sn;
        memcpy(e.serial, sc, sn);
        e.reason = -1;
        if (read_time(&q, qend, &e.revocation_time) != 0)
            return TG_EMALFORMED;
        if (q < qend) {
            /* §5.1.2.1: entry extensions require v2 */
            if (info->version != 1 || expect(&q, qend, TAG_SEQUENCE, &c, &n) != 0 || q != qend)
                return TG_EMALFORMED;
            rc = parse_entry_exts(c, n, &e);
            if (rc != 0)
                return rc;
        }
        count++;
        rc = cb(arg, &e);
        if (rc < 0)
            return rc;
        if (rc > 0)
            break;
    }
    return count;
}

static int inside(tg_slice_t s, const uint8_t *der, size_t len)
{
    return s.p != NULL && s.p >= der && s.n <= len && (size_t)(s.p - der) <= len - s.n;
}

int tg_crl_verify(const tg_crl_info_t *info, const uint8_t *der, size_t len, X509 *issuer_ca,
                  const char **out_reason)
{
    const char *why = "malformed";
    X509_NAME *name = NULL;
    X509_ALGOR *alg = NULL;
    ASN1_BIT_STRING *sig = NULL;
    AUTHORITY_KEYID *aki = NULL;
    int rc = TG_EMALFORMED;
    if (out_reason != NULL)
        *out_reason = NULL;
    if (info == NULL || der == NULL || issuer_ca == NULL || !inside(info->tbs, der, len) ||
        !inside(info->sig_alg, der, len) || !inside(info->sig, der, len) ||
        !inside(info->issuer, der, len))
        return TG_EINVAL;

    /* The issuer: X509_NAME_cmp compares the canonical encodings (RFC 5280
     * §7.1 name matching, as OpenSSL's own CRL checks do). */
    const unsigned char *q = info->issuer.p;
    name = d2i_X509_NAME(NULL, &q, (long)info->issuer.n);
    if (name == NULL) {
        rc = tg_pki_peer_error();
        goto out;
    }
    const X509_NAME *subject = X509_get_subject_name(issuer_ca);
    if (subject == NULL || X509_NAME_cmp(name, subject) != 0) {
        ERR_clear_error(); /* X509_NAME_cmp may fail to canonicalise */
        why = "wrong_issuer";
        goto out;
    }
    /* §4.2.1.3: a CA with keyUsage signs CRLs only with cRLSign.
     * X509_get_key_usage computes the extension cache if needed. */
    uint32_t ku = X509_get_key_usage(issuer_ca);
    if ((X509_get_extension_flags(issuer_ca) & EXFLAG_INVALID) != 0) {
        ERR_clear_error();
        why = "no_crl_sign";
        goto out;
    }
    if ((X509_get_extension_flags(issuer_ca) & EXFLAG_KUSAGE) != 0 && !(ku & KU_CRL_SIGN)) {
        why = "no_crl_sign";
        goto out;
    }
    /* §5.2.1: when both the CRL's authorityKeyIdentifier and the CA's
     * subjectKeyIdentifier name a key, they must agree (a CA that changed
     * its key keeps its name). */
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(issuer_ca);
    if (info->aki.n != 0 && skid != NULL) {
        q = info->aki.p;
        aki = d2i_AUTHORITY_KEYID(NULL, &q, (long)info->aki.n);
        if (aki == NULL) {
            rc = tg_pki_peer_error();
            goto out;
        }
        if (aki->keyid != NULL && ASN1_OCTET_STRING_cmp(aki->keyid, skid) != 0) {
            why = "wrong_issuer";
            goto out;
        }
    }
    if (info->next_update <= info->this_update) {
        why = "bad_times";
        goto out;
    }

    q = info->sig_alg.p;
    alg = d2i_X509_ALGOR(NULL, &q, (long)info->sig_alg.n);
    if (alg == NULL) {
        rc = tg_pki_peer_error();
        goto out;
    }
    q = info->sig.p;
    sig = d2i_ASN1_BIT_STRING(NULL, &q, (long)info->sig.n);
    if (sig == NULL) {
        rc = tg_pki_peer_error();
        goto out;
    }
    EVP_PKEY *key = X509_get0_pubkey(issuer_ca);
    if (key == NULL) {
        ERR_clear_error();
        why = "bad_signature";
        goto out;
    }
    rc = tg_pki_verify_signature(alg, sig, info->tbs.p, info->tbs.n, key);
    if (rc == TG_EMALFORMED)
        why = "bad_signature";
    else if (rc == 0)
        why = NULL;
out:
    if (rc == TG_EMALFORMED && out_reason != NULL)
        *out_reason = why;
    X509_NAME_free(name);
    X509_ALGOR_free(alg);
    ASN1_BIT_STRING_free(sig);
    AUTHORITY_KEYID_free(aki);
    return rc;
}

int tg_crl_number_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    while (alen > 0 && a[0] == 0) {
        a++;
        alen--;
    }
    while (blen > 0 && b[0] == 0) {
        b++;
        blen--;
    }
    if (alen != blen)
        return alen < blen ? -1 : 1;
    return alen == 0 ? 0 : memcmp(a, b, alen);
}
