/* `trustgate tl show` and `trustgate tl sign`. */
#include "trustlist/trustlist_internal.h"

#include "common/clock.h"
#include "common/log.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- files ------------------------------------------------------------- */

/* Reads a whole regular file of at most TG_TL_MAX_BYTES. */
static int read_file(const char *path, uint8_t **out, size_t *out_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return TG_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s: not a regular file\n", path);
        close(fd);
        return TG_EIO;
    }
    if ((uint64_t)st.st_size > TG_TL_MAX_BYTES) {
        fprintf(stderr, "%s: %lld bytes exceeds the %zu byte limit\n", path, (long long)st.st_size,
                TG_TL_MAX_BYTES);
        close(fd);
        return TG_ETOOBIG;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return TG_ENOMEM;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "%s: %s\n", path, strerror(errno));
            free(buf);
            close(fd);
            return TG_EIO;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap) { /* the file grew; stay within the bound */
            fprintf(stderr, "%s: changed while being read\n", path);
            free(buf);
            close(fd);
            return TG_EIO;
        }
    }
    close(fd);
    *out = buf;
    *out_len = len;
    return 0;
}

/* Writes data to path atomically: a temporary file in the same folder,
 * fsync, rename. */
static int write_file_atomic(const char *path, const uint8_t *data, size_t len)
{
    char *dup = strdup(path);
    if (dup == NULL)
        return TG_ENOMEM;
    char tmpl[4096];
    int n = snprintf(tmpl, sizeof(tmpl), "%s/.tl-sign-XXXXXX", dirname(dup));
    free(dup);
    if (n < 0 || (size_t)n >= sizeof(tmpl))
        return TG_EINVAL;
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", tmpl, strerror(errno));
        return TG_EIO;
    }
    size_t off = 0;
    int rc = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = TG_EIO;
            break;
        }
        off += (size_t)w;
    }
    if (rc == 0 && (fchmod(fd, 0644) != 0 || fsync(fd) != 0))
        rc = TG_EIO;
    if (close(fd) != 0 && rc == 0)
        rc = TG_EIO;
    if (rc == 0 && rename(tmpl, path) != 0)
        rc = TG_EIO;
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        unlink(tmpl);
    }
    return rc;
}

/* ---- formatting -------------------------------------------------------- */

static void subject_of(X509 *x, char *out, size_t cap)
{
    out[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return;
    /* RFC 2253 order, UTF-8 kept (Chinese names print as such). */
    if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0,
                           XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        int n = BIO_read(b, out, (int)cap - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    tg_openssl_clear_errors();
}

static void fingerprint(X509 *x, char out[65])
{
    uint8_t md[32];
    unsigned int len = 0;
    if (X509_digest(x, EVP_sha256(), md, &len) != 1 || len != 32) {
        tg_openssl_clear_errors();
        snprintf(out, 65, "?");
        return;
    }
    tg_hex_encode(md, 32, 0, out);
}

static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                printf("\\u%04x", *p);
            else
                putchar(*p);
        }
    }
    putchar('"');
}

static void json_time(time_t t)
{
    char b[32];
    tl_format_time(t, b, sizeof(b));
    json_str(b);
}

static const char *supply_kind(tg_tl_supply_kind_t k)
{
    return k == TG_TL_SUPPLY_OCSP ? "ocsp" : k == TG_TL_SUPPLY_CRL ? "crl" : "other";
}

/* ---- show: text ---------------------------------------------------------- */

static void text_certs(X509 *const *certs, size_t n, const char *indent)
{
    for (size_t i = 0; i < n; i++) {
        char subj[512], fp[65];
        subject_of(certs[i], subj, sizeof(subj));
        fingerprint(certs[i], fp);
        printf("%scertificate: %s\n%s             sha256 %s\n", indent, subj, indent, fp);
    }
}

