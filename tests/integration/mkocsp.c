/* mkocsp: answers an OCSP request with a response signed by any key, at
 * any times, for the upstream relay tests (tests/integration/upstream.sh):
 * an upstream answer that expired, is not yet valid, has no nextUpdate or
 * holds two SingleResponses for one CertID, signed by the CA's delegated
 * responder so that only the property under test is wrong.
 *
 * The response is built and signed with trustgate's own encoder
 * (pki/ocsp_sign.h: responderID byKey, the signer certificate in certs;
 * SM2 with SM3 and the GM/T 0009 ID), one SingleResponse per CertID of the
 * request, echoing each CertID as given.
 *
 * Exit status: 0, 1 on errors (files, keys, a request that does not
 * decode), 2 on usage errors. */

#include "common/buf.h"
#include "common/err.h"
#include "common/file.h"
#include "common/log.h"
#include "pki/ocsp.h"
#include "pki/ocsp_sign.h"
#include "pki/signer.h"
#include "tests/integration/tool_offset.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_USAGE 2
#define MAX_REQ_BYTES 65536

static const char USAGE[] =
    "usage: mkocsp --req REQ.der --cert SIGNER.pem --key SIGNER.key --out OUT [options]\n"
    "\n"
    "Answers the DER OCSP request REQ.der (- for standard input) with a\n"
    "successful BasicOCSPResponse signed by SIGNER (RSA, ECDSA, Ed25519, SM2),\n"
    "one SingleResponse per CertID of the request. OUT may be - (stdout).\n"
    "\n"
    "  --status good|revoked|unknown   certStatus (default good)\n"
    "  --reason N          revocationReason of a revoked status, CRLReason 0..10\n"
    "                      except 7 (default 1); -1: none\n"
    "  --revoked-at OFF    revocationTime (default -3600)\n"
    "  --this OFF          thisUpdate (default 0: now)\n"
    "  --next OFF|none     nextUpdate (default +1h); none: absent\n"
    "  --produced OFF      producedAt (default 0: now)\n"
    "  --dup               after each SingleResponse a second one for the same\n"
    "                      CertID with the other status (good <-> revoked)\n"
    "  --nonce             echo the request's nonce (default: no nonce)\n"
    "  --help              this text\n"
    "OFF: seconds relative to now, signed, optionally with a unit s m h d w y.\n";

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("mkocsp: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(mkocsp --help for usage)\n", stderr);
    exit(EXIT_USAGE);
}

/* Reads all of stdin into out (at most max bytes). */
static int read_stdin(size_t max, tg_buf_t *out)
{
    uint8_t chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
        if (out->len + n > max)
            return TG_ETOOBIG;
        if (tg_buf_append(out, chunk, n) != 0)
            return TG_ENOMEM;
    }
    return ferror(stdin) ? TG_EIO : 0;
}

