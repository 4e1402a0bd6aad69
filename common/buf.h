/* Byte slices and growable byte buffers.
 *
 * A tg_slice_t borrows: it never owns the bytes it points to, and says
 * nothing about their lifetime; the function that hands one out documents
 * that. A tg_buf_t owns its storage; tg_buf_free() releases it. */
#ifndef TG_COMMON_BUF_H
#define TG_COMMON_BUF_H

#include "common/err.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *p;
    size_t n;
} tg_slice_t;

typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} tg_buf_t;

#define TG_SLICE(p_, n_) ((tg_slice_t){.p = (const uint8_t *)(p_), .n = (n_)})
#define TG_SLICE_LIT(s_) ((tg_slice_t){.p = (const uint8_t *)(s_), .n = sizeof(s_) - 1})

/* Initialises an empty buffer (no allocation). */
void tg_buf_init(tg_buf_t *b);

/* Releases the storage of b (NULL or never-grown buffers are fine) and
 * leaves it empty and reusable. */
void tg_buf_free(tg_buf_t *b);

/* Ensures room for extra more bytes after len. Returns 0 or TG_ENOMEM (the
 * buffer is unchanged then). */
TG_WUR int tg_buf_reserve(tg_buf_t *b, size_t extra);

/* Appends n bytes. Returns 0 or TG_ENOMEM. */
TG_WUR int tg_buf_append(tg_buf_t *b, const void *p, size_t n);

/* Appends a NUL-terminated string (without the NUL). Returns 0 or TG_ENOMEM. */
TG_WUR int tg_buf_append_str(tg_buf_t *b, const char *s);

/* Appends printf-formatted text (no NUL kept in len). Returns 0, TG_ENOMEM or
 * TG_EINVAL on a formatting error. */
TG_WUR int tg_buf_printf(tg_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends the decimal form of v. Returns 0 or TG_ENOMEM. */
TG_WUR int tg_buf_append_u64(tg_buf_t *b, uint64_t v);

/* Drops the first n bytes (n <= len), moving the rest to the front. */
void tg_buf_consume(tg_buf_t *b, size_t n);

/* Returns 1 when the slice equals the NUL-terminated string s, else 0. */
int tg_slice_eq_str(tg_slice_t a, const char *s);

/* Returns 1 when the slice equals s ignoring ASCII case, else 0. */
int tg_slice_eq_str_nocase(tg_slice_t a, const char *s);

/* Writes the 2n lower-case hex digits of the n bytes at p to out (room for
 * 2n + 1 bytes) and a NUL; upper-case when upper is non-zero. */
void tg_hex_encode(const uint8_t *p, size_t n, int upper, char *out);

/* Returns the value (0..15) of the hex digit c (either case), or -1. */
int tg_hex_digit(int c);

/* Writes the decimal form of v into out (at least 21 bytes); returns the
 * number of digits written (no NUL). */
size_t tg_u64_to_dec(uint64_t v, char *out);

/* FNV-1a 64 (not cryptographic: hash tables, cache keys, jitter). The
 * start value: continue from h, or begin with TG_FNV1A_INIT. */
#define TG_FNV1A_INIT 0xcbf29ce484222325ULL
uint64_t tg_fnv1a(uint64_t h, const void *p, size_t n);

#endif
