/* Trust-list signatures: the public vectors against their own and other
 * signers, synthetic lists signed here (RSA and ECDSA operators) and every
 * refusal of research/trustlists.md, interoperability with the xmlsec1
 * command line both ways, and the `tl show` / `tl sign` commands. */
#include "tests/unit/trustlist/tlt.h"

#include "trustlist/trustlist_internal.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(tl_verify, .init = tlt_setup, .fini = tlt_teardown);

/* ---- public vectors ---------------------------------------------------------- */

static const char *const negatives[] = {"tc-tl.xml", "fr-65-docusign.xml",
                                        "tsl-sk-minimal-dss-1911.xml"};

static int is_negative(const char *name)
{
    for (size_t i = 0; i < sizeof(negatives) / sizeof(negatives[0]); i++) {
        if (strcmp(name, negatives[i]) == 0)
            return 1;
    }
    return 0;
}

typedef struct {
    char name[256];
    uint8_t *xml;
    size_t len;
    X509 *signer;
} vec_t;

/* Every .xml with a .xml.signer.pem. */
static size_t signed_vectors(vec_t *out, size_t cap)
{
    DIR *d = opendir(tlt_vectors());
    if (d == NULL)
        cr_skip_test("no trust-list vectors under %s", tlt_vectors());
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < cap) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".xml") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s.signer.pem", tlt_vectors(), e->d_name);
        if (access(path, R_OK) != 0)
            continue;
        X509 **certs = NULL;
        size_t nc = 0;
        cr_assert_eq(tg_tl_certs_load_pem(path, &certs, &nc), 0, "%s", path);
        cr_assert_eq(nc, 1);
        snprintf(out[n].name, sizeof(out[n].name), "%s", e->d_name);
        out[n].signer = certs[0];
        free(certs);
        snprintf(path, sizeof(path), "%s/%s", tlt_vectors(), e->d_name);
        out[n].xml = tlt_read(path, &out[n].len);
        cr_assert_not_null(out[n].xml);
        n++;
    }
    closedir(d);
    return n;
}

static void free_vectors(vec_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].xml);
        X509_free(v[i].signer);
    }
}

Test(tl_verify, vectors_with_their_own_signer)
{
    vec_t v[32];
    size_t n = signed_vectors(v, 32);
    size_t good = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        tg_tl_refusal_t why;
        tg_tl_list_t *l = NULL;
        int rc = tg_tl_load(v[i].xml, v[i].len, &v[i].signer, 1, &why, &l);
        if (is_negative(v[i].name)) {
            cr_expect_eq(rc, TG_EMALFORMED, "%s accepted", v[i].name);
            cr_expect_str_eq(why.code ? why.code : "", "bad_signature", "%s: %s", v[i].name,
                             why.message);
            bad++;
        } else {
            cr_expect_eq(rc, 0, "%s: %s: %s", v[i].name, why.code ? why.code : "", why.message);
            if (rc == 0) {
                cr_expect_eq(X509_cmp(l->verified_by, v[i].signer), 0);
                good++;
            }
        }
        tg_tl_list_free(l);
    }
    cr_expect_eq(bad, 3);
    cr_expect(good >= 10, "only %zu verified", good);
    free_vectors(v, n);
}

Test(tl_verify, vectors_against_another_signer)
{
    vec_t v[32];
    size_t n = signed_vectors(v, 32);
    size_t checked = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_negative(v[i].name))
            continue;
        for (size_t j = 0; j < n; j++) {
            if (j == i || X509_cmp(v[i].signer, v[j].signer) == 0)
                continue;
            tg_tl_refusal_t why;
            tg_tl_list_t *l = NULL;
            int rc = tg_tl_load(v[i].xml, v[i].len, &v[j].signer, 1, &why, &l);
            cr_expect_eq(rc, TG_EMALFORMED, "%s accepted with %s's signer", v[i].name, v[j].name);
            cr_expect_null(l);
            cr_expect_str_eq(why.code ? why.code : "", "wrong_signer", "%s / %s: %s", v[i].name,
                             v[j].name, why.message);
            checked++;
        }
        /* The right signer among wrong ones is found. */
        X509 *several[3] = {v[(i + 1) % n].signer, v[(i + 2) % n].signer, v[i].signer};
        tg_tl_refusal_t why;
        tg_tl_list_t *l = NULL;
        cr_expect_eq(tg_tl_load(v[i].xml, v[i].len, several, 3, &why, &l), 0, "%s: %s", v[i].name,
                     why.message);
        if (l != NULL)
            cr_expect_eq(X509_cmp(l->verified_by, v[i].signer), 0);
        tg_tl_list_free(l);
    }
    cr_expect(checked > 50);
    free_vectors(v, n);
}