static void text_service(const tg_tl_service_t *s, time_t at)
{
    char t1[32];
    printf("  service \"%s\"%s\n", s->name, s->removed ? " (no longer listed)" : "");
    printf("    type:   %s\n", s->type);
    const tg_tl_status_entry_t *e = tg_tl_service_entry_at(s, at);
    if (e == NULL) {
        printf("    status: not_listed\n");
    } else {
        tl_format_time(e->start, t1, sizeof(t1));
        printf("    status: %s since %s (%s)%s\n", tg_tl_status_name(e->status), t1, e->uri,
               e->reason == TG_TL_REASON_UNKNOWN_URI ? " [unknown URI: treated as terminated]"
                                                     : "");
    }
    for (size_t i = 0; i < s->n_entries; i++) {
        const tg_tl_status_entry_t *h = &s->entries[i];
        tl_format_time(h->start, t1, sizeof(t1));
        printf("    %s %s %-10s %s\n", i == 0 ? "current:" : "history:", t1,
               tg_tl_status_name(h->status), h->uri);
        if (i > 0 && h->certs != s->certs)
            text_certs(h->certs, h->n_certs, "      ");
    }
    text_certs(s->certs, s->n_certs, "    ");
    for (size_t i = 0; i < s->n_supply_points; i++)
        printf("    supply point: %s %s\n", supply_kind(s->supply_points[i].kind),
               s->supply_points[i].uri);
    for (size_t i = 0; i < s->n_policy_oids; i++)
        printf("    policy: %s%s\n", s->policy_oids[i], s->oid_prefix ? " (prefix match)" : "");
}

static void show_text(const char *path, const tg_tl_list_t *l, time_t at, time_t now)
{
    char t1[32], fp[65], subj[512];
    tg_hex_encode(l->sha256, 32, 0, fp);
    printf("file:        %s (%zu bytes, sha256 %s)\n", path, l->raw_len, fp);
    if (l->verified_by != NULL) {
        subject_of(l->verified_by, subj, sizeof(subj));
        printf("signature:   verified by %s\n", subj);
    } else {
        printf("signature:   NOT verified (no --operator-cert)\n");
    }
    printf("territory:   %s\n", l->territory);
    printf("sequence:    %llu\n", (unsigned long long)l->sequence);
    printf("operator:    %s\n", l->operator_name);
    tl_format_time(l->issued, t1, sizeof(t1));
    printf("issued:      %s\n", t1);
    if (l->next_update == 0) {
        printf("next update: none (closed list)\n");
    } else {
        tl_format_time(l->next_update, t1, sizeof(t1));
        printf("next update: %s%s\n", t1, tg_tl_list_is_stale(l, now) ? " (STALE)" : "");
    }
    tl_format_time(at, t1, sizeof(t1));
    printf("status at:   %s\n", t1);
    printf("pointers:    %zu\n", l->n_pointers);
    for (size_t i = 0; i < l->n_pointers; i++) {
        const tg_tl_pointer_t *p = &l->pointers[i];
        printf("  - %s%s%s\n", p->location, p->territory ? "  territory " : "",
               p->territory ? p->territory : "");
        text_certs(p->certs, p->n_certs, "    ");
    }
    if (l->n_unknown_status > 0)
        printf("unknown status URIs: %zu entries (treated as terminated)\n", l->n_unknown_status);
    printf("providers:   %zu, services: %zu\n", l->n_tsps, l->n_services);
    for (size_t t = 0; t < l->n_tsps; t++) {
        printf("TSP \"%s\"\n", l->tsps[t].name);
        for (size_t k = 0; k < l->tsps[t].n_services; k++)
            text_service(&l->services[l->tsps[t].first_service + k], at);
    }
}

/* ---- show: JSON ---------------------------------------------------------- */

static void json_certs(X509 *const *certs, size_t n)
{
    putchar('[');
    for (size_t i = 0; i < n; i++) {
        char subj[512], fp[65];
        subject_of(certs[i], subj, sizeof(subj));
        fingerprint(certs[i], fp);
        printf("%s{\"subject\":", i ? "," : "");
        json_str(subj);
        printf(",\"sha256\":\"%s\"}", fp);
    }
    putchar(']');
}

static void json_entry(const tg_tl_status_entry_t *e)
{
    printf("{\"status\":\"%s\",\"uri\":", tg_tl_status_name(e->status));
    json_str(e->uri);
    printf(",\"since\":");
    json_time(e->start);
    printf(",\"reason\":\"%s\"}", tg_tl_reason_name(e->reason));
}

