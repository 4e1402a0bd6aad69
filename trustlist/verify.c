/* XMLDSig verification of a trust list against pinned operator
 * certificates (research/trustlists.md, "Verifying in C"), with the
 * signature-wrapping defences:
 *
 *  - exactly one TrustServiceStatusList element in the whole document, and
 *    it is the root (content smuggled into ds:Object, or a signed list
 *    wrapped in an unsigned one, is refused as "wrapping");
 *  - exactly one ds:Signature, a direct child of the root;
 *  - the root Id is registered before xmlsec runs, and an Id that some
 *    other element already claims is refused;
 *  - only "" and "#id" reference URIs; only allow-listed transforms and
 *    algorithms, checked by us (for a precise reason) and again by xmlsec;
 *  - every reference valid, and one of them URI "" or "#<root Id>" (with
 *    the ID resolving to the root) so the whole list is covered;
 *  - the key comes from the pinned certificate only; KeyInfo is read only
 *    to say who signed a list that no pinned certificate verifies. */
#include "trustlist/trustlist_internal.h"

#include "common/log.h"

#include <libxml/tree.h>
#include <libxml/valid.h>
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/keys.h>
#include <xmlsec/list.h>
#include <xmlsec/transforms.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>
#include <xmlsec/openssl/evp.h>

#include <openssl/x509.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REFERENCES 16

static const char *const c14n_algs[] = {
    TL_ALG_EXC_C14N, TL_ALG_EXC_C14N_C, TL_ALG_C14N10,
    TL_ALG_C14N10_C, TL_ALG_C14N11,     TL_ALG_C14N11_C,
};
static const char *const sig_algs[] = {
    TL_ALG_RSA_SHA256,   TL_ALG_RSA_SHA384,   TL_ALG_RSA_SHA512,
    TL_ALG_ECDSA_SHA256, TL_ALG_ECDSA_SHA384, TL_ALG_ECDSA_SHA512,
};
static const char *const digest_algs[] = {TL_ALG_SHA256, TL_ALG_SHA384, TL_ALG_SHA512};

static int in_set(const char *s, const char *const *set, size_t n)
{
    if (s == NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, set[i]) == 0)
            return 1;
    }
    return 0;
}

#define IN(s, set) in_set((s), (set), sizeof(set) / sizeof((set)[0]))

/* Names SHA-1 (and MD5) explicitly: the most likely unsupported choice. */
static const char *weak_note(const char *alg)
{
    if (alg != NULL && (strstr(alg, "sha1") != NULL || strstr(alg, "md5") != NULL))
        return " (SHA-1 and MD5 are refused)";
    return "";
}

/* Counts elements named local (any namespace) in the subtree of n,
 * iteratively (documents are deep enough to make recursion a risk). */
static size_t count_named(const xmlNode *top, const char *local)
{
    size_t k = 0;
    const xmlNode *n = top;
    while (n != NULL) {
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, local) == 0)
            k++;
        if (n->type == XML_ELEMENT_NODE && n->children != NULL) {
            n = n->children;
            continue;
        }
        while (n != NULL && n != top && n->next == NULL)
            n = n->parent;
        if (n == NULL || n == top)
            break;
        n = n->next;
    }
    return k;
}

typedef struct {
    xmlNode *root;
    xmlNode *sig;
    const char *root_id;
    int key_type; /* EVP_PKEY_RSA or EVP_PKEY_EC, from SignatureMethod */
} prescan_t;

static int uri_ok(const char *uri)
{
    if (uri[0] == '\0')
        return 1;
    if (uri[0] != '#' || uri[1] == '\0')
        return 0;
    for (const char *p = uri + 1; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0; /* "#xpointer(...)" and anything exotic */
    }
    return 1;
}

static int is_whole(const char *uri, const char *root_id)
{
    return uri != NULL &&
           (uri[0] == '\0' || (root_id != NULL && uri[0] == '#' && strcmp(uri + 1, root_id) == 0));
}

