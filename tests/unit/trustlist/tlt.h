/* Helpers shared by the trust-list tests: keys and certificates made in
 * process, a small builder for synthetic trust lists, files. */
#ifndef TG_TESTS_TLT_H
#define TG_TESTS_TLT_H

#include "common/buf.h"
#include "trustlist/trustlist.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stddef.h>

#define TLT_MAX 8

typedef struct {
    const char *status; /* full URI */
    const char *start;  /* xsd:dateTime */
    X509 *cert;         /* optional own identity */
} tlt_hist_t;

typedef struct {
    const char *name;
    const char *type; /* default CA/PKC */
    const char *status;
    const char *start;
    X509 *certs[TLT_MAX];
    size_t n_certs;
    tlt_hist_t hist[TLT_MAX];
    size_t n_hist;
    const char *ocsp, *crl, *untyped_supply;
    const char *oids[TLT_MAX]; /* written as urn:oid:... */
    size_t n_oids;
    int prefix;
    const char *raw_extra; /* verbatim XML inside ServiceInformation */
} tlt_svc_t;

typedef struct {
    const char *id; /* root Id, NULL for none */
    const char *territory;
    unsigned long long seq;
    const char *issued;
    const char *next_update; /* NULL: no NextUpdate; "" empty dateTime */
    const char *tsp_name;
    tlt_svc_t svcs[TLT_MAX];
    size_t n_svcs;
    const char *pointer_location;
    X509 *pointer_cert;
} tlt_list_t;

/* Criterion fixtures: global init with quiet logs / cleanup. */
void tlt_setup(void);
void tlt_teardown(void);

/* $TG_VECTORS/trustlists (default /work/shared/vectors/trustlists). */
const char *tlt_vectors(void);

/* Whole file (malloc'd, caller frees) or NULL. */
uint8_t *tlt_read(const char *path, size_t *out_len);
void tlt_write(const char *path, const void *data, size_t len);

/* "rsa" (2048) or "ec" (P-256) key. */
EVP_PKEY *tlt_key(const char *kind);

/* A certificate for pub, signed by issuer_key (self-signed when issuer is
 * NULL); CA:TRUE when ca. */
X509 *tlt_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *issuer_key, int ca);

/* Appends the XML of l to out. */
void tlt_build(const tlt_list_t *l, tg_buf_t *out);

/* Builds and signs with tg_tl_sign (asserts success). */
void tlt_build_signed(const tlt_list_t *l, EVP_PKEY *key, X509 *cert, tg_buf_t *out);

/* A fresh temporary directory (static buffer) and PEM writers. */
const char *tlt_tmpdir(void);
void tlt_write_cert_pem(const char *path, X509 *x);
void tlt_write_key_pem(const char *path, EVP_PKEY *k);

/* Replaces the first occurrence of from by to in b (asserts found). */
void tlt_replace(tg_buf_t *b, const char *from, const char *to);

/* Load with one pinned cert; returns rc, fills why, frees the list. */
int tlt_load1(const tg_buf_t *b, X509 *cert, tg_tl_refusal_t *why);

#endif