/* ---- synthetic lists ------------------------------------------------------------ */

typedef struct {
    EVP_PKEY *key;
    X509 *cert;
    EVP_PKEY *ca_key;
    X509 *ca;
    tlt_list_t list;
} world_t;

static void world(world_t *w, const char *kind)
{
    memset(w, 0, sizeof(*w));
    w->key = tlt_key(kind);
    w->cert = tlt_cert("HK trust list operator", w->key, NULL, w->key, 0);
    w->ca_key = tlt_key("ec");
    w->ca = tlt_cert("HK Issuing CA", w->ca_key, NULL, w->ca_key, 1);
    w->list = (tlt_list_t){.id = "TL1",
                           .seq = 5,
                           .next_update = "2030-01-01T00:00:00Z",
                           .n_svcs = 1,
                           .svcs = {{.name = "Category A",
                                     .certs = {w->ca},
                                     .n_certs = 1,
                                     .ocsp = "http://ocsp.example/",
                                     .oids = {"2.16.344.8.2.2008.810.2"},
                                     .n_oids = 1,
                                     .prefix = 1}}};
}

static void world_free(world_t *w)
{
    EVP_PKEY_free(w->key);
    X509_free(w->cert);
    EVP_PKEY_free(w->ca_key);
    X509_free(w->ca);
}

static void accepted(const char *kind)
{
    world_t w;
    world(&w, kind);
    tg_buf_t b;
    tg_buf_init(&b);
    tlt_build_signed(&w.list, w.key, w.cert, &b);
    tg_tl_refusal_t why;
    tg_tl_list_t *l = NULL;
    cr_assert_eq(tg_tl_load(b.data, b.len, &w.cert, 1, &why, &l), 0, "%s: %s", why.code,
                 why.message);
    cr_expect_null(why.code);
    cr_expect_eq(X509_cmp(l->verified_by, w.cert), 0);
    cr_expect_eq(l->sequence, 5);
    cr_assert_eq(l->n_services, 1);
    cr_expect_eq(X509_cmp(l->services[0].certs[0], w.ca), 0);
    cr_expect_eq(l->raw_len, b.len); /* kept as received */
    cr_expect_eq(memcmp(l->raw, b.data, b.len), 0);
    /* The signature is what we said. */
    const char *alg = strcmp(kind, "rsa") == 0 ? TL_ALG_RSA_SHA256 : TL_ALG_ECDSA_SHA256;
    cr_expect(memmem(b.data, b.len, alg, strlen(alg)) != NULL);
    cr_expect(memmem(b.data, b.len, "URI=\"\"", 6) != NULL);
    cr_expect(memmem(b.data, b.len, TL_ALG_EXC_C14N, strlen(TL_ALG_EXC_C14N)) != NULL);
    cr_expect(memmem(b.data, b.len, "X509Certificate", 15) != NULL);
    tg_tl_list_free(l);
    tg_buf_free(&b);
    world_free(&w);
}

Test(tl_verify, synthetic_rsa_accepted)
{
    accepted("rsa");
}

Test(tl_verify, synthetic_ecdsa_accepted)
{
    accepted("ec");
}

static void signed_ex(world_t *w, const tl_sign_opts_t *o, tg_buf_t *out)
{
    tg_buf_t plain;
    tg_buf_init(&plain);
    tlt_build(&w->list, &plain);
    tg_tl_refusal_t why = {0};
    int rc = tl_sign_ex(plain.data, plain.len, w->key, w->cert, o, &why, out);
    cr_assert_eq(rc, 0, "tl_sign_ex: %d %s", rc, why.message);
    tg_buf_free(&plain);
}

static const char *load_code(const tg_buf_t *b, X509 *cert)
{
    static tg_tl_refusal_t why;
    int rc = tlt_load1(b, cert, &why);
    if (rc == 0)
        return "accepted";
    cr_assert_eq(rc, TG_EMALFORMED, "rc %d (%s)", rc, why.message);
    return why.code;
}

