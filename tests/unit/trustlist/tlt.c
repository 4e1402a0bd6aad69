#include "tests/unit/trustlist/tlt.h"

#include "common/log.h"

#include <criterion/criterion.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tlt_setup(void)
{
    tg_log_set_level(TG_LOG_ERROR);
    cr_assert_eq(tg_tl_global_init(), 0);
}

void tlt_teardown(void)
{
    tg_tl_global_cleanup();
}

const char *tlt_vectors(void)
{
    static char path[1024];
    const char *v = getenv("TG_VECTORS");
    snprintf(path, sizeof(path), "%s/trustlists", v && *v ? v : "/work/shared/vectors");
    return path;
}

uint8_t *tlt_read(const char *path, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    tg_buf_t b;
    tg_buf_init(&b);
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        cr_assert_eq(tg_buf_append(&b, tmp, n), 0);
    fclose(f);
    *out_len = b.len;
    if (b.data == NULL)
        b.data = malloc(1);
    return b.data;
}

void tlt_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

EVP_PKEY *tlt_key(const char *kind)
{
    EVP_PKEY *k = strcmp(kind, "rsa") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                           : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    cr_assert_not_null(k);
    return k;
}

X509 *tlt_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *issuer_key, int ca)
{
    static long serial = 1000;
    X509 *x = X509_new();
    cr_assert_not_null(x);
    cr_assert(X509_set_version(x, X509_VERSION_3));
    cr_assert(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++));
    X509_NAME *name = X509_NAME_new();
    cr_assert(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                         -1, 0));
    cr_assert(X509_set_subject_name(x, name));
    X509_NAME_free(name);
    cr_assert(X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x)));
    cr_assert(X509_gmtime_adj(X509_getm_notBefore(x), -86400));
    cr_assert(X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365));
    cr_assert(X509_set_pubkey(x, pub));
    if (ca) {
        X509V3_CTX v3;
        X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
        X509_EXTENSION *e =
            X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
        cr_assert_not_null(e);
        cr_assert(X509_add_ext(x, e, -1));
        X509_EXTENSION_free(e);
    }
    cr_assert(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    return x;
}

static void put(tg_buf_t *b, const char *s)
{
    cr_assert_eq(tg_buf_append_str(b, s), 0);
}

static void put_cert(tg_buf_t *b, X509 *x)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    cr_assert(n > 0);
    char *b64 = malloc((size_t)n / 3 * 4 + 8);
    cr_assert_not_null(b64);
    EVP_EncodeBlock((unsigned char *)b64, der, n);
    put(b, "<DigitalId><X509Certificate>");
    put(b, b64);
    put(b, "</X509Certificate></DigitalId>");
    free(b64);
    OPENSSL_free(der);
}

