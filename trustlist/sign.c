/* Signing a trust list (`trustgate tl sign`): the mirror of verify.c. */
#include "trustlist/trustlist_internal.h"

#include "common/log.h"

#include <libxml/tree.h>
#include <libxml/valid.h>
#include <xmlsec/crypto.h>
#include <xmlsec/keys.h>
#include <xmlsec/templates.h>
#include <xmlsec/transforms.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>
#include <xmlsec/xmltree.h>
#include <xmlsec/openssl/evp.h>
#include <xmlsec/openssl/x509.h>

#include <openssl/x509.h>

#include <string.h>

static xmlSecTransformId by_href(const char *href)
{
    return xmlSecTransformIdListFindByHref(xmlSecTransformIdsGet(), BAD_CAST href,
                                           xmlSecTransformUsageAny);
}

/* An xmlsec key with key's private key and cert (new; NULL on failure,
 * logged). */
static xmlSecKeyPtr signing_key(EVP_PKEY *key, X509 *cert)
{
    if (EVP_PKEY_up_ref(key) != 1) {
        tg_log_openssl("EVP_PKEY_up_ref");
        return NULL;
    }
    xmlSecKeyDataPtr value = xmlSecOpenSSLEvpKeyAdopt(key);
    if (value == NULL) {
        EVP_PKEY_free(key);
        tg_error("xmlsec: cannot use the signing key (%s)", tl_xmlsec_last_error());
        return NULL;
    }
    xmlSecKeyPtr k = xmlSecKeyCreate();
    if (k == NULL || xmlSecKeySetValue(k, value) < 0) {
        xmlSecKeyDataDestroy(value);
        if (k != NULL)
            xmlSecKeyDestroy(k);
        tg_error("xmlsec: cannot make the signing key");
        return NULL;
    }
    xmlSecKeyDataPtr x509 = xmlSecKeyEnsureData(k, xmlSecOpenSSLKeyDataX509Id);
    X509 *c1 = X509_dup(cert);
    X509 *c2 = X509_dup(cert);
    int ok = x509 != NULL && c1 != NULL && c2 != NULL;
    if (ok) {
        if (xmlSecOpenSSLKeyDataX509AdoptKeyCert(x509, c1) < 0)
            ok = 0;
        else
            c1 = NULL; /* owned by the key data now */
    }
    if (ok) {
        if (xmlSecOpenSSLKeyDataX509AdoptCert(x509, c2) < 0)
            ok = 0;
        else
            c2 = NULL;
    }
    X509_free(c1);
    X509_free(c2);
    if (!ok) {
        tg_error("xmlsec: cannot attach the certificate to the signing key");
        xmlSecKeyDestroy(k);
        return NULL;
    }
    return k;
}

/* The element whose Id attribute is id (depth-first), or NULL. */
static xmlNode *find_id(xmlNode *n, const char *id)
{
    for (; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        const char *v = tl_attr(n, "Id");
        if (v != NULL && strcmp(v, id) == 0)
            return n;
        xmlNode *in = find_id(n->children, id);
        if (in != NULL)
            return in;
    }
    return NULL;
}

