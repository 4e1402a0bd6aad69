/* Shared by the trustlist/ sources and their tests only. */
#ifndef TG_TRUSTLIST_INTERNAL_H
#define TG_TRUSTLIST_INTERNAL_H

#include "trustlist/trustlist.h"

#include <libxml/tree.h>

#include <stdarg.h>

/* ---- a bump allocator: everything of one list or snapshot is freed at
 * once ----------------------------------------------------------------- */

typedef struct tl_chunk tl_chunk_t;

typedef struct {
    tl_chunk_t *head;
    X509 **x509s; /* certificates owned (freed with the arena) */
    size_t n_x509s, cap_x509s;
} tl_arena_t;

/* Returns n zeroed bytes aligned for any type, or NULL (out of memory). */
void *tl_arena_alloc(tl_arena_t *a, size_t n);

/* Copies n bytes of s and a NUL. Returns NULL when out of memory. */
char *tl_arena_strndup(tl_arena_t *a, const char *s, size_t n);

/* Hands x (one reference) to the arena, which frees it. Returns 0 or
 * TG_ENOMEM (x is freed then). */
TG_WUR int tl_arena_own_x509(tl_arena_t *a, X509 *x);

/* Frees everything; the arena is empty and reusable afterwards. */
void tl_arena_free(tl_arena_t *a);

/* ---- refusals -------------------------------------------------------- */

/* Fills *why (may be NULL) and returns TG_EMALFORMED. */
int tl_refuse(tg_tl_refusal_t *why, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Marks *why as an internal failure of kind err and returns err. */
int tl_internal(tg_tl_refusal_t *why, int err, const char *what);

/* ---- XML ------------------------------------------------------------- */

/* The hardened parse: size bound, XML_PARSE_NONET, no DTD loading, no
 * entity substitution, parsing stopped at the first entity declaration
 * ("entity_declaration"), any DOCTYPE refused ("doctype"). On success
 * *out_doc is a document with a root element (free with xmlFreeDoc). */
TG_WUR int tl_xml_read(const uint8_t *xml, size_t len, tg_tl_refusal_t *why, xmlDocPtr *out_doc);

/* 1 when n is an element with this namespace URI and local name. */
int tl_is(const xmlNode *n, const char *ns, const char *local);

/* First element child (after cur when cur != NULL: next sibling) of parent
 * with this namespace and name, or NULL. */
xmlNode *tl_child(const xmlNode *parent, const char *ns, const char *local);
xmlNode *tl_next(const xmlNode *cur, const char *ns, const char *local);

/* Number of element children with this namespace and name. */
size_t tl_count(const xmlNode *parent, const char *ns, const char *local);

/* The value of attribute name (no namespace) of n, or NULL; borrowed from
 * the tree. */
const char *tl_attr(const xmlNode *n, const char *name);

/* The most recent xmlsec error report of this thread ("" if none), and a
 * way to forget it. */
const char *tl_xmlsec_last_error(void);
void tl_xmlsec_clear_error(void);

/* ---- pieces of tg_tl_parse / tg_tl_load -------------------------------- */

/* Verifies the signature of doc (see tg_tl_load). On success
 * *out_verified_by is the cert that verified (borrowed from certs). */
TG_WUR int tl_verify_doc(xmlDocPtr doc, X509 *const *certs, size_t n_certs, tg_tl_refusal_t *why,
                         X509 **out_verified_by);

/* Reads the SPEC §2 profile of doc into a new list that keeps a copy of
 * raw. verified_by (may be NULL) is referenced by the list. */
TG_WUR int tl_list_from_doc(xmlDocPtr doc, const uint8_t *raw, size_t raw_len, X509 *verified_by,
                            tg_tl_refusal_t *why, tg_tl_list_t **out_list);

/* Algorithm URIs. */
#define TL_ALG_ENVELOPED "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
#define TL_ALG_EXC_C14N "http://www.w3.org/2001/10/xml-exc-c14n#"
#define TL_ALG_EXC_C14N_C "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
#define TL_ALG_C14N10 "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
#define TL_ALG_C14N10_C "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"
#define TL_ALG_C14N11 "http://www.w3.org/2006/12/xml-c14n11"
#define TL_ALG_C14N11_C "http://www.w3.org/2006/12/xml-c14n11#WithComments"
#define TL_ALG_RSA_SHA256 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
#define TL_ALG_RSA_SHA384 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
#define TL_ALG_RSA_SHA512 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
#define TL_ALG_ECDSA_SHA256 "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
#define TL_ALG_ECDSA_SHA384 "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
#define TL_ALG_ECDSA_SHA512 "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
#define TL_ALG_SHA256 "http://www.w3.org/2001/04/xmlenc#sha256"
#define TL_ALG_SHA384 "http://www.w3.org/2001/04/xmldsig-more#sha384"
#define TL_ALG_SHA512 "http://www.w3.org/2001/04/xmlenc#sha512"
#define TL_ALG_RSA_SHA1 "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
#define TL_ALG_SHA1 "http://www.w3.org/2000/09/xmldsig#sha1"

/* Signing with explicit choices (tests make refused variants with it).
 * NULL picks the default of tg_tl_sign; sig_alg/digest_alg/c14n_alg are
 * algorithm URIs known to xmlsec; ref_uri "" or "#id" (the element with
 * that Id attribute is registered as an ID). Does not check the result. */
typedef struct {
    const char *sig_alg;
    const char *digest_alg;
    const char *c14n_alg;
    const char *ref_uri;
    int no_key_info;
} tl_sign_opts_t;

TG_WUR int tl_sign_ex(const uint8_t *xml, size_t len, EVP_PKEY *key, X509 *cert,
                      const tl_sign_opts_t *opts, tg_tl_refusal_t *why, tg_buf_t *out);

/* Strict base64 (XML whitespace skipped, padding checked) of the
 * NUL-terminated s into a malloc'd buffer (caller frees). Returns 0,
 * TG_EMALFORMED or TG_ENOMEM. */
TG_WUR int tl_b64_decode(const char *s, uint8_t **out, size_t *out_len);

/* 1 for the four XML whitespace characters. */
int tl_is_xml_space(char c);

/* Formats t as "YYYY-MM-DDThh:mm:ssZ" into out (at least 21 bytes). */
void tl_format_time(time_t t, char *out, size_t cap);

#endif
