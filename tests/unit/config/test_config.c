/* Unit tests for config/: the INI format of SPEC §3, its defaults, and that
 * every error names FILE:LINE, the section and the key. */
#include "config/config.h"

#include "common/log.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh directory per test, holding stand-ins for the PEM files (their
 * contents are not read by config/). Criterion forks per test, so chdir and
 * fd juggling stay local to one test. */
#define PBUF (PATH_MAX + 64) /* a path under tmpdir */
static char tmpdir[PATH_MAX];
static char cert_path[PBUF], key_path[PBUF], op_path[PBUF], op2_path[PBUF];
static const char *cert_name, *key_name, *op_name, *op2_name;
static char ini_name[PBUF]; /* tmpdir/t.ini: the name messages use */

static const char *base_name(const char *path)
{
    return strrchr(path, '/') + 1;
}

static void make_file(char *out, const char *dir, const char *prefix)
{
    snprintf(out, PBUF, "%s/%sXXXXXX", dir, prefix);
    int fd = mkstemp(out);
    cr_assert(fd >= 0, "mkstemp %s", out);
    static const char pem[] = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
    cr_assert(write(fd, pem, sizeof(pem) - 1) == (ssize_t)(sizeof(pem) - 1));
    close(fd);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "fopen %s", path);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    char tmpl[] = "/tmp/tgcfgXXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    cr_assert_not_null(realpath(tmpl, tmpdir)); /* getcwd() would show the real path */
    make_file(cert_path, tmpdir, "cert");
    make_file(key_path, tmpdir, "key");
    make_file(op_path, tmpdir, "op");
    make_file(op2_path, tmpdir, "op2");
    cert_name = base_name(cert_path);
    key_name = base_name(key_path);
    op_name = base_name(op_path);
    op2_name = base_name(op2_path);
    snprintf(ini_name, sizeof(ini_name), "%s/t.ini", tmpdir);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(config, .init = setup, .fini = teardown);

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *fmt(const char *f, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, f);
    int n = vasprintf(&s, f, ap);
    va_end(ap);
    cr_assert(n >= 0);
    return s;
}

/* ---- stderr capture: tg_log writes to fd 2 ---------------------------- */

typedef struct {
    int saved;
    int fd;
    char path[PBUF];
} capture_t;

static void cap_begin(capture_t *c)
{
    snprintf(c->path, sizeof(c->path), "%s/stderrXXXXXX", tmpdir);
    c->fd = mkstemp(c->path);
    cr_assert(c->fd >= 0);
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    cr_assert(c->saved >= 0);
    cr_assert(dup2(c->fd, STDERR_FILENO) >= 0);
}