void tlt_build(const tlt_list_t *l, tg_buf_t *b)
{
    put(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<tsl:TrustServiceStatusList xmlns:tsl=\"" TG_TL_NS_TSL "\" xmlns:sie=\"" TG_TL_NS_SIE
           "\" xmlns:xades=\"" TG_TL_NS_XADES "\" TSLTag=\"http://uri.etsi.org/19612/TSLTag\"");
    if (l->id != NULL)
        cr_assert_eq(tg_buf_printf(b, " Id=\"%s\"", l->id), 0);
    put(b, ">\n <tsl:SchemeInformation Id=\"scheme-info\">\n"
           "  <tsl:TSLVersionIdentifier>6</tsl:TSLVersionIdentifier>\n");
    cr_assert_eq(
        tg_buf_printf(b, "  <tsl:TSLSequenceNumber>%llu</tsl:TSLSequenceNumber>\n", l->seq), 0);
    put(b, "  <tsl:SchemeOperatorName><tsl:Name xml:lang=\"zh\">运营者</tsl:Name>"
           "<tsl:Name xml:lang=\"en\">Test Operator</tsl:Name></tsl:SchemeOperatorName>\n");
    cr_assert_eq(tg_buf_printf(b, "  <tsl:SchemeTerritory>%s</tsl:SchemeTerritory>\n",
                               l->territory ? l->territory : "HK"),
                 0);
    if (l->pointer_location != NULL) {
        put(b, "  <tsl:PointersToOtherTSL><tsl:OtherTSLPointer><tsl:ServiceDigitalIdentities>"
               "<tsl:ServiceDigitalIdentity xmlns=\"" TG_TL_NS_TSL "\">");
        if (l->pointer_cert)
            put_cert(b, l->pointer_cert);
        put(b, "</tsl:ServiceDigitalIdentity></tsl:ServiceDigitalIdentities><tsl:TSLLocation>");
        put(b, l->pointer_location);
        put(b, "</tsl:TSLLocation><tsl:AdditionalInformation><tsl:OtherInformation>"
               "<tsl:SchemeTerritory>CN</tsl:SchemeTerritory></tsl:OtherInformation>"
               "</tsl:AdditionalInformation></tsl:OtherTSLPointer></tsl:PointersToOtherTSL>\n");
    }
    cr_assert_eq(tg_buf_printf(b, "  <tsl:ListIssueDateTime>%s</tsl:ListIssueDateTime>\n",
                               l->issued ? l->issued : "2025-01-01T00:00:00Z"),
                 0);
    if (l->next_update != NULL) {
        if (l->next_update[0] == '\0')
            put(b, "  <tsl:NextUpdate><tsl:dateTime/></tsl:NextUpdate>\n");
        else
            cr_assert_eq(tg_buf_printf(b,
                                       "  <tsl:NextUpdate><tsl:dateTime>%s</tsl:dateTime>"
                                       "</tsl:NextUpdate>\n",
                                       l->next_update),
                         0);
    }
    put(b, " </tsl:SchemeInformation>\n <tsl:TrustServiceProviderList>\n"
           "  <tsl:TrustServiceProvider><tsl:TSPInformation><tsl:TSPName>"
           "<tsl:Name xml:lang=\"en\">");
    put(b, l->tsp_name ? l->tsp_name : "Test TSP");
    put(b, "</tsl:Name></tsl:TSPName></tsl:TSPInformation>\n   <tsl:TSPServices>\n");
    for (size_t i = 0; i < l->n_svcs; i++) {
        const tlt_svc_t *s = &l->svcs[i];
        put(b, "    <tsl:TSPService><tsl:ServiceInformation>\n     <tsl:ServiceTypeIdentifier>");
        put(b, s->type ? s->type : "http://uri.etsi.org/TrstSvc/Svctype/CA/PKC");
        put(b, "</tsl:ServiceTypeIdentifier>\n     <tsl:ServiceName><tsl:Name xml:lang=\"en\">");
        put(b, s->name);
        put(b,
            "</tsl:Name></tsl:ServiceName>\n     <tsl:ServiceDigitalIdentity xmlns=\"" TG_TL_NS_TSL
            "\">");
        for (size_t c = 0; c < s->n_certs; c++)
            put_cert(b, s->certs[c]);
        put(b, "<DigitalId><X509SubjectName>CN=ignored</X509SubjectName></DigitalId>");
        put(b, "</tsl:ServiceDigitalIdentity>\n     <tsl:ServiceStatus>");
        put(b, s->status ? s->status : TG_TL_STATUS_PREFIX "granted");
        put(b, "</tsl:ServiceStatus>\n     <tsl:StatusStartingTime>");
        put(b, s->start ? s->start : "2024-01-01T00:00:00Z");
        put(b, "</tsl:StatusStartingTime>\n");
        if (s->ocsp || s->crl || s->untyped_supply) {
            put(b, "     <tsl:ServiceSupplyPoints>");
            if (s->ocsp) {
                put(b, "<tsl:ServiceSupplyPoint type=\"" TG_TL_SUPPLY_TYPE_OCSP "\">");
                put(b, s->ocsp);
                put(b, "</tsl:ServiceSupplyPoint>");
            }
            if (s->crl) {
                put(b, "<tsl:ServiceSupplyPoint type=\"" TG_TL_SUPPLY_TYPE_CRL "\">");
                put(b, s->crl);
                put(b, "</tsl:ServiceSupplyPoint>");
            }
            if (s->untyped_supply) {
                put(b, "<tsl:ServiceSupplyPoint>");
                put(b, s->untyped_supply);
                put(b, "</tsl:ServiceSupplyPoint>");
            }
            put(b, "</tsl:ServiceSupplyPoints>\n");
        }
        if (s->n_oids > 0 || s->prefix) {
            put(b, "     <tsl:ServiceInformationExtensions><tsl:Extension Critical=\"true\">"
                   "<sie:Qualifications><sie:QualificationElement>");
            if (s->prefix)
                put(b, "<sie:Qualifiers><sie:Qualifier uri=\"" TG_TL_QUALIFIER_OID_PREFIX
                       "\"/></sie:Qualifiers>");
            put(b, "<sie:CriteriaList assert=\"atLeastOne\">");
            for (size_t o = 0; o < s->n_oids; o++) {
                put(b, "<sie:PolicySet><sie:PolicyIdentifier><xades:Identifier "
                       "Qualifier=\"OIDAsURN\">urn:oid:");
                put(b, s->oids[o]);
                put(b, "</xades:Identifier></sie:PolicyIdentifier></sie:PolicySet>");
            }
            put(b, "</sie:CriteriaList></sie:QualificationElement></sie:Qualifications>"
                   "</tsl:Extension></tsl:ServiceInformationExtensions>\n");
        }
        if (s->raw_extra)
            put(b, s->raw_extra);
        put(b, "    </tsl:ServiceInformation>\n");
        if (s->n_hist > 0) {
            put(b, "    <tsl:ServiceHistory>\n");
            for (size_t h = 0; h < s->n_hist; h++) {
                put(b, "     <tsl:ServiceHistoryInstance><tsl:ServiceTypeIdentifier>"
                       "http://uri.etsi.org/TrstSvc/Svctype/CA/PKC</tsl:ServiceTypeIdentifier>"
                       "<tsl:ServiceName><tsl:Name xml:lang=\"en\">");
                put(b, s->name);
                put(b,
                    "</tsl:Name></tsl:ServiceName><tsl:ServiceDigitalIdentity xmlns=\"" TG_TL_NS_TSL
                    "\">");
                if (s->hist[h].cert)
                    put_cert(b, s->hist[h].cert);
                put(b, "</tsl:ServiceDigitalIdentity><tsl:ServiceStatus>");
                put(b, s->hist[h].status);
                put(b, "</tsl:ServiceStatus><tsl:StatusStartingTime>");
                put(b, s->hist[h].start);
                put(b, "</tsl:StatusStartingTime></tsl:ServiceHistoryInstance>\n");
            }
            put(b, "    </tsl:ServiceHistory>\n");
        }
        put(b, "    </tsl:TSPService>\n");
    }
    put(b, "   </tsl:TSPServices>\n  </tsl:TrustServiceProvider>\n"
           " </tsl:TrustServiceProviderList>\n</tsl:TrustServiceStatusList>\n");
}

