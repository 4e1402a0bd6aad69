#include "common/log.h"

#include "common/err.h"

#include <openssl/err.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = TG_LOG_INFO;
static _Thread_local char thread_tag[16] = "main";

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void tg_log_set_level(tg_log_level_t level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

tg_log_level_t tg_log_get_level(void)
{
    return (tg_log_level_t)atomic_load_explicit(&log_level, memory_order_relaxed);
}

int tg_log_level_parse(const char *name, tg_log_level_t *out_level)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out_level = (tg_log_level_t)i;
            return 0;
        }
    }
    return TG_EINVAL;
}

void tg_log_set_thread_tag(const char *tag)
{
    snprintf(thread_tag, sizeof(thread_tag), "%s", tag);
}

__attribute__((format(printf, 2, 0))) static void log_write(tg_log_level_t level, const char *fmt,
                                                            va_list ap)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], thread_tag);
    if (n < 0)
        return;
    size_t used = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    int m = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
    if (m > 0)
        used += (size_t)m < sizeof(line) - used ? (size_t)m : sizeof(line) - used - 1;
    /* Keep it one line: a newline inside a message would forge a log entry. */
    for (size_t i = 0; i < used; i++) {
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    }
    if (used >= sizeof(line) - 1)
        used = sizeof(line) - 2;
    line[used++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, used);
    (void)w; /* nowhere left to report a failed write to stderr */
}

void tg_log(tg_log_level_t level, const char *fmt, ...)
{
    if ((int)level < atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_write(level, fmt, ap);
    va_end(ap);
}

void tg_log_openssl(const char *what)
{
    char msg[1024];
    size_t used = 0;
    unsigned long e;
    const char *file, *data;
    int line, flags;
    msg[0] = '\0';
    while ((e = ERR_get_error_all(&file, &line, NULL, &data, &flags)) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof(one));
        int n = snprintf(msg + used, sizeof(msg) - used, "%s%s%s%s", used ? "; " : "", one,
                         (flags & ERR_TXT_STRING) && data ? ": " : "",
                         (flags & ERR_TXT_STRING) && data ? data : "");
        if (n < 0 || (size_t)n >= sizeof(msg) - used) {
            used = sizeof(msg) - 1;
            break;
        }
        used += (size_t)n;
    }
    ERR_clear_error();
    if (used)
        tg_error("%s: %s", what, msg);
    else
        tg_error("%s failed", what);
}

void tg_openssl_clear_errors(void)
{
    ERR_clear_error();
}
