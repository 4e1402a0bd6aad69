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

/* Classes of a (percent-decoded) byte besides the 6-bit values 0..63. */
enum {
    B64_PAD = 64,  /* '=' */
    B64_SKIP = 65, /* CR, LF */
    B64_PCT = 66,  /* '%': an escape follows (only before decoding) */
};

/* One lookup per input byte. Entries hold value + 1, so that every byte not
 * listed is 0, which the - 1 turns into a value above every class: bad. */
#define D2(c, v) [(c)] = (v), [(c) + 1] = (v) + 1
#define D4(c, v) D2(c, v), D2((c) + 2, (v) + 2)
#define D8(c, v) D4(c, v), D4((c) + 4, (v) + 4)
#define D16(c, v) D8(c, v), D8((c) + 8, (v) + 8)
static const uint8_t b64_class[256] = {
    D16('A', 0 + 1),     D8('Q', 16 + 1),       D2('Y', 24 + 1), /* A-Z: 0..25 */
    D16('a', 26 + 1),    D8('q', 42 + 1),       D2('y', 50 + 1), /* a-z: 26..51 */
    D8('0', 52 + 1),     D2('8', 60 + 1),                        /* 0-9: 52..61 */
    ['+'] = 62 + 1,      ['-'] = 62 + 1,        [' '] = 62 + 1,  /* ' ': mangled '+' */
    ['/'] = 63 + 1,      ['_'] = 63 + 1,                         /* '-', '_': base64url */
    ['='] = B64_PAD + 1, ['\r'] = B64_SKIP + 1, ['\n'] = B64_SKIP + 1, ['%'] = B64_PCT + 1,
};

/* Hex digit value + 1 (either case); 0 for anything else. */
static const uint8_t hex_value[256] = {
    D8('0', 0 + 1),  D2('8', 8 + 1),  D4('A', 10 + 1),
    D2('E', 14 + 1), D4('a', 10 + 1), D2('e', 14 + 1),
};
#undef D2
#undef D4
#undef D8
#undef D16

int tg_getpath_decode(const char *path, size_t path_len, uint8_t *out, size_t out_cap,
                      size_t *out_len)
{
    uint32_t acc = 0; /* bits of the current quantum */
    unsigned nq = 0;  /* characters in the current quantum, 0..3 */
    size_t pads = 0;  /* '=' seen; after the first, only more '=' may follow */
    size_t o = 0;

    *out_len = 0;
    for (size_t i = 0; i < path_len; i++) {
        unsigned v = b64_class[(unsigned char)path[i]] - 1u;
        if (v == B64_PCT) {
            if (path_len - i < 3)
                return TG_EMALFORMED; /* truncated escape */
            unsigned hi = hex_value[(unsigned char)path[i + 1]] - 1u;
            unsigned lo = hex_value[(unsigned char)path[i + 2]] - 1u;
            if (hi > 15 || lo > 15)
                return TG_EMALFORMED;
            i += 2;
            v = b64_class[hi << 4 | lo] - 1u;
            if (v == B64_PCT)
                return TG_EMALFORMED; /* "%25": decoded once, '%' is no base64 */
        }
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
