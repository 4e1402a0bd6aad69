/* Reading the SPEC §2 profile out of a (verified) document; times; status
 * URIs; list life cycle.
 *
 * Strict where security depends on a value (sequence number, territory,
 * times, status URIs, certificates): a missing, repeated or unparsable
 * value refuses the list ("bad_profile"). Lenient on cosmetic fields
 * (names, supply points, extensions): absent means empty, and unknown
 * elements are ignored, as real national lists carry extras. */
#include "trustlist/trustlist_internal.h"

#include "common/log.h"

#include <libxml/tree.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>

typedef struct {
    tg_tl_list_t pub;
    atomic_uint refs;
    tl_arena_t arena;
} list_impl_t;

/* ---- times ------------------------------------------------------------ */

int tl_is_xml_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

int tg_tl_parse_time(const char *s, size_t n, time_t *out_t)
{
    while (n > 0 && tl_is_xml_space(*s)) {
        s++;
        n--;
    }
    while (n > 0 && tl_is_xml_space(s[n - 1]))
        n--;
    /* YYYY-MM-DDThh:mm:ss = 19 bytes; years before 1000 or after 9999 and
     * negative years do not occur in trust lists and are refused. */
    if (n < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
        return TG_EMALFORMED;
    int y, mo, d, h, mi, sec;
    if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec))
        return TG_EMALFORMED;
    size_t i = 19;
    int frac_nonzero = 0;
    if (i < n && s[i] == '.') {
        i++;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (s[i] != '0')
                frac_nonzero = 1;
            i++;
        }
        if (i == start)
            return TG_EMALFORMED;
    }
    int64_t offset = 0;
    if (i < n) {
        if (s[i] == 'Z') {
            i++;
        } else if (s[i] == '+' || s[i] == '-') {
            int oh, om;
            if (n - i != 6 || s[i + 3] != ':' || digits(s + i + 1, 2, &oh) ||
                digits(s + i + 4, 2, &om))
                return TG_EMALFORMED;
            if (om > 59 || oh > 14 || (oh == 14 && om != 0))
                return TG_EMALFORMED;
            offset = (int64_t)(oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
            i += 6;
        } else {
            return TG_EMALFORMED;
        }
    }
    if (i != n)
        return TG_EMALFORMED;
    if (y < 1000 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || mi > 59 || sec > 59)
        return TG_EMALFORMED;
    if (h > 24 || (h == 24 && (mi != 0 || sec != 0 || frac_nonzero)))
        return TG_EMALFORMED;
    int64_t t = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + mi * 60 + sec - offset;
    *out_t = (time_t)t;
    return 0;
}

/* ---- status URIs (SPEC §2) ------------------------------------------------ */

static const char *const active_tails[] = {
    "granted",    "recognisedatnationallevel", "undersupervision",
    "accredited", "setbynationallaw",          "supervisionincessation",
};
static const char *const terminated_tails[] = {
    "withdrawn",
    "deprecatedatnationallevel",
    "deprecatedbynationallaw",
    "supervisionceased",
    "supervisionrevoked",
    "accreditationceased",
    "accreditationrevoked",
};

static int tail_in(const char *tail, size_t n, const char *const *set, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        if (strlen(set[i]) == n && memcmp(set[i], tail, n) == 0)
            return 1;
    }
    return 0;
}

tg_tl_status_t tg_tl_status_of_uri(const char *uri, size_t n, int *out_known)
{
    static const char prefix[] = TG_TL_STATUS_PREFIX;
    const size_t pn = sizeof(prefix) - 1;
    int known = 1;
    tg_tl_status_t st = TG_TL_TERMINATED;
    if (n == sizeof(TG_TL_STATUS_SUSPENDED_URI) - 1 &&
        memcmp(uri, TG_TL_STATUS_SUSPENDED_URI, n) == 0) {
        st = TG_TL_SUSPENDED;
    } else if (n > pn && memcmp(uri, prefix, pn) == 0 &&
               tail_in(uri + pn, n - pn, active_tails,
                       sizeof(active_tails) / sizeof(active_tails[0]))) {
        st = TG_TL_ACTIVE;
    } else if (n > pn && memcmp(uri, prefix, pn) == 0 &&
               tail_in(uri + pn, n - pn, terminated_tails,
                       sizeof(terminated_tails) / sizeof(terminated_tails[0]))) {
        st = TG_TL_TERMINATED;
    } else {
        known = 0; /* anything else: terminated, and the caller warns */
    }
    if (out_known != NULL)
        *out_known = known;
    return st;
}

