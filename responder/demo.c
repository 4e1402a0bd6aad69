/* `trustgate demo DIR` (SPEC §4): a complete, self-consistent demo world.
 *
 * Everything is made in process with OpenSSL (keys, certificates, CRLs;
 * SM2 through pki/sm2.h so that every SM2 signature carries the GM/T 0009
 * distinguishing ID), libxml2's tree API (the trust lists) and tg_tl_sign.
 * File names are fixed, so tests and the README can name them; keys,
 * serials and times differ per run. */
#include "responder/demo.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/file.h"
#include "common/log.h"
#include "pki/ocsp_verify.h"
#include "pki/sm2.h"
#include "trustlist/trustlist.h"

#include <libxml/tree.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/conf.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Where the demo trustgate listens (trustgate.ini, AIA and CRL DP URLs,
 * the lists' own URLs) unless --port says otherwise; the CAs' upstream
 * responders take the four ports after it. */
#define DEMO_HOST "127.0.0.1"
#define DEMO_DEFAULT_PORT 8080
#define DEMO_MIN_PORT 1024
#define DEMO_UPSTREAMS 4
#define DEMO_MAX_PORT (65535 - DEMO_UPSTREAMS)

#define DAY_S 86400L
#define CA_DAYS (10 * 365 + 2) /* ten years, leap days included */
#define EE_DAYS (2 * 365)
#define CRL_DAYS 7
#define LIST_DAYS 30
/* Certificates and "granted" statuses start a day back, so that a clock a
 * little behind (a VM, a container) still sees everything valid. */
#define BACKDATE_S DAY_S
#define SUSPENDED_AGO_S 3600L /* the suspended category: since an hour ago */
#define REVOKED_AGO_S 7200L   /* revoked end-entity certificates: two hours ago */

#define SERIAL_BYTES 16

#define URI_CA_PKC "http://uri.etsi.org/TrstSvc/Svctype/CA/PKC"
#define URI_GRANTED TG_TL_STATUS_PREFIX "granted"
#define URI_TSLTAG "http://uri.etsi.org/19612/TSLTag"
/* ETSI TS 119 612 §5.3.3, non-EU lists: ".../TSLType/CClist" with CC the
 * scheme territory. */
#define URI_TSLTYPE_PREFIX "http://uri.etsi.org/TrstSvc/TrustedList/TSLType/"

typedef enum {
    KEY_SM2 = 0,
    KEY_RSA2048 = 1,
    KEY_P256 = 2,
} key_alg_t;

typedef enum {
    KIND_ROOT = 0,     /* self-signed CA */
    KIND_CA = 1,       /* issuing CA, pathLen 0 */
    KIND_EE = 2,       /* end-entity signing certificate */
    KIND_OCSP = 3,     /* OCSP responder: id-kp-OCSPSigning + ocsp-nocheck */
    KIND_OPERATOR = 4, /* self-signed trust-list signing certificate */
} cert_kind_t;

/* One issuing CA = one certificate category (证书类别) on its side's list. */
typedef struct {
    const char *slug;        /* folder under the side: "personal-ca" */
    const char *cn;          /* the CA's commonName */
    const char *category_en; /* ServiceName */
    const char *category_zh;
    const char *ee_tag; /* in end-entity commonNames: "personal" */
    key_alg_t alg;
    const char *policy_arc; /* listed (matched by prefix) */
    const char *ee_policy;  /* carried by the end-entity certificates */
    int suspended;          /* 1: suspended on the list */
    int upstream_offset;    /* its `openssl ocsp -index` responder: port + this */

    X509 *cert;
    EVP_PKEY *key;
    char fp[65]; /* SHA-256 of the certificate's DER, hex */
} demo_ca_t;

/* One side of the mutual recognition. */
typedef struct {
    const char *name;      /* "gd", "hk": the trust-list name */
    const char *territory; /* SchemeTerritory and subject C= */
    const char *ca_org;    /* O= of the CA hierarchy */
    const char *root_cn;
    key_alg_t root_alg;
    const char *operator_en, *operator_zh; /* SchemeOperatorName */
    const char *operator_org;              /* O= of the operator certificate (at most 64 chars) */
    const char *operator_cn;
    key_alg_t operator_alg;
    const char *scheme_en; /* SchemeName */
    const char *street, *locality;
    const char *tsp_en, *tsp_zh; /* the one TSP of the side */
    const char *signer_cn;
    key_alg_t signer_alg;
    const char *mode; /* trustgate.ini: sign | relay */
    demo_ca_t cas[2];

    X509 *root, *operator_cert, *signer;
    EVP_PKEY *root_key, *operator_key, *signer_key;
} demo_side_t;

typedef struct {
    char dir[PATH_MAX]; /* DIR, absolute */
    int port;           /* trustgate's; upstream responders at port + 1..4 */
    char hostport[32];  /* "127.0.0.1:PORT" */
    char base_url[48];  /* "http://127.0.0.1:PORT", no trailing slash */
    time_t now;
    CONF *conf; /* empty: some X509V3 extensions insist on a config database */
    demo_side_t sides[2];
    tg_buf_t certs_txt;
    tg_buf_t certids_txt;
} world_t;

/* ---- small helpers --------------------------------------------------- */

static const char *key_alg_name(key_alg_t alg)
{
    switch (alg) {
    case KEY_SM2: return "sm2";
    case KEY_RSA2048: return "rsa2048";
    case KEY_P256: return "ecdsa-p256";
    }
    return "unknown";
}

/* "YYYY-MM-DDThh:mm:ssZ" into out (at least 21 bytes). */
static void iso_time(time_t t, char out[21])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 21, "1970-01-01T00:00:00Z");
}

/* The UTCTime form `openssl ca` writes into index.txt ("YYMMDDhhmmssZ"),
 * valid until 2049. */
static void index_time(time_t t, char out[14])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, 14, "700101000000Z");
        return;
    }
    snprintf(out, 14, "%02u%02u%02u%02u%02u%02uZ", (unsigned)tm.tm_year % 100u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
             (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u);
}

static int upstream_port(const world_t *w, const demo_ca_t *ca)
{
    return w->port + ca->upstream_offset;
}

static int path_of(const world_t *w, const char *rel, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", w->dir, rel);
    if (n < 0 || (size_t)n >= cap) {
        tg_error("demo: path too long: %s/%s", w->dir, rel);
        return TG_EINVAL;
    }
    return 0;
}

/* Writes len bytes to DIR/rel (created or truncated) with the given mode. */
static int write_file(const world_t *w, const char *rel, const void *data, size_t len, mode_t mode)
{
    char path[PATH_MAX];
    int rc = path_of(w, rel, path, sizeof(path));
    if (rc != 0)
        return rc;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        tg_error("demo: %s: %s", path, strerror(errno));
        return TG_EIO;
    }
    /* an existing file (--force) keeps its mode through O_CREAT */
    if (fchmod(fd, mode) != 0) {
        tg_error("demo: %s: chmod: %s", path, strerror(errno));
        close(fd);
        return TG_EIO;
    }
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            tg_error("demo: %s: %s", path, strerror(errno));
            close(fd);
            return TG_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    if (close(fd) != 0) {
        tg_error("demo: %s: %s", path, strerror(errno));
        return TG_EIO;
    }
    return 0;
}

/* Writes what a BIO memory buffer holds to DIR/rel; frees bio. */
static int write_bio(const world_t *w, const char *rel, BIO *bio, mode_t mode)
{
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    int rc = TG_ECRYPTO;
    if (n > 0)
        rc = write_file(w, rel, p, (size_t)n, mode);
    else
        tg_error("demo: %s: nothing to write", rel);
    BIO_free(bio);
    return rc;
}

static int write_cert(const world_t *w, const char *rel, X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_X509(bio, x) != 1) {
        tg_log_openssl("PEM_write_bio_X509");
        BIO_free(bio);
        return TG_ECRYPTO;
    }
    return write_bio(w, rel, bio, 0644);
}

/* Private keys: unencrypted PKCS#8 PEM, mode 0600. */
static int write_key(const world_t *w, const char *rel, EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
        tg_log_openssl("PEM_write_bio_PrivateKey");
        BIO_free(bio);
        return TG_ECRYPTO;
    }
    return write_bio(w, rel, bio, 0600);
}

/* Creates DIR/rel when missing. */
static int make_subdir(const world_t *w, const char *rel)
{
    char path[PATH_MAX];
    int rc = path_of(w, rel, path, sizeof(path));
    if (rc != 0)
        return rc;
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        tg_error("demo: mkdir %s: %s", path, strerror(errno));
        return TG_EIO;
    }
    return 0;
}

/* mkdir -p path. */
static int mkdir_p(const char *path)
{
    char failed[256];
    if (tg_file_mkdirs(path, 0755, failed, sizeof(failed)) != 0) {
        tg_error("demo: mkdir %s: %s", failed[0] ? failed : path, strerror(errno));
        return TG_EIO;
    }
    return 0;
}

/* Returns 1 when the folder has entries other than . and .., 0 when not,
 * or a negative TG_E* code. */
static int dir_has_entries(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        tg_error("demo: %s: %s", path, strerror(errno));
        return TG_EIO;
    }
    int found = 0;
    struct dirent *e;
    errno = 0;
    while (!found && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            found = 1;
    }
    int err = errno;
    closedir(d);
    if (!found && err != 0) {
        tg_error("demo: %s: %s", path, strerror(err));
        return TG_EIO;
    }
    return found;
}

