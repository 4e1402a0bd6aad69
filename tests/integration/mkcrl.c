/* mkcrl: makes X.509 v2 CRLs (RFC 5280 §5) signed by a test CA, of any size
 * up to millions of entries, for the CRL ingestion tests and the bench; and
 * checks a CRL with trustgate's own parser (pki/crl.h), which is the only
 * way to check an SM2 CRL signed with the GM/T 0009 ID (openssl crl -verify
 * passes no ID: research/sm2-openssl.md).
 *
 * The CRL is written as DER by hand, never through X509_CRL / X509_REVOKED
 * objects: a million OpenSSL objects cost seconds and hundreds of MB, while
 * the encoding of an entry is a few memcpy. Nothing is held whole: the
 * tbsCertList is produced twice from the options (generated serials come
 * from a seeded PRNG), once into EVP_DigestSignUpdate and once into the
 * file, through a 1 MiB chunk, so memory stays flat whatever --count is.
 * The two passes are needed because the outer SEQUENCE length depends on
 * the signature's length, which varies for ECDSA and SM2. Ed25519/Ed448
 * cannot sign a stream: their tbsCertList is built in memory.
 *
 * Entries: the --revoke / --revoke-cert ones first, in command-line order,
 * then --count generated ones in PRNG order (not sorted; a CRL need not
 * be). A generated serial is 16 octets, positive, top octet 0x40..0x7f; its
 * low 8 octets are distinct splitmix64 outputs, so serials never repeat.
 * Every entry carries revocationDate (--revoked-at) and a reasonCode entry
 * extension; generated entries have reason 1 (keyCompromise).
 *
 * The output replaces OUT atomically (temporary file + rename) so that a
 * server polling OUT never reads half a CRL. Exit status: 0, 1 on errors
 * (files, keys, OpenSSL, a CRL that fails --check), 2 on usage errors. */

#include "common/buf.h"
#include "common/err.h"
#include "common/file.h"
#include "common/log.h"
#include "pki/crl.h"
#include "tests/integration/tool_offset.h"
#include "pki/sm2.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define MAX_COUNT 100000000ULL /* 5 GB of CRL: beyond any test */
#define MAX_SERIAL 126         /* content octets of an explicit serial (the parser allows 64) */
#define GEN_SERIAL_LEN 16
#define CHUNK (1u << 20)
/* The longest entry: SEQUENCE header, INTEGER header and content, a
 * GeneralizedTime and the reasonCode extension. */
#define MAX_ENTRY (4 + 2 + MAX_SERIAL + 1 + 17 + 14)
#define MAX_CRL_READ ((size_t)8 << 30) /* --check reads at most 8 GiB */

#define TAG_INTEGER 0x02
#define TAG_BIT_STRING 0x03
#define TAG_OCTET_STRING 0x04
#define TAG_UTCTIME 0x17
#define TAG_GENTIME 0x18
#define TAG_SEQUENCE 0x30
#define TAG_CTX0 0xa0

static const char USAGE[] =
    "usage: mkcrl --ca CA.pem --key CA.key --out OUT [options]   make a CRL\n"
    "       mkcrl --ca CA.pem --in CRL                           check a CRL\n"
    "\n"
    "Makes an X.509 v2 CRL issued by CA.pem's subject and signed with CA.key\n"
    "(RSA: sha256WithRSAEncryption; ECDSA P-256/P-384/P-521: ecdsa-with-SHA256/\n"
    "384/512; SM2: SM2-with-SM3 with the ID 1234567812345678; Ed25519/Ed448),\n"
    "with authorityKeyIdentifier (the CA's subjectKeyIdentifier) and cRLNumber.\n"
    "\n"
    "  --count N                 N generated entries: random 16-octet positive\n"
    "                            serials, reason 1, deterministic from --seed\n"
    "  --seed S                  PRNG seed (default 1)\n"
    "  --revoke HEX[:REASON]     revoke this serial (hex as `openssl x509 -serial`\n"
    "                            prints it; a leading \"serial=\" is allowed);\n"
    "                            REASON is a CRLReason 0..10 except 7, default 1\n"
    "  --revoke-cert CERT[:REASON]  revoke CERT's serial (PEM or DER file)\n"
    "  --number N                cRLNumber, decimal, at most 20 octets (default 1)\n"
    "  --no-number               omit cRLNumber\n"
    "  --this OFFSET             thisUpdate relative to now (default -300)\n"
    "  --next OFFSET             nextUpdate relative to now (default +7d)\n"
    "  --revoked-at OFFSET       revocationDate of every entry (default -3600)\n"
    "                            OFFSET: signed seconds, or with a unit s m h d w y\n"
    "  --pem                     write PEM (X509 CRL) instead of DER\n"
    "  --idp                     add a critical issuingDistributionPoint\n"
    "                            (onlyContainsUserCerts): trustgate must refuse it\n"
    "  --check                   then check OUT with trustgate's parser\n"
    "                            (tg_crl_parse, tg_crl_verify against CA.pem, the\n"
    "                            entry walk) and print \"ok N entries\"\n"
    "  --in CRL                  only check CRL (DER or PEM) the same way\n"
    "  --help                    this text\n"
    "\n"
    "OUT may be - for standard output (not with --check). Entries: the explicit\n"
    "ones in order, then the generated ones. Exit: 0, 1 error, 2 usage error.\n";

/* One --revoke entry, the serial as the content octets of a DER INTEGER. */
typedef struct {
    uint8_t len;
    uint8_t serial[MAX_SERIAL + 1];
    uint8_t reason;
} entry_t;

