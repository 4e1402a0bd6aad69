#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void tg_buf_init(tg_buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void tg_buf_free(tg_buf_t *b)
{
    if (b == NULL)
        return;
    free(b->data);
    tg_buf_init(b);
}

int tg_buf_reserve(tg_buf_t *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return TG_ENOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    uint8_t *d = realloc(b->data, cap);
    if (d == NULL)
        return TG_ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int tg_buf_append(tg_buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = tg_buf_reserve(b, n);
    if (rc != 0)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int tg_buf_append_str(tg_buf_t *b, const char *s)
{
    return tg_buf_append(b, s, strlen(s));
}

int tg_buf_printf(tg_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return TG_EINVAL;
    int rc = tg_buf_reserve(b, (size_t)n + 1);
    if (rc != 0)
        return rc;
    va_start(ap, fmt);
    n = vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return TG_EINVAL;
    b->len += (size_t)n;
    return 0;
}

size_t tg_u64_to_dec(uint64_t v, char *out)
{
    char tmp[21];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

int tg_buf_append_u64(tg_buf_t *b, uint64_t v)
{
    char d[21];
    size_t n = tg_u64_to_dec(v, d);
    return tg_buf_append(b, d, n);
}

void tg_buf_consume(tg_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

int tg_slice_eq_str(tg_slice_t a, const char *s)
{
    size_t n = strlen(s);
    return a.n == n && (n == 0 || memcmp(a.p, s, n) == 0);
}

int tg_slice_eq_str_nocase(tg_slice_t a, const char *s)
{
    size_t n = strlen(s);
    return a.n == n && (n == 0 || strncasecmp((const char *)a.p, s, n) == 0);
}

void tg_hex_encode(const uint8_t *p, size_t n, int upper, char *out)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int tg_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

uint64_t tg_fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}