/* ---- keys and certificates -------------------------------------------- */

static int gen_key(key_alg_t alg, EVP_PKEY **out)
{
    EVP_PKEY *k = NULL;
    switch (alg) {
    case KEY_SM2: k = EVP_PKEY_Q_keygen(NULL, NULL, "SM2"); break;
    case KEY_RSA2048: k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048); break;
    case KEY_P256: k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); break;
    }
    if (k == NULL) {
        tg_log_openssl("EVP_PKEY_Q_keygen");
        return TG_ECRYPTO;
    }
    *out = k;
    return 0;
}

/* A random positive serial of SERIAL_BYTES octets (RFC 5280 §4.1.2.2). */
static int set_random_serial(X509 *x)
{
    uint8_t b[SERIAL_BYTES];
    if (RAND_bytes(b, sizeof(b)) != 1) {
        tg_log_openssl("RAND_bytes");
        return TG_ECRYPTO;
    }
    b[0] &= 0x7f; /* positive */
    if (b[0] == 0)
        b[0] = 0x01; /* and a full SERIAL_BYTES long */
    BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
    ASN1_INTEGER *ai = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    int ok = ai != NULL && X509_set_serialNumber(x, ai) == 1;
    if (!ok)
        tg_log_openssl("X509_set_serialNumber");
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return ok ? 0 : TG_ECRYPTO;
}

/* Adds one extension given in openssl.cnf syntax; issuer may be cert
 * itself (self-signed). */
static int add_ext(const world_t *w, X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509V3_set_nconf(&ctx, w->conf);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(w->conf, &ctx, nid, value);
    if (ext == NULL) {
        tg_log_openssl(OBJ_nid2sn(nid));
        return TG_ECRYPTO;
    }
    int ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    if (!ok) {
        tg_log_openssl("X509_add_ext");
        return TG_ECRYPTO;
    }
    return 0;
}

static int add_name_entry(X509_NAME *name, const char *field, const char *value)
{
    if (value == NULL)
        return 0;
    if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, (const unsigned char *)value, -1, -1,
                                   0) != 1) {
        tg_log_openssl("X509_NAME_add_entry_by_txt");
        return TG_ECRYPTO;
    }
    return 0;
}

typedef struct {
    cert_kind_t kind;
    const char *c, *o, *cn;
    long days;
    const char *policy;   /* certificatePolicies OID, or NULL */
    const char *aia_ocsp; /* authorityInfoAccess OCSP URL, or NULL */
    const char *crl_dp;   /* cRLDistributionPoints URL, or NULL */
} cert_spec_t;

/* Issues a certificate for key under issuer/issuer_key (both NULL:
 * self-signed with key). SM2 issuers sign SM2-with-SM3 with the standard
 * ID (tg_pki_sign_x509), everyone else with SHA-256. */
static int make_cert(const world_t *w, const cert_spec_t *spec, EVP_PKEY *key, X509 *issuer,
                     EVP_PKEY *issuer_key, X509 **out)
{
    int rc = TG_ECRYPTO;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    if (x == NULL || name == NULL) {
        tg_log_openssl("X509_new");
        goto out;
    }
    if ((rc = add_name_entry(name, "C", spec->c)) != 0 ||
        (rc = add_name_entry(name, "O", spec->o)) != 0 ||
        (rc = add_name_entry(name, "CN", spec->cn)) != 0)
        goto out;
    rc = TG_ECRYPTO;
    time_t nb = w->now - BACKDATE_S;
    if (X509_set_version(x, X509_VERSION_3) != 1 || X509_set_subject_name(x, name) != 1 ||
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
        X509_set_pubkey(x, key) != 1 ||
        X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), (int)spec->days, 0, &nb) == NULL) {
        tg_log_openssl("X509_set_*");
        goto out;
    }
    if ((rc = set_random_serial(x)) != 0)
        goto out;

    X509 *iss = issuer ? issuer : x;
    switch (spec->kind) {
    case KIND_ROOT:
        rc = add_ext(w, x, iss, NID_basic_constraints, "critical,CA:TRUE");
        if (rc == 0)
            rc = add_ext(w, x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
        break;
    case KIND_CA:
        rc = add_ext(w, x, iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
        if (rc == 0)
            rc = add_ext(w, x, iss, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign");
        break;
    case KIND_EE:
        rc = add_ext(w, x, iss, NID_basic_constraints, "critical,CA:FALSE");
        if (rc == 0)
            rc = add_ext(w, x, iss, NID_key_usage, "critical,digitalSignature,nonRepudiation");
        if (rc == 0)
            rc = add_ext(w, x, iss, NID_ext_key_usage, "emailProtection,clientAuth");
        break;
    case KIND_OCSP:
        rc = add_ext(w, x, iss, NID_basic_constraints, "critical,CA:FALSE");
        if (rc == 0)
            rc = add_ext(w, x, iss, NID_key_usage, "critical,digitalSignature");
        if (rc == 0)
            rc = add_ext(w, x, iss, NID_ext_key_usage, "OCSPSigning");
        /* RFC 6960 §4.2.2.2.1: clients need not check the responder's own
         * revocation status */
        if (rc == 0)
            rc = add_ext(w, x, iss, NID_id_pkix_OCSP_noCheck, "ignored");
        break;
    case KIND_OPERATOR:
        rc = add_ext(w, x, iss, NID_basic_constraints, "critical,CA:FALSE");
        if (rc == 0)
            rc = add_ext(w, x, iss, NID_key_usage, "critical,digitalSignature,nonRepudiation");
        break;
    }
    if (rc == 0)
        rc = add_ext(w, x, iss, NID_subject_key_identifier, "hash");
    if (rc == 0 && issuer != NULL)
        rc = add_ext(w, x, iss, NID_authority_key_identifier, "keyid:always");
    if (rc == 0 && spec->policy != NULL)
        rc = add_ext(w, x, iss, NID_certificate_policies, spec->policy);
    if (rc == 0 && spec->aia_ocsp != NULL) {
        char v[512];
        snprintf(v, sizeof(v), "OCSP;URI:%s", spec->aia_ocsp);
        rc = add_ext(w, x, iss, NID_info_access, v);
    }
    if (rc == 0 && spec->crl_dp != NULL) {
        char v[512];
        snprintf(v, sizeof(v), "URI:%s", spec->crl_dp);
        rc = add_ext(w, x, iss, NID_crl_distribution_points, v);
    }
    if (rc == 0)
        rc = tg_pki_sign_x509(x, issuer_key ? issuer_key : key, NULL);
    if (rc != 0)
        goto out;
    *out = x;
    x = NULL;
out:
    X509_NAME_free(name);
    X509_free(x);
    return rc;
}

static int fingerprint_hex(X509 *x, char out[65])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32) {
        tg_log_openssl("X509_digest");
        return TG_ECRYPTO;
    }
    tg_hex_encode(md, n, 0, out);
    return 0;
}

/* A v2 CRL of ca listing revoked (revoked at rev_time, keyCompromise),
 * thisUpdate a few minutes back, nextUpdate CRL_DAYS ahead, crlNumber 1,
 * authorityKeyIdentifier. */
static int make_crl(const world_t *w, const demo_ca_t *ca, X509 *revoked, time_t rev_time,
                    X509_CRL **out)
{
    int rc = TG_ECRYPTO;
    X509_CRL *crl = X509_CRL_new();
    X509_REVOKED *r = X509_REVOKED_new();
    ASN1_TIME *t_this = ASN1_TIME_set(NULL, w->now - 300);
    ASN1_TIME *t_next = ASN1_TIME_set(NULL, w->now + CRL_DAYS * DAY_S);
    ASN1_TIME *t_rev = ASN1_TIME_set(NULL, rev_time);
    ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();
    ASN1_INTEGER *number = ASN1_INTEGER_new();
    X509_EXTENSION *aki = NULL;
    if (crl == NULL || r == NULL || t_this == NULL || t_next == NULL || t_rev == NULL ||
        reason == NULL || number == NULL) {
        tg_log_openssl("X509_CRL_new");
        goto out;
    }
    if (X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) != 1 ||
        X509_CRL_set1_lastUpdate(crl, t_this) != 1 || X509_CRL_set1_nextUpdate(crl, t_next) != 1 ||
        X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked)) != 1 ||
        X509_REVOKED_set_revocationDate(r, t_rev) != 1 ||
        ASN1_ENUMERATED_set(reason, CRL_REASON_KEY_COMPROMISE) != 1 ||
        X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0, 0) != 1) {
        tg_log_openssl("X509_CRL_set_*");
        goto out;
    }
    if (X509_CRL_add0_revoked(crl, r) != 1) {
        tg_log_openssl("X509_CRL_add0_revoked");
        goto out;
    }
    r = NULL;
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
    X509V3_set_nconf(&ctx, w->conf);
    aki = X509V3_EXT_nconf_nid(w->conf, &ctx, NID_authority_key_identifier, "keyid:always");
    if (aki == NULL || X509_CRL_add_ext(crl, aki, -1) != 1 || ASN1_INTEGER_set(number, 1) != 1 ||
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) != 1 || X509_CRL_sort(crl) != 1) {
        tg_log_openssl("X509_CRL extensions");
        goto out;
    }
    rc = tg_pki_sign_crl(crl, ca->key, NULL);
    if (rc != 0)
        goto out;
    *out = crl;
    crl = NULL;