static int prescan(xmlDocPtr doc, tg_tl_refusal_t *why, prescan_t *ps)
{
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!tl_is(root, TG_TL_NS_TSL, "TrustServiceStatusList"))
        return tl_refuse(why, "bad_profile", "the root element is not tsl:TrustServiceStatusList");
    size_t ntsl = 0;
    for (xmlNode *n = doc->children; n != NULL; n = n->next)
        ntsl += count_named(n, "TrustServiceStatusList");
    if (ntsl != 1)
        return tl_refuse(why, "wrapping",
                         "%zu TrustServiceStatusList elements; exactly one allowed", ntsl);
    size_t nsig = tl_count(root, TG_TL_NS_DS, "Signature");
    if (nsig == 0)
        return tl_refuse(why, "no_signature", "no ds:Signature child of the root element");
    if (nsig > 1)
        return tl_refuse(why, "wrapping", "%zu ds:Signature children of the root; one allowed",
                         nsig);
    ps->root = root;
    ps->sig = tl_child(root, TG_TL_NS_DS, "Signature");

    /* Register the root Id, so "#Id" resolves to the root and to nothing
     * else: an element that already holds that ID (xml:id) is wrapping. */
    ps->root_id = tl_attr(root, "Id");
    if (ps->root_id != NULL) {
        xmlAttrPtr existing = xmlGetID(doc, BAD_CAST ps->root_id);
        xmlAttrPtr mine = xmlHasProp(root, BAD_CAST "Id");
        if (existing != NULL && existing->parent != root)
            return tl_refuse(why, "wrapping", "another element claims the root Id \"%.60s\"",
                             ps->root_id);
        if (existing == NULL &&
            (mine == NULL || xmlAddID(NULL, doc, BAD_CAST ps->root_id, mine) == NULL))
            return tl_refuse(why, "bad_profile", "the root Id \"%.60s\" cannot be registered",
                             ps->root_id);
    }

    xmlNode *si = NULL;
    for (xmlNode *n = ps->sig->children; n != NULL; n = n->next) {
        if (n->type == XML_ELEMENT_NODE) {
            si = n;
            break;
        }
    }
    if (!tl_is(si, TG_TL_NS_DS, "SignedInfo"))
        return tl_refuse(why, "bad_signature", "ds:Signature does not start with ds:SignedInfo");
    xmlNode *cm = tl_child(si, TG_TL_NS_DS, "CanonicalizationMethod");
    const char *alg = tl_attr(cm, "Algorithm");
    if (!IN(alg, c14n_algs))
        return tl_refuse(why, "bad_transform", "canonicalization method \"%.100s\" not allowed",
                         alg ? alg : "(none)");
    xmlNode *sm = tl_child(si, TG_TL_NS_DS, "SignatureMethod");
    alg = tl_attr(sm, "Algorithm");
    if (!IN(alg, sig_algs))
        return tl_refuse(why, "unsupported_algorithm", "signature method \"%.100s\" not allowed%s",
                         alg ? alg : "(none)", weak_note(alg));
    ps->key_type = strstr(alg, "#ecdsa-") != NULL ? EVP_PKEY_EC : EVP_PKEY_RSA;

    size_t nref = 0;
    int whole = 0;
    for (xmlNode *r = tl_child(si, TG_TL_NS_DS, "Reference"); r != NULL;
         r = tl_next(r, TG_TL_NS_DS, "Reference")) {
        if (++nref > MAX_REFERENCES)
            return tl_refuse(why, "bad_signature", "more than %d references", MAX_REFERENCES);
        const char *uri = tl_attr(r, "URI");
        if (uri == NULL)
            return tl_refuse(why, "bad_reference", "a Reference without URI");
        if (!uri_ok(uri))
            return tl_refuse(why, "bad_reference",
                             "reference URI \"%.100s\" is neither empty nor a same-document Id",
                             uri);
        whole |= is_whole(uri, ps->root_id);
        xmlNode *ts = tl_child(r, TG_TL_NS_DS, "Transforms");
        for (xmlNode *t = tl_child(ts, TG_TL_NS_DS, "Transform"); t != NULL;
             t = tl_next(t, TG_TL_NS_DS, "Transform")) {
            const char *ta = tl_attr(t, "Algorithm");
            if (!(ta != NULL && (strcmp(ta, TL_ALG_ENVELOPED) == 0 || IN(ta, c14n_algs))))
                return tl_refuse(why, "bad_transform", "transform \"%.100s\" not allowed",
                                 ta ? ta : "(none)");
        }
        const char *da = tl_attr(tl_child(r, TG_TL_NS_DS, "DigestMethod"), "Algorithm");
        if (!IN(da, digest_algs))
            return tl_refuse(why, "unsupported_algorithm", "digest method \"%.100s\" not allowed%s",
                             da ? da : "(none)", weak_note(da));
    }
    if (nref == 0)
        return tl_refuse(why, "bad_signature", "ds:SignedInfo has no Reference");
    if (!whole)
        return tl_refuse(why, "partial_reference",
                         "no reference covers the whole document (URI \"\" or \"#%.60s\")",
                         ps->root_id ? ps->root_id : "<root Id>");
    return 0;
}