Test(tl_verify, other_allowed_algorithms_accepted)
{
    world_t w;
    world(&w, "rsa");
    static const tl_sign_opts_t opts[] = {
        {.sig_alg = TL_ALG_RSA_SHA512, .digest_alg = TL_ALG_SHA512},
        {.sig_alg = TL_ALG_RSA_SHA384, .digest_alg = TL_ALG_SHA384, .c14n_alg = TL_ALG_C14N11},
        {.c14n_alg = TL_ALG_C14N10},
        {.ref_uri = "#TL1"}, /* the root Id covers the whole document too */
        {.no_key_info = 1},  /* the pinned certificate is all it takes */
    };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        tg_buf_t b;
        tg_buf_init(&b);
        signed_ex(&w, &opts[i], &b);
        cr_expect_str_eq(load_code(&b, w.cert), "accepted", "variant %zu", i);
        tg_buf_free(&b);
    }
    world_free(&w);
}

Test(tl_verify, tampered_after_signing)
{
    world_t w;
    world(&w, "ec");
    static const struct {
        const char *from, *to;
    } edits[] = {
        {"Category A", "Category B"},
        {"<tsl:TSLSequenceNumber>5<", "<tsl:TSLSequenceNumber>6<"},
        {"http://ocsp.example/", "http://evil.example/"},
        {"<tsl:TSPServices>\n", "<tsl:TSPServices>\n<tsl:TSPService/>\n"},
        {" TSLTag=", " Extra=\"1\" TSLTag="},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        tg_buf_t b;
        tg_buf_init(&b);
        tlt_build_signed(&w.list, w.key, w.cert, &b);
        tlt_replace(&b, edits[i].from, edits[i].to);
        cr_expect_str_eq(load_code(&b, w.cert), "bad_signature", "edit %zu", i);
        tg_buf_free(&b);
    }
    /* The signature value itself: no pinned key and not KeyInfo's either. */
    tg_buf_t b;
    tg_buf_init(&b);
    tlt_build_signed(&w.list, w.key, w.cert, &b);
    uint8_t *sv = memmem(b.data, b.len, "<ds:SignatureValue>", 19);
    cr_assert_not_null(sv);
    sv[19 + 10] = sv[19 + 10] == 'A' ? 'B' : 'A';
    cr_expect_str_eq(load_code(&b, w.cert), "bad_signature");
    tg_buf_free(&b);
    world_free(&w);
}

Test(tl_verify, wrong_operator_cert)
{
    world_t w;
    world(&w, "rsa");
    EVP_PKEY *other_rsa = tlt_key("rsa");
    X509 *other_rsa_cert = tlt_cert("Someone else", other_rsa, NULL, other_rsa, 0);
    EVP_PKEY *other_ec = tlt_key("ec");
    X509 *other_ec_cert = tlt_cert("Someone else EC", other_ec, NULL, other_ec, 0);
    tg_buf_t b;
    tg_buf_init(&b);
    tlt_build_signed(&w.list, w.key, w.cert, &b);
    tg_tl_refusal_t why;
    cr_expect_eq(tlt_load1(&b, other_rsa_cert, &why), TG_EMALFORMED);
    cr_expect_str_eq(why.code, "wrong_signer");
    cr_expect(strstr(why.message, "HK trust list operator") != NULL, "%s", why.message);
    cr_expect_eq(tlt_load1(&b, other_ec_cert, &why), TG_EMALFORMED);
    cr_expect_str_eq(why.code, "wrong_signer");
    /* A list signed by someone else who put their own certificate in
     * KeyInfo: KeyInfo is never trusted. */
    tg_buf_t c;
    tg_buf_init(&c);
    tlt_build_signed(&w.list, other_rsa, other_rsa_cert, &c);
    cr_expect_str_eq(load_code(&c, w.cert), "wrong_signer");
    X509 *both[2] = {other_ec_cert, w.cert};
    tg_tl_list_t *l = NULL;
    cr_expect_eq(tg_tl_load(b.data, b.len, both, 2, &why, &l), 0);
    tg_tl_list_free(l);
    tg_buf_free(&b);
    tg_buf_free(&c);
    X509_free(other_rsa_cert);
    X509_free(other_ec_cert);
    EVP_PKEY_free(other_rsa);
    EVP_PKEY_free(other_ec);
    world_free(&w);
}

