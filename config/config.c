/* The INI file of SPEC §3 → an immutable, validated tg_config_t.
 *
 * libinih does the tokenising, but this build's handler gets no line
 * number, calls nothing for a section header and keeps only the first
 * syntax error. So we feed it through our own reader (ini_parse_stream), one
 * physical line per call: the reader counts lines, rejects what inih would
 * silently truncate or misread (overlong lines, NUL bytes, continuation
 * lines, lines without '='), and opens sections itself. A rejected line is
 * handed to inih as a blank line, so the line count stays in step and every
 * problem is reported once. The key handler then only dispatches through
 * per-section directive tables (nginx style).
 *
 * Checks that depend on the whole file (signer references, file: URLs versus
 * [upstream] allow_file_urls, required keys) run after the parse. */
#include "config/config.h"

#include "common/buf.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

enum sect {
    SEC_NONE,   /* before the first section header */
    SEC_BROKEN, /* a bad header: its keys are skipped, the header was reported */
    SEC_SERVER,
    SEC_CACHE,
    SEC_UPSTREAM,
    SEC_SIGNER,
    SEC_TRUSTLIST,
};

#define MAX_KEYS 16
#define REPORTED TG_ECONFIG /* a setter logged the problem (distinct from TG_ENOMEM) */
#define WORKERS_MAX 4096

typedef struct parse parse_t;
typedef struct directive directive_t;

/* Stores value into obj (the struct this section writes to). Returns 0,
 * REPORTED after logging a bad value, or TG_ENOMEM. */
typedef int (*setter_fn)(parse_t *p, const directive_t *d, const char *value, void *obj);

struct directive {
    const char *key;
    setter_fn set;
    size_t off; /* of the field in obj */
    uint64_t min, max;
    bool repeatable;
};

typedef struct {
    unsigned line;               /* of the section header; 0 = not seen */
    unsigned key_line[MAX_KEYS]; /* first line of each directive; 0 = absent */
} sect_meta_t;

struct parse {
    const char *name; /* the file name for messages, as the caller gave it */
    char *base;       /* directory that relative paths resolve against */
    tg_config_t *cfg;
    int n_errors;
    bool oom;

    /* line source: a FILE or a string */
    FILE *fp;
    const char *text;
    size_t text_left;
    unsigned lineno;
    bool prev_was_key;
    char prev_key[64];
    char raw[TG_CONFIG_MAX_LINE + 2];

    /* the section being read */
    enum sect sect;
    size_t cur;              /* index of the signer / trust list */
    void *obj;               /* the struct its keys write to */
    const directive_t *dirs; /* its directive table */
    sect_meta_t *meta;       /* its line bookkeeping */
    char label[64];          /* "server", "signer hk": for messages */

    sect_meta_t server, cache, upstream;
    sect_meta_t signer_meta[TG_CONFIG_MAX_SIGNERS];
    sect_meta_t tl_meta[TG_CONFIG_MAX_TRUSTLISTS];
    char tl_signer[TG_CONFIG_MAX_TRUSTLISTS][TG_CONFIG_NAME_MAX + 1];
    unsigned listen_line[TG_CONFIG_MAX_LISTEN];
};

/* ---- messages ---------------------------------------------------------- */

