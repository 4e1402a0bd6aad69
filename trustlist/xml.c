/* Process set-up, the hardened XML parser, tree helpers, the arena. */
#include "trustlist/trustlist_internal.h"

#include "common/log.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/SAX2.h>
#include <libxml/xmlerror.h>
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/xmlsec.h>

#include <limits.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------ */

struct tl_chunk {
    tl_chunk_t *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

#define TL_CHUNK_MIN 16384

void *tl_arena_alloc(tl_arena_t *a, size_t n)
{
    const size_t align = alignof(max_align_t);
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + align - 1) & ~(align - 1);
    if (n == 0)
        n = align;
    tl_chunk_t *c = a->head;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > TL_CHUNK_MIN ? n : TL_CHUNK_MIN;
        c = malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *tl_arena_strndup(tl_arena_t *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *d = tl_arena_alloc(a, n + 1);
    if (d == NULL)
        return NULL;
    if (n > 0)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

int tl_arena_own_x509(tl_arena_t *a, X509 *x)
{
    if (a->n_x509s == a->cap_x509s) {
        size_t cap = a->cap_x509s ? a->cap_x509s * 2 : 16;
        X509 **p = realloc(a->x509s, cap * sizeof(*p));
        if (p == NULL) {
            X509_free(x);
            return TG_ENOMEM;
        }
        a->x509s = p;
        a->cap_x509s = cap;
    }
    a->x509s[a->n_x509s++] = x;
    return 0;
}

void tl_arena_free(tl_arena_t *a)
{
    for (size_t i = 0; i < a->n_x509s; i++)
        X509_free(a->x509s[i]);
    free(a->x509s);
    tl_chunk_t *c = a->head;
    while (c != NULL) {
        tl_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    memset(a, 0, sizeof(*a));
}

/* ---- refusals --------------------------------------------------------- */

int tl_refuse(tg_tl_refusal_t *why, const char *code, const char *fmt, ...)
{
    if (why != NULL) {
        why->code = code;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(why->message, sizeof(why->message), fmt, ap);
        va_end(ap);
        if (n < 0)
            why->message[0] = '\0';
        /* Messages quote document content: keep them on one printable line. */
        for (char *p = why->message; *p; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = ' ';
        }
    }
    return TG_EMALFORMED;
}

int tl_internal(tg_tl_refusal_t *why, int err, const char *what)
{
    if (why != NULL) {
        why->code = "internal";
        snprintf(why->message, sizeof(why->message), "%s: %s", what, tg_strerror(err));
    }
    return err;
}

/* ---- xmlsec error reports ----------------------------------------------- */

static _Thread_local char xmlsec_err[200];

static void xmlsec_error_cb(const char *file, int line, const char *func, const char *obj,
                            const char *subj, int reason, const char *msg)
{
    (void)file;
    (void)line;
    (void)subj;
    (void)reason;
    /* Keep the first report of an operation: later ones are the unwinding
     * callers ("xmlSecDSigCtxVerify failed"), the first names the cause. */
    if (xmlsec_err[0] != '\0')
        return;
    snprintf(xmlsec_err, sizeof(xmlsec_err), "%s%s%s: %s", obj ? obj : "", obj ? " " : "",
             func ? func : "?", msg ? msg : "");
}

const char *tl_xmlsec_last_error(void)
{
    return xmlsec_err;
}

void tl_xmlsec_clear_error(void)
{
    xmlsec_err[0] = '\0';
}

/* ---- global set-up ---------------------------------------------------- */

static int initialised;

/* No external entity, DTD or XInclude is ever fetched, whatever a document
 * or a library asks for. */
static xmlParserInputPtr deny_entity_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    (void)url;
    (void)id;
    (void)ctxt;
    return NULL;
}

/* libxml2 reports errors outside a parser context (c14n, xmlsec's use of
 * the tree API) through these; document problems are reported through
 * refusals instead, so they are dropped. */
static void silent_structured(void *ctx, xmlErrorPtr err)
{
    (void)ctx;
    (void)err;
}

int tg_tl_global_init(void)
{
    if (initialised)
        return 0;
    xmlInitParser();
    LIBXML_TEST_VERSION
    xmlSetExternalEntityLoader(deny_entity_loader);
    xmlSetStructuredErrorFunc(NULL, silent_structured);
    if (xmlSecInit() < 0) {
        tg_error("xmlSecInit failed");
        return TG_ECRYPTO;
    }
    if (xmlSecCheckVersion() != 1) {
        tg_error("xmlsec: loaded library does not match the headers");
        xmlSecShutdown();
        return TG_ECRYPTO;
    }
    if (xmlSecCryptoAppInit(NULL) < 0) {
        tg_error("xmlSecCryptoAppInit failed");
        xmlSecShutdown();
        return TG_ECRYPTO;
    }
    if (xmlSecCryptoInit() < 0) {
        tg_error("xmlSecCryptoInit failed");
        (void)xmlSecCryptoAppShutdown();
        xmlSecShutdown();
        return TG_ECRYPTO;
    }
    xmlSecErrorsSetCallback(xmlsec_error_cb);
    initialised = 1;
    return 0;
}

void tg_tl_global_cleanup(void)
{
    if (!initialised)
        return;
    (void)xmlSecCryptoShutdown();
    (void)xmlSecCryptoAppShutdown();
    (void)xmlSecShutdown();
    xmlCleanupParser();
    initialised = 0;
}

/* ---- hardened parsing --------------------------------------------------- */

typedef struct {
    int entity_decl;
    char entity_name[64];
} read_state_t;

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
                           const xmlChar *system_id, xmlChar *content)
{
    (void)type;
    (void)public_id;
    (void)system_id;
    (void)content;
    xmlParserCtxtPtr ctxt = ctx;
    read_state_t *st = ctxt->_private;
    if (st != NULL && !st->entity_decl) {
        st->entity_decl = 1;
        snprintf(st->entity_name, sizeof(st->entity_name), "%s", name ? (const char *)name : "");
    }
    /* Stop at the first declaration: nothing is expanded, and a
     * "billion laughs" costs one declaration's worth of parsing. */
    xmlStopParser(ctxt);
}

static void on_unparsed_entity_decl(void *ctx, const xmlChar *name, const xmlChar *public_id,
                                    const xmlChar *system_id, const xmlChar *notation)
{
    (void)notation;
    on_entity_decl(ctx, name, XML_EXTERNAL_GENERAL_UNPARSED_ENTITY, public_id, system_id, NULL);
}

int tl_xml_read(const uint8_t *xml, size_t len, tg_tl_refusal_t *why, xmlDocPtr *out_doc)
{
    *out_doc = NULL;
    if (len > TG_TL_MAX_BYTES || len > INT_MAX) {
        if (why != NULL) {
            tl_refuse(why, "too_big", "document of %zu bytes exceeds the %zu byte limit", len,
                      TG_TL_MAX_BYTES);
        }
        return TG_ETOOBIG;
    }
    if (len == 0)
        return tl_refuse(why, "malformed_xml", "empty document");

    xmlParserCtxtPtr ctxt = xmlCreateMemoryParserCtxt((const char *)xml, (int)len);
    if (ctxt == NULL) {
        tg_error("xmlCreateMemoryParserCtxt failed");
        return tl_internal(why, TG_ENOMEM, "XML parser");
    }
    /* No XML_PARSE_NOENT (entity substitution) and no XML_PARSE_DTDLOAD /
     * DTDATTR / DTDVALID: nothing outside the bytes is read, nothing is
     * expanded, no default attribute is invented. */
    int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
    if (xmlCtxtUseOptions(ctxt, opts) != 0) {
        tg_error("xmlCtxtUseOptions refused the parser options");
        xmlFreeParserCtxt(ctxt);
        return tl_internal(why, TG_EINVAL, "XML parser");
    }
    /* libxml2's error handlers are per thread: keep this one quiet too
     * (c14n and tree errors go to refusals, not to stderr). */
    xmlSetStructuredErrorFunc(NULL, silent_structured);
    read_state_t st = {0};
    ctxt->_private = &st;
    ctxt->sax->entityDecl = on_entity_decl;
    ctxt->sax->unparsedEntityDecl = on_unparsed_entity_decl;
    ctxt->sax->externalSubset = NULL; /* never load an external DTD */
    ctxt->sax->resolveEntity = NULL;

    int prc = xmlParseDocument(ctxt);
    xmlDocPtr doc = ctxt->myDoc;
    ctxt->myDoc = NULL;
    int rc = 0;
    if (st.entity_decl) {
        rc = tl_refuse(why, "entity_declaration",
                       "the document declares entities (first: \"%s\"); refused unexpanded",
                       st.entity_name);
    } else if (prc != 0 || !ctxt->wellFormed || doc == NULL) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        if (e != NULL && e->code == XML_ERR_NO_MEMORY) {
            tg_error("XML parser: out of memory");
            rc = tl_internal(why, TG_ENOMEM, "XML parser");
        } else {
            char msg[160] = "not well-formed";
            if (e != NULL && e->message != NULL)
                snprintf(msg, sizeof(msg), "%s", e->message);
            size_t ml = strlen(msg);
            while (ml > 0 && (msg[ml - 1] == '\n' || msg[ml - 1] == ' '))
                msg[--ml] = '\0';
            rc = tl_refuse(why, "malformed_xml", "line %d: %s", e ? e->line : 0, msg);
        }
    } else if (doc->intSubset != NULL || doc->extSubset != NULL) {
        /* Even without entities a DTD can declare ID attributes (which
         * would redirect "#id" references) or defaults: none allowed. */
        rc = tl_refuse(why, "doctype", "the document has a DOCTYPE; trust lists have none");
    } else if (xmlDocGetRootElement(doc) == NULL) {
        rc = tl_refuse(why, "malformed_xml", "no root element");
    }
    xmlFreeParserCtxt(ctxt);
    if (rc != 0) {
        xmlFreeDoc(doc);
        return rc;
    }
    *out_doc = doc;
    return 0;
}