out:
    X509_EXTENSION_free(aki);
    ASN1_INTEGER_free(number);
    ASN1_ENUMERATED_free(reason);
    ASN1_TIME_free(t_rev);
    ASN1_TIME_free(t_next);
    ASN1_TIME_free(t_this);
    X509_REVOKED_free(r);
    X509_CRL_free(crl);
    return rc;
}

/* DIR/side/slug/crl.pem and crl.der. */
static int write_crl(const world_t *w, const char *side, const char *slug, X509_CRL *crl)
{
    char rel[PATH_MAX];
    BIO *pem = BIO_new(BIO_s_mem());
    BIO *der = BIO_new(BIO_s_mem());
    if (pem == NULL || der == NULL || PEM_write_bio_X509_CRL(pem, crl) != 1 ||
        i2d_X509_CRL_bio(der, crl) != 1) {
        tg_log_openssl("writing a CRL");
        BIO_free(pem);
        BIO_free(der);
        return TG_ECRYPTO;
    }
    snprintf(rel, sizeof(rel), "%s/%s/crl.pem", side, slug);
    int rc = write_bio(w, rel, pem, 0644);
    snprintf(rel, sizeof(rel), "%s/%s/crl.der", side, slug);
    int rc2 = write_bio(w, rel, der, 0644);
    return rc != 0 ? rc : rc2;
}

/* One line of an `openssl ca` index.txt (tab-separated: status, expiry,
 * revocation[,reason], serial in BN_bn2hex form, file name, DN). */
static int index_line(tg_buf_t *out, X509 *x, time_t rev_time)
{
    char exp[14], rev[14] = "";
    const ASN1_TIME *na = X509_get0_notAfter(x);
    struct tm tm;
    if (ASN1_TIME_to_tm(na, &tm) != 1) {
        tg_log_openssl("ASN1_TIME_to_tm");
        return TG_ECRYPTO;
    }
    index_time(timegm(&tm), exp);
    if (rev_time != 0)
        index_time(rev_time, rev);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    char *dn = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
    int rc = 0;
    if (hex == NULL || dn == NULL) {
        tg_log_openssl("index.txt line");
        rc = TG_ECRYPTO;
    } else {
        rc = tg_buf_printf(out, "%s\t%s\t%s%s\t%s\tunknown\t%s\n", rev_time ? "R" : "V", exp, rev,
                           rev_time ? ",keyCompromise" : "", hex, dn);
    }
    OPENSSL_free(dn);
    OPENSSL_free(hex);
    BN_free(bn);
    return rc;
}

/* ---- the PKI of one side ----------------------------------------------- */

static const char *ca_key_label(key_alg_t alg)
{
    switch (alg) {
    case KEY_SM2: return "SM2";
    case KEY_RSA2048: return "RSA-2048";
    case KEY_P256: return "ECDSA P-256";
    }
    return "?";
}

/* An issuing CA: its certificate, a good and a revoked end-entity
 * certificate, the CRL, index.txt and a delegated OCSP responder. */
/* Appends the CertIDs of end-entity ee of ca to certids.txt: SHA-1 (what
 * most clients send) and the side's own hash (SM3 for Guangdong, SHA-256
 * for Hong Kong). which is "good" or "revoked"; a suspended category
 * answers revoked (certificateHold) whatever the CA says. */