/* Cuts the ds:Signature element out of b into sig (both NUL-free text). */
static void cut_signature(tg_buf_t *b, tg_buf_t *sig)
{
    uint8_t *s = memmem(b->data, b->len, "<ds:Signature", 13);
    uint8_t *e = memmem(b->data, b->len, "</ds:Signature>", 15);
    cr_assert(s != NULL && e != NULL && e > s);
    e += 15;
    tg_buf_init(sig);
    cr_assert_eq(tg_buf_append(sig, s, (size_t)(e - s)), 0);
    memmove(s, e, b->len - (size_t)(e - b->data));
    b->len -= (size_t)(e - s);
}

static const char *after_decl(const tg_buf_t *b)
{
    const char *p = memmem(b->data, b->len, "?>", 2);
    cr_assert_not_null(p);
    return p + 2;
}

Test(tl_verify, wrapping_second_list_inside_signature)
{
    /* An unsigned TrustServiceStatusList smuggled into ds:Object: the
     * enveloped reference does not cover it, so the signature is intact. */
    world_t w;
    world(&w, "rsa");
    tg_buf_t b;
    tg_buf_init(&b);
    tlt_build_signed(&w.list, w.key, w.cert, &b);
    tlt_replace(&b, "</ds:Signature>",
                "<ds:Object><tsl:TrustServiceStatusList><tsl:SchemeInformation>"
                "<tsl:TSLSequenceNumber>999</tsl:TSLSequenceNumber></tsl:SchemeInformation>"
                "</tsl:TrustServiceStatusList></ds:Object></ds:Signature>");
    cr_expect_str_eq(load_code(&b, w.cert), "wrapping");
    tg_buf_free(&b);
    world_free(&w);
}

Test(tl_verify, wrapping_signed_list_moved_inside_another)
{
    /* Signed with URI="#TL1"; the signed list is moved under an attacker's
     * root which carries the original signature as its own. */
    world_t w;
    world(&w, "rsa");
    tl_sign_opts_t o = {.ref_uri = "#TL1"};
    tg_buf_t b, sig, evil;
    tg_buf_init(&b);
    signed_ex(&w, &o, &b);
    cr_assert_str_eq(load_code(&b, w.cert), "accepted");
    cut_signature(&b, &sig);
    tg_buf_init(&evil);
    cr_assert_eq(tg_buf_append_str(&evil, "<tsl:TrustServiceStatusList xmlns:tsl=\"" TG_TL_NS_TSL
                                          "\" Id=\"EVIL\"><tsl:SchemeInformation>"
                                          "<tsl:TSLSequenceNumber>999</tsl:TSLSequenceNumber>"
                                          "<tsl:SchemeTerritory>HK</tsl:SchemeTerritory>"
                                          "<tsl:ListIssueDateTime>2030-01-01T00:00:00Z"
                                          "</tsl:ListIssueDateTime></tsl:SchemeInformation>"
                                          "<tsl:Wrapper>"),
                 0);
    cr_assert_eq(tg_buf_append(&evil, after_decl(&b),
                               b.len - (size_t)((const uint8_t *)after_decl(&b) - b.data)),
                 0);
    cr_assert_eq(tg_buf_append_str(&evil, "</tsl:Wrapper>"), 0);
    cr_assert_eq(tg_buf_append(&evil, sig.data, sig.len), 0);
    cr_assert_eq(tg_buf_append_str(&evil, "</tsl:TrustServiceStatusList>"), 0);
    cr_expect_str_eq(load_code(&evil, w.cert), "wrapping");

    /* The same with the attacker's root taking the signed Id: still two
     * lists. */
    tlt_replace(&evil, "Id=\"EVIL\"", "Id=\"TL1\"");
    cr_expect_str_eq(load_code(&evil, w.cert), "wrapping");

    /* And the signed list hidden in ds:Object, the attacker's list as root. */
    tg_buf_t evil2;
    tg_buf_init(&evil2);
    tg_buf_t plain;
    tg_buf_init(&plain);
    w.list.seq = 999;
    w.list.id = "EVIL";
    tlt_build(&w.list, &plain);
    tlt_replace(&sig, "</ds:Signature>", "");
    cr_assert_eq(tg_buf_append(&evil2, plain.data, plain.len), 0);
    cr_assert_eq(tg_buf_append_str(&sig, "<ds:Object>"), 0);
    cr_assert_eq(tg_buf_append(&sig, after_decl(&b),
                               b.len - (size_t)((const uint8_t *)after_decl(&b) - b.data)),
                 0);
    cr_assert_eq(
        tg_buf_append_str(&sig, "</ds:Object></ds:Signature></tsl:TrustServiceStatusList>"), 0);
    char nul = 0;
    cr_assert_eq(tg_buf_append(&sig, &nul, 1), 0);
    tlt_replace(&evil2, "</tsl:TrustServiceStatusList>", (const char *)sig.data);
    cr_expect_str_eq(load_code(&evil2, w.cert), "wrapping");

    tg_buf_free(&b);
    tg_buf_free(&sig);
    tg_buf_free(&evil);
    tg_buf_free(&evil2);
    tg_buf_free(&plain);
    world_free(&w);
}