/* ---- tree helpers ------------------------------------------------------- */

int tl_is(const xmlNode *n, const char *ns, const char *local)
{
    return n != NULL && n->type == XML_ELEMENT_NODE && n->ns != NULL && n->ns->href != NULL &&
           strcmp((const char *)n->name, local) == 0 && strcmp((const char *)n->ns->href, ns) == 0;
}

xmlNode *tl_next(const xmlNode *cur, const char *ns, const char *local)
{
    for (xmlNode *n = cur ? cur->next : NULL; n != NULL; n = n->next) {
        if (tl_is(n, ns, local))
            return n;
    }
    return NULL;
}

xmlNode *tl_child(const xmlNode *parent, const char *ns, const char *local)
{
    if (parent == NULL)
        return NULL;
    for (xmlNode *n = parent->children; n != NULL; n = n->next) {
        if (tl_is(n, ns, local))
            return n;
    }
    return NULL;
}

size_t tl_count(const xmlNode *parent, const char *ns, const char *local)
{
    size_t k = 0;
    for (xmlNode *n = tl_child(parent, ns, local); n != NULL; n = tl_next(n, ns, local))
        k++;
    return k;
}

const char *tl_attr(const xmlNode *n, const char *name)
{
    if (n == NULL || n->type != XML_ELEMENT_NODE)
        return NULL;
    for (xmlAttr *a = n->properties; a != NULL; a = a->next) {
        if (a->ns == NULL && strcmp((const char *)a->name, name) == 0) {
            xmlNode *t = a->children;
            if (t == NULL)
                return "";
            if (t->type == XML_TEXT_NODE && t->next == NULL && t->content != NULL)
                return (const char *)t->content;
            return NULL; /* entity references in attributes: none without a DTD */
        }
    }
    return NULL;
}

void tl_format_time(time_t t, char *out, size_t cap)
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, cap, "(invalid time)");
        return;
    }
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