/* A key holding cert's public key (new; the caller or the context owned by
 * the caller destroys it). NULL on failure (logged). */
static xmlSecKeyPtr key_of(X509 *cert)
{
    EVP_PKEY *pk = X509_get_pubkey(cert);
    if (pk == NULL) {
        tg_log_openssl("X509_get_pubkey");
        return NULL;
    }
    xmlSecKeyDataPtr data = xmlSecOpenSSLEvpKeyAdopt(pk);
    if (data == NULL) {
        EVP_PKEY_free(pk);
        tg_error("xmlsec: cannot use this operator key (%s)", tl_xmlsec_last_error());
        return NULL;
    }
    xmlSecKeyPtr key = xmlSecKeyCreate();
    if (key == NULL || xmlSecKeySetValue(key, data) < 0) {
        xmlSecKeyDataDestroy(data);
        if (key != NULL)
            xmlSecKeyDestroy(key);
        tg_error("xmlsec: cannot make a key");
        return NULL;
    }
    return key;
}

static int enable_transforms(xmlSecDSigCtxPtr ctx)
{
    const xmlSecTransformId c14n[] = {
        xmlSecTransformExclC14NId,   xmlSecTransformExclC14NWithCommentsId,
        xmlSecTransformInclC14NId,   xmlSecTransformInclC14NWithCommentsId,
        xmlSecTransformInclC14N11Id, xmlSecTransformInclC14N11WithCommentsId,
    };
    const xmlSecTransformId digests[] = {
        xmlSecTransformSha256Id,
        xmlSecTransformSha384Id,
        xmlSecTransformSha512Id,
    };
    const xmlSecTransformId sigs[] = {
        xmlSecTransformRsaSha256Id,   xmlSecTransformRsaSha384Id,   xmlSecTransformRsaSha512Id,
        xmlSecTransformEcdsaSha256Id, xmlSecTransformEcdsaSha384Id, xmlSecTransformEcdsaSha512Id,
    };
    for (size_t i = 0; i < sizeof(c14n) / sizeof(c14n[0]); i++) {
        if (xmlSecDSigCtxEnableReferenceTransform(ctx, c14n[i]) < 0 ||
            xmlSecDSigCtxEnableSignatureTransform(ctx, c14n[i]) < 0)
            return -1;
    }
    if (xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformEnvelopedId) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(digests) / sizeof(digests[0]); i++) {
        if (xmlSecDSigCtxEnableReferenceTransform(ctx, digests[i]) < 0)
            return -1;
    }
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (xmlSecDSigCtxEnableSignatureTransform(ctx, sigs[i]) < 0)
            return -1;
    }
    return 0;
}

typedef enum {
    TRY_OK = 0,
    TRY_KEY_MISMATCH, /* references valid, signature value not for this key */
    TRY_BAD_DIGEST,   /* a reference does not match: content changed */
    TRY_ERROR,        /* xmlsec failed on the document (message in why) */
    TRY_INTERNAL,     /* our failure (logged) */
} try_t;