Test(tl_verify, wrapping_duplicate_id)
{
    /* xml:id="TL1" elsewhere (outside the digest, in ds:Object) would make
     * "#TL1" point at it. */
    world_t w;
    world(&w, "ec");
    tl_sign_opts_t o = {.ref_uri = "#TL1"};
    tg_buf_t b;
    tg_buf_init(&b);
    signed_ex(&w, &o, &b);
    tlt_replace(&b, "</ds:Signature>", "<ds:Object xml:id=\"TL1\"/></ds:Signature>");
    cr_expect_str_eq(load_code(&b, w.cert), "wrapping");
    tg_buf_free(&b);
    world_free(&w);
}

Test(tl_verify, partial_reference)
{
    world_t w;
    world(&w, "rsa");
    tl_sign_opts_t o = {.ref_uri = "#scheme-info"};
    tg_buf_t b;
    tg_buf_init(&b);
    signed_ex(&w, &o, &b);
    cr_expect_str_eq(load_code(&b, w.cert), "partial_reference");
    /* A root without Id cannot be referenced by "#...": same answer. */
    tg_buf_free(&b);
    tg_buf_init(&b);
    w.list.id = NULL;
    signed_ex(&w, &o, &b);
    cr_expect_str_eq(load_code(&b, w.cert), "partial_reference");
    tg_buf_free(&b);
    world_free(&w);
}

Test(tl_verify, malformed_and_unsigned)
{
    world_t w;
    world(&w, "ec");
    tg_buf_t b;
    tg_buf_init(&b);
    tlt_build_signed(&w.list, w.key, w.cert, &b);
    b.len -= 40; /* truncated */
    cr_expect_str_eq(load_code(&b, w.cert), "malformed_xml");
    tg_buf_free(&b);
    tg_buf_init(&b);
    tlt_build(&w.list, &b);
    cr_expect_str_eq(load_code(&b, w.cert), "no_signature");
    /* A signature that is not a child of the root is no signature. */
    tg_buf_t s, sig;
    tg_buf_init(&s);
    tlt_build_signed(&w.list, w.key, w.cert, &s);
    cut_signature(&s, &sig);
    char nul = 0;
    cr_assert_eq(tg_buf_append(&sig, &nul, 1), 0);
    tg_buf_t moved;
    tg_buf_init(&moved);
    cr_assert_eq(tg_buf_append(&moved, s.data, s.len), 0);
    tg_buf_t repl;
    tg_buf_init(&repl);
    cr_assert_eq(tg_buf_printf(&repl, "%s</tsl:SchemeInformation>", (const char *)sig.data), 0);
    cr_assert_eq(tg_buf_append(&repl, &nul, 1), 0);
    tlt_replace(&moved, "</tsl:SchemeInformation>", (const char *)repl.data);
    cr_expect_str_eq(load_code(&moved, w.cert), "no_signature");
    /* Two signatures. */
    tg_buf_t two, repl2;
    tg_buf_init(&two);
    tg_buf_init(&repl2);
    tlt_build_signed(&w.list, w.key, w.cert, &two);
    cr_assert_eq(tg_buf_printf(&repl2, "%s</tsl:TrustServiceStatusList>", (const char *)sig.data),
                 0);
    cr_assert_eq(tg_buf_append(&repl2, &nul, 1), 0);
    tlt_replace(&two, "</tsl:TrustServiceStatusList>", (const char *)repl2.data);
    cr_expect_str_eq(load_code(&two, w.cert), "wrapping");
    tg_buf_free(&two);
    tg_buf_free(&repl2);
    tg_buf_free(&s);
    tg_buf_free(&sig);
    tg_buf_free(&moved);
    tg_buf_free(&repl);
    tg_buf_free(&b);
    world_free(&w);
}

