/* `trustgate query`: an OCSP client for people and tests (SPEC §4).
 *
 * The request is built with OpenSSL's OCSP_REQUEST API and sent with
 * libcurl; the answer is checked by tg_ocsp_verify_response (pki/), which
 * handles SM2 with the GM/T 0009 ID where `openssl ocsp` cannot. OpenSSL
 * parses the response a second time here only to report what the verifier
 * does not (responseStatus, signature algorithm, signer certificate). */
#include "responder/query.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/file.h"
#include "common/log.h"
#include "pki/certid.h"
#include "pki/ocsp.h"
#include "pki/ocsp_sign.h"
#include "pki/ocsp_verify.h"

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef TG_VERSION
#define TG_VERSION "0.0.0"
#endif

/* Largest OCSP response accepted, from the network or a file. Real ones
 * are a few KB; a response with a long chain stays far below this. */
#define MAX_RESPONSE_BYTES ((size_t)1 << 20)
#define NONCE_LEN 16
#define DEFAULT_TIMEOUT_MS 5000L

typedef struct {
    const char *url, *issuer, *cert, *signer, *out, *respin;
    tg_hash_alg_t alg;
    int nonce, get, json;
    long timeout_ms;
} args_t;

/* What happened, printed at the end (text or JSON). Strings are static or
 * owned as noted. */
typedef struct {
    const char *method; /* "POST", "GET" or "file" */
    char serial_hex[2 * TG_SERIAL_MAX_LEN + 1];
    uint8_t nonce[NONCE_LEN];
    int has_nonce;
    long http_status;        /* 0: no HTTP exchange */
    char content_type[128];  /* "" when none */
    char transport_err[256]; /* "" when the transport succeeded */
    size_t response_len;
    int response_status; /* OCSPResponseStatus, -1 when not parsed */
    const char *verify_error;
    int verified;
    tg_ocsp_verify_result_t res;
    char *signer_subject; /* free() */
    const char *sig_alg;  /* static or from OBJ_nid2ln; NULL when unknown */
    char sig_alg_buf[64];
    int exit_code;
} report_t;

/* ---- small helpers --------------------------------------------------- */

static void usage(FILE *out)
{
    fputs("usage: trustgate query --url URL --issuer CA --cert EE [--signer CERT]\n"
          "                       [--sha1|--sha256|--sha384|--sha512|--sm3] [--nonce] [--get]\n"
          "                       [--timeout-ms N] [--out FILE] [--json]\n"
          "       trustgate query --respin FILE --issuer CA --cert EE [--signer CERT] [...]\n"
          "  --signer CERT   trust this responder certificate (like openssl -VAfile);\n"
          "                  otherwise CA itself or a delegated responder of CA\n"
          "  --nonce         send a random 16-byte nonce and require it back\n"
          "  --get           RFC 5019 GET instead of POST\n"
          "  --out FILE      save the response as received (DER)\n"
          "  --respin FILE   verify a saved response instead of asking\n"
          "exit: 0 good, 1 revoked, 2 responseStatus not successful, 3 unknown,\n"
          "      4 verification failed, 5 transport error, 6 local error, 64 usage\n",
          out);
}

static void iso_time(time_t t, char out[21])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 21, "?");
}

/* RFC 5280 §5.3.1 names. */
static const char *reason_name(int reason)
{
    static const char *const names[] = {
        "unspecified",   "keyCompromise",        "cACompromise",    "affiliationChanged",
        "superseded",    "cessationOfOperation", "certificateHold", "(unused 7)",
        "removeFromCRL", "privilegeWithdrawn",   "aACompromise"};
    if (reason < 0 || (size_t)reason >= sizeof(names) / sizeof(names[0]))
        return "none";
    return names[reason];
}

/* Reads a whole file of at most max bytes into *out (owned); logs why not. */
static int read_file(const char *path, size_t max, tg_buf_t *out)
{
    int rc = tg_file_read(path, max, out);
    if (rc == TG_ETOOBIG)
        tg_error("query: %s: larger than %zu bytes", path, max);
    else if (rc != 0)
        tg_error("query: %s: %s", path, rc == TG_EIO ? strerror(errno) : tg_strerror(rc));
    return rc;
}

