/* Trust-list parsing: times, the status table, the profile of SPEC §2, the
 * hardened XML parser (billion laughs, DOCTYPE), and the public vectors. */
#include "tests/unit/trustlist/tlt.h"

#include "common/clock.h"
#include "trustlist/trustlist_internal.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(tl_parse, .init = tlt_setup, .fini = tlt_teardown);

static time_t T(const char *s)
{
    time_t t = 0;
    cr_assert_eq(tg_tl_parse_time(s, strlen(s), &t), 0, "%s", s);
    return t;
}

/* ---- times -------------------------------------------------------------- */

Test(tl_parse, time_utc_and_offsets)
{
    cr_assert_eq(T("1970-01-01T00:00:00Z"), 0);
    cr_assert_eq(T("2024-11-14T12:53:48Z"), 1731588828);
    /* +08:00 is eight hours ahead of UTC: same instant as 04:53:48Z. */
    cr_assert_eq(T("2024-11-14T12:53:48+08:00"), 1731588828 - 8 * 3600);
    cr_assert_eq(T("2024-11-14T12:53:48-05:30"), 1731588828 + 5 * 3600 + 1800);
    cr_assert_eq(T("2024-11-14T12:53:48+00:00"), T("2024-11-14T12:53:48Z"));
    /* No offset: taken as UTC. */
    cr_assert_eq(T("2024-11-14T12:53:48"), 1731588828);
    /* Surrounding whitespace (xsd whitespace collapse). */
    cr_assert_eq(T("\n   2024-11-14T12:53:48Z \t"), 1731588828);
}

Test(tl_parse, time_fractions_and_edges)
{
    cr_assert_eq(T("2024-11-14T12:53:48.999Z"), 1731588828);
    cr_assert_eq(T("2024-11-14T12:53:48.5+08:00"), 1731588828 - 8 * 3600);
    cr_assert_eq(T("2024-11-14T12:53:48.000000001Z"), 1731588828);
    cr_assert_eq(T("2024-02-29T00:00:00Z"), 1709164800); /* leap year */
    cr_assert_eq(T("2024-12-31T24:00:00Z"), T("2025-01-01T00:00:00Z"));
    cr_assert_eq(T("2038-01-19T03:14:08Z"), (time_t)2147483648LL); /* past 32 bits */
    cr_assert_eq(T("1969-12-31T23:59:59Z"), -1);
    /* Offsets move across the day and year boundary. */
    cr_assert_eq(T("2025-01-01T07:00:00+08:00"), T("2024-12-31T23:00:00Z"));
}

Test(tl_parse, time_refusals)
{
    static const char *const bad[] = {
        "",
        "2024-11-14",
        "2024-11-14 12:53:48Z",
        "2024-11-14T12:53Z",
        "2024-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-11-14T25:00:00Z",
        "2024-11-14T24:00:01Z",
        "2024-11-14T24:00:00.5Z",
        "2024-11-14T12:60:00Z",
        "2024-11-14T12:00:60Z",
        "2024-11-14T12:00:00.Z",
        "2024-11-14T12:00:00+8:00",
        "2024-11-14T12:00:00+15:00",
        "2024-11-14T12:00:00+08:60",
        "2024-11-14T12:00:00ZZ",
        "2024-11-14T12:00:00z",
        "+2024-11-14T12:00:00Z",
        "0999-01-01T00:00:00Z",
        "2024-1a-14T12:00:00Z",
        "2024-11-14T12:00:00Z junk",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        time_t t;
        cr_expect_eq(tg_tl_parse_time(bad[i], strlen(bad[i]), &t), TG_EMALFORMED, "\"%s\"", bad[i]);
    }
}

/* ---- status table (SPEC §2) ---------------------------------------------------- */

static tg_tl_status_t st(const char *uri, int *known)
{
    return tg_tl_status_of_uri(uri, strlen(uri), known);
}