static void perr(parse_t *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Logs "NAME:LINE: message" once and counts it. */
static void perr(parse_t *p, unsigned line, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tg_error("%s:%u: %s", p->name, line, msg);
    p->n_errors++;
}

static void kerr(parse_t *p, const directive_t *d, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Logs "NAME:LINE: [section] key: reason" for the line being read. */
static void kerr(parse_t *p, const directive_t *d, const char *fmt, ...)
{
    char msg[1280];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    perr(p, p->lineno, "[%s] %s: %s", p->label, d->key, msg);
}

static const char *errno_text(int e, char *buf, size_t n)
{
    return strerror_r(e, buf, n); /* GNU variant: returns the text */
}

/* ---- small parsers ----------------------------------------------------- */

/* Strict decimal: digits only, no sign, no spaces, no junk. Returns 0, -1 for
 * not a number, -2 for a number that does not fit in 64 bits. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (*s == '\0')
        return -1;
    uint64_t v = 0;
    bool overflow = false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned dgt = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - dgt) / 10)
            overflow = true;
        else
            v = v * 10 + dgt;
    }
    if (overflow)
        return -2;
    *out = v;
    return 0;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TG_CONFIG_NAME_MAX)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static char *skip_space(char *s)
{
    while (is_space(*s))
        s++;
    return s;
}

static void trim_end(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1]))
        s[--n] = '\0';
}

/* Like inih's find_chars_or_comment: the first char of chars, or the start
 * of an inline ';' comment (one preceded by whitespace), or the end. */
static char *find_sep(char *s, const char *chars)
{
    bool was_space = false;
    while (*s && !strchr(chars, *s) && !(was_space && *s == ';')) {
        was_space = is_space(*s);
        s++;
    }
    return s;
}

/* ---- paths ------------------------------------------------------------- */

/* Lexically tidies a path: drops "." components and repeated slashes. ".."
 * is kept (with symlinks it cannot be removed lexically). Returns a new
 * string or NULL when out of memory. */
static char *path_tidy(const char *in)
{
    size_t n = strlen(in);
    char *out = malloc(n + 2);
    if (out == NULL)
        return NULL;
    bool abs = in[0] == '/';
    size_t o = 0;
    if (abs)
        out[o++] = '/';
    const char *s = in;
    while (*s) {
        while (*s == '/')
            s++;
        const char *e = s;
        while (*e && *e != '/')
            e++;
        size_t len = (size_t)(e - s);
        if (len > 0 && !(len == 1 && s[0] == '.')) {
            if (o > 0 && out[o - 1] != '/')
                out[o++] = '/';
            memcpy(out + o, s, len);
            o += len;
        }
        s = e;
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
    return out;
}

static char *path_join(const char *dir, const char *rel)
{
    if (rel[0] == '/')
        return path_tidy(rel);
    size_t a = strlen(dir), b = strlen(rel);
    char *tmp = malloc(a + b + 2);
    if (tmp == NULL)
        return NULL;
    memcpy(tmp, dir, a);
    tmp[a] = '/';
    memcpy(tmp + a + 1, rel, b + 1);
    char *out = path_tidy(tmp);
    free(tmp);
    return out;
}

/* The absolute, tidied form of name (relative to the working directory). */
static char *path_absolute(const char *name)
{
    if (name[0] == '/')
        return path_tidy(name);
    char *cwd = getcwd(NULL, 0);
    if (cwd == NULL) /* a deleted working directory: stay relative */
        return errno == ENOMEM ? NULL : path_tidy(name);
    char *out = path_join(cwd, name);
    free(cwd);
    return out;
}

/* The directory part of an already tidied path. */
static char *path_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* ---- setters ----------------------------------------------------------- */

#define FIELD(obj, d, type) ((type *)((char *)(obj) + (d)->off))

static int get_number(parse_t *p, const directive_t *d, const char *value, uint64_t *out)
{
    uint64_t v = 0;
    int rc = parse_u64(value, &v);
    if (rc == -1) {
        kerr(p, d, "expected a decimal number, got '%.200s'", value);
        return REPORTED;
    }
    if (rc == -2 || v < d->min || v > d->max) {
        kerr(p, d, "must be between %llu and %llu, got %.200s", (unsigned long long)d->min,
             (unsigned long long)d->max, value);
        return REPORTED;
    }
    *out = v;
    return 0;
}

static int set_u32(parse_t *p, const directive_t *d, const char *value, void *obj)
{
    uint64_t v;
    if (get_number(p, d, value, &v) != 0)
        return REPORTED;
    *FIELD(obj, d, uint32_t) = (uint32_t)v;
    return 0;
}

static int set_u64(parse_t *p, const directive_t *d, const char *value, void *obj)
{
    uint64_t v;
    if (get_number(p, d, value, &v) != 0)
        return REPORTED;
    *FIELD(obj, d, uint64_t) = v;
    return 0;
}

static int set_bool(parse_t *p, const directive_t *d, const char *value, void *obj)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            *FIELD(obj, d, int) = 1;
            return 0;
        }
        if (strcasecmp(value, no[i]) == 0) {
            *FIELD(obj, d, int) = 0;
            return 0;
        }
    }
    kerr(p, d, "expected yes or no, got '%.200s'", value);
    return REPORTED;
}

static int set_log_level(parse_t *p, const directive_t *d, const char *value, void *obj)
{
    tg_log_level_t lvl;
    if (tg_log_level_parse(value, &lvl) != 0) {
        kerr(p, d, "expected debug, info, warn or error, got '%.200s'", value);
        return REPORTED;
    }
    *FIELD(obj, d, int) = (int)lvl;
    return 0;
}

static int set_mode(parse_t *p, const directive_t *d, const char *value, void *obj)
{
    if (strcmp(value, "relay") == 0)
        *FIELD(obj, d, tg_tl_mode_t) = TG_TL_MODE_RELAY;
    else if (strcmp(value, "sign") == 0)
        *FIELD(obj, d, tg_tl_mode_t) = TG_TL_MODE_SIGN;
    else {
        kerr(p, d, "expected relay or sign, got '%.200s'", value);
        return REPORTED;
    }
    return 0;
}

/* Stores the resolved path in a char * field, without checking it (for
 * things created at run time: the cache, the admin socket, the access log). */
static int set_path(parse_t *p, const directive_t *d, const char *value, void *obj)
{
    char *path = path_join(p->base, value);
    if (path == NULL)
        return TG_ENOMEM;
    char **field = FIELD(obj, d, char *);
    free(*field);
    *field = path;
    return 0;
}

static int set_access_log(parse_t *p, const directive_t *d, const char *value, void *obj)
{
    if (strcmp(value, "-") != 0)
        return set_path(p, d, value, obj);
    char **field = FIELD(obj, d, char *);
    free(*field);
    if ((*field = strdup("-")) == NULL)
        return TG_ENOMEM;
    return 0;
}

/* Resolves value and checks that it names a readable file. On success
 * *out_path is a new string owned by the caller. */
static int readable_file(parse_t *p, const directive_t *d, const char *value, char **out_path)
{
    char *path = path_join(p->base, value);
    if (path == NULL)
        return TG_ENOMEM;
    char eb[128];
    struct stat st;
    if (access(path, R_OK) != 0 || stat(path, &st) != 0) {
        kerr(p, d, "cannot read %.1024s: %s", path, errno_text(errno, eb, sizeof(eb)));
        free(path);
        return REPORTED;
    }
    if (S_ISDIR(st.st_mode)) {
        kerr(p, d, "%.1024s is a directory", path);
        free(path);
        return REPORTED;
    }
    *out_path = path;
    return 0;
}

static int set_file(parse_t *p, const directive_t *d, const char *value, void *obj)
{
    char *path;
    int rc = readable_file(p, d, value, &path);
    if (rc != 0)
        return rc;
    char **field = FIELD(obj, d, char *);
    free(*field);
    *field = path;
    return 0;
}

static int set_key(parse_t *p, const directive_t *d, const char *value, void *obj)
{
    if (strncmp(value, "pkcs11:", 7) != 0)
        return set_file(p, d, value, obj);
    char **field = FIELD(obj, d, char *);
    free(*field);
    if ((*field = strdup(value)) == NULL) /* URIs are kept verbatim */
        return TG_ENOMEM;
    return 0;
}