/* One --revoke-cert, resolved once the options are read. */
typedef struct {
    char *path;
    uint8_t reason;
} cert_rev_t;

typedef struct {
    const char *ca, *key, *out, *in;
    uint64_t count, seed;
    entry_t *rev;
    size_t n_rev, cap_rev;
    cert_rev_t *certs;
    size_t n_certs, cap_certs;
    uint8_t number[TG_CRL_NUMBER_MAX];
    size_t number_len; /* 0: no cRLNumber */
    int64_t this_off, next_off, revoked_off;
    int pem, idp, check;
} opts_t;

/* The parts of the CRL that do not depend on the pass. */
typedef struct {
    tg_buf_t head; /* version, signature, issuer, thisUpdate, nextUpdate */
    tg_buf_t exts; /* the [0] crlExtensions TLV */
    uint8_t rtime[17];
    size_t rtime_len;
    const entry_t *rev;
    size_t n_rev;
    uint64_t count, seed;
    uint64_t revoked_len; /* content octets of revokedCertificates */
    uint64_t tbs_len;     /* content octets of tbsCertList */
    uint8_t alg[128];     /* the signature AlgorithmIdentifier TLV */
    size_t alg_len;
    uint8_t *chunk; /* CHUNK bytes of scratch for the entries */
} crl_t;

typedef enum { SINK_SIGN, SINK_MEM, SINK_DER, SINK_PEM } sink_kind_t;

/* Where a pass sends the bytes. */
typedef struct {
    sink_kind_t kind;
    EVP_MD_CTX *mctx;    /* SINK_SIGN */
    tg_buf_t *mem;       /* SINK_MEM */
    FILE *f;             /* SINK_DER, SINK_PEM */
    EVP_ENCODE_CTX *enc; /* SINK_PEM */
    uint8_t *encbuf;     /* SINK_PEM: EVP_ENCODE_LENGTH(CHUNK) bytes */
    uint64_t total;      /* DER bytes put so far */
} sink_t;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    fputs("mkcrl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("mkcrl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(mkcrl --help for usage)\n", stderr);
    exit(EXIT_USAGE);
}

/* ---- option values ---- */

static int parse_u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return TG_EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return TG_EINVAL;
    *out = v;
    return 0;
}

/* CRLReason (RFC 5280 §5.3.1): 0..10, 7 unused. */
static int parse_reason(const char *s, uint8_t *out)
{
    uint64_t v;
    if (parse_u64(s, &v) != 0 || v > 10 || v == 7)
        return TG_EINVAL;
    *out = (uint8_t)v;
    return 0;
}

/* Splits "X:REASON" at its last ':' when what follows is a reason number;
 * otherwise the whole of s is X and the reason is 1. Writes a NUL over the
 * ':'. Returns 0 or TG_EINVAL (a ':' followed by something else). */
static int split_reason(char *s, uint8_t *out_reason, int colon_must_be_reason)
{
    *out_reason = 1; /* keyCompromise */
    char *c = strrchr(s, ':');
    if (c == NULL)
        return 0;
    if (parse_reason(c + 1, out_reason) != 0)
        return colon_must_be_reason ? TG_EINVAL : 0; /* a path with a ':' in it */
    *c = '\0';
    return 0;
}

/* Minimal DER INTEGER content octets of the positive big-endian magnitude
 * at p (leading zeros allowed). Returns the length, 0 for zero. */
static size_t positive_int(const uint8_t *p, size_t n, uint8_t *out)
{
    while (n > 0 && p[0] == 0) {
        p++;
        n--;
    }
    if (n == 0)
        return 0;
    size_t i = 0;
    if (p[0] & 0x80)
        out[i++] = 0x00;
    memcpy(out + i, p, n);
    return i + n;
}

static void parse_revoke(opts_t *o, char *arg)
{
    entry_t e;
    char *s = arg;
    if (split_reason(s, &e.reason, 1) != 0)
        usage_error("--revoke %s: REASON must be a CRLReason 0..10 other than 7", arg);
    if (strncmp(s, "serial=", 7) == 0)
        s += 7;
    size_t nd = strlen(s);
    if (nd == 0 || nd > 2 * (MAX_SERIAL + 8))
        usage_error("--revoke: serial \"%s\" must be 1..%d hex octets", s, MAX_SERIAL);
    uint8_t mag[MAX_SERIAL + 8];
    size_t nb = (nd + 1) / 2;
    memset(mag, 0, sizeof(mag));
    for (size_t i = 0; i < nd; i++) {
        int v = tg_hex_digit(s[i]);
        if (v < 0)
            usage_error("--revoke: serial \"%s\" is not hexadecimal", s);
        size_t pos = i + (nd & 1); /* odd digit count: an implicit leading 0 */
        mag[pos / 2] |= (uint8_t)(pos & 1 ? v : v << 4);
    }
    size_t len = positive_int(mag, nb, e.serial);
    if (len == 0)
        usage_error("--revoke: serial 0 is not a certificate serial (RFC 5280 §4.1.2.2)");
    if (len > MAX_SERIAL)
        usage_error("--revoke: serial \"%s\" is longer than %d octets", s, MAX_SERIAL);
    e.len = (uint8_t)len;
    if (o->n_rev == o->cap_rev) {
        o->cap_rev = o->cap_rev ? 2 * o->cap_rev : 16;
        o->rev = realloc(o->rev, o->cap_rev * sizeof(*o->rev));
        if (o->rev == NULL) {
            fail("out of memory");
            exit(1);
        }
    }
    o->rev[o->n_rev++] = e;
}