static void json_service(const tg_tl_service_t *s, time_t at)
{
    printf("{\"name\":");
    json_str(s->name);
    printf(",\"type\":");
    json_str(s->type);
    const tg_tl_status_entry_t *e = tg_tl_service_entry_at(s, at);
    printf(",\"status\":\"%s\",\"since\":", tg_tl_status_name(e ? e->status : TG_TL_NOT_LISTED));
    if (e != NULL)
        json_time(e->start);
    else
        printf("null");
    printf(",\"status_uri\":");
    if (e != NULL)
        json_str(e->uri);
    else
        printf("null");
    printf(",\"entries\":[");
    for (size_t i = 0; i < s->n_entries; i++) {
        if (i)
            putchar(',');
        json_entry(&s->entries[i]);
    }
    printf("],\"certificates\":");
    json_certs(s->certs, s->n_certs);
    printf(",\"supply_points\":[");
    for (size_t i = 0; i < s->n_supply_points; i++) {
        printf("%s{\"kind\":\"%s\",\"uri\":", i ? "," : "", supply_kind(s->supply_points[i].kind));
        json_str(s->supply_points[i].uri);
        putchar('}');
    }
    printf("],\"policy_oids\":[");
    for (size_t i = 0; i < s->n_policy_oids; i++) {
        if (i)
            putchar(',');
        json_str(s->policy_oids[i]);
    }
    printf("],\"oid_prefix\":%s}", s->oid_prefix ? "true" : "false");
}

static void show_json(const char *path, const tg_tl_list_t *l, time_t at, time_t now)
{
    char fp[65], subj[512];
    tg_hex_encode(l->sha256, 32, 0, fp);
    printf("{\"file\":");
    json_str(path);
    printf(",\"bytes\":%zu,\"sha256\":\"%s\",\"signature\":{\"verified\":%s", l->raw_len, fp,
           l->verified_by ? "true" : "false");
    if (l->verified_by != NULL) {
        subject_of(l->verified_by, subj, sizeof(subj));
        printf(",\"signer\":");
        json_str(subj);
    }
    printf("},\"territory\":");
    json_str(l->territory);
    printf(",\"sequence\":%llu,\"operator\":", (unsigned long long)l->sequence);
    json_str(l->operator_name);
    printf(",\"issued\":");
    json_time(l->issued);
    printf(",\"next_update\":");
    if (l->next_update != 0)
        json_time(l->next_update);
    else
        printf("null");
    printf(",\"stale\":%s,\"at\":", tg_tl_list_is_stale(l, now) ? "true" : "false");
    json_time(at);
    printf(",\"unknown_status_entries\":%zu,\"pointers\":[", l->n_unknown_status);
    for (size_t i = 0; i < l->n_pointers; i++) {
        printf("%s{\"location\":", i ? "," : "");
        json_str(l->pointers[i].location);
        printf(",\"territory\":");
        if (l->pointers[i].territory)
            json_str(l->pointers[i].territory);
        else
            printf("null");
        printf(",\"certificates\":");
        json_certs(l->pointers[i].certs, l->pointers[i].n_certs);
        putchar('}');
    }
    printf("],\"providers\":[");
    for (size_t t = 0; t < l->n_tsps; t++) {
        printf("%s{\"name\":", t ? "," : "");
        json_str(l->tsps[t].name);
        printf(",\"services\":[");
        for (size_t k = 0; k < l->tsps[t].n_services; k++) {
            if (k)
                putchar(',');
            json_service(&l->services[l->tsps[t].first_service + k], at);
        }
        printf("]}");
    }
    printf("]}\n");
}

/* ---- commands ------------------------------------------------------------ */

static int show_usage(void)
{
    fprintf(stderr, "usage: trustgate tl show FILE [--operator-cert CERT]... [--at TIME] [--json]\n"
                    "  TIME: xsd:dateTime (2025-01-01T00:00:00Z, offsets allowed) or "
                    "YYYY-MM-DD; default now\n");
    return 2;
}

static int parse_at(const char *s, time_t *out)
{
    if (strlen(s) == 10) {
        char b[32];
        snprintf(b, sizeof(b), "%sT00:00:00Z", s);
        return tg_tl_parse_time(b, strlen(b), out);
    }
    return tg_tl_parse_time(s, strlen(s), out);
}