void tlt_build_signed(const tlt_list_t *l, EVP_PKEY *key, X509 *cert, tg_buf_t *out)
{
    tg_buf_t plain;
    tg_buf_init(&plain);
    tlt_build(l, &plain);
    tg_tl_refusal_t why;
    int rc = tg_tl_sign(plain.data, plain.len, key, cert, &why, out);
    cr_assert_eq(rc, 0, "sign: %d %s %s", rc, why.code ? why.code : "", why.message);
    tg_buf_free(&plain);
}

const char *tlt_tmpdir(void)
{
    static char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/tg-tl-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

void tlt_write_cert_pem(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert(PEM_write_X509(f, x));
    cr_assert_eq(fclose(f), 0);
}

void tlt_write_key_pem(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
    cr_assert_eq(fclose(f), 0);
}

void tlt_replace(tg_buf_t *b, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to);
    uint8_t *p = NULL;
    for (size_t i = 0; i + fl <= b->len; i++) {
        if (memcmp(b->data + i, from, fl) == 0) {
            p = b->data + i;
            break;
        }
    }
    cr_assert_not_null(p, "\"%s\" not found", from);
    size_t off = (size_t)(p - b->data);
    tg_buf_t n;
    tg_buf_init(&n);
    cr_assert_eq(tg_buf_append(&n, b->data, off), 0);
    cr_assert_eq(tg_buf_append(&n, to, tl), 0);
    cr_assert_eq(tg_buf_append(&n, b->data + off + fl, b->len - off - fl), 0);
    tg_buf_free(b);
    *b = n;
}

int tlt_load1(const tg_buf_t *b, X509 *cert, tg_tl_refusal_t *why)
{
    tg_tl_list_t *l = NULL;
    X509 *const certs[1] = {cert};
    int rc = tg_tl_load(b->data, b->len, certs, 1, why, &l);
    tg_tl_list_free(l);
    return rc;
}
