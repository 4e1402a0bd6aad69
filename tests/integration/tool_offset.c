/* Time offsets on the test tools' command lines (see tool_offset.h). */
#include "tests/integration/tool_offset.h"

#include "common/err.h"

#include <errno.h>
#include <stdlib.h>

int tool_parse_offset(const char *s, int64_t *out)
{
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
        return TG_EINVAL;
    long long mul = 1;
    if (*end != '\0') {
        switch (*end) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        case 'w': mul = 7 * 86400; break;
        case 'y': mul = 365 * 86400; break;
        default: return TG_EINVAL;
        }
        if (end[1] != '\0')
            return TG_EINVAL;
    }
    /* within ±1000 years, so that now + offset stays a representable date */
    const long long lim = 1000LL * 366 * 86400;
    if (v > lim / mul || v < -lim / mul)
        return TG_EINVAL;
    *out = v * mul;
    return 0;
}