Test(tl_parse, status_table)
{
    static const char *const active[] = {"granted",          "recognisedatnationallevel",
                                         "undersupervision", "accredited",
                                         "setbynationallaw", "supervisionincessation"};
    static const char *const terminated[] = {
        "withdrawn",           "deprecatedatnationallevel", "deprecatedbynationallaw",
        "supervisionceased",   "supervisionrevoked",        "accreditationceased",
        "accreditationrevoked"};
    char uri[256];
    int known;
    for (size_t i = 0; i < sizeof(active) / sizeof(active[0]); i++) {
        snprintf(uri, sizeof(uri), "%s%s", TG_TL_STATUS_PREFIX, active[i]);
        cr_expect_eq(st(uri, &known), TG_TL_ACTIVE, "%s", uri);
        cr_expect_eq(known, 1);
    }
    for (size_t i = 0; i < sizeof(terminated) / sizeof(terminated[0]); i++) {
        snprintf(uri, sizeof(uri), "%s%s", TG_TL_STATUS_PREFIX, terminated[i]);
        cr_expect_eq(st(uri, &known), TG_TL_TERMINATED, "%s", uri);
        cr_expect_eq(known, 1);
    }
    cr_expect_eq(st("urn:gdhk-mr:svcstatus:suspended", &known), TG_TL_SUSPENDED);
    cr_expect_eq(known, 1);
}

Test(tl_parse, status_unknown_is_terminated)
{
    /* Byte for byte: case, scheme, trailing slash, whitespace, prefixes. */
    static const char *const unknown[] = {
        "https://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted",
        "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted/",
        "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/Granted",
        "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted ",
        "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/",
        "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/grant",
        "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/suspended",
        "urn:gdhk-mr:svcstatus:Suspended",
        "urn:gdhk-mr:svcstatus:suspended2",
        "http://zz-trusted-list.go.zz/TrstSvc/TrustedList/Svcstatus/granted",
        "",
    };
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        int known = 1;
        cr_expect_eq(st(unknown[i], &known), TG_TL_TERMINATED, "\"%s\"", unknown[i]);
        cr_expect_eq(known, 0, "\"%s\"", unknown[i]);
    }
    cr_expect_eq(st(TG_TL_STATUS_PREFIX "granted", NULL), TG_TL_ACTIVE);
    cr_expect_str_eq(tg_tl_status_name(TG_TL_SUSPENDED), "suspended");
    cr_expect_str_eq(tg_tl_status_name(TG_TL_NOT_LISTED), "not_listed");
}

/* ---- the profile -------------------------------------------------------------- */

static tg_tl_list_t *parse_ok(const tg_buf_t *b)
{
    tg_tl_refusal_t why;
    tg_tl_list_t *l = NULL;
    int rc = tg_tl_parse(b->data, b->len, &why, &l);
    cr_assert_eq(rc, 0, "%d %s: %s", rc, why.code ? why.code : "", why.message);
    cr_assert_not_null(l);
    cr_assert_null(l->verified_by);
    return l;
}

static const char *refused(const void *xml, size_t len)
{
    static tg_tl_refusal_t why;
    tg_tl_list_t *l = (tg_tl_list_t *)1;
    int rc = tg_tl_parse(xml, len, &why, &l);
    cr_assert_neq(rc, 0, "accepted");
    cr_assert_null(l);
    cr_assert_not_null(why.code);
    return why.code;
}