static void parse_revoke_cert(opts_t *o, char *arg)
{
    cert_rev_t c;
    (void)split_reason(arg, &c.reason, 0);
    if (*arg == '\0')
        usage_error("--revoke-cert needs a file");
    c.path = arg;
    if (o->n_certs == o->cap_certs) {
        o->cap_certs = o->cap_certs ? 2 * o->cap_certs : 8;
        o->certs = realloc(o->certs, o->cap_certs * sizeof(*o->certs));
        if (o->certs == NULL) {
            fail("out of memory");
            exit(1);
        }
    }
    o->certs[o->n_certs++] = c;
}

/* cRLNumber: decimal, non-negative, at most 20 content octets (§5.2.3). */
static void parse_number(opts_t *o, const char *s)
{
    BIGNUM *bn = NULL;
    size_t nd = strspn(s, "0123456789");
    if (nd == 0 || s[nd] != '\0' || nd > 60 || BN_dec2bn(&bn, s) != (int)nd)
        usage_error("--number %s: not a decimal number of at most 20 octets", s);
    uint8_t mag[32];
    int n = BN_bn2binpad(bn, mag, sizeof(mag));
    BN_free(bn);
    if (n < 0)
        usage_error("--number %s: not a decimal number of at most 20 octets", s);
    uint8_t content[33];
    size_t len = positive_int(mag, (size_t)n, content);
    if (len == 0) {
        content[0] = 0;
        len = 1;
    }
    if (len > TG_CRL_NUMBER_MAX)
        usage_error("--number %s: longer than 20 octets (RFC 5280 §5.2.3)", s);
    memcpy(o->number, content, len);
    o->number_len = len;
}