Test(tl_verify, sha1_and_disallowed_algorithms)
{
    world_t w;
    world(&w, "rsa");
    tl_sign_opts_t sha1 = {.sig_alg = TL_ALG_RSA_SHA1, .digest_alg = TL_ALG_SHA1};
    tg_buf_t b;
    tg_buf_init(&b);
    signed_ex(&w, &sha1, &b);
    tg_tl_refusal_t why;
    cr_expect_eq(tlt_load1(&b, w.cert, &why), TG_EMALFORMED);
    cr_expect_str_eq(why.code, "unsupported_algorithm");
    cr_expect(strstr(why.message, "SHA-1") != NULL, "%s", why.message);
    tg_buf_free(&b);

    tl_sign_opts_t sha1_digest = {.digest_alg = TL_ALG_SHA1};
    tg_buf_init(&b);
    signed_ex(&w, &sha1_digest, &b);
    cr_expect_str_eq(load_code(&b, w.cert), "unsupported_algorithm");
    tg_buf_free(&b);

    /* Transforms and URIs outside the allow-list. */
    static const struct {
        const char *from, *to, *code;
    } edits[] = {
        {TL_ALG_EXC_C14N "\"/>\n</ds:Transforms>",
         "http://www.w3.org/TR/1999/REC-xpath-19991116\"/>\n</ds:Transforms>", "bad_transform"},
        {TL_ALG_EXC_C14N "\"/>\n</ds:Transforms>",
         "http://www.w3.org/TR/1999/REC-xslt-19991116\"/>"
         "</ds:Transforms>",
         "bad_transform"},
        {"<ds:CanonicalizationMethod Algorithm=\"" TL_ALG_EXC_C14N,
         "<ds:CanonicalizationMethod Algorithm=\"urn:none", "bad_transform"},
        {"URI=\"\"", "URI=\"http://example/list.xml\"", "bad_reference"},
        {"URI=\"\"", "URI=\"#xpointer(/)\"", "bad_reference"},
        {"URI=\"\"", "", "bad_reference"},
        {TL_ALG_RSA_SHA256, "http://www.w3.org/2000/09/xmldsig#hmac-sha1", "unsupported_algorithm"},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        tg_buf_init(&b);
        tlt_build_signed(&w.list, w.key, w.cert, &b);
        tlt_replace(&b, edits[i].from, edits[i].to);
        cr_expect_str_eq(load_code(&b, w.cert), edits[i].code, "edit %zu", i);
        tg_buf_free(&b);
    }
    world_free(&w);
}

Test(tl_verify, sign_refusals)
{
    world_t w;
    world(&w, "rsa");
    tg_buf_t b, again;
    tg_buf_init(&b);
    tg_buf_init(&again);
    tlt_build_signed(&w.list, w.key, w.cert, &b);
    tg_tl_refusal_t why;
    cr_expect_eq(tg_tl_sign(b.data, b.len, w.key, w.cert, &why, &again), TG_EINVAL);
    cr_expect_eq(again.len, 0);
    tg_buf_free(&b);
    tg_buf_init(&b);
    tlt_build(&w.list, &b);
    cr_expect_eq(tg_tl_sign(b.data, b.len, w.ca_key, w.cert, &why, &again), TG_EINVAL);
    const char *junk = "<x/>";
    cr_expect_eq(tg_tl_sign((const uint8_t *)junk, 4, w.key, w.cert, &why, &again), TG_EMALFORMED);
    cr_expect_str_eq(why.code, "bad_profile");
    tg_buf_free(&b);
    tg_buf_free(&again);
    world_free(&w);
}

/* ---- xmlsec1 command line, both ways --------------------------------------------- */

static int have_xmlsec1(void)
{
    return system("xmlsec1 --version >/dev/null 2>&1") == 0;
}