Test(tl_parse, full_profile)
{
    EVP_PKEY *k = tlt_key("ec");
    X509 *ca1 = tlt_cert("CA one", k, NULL, k, 1);
    X509 *ca1b = tlt_cert("CA one rollover", k, NULL, k, 1);
    X509 *old = tlt_cert("CA old", k, NULL, k, 1);
    X509 *op = tlt_cert("Other side operator", k, NULL, k, 0);
    tlt_list_t L = {
        .id = "TL-HK-1",
        .territory = "HK",
        .seq = 18446744073709551615ULL,
        .issued = "2025-03-01T08:00:00+08:00",
        .next_update = "2025-09-01T00:00:00.5Z",
        .tsp_name = "HK Post",
        .pointer_location = "https://gd.example/gd.xml",
        .pointer_cert = op,
        .n_svcs = 2,
        .svcs =
            {
                {.name = "Category A",
                 .status = TG_TL_STATUS_PREFIX "granted",
                 .start = "2025-01-01T00:00:00Z",
                 .certs = {ca1, ca1b},
                 .n_certs = 2,
                 .hist = {{TG_TL_STATUS_PREFIX "withdrawn", "2024-06-01T00:00:00Z", old},
                          {TG_TL_STATUS_PREFIX "undersupervision", "2020-01-01T00:00:00Z", NULL}},
                 .n_hist = 2,
                 .ocsp = "http://ocsp.example/",
                 .crl = "http://crl.example/ca.crl",
                 .untyped_supply = "http://other.example/",
                 .oids = {"2.16.344.8.2.2008.810.2", "1.2.3.4"},
                 .n_oids = 2,
                 .prefix = 1},
                {.name = "Category B",
                 .type = "http://uri.etsi.org/TrstSvc/Svctype/CA/QC",
                 .status = TG_TL_STATUS_SUSPENDED_URI,
                 .start = "2025-02-01T00:00:00Z",
                 .certs = {ca1},
                 .n_certs = 1},
            },
    };
    tg_buf_t b;
    tg_buf_init(&b);
    tlt_build(&L, &b);
    tg_tl_list_t *l = parse_ok(&b);
    cr_expect_str_eq(l->territory, "HK");
    cr_expect_eq(l->sequence, 18446744073709551615ULL);
    cr_expect_str_eq(l->operator_name, "Test Operator"); /* xml:lang="en" preferred */
    cr_expect_str_eq(l->root_id, "TL-HK-1");
    cr_expect_eq(l->issued, T("2025-03-01T00:00:00Z"));
    cr_expect_eq(l->next_update, T("2025-09-01T00:00:00Z"));
    cr_expect_eq(l->raw_len, b.len);
    cr_expect_eq(memcmp(l->raw, b.data, b.len), 0);
    uint8_t md[32];
    cr_assert(EVP_Digest(b.data, b.len, md, NULL, EVP_sha256(), NULL));
    cr_expect_eq(memcmp(md, l->sha256, 32), 0);

    cr_assert_eq(l->n_pointers, 1);
    cr_expect_str_eq(l->pointers[0].location, "https://gd.example/gd.xml");
    cr_expect_str_eq(l->pointers[0].territory, "CN");
    cr_assert_eq(l->pointers[0].n_certs, 1);
    cr_expect_eq(X509_cmp(l->pointers[0].certs[0], op), 0);

    cr_assert_eq(l->n_tsps, 1);
    cr_expect_str_eq(l->tsps[0].name, "HK Post");
    cr_assert_eq(l->n_services, 2);
    const tg_tl_service_t *a = &l->services[0];
    cr_expect_str_eq(a->name, "Category A");
    cr_expect_str_eq(a->tsp_name, "HK Post");
    cr_expect_str_eq(a->type, "http://uri.etsi.org/TrstSvc/Svctype/CA/PKC");
    cr_assert_eq(a->n_certs, 2); /* the X509SubjectName DigitalId is skipped */
    cr_expect_eq(X509_cmp(a->certs[0], ca1), 0);
    cr_expect_eq(X509_cmp(a->certs[1], ca1b), 0);
    cr_assert_eq(a->n_entries, 3);
    cr_expect_eq(a->entries[1].status, TG_TL_TERMINATED);
    cr_assert_eq(a->entries[1].n_certs, 1);
    cr_expect_eq(X509_cmp(a->entries[1].certs[0], old), 0); /* own identity */
    cr_expect_eq(a->entries[2].certs, a->certs);            /* none: the service's */
    cr_assert_eq(a->n_supply_points, 3);
    cr_expect_eq(a->supply_points[0].kind, TG_TL_SUPPLY_OCSP);
    cr_expect_str_eq(a->supply_points[0].uri, "http://ocsp.example/");
    cr_expect_eq(a->supply_points[1].kind, TG_TL_SUPPLY_CRL);
    cr_expect_eq(a->supply_points[2].kind, TG_TL_SUPPLY_OTHER);
    cr_expect_null(a->supply_points[2].type);
    cr_assert_eq(a->n_policy_oids, 2);
    cr_expect_str_eq(a->policy_oids[0], "2.16.344.8.2.2008.810.2");
    cr_expect_str_eq(a->policy_oids[1], "1.2.3.4");
    cr_expect_eq(a->oid_prefix, 1);

    const tg_tl_service_t *s2 = &l->services[1];
    cr_expect_eq(s2->oid_prefix, 0);
    cr_expect_eq(s2->n_policy_oids, 0);
    cr_expect_eq(s2->entries[0].status, TG_TL_SUSPENDED);

    /* Status over time. */
    time_t since;
    cr_expect_eq(tg_tl_service_status_at(a, T("2019-12-31T23:59:59Z"), &since), TG_TL_NOT_LISTED);
    cr_expect_eq(since, 0);
    cr_expect_eq(tg_tl_service_status_at(a, T("2020-01-01T00:00:00Z"), &since), TG_TL_ACTIVE);
    cr_expect_eq(since, T("2020-01-01T00:00:00Z"));
    cr_expect_eq(tg_tl_service_status_at(a, T("2024-12-31T00:00:00Z"), &since), TG_TL_TERMINATED);
    cr_expect_eq(since, T("2024-06-01T00:00:00Z"));
    cr_expect_eq(tg_tl_service_status_at(a, T("2025-06-01T00:00:00Z"), &since), TG_TL_ACTIVE);
    cr_expect_eq(since, T("2025-01-01T00:00:00Z"));
    cr_expect_eq(tg_tl_service_status_at(s2, T("2025-06-01T00:00:00Z"), &since), TG_TL_SUSPENDED);

    cr_expect_eq(tg_tl_list_is_stale(l, T("2025-08-31T23:59:59Z")), 0);
    cr_expect_eq(tg_tl_list_is_stale(l, T("2025-09-01T00:00:01Z")), 1);

    /* References: the list outlives the caller's reference. */
    tg_tl_list_t *again = tg_tl_list_ref(l);
    tg_tl_list_free(l);
    cr_expect_str_eq(again->territory, "HK");
    tg_tl_list_free(again);
    tg_tl_list_free(NULL);
    tg_buf_free(&b);
    X509_free(ca1);
    X509_free(ca1b);
    X509_free(old);
    X509_free(op);
    EVP_PKEY_free(k);
}

