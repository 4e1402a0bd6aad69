/* trustgate-bench-fill: fills a trustgate cache with N real, signed OCSP
 * responses, so the bench can measure lookups spread over millions of
 * cached entries and a cold start with them.
 *
 * The answers are what trustgate's upstream manager stores for a CA in
 * relay mode (responder/upmgr.c): upstream records, each the CA's own
 * signed response (responderID byKey, no certificates: RFC 6960
 * §4.2.2.2 needs none when the CA signs), with the status, times and
 * reason copied into the record header.
 *
 * Signing is the bottleneck (some 26,000 P-256 responses a second per
 * core here, OpenSSL 3.0), so T threads sign whole batches into a ring of slots and the main
 * thread commits the batches in order, one LMDB transaction each
 * (tg_cache_put_ocsp_batch; the serials ascend, so LMDB appends). At most
 * T + 2 batches of BATCH_MAX records exist at once: memory stays bounded
 * whatever N is. */
#include "cache/cache.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "pki/certid.h"
#include "pki/ocsp.h"
#include "pki/ocsp_sign.h"
#include "pki/ocsp_verify.h"
#include "pki/signer.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH_MAX 50000            /* records per write transaction */
#define BATCH_MIN 1000             /* ... unless the whole fill is smaller */
#define THREADS_MAX 256            /* signing threads */
#define COUNT_MAX 1000000000000ULL /* a sanity bound on --count */
#define PROGRESS_NS 10000000000ULL /* a progress line every 10 s */
#define DEFAULT_MAP_MB 16384
#define DEFAULT_VALID_S (7 * 24 * 3600)
#define LABEL_MAX 64
#define EXIT_USAGE 2

/* ---- options ------------------------------------------------------------- */

typedef struct {
    const char *cache_dir;
    const char *issuer_path;
    const char *key_path;
    uint64_t count;
    uint8_t serial[TG_SERIAL_MAX_LEN]; /* first serial: INTEGER content octets */
    size_t serial_len;
    size_t map_mb;
    tg_cert_status_t status;
    int64_t valid_s;
    tg_hash_alg_t alg;
    unsigned threads;
    const char *certids_out;
    const char *label;
} opts_t;

static void usage(FILE *out)
{
    fputs("usage: trustgate-bench-fill --cache DIR --issuer CA.pem --key CA.key --count N\n"
          "         [--serial-start HEX] [--map-size-mb M] [--status good|revoked]\n"
          "         [--valid-s S] [--hash sha1|sha256|sm3] [--threads T]\n"
          "         [--certids-out FILE] [--label TEXT]\n"
          "\n"
          "Signs N OCSP responses with CA.key as the CA's own responder (responderID\n"
          "byKey, no certificates) for the serials HEX .. HEX+N-1 (INTEGER content\n"
          "octets, default 10000000; all of one length) under CA.pem, and stores them\n"
          "in the trustgate cache DIR as upstream answers (created when missing; map\n"
          "M MiB, default 16384). thisUpdate = now - 60 s, nextUpdate = now + S\n"
          "(default 604800), producedAt = now; revoked: keyCompromise, an hour ago.\n"
          "T signing threads (default: online CPUs). --certids-out writes the CertID\n"
          "set line for the bench (label default 'fill').\n"
          "Exit: 0 done, 1 failure, 2 bad arguments.\n",
          out);
}

