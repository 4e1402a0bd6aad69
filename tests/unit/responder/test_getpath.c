/* tg_getpath_decode: the RFC 5019 §5 GET path and what real clients send. */
#include "responder/getpath.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

/* 01 02 03 04 05 06 fb ff fe: standard base64 "AQIDBAUG+//+", which uses
 * both '+' and '/'. */
static const uint8_t want9[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0xfb, 0xff, 0xfe};

static int decode(const char *s, uint8_t *out, size_t cap, size_t *out_len)
{
    return tg_getpath_decode(s, strlen(s), out, cap, out_len);
}

/* Decodes s and asserts that it yields exactly want. */
static void expect_bytes(const char *s, const uint8_t *want, size_t want_len)
{
    uint8_t out[256];
    size_t n = 12345;
    int rc = decode(s, out, sizeof(out), &n);
    cr_assert_eq(rc, 0, "\"%s\": rc %d", s, rc);
    cr_assert_eq(n, want_len, "\"%s\": %zu bytes, want %zu", s, n, want_len);
    cr_assert(memcmp(out, want, want_len) == 0, "\"%s\": wrong bytes", s);
}

static void expect_rc(const char *s, int want)
{
    uint8_t out[256];
    size_t n = 12345;
    int rc = decode(s, out, sizeof(out), &n);
    cr_assert_eq(rc, want, "\"%s\": rc %d, want %d", s, rc, want);
    if (rc != 0)
        cr_assert_eq(n, 0, "\"%s\": out_len not reset on failure", s);
}

Test(getpath, plain_base64)
{
    expect_bytes("AQIDBAUG+//+", want9, sizeof(want9));
    static const uint8_t man[] = {'M', 'a', 'n'};
    expect_bytes("TWFu", man, 3);
}

Test(getpath, percent_encoded_upper_and_lower)
{
    expect_bytes("AQIDBAUG%2B%2F%2F%2B", want9, sizeof(want9));
    expect_bytes("AQIDBAUG%2b%2f%2f%2b", want9, sizeof(want9));
    expect_bytes("AQIDBAUG%2B/%2f+", want9, sizeof(want9));
    /* Escapes of plain letters are legal URL encoding too. */
    expect_bytes("%41QIDBAUG+//+", want9, sizeof(want9));
    static const uint8_t one[] = {0x41};
    expect_bytes("QQ%3D%3D", one, 1);
    expect_bytes("QQ%3d%3d", one, 1);
    expect_bytes("QQ%3D=", one, 1);
}

Test(getpath, raw_plus_slash_equals)
{
    static const uint8_t one[] = {0x41};
    static const uint8_t two[] = {0x41, 0x42};
    expect_bytes("QQ==", one, 1);
    expect_bytes("QUI=", two, 2);
    expect_bytes("+/+/", (const uint8_t[]){0xfb, 0xff, 0xbf}, 3);
}

Test(getpath, space_repaired_to_plus)
{
    expect_bytes("AQIDBAUG%20//%20", want9, sizeof(want9));
    expect_bytes("AQIDBAUG //+", want9, sizeof(want9));
    expect_bytes("AQIDBAUG //%20", want9, sizeof(want9));
}

Test(getpath, base64url)
{
    expect_bytes("AQIDBAUG-__-", want9, sizeof(want9));
    /* Mixed alphabets are tolerated: each symbol has one meaning. */
    expect_bytes("AQIDBAUG+_/-", want9, sizeof(want9));
    expect_bytes("AQIDBAUG%2D%5F%5f%2d", want9, sizeof(want9));
}

Test(getpath, missing_padding)
{
    static const uint8_t one[] = {0x41};
    static const uint8_t two[] = {0x41, 0x42};
    expect_bytes("QQ", one, 1);
    expect_bytes("QQ=", one, 1); /* partial padding */
    expect_bytes("QUI", two, 2);
    expect_bytes(
        "AQIDBAUG-__-QUI",
        (const uint8_t[]){0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0xfb, 0xff, 0xfe, 0x41, 0x42}, 11);
}

Test(getpath, line_wrapped)
{
    expect_bytes("AQID%0ABAUG%0A+//+%0A", want9, sizeof(want9));
    expect_bytes("AQID%0D%0ABAUG%0d%0a+//+", want9, sizeof(want9));
    expect_bytes("AQID\r\nBAUG\n+//+", want9, sizeof(want9));
    static const uint8_t one[] = {0x41};
    expect_bytes("QQ=%0A=%0A", one, 1);
    expect_bytes("Q%0AQ", one, 1);
}

Test(getpath, trailing_bits_accepted)
{
    /* "QR==" has non-zero bits after the byte 0x41; RFC 4648 §3.5 allows
     * decoders to accept it. */
    static const uint8_t one[] = {0x41};
    expect_bytes("QR==", one, 1);
    expect_bytes("QR", one, 1);
}

Test(getpath, bad_escapes)
{
    expect_rc("QQ%G1", TG_EMALFORMED);
    expect_rc("QQ%1G", TG_EMALFORMED);
    expect_rc("QQ%4", TG_EMALFORMED);
    expect_rc("QQ%", TG_EMALFORMED);
    expect_rc("%", TG_EMALFORMED);
    expect_rc("QQ%%3D", TG_EMALFORMED);
    expect_rc("QQ%253D", TG_EMALFORMED); /* decoded once: '%' is no base64 */
    expect_rc("QQ% 3", TG_EMALFORMED);
    expect_rc("QQ%-1", TG_EMALFORMED);
}