Test(tl_parse, next_update_absent_or_empty_is_closed)
{
    tlt_list_t L = {.seq = 1, .next_update = NULL};
    tg_buf_t b;
    tg_buf_init(&b);
    tlt_build(&L, &b);
    tg_tl_list_t *l = parse_ok(&b);
    cr_expect_eq(l->next_update, 0);
    cr_expect_eq(tg_tl_list_is_stale(l, (time_t)4000000000LL), 0);
    cr_expect_str_eq(l->operator_name, "Test Operator");
    tg_tl_list_free(l);
    tg_buf_free(&b);
    tg_buf_init(&b);
    L.next_update = "";
    tlt_build(&L, &b);
    l = parse_ok(&b);
    cr_expect_eq(l->next_update, 0);
    tg_tl_list_free(l);
    tg_buf_free(&b);
}

Test(tl_parse, unknown_status_uri_counts_as_terminated)
{
    tlt_list_t L = {.seq = 1,
                    .n_svcs = 2,
                    .svcs = {{.name = "x", .status = "http://example/granted"},
                             {.name = "y", .status = "http://example/granted"}}};
    tg_buf_t b;
    tg_buf_init(&b);
    tlt_build(&L, &b);
    tg_tl_list_t *l = parse_ok(&b);
    cr_expect_eq(l->n_unknown_status, 2);
    cr_expect_eq(l->services[0].entries[0].status, TG_TL_TERMINATED);
    cr_expect_eq(l->services[0].entries[0].reason, TG_TL_REASON_UNKNOWN_URI);
    cr_expect_str_eq(l->services[0].entries[0].uri, "http://example/granted");
    tg_tl_list_free(l);
    tg_buf_free(&b);
}

