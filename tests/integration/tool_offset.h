/* Time offsets on the command lines of the test tools (mkcrl, mkocsp). */
#ifndef TG_TESTS_TOOL_OFFSET_H
#define TG_TESTS_TOOL_OFFSET_H

#include <stdint.h>

/* Parses signed seconds, optionally with one unit (s m h d w, y = 365
 * days): "-300", "+7d", "90m", within ±1000 years so that now + offset
 * stays a representable date. Returns 0 with *out set, or TG_EINVAL. */
int tool_parse_offset(const char *s, int64_t *out);

#endif
