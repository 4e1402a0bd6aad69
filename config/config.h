/* trustgate configuration: the INI file of SPEC §3, parsed with libinih into
 * an immutable, validated struct.
 *
 * This module is the only code that reads the configuration file. Every
 * error names the file, the line and the key and is logged once (at
 * TG_LOG_ERROR) by tg_config_load(); the daemon refuses to start on any.
 *
 * Relative paths in a file are resolved against the directory of that file,
 * so `trustgate check -c /etc/trustgate/trustgate.ini` means the same thing
 * from any working directory. That includes the defaults a file leaves out:
 * without [cache] path, a file /etc/tg/tg.ini caches in /etc/tg/var/cache.
 * The built-in default (no -c) resolves against the working directory.
 *
 * Syntax (SPEC §3): "[section]" headers, "key = value" lines, comments start
 * a line with ';' or '#', or follow a value after whitespace and ';'. Values
 * are taken after surrounding whitespace is stripped; there is no quoting.
 * Multiline (indented continuation) values are not supported; neither is
 * the "key: value" form. Lines are at most TG_CONFIG_MAX_LINE bytes.
 * listen and operator_cert may repeat; any other key given twice, an
 * unknown section or key, or a section given twice is an error. Numbers are
 * plain decimal (no sign, no suffix); booleans are yes/no, true/false,
 * on/off or 1/0. A config object is immutable once returned. */
#ifndef TG_CONFIG_CONFIG_H
#define TG_CONFIG_CONFIG_H

#include "common/err.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/socket.h>

#define TG_CONFIG_MAX_LISTEN 16
#define TG_CONFIG_MAX_SIGNERS 16
#define TG_CONFIG_MAX_TRUSTLISTS 8
#define TG_CONFIG_MAX_OPERATOR_CERTS 8
#define TG_CONFIG_MAX_CRL_URLS 64 /* crl_url overrides per trust list */
#define TG_CONFIG_NAME_MAX 32     /* signer / trust-list names: [a-z0-9_-]{1,32} */
#define TG_CONFIG_MAX_LINE 4096   /* longest line accepted, bytes, without its line ending */

typedef struct {
    struct sockaddr_storage addr; /* AF_INET or AF_INET6, port set */
    socklen_t addr_len;
    char text[64]; /* as written, normalised: "127.0.0.1:8080", "[::1]:8080" */
} tg_config_listen_t;

typedef enum {
    TG_TL_MODE_RELAY = 0,
    TG_TL_MODE_SIGN = 1,
} tg_tl_mode_t;

typedef struct {
    char name[TG_CONFIG_NAME_MAX + 1];
    char *cert; /* absolute or config-relative-resolved path; readable at load */
    char *key;  /* path (readable at load), or a "pkcs11:" URI kept verbatim */
} tg_config_signer_t;

/* A CRL location that replaces the one the trust list names for one CA. */
typedef struct {
    uint8_t ca[32]; /* SHA-256 of the CA certificate (as in /crl/{list}/{ca}.crl) */
    char *url;      /* http:, https:, or file: (only with allow_file_urls) */
} tg_config_crl_url_t;

typedef struct {
    char name[TG_CONFIG_NAME_MAX + 1];
    /* URL (http:, https:, file:) kept verbatim, or a resolved file path
     * (readable at load); file: URLs only with allow_file_urls */
    char *source;
    int source_is_url; /* 1 when source is a URL */
    /* the pinned operator certificates: resolved paths, readable at load */
    char *operator_certs[TG_CONFIG_MAX_OPERATOR_CERTS];
    size_t n_operator_certs; /* >= 1 */
    uint32_t refresh_s;      /* default 300, 1..604800 */
    int signer;              /* index into tg_config_t.signers, or -1 */
    tg_tl_mode_t mode;       /* default relay; sign requires a signer */
    /* crl_url = <CA SHA-256 hex> <URL>, repeatable: overrides the CRL
     * supply point of that CA */
    tg_config_crl_url_t crl_urls[TG_CONFIG_MAX_CRL_URLS];
    size_t n_crl_urls;
} tg_config_trustlist_t;

typedef struct tg_config {
    char *path; /* the file read (absolute, tidied), or NULL for the built-in default */

    /* [server] */
    tg_config_listen_t listen[TG_CONFIG_MAX_LISTEN];
    size_t n_listen;            /* >= 1; default 127.0.0.1:8080 */
    uint32_t workers;           /* 0..4096; resolved: 0 (default) becomes the core count */
    uint32_t max_connections;   /* default 10000, 1..1000000 */
    uint32_t max_request_bytes; /* default 16384, 512..16777216 */
    uint32_t header_timeout_ms; /* default 5000, 100..600000 */
    uint32_t idle_timeout_ms;   /* default 60000, 100..3600000 */
    uint32_t http_max_age_s;    /* default 60, 0..604800 */
    uint32_t max_certids;       /* single requests per OCSPRequest, default 16, 1..1000 */
    char *admin_socket;         /* resolved path, default var/admin.sock */
    char *access_log;           /* NULL = off; "-" = stderr; else a file path */
    int log_level;              /* tg_log_level_t, default info */

    /* [cache] */
    char *cache_path;     /* resolved path, default var/cache */
    uint64_t map_size_mb; /* default 4096, 1..1048576 */

    /* [upstream] */
    uint32_t upstream_timeout_ms; /* default 3000, 1..600000 */
    uint32_t refresh_ahead_s;     /* default 600, 0..86400 */
    uint64_t max_crl_bytes;       /* default 134217728, 1024..68719476736 */
    int allow_file_urls;          /* default 0 */

    tg_config_signer_t signers[TG_CONFIG_MAX_SIGNERS];
    size_t n_signers;
    tg_config_trustlist_t trustlists[TG_CONFIG_MAX_TRUSTLISTS];
    size_t n_trustlists;
} tg_config_t;

/* Reads and validates the INI file at path. On success returns 0 and sets
 * *out_cfg to a new config owned by the caller (free with tg_config_free);
 * nothing in it borrows from path. On failure returns TG_ECONFIG (or
 * TG_ENOMEM), logs every problem found, each once, as
 * "FILE:LINE: [section] key: reason" (FILE as given in path), and leaves
 * *out_cfg untouched. The line is the key's for a bad value or a missing
 * file, and the section header's for a missing required key; a file that
 * cannot be opened is logged as "FILE: cannot open: reason".
 *
 * Thread-safe (libinih's global options are set under a lock), but it
 * stats files and so blocks: never call it on a worker loop. */
TG_WUR int tg_config_load(const char *path, tg_config_t **out_cfg);

/* Like tg_config_load but parses text held in memory (NUL-terminated,
 * borrowed for the call only); name is used in messages and as the base for
 * relative paths (its directory part, against the working directory when
 * name is relative). For tests and for reloading. */
TG_WUR int tg_config_load_string(const char *name, const char *text, tg_config_t **out_cfg);

/* Returns the built-in default configuration (listen 127.0.0.1:8080, data
 * under ./var as relative paths "var/cache" and "var/admin.sock", workers =
 * online cores, no signers, no trust lists, path NULL), owned by the caller
 * (free with tg_config_free), or NULL when out of memory. */
tg_config_t *tg_config_default(void);

/* Frees cfg and everything it owns. NULL is fine. */
void tg_config_free(tg_config_t *cfg);

/* Prints a human-readable, multi-line summary of cfg to out (used by
 * `trustgate check`): listen addresses, limits, cache, upstream, signers,
 * and per trust list its source, operator certificates, signer and mode.
 * Borrows both for the call only. */
void tg_config_print_summary(const tg_config_t *cfg, FILE *out);

#endif