static void xmlsec1_verifies_ours(const char *kind)
{
    if (!have_xmlsec1())
        cr_skip_test("xmlsec1 not installed");
    world_t w;
    world(&w, kind);
    tg_buf_t b;
    tg_buf_init(&b);
    tlt_build_signed(&w.list, w.key, w.cert, &b);
    const char *dir = tlt_tmpdir();
    char out[256], cert[256], cmd[1024];
    snprintf(out, sizeof(out), "%s/out.xml", dir);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    tlt_write(out, b.data, b.len);
    tlt_write_cert_pem(cert, w.cert);
    snprintf(cmd, sizeof(cmd),
             "xmlsec1 --verify --pubkey-cert-pem %s --enabled-reference-uris empty,same-doc %s "
             ">%s/log 2>&1",
             cert, out, dir);
    int rc = system(cmd);
    cr_expect_eq(rc, 0, "xmlsec1 refused our %s signature (see %s/log)", kind, dir);
    /* And refuses it once tampered. */
    tlt_replace(&b, "Category A", "Category B");
    tlt_write(out, b.data, b.len);
    cr_expect_neq(system(cmd), 0);
    if (rc == 0) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        cr_expect_eq(system(cmd), 0);
    }
    tg_buf_free(&b);
    world_free(&w);
}

Test(tl_verify, xmlsec1_verifies_our_rsa_signature)
{
    xmlsec1_verifies_ours("rsa");
}

Test(tl_verify, xmlsec1_verifies_our_ecdsa_signature)
{
    xmlsec1_verifies_ours("ec");
}

static void we_verify_xmlsec1(const char *kind)
{
    if (!have_xmlsec1())
        cr_skip_test("xmlsec1 not installed");
    world_t w;
    world(&w, kind);
    tg_buf_t b;
    tg_buf_init(&b);
    tlt_build(&w.list, &b);
    const char *alg = strcmp(kind, "rsa") == 0 ? TL_ALG_RSA_SHA256 : TL_ALG_ECDSA_SHA256;
    tg_buf_t sig;
    tg_buf_init(&sig);
    cr_assert_eq(tg_buf_printf(&sig,
                               "<ds:Signature xmlns:ds=\"" TG_TL_NS_DS "\"><ds:SignedInfo>"
                               "<ds:CanonicalizationMethod Algorithm=\"" TL_ALG_EXC_C14N "\"/>"
                               "<ds:SignatureMethod Algorithm=\"%s\"/>"
                               "<ds:Reference URI=\"\"><ds:Transforms>"
                               "<ds:Transform Algorithm=\"" TL_ALG_ENVELOPED "\"/>"
                               "<ds:Transform Algorithm=\"" TL_ALG_EXC_C14N "\"/>"
                               "</ds:Transforms><ds:DigestMethod Algorithm=\"" TL_ALG_SHA256 "\"/>"
                               "<ds:DigestValue/></ds:Reference></ds:SignedInfo>"
                               "<ds:SignatureValue/><ds:KeyInfo><ds:X509Data><ds:X509Certificate/>"
                               "</ds:X509Data></ds:KeyInfo></ds:Signature>"
                               "</tsl:TrustServiceStatusList>",
                               alg),
                 0);
    char nul = 0;
    cr_assert_eq(tg_buf_append(&sig, &nul, 1), 0);
    tlt_replace(&b, "</tsl:TrustServiceStatusList>", (const char *)sig.data);
    const char *dir = tlt_tmpdir();
    char tmpl[256], out[256], key[256], cert[256], cmd[1400];
    snprintf(tmpl, sizeof(tmpl), "%s/tmpl.xml", dir);
    snprintf(out, sizeof(out), "%s/out.xml", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    tlt_write(tmpl, b.data, b.len);
    tlt_write_key_pem(key, w.key);
    tlt_write_cert_pem(cert, w.cert);
    snprintf(cmd, sizeof(cmd), "xmlsec1 --sign --privkey-pem %s,%s --output %s %s >%s/log 2>&1",
             key, cert, out, tmpl, dir);
    cr_assert_eq(system(cmd), 0, "xmlsec1 --sign failed (see %s/log)", dir);
    size_t len;
    uint8_t *signed_xml = tlt_read(out, &len);
    cr_assert_not_null(signed_xml);
    tg_tl_refusal_t why;
    tg_tl_list_t *l = NULL;
    cr_expect_eq(tg_tl_load(signed_xml, len, &w.cert, 1, &why, &l), 0, "%s: %s", why.code,
                 why.message);
    tg_tl_list_free(l);
    free(signed_xml);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
    tg_buf_free(&b);
    tg_buf_free(&sig);
    world_free(&w);
}

Test(tl_verify, we_verify_xmlsec1_rsa_signature)
{
    we_verify_xmlsec1("rsa");
}

Test(tl_verify, we_verify_xmlsec1_ecdsa_signature)
{
    we_verify_xmlsec1("ec");
}

/* ---- the commands ------------------------------------------------------------ */

/* Runs fn with stdout and stderr in files; returns its result and the
 * captured stdout (malloc'd, NUL-terminated) in *out. */
static int run_cmd(int (*fn)(int, char **), char **argv, char **out)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    char path[] = "/tmp/tg-tl-cmd-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    fflush(stdout);
    fflush(stderr);
    int saved = dup(1), saved_err = dup(2);
    int null = open("/dev/null", O_WRONLY);
    cr_assert(saved >= 0 && saved_err >= 0 && null >= 0);
    dup2(fd, 1);
    dup2(null, 2);
    int rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved, 1);
    dup2(saved_err, 2);
    close(saved);
    close(saved_err);
    close(null);
    close(fd);
    size_t len;
    uint8_t *data = tlt_read(path, &len);
    unlink(path);
    *out = realloc(data, len + 1);
    (*out)[len] = '\0';
    return rc;
}