static int certid_lines(world_t *w, const char *side, const demo_ca_t *ca, X509 *ee,
                        const char *which)
{
    const tg_hash_alg_t algs[2] = {TG_HASH_SHA1, ca->alg == KEY_SM2 ? TG_HASH_SM3 : TG_HASH_SHA256};
    for (int a = 0; a < 2; a++) {
        tg_certid_t id;
        int rc = tg_pki_certid_for_cert(ca->cert, ee, algs[a], &id);
        if (rc != 0)
            return rc;
        char name[2 * TG_HASH_MAX_LEN + 1], key[2 * TG_HASH_MAX_LEN + 1];
        char serial[2 * TG_SERIAL_MAX_LEN + 1];
        tg_hex_encode(id.name_hash, id.hash_len, 0, name);
        tg_hex_encode(id.key_hash, id.hash_len, 0, key);
        tg_hex_encode(id.serial, id.serial_len, 0, serial);
        rc = tg_buf_printf(&w->certids_txt, "%s %s %s %s %s %s/%s/ee-%s/%s\n",
                           tg_hash_alg_name(algs[a]), name, key, serial,
                           ca->suspended ? "revoked" : which, side, ca->slug, which,
                           tg_hash_alg_name(algs[a]));
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int make_issuing_ca(world_t *w, demo_side_t *s, demo_ca_t *ca)
{
    char rel[PATH_MAX], url[256], aia[128], cn[128];
    X509 *ee[2] = {NULL, NULL}, *ocsp = NULL;
    EVP_PKEY *ee_key[2] = {NULL, NULL}, *ocsp_key = NULL;
    X509_CRL *crl = NULL;
    tg_buf_t index;
    tg_buf_init(&index);
    time_t rev_time = w->now - REVOKED_AGO_S;

    snprintf(rel, sizeof(rel), "%s/%s", s->name, ca->slug);
    int rc = make_subdir(w, rel);
    if (rc == 0)
        rc = gen_key(ca->alg, &ca->key);
    cert_spec_t spec = {
        .kind = KIND_CA, .c = s->territory, .o = s->ca_org, .cn = ca->cn, .days = CA_DAYS};
    if (rc == 0)
        rc = make_cert(w, &spec, ca->key, s->root, s->root_key, &ca->cert);
    if (rc == 0)
        rc = fingerprint_hex(ca->cert, ca->fp);
    if (rc != 0)
        goto out;
    snprintf(rel, sizeof(rel), "%s/%s/ca.pem", s->name, ca->slug);
    if ((rc = write_cert(w, rel, ca->cert)) != 0)
        goto out;
    snprintf(rel, sizeof(rel), "%s/%s/ca.key", s->name, ca->slug);
    if ((rc = write_key(w, rel, ca->key)) != 0)
        goto out;

    /* end-entity certificates: [0] good, [1] revoked */
    static const char *const which[2] = {"good", "revoked"};
    snprintf(url, sizeof(url), "%s/crl/%s/%s.crl", w->base_url, s->name, ca->fp);
    snprintf(aia, sizeof(aia), "%s/ocsp", w->base_url);
    for (int i = 0; i < 2; i++) {
        snprintf(cn, sizeof(cn), "%s demo %s signer (%s)", s->territory, ca->ee_tag, which[i]);
        cert_spec_t ee_spec = {.kind = KIND_EE,
                               .c = s->territory,
                               .o = "trustgate demo relying party",
                               .cn = cn,
                               .days = EE_DAYS,
                               .policy = ca->ee_policy,
                               .aia_ocsp = aia,
                               .crl_dp = url};
        if ((rc = gen_key(ca->alg, &ee_key[i])) != 0 ||
            (rc = make_cert(w, &ee_spec, ee_key[i], ca->cert, ca->key, &ee[i])) != 0)
            goto out;
        snprintf(rel, sizeof(rel), "%s/%s/ee-%s.pem", s->name, ca->slug, which[i]);
        if ((rc = write_cert(w, rel, ee[i])) != 0)
            goto out;
        snprintf(rel, sizeof(rel), "%s/%s/ee-%s.key", s->name, ca->slug, which[i]);
        if ((rc = write_key(w, rel, ee_key[i])) != 0)
            goto out;
        rc = tg_buf_printf(&w->certs_txt, "%s %s/%s/ca.pem %s/%s/ee-%s.pem %s %s %s/root.pem\n",
                           s->name, s->name, ca->slug, s->name, ca->slug, which[i],
                           ca->suspended ? "suspended-ca" : which[i], key_alg_name(ca->alg),
                           s->name);
        if (rc != 0 || (rc = certid_lines(w, s->name, ca, ee[i], which[i])) != 0)
            goto out;
    }

    if ((rc = make_crl(w, ca, ee[1], rev_time, &crl)) != 0)
        goto out;
    if ((rc = write_crl(w, s->name, ca->slug, crl)) != 0)
        goto out;

    /* the CA's own (upstream) OCSP responder: a delegated responder
     * certificate and an `openssl ca` database for `openssl ocsp -index` */
    snprintf(cn, sizeof(cn), "%s OCSP Responder", ca->cn);
    cert_spec_t ocsp_spec = {
        .kind = KIND_OCSP, .c = s->territory, .o = s->ca_org, .cn = cn, .days = EE_DAYS};
    if ((rc = gen_key(ca->alg, &ocsp_key)) != 0 ||
        (rc = make_cert(w, &ocsp_spec, ocsp_key, ca->cert, ca->key, &ocsp)) != 0)
        goto out;
    snprintf(rel, sizeof(rel), "%s/%s/ocsp.pem", s->name, ca->slug);
    if ((rc = write_cert(w, rel, ocsp)) != 0)
        goto out;
    snprintf(rel, sizeof(rel), "%s/%s/ocsp.key", s->name, ca->slug);
    if ((rc = write_key(w, rel, ocsp_key)) != 0)
        goto out;
    if ((rc = index_line(&index, ee[0], 0)) != 0 || (rc = index_line(&index, ee[1], rev_time)) != 0)
        goto out;
    snprintf(rel, sizeof(rel), "%s/%s/index.txt", s->name, ca->slug);
    if ((rc = write_file(w, rel, index.data, index.len, 0644)) != 0)
        goto out;
    snprintf(rel, sizeof(rel), "%s/%s/index.txt.attr", s->name, ca->slug);
    rc = write_file(w, rel, "unique_subject = no\n", 20, 0644);
out:
    tg_buf_free(&index);
    X509_CRL_free(crl);
    X509_free(ocsp);
    EVP_PKEY_free(ocsp_key);
    for (int i = 0; i < 2; i++) {
        X509_free(ee[i]);
        EVP_PKEY_free(ee_key[i]);
    }
    return rc;
}

/* The root, the list operator, the responder signer and both issuing CAs
 * of one side. */
static int make_side(world_t *w, demo_side_t *s)
{
    char rel[PATH_MAX];
    int rc = make_subdir(w, s->name);
    if (rc != 0)
        return rc;

    cert_spec_t root = {
        .kind = KIND_ROOT, .c = s->territory, .o = s->ca_org, .cn = s->root_cn, .days = CA_DAYS};
    if ((rc = gen_key(s->root_alg, &s->root_key)) != 0 ||
        (rc = make_cert(w, &root, s->root_key, NULL, NULL, &s->root)) != 0)
        return rc;
    snprintf(rel, sizeof(rel), "%s/root.pem", s->name);
    if ((rc = write_cert(w, rel, s->root)) != 0)
        return rc;
    snprintf(rel, sizeof(rel), "%s/root.key", s->name);
    if ((rc = write_key(w, rel, s->root_key)) != 0)
        return rc;

    /* the trust-list operator: self-signed, pinned in trustgate.ini */
    cert_spec_t op = {.kind = KIND_OPERATOR,
                      .c = s->territory,
                      .o = s->operator_org,
                      .cn = s->operator_cn,
                      .days = CA_DAYS};
    if ((rc = gen_key(s->operator_alg, &s->operator_key)) != 0 ||
        (rc = make_cert(w, &op, s->operator_key, NULL, NULL, &s->operator_cert)) != 0)
        return rc;
    snprintf(rel, sizeof(rel), "operators/%s-operator.pem", s->name);
    if ((rc = write_cert(w, rel, s->operator_cert)) != 0)
        return rc;
    snprintf(rel, sizeof(rel), "operators/%s-operator.key", s->name);
    if ((rc = write_key(w, rel, s->operator_key)) != 0)
        return rc;

    /* trustgate's responder signer for this side's list: issued by the
     * side's root, so not a delegated responder of the issuing CAs (RFC
     * 6960 §4.2.2.2); clients trust it explicitly (-VAfile, --signer) */
    cert_spec_t sg = {.kind = KIND_OCSP,
                      .c = s->territory,
                      .o = "trustgate demo",
                      .cn = s->signer_cn,
                      .days = EE_DAYS};
    if ((rc = gen_key(s->signer_alg, &s->signer_key)) != 0 ||
        (rc = make_cert(w, &sg, s->signer_key, s->root, s->root_key, &s->signer)) != 0)
        return rc;
    snprintf(rel, sizeof(rel), "signers/%s-responder.pem", s->name);
    if ((rc = write_cert(w, rel, s->signer)) != 0)
        return rc;
    snprintf(rel, sizeof(rel), "signers/%s-responder.key", s->name);
    if ((rc = write_key(w, rel, s->signer_key)) != 0)
        return rc;

    for (size_t i = 0; i < 2; i++) {
        if ((rc = make_issuing_ca(w, s, &s->cas[i])) != 0)
            return rc;
    }
    return 0;
}

/* ---- trust lists (libxml2 tree API) ------------------------------------ */

/* A tree under construction. Every helper checks its libxml2 calls and
 * makes the first failure sticky, so the builder reads straight and the
 * caller checks once. */
typedef struct {
    xmlDocPtr doc;
    xmlNsPtr tsl, sie, xades, xml;
    const char *home; /* trustgate's own URL with a trailing slash */
    int failed;
} xb_t;

static xmlNodePtr xb_add(xb_t *b, xmlNodePtr parent, xmlNsPtr ns, const char *name,
                         const char *text)
{
    if (b->failed || parent == NULL) {
        b->failed = 1;
        return NULL;
    }
    xmlNodePtr n = xmlNewTextChild(parent, ns, BAD_CAST name, text ? BAD_CAST text : NULL);
    if (n == NULL)
        b->failed = 1;
    return n;
}

/* A tsl: element. */
static xmlNodePtr xb_tsl(xb_t *b, xmlNodePtr parent, const char *name, const char *text)
{
    return xb_add(b, parent, b->tsl, name, text);
}

static void xb_attr(xb_t *b, xmlNodePtr n, const char *name, const char *value)
{
    if (b->failed || n == NULL || xmlNewProp(n, BAD_CAST name, BAD_CAST value) == NULL)
        b->failed = 1;
}

static void xb_lang(xb_t *b, xmlNodePtr n, const char *lang)
{
    if (b->failed || n == NULL || xmlSetNsProp(n, b->xml, BAD_CAST "lang", BAD_CAST lang) == NULL)
        b->failed = 1;
}

/* <elem><tsl:Name xml:lang="en">en</tsl:Name>[<tsl:Name xml:lang="zh">zh</tsl:Name>]</elem> */
static void xb_names(xb_t *b, xmlNodePtr parent, const char *elem, const char *en, const char *zh)
{
    xmlNodePtr e = xb_tsl(b, parent, elem, NULL);
    xb_lang(b, xb_tsl(b, e, "Name", en), "en");
    if (zh != NULL)
        xb_lang(b, xb_tsl(b, e, "Name", zh), "zh");
}

/* <elem><tsl:URI xml:lang="en">uri</tsl:URI></elem> */
static void xb_uri(xb_t *b, xmlNodePtr parent, const char *elem, const char *uri)
{
    xb_lang(b, xb_tsl(b, xb_tsl(b, parent, elem, NULL), "URI", uri), "en");
}

static void xb_address(xb_t *b, xmlNodePtr parent, const char *elem, const demo_side_t *s)
{
    xmlNodePtr a = xb_tsl(b, parent, elem, NULL);
    xmlNodePtr pa = xb_tsl(b, xb_tsl(b, a, "PostalAddresses", NULL), "PostalAddress", NULL);
    xb_lang(b, pa, "en");
    xb_tsl(b, pa, "StreetAddress", s->street);
    xb_tsl(b, pa, "Locality", s->locality);
    xb_tsl(b, pa, "CountryName", s->territory);
    xb_uri(b, a, "ElectronicAddress", b->home);
}

/* Base64 of x's DER (no line breaks), malloc'd; NULL on failure (logged). */
static char *cert_b64(X509 *x)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    if (n <= 0) {
        tg_log_openssl("i2d_X509");
        return NULL;
    }
    char *out = malloc(4 * (((size_t)n + 2) / 3) + 1);
    if (out == NULL)
        tg_error("demo: out of memory");
    else
        EVP_EncodeBlock((unsigned char *)out, der, n);
    OPENSSL_free(der);
    return out;
}

/* <tsl:ServiceDigitalIdentity><tsl:DigitalId><tsl:X509Certificate>…
 * under parent. */
static void xb_identity(xb_t *b, xmlNodePtr parent, X509 *x)
{
    char *b64 = b->failed ? NULL : cert_b64(x);
    if (b64 == NULL) {
        b->failed = 1;
        return;
    }
    xmlNodePtr id = xb_tsl(b, parent, "ServiceDigitalIdentity", NULL);
    xb_tsl(b, xb_tsl(b, id, "DigitalId", NULL), "X509Certificate", b64);
    free(b64);
}

/* file:// URL of DIR/rel, percent-encoding what is not unreserved or '/'. */
static int file_url(const world_t *w, const char *rel, char *out, size_t cap)
{
    char path[PATH_MAX];
    int rc = path_of(w, rel, path, sizeof(path));
    if (rc != 0)
        return rc;
    size_t n = (size_t)snprintf(out, cap, "file://");
    for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++) {
        if (n + 4 > cap) {
            tg_error("demo: path too long for a URL: %s", path);
            return TG_EINVAL;
        }
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~/", *p) != NULL)
            out[n++] = (char)*p;
        else
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", *p);
    }
    out[n] = '\0';
    return 0;
}

/* The policy extension of a category (SPEC §2): its OID arc, matched by
 * prefix (urn:gdhk-mr:qualifier:oid-prefix). */
static void xb_policy_ext(xb_t *b, xmlNodePtr si, const char *arc)
{
    char urn[128];
    snprintf(urn, sizeof(urn), "urn:oid:%s", arc);
    xmlNodePtr ext =
        xb_tsl(b, xb_tsl(b, si, "ServiceInformationExtensions", NULL), "Extension", NULL);
    xb_attr(b, ext, "Critical", "true");
    xmlNodePtr qe = xb_add(b, xb_add(b, ext, b->sie, "Qualifications", NULL), b->sie,
                           "QualificationElement", NULL);
    xmlNodePtr q = xb_add(b, xb_add(b, qe, b->sie, "Qualifiers", NULL), b->sie, "Qualifier", NULL);
    xb_attr(b, q, "uri", TG_TL_QUALIFIER_OID_PREFIX);
    xmlNodePtr cl = xb_add(b, qe, b->sie, "CriteriaList", NULL);
    xb_attr(b, cl, "assert", "atLeastOne");
    xmlNodePtr pi =
        xb_add(b, xb_add(b, cl, b->sie, "PolicySet", NULL), b->sie, "PolicyIdentifier", NULL);
    xmlNodePtr id = xb_add(b, pi, b->xades, "Identifier", urn);
    xb_attr(b, id, "Qualifier", "OIDAsURN");
}