int tg_tl_cmd_show(int argc, char **argv)
{
    const char *file = NULL;
    int json = 0;
    time_t now = tg_wall_now(), at = now;
    X509 **certs = NULL;
    size_t n_certs = 0;
    int code = 2;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--operator-cert") == 0 && i + 1 < argc) {
            if (tg_tl_certs_load_pem(argv[++i], &certs, &n_certs) != 0) {
                code = 1;
                goto out;
            }
        } else if (strcmp(a, "--at") == 0 && i + 1 < argc) {
            if (parse_at(argv[++i], &at) != 0) {
                fprintf(stderr, "--at %s: not an ISO 8601 date-time\n", argv[i]);
                code = show_usage();
                goto out;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "unknown or incomplete option %s\n", a);
            code = show_usage();
            goto out;
        } else if (file == NULL) {
            file = a;
        } else {
            code = show_usage();
            goto out;
        }
    }
    if (file == NULL) {
        code = show_usage();
        goto out;
    }
    if (tg_tl_global_init() != 0) {
        code = 1;
        goto out;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (read_file(file, &buf, &len) != 0) {
        code = 1;
        goto out;
    }
    tg_tl_refusal_t why;
    tg_tl_list_t *l = NULL;
    int rc = n_certs > 0 ? tg_tl_load(buf, len, certs, n_certs, &why, &l)
                         : tg_tl_parse(buf, len, &why, &l);
    free(buf);
    if (rc != 0) {
        if (json) {
            printf("{\"file\":");
            json_str(file);
            printf(",\"signature\":{\"verified\":false},\"refused\":");
            json_str(why.code);
            printf(",\"message\":");
            json_str(why.message);
            printf("}\n");
        } else {
            printf("file:        %s\n", file);
            printf("%s REFUSED (%s): %s\n",
                   n_certs > 0 ? "signature:  " : "list:       ", why.code ? why.code : "internal",
                   why.message);
        }
        code = 1;
        goto out;
    }
    if (json)
        show_json(file, l, at, now);
    else
        show_text(file, l, at, now);
    tg_tl_list_free(l);
    code = fflush(stdout) == 0 ? 0 : 1;
out:
    tg_tl_certs_free(certs, n_certs);
    return code;
}

static int sign_usage(void)
{
    fprintf(stderr, "usage: trustgate tl sign --key KEY.pem --cert CERT.pem IN OUT\n");
    return 2;
}

int tg_tl_cmd_sign(int argc, char **argv)
{
    const char *key_path = NULL, *cert_path = NULL, *in = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            key_path = argv[++i];
        } else if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc) {
            cert_path = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "unknown or incomplete option %s\n", argv[i]);
            return sign_usage();
        } else if (in == NULL) {
            in = argv[i];
        } else if (out == NULL) {
            out = argv[i];
        } else {
            return sign_usage();
        }
    }
    if (key_path == NULL || cert_path == NULL || in == NULL || out == NULL)
        return sign_usage();
    if (tg_tl_global_init() != 0)
        return 1;

    int code = 1;
    X509 **certs = NULL;
    size_t n_certs = 0;
    EVP_PKEY *key = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    tg_buf_t signed_doc;
    tg_buf_init(&signed_doc);
    if (tg_tl_certs_load_pem(cert_path, &certs, &n_certs) != 0)
        goto out;
    FILE *f = fopen(key_path, "r");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", key_path, strerror(errno));
        goto out;
    }
    key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (key == NULL) {
        tg_log_openssl(key_path);
        goto out;
    }
    if (read_file(in, &buf, &len) != 0)
        goto out;
    tg_tl_refusal_t why;
    int rc = tg_tl_sign(buf, len, key, certs[0], &why, &signed_doc);
    if (rc != 0) {
        fprintf(stderr, "%s: not signed: %s%s%s\n", in, why.code ? why.code : tg_strerror(rc),
                why.message[0] ? ": " : "", why.message);
        goto out;
    }
    if (write_file_atomic(out, signed_doc.data, signed_doc.len) != 0)
        goto out;
    char subj[512];
    subject_of(certs[0], subj, sizeof(subj));
    printf("signed %s -> %s (%zu bytes) with %s\n", in, out, signed_doc.len, subj);
    code = 0;
out:
    tg_buf_free(&signed_doc);
    free(buf);
    EVP_PKEY_free(key);
    tg_tl_certs_free(certs, n_certs);
    return code;
}