static void parse_args(int argc, char **argv, opts_t *o)
{
    enum {
        O_CA = 256,
        O_KEY,
        O_OUT,
        O_IN,
        O_COUNT,
        O_SEED,
        O_REVOKE,
        O_REVOKE_CERT,
        O_NUMBER,
        O_NO_NUMBER,
        O_THIS,
        O_NEXT,
        O_REVOKED_AT,
        O_PEM,
        O_IDP,
        O_CHECK,
        O_HELP,
    };
    static const struct option longopts[] = {
        {"ca", required_argument, NULL, O_CA},
        {"key", required_argument, NULL, O_KEY},
        {"out", required_argument, NULL, O_OUT},
        {"in", required_argument, NULL, O_IN},
        {"count", required_argument, NULL, O_COUNT},
        {"seed", required_argument, NULL, O_SEED},
        {"revoke", required_argument, NULL, O_REVOKE},
        {"revoke-cert", required_argument, NULL, O_REVOKE_CERT},
        {"number", required_argument, NULL, O_NUMBER},
        {"no-number", no_argument, NULL, O_NO_NUMBER},
        {"this", required_argument, NULL, O_THIS},
        {"next", required_argument, NULL, O_NEXT},
        {"revoked-at", required_argument, NULL, O_REVOKED_AT},
        {"pem", no_argument, NULL, O_PEM},
        {"idp", no_argument, NULL, O_IDP},
        {"check", no_argument, NULL, O_CHECK},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int number_set = 0, no_number = 0, making = 0;
    o->seed = 1;
    o->number[0] = 1;
    o->number_len = 1;
    o->this_off = -300;
    o->next_off = 7 * 86400;
    o->revoked_off = -3600;
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, "", longopts, NULL);
        if (c == -1)
            break;
        if (c != O_CA && c != O_IN && c != O_CHECK && c != O_HELP && c != '?' && c != ':')
            making = 1;
        switch (c) {
        case O_CA: o->ca = optarg; break;
        case O_KEY: o->key = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_IN: o->in = optarg; break;
        case O_COUNT:
            if (parse_u64(optarg, &o->count) != 0 || o->count > MAX_COUNT)
                usage_error("--count %s: not a number of at most %llu", optarg, MAX_COUNT);
            break;
        case O_SEED:
            if (parse_u64(optarg, &o->seed) != 0)
                usage_error("--seed %s: not an unsigned 64-bit number", optarg);
            break;
        case O_REVOKE: parse_revoke(o, optarg); break;
        case O_REVOKE_CERT: parse_revoke_cert(o, optarg); break;
        case O_NUMBER:
            parse_number(o, optarg);
            number_set = 1;
            break;
        case O_NO_NUMBER: no_number = 1; break;
        case O_THIS:
            if (tool_parse_offset(optarg, &o->this_off) != 0)
                usage_error("--this %s: not an offset in seconds (e.g. -300, +7d)", optarg);
            break;
        case O_NEXT:
            if (tool_parse_offset(optarg, &o->next_off) != 0)
                usage_error("--next %s: not an offset in seconds (e.g. -300, +7d)", optarg);
            break;
        case O_REVOKED_AT:
            if (tool_parse_offset(optarg, &o->revoked_off) != 0)
                usage_error("--revoked-at %s: not an offset in seconds (e.g. -1h)", optarg);
            break;
        case O_PEM: o->pem = 1; break;
        case O_IDP: o->idp = 1; break;
        case O_CHECK: o->check = 1; break;
        case O_HELP: fputs(USAGE, stdout); exit(0);
        default:
            if (optopt != 0)
                usage_error("option %s needs a value", argv[optind - 1]);
            usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument %s", argv[optind]);
    if (number_set && no_number)
        usage_error("--number and --no-number exclude each other");
    if (no_number)
        o->number_len = 0;
    if (o->ca == NULL)
        usage_error("--ca is required");
    if (o->in != NULL) {
        if (making || o->key != NULL || o->out != NULL)
            usage_error("--in only checks a CRL: it takes --ca and nothing else");
        o->check = 1;
        return;
    }
    if (o->key == NULL || o->out == NULL)
        usage_error("--key and --out are required to make a CRL (or --in to check one)");
    if (o->check && strcmp(o->out, "-") == 0)
        usage_error("--check needs --out to be a file");
}

/* ---- DER ---- */

static size_t put_hdr(uint8_t *out, uint8_t tag, uint64_t len)
{
    size_t i = 0;
    out[i++] = tag;
    if (len < 0x80) {
        out[i++] = (uint8_t)len;
        return i;
    }
    int nb = 0;
    for (uint64_t v = len; v != 0; v >>= 8)
        nb++;
    out[i++] = (uint8_t)(0x80 | nb);
    for (int k = nb - 1; k >= 0; k--)
        out[i++] = (uint8_t)(len >> (8 * k));
    return i;
}

static size_t hdr_len(uint64_t len)
{
    uint8_t tmp[10];
    return put_hdr(tmp, 0, len);
}

static int buf_tlv(tg_buf_t *b, uint8_t tag, const void *content, size_t n)
{
    uint8_t h[10];
    size_t hn = put_hdr(h, tag, n);
    if (tg_buf_append(b, h, hn) != 0 || tg_buf_append(b, content, n) != 0)
        return TG_ENOMEM;
    return 0;
}

/* Time (RFC 5280 §5.1.2.4): UTCTime YYMMDDHHMMSSZ for 1950..2049,
 * GeneralizedTime YYYYMMDDHHMMSSZ otherwise. out holds 17 bytes. */
static int put_time(int64_t t, uint8_t *out, size_t *out_len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char s[32];
    if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL)
        return TG_EINVAL;
    long y = (long)tm.tm_year + 1900;
    int n;
    if (y >= 1950 && y <= 2049) {
        n = snprintf(s, sizeof(s), "%02ld%02d%02d%02d%02d%02dZ", y % 100, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
        out[0] = TAG_UTCTIME;
    } else if (y >= 0 && y <= 9999) {
        n = snprintf(s, sizeof(s), "%04ld%02d%02d%02d%02d%02dZ", y, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
        out[0] = TAG_GENTIME;
    } else {
        return TG_EINVAL;
    }
    out[1] = (uint8_t)n;
    memcpy(out + 2, s, (size_t)n);
    *out_len = 2 + (size_t)n;
    return 0;
}

/* revokedCertificates entry: SEQUENCE { userCertificate INTEGER,
 * revocationDate Time, crlEntryExtensions { reasonCode ENUMERATED } }. */
static size_t put_entry(uint8_t *out, const uint8_t *serial, size_t slen, const uint8_t *t,
                        size_t tlen, uint8_t reason)
{
    static const uint8_t reason_ext[] = {
        0x30, 0x0c,                   /* Extensions */
        0x30, 0x0a,                   /* Extension */
        0x06, 0x03, 0x55, 0x1d, 0x15, /* id-ce-cRLReasons 2.5.29.21 */
        0x04, 0x03, 0x0a, 0x01,       /* OCTET STRING { ENUMERATED, then the value } */
    };
    size_t body = hdr_len(slen) + slen + tlen + sizeof(reason_ext) + 1;
    size_t i = put_hdr(out, TAG_SEQUENCE, body);
    i += put_hdr(out + i, TAG_INTEGER, slen);
    memcpy(out + i, serial, slen);
    i += slen;
    memcpy(out + i, t, tlen);
    i += tlen;
    memcpy(out + i, reason_ext, sizeof(reason_ext));
    i += sizeof(reason_ext);
    out[i++] = reason;
    return i;
}

/* splitmix64: a bijection of its counter state, so within one run every
 * output is distinct. */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* 16 octets, top octet 0x40..0x7f: positive and minimal without a pad. */
static void gen_serial(uint64_t *state, uint8_t out[GEN_SERIAL_LEN])
{
    uint64_t hi = splitmix64(state), lo = splitmix64(state);
    for (int k = 0; k < 8; k++) {
        out[k] = (uint8_t)(hi >> (56 - 8 * k));
        out[8 + k] = (uint8_t)(lo >> (56 - 8 * k));
    }
    out[0] = (uint8_t)((out[0] & 0x7f) | 0x40);
}

/* ---- sinks ---- */

static int sink_put(sink_t *s, const uint8_t *p, size_t n)
{
    s->total += n;
    switch (s->kind) {
    case SINK_SIGN:
        if (EVP_DigestSignUpdate(s->mctx, p, n) != 1) {
            tg_log_openssl("EVP_DigestSignUpdate");
            return TG_ECRYPTO;
        }
        return 0;
    case SINK_MEM: return tg_buf_append(s->mem, p, n);
    case SINK_DER: return fwrite(p, 1, n, s->f) == n ? 0 : TG_EIO;
    case SINK_PEM:
        while (n > 0) {
            size_t k = n > CHUNK ? CHUNK : n;
            int outl = 0;
            if (EVP_EncodeUpdate(s->enc, s->encbuf, &outl, p, (int)k) != 1) {
                tg_log_openssl("EVP_EncodeUpdate");
                return TG_ECRYPTO;
            }
            if (fwrite(s->encbuf, 1, (size_t)outl, s->f) != (size_t)outl)
                return TG_EIO;
            p += k;
            n -= k;
        }
        return 0;
    }
    return TG_EINVAL;
}

/* Emits the whole tbsCertList TLV into s. */
static int emit_tbs(const crl_t *crl, sink_t *s)
{
    uint8_t h[10];
    int rc;
    if ((rc = sink_put(s, h, put_hdr(h, TAG_SEQUENCE, crl->tbs_len))) != 0 ||
        (rc = sink_put(s, crl->head.data, crl->head.len)) != 0)
        return rc;
    if (crl->revoked_len > 0) {
        if ((rc = sink_put(s, h, put_hdr(h, TAG_SEQUENCE, crl->revoked_len))) != 0)
            return rc;
        size_t used = 0;
        for (size_t i = 0; i < crl->n_rev; i++) {
            if (CHUNK - used < MAX_ENTRY) {
                if ((rc = sink_put(s, crl->chunk, used)) != 0)
                    return rc;
                used = 0;
            }
            const entry_t *e = &crl->rev[i];
            used += put_entry(crl->chunk + used, e->serial, e->len, crl->rtime, crl->rtime_len,
                              e->reason);
        }
        uint64_t state = crl->seed;
        uint8_t serial[GEN_SERIAL_LEN];
        for (uint64_t i = 0; i < crl->count; i++) {
            if (CHUNK - used < MAX_ENTRY) {
                if ((rc = sink_put(s, crl->chunk, used)) != 0)
                    return rc;
                used = 0;
            }
            gen_serial(&state, serial);
            used +=
                put_entry(crl->chunk + used, serial, sizeof(serial), crl->rtime, crl->rtime_len, 1);
        }
        if (used > 0 && (rc = sink_put(s, crl->chunk, used)) != 0)
            return rc;
    }
    return sink_put(s, crl->exts.data, crl->exts.len);
}

/* ---- building ---- */

/* The signature AlgorithmIdentifier exactly as the provider encodes it
 * when it signs (what X509_CRL_sign_ctx would put in the CRL). */
static int sigalg_der(EVP_MD_CTX *mctx, crl_t *crl)
{
    OSSL_PARAM params[2] = {
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, crl->alg, sizeof(crl->alg)),
        OSSL_PARAM_END,
    };
    EVP_PKEY_CTX *pctx = EVP_MD_CTX_get_pkey_ctx(mctx);
    if (pctx == NULL || EVP_PKEY_CTX_get_params(pctx, params) != 1 ||
        !OSSL_PARAM_modified(&params[0]) || params[0].return_size < 2 ||
        params[0].return_size > sizeof(crl->alg) || crl->alg[0] != TAG_SEQUENCE) {
        tg_log_openssl("signature AlgorithmIdentifier");
        return TG_ECRYPTO;
    }
    crl->alg_len = params[0].return_size;
    return 0;
}

/* The CRL extensions (§5.2): authorityKeyIdentifier, cRLNumber and, on
 * request, a critical issuingDistributionPoint. */
static int build_exts(const opts_t *o, X509 *ca, tg_buf_t *out)
{
    tg_buf_t list, ext, tmp;
    int rc = TG_ENOMEM;
    tg_buf_init(&list);
    tg_buf_init(&ext);
    tg_buf_init(&tmp);

    /* §5.2.1: AKI keyIdentifier = the CA's subjectKeyIdentifier; a CA
     * without one gets the SHA-1 of its public key (§4.2.1.2 method 1),
     * which is what it would have put there. */
    uint8_t kid_buf[EVP_MAX_MD_SIZE];
    const uint8_t *kid;
    size_t kid_len;
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(ca);
    if (skid != NULL) {
        kid = ASN1_STRING_get0_data(skid);
        kid_len = (size_t)ASN1_STRING_length(skid);
    } else {
        unsigned int n = 0;
        if (X509_pubkey_digest(ca, EVP_sha1(), kid_buf, &n) != 1) {
            tg_log_openssl("X509_pubkey_digest");
            rc = TG_ECRYPTO;
            goto out;
        }
        kid = kid_buf;
        kid_len = n;
    }
    static const uint8_t oid_aki[] = {0x06, 0x03, 0x55, 0x1d, 0x23};
    static const uint8_t oid_number[] = {0x06, 0x03, 0x55, 0x1d, 0x14};
    /* id-ce-issuingDistributionPoint, critical, { onlyContainsUserCerts
     * [1] IMPLICIT BOOLEAN TRUE } */
    static const uint8_t idp[] = {0x30, 0x0f, 0x06, 0x03, 0x55, 0x1d, 0x1c, 0x01, 0x01,
                                  0xff, 0x04, 0x05, 0x30, 0x03, 0x81, 0x01, 0xff};

    if (buf_tlv(&tmp, 0x80, kid, kid_len) != 0 || /* keyIdentifier [0] IMPLICIT */
        tg_buf_append(&ext, oid_aki, sizeof(oid_aki)) != 0)
        goto out;
    {
        tg_buf_t seq;
        tg_buf_init(&seq);
        int r = buf_tlv(&seq, TAG_SEQUENCE, tmp.data, tmp.len);
        if (r == 0)
            r = buf_tlv(&ext, TAG_OCTET_STRING, seq.data, seq.len);
        tg_buf_free(&seq);
        if (r != 0 || buf_tlv(&list, TAG_SEQUENCE, ext.data, ext.len) != 0)
            goto out;
    }
    if (o->number_len > 0) {
        tg_buf_free(&ext);
        tg_buf_free(&tmp);
        if (buf_tlv(&tmp, TAG_INTEGER, o->number, o->number_len) != 0 ||
            tg_buf_append(&ext, oid_number, sizeof(oid_number)) != 0 ||
            buf_tlv(&ext, TAG_OCTET_STRING, tmp.data, tmp.len) != 0 ||
            buf_tlv(&list, TAG_SEQUENCE, ext.data, ext.len) != 0)
            goto out;
    }
    if (o->idp && tg_buf_append(&list, idp, sizeof(idp)) != 0)
        goto out;
    tg_buf_free(&tmp);
    if (buf_tlv(&tmp, TAG_SEQUENCE, list.data, list.len) != 0 ||
        buf_tlv(out, TAG_CTX0, tmp.data, tmp.len) != 0)
        goto out;
    rc = 0;
out:
    tg_buf_free(&list);
    tg_buf_free(&ext);
    tg_buf_free(&tmp);
    return rc;
}

/* version, signature, issuer, thisUpdate, nextUpdate; the times, the
 * entries' lengths and the extensions. Needs crl->alg. */
static int build_fixed(const opts_t *o, X509 *ca, crl_t *crl)
{
    static const uint8_t v2[] = {TAG_INTEGER, 0x01, 0x01};
    uint8_t t[17];
    size_t tn;
    unsigned char *name = NULL;
    int rc = TG_ENOMEM;
    int64_t now = (int64_t)time(NULL);

    int nn = i2d_X509_NAME(X509_get_subject_name(ca), &name);
    if (nn <= 0) {
        tg_log_openssl("i2d_X509_NAME");
        return TG_ECRYPTO;
    }
    if (tg_buf_append(&crl->head, v2, sizeof(v2)) != 0 ||
        tg_buf_append(&crl->head, crl->alg, crl->alg_len) != 0 ||
        tg_buf_append(&crl->head, name, (size_t)nn) != 0)
        goto out;
    if (put_time(now + o->this_off, t, &tn) != 0) {
        fail("--this gives a date outside years 0..9999");
        rc = TG_EINVAL;
        goto out;
    }
    if (tg_buf_append(&crl->head, t, tn) != 0)
        goto out;
    if (put_time(now + o->next_off, t, &tn) != 0) {
        fail("--next gives a date outside years 0..9999");
        rc = TG_EINVAL;
        goto out;
    }
    if (tg_buf_append(&crl->head, t, tn) != 0)
        goto out;
    if (put_time(now + o->revoked_off, crl->rtime, &crl->rtime_len) != 0) {
        fail("--revoked-at gives a date outside years 0..9999");
        rc = TG_EINVAL;
        goto out;
    }
    if ((rc = build_exts(o, ca, &crl->exts)) != 0)
        goto out;

    uint8_t scratch[MAX_ENTRY], serial[GEN_SERIAL_LEN] = {0x40};
    crl->revoked_len = 0;
    for (size_t i = 0; i < crl->n_rev; i++)
        crl->revoked_len += put_entry(scratch, crl->rev[i].serial, crl->rev[i].len, crl->rtime,
                                      crl->rtime_len, crl->rev[i].reason);
    crl->revoked_len +=
        crl->count * put_entry(scratch, serial, sizeof(serial), crl->rtime, crl->rtime_len, 1);
    /* §5.1.2.6: no entries, no revokedCertificates (not an empty one). */
    crl->tbs_len = crl->head.len + crl->exts.len;
    if (crl->revoked_len > 0)
        crl->tbs_len += hdr_len(crl->revoked_len) + crl->revoked_len;
    rc = 0;
out:
    OPENSSL_free(name);
    return rc;
}

/* ---- files ---- */

static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1; /* never prompt: an encrypted key is an error */
}