/* One verification of ps->sig with cert's key. */
static try_t try_cert(xmlDocPtr doc, const prescan_t *ps, X509 *cert, tg_tl_refusal_t *why)
{
    EVP_PKEY *pk = X509_get0_pubkey(cert);
    if (pk == NULL || EVP_PKEY_base_id(pk) != ps->key_type) {
        tg_openssl_clear_errors();
        return TRY_KEY_MISMATCH;
    }
    xmlSecDSigCtxPtr ctx = xmlSecDSigCtxCreate(NULL);
    if (ctx == NULL) {
        tg_error("xmlSecDSigCtxCreate failed");
        return TRY_INTERNAL;
    }
    try_t res = TRY_INTERNAL;
    ctx->flags |= XMLSEC_DSIG_FLAGS_IGNORE_MANIFESTS;
    ctx->enabledReferenceUris = xmlSecTransformUriTypeEmpty | xmlSecTransformUriTypeSameDocument;
    if (enable_transforms(ctx) < 0) {
        tg_error("xmlsec: cannot restrict transforms (%s)", tl_xmlsec_last_error());
        goto out;
    }
    ctx->signKey = key_of(cert); /* owned by ctx from here */
    if (ctx->signKey == NULL)
        goto out;
    tl_xmlsec_clear_error();
    if (xmlSecDSigCtxVerify(ctx, ps->sig) < 0) {
        tl_refuse(why, "bad_signature", "xmlsec: %s", tl_xmlsec_last_error());
        res = TRY_ERROR;
        goto out;
    }
    int refs_ok = 1, whole = 0;
    xmlSecSize n = xmlSecPtrListGetSize(&ctx->signedInfoReferences);
    for (xmlSecSize i = 0; i < n; i++) {
        xmlSecDSigReferenceCtxPtr r = xmlSecPtrListGetItem(&ctx->signedInfoReferences, i);
        if (r == NULL || r->status != xmlSecDSigStatusSucceeded) {
            refs_ok = 0;
            continue;
        }
        const char *uri = r->uri ? (const char *)r->uri : "";
        if (uri[0] == '\0') {
            whole = 1;
        } else if (is_whole(uri, ps->root_id)) {
            xmlAttrPtr id = xmlGetID(doc, BAD_CAST ps->root_id);
            if (id != NULL && id->parent == ps->root)
                whole = 1;
        }
    }
    if (!refs_ok || n == 0) {
        tl_refuse(why, "bad_signature",
                  "a reference digest does not match: the list was changed after signing");
        res = TRY_BAD_DIGEST;
    } else if (ctx->status != xmlSecDSigStatusSucceeded) {
        res = TRY_KEY_MISMATCH;
    } else if (!whole) {
        tl_refuse(why, "partial_reference", "no verified reference covers the whole document");
        res = TRY_ERROR;
    } else {
        res = TRY_OK;
    }
out:
    xmlSecDSigCtxDestroy(ctx);
    return res;
}

/* The first KeyInfo/X509Data/X509Certificate of the signature, or NULL.
 * Only ever used to name the signer of a refused list. */
static X509 *keyinfo_cert(const xmlNode *sig)
{
    xmlNode *ki = tl_child(sig, TG_TL_NS_DS, "KeyInfo");
    for (xmlNode *xd = tl_child(ki, TG_TL_NS_DS, "X509Data"); xd != NULL;
         xd = tl_next(xd, TG_TL_NS_DS, "X509Data")) {
        xmlNode *c = tl_child(xd, TG_TL_NS_DS, "X509Certificate");
        if (c == NULL)
            continue;
        xmlChar *txt = xmlNodeGetContent(c);
        uint8_t *der = NULL;
        size_t len = 0;
        X509 *x = NULL;
        if (txt != NULL && tl_b64_decode((const char *)txt, &der, &len) == 0) {
            const unsigned char *p = der;
            x = d2i_X509(NULL, &p, (long)len);
        }
        free(der);
        xmlFree(txt);
        tg_openssl_clear_errors();
        return x;
    }
    return NULL;
}

int tl_verify_doc(xmlDocPtr doc, X509 *const *certs, size_t n_certs, tg_tl_refusal_t *why,
                  X509 **out_verified_by)
{
    *out_verified_by = NULL;
    prescan_t ps = {0};
    int rc = prescan(doc, why, &ps);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n_certs; i++) {
        switch (try_cert(doc, &ps, certs[i], why)) {
        case TRY_OK: *out_verified_by = certs[i]; return 0;
        case TRY_KEY_MISMATCH: continue;
        case TRY_BAD_DIGEST:
        case TRY_ERROR: return TG_EMALFORMED;
        case TRY_INTERNAL: return tl_internal(why, TG_ECRYPTO, "xmlsec");
        }
    }
    /* No pinned certificate verifies an otherwise intact signature. Tell a
     * list signed by someone else from a broken signature value. */
    X509 *other = keyinfo_cert(ps.sig);
    char subject[160] = "";
    int signed_by_other = 0;
    if (other != NULL) {
        X509_NAME_oneline(X509_get_subject_name(other), subject, sizeof(subject));
        tg_tl_refusal_t scratch;
        signed_by_other = try_cert(doc, &ps, other, &scratch) == TRY_OK;
        X509_free(other);
    }
    tg_openssl_clear_errors();
    if (signed_by_other) {
        return tl_refuse(why, "wrong_signer",
                         "signed by %s, which is not a pinned operator certificate", subject);
    }
    if (other != NULL) {
        return tl_refuse(why, "bad_signature",
                         "the signature value verifies neither with the %zu pinned operator "
                         "certificate(s) nor with the KeyInfo certificate",
                         n_certs);
    }
    return tl_refuse(why, "wrong_signer",
                     "the signature does not verify with any of the %zu pinned operator "
                     "certificate(s)",
                     n_certs);
}
