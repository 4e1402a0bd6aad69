#include "common/clock.h"

#include "common/err.h"

#include <stdio.h>
#include <string.h>

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

uint64_t tg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

time_t tg_wall_now(void)
{
    return time(NULL);
}

void tg_http_date(time_t t, char *out)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    char tmp[64];
    snprintf(tmp, sizeof(tmp), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], (tm.tm_year + 1900) % 10000, tm.tm_hour, tm.tm_min, tm.tm_sec);
    memcpy(out, tmp, TG_HTTP_DATE_LEN);
    out[TG_HTTP_DATE_LEN] = '\0';
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int tg_http_date_parse(const char *s, size_t n, time_t *out_t)
{
    /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (n != TG_HTTP_DATE_LEN || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || s[25] != ' ' ||
        memcmp(s + 26, "GMT", 3) != 0)
        return TG_EMALFORMED;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int mon = -1;
    for (int i = 0; i < 12; i++) {
        if (memcmp(s + 8, months[i], 3) == 0)
            mon = i;
    }
    int year, mday, hh, mm, ss;
    if (mon < 0 || digits(s + 5, 2, &mday) || digits(s + 12, 4, &year) || digits(s + 17, 2, &hh) ||
        digits(s + 20, 2, &mm) || digits(s + 23, 2, &ss))
        return TG_EMALFORMED;
    if (mday < 1 || mday > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1970)
        return TG_EMALFORMED;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon;
    tm.tm_mday = mday;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    *out_t = timegm(&tm);
    return 0;
}
