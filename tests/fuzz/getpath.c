/* libFuzzer harness: tg_getpath_decode on arbitrary paths, then the decoded
 * bytes through tg_ocsp_req_decode, as the responder does for a GET.
 *
 * Oracles besides the sanitizers:
 * - a slow reference decoder written the obvious way (percent-decode, then
 *   normalise, then strip padding, then base64) must agree on the result
 *   code and the bytes;
 * - the output never exceeds out_cap, and a smaller out_cap only ever turns
 *   success into TG_ETOOBIG;
 * - decoded bytes re-encoded by OpenSSL decode back to the same bytes. */
#include "common/buf.h"
#include "pki/ocsp.h"
#include "responder/getpath.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_CAP 16384
#define REF_MAX 65536

static int std_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* The reference: getpath.h's rules applied one step at a time. Returns 0 or
 * TG_EMALFORMED (never called where TG_ETOOBIG could arise). */
static int reference(const uint8_t *in, size_t n, uint8_t *out, size_t *out_len)
{
    static char a[REF_MAX], b[REF_MAX];
    size_t na = 0, nb = 0;
    /* 1. Percent-decoding, once. */
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '%') {
            if (n - i < 3)
                return TG_EMALFORMED;
            int hi = tg_hex_digit(in[i + 1]), lo = tg_hex_digit(in[i + 2]);
            if (hi < 0 || lo < 0)
                return TG_EMALFORMED;
            a[na++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            a[na++] = (char)in[i];
        }
    }
    /* 2. Normalise to the standard alphabet; drop line breaks. */
    for (size_t i = 0; i < na; i++) {
        char c = a[i];
        if (c == '\r' || c == '\n')
            continue;
        if (c == ' ' || c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        b[nb++] = c;
    }
    /* 3. Trailing padding. */
    size_t pads = 0;
    while (nb > 0 && b[nb - 1] == '=') {
        nb--;
        pads++;
    }
    /* 4. Plain base64 of what is left. */
    uint32_t acc = 0;
    size_t o = 0;
    for (size_t i = 0; i < nb; i++) {
        int v = std_value((unsigned char)b[i]);
        if (v < 0)
            return TG_EMALFORMED; /* includes an '=' before the end */
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    size_t r = nb % 4;
    if (r == 1 || (r == 0 && pads > 0) || (r == 2 && pads > 2) || (r == 3 && pads > 1))
        return TG_EMALFORMED;
    if (r == 2)
        out[o++] = (uint8_t)(acc >> 4);
    if (r == 3) {
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    if (o == 0)
        return TG_EMALFORMED;
    *out_len = o;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
    static uint8_t out[OUT_CAP];
    static uint8_t again[OUT_CAP];
    static uint8_t ref[REF_MAX];
    static char b64[OUT_CAP / 3 * 4 + 8];
    if (!initialised) {
        if (tg_ocsp_init() != 0)
            abort();
        initialised = 1;
    }

    const char *path = (const char *)data;
    size_t n = 12345;
    int rc = tg_getpath_decode(path, size, out, sizeof(out), &n);
    if (rc != 0 && rc != TG_EMALFORMED && rc != TG_ETOOBIG)
        abort();
    if (rc != 0 && n != 0)
        abort();

    /* Differential check wherever the output cannot exceed OUT_CAP. */
    if (size / 4 * 3 + 3 <= OUT_CAP) {
        size_t rn = 0;
        int rrc = reference(data, size, ref, &rn);
        if (rrc != rc)
            abort();
        if (rc == 0 && (rn != n || memcmp(ref, out, n) != 0))
            abort();
    }
    if (rc != 0)
        return 0;
    if (n == 0 || n > sizeof(out) || n > size * 3 / 4)
        abort();

    /* A tighter cap: success with the same bytes, or TG_ETOOBIG. */
    size_t cap = size % (n + 1);
    size_t m;
    int rc2 = tg_getpath_decode(path, size, again, cap, &m);
    if (cap >= n ? (rc2 != 0 || m != n || memcmp(again, out, n) != 0) : rc2 != TG_ETOOBIG)
        abort();

    /* Round trip through OpenSSL's encoder (standard alphabet, padded). */
    int e = EVP_EncodeBlock((unsigned char *)b64, out, (int)n);
    if (e <= 0 || tg_getpath_decode(b64, (size_t)e, again, sizeof(again), &m) != 0 || m != n ||
        memcmp(again, out, n) != 0)
        abort();

    tg_ocsp_req_t req;
    rc = tg_ocsp_req_decode(out, n, 8, &req);
    if (rc != 0 && rc != TG_EMALFORMED && rc != TG_ENOMEM)
        abort();
    if (ERR_peek_error() != 0)
        abort();
    tg_ocsp_req_clear(&req);
    return 0;
}