int main(int argc, char **argv)
{
    enum {
        O_REQ = 1,
        O_CERT,
        O_KEY,
        O_OUT,
        O_STATUS,
        O_REASON,
        O_REVOKED_AT,
        O_THIS,
        O_NEXT,
        O_PRODUCED,
        O_DUP,
        O_NONCE,
        O_HELP
    };
    static const struct option longopts[] = {
        {"req", required_argument, NULL, O_REQ},
        {"cert", required_argument, NULL, O_CERT},
        {"key", required_argument, NULL, O_KEY},
        {"out", required_argument, NULL, O_OUT},
        {"status", required_argument, NULL, O_STATUS},
        {"reason", required_argument, NULL, O_REASON},
        {"revoked-at", required_argument, NULL, O_REVOKED_AT},
        {"this", required_argument, NULL, O_THIS},
        {"next", required_argument, NULL, O_NEXT},
        {"produced", required_argument, NULL, O_PRODUCED},
        {"dup", no_argument, NULL, O_DUP},
        {"nonce", no_argument, NULL, O_NONCE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *req_path = NULL, *cert = NULL, *key = NULL, *out = NULL;
    tg_cert_status_t status = TG_CERT_GOOD;
    int reason = TG_CRL_REASON_KEY_COMPROMISE, dup = 0, nonce = 0, has_next = 1;
    int64_t revoked_off = -3600, this_off = 0, next_off = 3600, produced_off = 0;

    for (;;) {
        int c = getopt_long(argc, argv, "", longopts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case O_REQ: req_path = optarg; break;
        case O_CERT: cert = optarg; break;
        case O_KEY: key = optarg; break;
        case O_OUT: out = optarg; break;
        case O_STATUS:
            if (strcmp(optarg, "good") == 0)
                status = TG_CERT_GOOD;
            else if (strcmp(optarg, "revoked") == 0)
                status = TG_CERT_REVOKED;
            else if (strcmp(optarg, "unknown") == 0)
                status = TG_CERT_UNKNOWN;
            else
                usage_error("--status %s: good, revoked or unknown", optarg);
            break;
        case O_REASON: {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || end == optarg || v < -1 || v > 10 || v == 7)
                usage_error("--reason %s: a CRLReason 0..10 except 7, or -1", optarg);
            reason = (int)v;
            break;
        }
        case O_REVOKED_AT:
            if (tool_parse_offset(optarg, &revoked_off) != 0)
                usage_error("--revoked-at %s: not an offset", optarg);
            break;
        case O_THIS:
            if (tool_parse_offset(optarg, &this_off) != 0)
                usage_error("--this %s: not an offset", optarg);
            break;
        case O_NEXT:
            if (strcmp(optarg, "none") == 0)
                has_next = 0;
            else if (tool_parse_offset(optarg, &next_off) != 0)
                usage_error("--next %s: not an offset, nor none", optarg);
            break;
        case O_PRODUCED:
            if (tool_parse_offset(optarg, &produced_off) != 0)
                usage_error("--produced %s: not an offset", optarg);
            break;
        case O_DUP: dup = 1; break;
        case O_NONCE: nonce = 1; break;
        case O_HELP: fputs(USAGE, stdout); return 0;
        default: usage_error("unknown option");
        }
    }
    if (optind != argc)
        usage_error("unexpected argument %s", argv[optind]);
    if (req_path == NULL || cert == NULL || key == NULL || out == NULL)
        usage_error("--req, --cert, --key and --out are required");
    tg_log_set_level(TG_LOG_WARN);

    int rc = 1;
    tg_buf_t req_der, resp;
    tg_buf_init(&req_der);
    tg_buf_init(&resp);
    tg_ocsp_req_t req;
    tg_ocsp_req_init(&req);
    tg_signer_t *signer = NULL;
    tg_ocsp_single_t *singles = NULL;

    int r = strcmp(req_path, "-") == 0 ? read_stdin(MAX_REQ_BYTES, &req_der)
                                       : tg_file_read(req_path, MAX_REQ_BYTES, &req_der);
    if (r != 0) {
        fprintf(stderr, "mkocsp: %s: %s\n", req_path, tg_strerror(r));
        goto out;
    }
    r = tg_ocsp_req_decode(req_der.data, req_der.len, 64, &req);
    if (r != 0) {
        fprintf(stderr, "mkocsp: %s: not an OCSP request trustgate decodes (%s)\n", req_path,
                tg_strerror(r));
        goto out;
    }
    if (nonce && !req.has_nonce) {
        fprintf(stderr, "mkocsp: --nonce: the request has no nonce\n");
        goto out;
    }
    if (tg_signer_load(cert, key, &signer) != 0) {
        fprintf(stderr, "mkocsp: cannot load the signer %s / %s\n", cert, key);
        goto out;
    }
    time_t now = time(NULL);
    size_t per = dup ? 2 : 1, n = req.n_certids * per;
    singles = calloc(n, sizeof(*singles));
    if (singles == NULL)
        goto out;
    for (size_t i = 0; i < req.n_certids; i++) {
        for (size_t k = 0; k < per; k++) {
            tg_ocsp_single_t *s = &singles[i * per + k];
            s->id = &req.certids[i];
            s->status = status;
            if (k == 1)
                s->status = status == TG_CERT_GOOD ? TG_CERT_REVOKED : TG_CERT_GOOD;
            s->reason = s->status == TG_CERT_REVOKED ? reason : TG_CRL_REASON_NONE;
            s->revocation_time = s->status == TG_CERT_REVOKED ? now + revoked_off : 0;
            s->this_update = now + this_off;
            s->next_update = has_next ? now + next_off : 0;
        }
    }
    r = tg_ocsp_sign_response(signer, singles, n, nonce ? req.nonce : NULL,
                              nonce ? req.nonce_len : 0, now + produced_off, &resp);
    if (r != 0) {
        fprintf(stderr, "mkocsp: signing failed (%s)\n", tg_strerror(r));
        goto out;
    }
    if (strcmp(out, "-") == 0) {
        if (fwrite(resp.data, 1, resp.len, stdout) != resp.len || fflush(stdout) != 0) {
            fprintf(stderr, "mkocsp: writing to stdout failed\n");
            goto out;
        }
    } else if ((r = tg_file_write_atomic(out, resp.data, resp.len, 0644)) != 0) {
        fprintf(stderr, "mkocsp: %s: %s\n", out, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(singles);
    tg_signer_free(signer);
    tg_ocsp_req_clear(&req);
    tg_buf_free(&req_der);
    tg_buf_free(&resp);
    return rc;
}