Test(tl_parse, matching_by_namespace_not_prefix)
{
    /* Default namespace, odd prefixes, and a look-alike element in a foreign
     * namespace that must be ignored. */
    const char *xml =
        "<TrustServiceStatusList xmlns=\"" TG_TL_NS_TSL "\" xmlns:q=\"" TG_TL_NS_TSL
        "\" xmlns:evil=\"urn:evil\">"
        "<q:SchemeInformation><TSLSequenceNumber>7</TSLSequenceNumber>"
        "<evil:TSLSequenceNumber>99</evil:TSLSequenceNumber>"
        "<SchemeTerritory>CN</SchemeTerritory>"
        "<ListIssueDateTime>2025-01-01T00:00:00Z</ListIssueDateTime></q:SchemeInformation>"
        "</TrustServiceStatusList>";
    tg_tl_refusal_t why;
    tg_tl_list_t *l = NULL;
    cr_assert_eq(tg_tl_parse((const uint8_t *)xml, strlen(xml), &why, &l), 0, "%s", why.message);
    cr_expect_eq(l->sequence, 7);
    cr_expect_str_eq(l->territory, "CN");
    cr_expect_eq(l->n_services, 0);
    tg_tl_list_free(l);
}

Test(tl_parse, bad_profile_refusals)
{
    static const char *const cases[] = {
        /* wrong root */
        "<TrustServiceStatusList xmlns=\"urn:other\"/>",
        /* no SchemeInformation */
        "<TrustServiceStatusList xmlns=\"" TG_TL_NS_TSL "\"/>",
        /* missing sequence */
        "<TrustServiceStatusList xmlns=\"" TG_TL_NS_TSL "\"><SchemeInformation>"
        "<SchemeTerritory>CN</SchemeTerritory><ListIssueDateTime>2025-01-01T00:00:00Z"
        "</ListIssueDateTime></SchemeInformation></TrustServiceStatusList>",
        /* repeated sequence */
        "<TrustServiceStatusList xmlns=\"" TG_TL_NS_TSL "\"><SchemeInformation>"
        "<TSLSequenceNumber>1</TSLSequenceNumber><TSLSequenceNumber>2</TSLSequenceNumber>"
        "<SchemeTerritory>CN</SchemeTerritory><ListIssueDateTime>2025-01-01T00:00:00Z"
        "</ListIssueDateTime></SchemeInformation></TrustServiceStatusList>",
        /* sequence overflow */
        "<TrustServiceStatusList xmlns=\"" TG_TL_NS_TSL "\"><SchemeInformation>"
        "<TSLSequenceNumber>18446744073709551616</TSLSequenceNumber>"
        "<SchemeTerritory>CN</SchemeTerritory><ListIssueDateTime>2025-01-01T00:00:00Z"
        "</ListIssueDateTime></SchemeInformation></TrustServiceStatusList>",
        /* negative sequence */
        "<TrustServiceStatusList xmlns=\"" TG_TL_NS_TSL "\"><SchemeInformation>"
        "<TSLSequenceNumber>-1</TSLSequenceNumber>"
        "<SchemeTerritory>CN</SchemeTerritory><ListIssueDateTime>2025-01-01T00:00:00Z"
        "</ListIssueDateTime></SchemeInformation></TrustServiceStatusList>",
        /* bad issue time */
        "<TrustServiceStatusList xmlns=\"" TG_TL_NS_TSL "\"><SchemeInformation>"
        "<TSLSequenceNumber>1</TSLSequenceNumber>"
        "<SchemeTerritory>CN</SchemeTerritory><ListIssueDateTime>yesterday"
        "</ListIssueDateTime></SchemeInformation></TrustServiceStatusList>",
        /* empty territory */
        "<TrustServiceStatusList xmlns=\"" TG_TL_NS_TSL "\"><SchemeInformation>"
        "<TSLSequenceNumber>1</TSLSequenceNumber>"
        "<SchemeTerritory> </SchemeTerritory><ListIssueDateTime>2025-01-01T00:00:00Z"
        "</ListIssueDateTime></SchemeInformation></TrustServiceStatusList>",
        /* bad NextUpdate */
        "<TrustServiceStatusList xmlns=\"" TG_TL_NS_TSL "\"><SchemeInformation>"
        "<TSLSequenceNumber>1</TSLSequenceNumber><SchemeTerritory>CN</SchemeTerritory>"
        "<ListIssueDateTime>2025-01-01T00:00:00Z</ListIssueDateTime>"
        "<NextUpdate><dateTime>soon</dateTime></NextUpdate>"
        "</SchemeInformation></TrustServiceStatusList>",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_str_eq(refused(cases[i], strlen(cases[i])), "bad_profile", "case %zu", i);
}

Test(tl_parse, bad_service_refusals)
{
    EVP_PKEY *k = tlt_key("ec");
    X509 *ca = tlt_cert("CA", k, NULL, k, 1);
    tlt_list_t L = {.seq = 1, .n_svcs = 1, .svcs = {{.name = "s", .certs = {ca}, .n_certs = 1}}};
    static const struct {
        const char *from, *to;
    } edits[] = {
        {"<tsl:StatusStartingTime>2024-01-01T00:00:00Z", "<tsl:StatusStartingTime>2024-01-01"},
        {"<tsl:ServiceStatus>http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted",
         "<tsl:ServiceStatus>"},
        {"<X509Certificate>M", "<X509Certificate>!M"},  /* not base64 */
        {"<X509Certificate>MI", "<X509Certificate>MA"}, /* not a certificate */
        {"</tsl:ServiceStatus>", "</tsl:ServiceStatus><tsl:ServiceStatus>x</tsl:ServiceStatus>"},
        {"<tsl:ServiceTypeIdentifier>http://uri.etsi.org/TrstSvc/Svctype/CA/PKC"
         "</tsl:ServiceTypeIdentifier>",
         ""},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        tg_buf_t b;
        tg_buf_init(&b);
        tlt_build(&L, &b);
        tlt_replace(&b, edits[i].from, edits[i].to);
        cr_expect_str_eq(refused(b.data, b.len), "bad_profile", "edit %zu", i);
        tg_buf_free(&b);
    }
    X509_free(ca);
    EVP_PKEY_free(k);
}

Test(tl_parse, lenient_on_cosmetic_fields)
{
    /* No names, no TSP information, unknown extensions, a non-OID policy
     * identifier, a "none" criteria list: accepted, nothing invented. */
    tlt_list_t L = {
        .seq = 3,
        .n_svcs = 1,
        .svcs = {{.name = "s",
                  .raw_extra = "<tsl:ServiceInformationExtensions><tsl:Extension>"
                               "<sie:Qualifications><sie:QualificationElement>"
                               "<sie:CriteriaList assert=\"none\"><sie:PolicySet>"
                               "<sie:PolicyIdentifier><xades:Identifier>urn:oid:9.9.9"
                               "</xades:Identifier></sie:PolicyIdentifier></sie:PolicySet>"
                               "</sie:CriteriaList>"
                               "<sie:CriteriaList assert=\"all\"><sie:CriteriaList>"
                               "<sie:PolicySet><sie:PolicyIdentifier><xades:Identifier>"
                               "1.3.6.1.4.1.10015.17.2</xades:Identifier><xades:Identifier>"
                               "not an oid</xades:Identifier></sie:PolicyIdentifier>"
                               "</sie:PolicySet></sie:CriteriaList></sie:CriteriaList>"
                               "</sie:QualificationElement></sie:Qualifications>"
                               "<x:Whatever xmlns:x=\"urn:x\"/></tsl:Extension>"
                               "</tsl:ServiceInformationExtensions>"}}};
    tg_buf_t b;
    tg_buf_init(&b);
    tlt_build(&L, &b);
    tg_tl_list_t *l = parse_ok(&b);
    cr_assert_eq(l->n_services, 1);
    cr_expect_eq(l->services[0].n_certs, 0);
    cr_assert_eq(l->services[0].n_policy_oids, 1);
    cr_expect_str_eq(l->services[0].policy_oids[0], "1.3.6.1.4.1.10015.17.2");
    tg_tl_list_free(l);
    tg_buf_free(&b);
}

/* ---- hardened XML ------------------------------------------------------------ */

Test(tl_parse, malformed_xml)
{
    static const char *const cases[] = {
        "",
        "not xml",
        "<TrustServiceStatusList xmlns=\"" TG_TL_NS_TSL "\">",
        "<a></b>",
        "<a/><b/>",
        "<a>&undefined;</a>",
        "\xff\xfe<\x00",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_str_eq(refused(cases[i], strlen(cases[i])), "malformed_xml", "case %zu", i);
}

Test(tl_parse, billion_laughs_refused_quickly)
{
    /* The classic shape: each level references the previous one ten times. */
    tg_buf_t b;
    tg_buf_init(&b);
    cr_assert_eq(tg_buf_append_str(&b, "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n"
                                       " <!ENTITY lol0 \"lol\">\n"),
                 0);
    for (int i = 1; i <= 40; i++) {
        cr_assert_eq(tg_buf_printf(&b, " <!ENTITY lol%d \"", i), 0);
        for (int j = 0; j < 10; j++)
            cr_assert_eq(tg_buf_printf(&b, "&lol%d;", i - 1), 0);
        cr_assert_eq(tg_buf_append_str(&b, "\">\n"), 0);
    }
    cr_assert_eq(tg_buf_append_str(&b, "]>\n<TrustServiceStatusList xmlns=\"" TG_TL_NS_TSL
                                       "\">&lol40;</TrustServiceStatusList>\n"),
                 0);
    uint64_t t0 = tg_now_ns();
    tg_tl_refusal_t why;
    tg_tl_list_t *l = NULL;
    cr_assert_eq(tg_tl_parse(b.data, b.len, &why, &l), TG_EMALFORMED);
    uint64_t dt = tg_now_ns() - t0;
    cr_expect_str_eq(why.code, "entity_declaration");
    cr_expect(strstr(why.message, "lol0") != NULL, "%s", why.message);
    cr_expect(dt < 100000000ULL, "took %llu ns", (unsigned long long)dt);
    tg_buf_free(&b);

    /* Parameter entities and external entities are declarations too. */
    const char *pe = "<!DOCTYPE x [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]><x/>";
    cr_expect_str_eq(refused(pe, strlen(pe)), "entity_declaration");
    const char *xxe = "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>";
    cr_expect_str_eq(refused(xxe, strlen(xxe)), "entity_declaration");
}

Test(tl_parse, doctype_refused)
{
    /* No entities, but an ID declaration could redirect "#id" references. */
    const char *a = "<!DOCTYPE TrustServiceStatusList [<!ATTLIST x Id ID #IMPLIED>]>"
                    "<TrustServiceStatusList xmlns=\"" TG_TL_NS_TSL "\"/>";
    cr_expect_str_eq(refused(a, strlen(a)), "doctype");
    const char *b = "<!DOCTYPE TrustServiceStatusList SYSTEM \"http://example/evil.dtd\">"
                    "<TrustServiceStatusList xmlns=\"" TG_TL_NS_TSL "\"/>";
    cr_expect_str_eq(refused(b, strlen(b)), "doctype");
}

Test(tl_parse, too_big)
{
    size_t n = TG_TL_MAX_BYTES + 1;
    uint8_t *big = calloc(1, n);
    cr_assert_not_null(big);
    tg_tl_refusal_t why;
    tg_tl_list_t *l = NULL;
    cr_expect_eq(tg_tl_parse(big, n, &why, &l), TG_ETOOBIG);
    cr_expect_str_eq(why.code, "too_big");
    free(big);
}

/* ---- public vectors ---------------------------------------------------------- */

Test(tl_parse, every_vector_parses)
{
    DIR *d = opendir(tlt_vectors());
    if (d == NULL)
        cr_skip_test("no trust-list vectors under %s", tlt_vectors());
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".xml") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", tlt_vectors(), e->d_name);
        size_t sz;
        uint8_t *xml = tlt_read(path, &sz);
        cr_assert_not_null(xml);
        tg_tl_refusal_t why;
        tg_tl_list_t *l = NULL;
        int rc = tg_tl_parse(xml, sz, &why, &l);
        cr_expect_eq(rc, 0, "%s: %s %s", e->d_name, why.code ? why.code : "", why.message);
        if (rc == 0) {
            cr_expect(l->sequence > 0, "%s", e->d_name);
            cr_expect(l->territory[0] != '\0', "%s", e->d_name);
            cr_expect(l->issued > 0, "%s", e->d_name);
            n++;
        }
        tg_tl_list_free(l);
        free(xml);
    }
    closedir(d);
    cr_expect(n >= 10, "only %d vectors", n);
}