static X509 *load_cert(const char *path)
{
    BIO *b = BIO_new_file(path, "rb");
    if (b == NULL) {
        fail("cannot read %s: %s", path, strerror(errno));
        ERR_clear_error();
        return NULL;
    }
    X509 *x = PEM_read_bio_X509(b, NULL, no_password, NULL);
    if (x == NULL) { /* perhaps DER */
        ERR_clear_error();
        (void)BIO_reset(b);
        x = d2i_X509_bio(b, NULL);
    }
    BIO_free(b);
    if (x == NULL) {
        ERR_clear_error();
        fail("%s: not a PEM or DER certificate", path);
    }
    return x;
}

static EVP_PKEY *load_key(const char *path)
{
    BIO *b = BIO_new_file(path, "rb");
    if (b == NULL) {
        fail("cannot read %s: %s", path, strerror(errno));
        ERR_clear_error();
        return NULL;
    }
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
    BIO_free(b);
    if (k == NULL) {
        ERR_clear_error();
        fail("%s: not an unencrypted PEM private key", path);
    }
    return k;
}

/* Turns every --revoke-cert into an entry. */
static int resolve_certs(opts_t *o, X509 *ca)
{
    for (size_t i = 0; i < o->n_certs; i++) {
        X509 *x = load_cert(o->certs[i].path);
        if (x == NULL)
            return TG_EIO;
        const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
        BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
        entry_t e = {.reason = o->certs[i].reason};
        uint8_t mag[MAX_SERIAL + 1];
        int n = bn == NULL || BN_is_negative(bn) ? -1 : BN_bn2binpad(bn, mag, MAX_SERIAL);
        BN_free(bn);
        size_t len = n > 0 ? positive_int(mag, (size_t)n, e.serial) : 0;
        if (len == 0 || len > MAX_SERIAL) {
            ERR_clear_error();
            fail("%s: serial is zero, negative or longer than %d octets", o->certs[i].path,
                 MAX_SERIAL);
            X509_free(x);
            return TG_EINVAL;
        }
        e.len = (uint8_t)len;
        if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca)) != 0)
            fprintf(stderr, "mkcrl: warning: %s was not issued by the CA (issuer differs)\n",
                    o->certs[i].path);
        X509_free(x);
        if (o->n_rev == o->cap_rev) {
            o->cap_rev = o->cap_rev ? 2 * o->cap_rev : 16;
            entry_t *r = realloc(o->rev, o->cap_rev * sizeof(*o->rev));
            if (r == NULL)
                return TG_ENOMEM;
            o->rev = r;
        }
        o->rev[o->n_rev++] = e;
    }
    return 0;
}