/* One TSPService: one category with its issuing CA. */
static int xb_service(xb_t *b, const world_t *w, xmlNodePtr services, const demo_side_t *s,
                      const demo_ca_t *ca)
{
    char granted[21], since[21], ocsp[64], rel[PATH_MAX], crl[PATH_MAX + 64];
    iso_time(w->now - BACKDATE_S, granted);
    iso_time(w->now - SUSPENDED_AGO_S, since);
    snprintf(ocsp, sizeof(ocsp), "http://" DEMO_HOST ":%d/", upstream_port(w, ca));
    snprintf(rel, sizeof(rel), "%s/%s/crl.der", s->name, ca->slug);
    int rc = file_url(w, rel, crl, sizeof(crl));
    if (rc != 0)
        return rc;

    xmlNodePtr svc = xb_tsl(b, services, "TSPService", NULL);
    xmlNodePtr si = xb_tsl(b, svc, "ServiceInformation", NULL);
    xb_tsl(b, si, "ServiceTypeIdentifier", URI_CA_PKC);
    xb_names(b, si, "ServiceName", ca->category_en, ca->category_zh);
    xb_identity(b, si, ca->cert);
    xb_tsl(b, si, "ServiceStatus", ca->suspended ? TG_TL_STATUS_SUSPENDED_URI : URI_GRANTED);
    xb_tsl(b, si, "StatusStartingTime", ca->suspended ? since : granted);
    xmlNodePtr ssp = xb_tsl(b, si, "ServiceSupplyPoints", NULL);
    xb_attr(b, xb_tsl(b, ssp, "ServiceSupplyPoint", ocsp), "type", TG_TL_SUPPLY_TYPE_OCSP);
    xb_attr(b, xb_tsl(b, ssp, "ServiceSupplyPoint", crl), "type", TG_TL_SUPPLY_TYPE_CRL);
    xb_policy_ext(b, si, ca->policy_arc);
    if (ca->suspended) {
        /* Measures §5: suspended, after having been granted */
        xmlNodePtr h =
            xb_tsl(b, xb_tsl(b, svc, "ServiceHistory", NULL), "ServiceHistoryInstance", NULL);
        xb_tsl(b, h, "ServiceTypeIdentifier", URI_CA_PKC);
        xb_names(b, h, "ServiceName", ca->category_en, ca->category_zh);
        xb_identity(b, h, ca->cert);
        xb_tsl(b, h, "ServiceStatus", URI_GRANTED);
        xb_tsl(b, h, "StatusStartingTime", granted);
    }
    return 0;
}

/* The unsigned trust list of side s (the other side's list is pointed at),
 * serialised as indented UTF-8 into out. */
static int build_list(const world_t *w, const demo_side_t *s, const demo_side_t *other,
                      tg_buf_t *out)
{
    char t[21], url[128], id[32], type[128], home[64];
    int rc = 0;
    snprintf(home, sizeof(home), "%s/", w->base_url);
    xb_t b = {.home = home};
    b.doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr root =
        b.doc ? xmlNewDocNode(b.doc, NULL, BAD_CAST "TrustServiceStatusList", NULL) : NULL;
    if (root == NULL) {
        tg_error("demo: libxml2: out of memory");
        xmlFreeDoc(b.doc);
        return TG_ENOMEM;
    }
    xmlDocSetRootElement(b.doc, root);
    b.tsl = xmlNewNs(root, BAD_CAST TG_TL_NS_TSL, BAD_CAST "tsl");
    b.sie = xmlNewNs(root, BAD_CAST TG_TL_NS_SIE, BAD_CAST "sie");
    b.xades = xmlNewNs(root, BAD_CAST TG_TL_NS_XADES, BAD_CAST "xades");
    b.xml = xmlSearchNs(b.doc, root, BAD_CAST "xml");
    if (b.tsl == NULL || b.sie == NULL || b.xades == NULL || b.xml == NULL)
        b.failed = 1;
    else
        xmlSetNs(root, b.tsl);
    snprintf(id, sizeof(id), "tsl-%s", s->name);
    xb_attr(&b, root, "TSLTag", URI_TSLTAG);
    xb_attr(&b, root, "Id", id);

    xmlNodePtr si = xb_tsl(&b, root, "SchemeInformation", NULL);
    xb_tsl(&b, si, "TSLVersionIdentifier", "5");
    xb_tsl(&b, si, "TSLSequenceNumber", "1");
    snprintf(type, sizeof(type), "%s%slist", URI_TSLTYPE_PREFIX, s->territory);
    xb_tsl(&b, si, "TSLType", type);
    xb_names(&b, si, "SchemeOperatorName", s->operator_en, s->operator_zh);
    xb_address(&b, si, "SchemeOperatorAddress", s);
    xb_names(&b, si, "SchemeName", s->scheme_en, NULL);
    snprintf(url, sizeof(url), "%s/trustlist/%s.xml", w->base_url, s->name);
    xb_uri(&b, si, "SchemeInformationURI", url);
    xb_tsl(&b, si, "SchemeTerritory", s->territory);
    xmlNodePtr notice = xb_tsl(&b, si, "PolicyOrLegalNotice", NULL);
    xb_lang(&b,
            xb_tsl(&b, notice, "TSLLegalNotice",
                   "Demo list made by `trustgate demo`: test keys, not for production use. "
                   "Policy OIDs under 1.2.156.99999 are invented for the demo."),
            "en");
    xb_tsl(&b, si, "HistoricalInformationPeriod", "65535");

    /* Measures §2: each side republishes the other's list */
    xmlNodePtr ptr =
        xb_tsl(&b, xb_tsl(&b, si, "PointersToOtherTSL", NULL), "OtherTSLPointer", NULL);
    xb_identity(&b, xb_tsl(&b, ptr, "ServiceDigitalIdentities", NULL), other->operator_cert);
    snprintf(url, sizeof(url), "%s/trustlist/%s.xml", w->base_url, other->name);
    xb_tsl(&b, ptr, "TSLLocation", url);
    xmlNodePtr ai = xb_tsl(&b, ptr, "AdditionalInformation", NULL);
    snprintf(type, sizeof(type), "%s%slist", URI_TSLTYPE_PREFIX, other->territory);
    xb_tsl(&b, xb_tsl(&b, ai, "OtherInformation", NULL), "TSLType", type);
    xb_tsl(&b, xb_tsl(&b, ai, "OtherInformation", NULL), "SchemeTerritory", other->territory);
    xb_names(&b, xb_tsl(&b, ai, "OtherInformation", NULL), "SchemeOperatorName", other->operator_en,
             other->operator_zh);

    iso_time(w->now, t);
    xb_tsl(&b, si, "ListIssueDateTime", t);
    iso_time(w->now + LIST_DAYS * DAY_S, t);
    xb_tsl(&b, xb_tsl(&b, si, "NextUpdate", NULL), "dateTime", t);
    snprintf(url, sizeof(url), "%s/trustlist/%s.xml", w->base_url, s->name);
    xb_tsl(&b, xb_tsl(&b, si, "DistributionPoints", NULL), "URI", url);

    xmlNodePtr tsp = xb_tsl(&b, xb_tsl(&b, root, "TrustServiceProviderList", NULL),
                            "TrustServiceProvider", NULL);
    xmlNodePtr info = xb_tsl(&b, tsp, "TSPInformation", NULL);
    xb_names(&b, info, "TSPName", s->tsp_en, s->tsp_zh);
    xb_address(&b, info, "TSPAddress", s);
    xb_uri(&b, info, "TSPInformationURI", home);
    xmlNodePtr services = xb_tsl(&b, tsp, "TSPServices", NULL);
    for (size_t i = 0; rc == 0 && i < 2; i++)
        rc = xb_service(&b, w, services, s, &s->cas[i]);

    xmlChar *mem = NULL;
    int len = 0;
    if (rc == 0 && !b.failed)
        xmlDocDumpFormatMemoryEnc(b.doc, &mem, &len, "UTF-8", 1);
    if (rc == 0 && (b.failed || mem == NULL || len <= 0)) {
        tg_error("demo: libxml2 could not build the %s list", s->name);
        rc = TG_ENOMEM;
    }
    if (rc == 0)
        rc = tg_buf_append(out, mem, (size_t)len);
    xmlFree(mem);
    xmlFreeDoc(b.doc);
    return rc;
}