Test(getpath, invalid_chars)
{
    expect_rc("QQ.=", TG_EMALFORMED);
    expect_rc("QQ\t", TG_EMALFORMED);
    expect_rc("QQ?a=b", TG_EMALFORMED);
    expect_rc("QQ#", TG_EMALFORMED);
    expect_rc("Q*Q", TG_EMALFORMED);
    expect_rc("QQ%00", TG_EMALFORMED);
    expect_rc("QQ%FF", TG_EMALFORMED);
    expect_rc("QQ\xc3\xa9", TG_EMALFORMED);
    expect_rc("ocsp/QQ==", TG_EMALFORMED); /* the route prefix is the caller's */
    /* An embedded NUL is just another invalid byte. */
    uint8_t out[8];
    size_t n;
    cr_assert_eq(tg_getpath_decode("QQ\0Q", 4, out, sizeof(out), &n), TG_EMALFORMED);
}

Test(getpath, padding_rules)
{
    expect_rc("QQ==QQ==", TG_EMALFORMED); /* data after padding */
    expect_rc("QQ=Q", TG_EMALFORMED);
    expect_rc("QQ=%41", TG_EMALFORMED);
    expect_rc("QQ===", TG_EMALFORMED);    /* more padding than missing */
    expect_rc("QUI==", TG_EMALFORMED);    /* one missing, two given */
    expect_rc("QUJD=", TG_EMALFORMED);    /* full quantum, then padding */
    expect_rc("QUJD====", TG_EMALFORMED); /* long runs stop early */
    expect_rc("=", TG_EMALFORMED);
    expect_rc("==", TG_EMALFORMED);
    expect_rc("%3D%3D", TG_EMALFORMED);
}

Test(getpath, impossible_length)
{
    expect_rc("Q", TG_EMALFORMED);
    expect_rc("Q=", TG_EMALFORMED);
    expect_rc("Q==", TG_EMALFORMED);
    expect_rc("QUJDQ", TG_EMALFORMED);
    expect_rc("QUJDQ===", TG_EMALFORMED);
}

Test(getpath, empty_input)
{
    expect_rc("", TG_EMALFORMED);
    expect_rc("%0A", TG_EMALFORMED);
    expect_rc("\r\n", TG_EMALFORMED);
    uint8_t out[4];
    size_t n = 7;
    cr_assert_eq(tg_getpath_decode(NULL, 0, out, sizeof(out), &n), TG_EMALFORMED);
    cr_assert_eq(n, 0);
}

Test(getpath, too_big)
{
    uint8_t out[16];
    size_t n = 99;
    /* 9 bytes into 8, 9 and 10 bytes of room. */
    cr_assert_eq(decode("AQIDBAUG+//+", out, 8, &n), TG_ETOOBIG);
    cr_assert_eq(n, 0);
    cr_assert_eq(decode("AQIDBAUG+//+", out, 9, &n), 0);
    cr_assert_eq(n, 9);
    /* The last partial quantum is counted too. */
    cr_assert_eq(decode("AQIDBAUG+//+QQ", out, 9, &n), TG_ETOOBIG);
    cr_assert_eq(decode("AQIDBAUG+//+QUI", out, 10, &n), TG_ETOOBIG);
    cr_assert_eq(decode("AQIDBAUG+//+QUI", out, 11, &n), 0);
    cr_assert_eq(n, 11);
    cr_assert_eq(decode("QQ==", NULL, 0, &n), TG_ETOOBIG);
    /* Never writes past out_cap. */
    uint8_t guard[8];
    memset(guard, 0xAA, sizeof(guard));
    cr_assert_eq(decode("AQIDBAUG+//+", guard, 4, &n), TG_ETOOBIG);
    for (size_t i = 4; i < sizeof(guard); i++)
        cr_assert_eq(guard[i], 0xAA);
}

Test(getpath, all_byte_values_round_trip)
{
    /* Every byte value in every position of a quantum, in standard base64,
     * base64url and percent-encoded form. */
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t raw[258];
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (uint8_t)(i * 7 + 3);
    char std[400], url[400], pct[1200];
    size_t ns = 0, nu = 0, np = 0;
    for (size_t i = 0; i < sizeof(raw); i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        for (int k = 18; k >= 0; k -= 6) {
            char c = alpha[(v >> k) & 63];
            std[ns++] = c;
            url[nu++] = c == '+' ? '-' : c == '/' ? '_' : c;
            if (c == '+' || c == '/') {
                np += (size_t)snprintf(pct + np, sizeof(pct) - np, "%%%02X", (unsigned)c);
            } else {
                pct[np++] = c;
            }
        }
    }
    uint8_t out[300];
    size_t n;
    cr_assert_eq(tg_getpath_decode(std, ns, out, sizeof(out), &n), 0);
    cr_assert_eq(n, sizeof(raw));
    cr_assert(memcmp(out, raw, n) == 0);
    cr_assert_eq(tg_getpath_decode(url, nu, out, sizeof(out), &n), 0);
    cr_assert(n == sizeof(raw) && memcmp(out, raw, n) == 0);
    cr_assert_eq(tg_getpath_decode(pct, np, out, sizeof(out), &n), 0);
    cr_assert(n == sizeof(raw) && memcmp(out, raw, n) == 0);
}

Test(getpath, every_single_byte_input)
{
    /* A one-character path never decodes; none crashes. */
    for (int c = 0; c < 256; c++) {
        char s[1] = {(char)c};
        uint8_t out[4];
        size_t n;
        cr_assert_eq(tg_getpath_decode(s, 1, out, sizeof(out), &n), TG_EMALFORMED, "byte %d", c);
    }
}