const char *tg_tl_status_name(tg_tl_status_t status)
{
    switch (status) {
    case TG_TL_NOT_LISTED: return "not_listed";
    case TG_TL_ACTIVE: return "active";
    case TG_TL_SUSPENDED: return "suspended";
    case TG_TL_TERMINATED: return "terminated";
    }
    return "unknown";
}

const char *tg_tl_reason_name(tg_tl_reason_t reason)
{
    switch (reason) {
    case TG_TL_REASON_NONE: return "none";
    case TG_TL_REASON_STATUS: return "status";
    case TG_TL_REASON_UNKNOWN_URI: return "unknown_uri";
    case TG_TL_REASON_REMOVED: return "removed";
    }
    return "unknown";
}

const tg_tl_status_entry_t *tg_tl_service_entry_at(const tg_tl_service_t *svc, time_t t)
{
    const tg_tl_status_entry_t *best = NULL;
    for (size_t i = 0; i < svc->n_entries; i++) {
        const tg_tl_status_entry_t *e = &svc->entries[i];
        if (e->start <= t && (best == NULL || e->start > best->start))
            best = e;
    }
    return best;
}

tg_tl_status_t tg_tl_service_status_at(const tg_tl_service_t *svc, time_t t, time_t *out_since)
{
    const tg_tl_status_entry_t *e = tg_tl_service_entry_at(svc, t);
    if (out_since != NULL)
        *out_since = e ? e->start : 0;
    return e ? e->status : TG_TL_NOT_LISTED;
}

int tg_tl_list_is_stale(const tg_tl_list_t *list, time_t now)
{
    return list->next_update != 0 && now > list->next_update;
}

/* ---- profile reading ------------------------------------------------------ */

#define TSL TG_TL_NS_TSL
#define SIE TG_TL_NS_SIE

/* Bounds on counts a document controls (far above real lists). */
#define MAX_CERTS_PER_IDENTITY 64
#define MAX_POLICY_OIDS 256

typedef struct {
    tl_arena_t *a;
    tg_tl_refusal_t *why;
    const char *where; /* service name for messages */
    /* distinct unknown status URIs, logged once per load */
    const char **unknown;
    size_t n_unknown, cap_unknown;
    size_t n_unknown_entries;
} pctx_t;

static int nomem(pctx_t *pc)
{
    tg_error("trust list: out of memory");
    return tl_internal(pc->why, TG_ENOMEM, "reading the trust list");
}

/* Text content of node, XML whitespace trimmed, copied into the arena. */
static int text_of(pctx_t *pc, const xmlNode *node, const char **out)
{
    xmlChar *c = xmlNodeGetContent(node);
    const char *s = c ? (const char *)c : "";
    size_t n = strlen(s);
    while (n > 0 && tl_is_xml_space(*s)) {
        s++;
        n--;
    }
    while (n > 0 && tl_is_xml_space(s[n - 1]))
        n--;
    char *d = tl_arena_strndup(pc->a, s, n);
    xmlFree(c);
    if (d == NULL)
        return nomem(pc);
    *out = d;
    return 0;
}

/* Exactly one child ns:name of parent, else "bad_profile". */
static int one_child(pctx_t *pc, const xmlNode *parent, const char *local, xmlNode **out)
{
    size_t k = tl_count(parent, TSL, local);
    if (k != 1) {
        return tl_refuse(pc->why, "bad_profile", "%s%s%s: %s %s", pc->where ? "service \"" : "",
                         pc->where ? pc->where : "", pc->where ? "\"" : "",
                         k == 0 ? "missing" : "repeated", local);
    }
    *out = tl_child(parent, TSL, local);
    return 0;
}

/* At most one child; *out NULL when absent. */
static int opt_child(pctx_t *pc, const xmlNode *parent, const char *local, xmlNode **out)
{
    *out = NULL;
    if (parent == NULL)
        return 0;
    if (tl_count(parent, TSL, local) > 1)
        return tl_refuse(pc->why, "bad_profile", "repeated %s", local);
    *out = tl_child(parent, TSL, local);
    return 0;
}

static int required_time(pctx_t *pc, const xmlNode *parent, const char *local, time_t *out)
{
    xmlNode *n;
    const char *s;
    int rc = one_child(pc, parent, local, &n);
    if (rc == 0)
        rc = text_of(pc, n, &s);
    if (rc != 0)
        return rc;
    if (tg_tl_parse_time(s, strlen(s), out) != 0) {
        return tl_refuse(pc->why, "bad_profile", "%s%s%s: %s \"%.60s\" is not an xsd:dateTime",
                         pc->where ? "service \"" : "", pc->where ? pc->where : "",
                         pc->where ? "\"" : "", local, s);
    }
    return 0;
}

/* The Name children of a multilingual element: the one with
 * xml:lang="en" (any case), else the first; "" when none. */