/* Builds, writes and signs both lists. */
static int make_lists(world_t *w)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        demo_side_t *s = &w->sides[i];
        char rel[64];
        tg_buf_t xml, signed_xml;
        tg_buf_init(&xml);
        tg_buf_init(&signed_xml);
        rc = build_list(w, s, &w->sides[1 - i], &xml);
        if (rc == 0) {
            snprintf(rel, sizeof(rel), "lists/%s.unsigned.xml", s->name);
            rc = write_file(w, rel, xml.data, xml.len, 0644);
        }
        if (rc == 0) {
            tg_tl_refusal_t why = {0};
            rc =
                tg_tl_sign(xml.data, xml.len, s->operator_key, s->operator_cert, &why, &signed_xml);
            if (rc != 0)
                tg_error("demo: signing the %s list failed: %s%s%s", s->name, tg_strerror(rc),
                         why.code ? ": " : "", why.code ? why.message : "");
        }
        if (rc == 0) {
            snprintf(rel, sizeof(rel), "lists/%s.xml", s->name);
            rc = write_file(w, rel, signed_xml.data, signed_xml.len, 0644);
        }
        tg_buf_free(&xml);
        tg_buf_free(&signed_xml);
    }
    return rc;
}

/* ---- trustgate.ini, README.txt, certs.txt ------------------------------ */

static int write_config(const world_t *w)
{
    char t[21];
    iso_time(w->now, t);
    tg_buf_t b;
    tg_buf_init(&b);
    int rc = tg_buf_printf(&b,
                           "; trustgate demo world, written by `trustgate demo` at %s.\n"
                           "; Relative paths are relative to this file's folder; see README.txt.\n"
                           "\n"
                           "[server]\n"
                           "listen = %s\n"
                           "workers = 2\n"
                           "admin_socket = admin.sock\n"
                           "\n"
                           "[cache]\n"
                           "path = cache\n"
                           "map_size_mb = 1024\n"
                           "\n"
                           "[upstream]\n"
                           "timeout_ms = 3000\n"
                           "; the lists' CRL supply points are file: URLs into this folder\n"
                           "allow_file_urls = yes\n",
                           t, w->hostport);
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        const demo_side_t *s = &w->sides[i];
        rc = tg_buf_printf(&b,
                           "\n[signer %s]\n"
                           "cert = signers/%s-responder.pem\n"
                           "key = signers/%s-responder.key\n",
                           s->name, s->name, s->name);
    }
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        const demo_side_t *s = &w->sides[i];
        rc = tg_buf_printf(&b,
                           "\n[trustlist %s]\n"
                           "source = lists/%s.xml\n"
                           "operator_cert = operators/%s-operator.pem\n"
                           "refresh_s = 300\n"
                           "signer = %s\n"
                           "mode = %s\n",
                           s->name, s->name, s->name, s->name, s->mode);
    }
    if (rc == 0)
        rc = write_file(w, "trustgate.ini", b.data, b.len, 0644);
    tg_buf_free(&b);
    return rc;
}

/* Writes the listing file name: head (comment lines), then body. */
static int write_listing(const world_t *w, const char *name, const char *head, const tg_buf_t *body)
{
    tg_buf_t b;
    tg_buf_init(&b);
    int rc = tg_buf_append_str(&b, head);
    if (rc == 0)
        rc = tg_buf_append(&b, body->data, body->len);
    if (rc == 0)
        rc = write_file(w, name, b.data, b.len, 0644);
    tg_buf_free(&b);
    return rc;
}

/* certs.txt: one line per end-entity certificate; certids.txt: their
 * CertIDs in the bench's set format (bench/README.md). */
static int write_certs_txt(const world_t *w)
{
    static const char certs_head[] =
        "# One line per end-entity certificate of the demo world (paths relative to this "
        "folder):\n"
        "# side issuing-CA end-entity expected-answer key-algorithm root\n"
        "# expected-answer: good | revoked (on the CA's CRL and index.txt) | suspended-ca (the\n"
        "# category is suspended on the list: trustgate answers revoked, certificateHold)\n";
    static const char certids_head[] =
        "# The demo world's CertIDs, for trustgate-bench --certids (paths as in certs.txt):\n"
        "# hash issuer-name-hash issuer-key-hash serial expected-answer label\n"
        "# serial: hex of the INTEGER's content octets, or START+COUNT for a range;\n"
        "# expected-answer: good | revoked | unknown, or an OCSP response status\n";
    int rc = write_listing(w, "certs.txt", certs_head, &w->certs_txt);
    if (rc == 0)
        rc = write_listing(w, "certids.txt", certids_head, &w->certids_txt);
    return rc;
}

/* Appends text to b with its tokens replaced: "@URL@" by trustgate's base
 * URL ("http://127.0.0.1:PORT"), "@HOSTPORT@" by "127.0.0.1:PORT" and
 * "@DIR@" by DIR (absolute). Any other '@' is copied. */
static int append_text(tg_buf_t *b, const world_t *w, const char *text)
{
    const struct {
        const char *token, *value;
    } tokens[] = {{"@URL@", w->base_url}, {"@HOSTPORT@", w->hostport}, {"@DIR@", w->dir}};
    const size_t ntokens = sizeof(tokens) / sizeof(tokens[0]);
    int rc = 0;
    const char *p = text;
    while (rc == 0 && *p != '\0') {
        const char *at = strchr(p, '@');
        if (at == NULL)
            return tg_buf_append_str(b, p);
        rc = tg_buf_append(b, p, (size_t)(at - p));
        if (rc != 0)
            break;
        size_t i = 0;
        while (i < ntokens && strncmp(at, tokens[i].token, strlen(tokens[i].token)) != 0)
            i++;
        if (i < ntokens) {
            rc = tg_buf_append_str(b, tokens[i].value);
            p = at + strlen(tokens[i].token);
        } else {
            rc = tg_buf_append(b, at, 1);
            p = at + 1;
        }
    }
    return rc;
}

/* The command line of ca's own `openssl ocsp -index` responder, paths
 * relative to DIR; brk separates its option groups (" " for one line).
 * No word holds a space or shell quoting, so upstreams.txt splits on
 * spaces. */
static int upstream_command(tg_buf_t *b, const world_t *w, const demo_side_t *s,
                            const demo_ca_t *ca, const char *brk)
{
    int rc = tg_buf_printf(b,
                           "openssl ocsp -index %s/%s/index.txt -CA %s/%s/ca.pem%s"
                           "-rsigner %s/%s/ocsp.pem -rkey %s/%s/ocsp.key%s",
                           s->name, ca->slug, s->name, ca->slug, brk, s->name, ca->slug, s->name,
                           ca->slug, brk);
    if (rc == 0 && ca->alg == KEY_SM2)
        rc = tg_buf_printf(b, "-rmd sm3 -rsigopt distid:" TG_SM2_ID "%s", brk);
    if (rc == 0)
        rc = tg_buf_printf(b, "-port %d -nmin 60", upstream_port(w, ca));
    return rc;
}

/* The upstream responders in port order: Hong Kong first, then Guangdong. */
static const demo_ca_t *upstream_ca(const world_t *w, size_t i, const demo_side_t **out_side)
{
    const demo_side_t *s = &w->sides[1 - i / 2];
    *out_side = s;
    return &s->cas[i % 2];
}

/* upstreams.txt: "PORT<TAB>command" per upstream responder, for scripts
 * (scripts/demo-run.sh) that start them without reading README.txt. */
static int write_upstreams_txt(const world_t *w)
{
    tg_buf_t b;
    tg_buf_init(&b);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < DEMO_UPSTREAMS; i++) {
        const demo_side_t *s = NULL;
        const demo_ca_t *ca = upstream_ca(w, i, &s);
        rc = tg_buf_printf(&b, "%d\t", upstream_port(w, ca));
        if (rc == 0)
            rc = upstream_command(&b, w, s, ca, " ");
        if (rc == 0)
            rc = tg_buf_append_str(&b, "\n");
    }
    if (rc == 0)
        rc = write_file(w, "upstreams.txt", b.data, b.len, 0644);
    tg_buf_free(&b);
    return rc;
}

