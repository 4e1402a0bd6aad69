/* Decoding of the OCSP GET request-target (RFC 5019 §5, RFC 6960 App. A.1):
 * "/{url-encoding of base64 of DER OCSPRequest}", optionally under /ocsp/. */
#ifndef TG_RESPONDER_GETPATH_H
#define TG_RESPONDER_GETPATH_H

#include "common/buf.h"
#include "common/err.h"

#include <stddef.h>
#include <stdint.h>

/* Decodes the base64 part of an OCSP GET path (everything after the route
 * prefix "/" or "/ocsp/", query string already removed) into DER bytes.
 *
 * Accepts what real clients send: percent-encoded or raw '+', '/', '=';
 * lower- or upper-case percent escapes; the ' ' -> '+' repair (a '+' that a
 * proxy or client turned into a space or "%20"); base64url ('-', '_');
 * missing padding; CR/LF (line-wrapped base64, raw or escaped) ignored.
 * Rejects anything else, including bad escapes, characters after padding and
 * impossible lengths.
 *
 * Writes at most out_cap bytes to out and sets *out_len. Returns 0,
 * TG_EMALFORMED for undecodable input, or TG_ETOOBIG when the decoded bytes
 * would not fit out_cap. Pure function; no allocation, no logging. */
TG_WUR int tg_getpath_decode(const char *path, size_t path_len, uint8_t *out, size_t out_cap,
                             size_t *out_len);

#endif