static int set_operator_cert(parse_t *p, const directive_t *d, const char *value, void *obj)
{
    tg_config_trustlist_t *tl = obj;
    if (tl->n_operator_certs == TG_CONFIG_MAX_OPERATOR_CERTS) {
        kerr(p, d, "too many (at most %d)", TG_CONFIG_MAX_OPERATOR_CERTS);
        return REPORTED;
    }
    char *path;
    int rc = readable_file(p, d, value, &path);
    if (rc != 0)
        return rc;
    tl->operator_certs[tl->n_operator_certs++] = path;
    return 0;
}

static bool has_prefix_nocase(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static int set_source(parse_t *p, const directive_t *d, const char *value, void *obj)
{
    tg_config_trustlist_t *tl = obj;
    static const char *const schemes[] = {"http://", "https://", "file:"};
    for (size_t i = 0; i < 3; i++) {
        if (!has_prefix_nocase(value, schemes[i]))
            continue;
        if (value[strlen(schemes[i])] == '\0') {
            kerr(p, d, "'%.200s' is an incomplete URL", value);
            return REPORTED;
        }
        /* file: is allowed or not once [upstream] has been read (post_checks) */
        if ((tl->source = strdup(value)) == NULL)
            return TG_ENOMEM;
        tl->source_is_url = 1;
        return 0;
    }
    const char *colon = strstr(value, "://");
    if (colon != NULL && memchr(value, '/', (size_t)(colon - value)) == NULL) {
        kerr(p, d, "unsupported URL scheme in '%.200s' (http, https or file)", value);
        return REPORTED;
    }
    tl->source_is_url = 0;
    return set_file(p, d, value, obj);
}

/* crl_url = <64 hex digits> <URL> */
static int set_crl_url(parse_t *p, const directive_t *d, const char *value, void *obj)
{
    tg_config_trustlist_t *tl = obj;
    if (tl->n_crl_urls == TG_CONFIG_MAX_CRL_URLS) {
        kerr(p, d, "too many (at most %d)", TG_CONFIG_MAX_CRL_URLS);
        return REPORTED;
    }
    tg_config_crl_url_t *o = &tl->crl_urls[tl->n_crl_urls];
    size_t i = 0;
    for (; i < 64; i++) {
        char ch = value[i];
        int v = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (v < 0)
            break;
        o->ca[i / 2] = (uint8_t)(i % 2 ? o->ca[i / 2] | v : v << 4);
    }
    const char *url = value + i;
    while (*url == ' ' || *url == '\t')
        url++;
    if (i != 64 || url == value + i) {
        kerr(p, d, "want '<SHA-256 of the CA certificate, 64 hex digits> <URL>', got '%.200s'",
             value);
        return REPORTED;
    }
    if (!has_prefix_nocase(url, "http://") && !has_prefix_nocase(url, "https://") &&
        !has_prefix_nocase(url, "file:")) {
        kerr(p, d, "unsupported URL scheme in '%.200s' (http, https or file)", url);
        return REPORTED;
    }
    for (size_t j = 0; j < tl->n_crl_urls; j++) {
        if (memcmp(tl->crl_urls[j].ca, o->ca, 32) == 0) {
            kerr(p, d, "a second URL for CA %.64s", value);
            return REPORTED;
        }
    }
    if ((o->url = strdup(url)) == NULL)
        return TG_ENOMEM;
    tl->n_crl_urls++;
    return 0;
}

static int set_tl_signer(parse_t *p, const directive_t *d, const char *value, void *obj)
{
    (void)obj;
    if (!valid_name(value)) {
        kerr(p, d, "'%.200s' is not a valid signer name ([a-z0-9_-]{1,32})", value);
        return REPORTED;
    }
    /* resolved against [signer NAME] sections once the whole file is read */
    snprintf(p->tl_signer[p->cur], sizeof(p->tl_signer[p->cur]), "%s", value);
    return 0;
}

/* Parses "a.b.c.d:port" or "[v6]:port" into l. Host names are refused: a
 * listener must not depend on DNS at start-up. Returns 0 or REPORTED. */
static int parse_listen(parse_t *p, const directive_t *d, const char *value, tg_config_listen_t *l)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_s;
    int family;
    if (value[0] == '[') {
        const char *close = strchr(value, ']');
        if (close == NULL) {
            kerr(p, d, "'%.200s': missing ']' after the IPv6 address", value);
            return REPORTED;
        }
        if (close[1] != ':') {
            kerr(p, d, "'%.200s': missing port (expected [ADDRESS]:PORT)", value);
            return REPORTED;
        }
        size_t n = (size_t)(close - value - 1);
        if (n == 0 || n >= sizeof(host)) {
            kerr(p, d, "'%.200s' is not an IPv6 address", value);
            return REPORTED;
        }
        memcpy(host, value + 1, n);
        host[n] = '\0';
        port_s = close + 2;
        family = AF_INET6;
    } else {
        const char *colon = strrchr(value, ':');
        if (colon == NULL) {
            kerr(p, d, "'%.200s': missing port (expected ADDRESS:PORT)", value);
            return REPORTED;
        }
        if (memchr(value, ':', (size_t)(colon - value)) != NULL) {
            kerr(p, d, "'%.200s': write IPv6 addresses in brackets, as [ADDRESS]:PORT", value);
            return REPORTED;
        }
        size_t n = (size_t)(colon - value);
        if (n == 0 || n >= sizeof(host)) {
            kerr(p, d, "'%.200s' is not an IPv4 address (host names are not accepted)", value);
            return REPORTED;
        }
        memcpy(host, value, n);
        host[n] = '\0';
        port_s = colon + 1;
        family = AF_INET;
    }

    uint64_t port = 0;
    int rc = parse_u64(port_s, &port);
    if (rc == -1) {
        kerr(p, d, "'%.200s': port '%.20s' is not a number", value, port_s);
        return REPORTED;
    }
    if (rc == -2 || port < 1 || port > 65535) {
        kerr(p, d, "'%.200s': port must be between 1 and 65535", value);
        return REPORTED;
    }

    memset(l, 0, sizeof(*l));
    char norm[INET6_ADDRSTRLEN];
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&l->addr;
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
            kerr(p, d, "'%.200s' is not an IPv4 address (host names are not accepted)", value);
            return REPORTED;
        }
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        l->addr_len = sizeof(*sin);
        inet_ntop(AF_INET, &sin->sin_addr, norm, sizeof(norm));
        snprintf(l->text, sizeof(l->text), "%s:%u", norm, (unsigned)port);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->addr;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            kerr(p, d, "'%.200s' is not an IPv6 address", value);
            return REPORTED;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        l->addr_len = sizeof(*sin6);
        inet_ntop(AF_INET6, &sin6->sin6_addr, norm, sizeof(norm));
        snprintf(l->text, sizeof(l->text), "[%s]:%u", norm, (unsigned)port);
    }
    return 0;
}