static int pick_name(pctx_t *pc, const xmlNode *parent, const char **out)
{
    *out = "";
    const xmlNode *pick = NULL;
    for (xmlNode *n = tl_child(parent, TSL, "Name"); n != NULL; n = tl_next(n, TSL, "Name")) {
        if (pick == NULL)
            pick = n;
        xmlChar *lang = xmlGetNsProp(n, BAD_CAST "lang", XML_XML_NAMESPACE);
        int en = lang != NULL && strcasecmp((const char *)lang, "en") == 0;
        xmlFree(lang);
        if (en) {
            pick = n;
            break;
        }
    }
    return pick ? text_of(pc, pick, out) : 0;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict base64 (XML whitespace skipped, padding checked) into a malloc'd
 * buffer. Returns 0, TG_EMALFORMED or TG_ENOMEM. */
int tl_b64_decode(const char *s, uint8_t **out, size_t *out_len)
{
    size_t n = strlen(s);
    uint8_t *buf = malloc(n / 4 * 3 + 3);
    if (buf == NULL)
        return TG_ENOMEM;
    uint32_t acc = 0;
    size_t q = 0, o = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (tl_is_xml_space(c))
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64val((unsigned char)c);
        if (v < 0 || pad > 0) {
            free(buf);
            return TG_EMALFORMED;
        }
        acc = acc << 6 | (uint32_t)v;
        if (++q == 4) {
            buf[o++] = (uint8_t)(acc >> 16);
            buf[o++] = (uint8_t)(acc >> 8);
            buf[o++] = (uint8_t)acc;
            acc = 0;
            q = 0;
        }
    }
    if (q == 1 || (q == 0 && pad != 0) || (q == 2 && pad != 2) || (q == 3 && pad != 1)) {
        free(buf);
        return TG_EMALFORMED;
    }
    if (q == 2)
        buf[o++] = (uint8_t)(acc >> 4);
    if (q == 3) {
        buf[o++] = (uint8_t)(acc >> 10);
        buf[o++] = (uint8_t)(acc >> 2);
    }
    *out = buf;
    *out_len = o;
    return 0;
}

/* One X509Certificate element → an X509 owned by the arena. */
static int cert_of(pctx_t *pc, const xmlNode *node, X509 **out)
{
    const char *s;
    int rc = text_of(pc, node, &s);
    if (rc != 0)
        return rc;
    uint8_t *der = NULL;
    size_t len = 0;
    rc = tl_b64_decode(s, &der, &len);
    if (rc == TG_ENOMEM)
        return nomem(pc);
    X509 *x = NULL;
    if (rc == 0 && len > 0 && len <= 1 << 20) {
        const unsigned char *p = der;
        x = d2i_X509(NULL, &p, (long)len);
        if (x != NULL && p != der + len) {
            X509_free(x);
            x = NULL;
        }
    }
    free(der);
    if (x == NULL) {
        tg_openssl_clear_errors();
        return tl_refuse(pc->why, "bad_profile", "%s%s%s: an X509Certificate does not parse",
                         pc->where ? "service \"" : "", pc->where ? pc->where : "",
                         pc->where ? "\"" : "pointer or list");
    }
    /* Cache the extensions now, while one thread owns the certificate: a
     * certificate whose extensions OpenSSL finds invalid is kept (it simply
     * fails any later path check) but would otherwise leave an error on the
     * queue of whichever thread first compares it. */
    if (X509_check_purpose(x, -1, 0) != 1) {
        tg_openssl_clear_errors();
        char subj[160];
        X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
        tg_warn("trust list: certificate \"%s\"%s%s has invalid extensions", subj,
                pc->where ? " of service " : "", pc->where ? pc->where : "");
    }
    if (tl_arena_own_x509(pc->a, x) != 0)
        return nomem(pc);
    *out = x;
    return 0;
}

/* Certificates of every ServiceDigitalIdentity child of parent (each
 * DigitalId/X509Certificate; other DigitalId kinds skipped). */