static int write_readme(const world_t *w)
{
    char t[21];
    iso_time(w->now, t);
    tg_buf_t b;
    tg_buf_init(&b);
    int rc = tg_buf_printf(
        &b,
        "trustgate demo world\n"
        "====================\n"
        "\n"
        "Made by `trustgate demo` at %s.\n"
        "For tests and demonstrations only: every private key here is unencrypted,\n"
        "and the Guangdong policy OID arc 1.2.156.99999.810 is INVENTED for the demo\n"
        "(it is not an assigned arc). "
        "Paths below are relative to this folder.\n"
        "\n",
        t);
    if (rc == 0)
        rc = append_text(
            &b, w,
            "Run it\n"
            "------\n"
            "  trustgate check -c trustgate.ini\n"
            "  trustgate serve -c trustgate.ini          # listens on @HOSTPORT@\n"
            "  # or, from the trustgate source tree, the CAs' own OCSP responders\n"
            "  # (below) and trustgate together, as `make run` does:\n"
            "  scripts/demo-run.sh @DIR@ [TRUSTGATE_BINARY]\n"
            "\n"
            "  # Guangdong, suspended category: a signed revoked / certificateHold\n"
            "  trustgate query --url @URL@/ocsp --sm3 \\\n"
            "      --issuer gd/organisation-ca/ca.pem --cert gd/organisation-ca/ee-good.pem \\\n"
            "      --signer signers/gd-responder.pem\n"
            "  # Guangdong, active category: good / revoked from the CA's CRL, SM2-signed\n"
            "  trustgate query --url @URL@/ocsp --sm3 \\\n"
            "      --issuer gd/personal-ca/ca.pem --cert gd/personal-ca/ee-revoked.pem \\\n"
            "      --signer signers/gd-responder.pem\n"
            "  # Hong Kong, RSA category\n"
            "  trustgate query --url @URL@/ocsp \\\n"
            "      --issuer hk/rsa-ca/ca.pem --cert hk/rsa-ca/ee-good.pem \\\n"
            "      --signer signers/hk-responder.pem\n"
            "  # the same with the openssl CLI (ECDSA/RSA; SM2 needs trustgate query)\n"
            "  openssl ocsp -url @URL@/ocsp -issuer hk/rsa-ca/ca.pem \\\n"
            "      -cert hk/rsa-ca/ee-good.pem -cert hk/rsa-ca/ee-revoked.pem \\\n"
            "      -VAfile signers/hk-responder.pem\n"
            "  # the CRLs trustgate holds, and one of them as the CA signed it\n"
            "  curl -s @URL@/crl/\n"
            "  curl -s @URL@/crl/hk/$(openssl x509 -in hk/rsa-ca/ca.pem -outform DER \\\n"
            "      | sha256sum | cut -c1-64).crl | openssl crl -inform DER -noout -text\n"
            "\n"
            "Layout\n"
            "------\n"
            "  trustgate.ini           the configuration (SPEC §3)\n"
            "  README.txt              this file\n"
            "  upstreams.txt           one line per upstream OCSP responder (below): its port,\n"
            "                          a tab, its command line\n"
            "  certs.txt               one line per end-entity certificate: side, issuing CA,\n"
            "                          certificate, expected answer, key algorithm, root\n"
            "  certids.txt             the same certificates' CertIDs (SHA-1 and SM3/SHA-256)\n"
            "                          with their expected answers: trustgate-bench's input\n"
            "  lists/gd.xml, hk.xml    the signed trust lists (ETSI TS 119 612 v2, SPEC §2)\n"
            "  lists/*.unsigned.xml    the same before signing; edit (ServiceStatus,\n"
            "                          StatusStartingTime, a higher TSLSequenceNumber) and "
            "re-sign:\n"
            "      trustgate tl sign --key operators/gd-operator.key \\\n"
            "          --cert operators/gd-operator.pem lists/gd.unsigned.xml lists/gd.xml\n"
            "  operators/              the list operators, self-signed and pinned in "
            "trustgate.ini:\n"
            "                          gd-operator (ECDSA P-256: xmlsec has no SM2),\n"
            "                          hk-operator (RSA-2048)\n"
            "  signers/                trustgate's OCSP responder signers (id-kp-OCSPSigning):\n"
            "                          gd-responder (SM2, issued by gd/root.pem),\n"
            "                          hk-responder (ECDSA P-256, issued by hk/root.pem)\n"
            "  gd/root.pem, .key       GD Demo SM2 Root CA (self-signed SM2-with-SM3)\n"
            "  gd/personal-ca/         GD Demo Personal Signing CA (SM2)\n"
            "  gd/organisation-ca/     GD Demo Organisation Signing CA (SM2)\n"
            "  hk/root.pem, .key       HK Demo Root CA (RSA-2048)\n"
            "  hk/rsa-ca/              HK Demo RSA Signing CA (RSA-2048, under the RSA root)\n"
            "  hk/ecc-ca/              HK Demo ECC Signing CA (ECDSA P-256, also under the RSA\n"
            "                          root: one Hong Kong hierarchy, two key types)\n"
            "  cache/                  trustgate's cache (empty until the first start)\n"
            "\n"
            "Each issuing CA folder holds:\n"
            "  ca.pem, ca.key          the CA (10 years; certificates start a day back)\n"
            "  ee-good.pem, .key       an end-entity certificate (2 years)\n"
            "  ee-revoked.pem, .key    one revoked two hours ago, reason keyCompromise\n"
            "  crl.der, crl.pem        the CA's CRL listing it (nextUpdate in 7 days)\n"
            "  index.txt (+ .attr)     the same as an `openssl ca` database\n"
            "  ocsp.pem, ocsp.key      a delegated OCSP responder of the CA (id-kp-OCSPSigning,\n"
            "                          ocsp-nocheck) for `openssl ocsp -index`\n"
            "End-entity certificates carry certificatePolicies (the category's OID),\n"
            "AIA OCSP @URL@/ocsp and a CRL distribution point\n"
            "@URL@/crl/<side>/<SHA-256 of the CA certificate>.crl.\n"
            "\n"
            "Categories\n"
            "----------\n");
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        const demo_side_t *s = &w->sides[i];
        for (size_t j = 0; rc == 0 && j < 2; j++) {
            const demo_ca_t *ca = &s->cas[j];
            rc = tg_buf_printf(&b,
                               "  %s list: \"%s\" (%s)\n"
                               "      issuing CA %s/%s/ca.pem, %s, sha256 %s\n"
                               "      status: %s\n"
                               "      policy: list urn:oid:%s (prefix match), certificates %s\n"
                               "      upstream: OCSP http://" DEMO_HOST ":%d/, CRL %s/%s/crl.der "
                               "(file: URL)\n",
                               s->name, ca->category_en, ca->category_zh, s->name, ca->slug,
                               ca_key_label(ca->alg), ca->fp,
                               ca->suspended ? "SUSPENDED (urn:gdhk-mr:svcstatus:suspended, "
                                               "granted before: see ServiceHistory)"
                                             : "granted",
                               ca->policy_arc, ca->ee_policy, upstream_port(w, ca), s->name,
                               ca->slug);
        }
    }
    if (rc == 0)
        rc = tg_buf_printf(
            &b,
            "The Hong Kong arc 2.16.344.8.2.2008.810.2 is the mutual-recognition arc\n"
            "(SPEC §1); its last three arcs (year.version.release) vary, hence the prefix\n"
            "match. Trust lists: gd sequence 1, mode sign (signer gd); hk sequence 1,\n"
            "mode relay (signer hk); each points at the other (PointersToOtherTSL).\n"
            "\n"
            "Upstream OCSP responders\n"
            "------------------------\n"
            "The lists name http://" DEMO_HOST ":PORT/ as each CA's OCSP supply point\n"
            "(PORT: %d to %d, trustgate's port plus 1 to 4). Start the CA's own\n"
            "responder (a later trustgate fetches from it) with:\n",
            w->port + 1, w->port + DEMO_UPSTREAMS);
    for (size_t i = 0; rc == 0 && i < DEMO_UPSTREAMS; i++) {
        const demo_side_t *s = NULL;
        const demo_ca_t *ca = upstream_ca(w, i, &s);
        rc = tg_buf_append_str(&b, "  ");
        if (rc == 0)
            rc = upstream_command(&b, w, s, ca, " \\\n      ");
        if (rc == 0)
            rc = tg_buf_append_str(&b, "\n");
    }
    if (rc == 0)
        rc = tg_buf_append_str(&b,
                               "upstreams.txt holds the same command lines (port, tab, command);\n"
                               "scripts/demo-run.sh starts all four from it, then trustgate, and\n"
                               "stops them when trustgate exits.\n");
    if (rc == 0)
        rc = tg_buf_printf(
            &b, "\n"
                "Check it with the openssl CLI\n"
                "-----------------------------\n"
                "  openssl verify -CAfile hk/root.pem -untrusted hk/rsa-ca/ca.pem "
                "hk/rsa-ca/ee-good.pem\n"
                "  openssl crl -in hk/rsa-ca/crl.pem -noout -verify -CAfile hk/rsa-ca/ca.pem\n"
                "  xmlsec1 --verify --pubkey-cert-pem operators/gd-operator.pem \\\n"
                "      --enabled-reference-uris empty,same-doc lists/gd.xml\n"
                "SM2 signatures use SM3 and the GM/T 0009 ID " TG_SM2_ID ". OpenSSL 3.0\n"
                "defaults to an empty ID and applies -vfyopt to the target certificate only,\n"
                "so check one link at a time:\n"
                "  openssl verify -vfyopt distid:" TG_SM2_ID " -partial_chain \\\n"
                "      -CAfile gd/root.pem gd/personal-ca/ca.pem\n"
                "  openssl verify -vfyopt distid:" TG_SM2_ID " -partial_chain \\\n"
                "      -CAfile gd/personal-ca/ca.pem gd/personal-ca/ee-good.pem\n"
                "`openssl crl -verify` cannot check SM2 CRLs (it passes no ID); trustgate\n"
                "does (pki/sm2.h).\n");
    if (rc == 0)
        rc = write_file(w, "README.txt", b.data, b.len, 0644);
    tg_buf_free(&b);
    return rc;
}

/* ---- the world ----------------------------------------------------------- */