/* Signs the tbsCertList: pass one. *out_sig is malloc'd. */
static int sign_tbs(EVP_MD_CTX *mctx, EVP_PKEY *key, const crl_t *crl, uint8_t **out_sig,
                    size_t *out_len)
{
    tg_buf_t mem;
    size_t n = 0;
    uint8_t *sig = NULL;
    int rc;
    /* EdDSA is one-shot only: it hashes the message twice. */
    int oneshot = EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448");
    sink_t s = {.kind = oneshot ? SINK_MEM : SINK_SIGN, .mctx = mctx, .mem = &mem};
    tg_buf_init(&mem);
    if ((rc = emit_tbs(crl, &s)) != 0)
        goto out;
    /* The lengths in the headers were computed before the bytes exist. */
    if (s.total != hdr_len(crl->tbs_len) + crl->tbs_len) {
        fail("internal error: tbsCertList is %" PRIu64 " bytes, not %" PRIu64, s.total,
             (uint64_t)(hdr_len(crl->tbs_len) + crl->tbs_len));
        rc = TG_EINVAL;
        goto out;
    }
    rc = TG_ECRYPTO;
    if (oneshot ? EVP_DigestSign(mctx, NULL, &n, mem.data, mem.len) != 1
                : EVP_DigestSignFinal(mctx, NULL, &n) != 1) {
        tg_log_openssl("EVP_DigestSign");
        goto out;
    }
    if ((sig = malloc(n)) == NULL) {
        rc = TG_ENOMEM;
        goto out;
    }
    if (oneshot ? EVP_DigestSign(mctx, sig, &n, mem.data, mem.len) != 1
                : EVP_DigestSignFinal(mctx, sig, &n) != 1) {
        tg_log_openssl("EVP_DigestSign");
        goto out;
    }
    *out_sig = sig;
    *out_len = n;
    sig = NULL;
    rc = 0;
out:
    free(sig);
    tg_buf_free(&mem);
    return rc;
}

