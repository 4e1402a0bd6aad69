/* Time helpers: monotonic milliseconds and RFC 7231 HTTP dates. */
#ifndef TG_COMMON_CLOCK_H
#define TG_COMMON_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Length of an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT", without NUL. */
#define TG_HTTP_DATE_LEN 29

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC). */
uint64_t tg_now_ns(void);

/* Wall clock in seconds since the epoch. */
time_t tg_wall_now(void);

/* Formats t as an IMF-fixdate into out, which must hold
 * TG_HTTP_DATE_LEN + 1 bytes; out is NUL-terminated. */
void tg_http_date(time_t t, char *out);

/* Parses an IMF-fixdate (the only form senders may generate, RFC 7231
 * §7.1.1.1) of length n into *out_t. Returns 0 or TG_EMALFORMED. */
int tg_http_date_parse(const char *s, size_t n, time_t *out_t);

#endif