static int set_listen(parse_t *p, const directive_t *d, const char *value, void *obj)
{
    tg_config_t *cfg = obj;
    tg_config_listen_t l;
    if (parse_listen(p, d, value, &l) != 0)
        return REPORTED;
    for (size_t i = 0; i < cfg->n_listen; i++) {
        if (strcmp(cfg->listen[i].text, l.text) == 0) {
            kerr(p, d, "%s is already listed at line %u", l.text, p->listen_line[i]);
            return REPORTED;
        }
    }
    if (cfg->n_listen == TG_CONFIG_MAX_LISTEN) {
        kerr(p, d, "too many addresses (at most %d)", TG_CONFIG_MAX_LISTEN);
        return REPORTED;
    }
    p->listen_line[cfg->n_listen] = p->lineno;
    cfg->listen[cfg->n_listen++] = l;
    return 0;
}

/* ---- directive tables -------------------------------------------------- */

#define CFG(field) offsetof(tg_config_t, field)

static const directive_t server_dirs[] = {
    {"listen", set_listen, 0, 0, 0, true},
    {"workers", set_u32, CFG(workers), 0, WORKERS_MAX, false},
    {"max_connections", set_u32, CFG(max_connections), 1, 1000000, false},
    {"max_request_bytes", set_u32, CFG(max_request_bytes), 512, 16777216, false},
    {"header_timeout_ms", set_u32, CFG(header_timeout_ms), 100, 600000, false},
    {"idle_timeout_ms", set_u32, CFG(idle_timeout_ms), 100, 3600000, false},
    {"http_max_age_s", set_u32, CFG(http_max_age_s), 0, 604800, false},
    {"max_certids", set_u32, CFG(max_certids), 1, 1000, false},
    {"admin_socket", set_path, CFG(admin_socket), 0, 0, false},
    {"access_log", set_access_log, CFG(access_log), 0, 0, false},
    {"log_level", set_log_level, CFG(log_level), 0, 0, false},
    {NULL, NULL, 0, 0, 0, false},
};

static const directive_t cache_dirs[] = {
    {"path", set_path, CFG(cache_path), 0, 0, false},
    {"map_size_mb", set_u64, CFG(map_size_mb), 1, 1048576, false},
    {NULL, NULL, 0, 0, 0, false},
};

static const directive_t upstream_dirs[] = {
    {"timeout_ms", set_u32, CFG(upstream_timeout_ms), 1, 600000, false},
    {"refresh_ahead_s", set_u32, CFG(refresh_ahead_s), 0, 86400, false},
    {"max_crl_bytes", set_u64, CFG(max_crl_bytes), 1024, 68719476736ULL, false},
    {"allow_file_urls", set_bool, CFG(allow_file_urls), 0, 0, false},
    {NULL, NULL, 0, 0, 0, false},
};

enum { SD_CERT, SD_KEY };
static const directive_t signer_dirs[] = {
    [SD_CERT] = {"cert", set_file, offsetof(tg_config_signer_t, cert), 0, 0, false},
    [SD_KEY] = {"key", set_key, offsetof(tg_config_signer_t, key), 0, 0, false},
    {NULL, NULL, 0, 0, 0, false},
};

enum { TD_SOURCE, TD_OPERATOR_CERT, TD_REFRESH, TD_SIGNER, TD_MODE, TD_CRL_URL };
#define TL(field) offsetof(tg_config_trustlist_t, field)
static const directive_t trustlist_dirs[] = {
    [TD_SOURCE] = {"source", set_source, TL(source), 0, 0, false},
    [TD_OPERATOR_CERT] = {"operator_cert", set_operator_cert, 0, 0, 0, true},
    [TD_REFRESH] = {"refresh_s", set_u32, TL(refresh_s), 1, 604800, false},
    [TD_SIGNER] = {"signer", set_tl_signer, 0, 0, 0, false},
    [TD_MODE] = {"mode", set_mode, TL(mode), 0, 0, false},
    [TD_CRL_URL] = {"crl_url", set_crl_url, 0, 0, 0, true},
    {NULL, NULL, 0, 0, 0, false},
};

#define N_DIRS(t) (sizeof(t) / sizeof((t)[0]) - 1)
_Static_assert(N_DIRS(server_dirs) <= MAX_KEYS, "raise MAX_KEYS");
_Static_assert(N_DIRS(cache_dirs) <= MAX_KEYS, "raise MAX_KEYS");
_Static_assert(N_DIRS(upstream_dirs) <= MAX_KEYS, "raise MAX_KEYS");
_Static_assert(N_DIRS(signer_dirs) <= MAX_KEYS, "raise MAX_KEYS");
_Static_assert(N_DIRS(trustlist_dirs) <= MAX_KEYS, "raise MAX_KEYS");