/* Pass two: the whole CertificateList into f. */
static int write_crl(FILE *f, int pem, const crl_t *crl, const uint8_t *sig, size_t sig_len)
{
    sink_t s = {.kind = pem ? SINK_PEM : SINK_DER, .f = f};
    uint8_t h[10];
    int rc = TG_ENOMEM;
    if (pem) {
        s.enc = EVP_ENCODE_CTX_new();
        s.encbuf = malloc(EVP_ENCODE_LENGTH(CHUNK));
        if (s.enc == NULL || s.encbuf == NULL)
            goto out;
        EVP_EncodeInit(s.enc);
        rc = TG_EIO;
        if (fputs("-----BEGIN X509 CRL-----\n", f) == EOF)
            goto out;
    }
    uint64_t bits = sig_len + 1; /* BIT STRING: no unused bits */
    uint64_t total = hdr_len(crl->tbs_len) + crl->tbs_len + crl->alg_len + hdr_len(bits) + bits;
    static const uint8_t zero = 0;
    if ((rc = sink_put(&s, h, put_hdr(h, TAG_SEQUENCE, total))) != 0 ||
        (rc = emit_tbs(crl, &s)) != 0 || (rc = sink_put(&s, crl->alg, crl->alg_len)) != 0 ||
        (rc = sink_put(&s, h, put_hdr(h, TAG_BIT_STRING, bits))) != 0 ||
        (rc = sink_put(&s, &zero, 1)) != 0 || (rc = sink_put(&s, sig, sig_len)) != 0)
        goto out;
    if (pem) {
        int outl = 0;
        EVP_EncodeFinal(s.enc, s.encbuf, &outl);
        rc = TG_EIO;
        if (fwrite(s.encbuf, 1, (size_t)outl, f) != (size_t)outl ||
            fputs("-----END X509 CRL-----\n", f) == EOF)
            goto out;
    }
    rc = 0;
out:
    EVP_ENCODE_CTX_free(s.enc);
    free(s.encbuf);
    return rc;
}

