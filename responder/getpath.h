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
 * Precisely: after percent-decoding (once; "%25" is a '%', which is then
 * refused), A-Z a-z 0-9 are base64, '+' '-' ' ' are 62, '/' '_' are 63, CR
 * and LF are skipped, and '=' may only end the input, at most as many as
 * the last quantum lacks ("QQ==", "QQ=", "QUI="; "QUJD=" and "QQ===" are
 * refused). A last quantum of one character, an empty result, a '%' not
 * followed by two hex digits, and every other byte are TG_EMALFORMED.
 * Leftover non-zero bits in the last character are accepted.
 *
 * Writes at most out_cap bytes to out and sets *out_len. Returns 0,
 * TG_EMALFORMED for undecodable input, or TG_ETOOBIG when the decoded bytes
 * would not fit out_cap (checked as it goes: input that is both too long
 * and bad later on gets TG_ETOOBIG). On failure *out_len is 0 and out may
 * hold partial output. Pure function; no allocation, no logging. */
TG_WUR int tg_getpath_decode(const char *path, size_t path_len, uint8_t *out, size_t out_cap,
                             size_t *out_len);

#endif