Test(tl_verify, commands)
{
    world_t w;
    world(&w, "ec");
    tg_buf_t b;
    tg_buf_init(&b);
    tlt_build(&w.list, &b);
    const char *dir = tlt_tmpdir();
    char in[256], out[256], key[256], cert[256], other[256];
    snprintf(in, sizeof(in), "%s/in.xml", dir);
    snprintf(out, sizeof(out), "%s/out.xml", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(other, sizeof(other), "%s/other.pem", dir);
    tlt_write(in, b.data, b.len);
    tlt_write_key_pem(key, w.key);
    tlt_write_cert_pem(cert, w.cert);
    tlt_write_cert_pem(other, w.ca);
    char *o = NULL;

    char *sign[] = {"--key", key, "--cert", cert, in, out, NULL};
    cr_assert_eq(run_cmd(tg_tl_cmd_sign, sign, &o), 0);
    free(o);
    char *resign[] = {"--key", key, "--cert", cert, out, in, NULL};
    cr_expect_eq(run_cmd(tg_tl_cmd_sign, resign, &o), 1); /* already signed */
    free(o);
    char *sign_usage[] = {"--key", key, in, out, NULL};
    cr_expect_eq(run_cmd(tg_tl_cmd_sign, sign_usage, &o), 2);
    free(o);

    char *show[] = {out, "--operator-cert", cert, "--at", "2024-06-01T08:00:00+08:00", NULL};
    cr_expect_eq(run_cmd(tg_tl_cmd_show, show, &o), 0);
    cr_expect(strstr(o, "signature:   verified by CN=HK trust list operator") != NULL, "%s", o);
    cr_expect(strstr(o, "sequence:    5") != NULL);
    cr_expect(strstr(o, "status: active since 2024-01-01T00:00:00Z") != NULL, "%s", o);
    cr_expect(strstr(o, "supply point: ocsp http://ocsp.example/") != NULL);
    cr_expect(strstr(o, "policy: 2.16.344.8.2.2008.810.2 (prefix match)") != NULL);
    free(o);
    char *before[] = {out, "--at", "2023-06-01", NULL};
    cr_expect_eq(run_cmd(tg_tl_cmd_show, before, &o), 0);
    cr_expect(strstr(o, "signature:   NOT verified") != NULL);
    cr_expect(strstr(o, "status: not_listed") != NULL, "%s", o);
    free(o);
    char *json[] = {out, "--json", "--operator-cert", cert, NULL};
    cr_expect_eq(run_cmd(tg_tl_cmd_show, json, &o), 0);
    cr_expect(strncmp(o, "{\"file\":", 8) == 0);
    cr_expect(strstr(o, "\"verified\":true") != NULL);
    cr_expect(strstr(o, "\"oid_prefix\":true") != NULL);
    free(o);
    char *wrong[] = {out, "--operator-cert", other, NULL};
    cr_expect_eq(run_cmd(tg_tl_cmd_show, wrong, &o), 1);
    cr_expect(strstr(o, "REFUSED (wrong_signer)") != NULL, "%s", o);
    free(o);
    char *usage[] = {"--bogus", NULL};
    cr_expect_eq(run_cmd(tg_tl_cmd_show, usage, &o), 2);
    free(o);
    char *bad_at[] = {out, "--at", "tomorrow", NULL};
    cr_expect_eq(run_cmd(tg_tl_cmd_show, bad_at, &o), 2);
    free(o);

    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
    tg_buf_free(&b);
    world_free(&w);
}