/* ---- sections ---------------------------------------------------------- */

static void enter(parse_t *p, enum sect s, void *obj, const directive_t *dirs, sect_meta_t *meta)
{
    p->sect = s;
    p->obj = obj;
    p->dirs = dirs;
    p->meta = meta;
}

static void open_fixed(parse_t *p, const char *type, const char *name, enum sect s,
                       const directive_t *dirs, sect_meta_t *meta)
{
    if (*name != '\0') {
        perr(p, p->lineno, "section [%s] takes no name", type);
        return;
    }
    if (meta->line != 0) {
        perr(p, p->lineno, "duplicate section [%s] (first at line %u)", type, meta->line);
        return;
    }
    meta->line = p->lineno;
    snprintf(p->label, sizeof(p->label), "%s", type);
    enter(p, s, p->cfg, dirs, meta);
}

static void init_trustlist(tg_config_trustlist_t *tl)
{
    tl->refresh_s = 300;
    tl->signer = -1;
    tl->mode = TG_TL_MODE_RELAY;
}

/* [signer NAME] or [trustlist NAME]. */
static void open_named(parse_t *p, const char *type, const char *name, const char *extra,
                       enum sect s)
{
    if (*name == '\0') {
        perr(p, p->lineno, "section [%s] needs a name: [%s NAME]", type, type);
        return;
    }
    if (*extra != '\0' || !valid_name(name)) {
        perr(p, p->lineno, "section [%s %.200s%s%.200s]: invalid name (expected [a-z0-9_-]{1,%d})",
             type, name, *extra ? " " : "", extra, TG_CONFIG_NAME_MAX);
        return;
    }
    tg_config_t *cfg = p->cfg;
    bool signer = s == SEC_SIGNER;
    size_t n = signer ? cfg->n_signers : cfg->n_trustlists;
    for (size_t i = 0; i < n; i++) {
        const char *other = signer ? cfg->signers[i].name : cfg->trustlists[i].name;
        if (strcmp(other, name) == 0) {
            perr(p, p->lineno, "duplicate section [%s %s] (first at line %u)", type, name,
                 signer ? p->signer_meta[i].line : p->tl_meta[i].line);
            return;
        }
    }
    size_t max = signer ? TG_CONFIG_MAX_SIGNERS : TG_CONFIG_MAX_TRUSTLISTS;
    if (n == max) {
        perr(p, p->lineno, "too many [%s] sections (at most %zu)", type, max);
        return;
    }
    snprintf(p->label, sizeof(p->label), "%s %s", type, name);
    p->cur = n;
    if (signer) {
        tg_config_signer_t *sg = &cfg->signers[cfg->n_signers++];
        snprintf(sg->name, sizeof(sg->name), "%s", name);
        p->signer_meta[n].line = p->lineno;
        enter(p, s, sg, signer_dirs, &p->signer_meta[n]);
    } else {
        tg_config_trustlist_t *tl = &cfg->trustlists[cfg->n_trustlists++];
        snprintf(tl->name, sizeof(tl->name), "%s", name);
        init_trustlist(tl);
        p->tl_meta[n].line = p->lineno;
        enter(p, s, tl, trustlist_dirs, &p->tl_meta[n]);
    }
}

/* text: what is between the brackets, modified in place. */
static void open_section(parse_t *p, char *text)
{
    p->sect = SEC_BROKEN; /* until proven otherwise */
    char *type = skip_space(text);
    trim_end(type);
    char *name = type;
    while (*name && !is_space(*name))
        name++;
    if (*name)
        *name++ = '\0';
    name = skip_space(name);
    char *extra = name;
    while (*extra && !is_space(*extra))
        extra++;
    if (*extra)
        *extra++ = '\0';
    extra = skip_space(extra);

    if (strcmp(type, "server") == 0)
        open_fixed(p, type, name, SEC_SERVER, server_dirs, &p->server);
    else if (strcmp(type, "cache") == 0)
        open_fixed(p, type, name, SEC_CACHE, cache_dirs, &p->cache);
    else if (strcmp(type, "upstream") == 0)
        open_fixed(p, type, name, SEC_UPSTREAM, upstream_dirs, &p->upstream);
    else if (strcmp(type, "signer") == 0)
        open_named(p, type, name, extra, SEC_SIGNER);
    else if (strcmp(type, "trustlist") == 0)
        open_named(p, type, name, extra, SEC_TRUSTLIST);
    else
        perr(p, p->lineno, "unknown section [%.200s%s%.200s%s%.200s]", type, *name ? " " : "", name,
             *extra ? " " : "", extra);
}

/* ---- the line reader --------------------------------------------------- */

/* Reads one physical line into p->raw without its line ending. Returns
 * false at the end of input. */
static bool read_raw(parse_t *p, size_t *out_len, bool *out_long, bool *out_nul)
{
    size_t n = 0;
    bool any = false, too_long = false, nul = false;
    for (;;) {
        int c;
        if (p->fp != NULL) {
            c = getc(p->fp);
            if (c == EOF)
                break;
        } else {
            if (p->text_left == 0)
                break;
            c = (unsigned char)*p->text++;
            p->text_left--;
        }
        any = true;
        if (c == '\n')
            break;
        if (c == '\0')
            nul = true;
        if (n < TG_CONFIG_MAX_LINE + 1)
            p->raw[n++] = (char)c;
        else
            too_long = true; /* keep draining to the end of the line */
    }
    if (!any)
        return false;
    if (n > 0 && p->raw[n - 1] == '\r')
        n--;
    if (n > TG_CONFIG_MAX_LINE)
        too_long = true;
    p->raw[n] = '\0';
    *out_len = n;
    *out_long = too_long;
    *out_nul = nul;
    return true;
}

/* Checks a line before inih sees it and opens sections. Returns false for a
 * line that was reported and must reach inih as a blank line. */