int tl_sign_ex(const uint8_t *xml, size_t len, EVP_PKEY *key, X509 *cert,
               const tl_sign_opts_t *opts, tg_tl_refusal_t *why, tg_buf_t *out)
{
    static const tl_sign_opts_t defaults = {0};
    if (opts == NULL)
        opts = &defaults;
    xmlDocPtr doc;
    int rc = tl_xml_read(xml, len, why, &doc);
    if (rc != 0)
        return rc;
    xmlSecDSigCtxPtr ctx = NULL;
    xmlChar *mem = NULL;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!tl_is(root, TG_TL_NS_TSL, "TrustServiceStatusList")) {
        rc = tl_refuse(why, "bad_profile", "the root element is not tsl:TrustServiceStatusList");
        goto out;
    }
    if (tl_child(root, TG_TL_NS_DS, "Signature") != NULL) {
        tg_error("tl sign: the list is already signed (a ds:Signature child of the root)");
        rc = TG_EINVAL;
        goto out;
    }
    if (X509_check_private_key(cert, key) != 1) {
        tg_openssl_clear_errors();
        tg_error("tl sign: the key does not belong to the certificate");
        rc = TG_EINVAL;
        goto out;
    }
    const char *sig_alg = opts->sig_alg;
    if (sig_alg == NULL) {
        int t = EVP_PKEY_base_id(key);
        if (t == EVP_PKEY_RSA) {
            sig_alg = TL_ALG_RSA_SHA256;
        } else if (t == EVP_PKEY_EC) {
            sig_alg = TL_ALG_ECDSA_SHA256;
        } else {
            tg_error("tl sign: the key is neither RSA nor ECDSA (SPEC §2)");
            rc = TG_EUNSUPPORTED;
            goto out;
        }
    }
    xmlSecTransformId sig_id = by_href(sig_alg);
    xmlSecTransformId dig_id = by_href(opts->digest_alg ? opts->digest_alg : TL_ALG_SHA256);
    xmlSecTransformId c14n_id = by_href(opts->c14n_alg ? opts->c14n_alg : TL_ALG_EXC_C14N);
    if (sig_id == xmlSecTransformIdUnknown || dig_id == xmlSecTransformIdUnknown ||
        c14n_id == xmlSecTransformIdUnknown) {
        tg_error("tl sign: algorithm unknown to xmlsec");
        rc = TG_EUNSUPPORTED;
        goto out;
    }
    const char *ref_uri = opts->ref_uri ? opts->ref_uri : "";
    if (ref_uri[0] == '#') {
        xmlNode *target = find_id(root, ref_uri + 1);
        xmlAttrPtr a = target ? xmlHasProp(target, BAD_CAST "Id") : NULL;
        if (a == NULL || (xmlGetID(doc, BAD_CAST ref_uri + 1) == NULL &&
                          xmlAddID(NULL, doc, BAD_CAST ref_uri + 1, a) == NULL)) {
            tg_error("tl sign: no element with Id \"%s\"", ref_uri + 1);
            rc = TG_EINVAL;
            goto out;
        }
    }

    xmlNode *sig = xmlSecTmplSignatureCreateNsPref(doc, c14n_id, sig_id, NULL, BAD_CAST "ds");
    if (sig == NULL)
        goto xmlsec_failed;
    if (xmlAddChild(root, sig) == NULL) {
        xmlFreeNode(sig);
        goto xmlsec_failed;
    }
    xmlNode *ref = xmlSecTmplSignatureAddReference(sig, dig_id, NULL, BAD_CAST ref_uri, NULL);
    if (ref == NULL || xmlSecTmplReferenceAddTransform(ref, xmlSecTransformEnvelopedId) == NULL ||
        xmlSecTmplReferenceAddTransform(ref, xmlSecTransformExclC14NId) == NULL)
        goto xmlsec_failed;
    if (!opts->no_key_info) {
        xmlNode *ki = xmlSecTmplSignatureEnsureKeyInfo(sig, NULL);
        xmlNode *xd = ki ? xmlSecTmplKeyInfoAddX509Data(ki) : NULL;
        if (xd == NULL || xmlSecTmplX509DataAddCertificate(xd) == NULL)
            goto xmlsec_failed;
    }
    ctx = xmlSecDSigCtxCreate(NULL);
    if (ctx == NULL)
        goto xmlsec_failed;
    ctx->signKey = signing_key(key, cert);
    if (ctx->signKey == NULL) {
        rc = TG_ECRYPTO;
        goto out;
    }
    tl_xmlsec_clear_error();
    if (xmlSecDSigCtxSign(ctx, sig) < 0)
        goto xmlsec_failed;

    int size = 0;
    xmlDocDumpMemoryEnc(doc, &mem, &size, "UTF-8");
    if (mem == NULL || size <= 0) {
        tg_error("tl sign: cannot serialise the signed document");
        rc = TG_ENOMEM;
        goto out;
    }
    rc = tg_buf_append(out, mem, (size_t)size);
    if (rc != 0)
        tg_error("tl sign: out of memory");
    goto out;

xmlsec_failed:
    tg_error("tl sign: xmlsec failed: %s", tl_xmlsec_last_error());
    rc = TG_ECRYPTO;
out:
    if (rc < 0 && why != NULL && why->code == NULL)
        tl_internal(why, rc, "signing");
    xmlFree(mem);
    if (ctx != NULL)
        xmlSecDSigCtxDestroy(ctx);
    xmlFreeDoc(doc);
    return rc;
}

int tg_tl_sign(const uint8_t *xml, size_t len, EVP_PKEY *key, X509 *cert, tg_tl_refusal_t *out_why,
               tg_buf_t *out)
{
    if (out_why != NULL) {
        out_why->code = NULL;
        out_why->message[0] = '\0';
    }
    /* The input must be a list trustgate would read. */
    tg_tl_list_t *in = NULL;
    int rc = tg_tl_parse(xml, len, out_why, &in);
    tg_tl_list_free(in);
    if (rc != 0)
        return rc;
    size_t start = out->len;
    rc = tl_sign_ex(xml, len, key, cert, NULL, out_why, out);
    if (rc != 0)
        return rc;
    /* And so must the output, verified against the signing certificate. */
    tg_tl_list_t *check = NULL;
    X509 *const certs[1] = {cert};
    rc = tg_tl_load(out->data + start, out->len - start, certs, 1, out_why, &check);
    tg_tl_list_free(check);
    if (rc != 0) {
        tg_error("tl sign: the signed list does not verify: %s: %s",
                 out_why && out_why->code ? out_why->code : "?", out_why ? out_why->message : "");
        out->len = start;
    }
    return rc;
}