static void world_describe(world_t *w)
{
    demo_side_t *gd = &w->sides[0], *hk = &w->sides[1];
    *gd = (demo_side_t){
        .name = "gd",
        .territory = "CN",
        .ca_org = "GD Demo CA Co., Ltd.",
        .root_cn = "GD Demo SM2 Root CA",
        .root_alg = KEY_SM2,
        .operator_en = "Guangdong Provincial Department of Industry and Information "
                       "Technology (demo)",
        .operator_zh = "广东省工业和信息化厅（演示）",
        .operator_org = "Guangdong Department of Industry and IT (demo)",
        .operator_cn = "GD Trust List Operator (demo)",
        .operator_alg = KEY_P256,
        .scheme_en = "CN:GD: Guangdong list of CAs recognised under the GD-HK mutual "
                     "recognition (demo)",
        .street = "305 Dongfeng Middle Road",
        .locality = "Guangzhou",
        .tsp_en = "GD Demo CA Co., Ltd.",
        .tsp_zh = "广东演示数字证书认证有限公司",
        .signer_cn = "GD Demo trustgate OCSP Responder (SM2)",
        .signer_alg = KEY_SM2,
        .mode = "sign",
        .cas = {{.slug = "personal-ca",
                 .cn = "GD Demo Personal Signing CA",
                 .category_en = "GD Personal Signing CA",
                 .category_zh = "个人签名证书",
                 .ee_tag = "personal",
                 .alg = KEY_SM2,
                 .policy_arc = "1.2.156.99999.810.1",
                 .ee_policy = "1.2.156.99999.810.1.2024.1.1",
                 .upstream_offset = 3},
                {.slug = "organisation-ca",
                 .cn = "GD Demo Organisation Signing CA",
                 .category_en = "GD Organisation Signing CA",
                 .category_zh = "机构签名证书",
                 .ee_tag = "organisation",
                 .alg = KEY_SM2,
                 .policy_arc = "1.2.156.99999.810.2",
                 .ee_policy = "1.2.156.99999.810.2.2024.1.1",
                 .suspended = 1,
                 .upstream_offset = 4}},
    };
    *hk = (demo_side_t){
        .name = "hk",
        .territory = "HK",
        .ca_org = "HK Demo Certification Authority",
        .root_cn = "HK Demo Root CA (RSA)",
        .root_alg = KEY_RSA2048,
        .operator_en = "Digital Policy Office (demo)",
        .operator_zh = "數字政策辦公室（示範）",
        .operator_org = "Digital Policy Office (demo)",
        .operator_cn = "HK Trust List Operator (demo)",
        .operator_alg = KEY_RSA2048,
        .scheme_en = "HK: Hong Kong list of CAs recognised under the GD-HK mutual "
                     "recognition (demo)",
        .street = "15/F, Wanchai Tower, 12 Harbour Road",
        .locality = "Wan Chai",
        .tsp_en = "HK Demo Certification Authority",
        .tsp_zh = "香港示範核證機關",
        .signer_cn = "HK Demo trustgate OCSP Responder (P-256)",
        .signer_alg = KEY_P256,
        .mode = "relay",
        .cas = {{.slug = "rsa-ca",
                 .cn = "HK Demo RSA Signing CA",
                 .category_en = "HK Personal e-Cert (RSA)",
                 .category_zh = "個人數碼證書",
                 .ee_tag = "personal",
                 .alg = KEY_RSA2048,
                 .policy_arc = "2.16.344.8.2.2008.810.2",
                 .ee_policy = "2.16.344.8.2.2008.810.2.2024.1.1",
                 .upstream_offset = 1},
                {.slug = "ecc-ca",
                 .cn = "HK Demo ECC Signing CA",
                 .category_en = "HK Organisational e-Cert (ECDSA)",
                 .category_zh = "機構數碼證書",
                 .ee_tag = "organisational",
                 .alg = KEY_P256,
                 .policy_arc = "2.16.344.8.2.2008.810.2",
                 .ee_policy = "2.16.344.8.2.2008.810.2.2024.2.1",
                 .upstream_offset = 2}},
    };
}

static void world_free(world_t *w)
{
    for (size_t i = 0; i < 2; i++) {
        demo_side_t *s = &w->sides[i];
        X509_free(s->root);
        X509_free(s->operator_cert);
        X509_free(s->signer);
        EVP_PKEY_free(s->root_key);
        EVP_PKEY_free(s->operator_key);
        EVP_PKEY_free(s->signer_key);
        for (size_t j = 0; j < 2; j++) {
            X509_free(s->cas[j].cert);
            EVP_PKEY_free(s->cas[j].key);
        }
    }
    NCONF_free(w->conf);
    tg_buf_free(&w->certs_txt);
    tg_buf_free(&w->certids_txt);
}

/* Creates DIR, refuses a non-empty one without force, and makes the
 * fixed sub-folders. */
static int prepare_dir(world_t *w, const char *dir, int force)
{
    int rc = mkdir_p(dir);
    if (rc != 0)
        return rc;
    if (realpath(dir, w->dir) == NULL) {
        tg_error("demo: %s: %s", dir, strerror(errno));
        return TG_EIO;
    }
    rc = dir_has_entries(w->dir);
    if (rc < 0)
        return rc;
    if (rc == 1 && !force) {
        tg_error("demo: %s is not empty (use --force to write into it anyway)", w->dir);
        return TG_EINVAL;
    }
    static const char *const subdirs[] = {"operators", "signers", "lists", "cache"};
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        if ((rc = make_subdir(w, subdirs[i])) != 0)
            return rc;
    }
    return 0;
}

static void demo_usage(FILE *out)
{
    fprintf(out,
            "usage: trustgate demo [--force] [--port N] DIR\n"
            "  makes a complete demo world (both sides' PKIs, signed trust lists,\n"
            "  responder signers, CRLs, the CAs' own OCSP responder kits, trustgate.ini,\n"
            "  upstreams.txt, README.txt) in DIR\n"
            "  --force   write into a non-empty DIR (its other files are kept)\n"
            "  --port N  trustgate listens on " DEMO_HOST ":N and every URL naming it uses N;\n"
            "            the CAs' own OCSP responders use N+1 to N+4 (default %d;\n"
            "            %d <= N <= %d)\n",
            DEMO_DEFAULT_PORT, DEMO_MIN_PORT, DEMO_MAX_PORT);
}

/* --port's value: decimal digits only, DEMO_MIN_PORT..DEMO_MAX_PORT.
 * Returns the port, or -1 (with a message) when it is not one. */
static int parse_port(const char *v)
{
    long n = 0;
    size_t len = strlen(v);
    int ok = len > 0 && len <= 5;
    for (size_t i = 0; ok && i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            ok = 0;
        else
            n = n * 10 + (v[i] - '0');
    }
    if (!ok || n < DEMO_MIN_PORT || n > DEMO_MAX_PORT) {
        fprintf(stderr,
                "trustgate demo: --port '%s': want a number from %d to %d (trustgate on N, "
                "the upstream responders on N+1 to N+%d)\n",
                v, DEMO_MIN_PORT, DEMO_MAX_PORT, DEMO_UPSTREAMS);
        return -1;
    }
    return (int)n;
}

int tg_cmd_demo(int argc, char **argv)
{
    const char *dir = NULL;
    int force = 0, port = DEMO_DEFAULT_PORT;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0) {
            force = 1;
        } else if (strcmp(argv[i], "--port") == 0 || strncmp(argv[i], "--port=", 7) == 0) {
            const char *v = argv[i][6] == '=' ? argv[i] + 7 : NULL;
            if (v == NULL && i + 1 >= argc) {
                fprintf(stderr, "trustgate demo: --port needs a value\n");
                demo_usage(stderr);
                return 2;
            }
            if (v == NULL)
                v = argv[++i];
            if ((port = parse_port(v)) < 0) {
                demo_usage(stderr);
                return 2;
            }
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            demo_usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' || dir != NULL) {
            fprintf(stderr, "trustgate demo: unexpected argument '%s'\n", argv[i]);
            demo_usage(stderr);
            return 2;
        } else {
            dir = argv[i];
        }
    }
    if (dir == NULL) {
        fprintf(stderr, "trustgate demo: no DIR given\n");
        demo_usage(stderr);
        return 2;
    }

    world_t *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        tg_error("demo: out of memory");
        return 1;
    }
    tg_buf_init(&w->certs_txt);
    tg_buf_init(&w->certids_txt);
    w->now = time(NULL);
    w->port = port;
    snprintf(w->hostport, sizeof(w->hostport), DEMO_HOST ":%d", port);
    snprintf(w->base_url, sizeof(w->base_url), "http://" DEMO_HOST ":%d", port);
    world_describe(w);
    w->conf = NCONF_new(NULL);
    int rc = w->conf != NULL ? 0 : TG_ENOMEM;
    if (rc != 0)
        tg_log_openssl("NCONF_new");
    if (rc == 0)
        rc = prepare_dir(w, dir, force);
    for (size_t i = 0; rc == 0 && i < 2; i++)
        rc = make_side(w, &w->sides[i]);
    if (rc == 0)
        rc = make_lists(w);
    if (rc == 0)
        rc = write_config(w);
    if (rc == 0)
        rc = write_certs_txt(w);
    if (rc == 0)
        rc = write_upstreams_txt(w);
    if (rc == 0)
        rc = write_readme(w);
    if (rc == 0) {
        printf("demo world written to %s\n"
               "  Guangdong: SM2 root, 2 SM2 issuing CAs (\"%s\" suspended), lists/gd.xml\n"
               "  Hong Kong: RSA-2048 root, RSA-2048 and ECDSA P-256 issuing CAs, "
               "lists/hk.xml\n"
               "  trustgate on %s; the CAs' own OCSP responders on ports %d to %d "
               "(upstreams.txt)\n"
               "  start it: trustgate serve -c %s/trustgate.ini   (see README.txt)\n",
               w->dir, w->sides[0].cas[1].category_en, w->hostport, port + 1, port + DEMO_UPSTREAMS,
               w->dir);
    } else {
        fprintf(stderr, "trustgate demo: stopped; %s may hold a partial world\n",
                w->dir[0] ? w->dir : dir);
    }
    world_free(w);
    free(w);
    return rc == 0 ? 0 : 1;
}