static bool check_line(parse_t *p, bool too_long, bool nul)
{
    if (too_long) {
        perr(p, p->lineno, "line is longer than %d bytes", TG_CONFIG_MAX_LINE);
        return false;
    }
    if (nul) {
        perr(p, p->lineno, "NUL byte in line");
        return false;
    }
    char *s = p->raw;
    if (p->lineno == 1 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3; /* UTF-8 BOM, which inih skips too */
    bool indented = is_space(*s);
    s = skip_space(s);
    if (*s == '\0' || *s == ';' || *s == '#')
        return true;

    if (*s == '[') {
        p->prev_was_key = false;
        char *end = find_sep(s + 1, "]");
        if (*end != ']') {
            perr(p, p->lineno, "syntax error: section header without ']'");
            p->sect = SEC_BROKEN;
            return false;
        }
        char *rest = skip_space(end + 1);
        if (*rest != '\0' && *rest != ';' && *rest != '#') {
            perr(p, p->lineno, "syntax error: text after the section header");
            p->sect = SEC_BROKEN;
            return false;
        }
        /* open_section works on a copy: inih still needs the line */
        char text[TG_CONFIG_MAX_LINE + 1];
        size_t n = (size_t)(end - (s + 1));
        memcpy(text, s + 1, n);
        text[n] = '\0';
        open_section(p, text);
        return true;
    }

    char *sep = find_sep(s, "=:");
    if (*sep != '=') {
        /* Multiline values are off (SPEC §3 has none): an indented line
         * after a key would be a Python-style continuation; say so. */
        if (indented && p->prev_was_key)
            perr(p, p->lineno, "[%s] %s: continuation lines are not supported", p->label,
                 p->prev_key);
        else
            perr(p, p->lineno, "syntax error: expected 'key = value'");
        return false;
    }
    size_t klen = (size_t)(sep - s);
    while (klen > 0 && is_space(s[klen - 1]))
        klen--;
    if (klen == 0) {
        perr(p, p->lineno, "syntax error: missing key before '='");
        return false;
    }
    if (klen >= sizeof(p->prev_key))
        klen = sizeof(p->prev_key) - 1;
    memcpy(p->prev_key, s, klen);
    p->prev_key[klen] = '\0';
    trim_end(p->prev_key);
    p->prev_was_key = true;
    return true;
}

/* ini_reader: hands inih one line per call, numbered in p->lineno. */
static char *ini_read(char *str, int num, void *stream)
{
    parse_t *p = stream;
    size_t len;
    bool too_long, nul;
    if (!read_raw(p, &len, &too_long, &nul))
        return NULL;
    p->lineno++;
    /* inih's buffer is ini_max_line = TG_CONFIG_MAX_LINE + 3 bytes; a
     * smaller one would truncate, so treat that as too long as well. */
    if (num < 2 || len + 2 > (size_t)num)
        too_long = true;
    if (!check_line(p, too_long, nul)) {
        if (num < 2)
            return NULL;
        memcpy(str, "\n", 2);
        return str;
    }
    memcpy(str, p->raw, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    return str;
}

/* ini_handler: one call per "key = value" line, in the section that
 * check_line opened for it. Always returns 1: problems are reported here,
 * so that inih's own error (the first syntax error) means only that. */
static int on_key(void *user, const char *section, const char *key, const char *value)
{
    parse_t *p = user;
    (void)section; /* truncated to 49 bytes by inih; p->label is exact */
    if (p->sect == SEC_BROKEN)
        return 1;
    if (p->sect == SEC_NONE) {
        perr(p, p->lineno, "%.64s: key outside of any section", key);
        return 1;
    }
    size_t i = 0;
    while (p->dirs[i].key != NULL && strcmp(p->dirs[i].key, key) != 0)
        i++;
    const directive_t *d = &p->dirs[i];
    if (d->key == NULL) {
        perr(p, p->lineno, "[%s] %.64s: unknown key", p->label, key);
        return 1;
    }
    unsigned *first = &p->meta->key_line[i];
    if (*first != 0 && !d->repeatable) {
        kerr(p, d, "duplicate key (first set at line %u)", *first);
        return 1;
    }
    if (*first == 0)
        *first = p->lineno;
    if (*value == '\0') {
        kerr(p, d, "empty value");
        return 1;
    }
    if (d->set(p, d, value, p->obj) == TG_ENOMEM)
        p->oom = true;
    return 1;
}

/* ---- whole-file checks ------------------------------------------------- */

static void post_checks(parse_t *p)
{
    tg_config_t *cfg = p->cfg;
    for (size_t i = 0; i < cfg->n_signers; i++) {
        const tg_config_signer_t *sg = &cfg->signers[i];
        const sect_meta_t *m = &p->signer_meta[i];
        if (m->key_line[SD_CERT] == 0)
            perr(p, m->line, "[signer %s] cert: missing (required)", sg->name);
        if (m->key_line[SD_KEY] == 0)
            perr(p, m->line, "[signer %s] key: missing (required)", sg->name);
    }
    for (size_t i = 0; i < cfg->n_trustlists; i++) {
        tg_config_trustlist_t *tl = &cfg->trustlists[i];
        const sect_meta_t *m = &p->tl_meta[i];
        if (m->key_line[TD_SOURCE] == 0)
            perr(p, m->line, "[trustlist %s] source: missing (required)", tl->name);
        if (m->key_line[TD_OPERATOR_CERT] == 0)
            perr(p, m->line, "[trustlist %s] operator_cert: missing (at least one required)",
                 tl->name);
        if (tl->source != NULL && has_prefix_nocase(tl->source, "file:") && !cfg->allow_file_urls)
            perr(p, m->key_line[TD_SOURCE],
                 "[trustlist %s] source: file: URLs need [upstream] allow_file_urls = yes",
                 tl->name);
        for (size_t j = 0; j < tl->n_crl_urls; j++) {
            if (has_prefix_nocase(tl->crl_urls[j].url, "file:") && !cfg->allow_file_urls) {
                perr(p, m->key_line[TD_CRL_URL],
                     "[trustlist %s] crl_url: file: URLs need [upstream] allow_file_urls = yes",
                     tl->name);
                break;
            }
        }
        if (p->tl_signer[i][0] != '\0') {
            for (size_t j = 0; j < cfg->n_signers; j++) {
                if (strcmp(cfg->signers[j].name, p->tl_signer[i]) == 0)
                    tl->signer = (int)j;
            }
            if (tl->signer < 0)
                perr(p, m->key_line[TD_SIGNER], "[trustlist %s] signer: no [signer %s] section",
                     tl->name, p->tl_signer[i]);
        }
        /* SPEC §5: sign mode answers with the list's own signer */
        if (tl->mode == TG_TL_MODE_SIGN && m->key_line[TD_SIGNER] == 0)
            perr(p, m->key_line[TD_MODE], "[trustlist %s] mode: sign needs a signer", tl->name);
    }
}

/* ---- defaults ---------------------------------------------------------- */

static uint32_t core_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > WORKERS_MAX ? WORKERS_MAX : (uint32_t)n;
}

static void set_number_defaults(tg_config_t *cfg)
{
    cfg->workers = 0;
    cfg->max_connections = 10000;
    cfg->max_request_bytes = 16384;
    cfg->header_timeout_ms = 5000;
    cfg->idle_timeout_ms = 60000;
    cfg->http_max_age_s = 60;
    cfg->max_certids = 16;
    cfg->log_level = TG_LOG_INFO;
    cfg->map_size_mb = 4096;
    cfg->upstream_timeout_ms = 3000;
    cfg->refresh_ahead_s = 600;
    cfg->max_crl_bytes = 134217728;
    cfg->allow_file_urls = 0;
}

static void add_default_listen(tg_config_t *cfg)
{
    tg_config_listen_t *l = &cfg->listen[0];
    memset(l, 0, sizeof(*l));
    struct sockaddr_in *sin = (struct sockaddr_in *)&l->addr;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(8080);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l->addr_len = sizeof(*sin);
    snprintf(l->text, sizeof(l->text), "127.0.0.1:8080");
    cfg->n_listen = 1;
}

/* Fills in what the file left out. Paths resolve against base (the
 * config's directory), like paths written in the file. Returns 0 or
 * TG_ENOMEM. */
static int finish(tg_config_t *cfg, const char *base)
{
    if (cfg->n_listen == 0)
        add_default_listen(cfg);
    if (cfg->workers == 0)
        cfg->workers = core_count();
    if (cfg->cache_path == NULL && (cfg->cache_path = path_join(base, "var/cache")) == NULL)
        return TG_ENOMEM;
    if (cfg->admin_socket == NULL &&
        (cfg->admin_socket = path_join(base, "var/admin.sock")) == NULL)
        return TG_ENOMEM;
    return 0;
}

/* ---- public ------------------------------------------------------------ */

/* libinih's options are process globals in this build: set them under a
 * lock for every parse. */
static pthread_mutex_t ini_lock = PTHREAD_MUTEX_INITIALIZER;
static char start_comment_prefixes[] = ";#";
static char inline_comment_prefixes[] = ";";

static int run_inih(parse_t *p)
{
    pthread_mutex_lock(&ini_lock);
    ini_allow_multiline = false;
    ini_allow_bom = true;
    ini_start_comment_prefixes = start_comment_prefixes;
    ini_allow_inline_comments = true;
    ini_inline_comment_prefixes = inline_comment_prefixes;
    ini_use_stack = true;
    ini_max_line = TG_CONFIG_MAX_LINE + 3; /* '\r', '\n', '\0' */
    ini_allow_realloc = false;
    ini_stop_on_first_error = false;
    ini_allow_no_value = false;
    int rc = ini_parse_stream(ini_read, p, on_key, p);
    pthread_mutex_unlock(&ini_lock);
    return rc;
}

/* The common body of both loaders: exactly one of fp and text is set. */
static int load(const char *name, FILE *fp, const char *text, tg_config_t **out_cfg)
{
    int ret = TG_ENOMEM;
    parse_t *p = calloc(1, sizeof(*p));
    tg_config_t *cfg = calloc(1, sizeof(*cfg));
    if (p == NULL || cfg == NULL)
        goto out;
    p->name = name;
    p->cfg = cfg;
    p->fp = fp;
    p->text = text;
    p->text_left = text != NULL ? strlen(text) : 0;
    set_number_defaults(cfg);
    if ((cfg->path = path_absolute(name)) == NULL || (p->base = path_dir(cfg->path)) == NULL)
        goto out;

    int rc = run_inih(p);
    if (rc == -2) {
        p->oom = true;
    } else if (rc < 0) {
        tg_error("%s: cannot parse (inih error %d)", name, rc);
        p->n_errors++;
    } else if (rc > 0) {
        perr(p, (unsigned)rc, "syntax error"); /* one check_line did not catch */
    }
    if (fp != NULL && ferror(fp)) {
        char eb[128];
        tg_error("%s: read error: %s", name, errno_text(errno, eb, sizeof(eb)));
        p->n_errors++;
    }
    if (!p->oom)
        post_checks(p);
    if (p->oom || finish(cfg, p->base) != 0) {
        ret = TG_ENOMEM;
        goto out;
    }
    if (p->n_errors > 0) {
        ret = TG_ECONFIG;
        goto out;
    }
    *out_cfg = cfg;
    cfg = NULL;
    ret = 0;
out:
    if (ret == TG_ENOMEM)
        tg_error("%s: out of memory while reading the configuration", name);
    tg_config_free(cfg);
    if (p != NULL)
        free(p->base);
    free(p);
    return ret;
}

int tg_config_load(const char *path, tg_config_t **out_cfg)
{
    FILE *fp = fopen(path, "re");
    if (fp == NULL) {
        int e = errno;
        char eb[128];
        tg_error("%s: cannot open: %s", path, errno_text(e, eb, sizeof(eb)));
        return e == ENOMEM ? TG_ENOMEM : TG_ECONFIG;
    }
    int rc = load(path, fp, NULL, out_cfg);
    fclose(fp);
    return rc;
}

int tg_config_load_string(const char *name, const char *text, tg_config_t **out_cfg)
{
    return load(name != NULL ? name : "<string>", NULL, text != NULL ? text : "", out_cfg);
}

tg_config_t *tg_config_default(void)
{
    tg_config_t *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return NULL;
    set_number_defaults(cfg);
    add_default_listen(cfg);
    cfg->workers = core_count();
    cfg->cache_path = strdup("var/cache");
    cfg->admin_socket = strdup("var/admin.sock");
    if (cfg->cache_path == NULL || cfg->admin_socket == NULL) {
        tg_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void tg_config_free(tg_config_t *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->path);
    free(cfg->admin_socket);
    free(cfg->access_log);
    free(cfg->cache_path);
    for (size_t i = 0; i < cfg->n_signers; i++) {
        free(cfg->signers[i].cert);
        free(cfg->signers[i].key);
    }
    for (size_t i = 0; i < cfg->n_trustlists; i++) {
        tg_config_trustlist_t *tl = &cfg->trustlists[i];
        free(tl->source);
        for (size_t j = 0; j < tl->n_operator_certs; j++)
            free(tl->operator_certs[j]);
        for (size_t j = 0; j < tl->n_crl_urls; j++)
            free(tl->crl_urls[j].url);
    }
    free(cfg);
}

static const char *level_name(int level)
{
    switch (level) {
    case TG_LOG_DEBUG: return "debug";
    case TG_LOG_INFO: return "info";
    case TG_LOG_WARN: return "warn";
    case TG_LOG_ERROR: return "error";
    default: return "?";
    }
}

void tg_config_print_summary(const tg_config_t *cfg, FILE *out)
{
    fprintf(out, "configuration: %s\n", cfg->path != NULL ? cfg->path : "(built-in default)");
    fprintf(out, "server:\n  listen:");
    for (size_t i = 0; i < cfg->n_listen; i++)
        fprintf(out, "%s %s", i ? "," : "", cfg->listen[i].text);
    fprintf(out, "\n  workers: %u\n", cfg->workers);
    fprintf(out, "  max_connections: %u\n", cfg->max_connections);
    fprintf(out, "  max_request_bytes: %u\n", cfg->max_request_bytes);
    fprintf(out, "  header_timeout_ms: %u\n", cfg->header_timeout_ms);
    fprintf(out, "  idle_timeout_ms: %u\n", cfg->idle_timeout_ms);
    fprintf(out, "  http_max_age_s: %u\n", cfg->http_max_age_s);
    fprintf(out, "  max_certids: %u\n", cfg->max_certids);
    fprintf(out, "  admin_socket: %s\n", cfg->admin_socket ? cfg->admin_socket : "(none)");
    fprintf(out, "  access_log: %s\n",
            cfg->access_log == NULL             ? "off"
            : strcmp(cfg->access_log, "-") == 0 ? "stderr"
                                                : cfg->access_log);
    fprintf(out, "  log_level: %s\n", level_name(cfg->log_level));
    fprintf(out, "cache:\n  path: %s\n  map_size_mb: %llu\n",
            cfg->cache_path ? cfg->cache_path : "(none)", (unsigned long long)cfg->map_size_mb);
    fprintf(out, "upstream:\n  timeout_ms: %u\n  refresh_ahead_s: %u\n", cfg->upstream_timeout_ms,
            cfg->refresh_ahead_s);
    fprintf(out, "  max_crl_bytes: %llu\n  allow_file_urls: %s\n",
            (unsigned long long)cfg->max_crl_bytes, cfg->allow_file_urls ? "yes" : "no");
    fprintf(out, "signers: %zu\n", cfg->n_signers);
    for (size_t i = 0; i < cfg->n_signers; i++) {
        const tg_config_signer_t *sg = &cfg->signers[i];
        fprintf(out, "  [signer %s]\n    cert: %s\n    key: %s\n", sg->name, sg->cert, sg->key);
    }
    fprintf(out, "trust lists: %zu\n", cfg->n_trustlists);
    for (size_t i = 0; i < cfg->n_trustlists; i++) {
        const tg_config_trustlist_t *tl = &cfg->trustlists[i];
        fprintf(out, "  [trustlist %s]\n    source: %s (%s)\n", tl->name, tl->source,
                tl->source_is_url ? "URL" : "file");
        fprintf(out, "    operator certs: %zu\n", tl->n_operator_certs);
        for (size_t j = 0; j < tl->n_operator_certs; j++)
            fprintf(out, "      %s\n", tl->operator_certs[j]);
        for (size_t j = 0; j < tl->n_crl_urls; j++) {
            char hex[65];
            tg_hex_encode(tl->crl_urls[j].ca, 32, 0, hex);
            fprintf(out, "    CRL of CA %s from %s\n", hex, tl->crl_urls[j].url);
        }
        fprintf(out, "    refresh_s: %u\n", tl->refresh_s);
        fprintf(out, "    signer: %s\n",
                tl->signer >= 0 && (size_t)tl->signer < cfg->n_signers
                    ? cfg->signers[tl->signer].name
                    : "(none)");
        fprintf(out, "    mode: %s\n", tl->mode == TG_TL_MODE_SIGN ? "sign" : "relay");
    }
}