/* Writes the CRL to path atomically, or to standard output for "-". */
static int output(const char *path, int pem, const crl_t *crl, const uint8_t *sig, size_t sig_len)
{
    if (strcmp(path, "-") == 0) {
        int rc = write_crl(stdout, pem, crl, sig, sig_len);
        if (fflush(stdout) != 0 && rc == 0)
            rc = TG_EIO;
        if (rc != 0)
            fail("writing to standard output: %s", rc == TG_EIO ? strerror(errno) : "failed");
        return rc;
    }
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (tmp == NULL)
        return TG_ENOMEM;
    snprintf(tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fail("cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return TG_EIO;
    }
    /* Readable like a file from cp or openssl; no fsync: a test artefact
     * need not survive a crash, only never be seen half-written. */
    (void)fchmod(fd, 0644);
    FILE *f = fdopen(fd, "wb");
    int rc = TG_EIO;
    if (f == NULL) {
        close(fd);
        goto out;
    }
    setvbuf(f, NULL, _IOFBF, CHUNK);
    rc = write_crl(f, pem, crl, sig, sig_len);
    if (fclose(f) != 0 && rc == 0)
        rc = TG_EIO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = TG_EIO;
out:
    if (rc != 0) {
        if (rc == TG_EIO)
            fail("cannot write %s: %s", path, strerror(errno));
        else
            fail("cannot write %s: %s", path, tg_strerror(rc));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* ---- --check ---- */

static int count_entry(void *arg, const tg_crl_entry_t *e)
{
    (void)arg;
    (void)e;
    return 0;
}

/* Checks the CRL at path (DER or PEM) as trustgate's ingestion would:
 * tg_crl_parse, tg_crl_verify against ca, then the entry walk. Prints
 * "ok N entries". expect is the entry count it must have, or -1. */
static int check(const char *path, X509 *ca, int64_t expect)
{
    tg_buf_t file;
    unsigned char *pemder = NULL;
    long pemlen = 0;
    int rc;
    tg_buf_init(&file);
    if ((rc = tg_file_read(path, MAX_CRL_READ, &file)) != 0) {
        fail("check: cannot read %s: %s", path, rc == TG_EIO ? strerror(errno) : tg_strerror(rc));
        goto out;
    }
    const uint8_t *der = file.data;
    size_t len = file.len;
    if (len >= 11 && memcmp(der, "-----BEGIN ", 11) == 0) {
        BIO *b = BIO_new_mem_buf(file.data, file.len > INT_MAX ? -1 : (int)file.len);
        int ok =
            b != NULL && file.len <= INT_MAX &&
            PEM_bytes_read_bio(&pemder, &pemlen, NULL, PEM_STRING_X509_CRL, b, NULL, NULL) == 1;
        BIO_free(b);
        if (!ok) {
            ERR_clear_error();
            fail("check: %s: no PEM \"X509 CRL\" block", path);
            rc = TG_EMALFORMED;
            goto out;
        }
        der = pemder;
        len = (size_t)pemlen;
    }
    tg_crl_info_t info;
    rc = tg_crl_parse(der, len, len, &info);
    if (rc != 0) {
        fail("check: %s: refused by tg_crl_parse: %s%s", path, tg_strerror(rc),
             rc == TG_EUNSUPPORTED ? " (delta CRL or unknown critical extension)" : "");
        goto out;
    }
    const char *why = NULL;
    rc = tg_crl_verify(&info, der, len, ca, &why);
    if (rc != 0) {
        fail("check: %s: refused by tg_crl_verify: %s", path, why ? why : tg_strerror(rc));
        goto out;
    }
    int n = tg_crl_for_each_revoked(&info, count_entry, NULL);
    if (n < 0) {
        rc = n;
        fail("check: %s: an entry was refused: %s", path, tg_strerror(rc));
        goto out;
    }
    if (expect >= 0 && n != expect) {
        fail("check: %s: %d entries, expected %" PRId64, path, n, expect);
        rc = TG_EMALFORMED;
        goto out;
    }
    printf("ok %d entries\n", n);
    rc = 0;
out:
    OPENSSL_free(pemder);
    tg_buf_free(&file);
    return rc;
}

int main(int argc, char **argv)
{
    opts_t o = {0};
    crl_t crl = {0};
    X509 *ca = NULL;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *mctx = NULL;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    int rc = 1;

    parse_args(argc, argv, &o);
    tg_buf_init(&crl.head);
    tg_buf_init(&crl.exts);

    if ((ca = load_cert(o.ca)) == NULL)
        goto out;
    if (o.in != NULL) {
        rc = check(o.in, ca, -1) == 0 ? 0 : 1;
        goto out;
    }
    if ((key = load_key(o.key)) == NULL)
        goto out;
    if (X509_check_private_key(ca, key) != 1) {
        ERR_clear_error();
        fail("%s does not hold the private key of %s", o.key, o.ca);
        goto out;
    }
    if (resolve_certs(&o, ca) != 0)
        goto out;
    if (o.count + o.n_rev > INT_MAX) {
        fail("at most %d entries in all", INT_MAX);
        goto out;
    }

    const EVP_MD *md = NULL;
    if (tg_pki_default_md(key, &md) != 0) {
        fail("%s: unsupported key type %s (RSA, ECDSA P-256/384/521, SM2, Ed25519/448 are)", o.key,
             EVP_PKEY_get0_type_name(key));
        goto out;
    }
    if ((mctx = EVP_MD_CTX_new()) == NULL || (crl.chunk = malloc(CHUNK)) == NULL) {
        fail("out of memory");
        goto out;
    }
    if (tg_pki_digest_sign_init(mctx, key, md) != 0 || sigalg_der(mctx, &crl) != 0) {
        fail("%s: cannot sign with this key", o.key);
        goto out;
    }
    crl.rev = o.rev;
    crl.n_rev = o.n_rev;
    crl.count = o.count;
    crl.seed = o.seed;
    int b = build_fixed(&o, ca, &crl);
    if (b != 0) {
        if (b == TG_ENOMEM)
            fail("out of memory");
        else if (b != TG_EINVAL)
            fail("cannot build the CRL: %s", tg_strerror(b));
        goto out;
    }
    int s = sign_tbs(mctx, key, &crl, &sig, &sig_len);
    if (s != 0) {
        fail("signing failed: %s", tg_strerror(s));
        goto out;
    }
    if (output(o.out, o.pem, &crl, sig, sig_len) != 0)
        goto out;
    if (o.check && check(o.out, ca, (int64_t)(o.count + o.n_rev)) != 0)
        goto out;
    rc = 0;
out:
    free(sig);
    free(crl.chunk);
    tg_buf_free(&crl.head);
    tg_buf_free(&crl.exts);
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_free(key);
    X509_free(ca);
    free(o.rev);
    free(o.certs);
    return rc;
}