/* Writes the response for --out; logs why not. */
static int write_file(const char *path, const uint8_t *p, size_t n)
{
    int rc = tg_file_write_atomic(path, p, n, 0644);
    if (rc != 0)
        tg_error("query: %s: %s", path, strerror(errno));
    return rc;
}

/* Loads the first certificate of a PEM file, or a DER certificate. */
static int load_cert(const char *path, X509 **out)
{
    tg_buf_t b;
    tg_buf_init(&b);
    int rc = read_file(path, MAX_RESPONSE_BYTES, &b);
    if (rc != 0) {
        tg_buf_free(&b);
        return rc;
    }
    X509 *x = NULL;
    BIO *bio = BIO_new_mem_buf(b.data, (int)b.len);
    if (bio != NULL)
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (x == NULL) {
        const unsigned char *p = b.data;
        x = d2i_X509(NULL, &p, (long)b.len);
        if (x != NULL && p != b.data + b.len) {
            X509_free(x);
            x = NULL;
        }
    }
    tg_buf_free(&b);
    if (x == NULL) {
        tg_openssl_clear_errors();
        tg_error("query: %s: not a PEM or DER certificate", path);
        return TG_EMALFORMED;
    }
    *out = x;
    return 0;
}

/* ---- the request --------------------------------------------------------- */

/* DER OCSPRequest for ee under issuer (one CertID, optional nonce) into
 * out. */
static int build_request(X509 *issuer, X509 *ee, tg_hash_alg_t alg, const uint8_t *nonce,
                         tg_buf_t *out)
{
    int rc = TG_ECRYPTO;
    unsigned char *der = NULL;
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    OCSP_CERTID *id = OCSP_cert_id_new(tg_pki_hash_md(alg), X509_get_subject_name(issuer),
                                       X509_get0_pubkey_bitstr(issuer), X509_get0_serialNumber(ee));
    if (req == NULL || id == NULL) {
        tg_log_openssl("OCSP_cert_id_new");
        goto out;
    }
    if (OCSP_request_add0_id(req, id) == NULL) {
        tg_log_openssl("OCSP_request_add0_id");
        goto out;
    }
    id = NULL; /* owned by req */
    /* RFC 6960 §4.4.1: extnValue is the DER OCTET STRING of the nonce */
    if (nonce != NULL && OCSP_request_add1_nonce(req, (unsigned char *)nonce, NONCE_LEN) != 1) {
        tg_log_openssl("OCSP_request_add1_nonce");
        goto out;
    }
    int n = i2d_OCSP_REQUEST(req, &der);
    if (n <= 0) {
        tg_log_openssl("i2d_OCSP_REQUEST");
        goto out;
    }
    rc = tg_buf_append(out, der, (size_t)n);
out:
    OPENSSL_free(der);
    OCSP_CERTID_free(id);
    OCSP_REQUEST_free(req);
    return rc;
}

/* ---- HTTP ---------------------------------------------------------------- */

typedef struct {
    tg_buf_t body;
    int too_big;
} sink_t;

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    sink_t *s = arg;
    size_t n = size * nmemb;
    if (n > MAX_RESPONSE_BYTES - s->body.len) {
        s->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (tg_buf_append(&s->body, p, n) != 0)
        return 0;
    return n;
}

/* url + "/" + url-encoded base64 of der (RFC 5019 §5; RFC 6960 App. A.1). */
static int get_url(const char *base, const tg_buf_t *der, tg_buf_t *out)
{
    size_t b64_cap = 4 * ((der->len + 2) / 3) + 1;
    char *b64 = malloc(b64_cap);
    if (b64 == NULL)
        return TG_ENOMEM;
    EVP_EncodeBlock((unsigned char *)b64, der->data, (int)der->len);
    size_t blen = strlen(base);
    int rc = tg_buf_append_str(out, base);
    if (rc == 0 && (blen == 0 || base[blen - 1] != '/'))
        rc = tg_buf_append_str(out, "/");
    for (const char *p = b64; rc == 0 && *p != '\0'; p++) {
        if (*p == '+')
            rc = tg_buf_append_str(out, "%2B");
        else if (*p == '/')
            rc = tg_buf_append_str(out, "%2F");
        else if (*p == '=')
            rc = tg_buf_append_str(out, "%3D");
        else
            rc = tg_buf_append(out, p, 1);
    }
    if (rc == 0)
        rc = tg_buf_append(out, "", 1); /* NUL for libcurl */
    free(b64);
    return rc;
}