static tg_tl_list_t *vector(const char *name)
{
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s", tlt_vectors(), name);
    size_t sz;
    uint8_t *xml = tlt_read(path, &sz);
    if (xml == NULL)
        cr_skip_test("vector %s missing", path);
    tg_tl_refusal_t why;
    tg_tl_list_t *l = NULL;
    cr_assert_eq(tg_tl_parse(xml, sz, &why, &l), 0, "%s", why.message);
    free(xml);
    return l;
}

static const tg_tl_service_t *service_named(const tg_tl_list_t *l, const char *prefix)
{
    for (size_t i = 0; i < l->n_services; i++) {
        if (strncmp(l->services[i].name, prefix, strlen(prefix)) == 0)
            return &l->services[i];
    }
    cr_assert_fail("no service %s", prefix);
    return NULL;
}

/* EE_T-CA-withdrawn-granted-before.xml (libdigidocpp): the stored copy's
 * "TEST of ESTEID-SK 2011" service went undersupervision (2011-03-08),
 * supervisionrevoked (2013-04-22T11:49:30Z), undersupervision again
 * (2013-04-23T01:00Z) and granted (2016-06-30T22:00Z). */
Test(tl_parse, ee_status_history)
{
    tg_tl_list_t *l = vector("EE_T-CA-withdrawn-granted-before.xml");
    cr_expect_str_eq(l->territory, "EE_T");
    cr_expect_eq(l->sequence, 22);
    const tg_tl_service_t *s = service_named(l, "TEST of ESTEID-SK 2011");
    cr_assert_eq(s->n_entries, 4);
    time_t since;
    cr_expect_eq(tg_tl_service_status_at(s, T("2011-03-08T21:59:59Z"), &since), TG_TL_NOT_LISTED);
    cr_expect_eq(tg_tl_service_status_at(s, T("2012-01-01T00:00:00Z"), &since), TG_TL_ACTIVE);
    cr_expect_eq(since, T("2011-03-08T22:00:00Z"));
    /* Revoked for a few hours; granted before and after. */
    cr_expect_eq(tg_tl_service_status_at(s, T("2013-04-22T11:49:30Z"), &since), TG_TL_TERMINATED);
    cr_expect_eq(since, T("2013-04-22T11:49:30Z"));
    cr_expect_eq(tg_tl_service_status_at(s, T("2013-04-22T11:49:29Z"), &since), TG_TL_ACTIVE);
    cr_expect_eq(tg_tl_service_status_at(s, T("2013-04-23T01:00:00Z"), &since), TG_TL_ACTIVE);
    cr_expect_eq(tg_tl_service_status_at(s, T("2025-01-01T00:00:00Z"), &since), TG_TL_ACTIVE);
    cr_expect_eq(since, T("2016-06-30T22:00:00Z"));
    tg_tl_list_free(l);
}

