/* `trustgate demo DIR` (SPEC §4): a complete demo world for the
 * Guangdong–Hong Kong mutual recognition, made with the OpenSSL, libxml2 and
 * trust-list C APIs (no external commands). */
#ifndef TG_RESPONDER_DEMO_H
#define TG_RESPONDER_DEMO_H

#include "common/err.h"

/* `trustgate demo [--force] [--port N] DIR`. argv[0] is the first argument
 * after "demo"; the strings are borrowed for the call.
 *
 * Creates DIR (with its parents) and writes into it: a Guangdong side (an
 * SM2 root, two SM2 issuing CAs, one per certificate category, the second
 * category suspended on the list), a Hong Kong side (an RSA-2048 root with
 * an RSA-2048 and an ECDSA P-256 issuing CA), a good and a revoked
 * end-entity certificate and a CRL per issuing CA, an `openssl ocsp -index`
 * responder kit per issuing CA, the two trust-list operators, the two
 * responder signers, both signed trust lists (and their unsigned
 * templates), trustgate.ini, certs.txt, upstreams.txt ("PORT<TAB>command
 * line relative to DIR" per upstream responder) and README.txt. A DIR that
 * exists and is not empty is refused unless --force is given (files are
 * then overwritten; nothing else is removed).
 *
 * trustgate listens on 127.0.0.1:N (default 8080, 1024..65531) and every
 * URL that names it (AIA, CRL DP, list locations, addresses) uses N; the
 * upstream responders, named as the CAs' OCSP supply points on the lists,
 * use N+1..N+4: hk rsa-ca, hk ecc-ca, gd personal-ca, gd organisation-ca.
 *
 * Needs tg_tl_global_init() done (it signs the lists). Prints what it made
 * to stdout; errors are logged once. Returns a process exit code: 0 done,
 * 1 failed (DIR may hold a partial world), 2 usage. */
TG_WUR int tg_cmd_demo(int argc, char **argv);

#endif