/* Sends the request and fills r's HTTP fields and *body (owned by the
 * caller afterwards; it must be empty before). Returns 0 when an HTTP
 * exchange completed (whatever its status), TG_EIO when it did not
 * (r->transport_err says why; not logged: it is the report), or TG_ENOMEM /
 * TG_EINVAL (libcurl refused an option), both logged. */
static int http_exchange(const args_t *a, const tg_buf_t *der, report_t *r, tg_buf_t *body)
{
    sink_t sink = {0};
    tg_buf_init(&sink.body);
    tg_buf_t url;
    tg_buf_init(&url);
    struct curl_slist *hdrs = NULL, *h;
    char errbuf[CURL_ERROR_SIZE] = "";
    int rc = 0;

    CURL *c = curl_easy_init();
    if (c == NULL) {
        tg_error("query: curl_easy_init failed");
        return TG_ENOMEM;
    }
    if (a->get) {
        rc = get_url(a->url, der, &url);
        if (rc != 0)
            goto out;
    }
    hdrs = curl_slist_append(NULL, "Accept: application/ocsp-response");
    if (hdrs != NULL && !a->get) {
        h = curl_slist_append(hdrs, "Content-Type: application/ocsp-request");
        if (h == NULL) {
            curl_slist_free_all(hdrs);
            hdrs = NULL;
        } else {
            hdrs = h;
        }
    }
    if (hdrs == NULL) {
        rc = TG_ENOMEM;
        goto out;
    }

    CURLcode cc = curl_easy_setopt(c, CURLOPT_URL, a->get ? (const char *)url.data : a->url);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, a->timeout_ms);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, a->timeout_ms);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(c, CURLOPT_USERAGENT, "trustgate-query/" TG_VERSION);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    if (cc == CURLE_OK && !a->get)
        cc = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)der->len);
    if (cc == CURLE_OK && !a->get)
        cc = curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)der->data);
    if (cc != CURLE_OK) {
        tg_error("query: libcurl: %s", curl_easy_strerror(cc));
        rc = TG_EINVAL;
        goto out;
    }

    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        if (sink.too_big)
            snprintf(r->transport_err, sizeof(r->transport_err), "response larger than %zu bytes",
                     MAX_RESPONSE_BYTES);
        else
            snprintf(r->transport_err, sizeof(r->transport_err), "%s",
                     errbuf[0] ? errbuf : curl_easy_strerror(cc));
        rc = TG_EIO;
        goto out;
    }
    char *ct = NULL;
    if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->http_status) != CURLE_OK ||
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK) {
        snprintf(r->transport_err, sizeof(r->transport_err), "no HTTP status");
        rc = TG_EIO;
        goto out;
    }
    snprintf(r->content_type, sizeof(r->content_type), "%s", ct ? ct : "");
    *body = sink.body;
    tg_buf_init(&sink.body);
out:
    if (rc == TG_ENOMEM)
        tg_error("query: out of memory");
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    tg_buf_free(&url);
    tg_buf_free(&sink.body);
    return rc;
}

