/* trustgate command line (SPEC §4). Only wiring: parse arguments, load the
 * configuration, hand over to the module that does the work. */
#include "common/log.h"
#include "config/config.h"
#include "pki/ocsp.h"
#include "responder/check.h"
#include "responder/demo.h"
#include "responder/query.h"
#include "responder/server.h"
#include "trustlist/trustlist.h"

#include <curl/curl.h>

#include <llhttp.h>
#include <lmdb.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static void usage(FILE *out)
{
    fputs("usage:\n"
          "  trustgate serve [-c FILE]   run in the foreground (SIGHUP reloads, SIGTERM drains)\n"
          "  trustgate check -c FILE     validate the configuration and trust lists; print a "
          "summary\n"
          "  trustgate tl show FILE [--operator-cert CERT]... [--at TIME] [--json]\n"
          "  trustgate tl sign --key K --cert C IN OUT\n"
          "  trustgate query --url URL --issuer CA --cert EE [--signer CERT] [--sha256|--sm3]\n"
          "                  [--nonce] [--get]   OCSP client that verifies every algorithm, SM2 "
          "included\n"
          "  trustgate demo [--force] [--port N] DIR\n"
          "                              make a complete demo world with its configuration\n"
          "                              (trustgate on port N, default 8080; the CAs' own\n"
          "                              OCSP responders on N+1..N+4)\n"
          "  trustgate version           print versions\n",
          out);
}

/* Finds "-c FILE" (or "--config FILE") among args; returns 0 and the file
 * (NULL when absent), or -1 on a bad argument. */
static int parse_config_arg(int argc, char **argv, const char **out_path)
{
    *out_path = NULL;
    for (int i = 0; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            *out_path = argv[++i];
        } else {
            fprintf(stderr, "trustgate: unexpected argument '%s'\n", argv[i]);
            return -1;
        }
    }
    return 0;
}

static int cmd_version(void)
{
    printf("trustgate %s (%s)\n", TG_VERSION, TG_GIT_REV);
    printf("  %s\n", OpenSSL_version(OPENSSL_VERSION));
    printf("  libuv %s\n", uv_version_string());
    printf("  llhttp %d.%d.%d\n", LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH);
    printf("  %s\n", mdb_version(NULL, NULL, NULL));
    return 0;
}

static int load_config(const char *path, tg_config_t **out_cfg)
{
    if (path == NULL) {
        *out_cfg = tg_config_default();
        return *out_cfg ? 0 : TG_ENOMEM;
    }
    return tg_config_load(path, out_cfg);
}

static int cmd_check(int argc, char **argv)
{
    const char *path;
    if (parse_config_arg(argc, argv, &path) != 0 || path == NULL) {
        usage(stderr);
        return 2;
    }
    tg_config_t *cfg = NULL;
    if (tg_config_load(path, &cfg) != 0) {
        fprintf(stderr, "%s: configuration is invalid\n", path);
        return 1;
    }
    tg_config_print_summary(cfg, stdout);
    int rc = tg_check_lists_and_signers(cfg, stdout);
    if (rc == 0)
        printf("%s: configuration and trust lists are valid\n", path);
    else
        printf("%s: configuration is valid, but see the problems above\n", path);
    tg_config_free(cfg);
    return rc == 0 ? 0 : 1;
}

static int cmd_tl(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "show") == 0)
        return tg_tl_cmd_show(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "sign") == 0)
        return tg_tl_cmd_sign(argc - 1, argv + 1);
    usage(stderr);
    return 2;
}

static int cmd_serve(int argc, char **argv)
{
    const char *path;
    if (parse_config_arg(argc, argv, &path) != 0) {
        usage(stderr);
        return 2;
    }
    tg_config_t *cfg = NULL;
    if (load_config(path, &cfg) != 0) {
        tg_error("%s: configuration is invalid; not starting", path ? path : "built-in default");
        return 1;
    }
    tg_log_set_level((tg_log_level_t)cfg->log_level);
    /* a peer that closes mid-write must cost an EPIPE, not the process */
    signal(SIGPIPE, SIG_IGN);
    /* libuv's thread pool signs answers and loads lists; size it for the
     * machine unless the operator did (read once, at its first use) */
    if (getenv("UV_THREADPOOL_SIZE") == NULL) {
        char n[16];
        snprintf(n, sizeof(n), "%u", cfg->workers + 2 > 4 ? cfg->workers + 2 : 4);
        setenv("UV_THREADPOOL_SIZE", n, 0);
    }

    tg_info("trustgate %s starting (%s)", TG_VERSION,
            path ? path : "built-in default configuration");
    tg_server_t *srv = NULL;
    if (tg_server_new(cfg, path, &srv) != 0)
        return 1;
    int rc = tg_server_run(srv);
    tg_server_free(srv);
    return rc == 0 ? 0 : 1;
}

static int run_command(const char *cmd, int argc, char **argv);

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return cmd_version();
    if (tg_tl_global_init() != 0 || tg_ocsp_init() != 0 ||
        curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "trustgate: cannot initialise the crypto and XML libraries\n");
        return 1;
    }
    int rc = run_command(cmd, argc, argv);
    curl_global_cleanup();
    tg_tl_global_cleanup();
    return rc;
}

static int run_command(const char *cmd, int argc, char **argv)
{
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    if (strcmp(cmd, "tl") == 0)
        return cmd_tl(argc - 2, argv + 2);
    if (strcmp(cmd, "demo") == 0)
        return tg_cmd_demo(argc - 2, argv + 2);
    if (strcmp(cmd, "query") == 0)
        return tg_cmd_query(argc - 2, argv + 2);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "trustgate: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