static int certs_of(pctx_t *pc, const xmlNode *parent, X509 *const **out, size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    size_t k = 0;
    for (xmlNode *sdi = tl_child(parent, TSL, "ServiceDigitalIdentity"); sdi != NULL;
         sdi = tl_next(sdi, TSL, "ServiceDigitalIdentity")) {
        for (xmlNode *d = tl_child(sdi, TSL, "DigitalId"); d != NULL;
             d = tl_next(d, TSL, "DigitalId"))
            k += tl_count(d, TSL, "X509Certificate");
    }
    if (k == 0)
        return 0;
    if (k > MAX_CERTS_PER_IDENTITY)
        return tl_refuse(pc->why, "bad_profile", "%zu certificates in one digital identity", k);
    X509 **arr = tl_arena_alloc(pc->a, k * sizeof(*arr));
    if (arr == NULL)
        return nomem(pc);
    size_t i = 0;
    for (xmlNode *sdi = tl_child(parent, TSL, "ServiceDigitalIdentity"); sdi != NULL;
         sdi = tl_next(sdi, TSL, "ServiceDigitalIdentity")) {
        for (xmlNode *d = tl_child(sdi, TSL, "DigitalId"); d != NULL;
             d = tl_next(d, TSL, "DigitalId")) {
            for (xmlNode *c = tl_child(d, TSL, "X509Certificate"); c != NULL;
                 c = tl_next(c, TSL, "X509Certificate")) {
                int rc = cert_of(pc, c, &arr[i]);
                if (rc != 0)
                    return rc;
                i++;
            }
        }
    }
    *out = arr;
    *out_n = k;
    return 0;
}

static int note_unknown(pctx_t *pc, const char *uri)
{
    pc->n_unknown_entries++;
    for (size_t i = 0; i < pc->n_unknown; i++) {
        if (strcmp(pc->unknown[i], uri) == 0)
            return 0;
    }
    if (pc->n_unknown == pc->cap_unknown) {
        size_t cap = pc->cap_unknown ? pc->cap_unknown * 2 : 8;
        const char **p = realloc(pc->unknown, cap * sizeof(*p));
        if (p == NULL)
            return nomem(pc);
        pc->unknown = p;
        pc->cap_unknown = cap;
    }
    pc->unknown[pc->n_unknown++] = uri;
    return 0;
}

/* ServiceStatus + StatusStartingTime of parent into *e. */
static int status_entry(pctx_t *pc, const xmlNode *parent, tg_tl_status_entry_t *e)
{
    xmlNode *n;
    int rc = one_child(pc, parent, "ServiceStatus", &n);
    if (rc == 0)
        rc = text_of(pc, n, &e->uri);
    if (rc == 0)
        rc = required_time(pc, parent, "StatusStartingTime", &e->start);
    if (rc != 0)
        return rc;
    if (e->uri[0] == '\0')
        return tl_refuse(pc->why, "bad_profile", "service \"%s\": empty ServiceStatus", pc->where);
    int known;
    e->status = tg_tl_status_of_uri(e->uri, strlen(e->uri), &known);
    e->reason = known ? TG_TL_REASON_STATUS : TG_TL_REASON_UNKNOWN_URI;
    if (!known)
        return note_unknown(pc, e->uri);
    return 0;
}

typedef struct {
    const char **v;
    size_t n, cap;
} strvec_t;

static int strvec_push(pctx_t *pc, strvec_t *sv, const char *s)
{
    if (sv->n >= MAX_POLICY_OIDS)
        return tl_refuse(pc->why, "bad_profile", "service \"%s\": more than %d policy OIDs",
                         pc->where, MAX_POLICY_OIDS);
    for (size_t i = 0; i < sv->n; i++) {
        if (strcmp(sv->v[i], s) == 0)
            return 0;
    }
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 8;
        const char **p = realloc(sv->v, cap * sizeof(*p));
        if (p == NULL)
            return nomem(pc);
        sv->v = p;
        sv->cap = cap;
    }
    sv->v[sv->n++] = s;
    return 0;
}

/* Dotted-decimal OID with at least two arcs. */
static int oid_ok(const char *s)
{
    int arcs = 0;
    const char *p = s;
    for (;;) {
        const char *start = p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == start)
            return 0;
        arcs++;
        if (*p == '\0')
            break;
        if (*p != '.')
            return 0;
        p++;
    }
    return arcs >= 2 && (s[0] == '0' || s[0] == '1' || s[0] == '2') && s[1] == '.';
}

/* Policy identifiers of a CriteriaList, recursively. Lists with
 * assert="none" name policies that must NOT be present: skipped, so they
 * never widen what is accepted. */
