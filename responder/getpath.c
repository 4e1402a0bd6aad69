/* OCSP GET path decoding (RFC 5019 §5, RFC 6960 Appendix A.1).
 *
 * One pass over the path: each character (or %XX escape) is mapped to its
 * base64 value and four values make three output bytes. What real clients
 * and proxies do to the path is repaired rather than refused:
 * - percent-encoded and raw '+', '/', '=' (RFC 5019 asks for the former,
 *   many clients send the latter), escapes in either case;
 * - ' ' (raw, or "%20") read as '+': form-style decoders turn '+' into a
 *   space, and '+' never stands for a space in base64;
 * - base64url ('-', '_', RFC 4648 §5), which some clients use for paths;
 * - missing '=' padding (the length tells how many bytes the last quantum
 *   holds);
 * - CR and LF, raw or escaped, from line-wrapped base64 (MIME, PEM style).
 * Non-zero bits left over in the last character are accepted (RFC 4648
 * §3.5 lets decoders do so). */
#include "responder/getpath.h"

enum {
    B64_PAD = 64,  /* '=' */
    B64_SKIP = 65, /* CR, LF */
    B64_BAD = 66,
};

/* Maps one (already percent-decoded) character to its 6-bit value or one of
 * the B64_* classes. Unsigned wrap-around makes each range test one compare. */
static inline unsigned b64_value(unsigned c)
{
    if (c - 'A' < 26u)
        return c - 'A';
    if (c - 'a' < 26u)
        return c - 'a' + 26;
    if (c - '0' < 10u)
        return c - '0' + 52;
    switch (c) {
    case '+':
    case '-':
    case ' ': return 62;
    case '/':
    case '_': return 63;
    case '=': return B64_PAD;
    case '\r':
    case '\n': return B64_SKIP;
    default: return B64_BAD;
    }
}

/* Returns the value of one hex digit (either case), or 16 for anything else. */
static inline unsigned hex_value(unsigned c)
{
    if (c - '0' < 10u)
        return c - '0';
    c |= 0x20; /* ASCII lower case; maps no non-letter onto 'a'..'f' */
    if (c - 'a' < 6u)
        return c - 'a' + 10;
    return 16;
}

int tg_getpath_decode(const char *path, size_t path_len, uint8_t *out, size_t out_cap,
                      size_t *out_len)
{
    uint32_t acc = 0; /* bits of the current quantum */
    unsigned nq = 0;  /* characters in the current quantum, 0..3 */
    size_t pads = 0;  /* '=' seen; after the first, only more '=' may follow */
    size_t o = 0;

    *out_len = 0;
    for (size_t i = 0; i < path_len; i++) {
        unsigned c = (unsigned char)path[i];
        if (c == '%') {
            if (path_len - i < 3)
                return TG_EMALFORMED; /* truncated escape */
            unsigned hi = hex_value((unsigned char)path[i + 1]);
            unsigned lo = hex_value((unsigned char)path[i + 2]);
            if (hi > 15 || lo > 15)
                return TG_EMALFORMED;
            c = hi << 4 | lo;
            i += 2;
        }
        unsigned v = b64_value(c);
        if (v < 64) {
            if (pads)
                return TG_EMALFORMED; /* data after padding */
            acc = acc << 6 | v;
            if (++nq == 4) {
                if (out_cap - o < 3)
                    return TG_ETOOBIG;
                out[o++] = (uint8_t)(acc >> 16);
                out[o++] = (uint8_t)(acc >> 8);
                out[o++] = (uint8_t)acc;
                acc = 0;
                nq = 0;
            }
        } else if (v == B64_PAD) {
            if (++pads > 2)
                return TG_EMALFORMED;
        } else if (v != B64_SKIP) {
            return TG_EMALFORMED;
        }
    }

    /* The last quantum: padding, when present, must fit its length
     * ("QQ==" or "QQ=" or "QQ"; "QUI=" or "QUI"); a lone character cannot
     * encode a byte. */
    switch (nq) {
    case 0:
        if (pads)
            return TG_EMALFORMED;
        break;
    case 1: return TG_EMALFORMED;
    case 2:
        if (out_cap - o < 1)
            return TG_ETOOBIG;
        out[o++] = (uint8_t)(acc >> 4);
        break;
    default: /* 3 */
        if (pads > 1)
            return TG_EMALFORMED;
        if (out_cap - o < 2)
            return TG_ETOOBIG;
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
        break;
    }
    if (o == 0)
        return TG_EMALFORMED; /* empty, or only line breaks */
    *out_len = o;
    return 0;
}