/* Reports a bad argument and exits with EXIT_USAGE. */
static void bad_arg(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void bad_arg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("trustgate-bench-fill: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(trustgate-bench-fill --help for the usage)\n", stderr);
    exit(EXIT_USAGE);
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s == NULL || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int hex_val(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Parses the hex content octets of a positive DER INTEGER (an optional
 * 0x, an odd digit count padded with a leading 0). Refuses what a CertID
 * cannot carry: not minimal, zero or negative, longer than
 * TG_SERIAL_MAX_LEN. */
static int parse_serial(const char *s, uint8_t *out, size_t *out_len)
{
    if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0)
        s += 2;
    size_t digits = strlen(s);
    if (digits == 0 || (digits + 1) / 2 > TG_SERIAL_MAX_LEN)
        return -1;
    size_t n = (digits + 1) / 2;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        int hi = 0;
        if (i > 0 || digits % 2 == 0) {
            hi = hex_val((unsigned char)s[j++]);
            if (hi < 0)
                return -1;
        }
        int lo = hex_val((unsigned char)s[j++]);
        if (lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    if (out[0] & 0x80)
        return -1; /* negative */
    if (n > 1 && out[0] == 0 && !(out[1] & 0x80))
        return -1; /* not minimal */
    if (n == 1 && out[0] == 0)
        return -1; /* zero (RFC 5280 §4.1.2.2) */
    *out_len = n;
    return 0;
}

/* Adds v to the big-endian len-byte number s. Returns 0, or -1 when the
 * sum no longer fits len bytes as a positive INTEGER (s is then garbage). */
static int serial_add(uint8_t *s, size_t len, uint64_t v)
{
    unsigned carry = 0;
    for (size_t i = len; i-- > 0;) {
        unsigned sum = (unsigned)s[i] + (unsigned)(v & 0xff) + carry;
        s[i] = (uint8_t)sum;
        carry = sum >> 8;
        v >>= 8;
    }
    return v != 0 || carry != 0 || (s[0] & 0x80) ? -1 : 0;
}

static void parse_args(int argc, char **argv, opts_t *o)
{
    enum {
        O_CACHE = 256,
        O_ISSUER,
        O_KEY,
        O_COUNT,
        O_SERIAL,
        O_MAP,
        O_STATUS,
        O_VALID,
        O_HASH,
        O_THREADS,
        O_CERTIDS,
        O_LABEL,
        O_HELP
    };
    static const struct option longs[] = {
        {"cache", required_argument, NULL, O_CACHE},
        {"issuer", required_argument, NULL, O_ISSUER},
        {"key", required_argument, NULL, O_KEY},
        {"count", required_argument, NULL, O_COUNT},
        {"serial-start", required_argument, NULL, O_SERIAL},
        {"map-size-mb", required_argument, NULL, O_MAP},
        {"status", required_argument, NULL, O_STATUS},
        {"valid-s", required_argument, NULL, O_VALID},
        {"hash", required_argument, NULL, O_HASH},
        {"threads", required_argument, NULL, O_THREADS},
        {"certids-out", required_argument, NULL, O_CERTIDS},
        {"label", required_argument, NULL, O_LABEL},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->map_mb = DEFAULT_MAP_MB;
    o->status = TG_CERT_GOOD;
    o->valid_s = DEFAULT_VALID_S;
    o->alg = TG_HASH_SHA1;
    o->label = "fill";
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = cpus < 1 ? 1 : cpus > THREADS_MAX ? THREADS_MAX : (unsigned)cpus;
    const char *serial = "10000000";
    int have_count = 0;
    uint64_t v;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", longs, NULL)) != -1) {
        switch (c) {
        case O_CACHE: o->cache_dir = optarg; break;
        case O_ISSUER: o->issuer_path = optarg; break;
        case O_KEY: o->key_path = optarg; break;
        case O_COUNT:
            if (parse_u64(optarg, 1, COUNT_MAX, &o->count) != 0)
                bad_arg("--count %s: expected a whole number >= 1", optarg);
            have_count = 1;
            break;
        case O_SERIAL: serial = optarg; break;
        case O_MAP:
            if (parse_u64(optarg, 1, (uint64_t)1 << 30, &v) != 0)
                bad_arg("--map-size-mb %s: expected a whole number of MiB >= 1", optarg);
            o->map_mb = (size_t)v;
            break;
        case O_STATUS:
            if (strcmp(optarg, "good") == 0)
                o->status = TG_CERT_GOOD;
            else if (strcmp(optarg, "revoked") == 0)
                o->status = TG_CERT_REVOKED;
            else
                bad_arg("--status %s: expected good or revoked", optarg);
            break;
        case O_VALID:
            /* 100 years at most: nextUpdate stays a GeneralizedTime */
            if (parse_u64(optarg, 1, 100ULL * 366 * 86400, &v) != 0)
                bad_arg("--valid-s %s: expected seconds, 1 .. 100 years", optarg);
            o->valid_s = (int64_t)v;
            break;
        case O_HASH: {
            int found = 0;
            for (int a = 0; a < TG_HASH_COUNT && !found; a++) {
                if (strcmp(optarg, tg_hash_alg_name((tg_hash_alg_t)a)) == 0) {
                    o->alg = (tg_hash_alg_t)a;
                    found = 1;
                }
            }
            if (!found)
                bad_arg("--hash %s: expected sha1, sha256 or sm3 (or sha384, sha512)", optarg);
            break;
        }
        case O_THREADS:
            if (parse_u64(optarg, 1, THREADS_MAX, &v) != 0)
                bad_arg("--threads %s: expected 1 .. 256", optarg);
            o->threads = (unsigned)v;
            break;
        case O_CERTIDS: o->certids_out = optarg; break;
        case O_LABEL: o->label = optarg; break;
        case O_HELP: usage(stdout); exit(0);
        case ':': bad_arg("%s needs a value", argv[optind - 1]); break;
        default: bad_arg("unknown argument %s", argv[optind - 1]); break;
        }
    }
    if (optind < argc)
        bad_arg("unexpected argument %s", argv[optind]);
    if (o->cache_dir == NULL || o->issuer_path == NULL || o->key_path == NULL || !have_count)
        bad_arg("%s", "--cache, --issuer, --key and --count are required");
    if (o->cache_dir[0] == '\0')
        bad_arg("%s", "--cache: empty path");
    /* the CertID set file is split on white space */
    size_t label_len = strlen(o->label);
    if (label_len == 0 || label_len > LABEL_MAX)
        bad_arg("--label '%s': 1 to 64 characters", o->label);
    for (size_t i = 0; i < label_len; i++)
        if (!isgraph((unsigned char)o->label[i]))
            bad_arg("--label '%s': printable characters, no white space", o->label);
    if (parse_serial(serial, o->serial, &o->serial_len) != 0)
        bad_arg("--serial-start %s: expected the hex content octets of a positive, minimal "
                "INTEGER (at most 64 bytes)",
                serial);
    uint8_t last[TG_SERIAL_MAX_LEN];
    memcpy(last, o->serial, o->serial_len);
    if (serial_add(last, o->serial_len, o->count - 1) != 0)
        bad_arg("--count: serial-start %s + count - 1 no longer fits the start's byte length "
                "as a positive INTEGER; use a smaller count or a longer serial-start",
                serial);
}

/* ---- DER: dropping the certs field -------------------------------------- */

/* Reads a DER header at p (n bytes): tag, header length and content
 * length, which must fit in n. Returns 0 or -1. */
static int der_hdr(const uint8_t *p, size_t n, uint8_t *out_tag, size_t *out_hdr, size_t *out_len)
{
    if (n < 2)
        return -1;
    size_t len = p[1], hdr = 2;
    if (len & 0x80) {
        size_t k = len & 0x7f;
        if (k == 0 || k > 4 || n < 2 + k)
            return -1;
        len = 0;
        for (size_t i = 0; i < k; i++)
            len = len << 8 | p[2 + i];
        hdr += k;
    }
    if (len > n - hdr)
        return -1;
    *out_tag = p[0];
    *out_hdr = hdr;
    *out_len = len;
    return 0;
}

/* Steps into the TLV at *p (*n bytes) if its tag is tag: *p and *n become
 * its content. Returns 0 or -1. */
static int der_enter(const uint8_t **p, size_t *n, uint8_t tag)
{
    uint8_t t;
    size_t hdr, len;
    if (der_hdr(*p, *n, &t, &hdr, &len) != 0 || t != tag)
        return -1;
    *p += hdr;
    *n = len;
    return 0;
}

/* The whole length of the TLV at p (n bytes), or 0 when it is broken. */
static size_t der_tlv_len(const uint8_t *p, size_t n)
{
    uint8_t t;
    size_t hdr, len;
    return der_hdr(p, n, &t, &hdr, &len) != 0 ? 0 : hdr + len;
}

static size_t hdr_size(size_t len)
{
    return len < 0x80 ? 2 : len <= 0xff ? 3 : len <= 0xffff ? 4 : len <= 0xffffff ? 5 : 6;
}

static uint8_t *put_hdr(uint8_t *p, uint8_t tag, size_t len)
{
    *p++ = tag;
    size_t k = hdr_size(len) - 2;
    if (k == 0) {
        *p++ = (uint8_t)len;
        return p;
    }
    *p++ = (uint8_t)(0x80 | k);
    for (size_t i = k; i-- > 0;)
        *p++ = (uint8_t)(len >> (8 * i));
    return p;
}

/* tg_ocsp_sign_response always attaches the signer certificate (for
 * delegated responders). When the CA signs for itself a client needs none
 * (RFC 6960 §4.2.2.2), CAs' own responders usually send none, and 10 M
 * copies of it would double the cache. The certs field is the last of the
 * BasicOCSPResponse and outside the signed tbsResponseData, so it is cut
 * off and the lengths around it re-encoded; the signature stays valid.
 * Appends the result for the in_len bytes at in to out. Returns 0, -1 for
 * an unexpected shape, TG_ENOMEM. */
static int append_without_certs(const uint8_t *in, size_t in_len, tg_buf_t *out)
{
    static const uint8_t oid_basic[] = {0x06, 0x09, 0x2b, 0x06, 0x01, 0x05,
                                        0x05, 0x07, 0x30, 0x01, 0x01};
    const uint8_t *p = in;
    size_t n = in_len;
    if (der_tlv_len(p, n) != n || der_enter(&p, &n, 0x30) != 0) /* OCSPResponse */
        return -1;
    if (n < 3 || memcmp(p, "\x0a\x01\x00", 3) != 0) /* successful */
        return -1;
    p += 3;
    n -= 3;
    if (der_enter(&p, &n, 0xa0) != 0 || der_enter(&p, &n, 0x30) != 0) /* responseBytes */
        return -1;
    if (n < sizeof oid_basic || memcmp(p, oid_basic, sizeof oid_basic) != 0)
        return -1;
    p += sizeof oid_basic;
    n -= sizeof oid_basic;
    if (der_enter(&p, &n, 0x04) != 0 || der_enter(&p, &n, 0x30) != 0) /* BasicOCSPResponse */
        return -1;
    /* tbsResponseData, signatureAlgorithm, signature, then [0] certs */
    size_t body = 0;
    for (int i = 0; i < 3; i++) {
        size_t t = der_tlv_len(p + body, n - body);
        if (t == 0)
            return -1;
        body += t;
    }
    if (body < n && (p[body] != 0xa0 || der_tlv_len(p + body, n - body) != n - body))
        return -1;
    size_t basic = hdr_size(body) + body;
    size_t octets = hdr_size(basic) + basic;
    size_t rb = sizeof oid_basic + octets;
    size_t rbx = hdr_size(rb) + rb;
    size_t resp = 3 + hdr_size(rbx) + rbx;
    size_t total = hdr_size(resp) + resp;
    if (tg_buf_reserve(out, total) != 0)
        return TG_ENOMEM;
    uint8_t *w = out->data + out->len;
    w = put_hdr(w, 0x30, resp);
    memcpy(w, "\x0a\x01\x00", 3);
    w += 3;
    w = put_hdr(w, 0xa0, rbx);
    w = put_hdr(w, 0x30, rb);
    memcpy(w, oid_basic, sizeof oid_basic);
    w += sizeof oid_basic;
    w = put_hdr(w, 0x04, basic);
    w = put_hdr(w, 0x30, body);
    memcpy(w, p, body);
    out->len += total;
    return 0;
}

/* ---- the fill ------------------------------------------------------------ */

typedef enum { SLOT_FREE, SLOT_FILLING, SLOT_READY } slot_state_t;

/* One batch's records. Its arrays are allocated once and reused. */
typedef struct {
    slot_state_t state;
    uint64_t batch;   /* which batch it holds (FILLING, READY) */
    size_t n;         /* records */
    tg_certid_t *ids; /* f->batch entries */
    tg_cache_ocsp_t *recs;
    size_t *der_off; /* offset of record i's DER in der */
    tg_buf_t der;    /* the responses, back to back */
} slot_t;

typedef struct {
    const opts_t *o;
    tg_signer_t *signer;
    X509 *issuer;      /* borrowed from signer */
    tg_certid_t proto; /* algorithm and issuer hashes; serial set per record */
    time_t now;
    size_t batch; /* records per batch (the last may hold fewer) */
    uint64_t n_batches;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot_t *slots;
    size_t n_slots;
    uint64_t next_claim; /* next batch a signer takes */
    int failed;          /* a signer or the writer gave up */
} fill_t;

/* Signs batch k into slot s: records k * f->batch ... Runs on a signer
 * thread with scratch as its own buffer. Returns 0 or a TG_E* code
 * (logged). */
static int sign_batch(fill_t *f, slot_t *s, uint64_t k, tg_buf_t *scratch)
{
    const opts_t *o = f->o;
    uint64_t first = k * f->batch;
    size_t n = (size_t)(o->count - first < f->batch ? o->count - first : f->batch);
    uint8_t serial[TG_SERIAL_MAX_LEN];
    memcpy(serial, o->serial, o->serial_len);
    if (serial_add(serial, o->serial_len, first) != 0)
        return TG_EINVAL; /* parse_args checked the last serial */
    s->der.len = 0;
    s->n = 0;
    tg_ocsp_single_t one = {
        .status = o->status,
        .revocation_time = o->status == TG_CERT_REVOKED ? f->now - 3600 : 0,
        .reason = o->status == TG_CERT_REVOKED ? TG_CRL_REASON_KEY_COMPROMISE : TG_CRL_REASON_NONE,
        .this_update = f->now - 60,
        .next_update = f->now + (time_t)o->valid_s,
    };
    for (size_t i = 0; i < n; i++) {
        tg_certid_t *id = &s->ids[i];
        *id = f->proto;
        memcpy(id->serial, serial, o->serial_len);
        one.id = id;
        scratch->len = 0;
        int rc = tg_ocsp_sign_response(f->signer, &one, 1, NULL, 0, f->now, scratch);
        if (rc != 0) {
            tg_error("fill: signing response %" PRIu64 ": %s", first + i, tg_strerror(rc));
            return rc;
        }
        s->der_off[i] = s->der.len;
        rc = append_without_certs(scratch->data, scratch->len, &s->der);
        if (rc != 0) {
            tg_error("fill: response %" PRIu64 ": %s", first + i,
                     rc == TG_ENOMEM ? "out of memory" : "unexpected DER shape");
            return rc == TG_ENOMEM ? rc : TG_ECRYPTO;
        }
        /* as responder/upmgr.c fills it from a verified upstream answer */
        s->recs[i] = (tg_cache_ocsp_t){
            .this_update = (int64_t)one.this_update,
            .next_update = (int64_t)one.next_update,
            .produced_at = (int64_t)f->now,
            .source = TG_CACHE_SRC_UPSTREAM,
            .cert_status = (uint8_t)o->status,
            .reason = (int8_t)(o->status == TG_CERT_REVOKED ? one.reason : TG_CRL_REASON_NONE),
            .revocation_time = o->status == TG_CERT_REVOKED ? (int64_t)one.revocation_time : 0,
        };
        if (i + 1 < n && serial_add(serial, o->serial_len, 1) != 0)
            return TG_EINVAL;
    }
    /* der has stopped moving: point the records into it */
    for (size_t i = 0; i < n; i++) {
        size_t end = i + 1 < n ? s->der_off[i + 1] : s->der.len;
        s->recs[i].der = TG_SLICE(s->der.data + s->der_off[i], end - s->der_off[i]);
    }
    s->n = n;
    return 0;
}

static void *signer_main(void *arg)
{
    fill_t *f = arg;
    tg_buf_t scratch;
    tg_buf_init(&scratch);
    tg_log_set_thread_tag("sign");
    for (;;) {
        pthread_mutex_lock(&f->mu);
        /* batch k goes into slot k % n_slots once the writer has
         * committed batch k - n_slots from it */
        while (!f->failed && f->next_claim < f->n_batches &&
               f->slots[f->next_claim % f->n_slots].state != SLOT_FREE)
            pthread_cond_wait(&f->cv, &f->mu);
        if (f->failed || f->next_claim >= f->n_batches) {
            pthread_mutex_unlock(&f->mu);
            break;
        }
        uint64_t k = f->next_claim++;
        slot_t *s = &f->slots[k % f->n_slots];
        s->state = SLOT_FILLING;
        s->batch = k;
        pthread_mutex_unlock(&f->mu);

        int rc = sign_batch(f, s, k, &scratch);

        pthread_mutex_lock(&f->mu);
        if (rc != 0)
            f->failed = 1;
        else
            s->state = SLOT_READY;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        if (rc != 0)
            break;
    }
    tg_buf_free(&scratch);
    return NULL;
}

/* Checks record i of slot s as trustgate checks an upstream answer before
 * caching it (tg_ocsp_verify_response: signature by the CA, CertID,
 * times), so a fill never stores what trustgate itself would refuse. */
static int self_check(fill_t *f, const slot_t *s, size_t i)
{
    tg_ocsp_verify_opts_t vo = {
        .issuer = f->issuer, .certid = &s->ids[i], .allow_missing_nonce = 1, .now = time(NULL)};
    tg_ocsp_verify_result_t v;
    memset(&v, 0, sizeof v);
    int rc = tg_ocsp_verify_response(s->recs[i].der.p, s->recs[i].der.n, &vo, &v);
    if (rc != 0 || v.status != f->o->status || v.signer != TG_OCSP_SIGNER_ISSUER ||
        v.this_update != (time_t)s->recs[i].this_update ||
        v.next_update != (time_t)s->recs[i].next_update) {
        tg_error("fill: self-check: a signed response does not verify as trustgate would "
                 "verify it (%s, %s)",
                 tg_strerror(rc), v.error != NULL ? v.error : "fields differ");
        return TG_ECRYPTO;
    }
    return 0;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    tg_hex_encode(p, n, 0, out);
}

/* Writes the bench's CertID set file (see the usage). */
static int write_certids(const fill_t *f)
{
    const opts_t *o = f->o;
    char name[2 * TG_HASH_MAX_LEN + 1], key[2 * TG_HASH_MAX_LEN + 1];
    char serial[2 * TG_SERIAL_MAX_LEN + 1];
    hex(f->proto.name_hash, f->proto.hash_len, name);
    hex(f->proto.key_hash, f->proto.hash_len, key);
    hex(o->serial, o->serial_len, serial);
    char subject[256];
    if (X509_NAME_oneline(X509_get_subject_name(f->issuer), subject, sizeof subject) == NULL)
        snprintf(subject, sizeof subject, "?");
    char when[32];
    struct tm tm;
    gmtime_r(&f->now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    FILE *fp = fopen(o->certids_out, "w");
    if (fp == NULL) {
        tg_error("fill: %s: %s", o->certids_out, strerror(errno));
        return TG_EIO;
    }
    fprintf(fp,
            "# trustgate-bench-fill %s: %" PRIu64 " %s answers signed by %s (%s) into %s, "
            "valid %" PRId64 " s\n",
            when, o->count, tg_cert_status_name(o->status), subject,
            tg_signer_alg_name(tg_signer_alg(f->signer)), o->cache_dir, o->valid_s);
    fprintf(fp, "%s %s %s %s+%" PRIu64 " %s %s\n", tg_hash_alg_name(o->alg), name, key, serial,
            o->count, tg_cert_status_name(o->status), o->label);
    if (ferror(fp) || fclose(fp) != 0) {
        tg_error("fill: writing %s failed", o->certids_out);
        return TG_EIO;
    }
    return 0;
}

static double secs_since(uint64_t t0)
{
    return (double)(tg_now_ns() - t0) / 1e9;
}

/* Commits the batches in order as the signers finish them. Returns 0 or a
 * TG_E* code (logged). */
static int write_all(fill_t *f, tg_cache_t *cache, uint64_t t0)
{
    uint64_t done = 0, last_print = tg_now_ns();
    for (uint64_t k = 0; k < f->n_batches; k++) {
        slot_t *s = &f->slots[k % f->n_slots];
        pthread_mutex_lock(&f->mu);
        while (!f->failed && !(s->state == SLOT_READY && s->batch == k))
            pthread_cond_wait(&f->cv, &f->mu);
        int failed = f->failed;
        pthread_mutex_unlock(&f->mu);
        if (failed)
            return TG_ECRYPTO; /* the signer logged why */
        /* the first and the last answer of the fill */
        int rc = k == 0 ? self_check(f, s, 0) : 0;
        if (rc == 0 && k + 1 == f->n_batches && s->n > 1)
            rc = self_check(f, s, s->n - 1);
        if (rc == 0)
            rc = tg_cache_put_ocsp_batch(cache, s->ids, s->recs, s->n);
        if (rc != 0) {
            tg_error("fill: storing batch %" PRIu64 " (%zu records) failed: %s%s; the %" PRIu64
                     " records committed before it stay",
                     k, s->n, tg_strerror(rc),
                     rc == TG_ETOOBIG ? " (LMDB map full: raise --map-size-mb)" : "", done);
            return rc;
        }
        done += s->n;
        pthread_mutex_lock(&f->mu);
        s->state = SLOT_FREE;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        uint64_t now = tg_now_ns();
        if (now - last_print >= PROGRESS_NS && done < f->o->count) {
            double el = secs_since(t0), rate = (double)done / el;
            fprintf(stderr,
                    "fill: %" PRIu64 "/%" PRIu64 " (%.1f%%) in %.0f s, %.0f/s, ~%.0f s left\n",
                    done, f->o->count, 100.0 * (double)done / (double)f->o->count, el, rate,
                    (double)(f->o->count - done) / rate);
            last_print = now;
        }
    }
    return 0;
}

static int slots_new(fill_t *f)
{
    size_t per = f->batch;
    f->slots = calloc(f->n_slots, sizeof *f->slots);
    if (f->slots == NULL)
        return TG_ENOMEM;
    for (size_t i = 0; i < f->n_slots; i++) {
        slot_t *s = &f->slots[i];
        tg_buf_init(&s->der);
        s->ids = malloc(per * sizeof *s->ids);
        s->recs = malloc(per * sizeof *s->recs);
        s->der_off = malloc(per * sizeof *s->der_off);
        /* some 300 bytes per P-256 answer; grows on demand beyond */
        if (s->ids == NULL || s->recs == NULL || s->der_off == NULL ||
            tg_buf_reserve(&s->der, per * 320) != 0)
            return TG_ENOMEM;
    }
    return 0;
}

static void slots_free(fill_t *f)
{
    for (size_t i = 0; f->slots != NULL && i < f->n_slots; i++) {
        free(f->slots[i].ids);
        free(f->slots[i].recs);
        free(f->slots[i].der_off);
        tg_buf_free(&f->slots[i].der);
    }
    free(f->slots);
}

int main(int argc, char **argv)
{
    opts_t o;
    parse_args(argc, argv, &o);
    tg_log_set_thread_tag("main");

    fill_t f;
    memset(&f, 0, sizeof f);
    f.o = &o;
    tg_cache_t *cache = NULL;
    pthread_t tids[THREADS_MAX];
    unsigned started = 0;
    int mu_ok = 0;
    int rc = tg_signer_load(o.issuer_path, o.key_path, &f.signer);
    if (rc != 0) {
        fprintf(stderr, "fill: cannot load the CA certificate %s and key %s: %s\n", o.issuer_path,
                o.key_path, tg_strerror(rc));
        goto out;
    }
    f.issuer = tg_signer_cert(f.signer);
    f.proto.alg = o.alg;
    f.proto.hash_len = (uint8_t)tg_hash_alg_len(o.alg);
    f.proto.serial_len = (uint8_t)o.serial_len;
    rc = tg_pki_issuer_hashes(f.issuer, o.alg, f.proto.name_hash, f.proto.key_hash);
    if (rc != 0) {
        fprintf(stderr, "fill: cannot hash the issuer under %s: %s\n", tg_hash_alg_name(o.alg),
                tg_strerror(rc));
        goto out;
    }
    f.now = time(NULL);
    /* BATCH_MAX per transaction, but small fills (the quick mode) are cut
     * finer so that every signing thread gets work */
    unsigned threads = o.threads;
    uint64_t per = (o.count + 4 * (uint64_t)threads - 1) / (4 * (uint64_t)threads);
    f.batch = per > BATCH_MAX ? BATCH_MAX : per < BATCH_MIN ? BATCH_MIN : (size_t)per;
    if (f.batch > o.count)
        f.batch = (size_t)o.count;
    f.n_batches = (o.count + f.batch - 1) / f.batch;
    if ((uint64_t)threads > f.n_batches)
        threads = (unsigned)f.n_batches;
    f.n_slots = threads + 2; /* every signer busy, one batch committing, one ready */

    rc = tg_cache_open(o.cache_dir, o.map_mb, &cache);
    if (rc != 0) {
        fprintf(stderr, "fill: cannot open the cache %s: %s\n", o.cache_dir, tg_strerror(rc));
        goto out;
    }
    tg_cache_stats_t st;
    rc = tg_cache_stats(cache, &st);
    if (rc != 0)
        goto out;
    if (st.ocsp_entries > 0)
        fprintf(stderr,
                "fill: %s already holds %" PRIu64 " OCSP records (kept; same CertIDs "
                "are replaced)\n",
                o.cache_dir, st.ocsp_entries);
    rc = slots_new(&f);
    if (rc != 0) {
        fprintf(stderr, "fill: out of memory for %zu batches of %zu\n", f.n_slots, f.batch);
        goto out;
    }
    if (pthread_mutex_init(&f.mu, NULL) != 0) {
        rc = TG_ENOMEM;
        goto out;
    }
    if (pthread_cond_init(&f.cv, NULL) != 0) {
        pthread_mutex_destroy(&f.mu);
        rc = TG_ENOMEM;
        goto out;
    }
    mu_ok = 1;
    char first[2 * TG_SERIAL_MAX_LEN + 1];
    hex(o.serial, o.serial_len, first);
    fprintf(stderr,
            "fill: %" PRIu64 " %s answers, %s CertIDs, serials %s+%" PRIu64 ", %s signer, %u "
            "signing thread(s), batches of %zu\n",
            o.count, tg_cert_status_name(o.status), tg_hash_alg_name(o.alg), first, o.count,
            tg_signer_alg_name(tg_signer_alg(f.signer)), threads, f.batch);
    uint64_t t0 = tg_now_ns();
    for (; started < threads; started++) {
        if (pthread_create(&tids[started], NULL, signer_main, &f) != 0) {
            fprintf(stderr, "fill: cannot start a signing thread\n");
            rc = TG_ENOMEM;
            break;
        }
    }
    if (rc == 0)
        rc = write_all(&f, cache, t0);
    pthread_mutex_lock(&f.mu);
    if (rc != 0)
        f.failed = 1;
    pthread_cond_broadcast(&f.cv);
    pthread_mutex_unlock(&f.mu);
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    if (rc != 0)
        goto out;
    double el = secs_since(t0);
    rc = tg_cache_stats(cache, &st);
    if (rc != 0)
        goto out;
    if (o.certids_out != NULL && (rc = write_certids(&f)) != 0)
        goto out;
    fprintf(stderr, "fill: %" PRIu64 " responses in %.1f s (%.0f/s), cache %s, %.0f MiB used\n",
            o.count, el, (double)o.count / el, o.cache_dir,
            (double)st.used_bytes / (1024.0 * 1024.0));

out:
    tg_cache_close(cache);
    if (mu_ok) {
        pthread_cond_destroy(&f.cv);
        pthread_mutex_destroy(&f.mu);
    }
    slots_free(&f);
    tg_signer_free(f.signer);
    return rc == 0 ? 0 : 1;
}