static int criteria(pctx_t *pc, const xmlNode *cl, strvec_t *oids, int depth)
{
    if (depth > 8)
        return 0;
    const char *assert_ = tl_attr(cl, "assert");
    if (assert_ != NULL && strcmp(assert_, "none") == 0)
        return 0;
    for (xmlNode *ps = tl_child(cl, SIE, "PolicySet"); ps != NULL;
         ps = tl_next(ps, SIE, "PolicySet")) {
        for (xmlNode *pi = tl_child(ps, SIE, "PolicyIdentifier"); pi != NULL;
             pi = tl_next(pi, SIE, "PolicyIdentifier")) {
            for (xmlNode *id = tl_child(pi, TG_TL_NS_XADES, "Identifier"); id != NULL;
                 id = tl_next(id, TG_TL_NS_XADES, "Identifier")) {
                const char *s;
                int rc = text_of(pc, id, &s);
                if (rc != 0)
                    return rc;
                const char *oid = s;
                if (strncasecmp(oid, "urn:oid:", 8) == 0)
                    oid += 8;
                if (!oid_ok(oid)) {
                    tg_warn("trust list: service \"%s\": policy identifier \"%.80s\" is not an "
                            "OID; ignored",
                            pc->where, s);
                    continue;
                }
                rc = strvec_push(pc, oids, oid);
                if (rc != 0)
                    return rc;
            }
        }
    }
    for (xmlNode *sub = tl_child(cl, SIE, "CriteriaList"); sub != NULL;
         sub = tl_next(sub, SIE, "CriteriaList")) {
        int rc = criteria(pc, sub, oids, depth + 1);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int policies(pctx_t *pc, const xmlNode *si, tg_tl_service_t *svc)
{
    strvec_t oids = {0};
    int rc = 0;
    xmlNode *exts = tl_child(si, TSL, "ServiceInformationExtensions");
    for (xmlNode *ext = tl_child(exts, TSL, "Extension"); ext && rc == 0;
         ext = tl_next(ext, TSL, "Extension")) {
        for (xmlNode *q = tl_child(ext, SIE, "Qualifications"); q && rc == 0;
             q = tl_next(q, SIE, "Qualifications")) {
            for (xmlNode *qe = tl_child(q, SIE, "QualificationElement"); qe && rc == 0;
                 qe = tl_next(qe, SIE, "QualificationElement")) {
                xmlNode *qs = tl_child(qe, SIE, "Qualifiers");
                for (xmlNode *ql = tl_child(qs, SIE, "Qualifier"); ql != NULL;
                     ql = tl_next(ql, SIE, "Qualifier")) {
                    const char *uri = tl_attr(ql, "uri");
                    if (uri != NULL && strcmp(uri, TG_TL_QUALIFIER_OID_PREFIX) == 0)
                        svc->oid_prefix = 1;
                }
                for (xmlNode *cl = tl_child(qe, SIE, "CriteriaList"); cl && rc == 0;
                     cl = tl_next(cl, SIE, "CriteriaList"))
                    rc = criteria(pc, cl, &oids, 0);
            }
        }
    }
    if (rc == 0 && oids.n > 0) {
        const char **arr = tl_arena_alloc(pc->a, oids.n * sizeof(*arr));
        if (arr == NULL) {
            rc = nomem(pc);
        } else {
            memcpy(arr, oids.v, oids.n * sizeof(*arr));
            svc->policy_oids = arr;
            svc->n_policy_oids = oids.n;
        }
    }
    free(oids.v);
    return rc;
}

static int supply_points(pctx_t *pc, const xmlNode *si, tg_tl_service_t *svc)
{
    xmlNode *ssp = tl_child(si, TSL, "ServiceSupplyPoints");
    size_t k = tl_count(ssp, TSL, "ServiceSupplyPoint");
    if (k == 0)
        return 0;
    tg_tl_supply_point_t *arr = tl_arena_alloc(pc->a, k * sizeof(*arr));
    if (arr == NULL)
        return nomem(pc);
    size_t i = 0;
    for (xmlNode *p = tl_child(ssp, TSL, "ServiceSupplyPoint"); p != NULL;
         p = tl_next(p, TSL, "ServiceSupplyPoint"), i++) {
        int rc = text_of(pc, p, &arr[i].uri);
        if (rc != 0)
            return rc;
        const char *type = tl_attr(p, "type");
        if (type != NULL) {
            arr[i].type = tl_arena_strndup(pc->a, type, strlen(type));
            if (arr[i].type == NULL)
                return nomem(pc);
            if (strcmp(type, TG_TL_SUPPLY_TYPE_OCSP) == 0)
                arr[i].kind = TG_TL_SUPPLY_OCSP;
            else if (strcmp(type, TG_TL_SUPPLY_TYPE_CRL) == 0)
                arr[i].kind = TG_TL_SUPPLY_CRL;
        }
    }
    svc->supply_points = arr;
    svc->n_supply_points = k;
    return 0;
}

static int service(pctx_t *pc, const xmlNode *node, const char *tsp_name, size_t tsp_index,
                   tg_tl_service_t *svc)
{
    xmlNode *si, *n;
    pc->where = "?";
    int rc = one_child(pc, node, "ServiceInformation", &si);
    if (rc != 0)
        return rc;
    svc->tsp_name = tsp_name;
    svc->tsp_index = tsp_index;
    rc = pick_name(pc, tl_child(si, TSL, "ServiceName"), &svc->name);
    if (rc != 0)
        return rc;
    pc->where = svc->name;
    rc = one_child(pc, si, "ServiceTypeIdentifier", &n);
    if (rc == 0)
        rc = text_of(pc, n, &svc->type);
    if (rc == 0)
        rc = certs_of(pc, si, &svc->certs, &svc->n_certs);
    if (rc != 0)
        return rc;

    xmlNode *hist = tl_child(node, TSL, "ServiceHistory");
    if (hist != NULL && tl_next(hist, TSL, "ServiceHistory") != NULL)
        return tl_refuse(pc->why, "bad_profile", "service \"%s\": repeated ServiceHistory",
                         svc->name);
    size_t nh = tl_count(hist, TSL, "ServiceHistoryInstance");
    tg_tl_status_entry_t *entries = tl_arena_alloc(pc->a, (nh + 1) * sizeof(*entries));
    if (entries == NULL)
        return nomem(pc);
    rc = status_entry(pc, si, &entries[0]);
    if (rc != 0)
        return rc;
    entries[0].certs = svc->certs;
    entries[0].n_certs = svc->n_certs;
    size_t i = 1;
    for (xmlNode *h = tl_child(hist, TSL, "ServiceHistoryInstance"); h != NULL;
         h = tl_next(h, TSL, "ServiceHistoryInstance"), i++) {
        rc = status_entry(pc, h, &entries[i]);
        if (rc == 0)
            rc = certs_of(pc, h, &entries[i].certs, &entries[i].n_certs);
        if (rc != 0)
            return rc;
        if (entries[i].n_certs == 0) {
            entries[i].certs = svc->certs;
            entries[i].n_certs = svc->n_certs;
        }
    }
    svc->entries = entries;
    svc->n_entries = nh + 1;

    rc = supply_points(pc, si, svc);
    if (rc == 0)
        rc = policies(pc, si, svc);
    pc->where = NULL;
    return rc;
}

static int pointers(pctx_t *pc, const xmlNode *si, tg_tl_list_t *l)
{
    xmlNode *p;
    int rc = opt_child(pc, si, "PointersToOtherTSL", &p);
    if (rc != 0 || p == NULL)
        return rc;
    size_t k = tl_count(p, TSL, "OtherTSLPointer");
    if (k == 0)
        return 0;
    tg_tl_pointer_t *arr = tl_arena_alloc(pc->a, k * sizeof(*arr));
    if (arr == NULL)
        return nomem(pc);
    size_t i = 0;
    for (xmlNode *o = tl_child(p, TSL, "OtherTSLPointer"); o != NULL;
         o = tl_next(o, TSL, "OtherTSLPointer"), i++) {
        xmlNode *loc = tl_child(o, TSL, "TSLLocation");
        arr[i].location = "";
        if (loc != NULL && (rc = text_of(pc, loc, &arr[i].location)) != 0)
            return rc;
        rc = certs_of(pc, tl_child(o, TSL, "ServiceDigitalIdentities"), &arr[i].certs,
                      &arr[i].n_certs);
        if (rc != 0)
            return rc;
        xmlNode *ai = tl_child(o, TSL, "AdditionalInformation");
        for (xmlNode *oi = tl_child(ai, TSL, "OtherInformation"); oi != NULL;
             oi = tl_next(oi, TSL, "OtherInformation")) {
            xmlNode *t = tl_child(oi, TSL, "SchemeTerritory");
            if (t != NULL) {
                rc = text_of(pc, t, &arr[i].territory);
                if (rc != 0)
                    return rc;
                break;
            }
        }
    }
    l->pointers = arr;
    l->n_pointers = k;
    return 0;
}

static int scheme_information(pctx_t *pc, const xmlNode *root, tg_tl_list_t *l)
{
    xmlNode *si, *n;
    const char *s;
    int rc = one_child(pc, root, "SchemeInformation", &si);
    if (rc == 0)
        rc = one_child(pc, si, "TSLSequenceNumber", &n);
    if (rc == 0)
        rc = text_of(pc, n, &s);
    if (rc != 0)
        return rc;
    uint64_t seq = 0;
    if (*s == '\0')
        return tl_refuse(pc->why, "bad_profile", "empty TSLSequenceNumber");
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || seq > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return tl_refuse(pc->why, "bad_profile",
                             "TSLSequenceNumber \"%.40s\" is not a "
                             "64-bit unsigned integer",
                             s);
        seq = seq * 10 + (uint64_t)(*p - '0');
    }
    l->sequence = seq;

    rc = one_child(pc, si, "SchemeTerritory", &n);
    if (rc == 0)
        rc = text_of(pc, n, &l->territory);
    if (rc != 0)
        return rc;
    if (l->territory[0] == '\0')
        return tl_refuse(pc->why, "bad_profile", "empty SchemeTerritory");

    rc = opt_child(pc, si, "SchemeOperatorName", &n);
    if (rc == 0)
        rc = pick_name(pc, n, &l->operator_name);
    if (rc == 0)
        rc = required_time(pc, si, "ListIssueDateTime", &l->issued);
    if (rc != 0)
        return rc;

    /* NextUpdate/dateTime absent or empty: a "closed" list, no next update. */
    xmlNode *nu;
    rc = opt_child(pc, si, "NextUpdate", &nu);
    if (rc == 0)
        rc = opt_child(pc, nu, "dateTime", &n);
    if (rc != 0)
        return rc;
    l->next_update = 0;
    if (n != NULL) {
        rc = text_of(pc, n, &s);
        if (rc != 0)
            return rc;
        if (*s != '\0' && tg_tl_parse_time(s, strlen(s), &l->next_update) != 0)
            return tl_refuse(pc->why, "bad_profile", "NextUpdate \"%.60s\" is not an xsd:dateTime",
                             s);
    }
    return pointers(pc, si, l);
}

static int providers(pctx_t *pc, const xmlNode *root, tg_tl_list_t *l)
{
    xmlNode *tspl;
    int rc = opt_child(pc, root, "TrustServiceProviderList", &tspl);
    if (rc != 0 || tspl == NULL)
        return rc;
    size_t nt = tl_count(tspl, TSL, "TrustServiceProvider");
    size_t ns = 0;
    for (xmlNode *t = tl_child(tspl, TSL, "TrustServiceProvider"); t != NULL;
         t = tl_next(t, TSL, "TrustServiceProvider"))
        ns += tl_count(tl_child(t, TSL, "TSPServices"), TSL, "TSPService");
    if (nt == 0)
        return 0;
    tg_tl_tsp_t *tsps = tl_arena_alloc(pc->a, nt * sizeof(*tsps));
    tg_tl_service_t *svcs = ns ? tl_arena_alloc(pc->a, ns * sizeof(*svcs)) : NULL;
    if (tsps == NULL || (ns > 0 && svcs == NULL))
        return nomem(pc);
    size_t ti = 0, si = 0;
    for (xmlNode *t = tl_child(tspl, TSL, "TrustServiceProvider"); t != NULL;
         t = tl_next(t, TSL, "TrustServiceProvider"), ti++) {
        xmlNode *info = tl_child(t, TSL, "TSPInformation");
        rc = pick_name(pc, tl_child(info, TSL, "TSPName"), &tsps[ti].name);
        if (rc != 0)
            return rc;
        tsps[ti].first_service = si;
        xmlNode *services = tl_child(t, TSL, "TSPServices");
        for (xmlNode *s = tl_child(services, TSL, "TSPService"); s != NULL;
             s = tl_next(s, TSL, "TSPService")) {
            rc = service(pc, s, tsps[ti].name, ti, &svcs[si]);
            if (rc != 0)
                return rc;
            si++;
        }
        tsps[ti].n_services = si - tsps[ti].first_service;
    }
    l->tsps = tsps;
    l->n_tsps = nt;
    l->services = svcs;
    l->n_services = ns;
    return 0;
}

int tl_list_from_doc(xmlDocPtr doc, const uint8_t *raw, size_t raw_len, X509 *verified_by,
                     tg_tl_refusal_t *why, tg_tl_list_t **out_list)
{
    *out_list = NULL;
    list_impl_t *impl = calloc(1, sizeof(*impl));
    if (impl == NULL) {
        tg_error("trust list: out of memory");
        return tl_internal(why, TG_ENOMEM, "reading the trust list");
    }
    atomic_init(&impl->refs, 1u);
    tg_tl_list_t *l = &impl->pub;
    pctx_t pc = {.a = &impl->arena, .why = why};
    int rc = 0;
    const xmlNode *root = xmlDocGetRootElement(doc);
    if (!tl_is(root, TSL, "TrustServiceStatusList")) {
        rc = tl_refuse(why, "bad_profile", "the root element is not tsl:TrustServiceStatusList");
        goto out;
    }
    uint8_t *copy = tl_arena_alloc(&impl->arena, raw_len);
    if (copy == NULL) {
        rc = nomem(&pc);
        goto out;
    }
    memcpy(copy, raw, raw_len);
    l->raw = copy;
    l->raw_len = raw_len;
    if (EVP_Digest(raw, raw_len, impl->pub.sha256, NULL, EVP_sha256(), NULL) != 1) {
        tg_log_openssl("SHA-256 of the trust list");
        rc = tl_internal(why, TG_ECRYPTO, "SHA-256");
        goto out;
    }
    const char *id = tl_attr(root, "Id");
    if (id != NULL && (l->root_id = tl_arena_strndup(&impl->arena, id, strlen(id))) == NULL) {
        rc = nomem(&pc);
        goto out;
    }
    rc = scheme_information(&pc, root, l);
    if (rc == 0)
        rc = providers(&pc, root, l);
    if (rc != 0)
        goto out;
    if (verified_by != NULL) {
        if (X509_up_ref(verified_by) != 1 || tl_arena_own_x509(&impl->arena, verified_by) != 0) {
            rc = nomem(&pc);
            goto out;
        }
        l->verified_by = verified_by;
    }
    l->n_unknown_status = pc.n_unknown_entries;
    for (size_t i = 0; i < pc.n_unknown; i++) {
        tg_warn("trust list %s (sequence %llu): unknown ServiceStatus URI \"%.200s\" is treated "
                "as terminated",
                l->territory, (unsigned long long)l->sequence, pc.unknown[i]);
    }
out:
    free(pc.unknown);
    if (rc != 0) {
        tl_arena_free(&impl->arena);
        free(impl);
        return rc;
    }
    *out_list = l;
    return 0;
}

static void clear_why(tg_tl_refusal_t *why)
{
    if (why != NULL) {
        why->code = NULL;
        why->message[0] = '\0';
    }
}

int tg_tl_parse(const uint8_t *xml, size_t len, tg_tl_refusal_t *out_why, tg_tl_list_t **out_list)
{
    *out_list = NULL;
    clear_why(out_why);
    xmlDocPtr doc;
    int rc = tl_xml_read(xml, len, out_why, &doc);
    if (rc != 0)
        return rc;
    rc = tl_list_from_doc(doc, xml, len, NULL, out_why, out_list);
    xmlFreeDoc(doc);
    return rc;
}

int tg_tl_load(const uint8_t *xml, size_t len, X509 *const *certs, size_t n_certs,
               tg_tl_refusal_t *out_why, tg_tl_list_t **out_list)
{
    *out_list = NULL;
    clear_why(out_why);
    if (n_certs == 0 || certs == NULL) {
        tg_error("tg_tl_load: no pinned operator certificate");
        return tl_internal(out_why, TG_EINVAL, "no pinned operator certificate");
    }
    xmlDocPtr doc;
    int rc = tl_xml_read(xml, len, out_why, &doc);
    if (rc != 0)
        return rc;
    X509 *by = NULL;
    rc = tl_verify_doc(doc, certs, n_certs, out_why, &by);
    /* The profile is read from the very tree that was verified. */
    if (rc == 0)
        rc = tl_list_from_doc(doc, xml, len, by, out_why, out_list);
    xmlFreeDoc(doc);
    return rc;
}

tg_tl_list_t *tg_tl_list_ref(tg_tl_list_t *list)
{
    list_impl_t *impl = (list_impl_t *)list;
    atomic_fetch_add_explicit(&impl->refs, 1u, memory_order_relaxed);
    return list;
}

void tg_tl_list_free(tg_tl_list_t *list)
{
    if (list == NULL)
        return;
    list_impl_t *impl = (list_impl_t *)list;
    if (atomic_fetch_sub_explicit(&impl->refs, 1u, memory_order_acq_rel) != 1)
        return;
    tl_arena_free(&impl->arena);
    free(impl);
}

/* ---- PEM certificates ------------------------------------------------- */

int tg_tl_certs_load_pem(const char *path, X509 ***certs, size_t *n_certs)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        tg_error("%s: cannot open: %s", path, strerror(errno));
        return TG_EIO;
    }
    size_t added = 0;
    int rc = 0;
    for (;;) {
        X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
        if (x == NULL)
            break;
        X509 **p = realloc(*certs, (*n_certs + 1) * sizeof(*p));
        if (p == NULL) {
            X509_free(x);
            tg_error("%s: out of memory", path);
            rc = TG_ENOMEM;
            break;
        }
        *certs = p;
        (*certs)[(*n_certs)++] = x;
        added++;
    }
    unsigned long e = ERR_peek_last_error();
    int clean_eof = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    if (rc == 0 && added == 0) {
        tg_error("%s: no PEM certificate in the file", path);
        rc = TG_EMALFORMED;
    } else if (rc == 0 && e != 0 && !clean_eof) {
        tg_log_openssl(path);
        rc = TG_EMALFORMED;
    }
    tg_openssl_clear_errors();
    fclose(f);
    return rc;
}

void tg_tl_certs_free(X509 **certs, size_t n_certs)
{
    for (size_t i = 0; i < n_certs; i++)
        X509_free(certs[i]);
    free(certs);
}