/* The name's case (withdrawn now, granted before), rebuilt from the same
 * vector by withdrawing its current entry: the history still answers for
 * earlier times. */
Test(tl_parse, ee_withdrawn_now_granted_before)
{
    char path[2048];
    snprintf(path, sizeof(path), "%s/EE_T-CA-withdrawn-granted-before.xml", tlt_vectors());
    size_t sz;
    uint8_t *xml = tlt_read(path, &sz);
    if (xml == NULL)
        cr_skip_test("vector missing");
    tg_buf_t b;
    tg_buf_init(&b);
    cr_assert_eq(tg_buf_append(&b, xml, sz), 0);
    free(xml);
    /* The first service's current status. */
    tlt_replace(&b,
                "<ServiceStatus>http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted"
                "</ServiceStatus>\n                  <StatusStartingTime>2016-06-30T22:00:00Z",
                "<ServiceStatus>http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/withdrawn"
                "</ServiceStatus>\n                  <StatusStartingTime>2016-11-27T22:00:00Z");
    tg_tl_list_t *l = parse_ok(&b);
    const tg_tl_service_t *s = service_named(l, "TEST of ESTEID-SK 2011");
    time_t since;
    cr_expect_eq(tg_tl_service_status_at(s, T("2025-01-01T00:00:00Z"), &since), TG_TL_TERMINATED);
    cr_expect_eq(since, T("2016-11-27T22:00:00Z"));
    cr_expect_eq(tg_tl_service_status_at(s, T("2016-11-27T21:59:59Z"), &since), TG_TL_ACTIVE);
    cr_expect_eq(since, T("2013-04-23T01:00:00Z"));
    tg_tl_list_free(l);
    tg_buf_free(&b);
}