/* Returns what was written to stderr since cap_begin; the caller frees. */
static char *cap_end(capture_t *c)
{
    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    off_t size = lseek(c->fd, 0, SEEK_END);
    cr_assert(size >= 0);
    char *out = malloc((size_t)size + 1);
    cr_assert_not_null(out);
    cr_assert(pread(c->fd, out, (size_t)size, 0) == size);
    out[size] = '\0';
    close(c->fd);
    unlink(c->path);
    return out;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Parses text as if it were the file tmpdir/t.ini; returns the result code
 * and, in *out_log, everything logged (caller frees). */
static int load_text(const char *text, tg_config_t **out_cfg, char **out_log)
{
    capture_t c;
    cap_begin(&c);
    int rc = tg_config_load_string(ini_name, text, out_cfg);
    *out_log = cap_end(&c);
    return rc;
}

/* Expects text to be rejected with TG_ECONFIG, *out_cfg untouched, and
 * every string of the NULL-terminated list in the log. Returns the number
 * of error lines logged. */
static size_t expect_errors(const char *text, ...)
{
    tg_config_t sentinel;
    tg_config_t *cfg = &sentinel;
    char *log = NULL;
    int rc = load_text(text, &cfg, &log);
    cr_assert_eq(rc, TG_ECONFIG, "rc %d for:\n%s\nlog:\n%s", rc, text, log);
    cr_assert_eq(cfg, &sentinel, "out_cfg changed on failure");
    va_list ap;
    va_start(ap, text);
    const char *want;
    while ((want = va_arg(ap, const char *)) != NULL)
        cr_assert_not_null(strstr(log, want), "want \"%s\" in log:\n%s", want, log);
    va_end(ap);
    size_t n = count(log, "error [");
    free(log);
    return n;
}

/* Expects text to load; returns the config (caller frees). */
static tg_config_t *expect_ok(const char *text)
{
    tg_config_t *cfg = NULL;
    char *log = NULL;
    int rc = load_text(text, &cfg, &log);
    cr_assert_eq(rc, 0, "rc %d for:\n%s\nlog:\n%s", rc, text, log);
    cr_assert_not_null(cfg);
    free(log);
    return cfg;
}

/* ---- defaults ----------------------------------------------------------- */

Test(config, defaults)
{
    tg_config_t *cfg = tg_config_default();
    cr_assert_not_null(cfg);
    cr_assert_null(cfg->path);
    cr_assert_eq(cfg->n_listen, 1);
    cr_assert_str_eq(cfg->listen[0].text, "127.0.0.1:8080");
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&cfg->listen[0].addr;
    cr_assert_eq(sin->sin_family, AF_INET);
    cr_assert_eq(ntohs(sin->sin_port), 8080);
    cr_assert_eq(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    cr_assert_eq(cfg->listen[0].addr_len, sizeof(struct sockaddr_in));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cr_assert_eq(cfg->workers, (uint32_t)(cores < 1 ? 1 : cores));
    cr_assert_eq(cfg->max_connections, 10000);
    cr_assert_eq(cfg->max_request_bytes, 16384);
    cr_assert_eq(cfg->header_timeout_ms, 5000);
    cr_assert_eq(cfg->idle_timeout_ms, 60000);
    cr_assert_eq(cfg->http_max_age_s, 60);
    cr_assert_eq(cfg->max_certids, 16);
    cr_assert_str_eq(cfg->admin_socket, "var/admin.sock");
    cr_assert_null(cfg->access_log);
    cr_assert_eq(cfg->log_level, TG_LOG_INFO);
    cr_assert_str_eq(cfg->cache_path, "var/cache");
    cr_assert_eq(cfg->map_size_mb, 4096);
    cr_assert_eq(cfg->upstream_timeout_ms, 3000);
    cr_assert_eq(cfg->refresh_ahead_s, 600);
    cr_assert_eq(cfg->max_crl_bytes, 134217728);
    cr_assert_eq(cfg->allow_file_urls, 0);
    cr_assert_eq(cfg->n_signers, 0);
    cr_assert_eq(cfg->n_trustlists, 0);
    tg_config_free(cfg);
}

Test(config, empty_file_gets_defaults_resolved_against_its_directory)
{
    tg_config_t *cfg = expect_ok("; nothing here\n\n# nor here\n");
    cr_assert_str_eq(cfg->path, ini_name);
    cr_assert_eq(cfg->n_listen, 1);
    cr_assert_str_eq(cfg->listen[0].text, "127.0.0.1:8080");
    cr_assert(cfg->workers >= 1);
    char *cache = fmt("%s/var/cache", tmpdir);
    char *sock = fmt("%s/var/admin.sock", tmpdir);
    cr_assert_str_eq(cfg->cache_path, cache);
    cr_assert_str_eq(cfg->admin_socket, sock);
    free(cache);
    free(sock);
    tg_config_free(cfg);
}

Test(config, free_null)
{
    tg_config_free(NULL);
}

/* ---- a full, valid file -------------------------------------------------- */

Test(config, full_valid_config)
{
    char *hk_xml = fmt("%s/hk.xml", tmpdir);
    write_text(hk_xml, "<tsl/>\n");
    char *text = fmt("; trustgate, SPEC section 3\n"
                     "[server]\n"
                     "listen = 127.0.0.1:8080        ; repeatable\n"
                     "listen = [::1]:8443\n"
                     "workers = 3\n"
                     "max_connections = 20000\n"
                     "max_request_bytes = 32768\n"
                     "header_timeout_ms = 4000\n"
                     "idle_timeout_ms = 30000\n"
                     "http_max_age_s = 120\n"
                     "max_certids = 8\n"
                     "admin_socket = run/admin.sock  ; unix socket\n"
                     "access_log = -\n"
                     "log_level = debug\n"
                     "\n"
                     "[cache]\n"
                     "path = /var/lib/trustgate/cache\n"
                     "map_size_mb = 1024\n"
                     "\n"
                     "[upstream]\n"
                     "timeout_ms = 2500\n"
                     "refresh_ahead_s = 300\n"
                     "max_crl_bytes = 1048576\n"
                     "allow_file_urls = no\n"
                     "\n"
                     "[signer hk]\n"
                     "cert = %s\n"
                     "key = %s\n"
                     "[signer gd]\n"
                     "cert = %s\n"
                     "key = pkcs11:token=gd;object=responder\n"
                     "\n"
                     "[trustlist gd]\n"
                     "source = https://tl.example.cn/gd.xml\n"
                     "operator_cert = %s\n"
                     "operator_cert = %s\n"
                     "refresh_s = 600\n"
                     "signer = gd\n"
                     "mode = sign\n"
                     "[trustlist hk]\n"
                     "source = hk.xml\n"
                     "operator_cert = %s\n",
                     cert_name, key_name, cert_path, op_name, op2_name, op_path);
    tg_config_t *cfg = expect_ok(text);

    cr_assert_str_eq(cfg->path, ini_name);
    cr_assert_eq(cfg->n_listen, 2);
    cr_assert_str_eq(cfg->listen[0].text, "127.0.0.1:8080");
    cr_assert_str_eq(cfg->listen[1].text, "[::1]:8443");
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&cfg->listen[1].addr;
    cr_assert_eq(sin6->sin6_family, AF_INET6);
    cr_assert_eq(ntohs(sin6->sin6_port), 8443);
    cr_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
    cr_assert_eq(cfg->listen[1].addr_len, sizeof(struct sockaddr_in6));
    cr_assert_eq(cfg->workers, 3);
    cr_assert_eq(cfg->max_connections, 20000);
    cr_assert_eq(cfg->max_request_bytes, 32768);
    cr_assert_eq(cfg->header_timeout_ms, 4000);
    cr_assert_eq(cfg->idle_timeout_ms, 30000);
    cr_assert_eq(cfg->http_max_age_s, 120);
    cr_assert_eq(cfg->max_certids, 8);
    char *sock = fmt("%s/run/admin.sock", tmpdir);
    cr_assert_str_eq(cfg->admin_socket, sock);
    cr_assert_str_eq(cfg->access_log, "-");
    cr_assert_eq(cfg->log_level, TG_LOG_DEBUG);
    cr_assert_str_eq(cfg->cache_path, "/var/lib/trustgate/cache");
    cr_assert_eq(cfg->map_size_mb, 1024);
    cr_assert_eq(cfg->upstream_timeout_ms, 2500);
    cr_assert_eq(cfg->refresh_ahead_s, 300);
    cr_assert_eq(cfg->max_crl_bytes, 1048576);
    cr_assert_eq(cfg->allow_file_urls, 0);

    cr_assert_eq(cfg->n_signers, 2);
    cr_assert_str_eq(cfg->signers[0].name, "hk");
    cr_assert_str_eq(cfg->signers[0].cert, cert_path);
    cr_assert_str_eq(cfg->signers[0].key, key_path);
    cr_assert_str_eq(cfg->signers[1].name, "gd");
    cr_assert_str_eq(cfg->signers[1].cert, cert_path);
    cr_assert_str_eq(cfg->signers[1].key, "pkcs11:token=gd;object=responder");

    cr_assert_eq(cfg->n_trustlists, 2);
    const tg_config_trustlist_t *gd = &cfg->trustlists[0];
    cr_assert_str_eq(gd->name, "gd");
    cr_assert_str_eq(gd->source, "https://tl.example.cn/gd.xml");
    cr_assert_eq(gd->source_is_url, 1);
    cr_assert_eq(gd->n_operator_certs, 2);
    cr_assert_str_eq(gd->operator_certs[0], op_path);
    cr_assert_str_eq(gd->operator_certs[1], op2_path);
    cr_assert_eq(gd->refresh_s, 600);
    cr_assert_eq(gd->signer, 1);
    cr_assert_eq(gd->mode, TG_TL_MODE_SIGN);
    const tg_config_trustlist_t *hk = &cfg->trustlists[1];
    cr_assert_str_eq(hk->name, "hk");
    cr_assert_str_eq(hk->source, hk_xml);
    cr_assert_eq(hk->source_is_url, 0);
    cr_assert_eq(hk->n_operator_certs, 1);
    cr_assert_eq(hk->refresh_s, 300);
    cr_assert_eq(hk->signer, -1);
    cr_assert_eq(hk->mode, TG_TL_MODE_RELAY);

    /* the summary names what an operator checks */
    char *sum = NULL;
    size_t sum_len = 0;
    FILE *out = open_memstream(&sum, &sum_len);
    cr_assert_not_null(out);
    tg_config_print_summary(cfg, out);
    fclose(out);
    const char *want[] = {"127.0.0.1:8080, [::1]:8443",
                          "workers: 3",
                          "max_connections: 20000",
                          "access_log: stderr",
                          "map_size_mb: 1024",
                          "[signer gd]",
                          "pkcs11:token=gd;object=responder",
                          "[trustlist gd]",
                          "https://tl.example.cn/gd.xml (URL)",
                          "operator certs: 2",
                          "signer: gd",
                          "mode: sign",
                          "[trustlist hk]",
                          "(file)",
                          "signer: (none)",
                          "mode: relay"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_assert_not_null(strstr(sum, want[i]), "want \"%s\" in summary:\n%s", want[i], sum);
    free(sum);

    free(sock);
    free(text);
    free(hk_xml);
    tg_config_free(cfg);
}

Test(config, load_from_file_with_bom_crlf_and_relative_name)
{
    char *sub = fmt("%s/etc", tmpdir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    char *path = fmt("%s/tg.ini", sub);
    char *text = fmt("\xEF\xBB\xBF[server]\r\n"
                     "workers = 2\r\n"
                     "[signer a]\r\n"
                     "cert = ../%s\r\n"
                     "key = ../%s\r\n",
                     cert_name, key_name);
    write_text(path, text);
    cr_assert_eq(chdir(tmpdir), 0);

    tg_config_t *cfg = NULL;
    cr_assert_eq(tg_config_load("etc/tg.ini", &cfg), 0);
    cr_assert_str_eq(cfg->path, path); /* absolute */
    cr_assert_eq(cfg->workers, 2);
    char *want_cert = fmt("%s/../%s", sub, cert_name);
    cr_assert_str_eq(cfg->signers[0].cert, want_cert);
    char *cache = fmt("%s/var/cache", sub);
    cr_assert_str_eq(cfg->cache_path, cache);
    tg_config_free(cfg);

    free(cache);
    free(want_cert);
    free(text);
    free(path);
    free(sub);
}

Test(config, load_missing_file)
{
    char *path = fmt("%s/nope.ini", tmpdir);
    tg_config_t sentinel;
    tg_config_t *cfg = &sentinel;
    capture_t c;
    cap_begin(&c);
    int rc = tg_config_load(path, &cfg);
    char *log = cap_end(&c);
    cr_assert_eq(rc, TG_ECONFIG);
    cr_assert_eq(cfg, &sentinel);
    char *want = fmt("%s: cannot open: No such file or directory", path);
    cr_assert_not_null(strstr(log, want), "log: %s", log);
    free(want);
    free(log);
    free(path);
}

Test(config, load_file_errors_name_the_file)
{
    char *path = fmt("%s/bad.ini", tmpdir);
    write_text(path, "[server]\nworkers = x\n");
    tg_config_t *cfg = NULL;
    capture_t c;
    cap_begin(&c);
    int rc = tg_config_load(path, &cfg);
    char *log = cap_end(&c);
    cr_assert_eq(rc, TG_ECONFIG);
    cr_assert_null(cfg);
    char *want = fmt("%s:2: [server] workers: expected a decimal number, got 'x'", path);
    cr_assert_not_null(strstr(log, want), "log: %s", log);
    free(want);
    free(log);
    free(path);
}

/* ---- relative paths -------------------------------------------------------- */

Test(config, relative_paths_resolve_against_the_config_directory)
{
    char *sub = fmt("%s/conf", tmpdir);
    char *certs = fmt("%s/conf/certs", tmpdir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    cr_assert_eq(mkdir(certs, 0700), 0);
    char c_path[PBUF], k_path[PBUF];
    make_file(c_path, certs, "c");
    make_file(k_path, certs, "k");
    char *name = fmt("%s/conf/main.ini", tmpdir);
    char *text = fmt("[server]\n"
                     "admin_socket = admin.sock\n"
                     "access_log = logs//access.log\n"
                     "[cache]\n"
                     "path = ./db/\n"
                     "[signer a]\n"
                     "cert = certs/%s\n"
                     "key = ./certs/./%s\n",
                     base_name(c_path), base_name(k_path));
    cr_assert_eq(chdir("/"), 0); /* the working directory must not matter */
    tg_config_t *cfg = NULL;
    capture_t c;
    cap_begin(&c);
    int rc = tg_config_load_string(name, text, &cfg);
    char *log = cap_end(&c);
    cr_assert_eq(rc, 0, "log: %s", log);
    char *want;
    want = fmt("%s/admin.sock", sub);
    cr_assert_str_eq(cfg->admin_socket, want);
    free(want);
    want = fmt("%s/logs/access.log", sub);
    cr_assert_str_eq(cfg->access_log, want);
    free(want);
    want = fmt("%s/db", sub);
    cr_assert_str_eq(cfg->cache_path, want);
    free(want);
    cr_assert_str_eq(cfg->signers[0].cert, c_path);
    cr_assert_str_eq(cfg->signers[0].key, k_path);
    tg_config_free(cfg);
    free(log);
    free(text);
    free(name);
    free(certs);
    free(sub);
}

Test(config, relative_name_resolves_against_the_working_directory)
{
    cr_assert_eq(chdir(tmpdir), 0);
    char *text = fmt("[signer a]\ncert = %s\nkey = %s\n", cert_name, key_name);
    tg_config_t *cfg = NULL;
    capture_t c;
    cap_begin(&c);
    int rc = tg_config_load_string("x.ini", text, &cfg);
    char *log = cap_end(&c);
    cr_assert_eq(rc, 0, "log: %s", log);
    char *want = fmt("%s/x.ini", tmpdir);
    cr_assert_str_eq(cfg->path, want);
    cr_assert_str_eq(cfg->signers[0].cert, cert_path);
    tg_config_free(cfg);
    free(want);
    free(log);
    free(text);
}

/* ---- syntax ---------------------------------------------------------------- */

Test(config, inline_comments_and_whitespace)
{
    tg_config_t *cfg = expect_ok("  [server]   ; the server\n"
                                 "\tworkers=7 ;a comment needs a space before it\n"
                                 "max_certids   =   9   ; comment\n"
                                 "# hash comment\n");
    cr_assert_eq(cfg->workers, 7);
    cr_assert_eq(cfg->max_certids, 9);
    tg_config_free(cfg);
}

Test(config, syntax_errors)
{
    size_t n = expect_errors("[server]\n"
                             "just some words\n"
                             "[cache\n"
                             "path = x\n"
                             "listen: 127.0.0.1:80\n"
                             "[cache] junk\n"
                             "workers = 2\n"
                             "[upstream]\n"
                             "  = 5\n",
                             "t.ini:2: syntax error: expected 'key = value'",
                             "t.ini:3: syntax error: section header without ']'",
                             "t.ini:5: syntax error: expected 'key = value'",
                             "t.ini:6: syntax error: text after the section header",
                             "t.ini:9: syntax error: missing key before '='", NULL);
    /* keys under a broken header are skipped, not reported again */
    cr_assert_eq(n, 5);
}

Test(config, multiline_continuation_rejected)
{
    char *text = fmt("[trustlist gd]\n"
                     "operator_cert = %s\n"
                     "source = https://a.example/gd.xml\n"
                     "    https://b.example/gd.xml\n",
                     op_name);
    size_t n = expect_errors(
        text, "t.ini:4: [trustlist gd] source: continuation lines are not supported", NULL);
    cr_assert_eq(n, 1);
    free(text);
}

Test(config, overlong_line_rejected_and_counting_goes_on)
{
    char pad[5000];
    memset(pad, 'a', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    char *text = fmt("[server]\n"
                     "admin_socket = %s\n"
                     "\n"
                     "bogus = 1\n",
                     pad);
    size_t n = expect_errors(text, "t.ini:2: line is longer than 4096 bytes",
                             "t.ini:4: [server] bogus: unknown key", NULL);
    cr_assert_eq(n, 2);
    free(text);
}

Test(config, longest_line_accepted)
{
    /* exactly TG_CONFIG_MAX_LINE bytes, then the same plus one */
    const char *prefix = "admin_socket = /";
    size_t fill = TG_CONFIG_MAX_LINE - strlen(prefix);
    char *pad = malloc(fill + 2);
    memset(pad, 'b', fill + 1);
    pad[fill] = '\0';
    char *text = fmt("[server]\r\n%s%s\r\n", prefix, pad);
    tg_config_t *cfg = expect_ok(text);
    cr_assert_eq(strlen(cfg->admin_socket), fill + 1);
    tg_config_free(cfg);
    free(text);

    pad[fill] = 'b';
    pad[fill + 1] = '\0';
    text = fmt("[server]\n%s%s\n", prefix, pad);
    expect_errors(text, "t.ini:2: line is longer than 4096 bytes", NULL);
    free(text);
    free(pad);
}

Test(config, key_outside_section)
{
    expect_errors("workers = 2\n[server]\n", "t.ini:1: workers: key outside of any section", NULL);
}

Test(config, empty_value)
{
    expect_errors("[server]\nadmin_socket =\n", "t.ini:2: [server] admin_socket: empty value",
                  NULL);
}

/* ---- sections and keys --------------------------------------------------- */

Test(config, unknown_key)
{
    size_t n = expect_errors("[server]\n"
                             "workers = 2\n"
                             "bogus = 1\n"
                             "[cache]\n"
                             "Path = x\n",
                             "t.ini:3: [server] bogus: unknown key",
                             "t.ini:5: [cache] Path: unknown key", NULL);
    cr_assert_eq(n, 2);
}

Test(config, unknown_section)
{
    size_t n = expect_errors(
        "[server]\n"
        "[bogus]\n"
        "x = 1\n"
        "[signer]\n"
        "[trustlist Upper]\n"
        "[signer a b]\n"
        "[server x]\n"
        "[trustlist aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n",
        "t.ini:2: unknown section [bogus]", "t.ini:4: section [signer] needs a name",
        "t.ini:5: section [trustlist Upper]: invalid name",
        "t.ini:6: section [signer a b]: invalid name", "t.ini:7: section [server] takes no name",
        "t.ini:8: section [trustlist", NULL);
    cr_assert_eq(n, 6); /* x = 1 under the unknown section is not reported again */
}

Test(config, duplicate_key)
{
    size_t n = expect_errors(
        "[server]\n"
        "workers = 2\n"
        "\n"
        "workers = 3\n"
        "[upstream]\n"
        "allow_file_urls = yes\n"
        "allow_file_urls = yes\n",
        "t.ini:4: [server] workers: duplicate key (first set at line 2)",
        "t.ini:7: [upstream] allow_file_urls: duplicate key (first set at line 6)", NULL);
    cr_assert_eq(n, 2);
}

Test(config, duplicate_section)
{
    char *text = fmt("[server]\n"
                     "[signer a]\ncert = %s\nkey = %s\n"
                     "[server]\n"
                     "[signer a]\n",
                     cert_name, key_name);
    expect_errors(text, "t.ini:5: duplicate section [server] (first at line 1)",
                  "t.ini:6: duplicate section [signer a] (first at line 2)", NULL);
    free(text);
}

/* ---- listen ------------------------------------------------------------------- */

Test(config, repeatable_listen)
{
    tg_config_t *cfg = expect_ok("[server]\n"
                                 "listen = 0.0.0.0:80\n"
                                 "listen = 10.1.2.3:8080\n"
                                 "listen = [::]:80\n");
    cr_assert_eq(cfg->n_listen, 3);
    cr_assert_str_eq(cfg->listen[0].text, "0.0.0.0:80");
    cr_assert_str_eq(cfg->listen[1].text, "10.1.2.3:8080");
    cr_assert_str_eq(cfg->listen[2].text, "[::]:80");
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&cfg->listen[1].addr;
    cr_assert_eq(ntohl(sin->sin_addr.s_addr), 0x0a010203);
    cr_assert_eq(ntohs(sin->sin_port), 8080);
    tg_config_free(cfg);

    expect_errors("[server]\nlisten = 127.0.0.1:80\nlisten = 127.0.0.1:80\n",
                  "t.ini:3: [server] listen: 127.0.0.1:80 is already listed at line 2", NULL);
}

Test(config, too_many_listen)
{
    char text[4096] = "[server]\n";
    for (int i = 1; i <= TG_CONFIG_MAX_LISTEN + 1; i++) {
        char line[64];
        snprintf(line, sizeof(line), "listen = 127.0.0.1:%d\n", 9000 + i);
        strcat(text, line);
    }
    expect_errors(text, "t.ini:18: [server] listen: too many addresses (at most 16)", NULL);
}

Test(config, ipv6_listen)
{
    tg_config_t *cfg = expect_ok("[server]\n"
                                 "listen = [2001:DB8:0:0::1]:443\n"
                                 "listen = [::ffff:192.0.2.1]:8080\n");
    cr_assert_eq(cfg->n_listen, 2);
    cr_assert_str_eq(cfg->listen[0].text, "[2001:db8::1]:443");
    cr_assert_str_eq(cfg->listen[1].text, "[::ffff:192.0.2.1]:8080");
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&cfg->listen[0].addr;
    cr_assert_eq(sin6->sin6_family, AF_INET6);
    cr_assert_eq(ntohs(sin6->sin6_port), 443);
    struct in6_addr want;
    cr_assert_eq(inet_pton(AF_INET6, "2001:db8::1", &want), 1);
    cr_assert_eq(memcmp(&sin6->sin6_addr, &want, sizeof(want)), 0);
    tg_config_free(cfg);
}

Test(config, bad_listen_addresses_and_ports)
{
    size_t n =
        expect_errors("[server]\n"
                      "listen = 127.0.0.1:0\n"
                      "listen = 127.0.0.1:65536\n"
                      "listen = 127.0.0.1:http\n"
                      "listen = 127.0.0.1\n"
                      "listen = localhost:8080\n"
                      "listen = ::1:8080\n"
                      "listen = [::1]8080\n"
                      "listen = [::1\n"
                      "listen = 1.2.3:80\n"
                      "listen = 127.0.0.1:-1\n"
                      "listen = [fe80::1%eth0]:80\n"
                      "listen = [1.2.3.4]:80\n"
                      "listen = 127.0.0.1:99999999999999999999999\n",
                      "t.ini:2: [server] listen: '127.0.0.1:0': port must be between 1 and 65535",
                      "t.ini:3: [server] listen: '127.0.0.1:65536': port must be between",
                      "t.ini:4: [server] listen: '127.0.0.1:http': port 'http' is not a number",
                      "t.ini:5: [server] listen: '127.0.0.1': missing port",
                      "t.ini:6: [server] listen: 'localhost:8080' is not an IPv4 address "
                      "(host names are not accepted)",
                      "t.ini:7: [server] listen: '::1:8080': write IPv6 addresses in brackets",
                      "t.ini:8: [server] listen: '[::1]8080': missing port",
                      "t.ini:9: [server] listen: '[::1': missing ']'",
                      "t.ini:10: [server] listen: '1.2.3:80' is not an IPv4 address",
                      "t.ini:11: [server] listen: '127.0.0.1:-1': port '-1' is not a number",
                      "t.ini:12: [server] listen: '[fe80::1%eth0]:80' is not an IPv6 address",
                      "t.ini:13: [server] listen: '[1.2.3.4]:80' is not an IPv6 address",
                      "t.ini:14: [server] listen: '127.0.0.1:99999999999999999999999': port "
                      "must be between",
                      NULL);
    cr_assert_eq(n, 13);
}

/* ---- numbers and enums ------------------------------------------------------- */

Test(config, out_of_range_numbers)
{
    char *text = fmt("[server]\n"
                     "max_connections = 0\n"
                     "workers = 5000\n"
                     "http_max_age_s = 604801\n"
                     "max_certids = 1001\n"
                     "max_request_bytes = 511\n"
                     "[cache]\n"
                     "map_size_mb = 0\n"
                     "[upstream]\n"
                     "timeout_ms = 99999999999999999999999\n"
                     "max_crl_bytes = 1023\n"
                     "[trustlist a]\n"
                     "source = https://x.example/a.xml\n"
                     "operator_cert = %s\n"
                     "refresh_s = 0\n",
                     op_name);
    size_t n = expect_errors(
        text, "t.ini:2: [server] max_connections: must be between 1 and 1000000, got 0",
        "t.ini:3: [server] workers: must be between 0 and 4096, got 5000",
        "t.ini:4: [server] http_max_age_s: must be between 0 and 604800, got 604801",
        "t.ini:5: [server] max_certids: must be between 1 and 1000, got 1001",
        "t.ini:6: [server] max_request_bytes: must be between 512 and 16777216, got 511",
        "t.ini:8: [cache] map_size_mb: must be between 1 and 1048576, got 0",
        "t.ini:10: [upstream] timeout_ms: must be between 1 and 600000, got "
        "99999999999999999999999",
        "t.ini:11: [upstream] max_crl_bytes: must be between 1024 and",
        "t.ini:15: [trustlist a] refresh_s: must be between 1 and 604800, got 0", NULL);
    cr_assert_eq(n, 9);
    free(text);
}

Test(config, range_limits_accepted)
{
    tg_config_t *cfg = expect_ok("[server]\n"
                                 "max_connections = 1000000\n"
                                 "http_max_age_s = 0\n"
                                 "max_certids = 1\n"
                                 "[cache]\n"
                                 "map_size_mb = 1048576\n");
    cr_assert_eq(cfg->max_connections, 1000000);
    cr_assert_eq(cfg->http_max_age_s, 0);
    cr_assert_eq(cfg->max_certids, 1);
    cr_assert_eq(cfg->map_size_mb, 1048576);
    tg_config_free(cfg);
}

Test(config, trailing_junk_and_non_numbers)
{
    size_t n =
        expect_errors("[server]\n"
                      "workers = 12abc\n"
                      "max_connections = -1\n"
                      "max_request_bytes = +1024\n"
                      "header_timeout_ms = 0x100\n"
                      "idle_timeout_ms = 1 000\n"
                      "max_certids = 1.5\n",
                      "t.ini:2: [server] workers: expected a decimal number, got '12abc'",
                      "t.ini:3: [server] max_connections: expected a decimal number, got '-1'",
                      "t.ini:4: [server] max_request_bytes: expected a decimal number",
                      "t.ini:5: [server] header_timeout_ms: expected a decimal number",
                      "t.ini:6: [server] idle_timeout_ms: expected a decimal number",
                      "t.ini:7: [server] max_certids: expected a decimal number", NULL);
    cr_assert_eq(n, 6);
}

Test(config, bad_enums)
{
    char *text = fmt("[server]\n"
                     "log_level = loud\n"
                     "[upstream]\n"
                     "allow_file_urls = maybe\n"
                     "[trustlist a]\n"
                     "source = https://x.example/a.xml\n"
                     "operator_cert = %s\n"
                     "mode = mirror\n",
                     op_name);
    size_t n = expect_errors(
        text, "t.ini:2: [server] log_level: expected debug, info, warn or error, got 'loud'",
        "t.ini:4: [upstream] allow_file_urls: expected yes or no, got 'maybe'",
        "t.ini:8: [trustlist a] mode: expected relay or sign, got 'mirror'", NULL);
    cr_assert_eq(n, 3);
    free(text);
}

Test(config, workers_zero_means_cores)
{
    tg_config_t *cfg = expect_ok("[server]\nworkers = 0\nlog_level = WARN\n"
                                 "[upstream]\nallow_file_urls = Yes\n");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cr_assert_eq(cfg->workers, (uint32_t)(cores < 1 ? 1 : cores));
    cr_assert_eq(cfg->log_level, TG_LOG_WARN);
    cr_assert_eq(cfg->allow_file_urls, 1);
    tg_config_free(cfg);
}

/* ---- files, references, required keys ---------------------------------- */

Test(config, missing_files)
{
    char *text = fmt("[signer a]\n"
                     "cert = nope-cert.pem\n"
                     "key = /nonexistent/key.pem\n"
                     "[signer b]\n"
                     "cert = %s\n"
                     "key = pkcs11:token=x\n"
                     "[trustlist t]\n"
                     "source = missing.xml\n"
                     "operator_cert = %s\n"
                     "operator_cert = op-missing.pem\n"
                     "[trustlist u]\n"
                     "source = .\n"
                     "operator_cert = %s\n",
                     cert_name, op_name, op_name);
    char *w1 = fmt("t.ini:2: [signer a] cert: cannot read %s/nope-cert.pem: No such file", tmpdir);
    char *w3 = fmt("t.ini:8: [trustlist t] source: cannot read %s/missing.xml", tmpdir);
    char *w4 = fmt("t.ini:10: [trustlist t] operator_cert: cannot read %s/op-missing.pem", tmpdir);
    char *w5 = fmt("t.ini:12: [trustlist u] source: %s is a directory", tmpdir);
    size_t n = expect_errors(text, w1, "t.ini:3: [signer a] key: cannot read /nonexistent/key.pem",
                             w3, w4, w5, NULL);
    cr_assert_eq(n, 5); /* signer b's pkcs11: key is not a file */
    free(w5);
    free(w4);
    free(w3);
    free(w1);
    free(text);
}

Test(config, unreadable_file)
{
    if (geteuid() == 0)
        cr_skip_test("root reads everything");
    cr_assert_eq(chmod(key_path, 0), 0);
    char *text = fmt("[signer a]\ncert = %s\nkey = %s\n", cert_name, key_name);
    expect_errors(text, "t.ini:3: [signer a] key: cannot read", "Permission denied", NULL);
    free(text);
}

Test(config, missing_signer_reference)
{
    char *text = fmt("[trustlist gd]\n"
                     "source = https://x.example/gd.xml\n"
                     "operator_cert = %s\n"
                     "signer = gdx\n"
                     "[signer gd]\n"
                     "cert = %s\n"
                     "key = %s\n"
                     "[trustlist hk]\n"
                     "source = https://x.example/hk.xml\n"
                     "operator_cert = %s\n"
                     "signer = Bad Name\n",
                     op_name, cert_name, key_name, op_name);
    size_t n =
        expect_errors(text, "t.ini:4: [trustlist gd] signer: no [signer gdx] section",
                      "t.ini:11: [trustlist hk] signer: 'Bad Name' is not a valid signer", NULL);
    cr_assert_eq(n, 2);
    free(text);
}

Test(config, signer_defined_after_trustlist)
{
    char *text = fmt("[trustlist gd]\n"
                     "source = https://x.example/gd.xml\n"
                     "operator_cert = %s\n"
                     "signer = s2\n"
                     "mode = sign\n"
                     "[signer s1]\ncert = %s\nkey = %s\n"
                     "[signer s2]\ncert = %s\nkey = %s\n",
                     op_name, cert_name, key_name, cert_name, key_name);
    tg_config_t *cfg = expect_ok(text);
    cr_assert_eq(cfg->trustlists[0].signer, 1);
    cr_assert_str_eq(cfg->signers[cfg->trustlists[0].signer].name, "s2");
    tg_config_free(cfg);
    free(text);
}

Test(config, sign_mode_needs_a_signer)
{
    char *text = fmt("[trustlist gd]\n"
                     "source = https://x.example/gd.xml\n"
                     "operator_cert = %s\n"
                     "mode = sign\n",
                     op_name);
    expect_errors(text, "t.ini:4: [trustlist gd] mode: sign needs a signer", NULL);
    free(text);
}

Test(config, required_keys)
{
    size_t n =
        expect_errors("[server]\n"
                      "\n"
                      "[trustlist gd]\n"
                      "refresh_s = 60\n"
                      "[signer s]\n"
                      "[trustlist hk]\n",
                      "t.ini:3: [trustlist gd] source: missing (required)",
                      "t.ini:3: [trustlist gd] operator_cert: missing (at least one required)",
                      "t.ini:5: [signer s] cert: missing (required)",
                      "t.ini:5: [signer s] key: missing (required)",
                      "t.ini:6: [trustlist hk] source: missing (required)",
                      "t.ini:6: [trustlist hk] operator_cert: missing", NULL);
    cr_assert_eq(n, 6);
}

Test(config, file_url_needs_allow_file_urls)
{
    char *tl = fmt("[trustlist gd]\n"
                   "operator_cert = %s\n"
                   "source = file:///srv/tl/gd.xml\n",
                   op_name);
    size_t n = expect_errors(
        tl, "t.ini:3: [trustlist gd] source: file: URLs need [upstream] allow_file_urls = yes",
        NULL);
    cr_assert_eq(n, 1);

    /* allowed, even when [upstream] comes after the list */
    char *ok = fmt("%s[upstream]\nallow_file_urls = yes\n", tl);
    tg_config_t *cfg = expect_ok(ok);
    cr_assert_str_eq(cfg->trustlists[0].source, "file:///srv/tl/gd.xml");
    cr_assert_eq(cfg->trustlists[0].source_is_url, 1);
    tg_config_free(cfg);
    free(ok);

    char *off = fmt("[upstream]\nallow_file_urls = no\n%s", tl);
    expect_errors(off, "t.ini:5: [trustlist gd] source: file: URLs need", NULL);
    free(off);
    free(tl);
}

Test(config, crl_url_overrides)
{
    const char *a = "7b4beeab49f095be70926c843c1c8eb84e9fb1a6829e0c651b551af71de0e352";
    const char *b = "3383FF0E310AFC7990439F0C2BD309534D025FE11D0A8DFF9CEC90B9E1BF267E";
    char *text = fmt("[trustlist hk]\n"
                     "source = https://tl.example.hk/hk.xml\n"
                     "operator_cert = %s\n"
                     "crl_url = %s http://mirror.example.hk/rsa.crl\n"
                     "crl_url = %s\thttps://mirror.example.hk/ecc.crl\n",
                     op_name, a, b);
    tg_config_t *cfg = expect_ok(text);
    const tg_config_trustlist_t *tl = &cfg->trustlists[0];
    cr_assert_eq(tl->n_crl_urls, 2);
    cr_assert_str_eq(tl->crl_urls[0].url, "http://mirror.example.hk/rsa.crl");
    cr_assert_eq(tl->crl_urls[0].ca[0], 0x7b);
    cr_assert_eq(tl->crl_urls[0].ca[31], 0x52);
    cr_assert_str_eq(tl->crl_urls[1].url, "https://mirror.example.hk/ecc.crl");
    cr_assert_eq(tl->crl_urls[1].ca[0], 0x33);
    cr_assert_eq(tl->crl_urls[1].ca[31], 0x7e);
    tg_config_free(cfg);
    free(text);

    /* a short hash, no URL, another scheme, the same CA twice, file: without
     * allow_file_urls: each named with its line */
    text = fmt("[trustlist hk]\n"
               "source = https://tl.example.hk/hk.xml\n"
               "operator_cert = %s\n"
               "crl_url = 7b4b http://x/y.crl\n"
               "crl_url = %s\n"
               "crl_url = %s ftp://x/y.crl\n"
               "crl_url = %s http://x/1.crl\n"
               "crl_url = %s http://x/2.crl\n"
               "crl_url = %s file:///srv/crl/b.crl\n",
               op_name, a, a, a, a, b);
    size_t n = expect_errors(text, "t.ini:4: [trustlist hk] crl_url: want '<SHA-256",
                             "t.ini:5: [trustlist hk] crl_url: want '<SHA-256",
                             "t.ini:6: [trustlist hk] crl_url: unsupported URL scheme",
                             "t.ini:8: [trustlist hk] crl_url: a second URL for CA",
                             "crl_url: file: URLs need [upstream] allow_file_urls = yes", NULL);
    cr_assert_eq(n, 5);
    free(text);
}

Test(config, unsupported_url_scheme)
{
    char *text = fmt("[trustlist gd]\n"
                     "operator_cert = %s\n"
                     "source = ftp://x.example/gd.xml\n"
                     "[trustlist hk]\n"
                     "operator_cert = %s\n"
                     "source = HTTPS://\n",
                     op_name, op_name);
    size_t n =
        expect_errors(text, "t.ini:3: [trustlist gd] source: unsupported URL scheme",
                      "t.ini:6: [trustlist hk] source: 'HTTPS://' is an incomplete URL", NULL);
    cr_assert_eq(n, 2);
    free(text);
}

Test(config, too_many_operator_certs)
{
    char text[8192];
    int n = snprintf(text, sizeof(text), "[trustlist gd]\nsource = https://x.example/a\n");
    for (int i = 0; i < TG_CONFIG_MAX_OPERATOR_CERTS + 1; i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n, "operator_cert = %s\n", op_name);
    expect_errors(text, "t.ini:11: [trustlist gd] operator_cert: too many (at most 8)", NULL);
}

Test(config, every_error_reported_once)
{
    char *text = fmt("[server]\n"
                     "workers = many\n"
                     "bogus = 1\n"
                     "[nope]\n"
                     "[signer a]\n"
                     "cert = missing.pem\n"
                     "key = %s\n"
                     "[trustlist t]\n"
                     "source = https://x.example/t.xml\n"
                     "operator_cert = %s\n"
                     "signer = zz\n",
                     key_name, op_name);
    size_t n =
        expect_errors(text, "t.ini:2:", "t.ini:3:", "t.ini:4:", "t.ini:6:", "t.ini:11:", NULL);
    cr_assert_eq(n, 5);
    free(text);
}
