/* `trustgate query` (SPEC §4): an OCSP client that verifies every
 * algorithm trustgate signs with, SM2 included (RFC 6960, RFC 5019). */
#ifndef TG_RESPONDER_QUERY_H
#define TG_RESPONDER_QUERY_H

#include "common/err.h"

/* Process exit codes of tg_cmd_query. */
enum {
    TG_QUERY_GOOD = 0,           /* verified, certStatus good */
    TG_QUERY_REVOKED = 1,        /* verified, certStatus revoked */
    TG_QUERY_NOT_SUCCESSFUL = 2, /* responseStatus other than successful */
    TG_QUERY_UNKNOWN = 3,        /* verified, certStatus unknown */
    TG_QUERY_VERIFY_FAILED = 4,  /* the response was refused (reason printed) */
    TG_QUERY_TRANSPORT = 5,      /* no HTTP 200 application/ocsp-response */
    TG_QUERY_LOCAL_ERROR = 6,    /* a local file, memory or library failure */
    TG_QUERY_USAGE = 64,         /* bad command line (sysexits EX_USAGE) */
};

/* `trustgate query --url URL --issuer CA --cert EE [--signer CERT]
 * [--sha1|--sha256|--sm3] [--nonce] [--get] [--timeout-ms N] [--out FILE]
 * [--respin FILE] [--json]`. argv[0] is the first argument after "query";
 * the strings are borrowed for the call.
 *
 * Builds the OCSPRequest for EE (CertID under the chosen hash, SHA-1 by
 * default; with --nonce a random 16-byte nonce), sends it with libcurl
 * (POST application/ocsp-request, or with --get an RFC 5019 GET of the
 * percent-encoded base64), requires HTTP 200 and Content-Type
 * application/ocsp-response, and verifies the answer with
 * tg_ocsp_verify_response: the signer is --signer when given (a trusted
 * responder, like `openssl ocsp -VAfile`), else CA itself or a delegated
 * responder certificate issued by CA. --respin FILE verifies a saved
 * response instead of fetching one (--url is then not needed); --out FILE
 * saves the raw response bytes as received. Prints the outcome on stdout
 * (text lines "name: value", or one JSON object with --json).
 *
 * Needs curl_global_init() done. Returns one of the TG_QUERY_* codes. */
TG_WUR int tg_cmd_query(int argc, char **argv);

#endif
