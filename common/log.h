/* Logging: one line per event on stderr, with a UTC timestamp, a level and
 * the calling thread's tag ("main", "w0", "w1", ...).
 *
 * Lines are formatted into a stack buffer and written with one write(2), so
 * lines from different threads never interleave. */
#ifndef TG_COMMON_LOG_H
#define TG_COMMON_LOG_H

#include <stdarg.h>

typedef enum {
    TG_LOG_DEBUG = 0,
    TG_LOG_INFO = 1,
    TG_LOG_WARN = 2,
    TG_LOG_ERROR = 3,
} tg_log_level_t;

/* Sets the minimum level that is written (default TG_LOG_INFO). Safe to call
 * from any thread at any time. */
void tg_log_set_level(tg_log_level_t level);

/* Returns the current minimum level. */
tg_log_level_t tg_log_get_level(void);

/* Parses "debug", "info", "warn" or "error" into *out_level. Returns 0, or
 * TG_EINVAL for anything else. */
int tg_log_level_parse(const char *name, tg_log_level_t *out_level);

/* Names this thread in log lines; tag is copied (at most 15 bytes kept). */
void tg_log_set_thread_tag(const char *tag);

/* Writes one log line if level is enabled. A trailing newline in fmt is not
 * needed. Lines longer than 2 KiB are truncated. */
void tg_log(tg_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logs and drains the OpenSSL error queue as one line at TG_LOG_ERROR,
 * prefixed with what (e.g. "d2i_X509"). Logs what alone if the queue is
 * empty. */
void tg_log_openssl(const char *what);

/* Drains the OpenSSL error queue without logging (for errors that are an
 * expected outcome, such as a peer's malformed DER). */
void tg_openssl_clear_errors(void);

#define tg_debug(...) tg_log(TG_LOG_DEBUG, __VA_ARGS__)
#define tg_info(...) tg_log(TG_LOG_INFO, __VA_ARGS__)
#define tg_warn(...) tg_log(TG_LOG_WARN, __VA_ARGS__)
#define tg_error(...) tg_log(TG_LOG_ERROR, __VA_ARGS__)

#endif