/* 1 when ct is application/ocsp-response, parameters allowed. */
static int is_ocsp_content_type(const char *ct)
{
    static const char want[] = "application/ocsp-response";
    size_t n = sizeof(want) - 1;
    if (strncasecmp(ct, want, n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* ---- the answer ---------------------------------------------------------- */

/* Names the signature algorithm of bs into r->sig_alg. */
static void name_sig_alg(const OCSP_BASICRESP *bs, report_t *r)
{
    const X509_ALGOR *alg = OCSP_resp_get0_tbs_sigalg(bs);
    const ASN1_OBJECT *obj = NULL;
    if (alg == NULL)
        return;
    X509_ALGOR_get0(&obj, NULL, NULL, alg);
    switch (OBJ_obj2nid(obj)) {
    case NID_SM2_with_SM3: r->sig_alg = "sm2-with-sm3"; return;
    case NID_ecdsa_with_SHA256: r->sig_alg = "ecdsa-with-sha256"; return;
    case NID_ecdsa_with_SHA384: r->sig_alg = "ecdsa-with-sha384"; return;
    case NID_ecdsa_with_SHA512: r->sig_alg = "ecdsa-with-sha512"; return;
    case NID_sha256WithRSAEncryption: r->sig_alg = "rsa-pkcs1-sha256"; return;
    case NID_sha384WithRSAEncryption: r->sig_alg = "rsa-pkcs1-sha384"; return;
    case NID_sha512WithRSAEncryption: r->sig_alg = "rsa-pkcs1-sha512"; return;
    case NID_sha1WithRSAEncryption: r->sig_alg = "rsa-pkcs1-sha1"; return;
    case NID_rsassaPss: r->sig_alg = "rsassa-pss"; return;
    case NID_ED25519: r->sig_alg = "ed25519"; return;
    case NID_ED448: r->sig_alg = "ed448"; return;
    default: break;
    }
    if (OBJ_obj2txt(r->sig_alg_buf, sizeof(r->sig_alg_buf), obj, 0) > 0)
        r->sig_alg = r->sig_alg_buf;
    tg_openssl_clear_errors();
}

/* x's subject in RFC 2253 form ("CN=…,O=…,C=…", as `tl show` prints
 * names), malloc'd (free()); NULL on failure. */
static char *subject_of(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL, *p = NULL;
    if (bio != NULL && X509_NAME_print_ex(bio, X509_get_subject_name(x), 0,
                                          XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        long n = BIO_get_mem_data(bio, &p);
        out = n >= 0 ? malloc((size_t)n + 1) : NULL;
        if (out != NULL) {
            memcpy(out, p, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(bio);
    tg_openssl_clear_errors();
    return out;
}

/* Parses the response far enough to report responseStatus, and for a
 * successful one the signature algorithm; then verifies it. Returns the
 * exit code; local failures are logged. */
static int check_response(const uint8_t *der, size_t len, X509 *issuer, X509 *signer,
                          const tg_certid_t *certid, report_t *r)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    OCSP_BASICRESP *bs = NULL;
    int code;
    if (resp == NULL) {
        tg_openssl_clear_errors();
        r->verify_error = "malformed";
        return TG_QUERY_VERIFY_FAILED;
    }
    r->response_status = OCSP_response_status(resp);
    if (r->response_status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        code = TG_QUERY_NOT_SUCCESSFUL;
        goto out;
    }
    bs = OCSP_response_get1_basic(resp);
    if (bs != NULL)
        name_sig_alg(bs, r);
    tg_openssl_clear_errors();

    tg_ocsp_verify_opts_t opts = {
        .issuer = issuer,
        .trusted_signer = signer,
        .certid = certid,
        .nonce = r->has_nonce ? r->nonce : NULL,
        .nonce_len = r->has_nonce ? NONCE_LEN : 0,
        .allow_missing_nonce = 0,
        .now = time(NULL),
    };
    int rc = tg_ocsp_verify_response(der, len, &opts, &r->res);
    if (rc == TG_EMALFORMED) {
        r->verify_error = r->res.error ? r->res.error : "malformed";
        code = TG_QUERY_VERIFY_FAILED;
        goto out;
    }
    if (rc != 0) {
        tg_error("query: cannot verify the response: %s", tg_strerror(rc));
        code = TG_QUERY_LOCAL_ERROR;
        goto out;
    }
    r->verified = 1;
    X509 *who = NULL;
    switch (r->res.signer) {
    case TG_OCSP_SIGNER_TRUSTED: who = signer; break;
    case TG_OCSP_SIGNER_ISSUER: who = issuer; break;
    case TG_OCSP_SIGNER_DELEGATED:
        if (bs == NULL || OCSP_resp_get0_signer(bs, &who, NULL) != 1)
            who = NULL;
        tg_openssl_clear_errors();
        break;
    }
    if (who != NULL)
        r->signer_subject = subject_of(who);
    switch (r->res.status) {
    case TG_CERT_GOOD: code = TG_QUERY_GOOD; break;
    case TG_CERT_REVOKED: code = TG_QUERY_REVOKED; break;
    default: code = TG_QUERY_UNKNOWN; break;
    }
out:
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    return code;
}

/* ---- output -------------------------------------------------------------- */

static void json_str(const char *s)
{
    if (s == NULL) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void json_time(const char *name, time_t t)
{
    char buf[21];
    printf(",\"%s\":", name);
    if (t == 0) {
        fputs("null", stdout);
        return;
    }
    iso_time(t, buf);
    json_str(buf);
}

static const char *signer_kind_text(tg_ocsp_signer_kind_t k)
{
    switch (k) {
    case TG_OCSP_SIGNER_TRUSTED: return "trusted responder (--signer)";
    case TG_OCSP_SIGNER_ISSUER: return "the issuing CA";
    case TG_OCSP_SIGNER_DELEGATED: return "delegated responder of the CA";
    }
    return "?";
}

static void print_json(const args_t *a, const report_t *r)
{
    char nonce_hex[2 * NONCE_LEN + 1];
    printf("{\"request\":{\"method\":");
    json_str(r->method);
    printf(",\"source\":");
    json_str(a->respin ? a->respin : a->url);
    printf(",\"hash\":\"%s\",\"serial\":\"%s\",\"nonce\":", tg_hash_alg_name(a->alg),
           r->serial_hex);
    if (r->has_nonce) {
        tg_hex_encode(r->nonce, NONCE_LEN, 1, nonce_hex);
        json_str(nonce_hex);
    } else {
        fputs("null", stdout);
    }
    printf("},\"http\":");
    if (r->http_status != 0) {
        printf("{\"status\":%ld,\"content_type\":", r->http_status);
        json_str(r->content_type);
        putchar('}');
    } else {
        fputs("null", stdout);
    }
    printf(",\"transport_error\":");
    json_str(r->transport_err[0] ? r->transport_err : NULL);
    printf(",\"response_bytes\":%zu,\"response_status\":", r->response_len);
    if (r->response_status >= 0) {
        json_str(tg_ocsp_status_name((tg_ocsp_status_t)r->response_status));
        printf(",\"response_status_code\":%d", r->response_status);
    } else {
        fputs("null,\"response_status_code\":null", stdout);
    }
    printf(",\"verified\":%s,\"error\":", r->verified ? "true" : "false");
    json_str(r->verify_error);
    printf(",\"signature_algorithm\":");
    json_str(r->sig_alg);
    if (r->verified) {
        printf(",\"cert_status\":\"%s\"", tg_cert_status_name(r->res.status));
        if (r->res.status == TG_CERT_REVOKED) {
            json_time("revocation_time", r->res.revocation_time);
            printf(",\"reason\":");
            if (r->res.revocation_reason == TG_CRL_REASON_NONE)
                printf("null,\"reason_code\":null");
            else
                printf("\"%s\",\"reason_code\":%d", reason_name(r->res.revocation_reason),
                       r->res.revocation_reason);
        }
        json_time("this_update", r->res.this_update);
        json_time("next_update", r->res.next_update);
        json_time("produced_at", r->res.produced_at);
        printf(",\"signer\":{\"kind\":\"%s\",\"subject\":",
               tg_ocsp_signer_kind_name(r->res.signer));
        json_str(r->signer_subject);
        printf("},\"nonce_echoed\":%s", r->res.nonce_echoed ? "true" : "false");
    }
    printf(",\"exit_code\":%d}\n", r->exit_code);
}

static void print_text(const args_t *a, const report_t *r)
{
    char t[21];
    if (a->respin)
        printf("response: %s (%zu bytes)\n", a->respin, r->response_len);
    else
        printf("request: %s %s (%s CertID, serial %s, %s)\n", r->method, a->url,
               tg_hash_alg_name(a->alg), r->serial_hex,
               r->has_nonce ? "nonce 16 bytes" : "no nonce");
    if (r->transport_err[0]) {
        printf("transport: FAILED (%s)\n", r->transport_err);
        return;
    }
    if (r->http_status != 0)
        printf("http: %ld %s, %zu bytes\n", r->http_status,
               r->content_type[0] ? r->content_type : "(no content type)", r->response_len);
    if (r->response_status >= 0)
        printf("responseStatus: %s (%d)\n",
               tg_ocsp_status_name((tg_ocsp_status_t)r->response_status), r->response_status);
    if (!r->verified) {
        if (r->verify_error == NULL)
            return;
        if (strcmp(r->verify_error, "bad_signature") == 0)
            printf("signature: FAILED (%s)\n", r->sig_alg ? r->sig_alg : "?");
        printf("verification: FAILED (%s)\n", r->verify_error);
        return;
    }
    printf("certStatus: %s\n", tg_cert_status_name(r->res.status));
    if (r->res.status == TG_CERT_REVOKED) {
        iso_time(r->res.revocation_time, t);
        printf("revocationTime: %s\n", t);
        if (r->res.revocation_reason == TG_CRL_REASON_NONE)
            printf("reason: (none)\n");
        else
            printf("reason: %s (%d)\n", reason_name(r->res.revocation_reason),
                   r->res.revocation_reason);
    }
    iso_time(r->res.this_update, t);
    printf("thisUpdate: %s\n", t);
    if (r->res.next_update != 0) {
        iso_time(r->res.next_update, t);
        printf("nextUpdate: %s\n", t);
    } else {
        printf("nextUpdate: (none)\n");
    }
    iso_time(r->res.produced_at, t);
    printf("producedAt: %s\n", t);
    printf("signer: %s %s\n", signer_kind_text(r->res.signer),
           r->signer_subject ? r->signer_subject : "?");
    printf("signature: OK (%s)\n", r->sig_alg ? r->sig_alg : "?");
    printf("nonce: %s\n", !r->has_nonce         ? "not sent"
                          : r->res.nonce_echoed ? "echoed"
                                                : "not echoed");
}

/* ---- the command ----------------------------------------------------------- */

static int parse_args(int argc, char **argv, args_t *a)
{
    *a = (args_t){.alg = TG_HASH_SHA1, .timeout_ms = DEFAULT_TIMEOUT_MS};
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **dst = NULL;
        if (strcmp(o, "--url") == 0)
            dst = &a->url;
        else if (strcmp(o, "--issuer") == 0)
            dst = &a->issuer;
        else if (strcmp(o, "--cert") == 0)
            dst = &a->cert;
        else if (strcmp(o, "--signer") == 0)
            dst = &a->signer;
        else if (strcmp(o, "--out") == 0)
            dst = &a->out;
        else if (strcmp(o, "--respin") == 0)
            dst = &a->respin;
        if (dst != NULL) {
            if (v == NULL) {
                fprintf(stderr, "trustgate query: %s needs a value\n", o);
                return -1;
            }
            *dst = v;
            i++;
        } else if (strcmp(o, "--timeout-ms") == 0) {
            char *end;
            if (v == NULL) {
                fprintf(stderr, "trustgate query: %s needs a value\n", o);
                return -1;
            }
            errno = 0;
            long ms = strtol(v, &end, 10);
            if (errno != 0 || *end != '\0' || ms < 1 || ms > 600000) {
                fprintf(stderr, "trustgate query: --timeout-ms: 1..600000, not '%s'\n", v);
                return -1;
            }
            a->timeout_ms = ms;
            i++;
        } else if (strcmp(o, "--sha1") == 0) {
            a->alg = TG_HASH_SHA1;
        } else if (strcmp(o, "--sha256") == 0) {
            a->alg = TG_HASH_SHA256;
        } else if (strcmp(o, "--sha384") == 0) {
            a->alg = TG_HASH_SHA384;
        } else if (strcmp(o, "--sha512") == 0) {
            a->alg = TG_HASH_SHA512;
        } else if (strcmp(o, "--sm3") == 0) {
            a->alg = TG_HASH_SM3;
        } else if (strcmp(o, "--nonce") == 0) {
            a->nonce = 1;
        } else if (strcmp(o, "--get") == 0) {
            a->get = 1;
        } else if (strcmp(o, "--json") == 0) {
            a->json = 1;
        } else {
            fprintf(stderr, "trustgate query: unexpected argument '%s'\n", o);
            return -1;
        }
    }
    if (a->issuer == NULL || a->cert == NULL || (a->url == NULL && a->respin == NULL)) {
        fprintf(stderr, "trustgate query: --issuer, --cert and --url (or --respin) are needed\n");
        return -1;
    }
    if (a->url != NULL && a->respin != NULL) {
        fprintf(stderr, "trustgate query: --url and --respin exclude each other\n");
        return -1;
    }
    if (a->respin != NULL && (a->nonce || a->get)) {
        fprintf(stderr, "trustgate query: --nonce and --get need --url\n");
        return -1;
    }
    return 0;
}

/* Fetches (or reads) the response into *resp. Returns 0 or the exit code. */
static int obtain_response(const args_t *a, X509 *issuer, X509 *ee, report_t *r, tg_buf_t *resp)
{
    if (a->respin != NULL) {
        r->method = "file";
        return read_file(a->respin, MAX_RESPONSE_BYTES, resp) == 0 ? 0 : TG_QUERY_LOCAL_ERROR;
    }
    r->method = a->get ? "GET" : "POST";
    if (a->nonce) {
        if (RAND_bytes(r->nonce, NONCE_LEN) != 1) {
            tg_log_openssl("RAND_bytes");
            return TG_QUERY_LOCAL_ERROR;
        }
        r->has_nonce = 1;
    }
    tg_buf_t der;
    tg_buf_init(&der);
    int rc = build_request(issuer, ee, a->alg, r->has_nonce ? r->nonce : NULL, &der);
    if (rc == 0)
        rc = http_exchange(a, &der, r, resp);
    tg_buf_free(&der);
    if (rc == TG_EIO)
        return TG_QUERY_TRANSPORT;
    if (rc != 0)
        return TG_QUERY_LOCAL_ERROR;
    r->response_len = resp->len;
    if (r->http_status == 200 && a->out != NULL && write_file(a->out, resp->data, resp->len) != 0)
        return TG_QUERY_LOCAL_ERROR;
    if (r->http_status != 200) {
        snprintf(r->transport_err, sizeof(r->transport_err), "HTTP %ld", r->http_status);
        return TG_QUERY_TRANSPORT;
    }
    if (!is_ocsp_content_type(r->content_type)) {
        snprintf(r->transport_err, sizeof(r->transport_err),
                 "Content-Type '%.100s', not application/ocsp-response", r->content_type);
        return TG_QUERY_TRANSPORT;
    }
    return 0;
}

int tg_cmd_query(int argc, char **argv)
{
    args_t a;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
    }
    if (parse_args(argc, argv, &a) != 0) {
        usage(stderr);
        return TG_QUERY_USAGE;
    }

    report_t *r = calloc(1, sizeof(*r));
    X509 *issuer = NULL, *ee = NULL, *signer = NULL;
    tg_certid_t certid;
    tg_buf_t resp;
    tg_buf_init(&resp);
    int code = TG_QUERY_LOCAL_ERROR;
    if (r == NULL) {
        tg_error("query: out of memory");
        return code;
    }
    r->response_status = -1;
    if (load_cert(a.issuer, &issuer) != 0 || load_cert(a.cert, &ee) != 0 ||
        (a.signer != NULL && load_cert(a.signer, &signer) != 0))
        goto out;
    if (X509_check_issued(issuer, ee) != X509_V_OK)
        tg_warn("query: %s does not look issued by %s (name or key identifier differs); asking "
                "anyway",
                a.cert, a.issuer);
    tg_openssl_clear_errors();
    if (tg_pki_certid_for_cert(issuer, ee, a.alg, &certid) != 0) {
        tg_error("query: cannot compute the %s CertID of %s", tg_hash_alg_name(a.alg), a.cert);
        goto out;
    }
    const uint8_t *serial = certid.serial;
    size_t serial_len = certid.serial_len;
    if (serial_len > 1 && serial[0] == 0) {
        serial++;
        serial_len--;
    }
    tg_hex_encode(serial, serial_len, 1, r->serial_hex);

    code = obtain_response(&a, issuer, ee, r, &resp);
    if (code == 0) {
        r->response_len = resp.len;
        code = check_response(resp.data, resp.len, issuer, signer, &certid, r);
    }
    if (code == TG_QUERY_LOCAL_ERROR)
        goto out; /* nothing to report beyond the logged error */
    r->exit_code = code;
    if (a.json)
        print_json(&a, r);
    else
        print_text(&a, r);
out:
    free(r->signer_subject);
    free(r);
    tg_buf_free(&resp);
    X509_free(signer);
    X509_free(ee);
    X509_free(issuer);
    return code;
}
