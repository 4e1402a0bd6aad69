/* Trust lists (ETSI TS 119 612 v2, the profile of SPEC §2): XML → verified,
 * immutable list → reference-counted policy snapshot with an O(1) CertID
 * index; status at time T; atomic swap.
 *
 * Life cycle:
 *   tg_tl_global_init()                          once per process
 *   tg_tl_load(bytes, pinned certs) → list       parse + verify (XMLDSig)
 *   tg_tl_snapshot_new(lists, names, prev)       index every CA certificate
 *   tg_tl_snapshot_find(snap, certid) → CA       hot path, allocation-free
 *   tg_tl_ca_status_at(ca, now)                  active / suspended / ...
 *   tg_tl_global_cleanup()                       once, at exit
 *
 * Everything reachable from a tg_tl_list_t or a tg_tl_snapshot_t is
 * immutable after construction and may be read from any thread without
 * locks. The structs below are public so that readers need no accessor per
 * field; their fields are read-only (never write to them).
 *
 * Refusals: a list that must not be used (bad XML, entity declarations, bad
 * or missing signature, signature wrapping, ...) is refused with
 * TG_EMALFORMED and a tg_tl_refusal_t: a short stable reason code for
 * metrics plus a human message. The library does not log refusals (the
 * caller decides how loud they are); internal failures (out of memory,
 * OpenSSL or xmlsec errors outside the document's control) are logged once
 * where they happen. */
#ifndef TG_TRUSTLIST_TRUSTLIST_H
#define TG_TRUSTLIST_TRUSTLIST_H

#include "common/buf.h"
#include "common/err.h"
#include "pki/ocsp.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Largest document accepted (bytes). The EU list of lists is ~300 KB and the
 * largest national lists a few MB; the bound is applied before parsing. */
#define TG_TL_MAX_BYTES ((size_t)32 << 20)

/* Namespaces (research/trustlists.md). Elements are matched by namespace
 * URI and local name, never by prefix. */
#define TG_TL_NS_TSL "http://uri.etsi.org/02231/v2#"
#define TG_TL_NS_SIE "http://uri.etsi.org/TrstSvc/SvcInfoExt/eSigDir-1999-93-EC-TrustedList/#"
#define TG_TL_NS_XADES "http://uri.etsi.org/01903/v1.3.2#"
#define TG_TL_NS_DS "http://www.w3.org/2000/09/xmldsig#"

/* Supply point types (SPEC §2) and the profile's own URIs. */
#define TG_TL_SUPPLY_TYPE_OCSP "http://uri.etsi.org/TrstSvc/Svctype/Certstatus/OCSP"
#define TG_TL_SUPPLY_TYPE_CRL "http://uri.etsi.org/TrstSvc/Svctype/Certstatus/CRL"
#define TG_TL_STATUS_PREFIX "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/"
#define TG_TL_STATUS_SUSPENDED_URI "urn:gdhk-mr:svcstatus:suspended"
#define TG_TL_QUALIFIER_OID_PREFIX "urn:gdhk-mr:qualifier:oid-prefix"

/* Status of a service or a CA at some time T (SPEC §2). */
typedef enum {
    TG_TL_NOT_LISTED = 0, /* no entry starts at or before T */
    TG_TL_ACTIVE = 1,
    TG_TL_SUSPENDED = 2,
    TG_TL_TERMINATED = 3,
} tg_tl_status_t;

#define TG_TL_STATUS_COUNT 4

/* Why a status is what it is (for logs and metrics). */
typedef enum {
    TG_TL_REASON_NONE = 0,        /* not listed at T */
    TG_TL_REASON_STATUS = 1,      /* a ServiceStatus URI of the SPEC §2 table */
    TG_TL_REASON_UNKNOWN_URI = 2, /* a ServiceStatus URI outside the table: terminated */
    TG_TL_REASON_REMOVED = 3,     /* the service vanished from a newer list */
} tg_tl_reason_t;

/* Why a list was refused. code is a static string (never freed), one of:
 *   "too_big", "malformed_xml", "entity_declaration", "doctype",
 *   "bad_profile", "wrapping", "no_signature", "bad_signature",
 *   "wrong_signer", "partial_reference", "bad_reference", "bad_transform",
 *   "unsupported_algorithm", "rollback", "internal";
 * NULL when nothing was refused. message is NUL-terminated human detail. */
typedef struct {
    const char *code;
    char message[256];
} tg_tl_refusal_t;

/* One status entry of a service: its current ServiceStatus or one
 * ServiceHistoryInstance. */
typedef struct {
    const char *uri;       /* ServiceStatus URI as listed (whitespace-trimmed) */
    tg_tl_status_t status; /* TG_TL_ACTIVE, TG_TL_SUSPENDED or TG_TL_TERMINATED */
    tg_tl_reason_t reason; /* TG_TL_REASON_STATUS, _UNKNOWN_URI or _REMOVED */
    time_t start;          /* StatusStartingTime, UTC */
    /* The digital identity of this entry: the history instance's own
     * certificates when it lists some, else the service's current ones. */
    X509 *const *certs;
    size_t n_certs;
} tg_tl_status_entry_t;

typedef enum {
    TG_TL_SUPPLY_OTHER = 0, /* no type, or a type other than the two below */
    TG_TL_SUPPLY_OCSP = 1,
    TG_TL_SUPPLY_CRL = 2,
} tg_tl_supply_kind_t;

typedef struct {
    tg_tl_supply_kind_t kind;
    const char *type; /* the @type attribute, or NULL when absent */
    const char *uri;  /* the upstream URL */
} tg_tl_supply_point_t;

/* One TSPService: one certificate category (证书类别) of a CA. */
typedef struct {
    const char *type;     /* ServiceTypeIdentifier */
    const char *name;     /* ServiceName (xml:lang="en" preferred; "" if none) */
    const char *tsp_name; /* TSPName of the provider ("" if none) */
    size_t tsp_index;     /* index into the list's tsps (SIZE_MAX for none) */
    /* Current ServiceDigitalIdentity certificates (several: key rollover).
     * DigitalIds that are not certificates are skipped. May be empty. */
    X509 *const *certs;
    size_t n_certs;
    /* entries[0] is the current status; then the history in document
     * order (plus, for a service kept from an older list, the removal). */
    const tg_tl_status_entry_t *entries;
    size_t n_entries;
    const tg_tl_supply_point_t *supply_points;
    size_t n_supply_points;
    /* Policy OIDs (dotted decimal, "urn:oid:" stripped) from the
     * Qualifications extension; oid_prefix is 1 when a qualifier
     * urn:gdhk-mr:qualifier:oid-prefix says to match them by prefix. */
    const char *const *policy_oids;
    size_t n_policy_oids;
    int oid_prefix;
    int removed; /* 1: kept from an older list, terminated since its removal */
} tg_tl_service_t;

typedef struct {
    const char *name;     /* TSPName (xml:lang="en" preferred; "" if none) */
    size_t first_service; /* its services are services[first, first + n) */
    size_t n_services;
} tg_tl_tsp_t;

/* One OtherTSLPointer: where the other side's list lives and who signs it. */
typedef struct {
    const char *location;  /* TSLLocation ("" if none) */
    const char *territory; /* AdditionalInformation SchemeTerritory, or NULL */
    X509 *const *certs;    /* ServiceDigitalIdentities certificates */
    size_t n_certs;
} tg_tl_pointer_t;

/* One parsed (and, from tg_tl_load, verified) trust list. Reference-
 * counted: tg_tl_list_ref / tg_tl_list_free. */
typedef struct {
    const uint8_t *raw; /* the document exactly as received (re-published) */
    size_t raw_len;
    uint8_t sha256[32];        /* SHA-256 of raw */
    const char *root_id;       /* the root's Id attribute, or NULL */
    const char *territory;     /* SchemeTerritory */
    uint64_t sequence;         /* TSLSequenceNumber */
    const char *operator_name; /* SchemeOperatorName (en preferred; "" if none) */
    time_t issued;             /* ListIssueDateTime */
    time_t next_update;        /* NextUpdate/dateTime; 0: none ("closed" list) */
    const tg_tl_pointer_t *pointers;
    size_t n_pointers;
    const tg_tl_tsp_t *tsps;
    size_t n_tsps;
    const tg_tl_service_t *services; /* all TSPServices, in document order */
    size_t n_services;
    size_t n_unknown_status; /* status entries with a URI outside the table */
    /* The pinned operator certificate that verified the signature, or NULL
     * for a list from tg_tl_parse (signature NOT checked). */
    X509 *verified_by;
} tg_tl_list_t;

/* ---- process set-up ------------------------------------------------- */

/* Initialises libxml2 and xmlsec (openssl backend) once for the process,
 * installs an external-entity loader that refuses everything, and routes
 * xmlsec's error reports to an internal buffer (they end up in refusal
 * messages instead of on stderr). Call from one thread before any other
 * tg_tl_ function; a second call is a no-op. Returns 0 or TG_ECRYPTO. */
TG_WUR int tg_tl_global_init(void);

/* Undoes tg_tl_global_init (xmlsec and libxml2 global state), so that
 * LeakSanitizer sees nothing. Call once at exit, after every list and
 * snapshot was freed and no other thread uses libxml2. */
void tg_tl_global_cleanup(void);

/* ---- values --------------------------------------------------------- */

/* Parses an xsd:dateTime of n bytes ("2024-11-14T12:53:48Z",
 * "2025-01-01T08:00:00.250+08:00"; surrounding whitespace ignored;
 * fractional seconds truncated; no offset = UTC; 24:00:00 = next day) into
 * seconds since the epoch, UTC. Returns 0 or TG_EMALFORMED. */
TG_WUR int tg_tl_parse_time(const char *s, size_t n, time_t *out_t);

/* Classifies a ServiceStatus URI of n bytes, byte for byte (SPEC §2).
 * Returns TG_TL_ACTIVE, TG_TL_SUSPENDED or TG_TL_TERMINATED; an unknown URI
 * is TG_TL_TERMINATED with *out_known = 0 (out_known may be NULL). */
tg_tl_status_t tg_tl_status_of_uri(const char *uri, size_t n, int *out_known);

/* Returns "not_listed", "active", "suspended", "terminated" ("unknown" out
 * of range). Static. */
const char *tg_tl_status_name(tg_tl_status_t status);

/* Returns "none", "status", "unknown_uri", "removed". Static. */
const char *tg_tl_reason_name(tg_tl_reason_t reason);

/* ---- lists ---------------------------------------------------------- */

/* Parses a trust list WITHOUT checking its signature (for `tl show`
 * without --operator-cert, and for fuzzing): the same hardened XML parsing
 * and profile checks as tg_tl_load. xml is copied (borrowed only during the
 * call). On success *out_list is a new list (refcount 1; the caller frees
 * it with tg_tl_list_free) whose verified_by is NULL. Returns 0,
 * TG_EMALFORMED or TG_ETOOBIG (*out_why filled), or TG_ENOMEM/TG_ECRYPTO
 * (logged; *out_why->code = "internal"). Logs a warning once per distinct
 * unknown ServiceStatus URI. Thread-safe. */
TG_WUR int tg_tl_parse(const uint8_t *xml, size_t len, tg_tl_refusal_t *out_why,
                       tg_tl_list_t **out_list);

/* Parses and verifies a trust list (research/trustlists.md): hardened XML
 * parsing (no DTD, no entities, no network), exactly one
 * TrustServiceStatusList which is the document root, an enveloped
 * ds:Signature as its direct child, only allow-listed algorithms (exc-c14n
 * and c14n 1.0/1.1, enveloped-signature, RSA/ECDSA with SHA-256/384/512,
 * SHA-256/384/512 digests; SHA-1 refused), only empty and same-document
 * reference URIs, every reference valid and one covering the whole
 * document (URI "" or "#<root Id>"). The signature must verify with one of
 * the n_certs pinned operator certificates (tried in order; the key in
 * KeyInfo is never trusted). Then the profile is read from the very tree
 * that was verified.
 *
 * certs are borrowed during the call; the list keeps a reference to the
 * one that verified (verified_by). n_certs must be at least 1. Returns as
 * tg_tl_parse. Thread-safe. */
TG_WUR int tg_tl_load(const uint8_t *xml, size_t len, X509 *const *certs, size_t n_certs,
                      tg_tl_refusal_t *out_why, tg_tl_list_t **out_list);

/* Takes one more reference to list (atomic) and returns it. */
tg_tl_list_t *tg_tl_list_ref(tg_tl_list_t *list);

/* Drops one reference; the last one frees the list and everything it
 * points to (certificates included). NULL is fine. */
void tg_tl_list_free(tg_tl_list_t *list);

/* Returns 1 when the list is past its NextUpdate at now (served, but
 * flagged: SPEC §2), else 0. A list without NextUpdate is never stale. */
int tg_tl_list_is_stale(const tg_tl_list_t *list, time_t now);

/* Returns the status of svc at time t: the entry with the greatest
 * StatusStartingTime <= t (the current entry wins a tie), or
 * TG_TL_NOT_LISTED when none. *out_since (may be NULL) is that entry's
 * start (0 when not listed). */
tg_tl_status_t tg_tl_service_status_at(const tg_tl_service_t *svc, time_t t, time_t *out_since);

/* Returns the entry that decides svc's status at t (see above), or NULL.
 * Borrowed from svc. */
const tg_tl_status_entry_t *tg_tl_service_entry_at(const tg_tl_service_t *svc, time_t t);

/* Reads every certificate of the PEM file at path and appends it to the
 * array *certs of *n_certs entries (both updated; *certs grows with
 * realloc, start from NULL/0). The caller frees them with tg_tl_certs_free.
 * Returns 0, TG_EIO (cannot open), TG_EMALFORMED (no certificate in the
 * file) or TG_ENOMEM; logged with the path. */
TG_WUR int tg_tl_certs_load_pem(const char *path, X509 ***certs, size_t *n_certs);

/* Frees an array from tg_tl_certs_load_pem and its certificates. */
void tg_tl_certs_free(X509 **certs, size_t n_certs);

/* ---- signing -------------------------------------------------------- */

/* Signs a trust list: adds an enveloped ds:Signature as the last child of
 * the root (one Reference URI="", enveloped-signature + exc-c14n, SHA-256;
 * RSA-SHA256 or ECDSA-SHA256 by the key type; KeyInfo/X509Data with cert)
 * and serialises the document as UTF-8 into out (appended; the caller owns
 * and frees out). key and cert are borrowed; key must belong to cert.
 * The input must pass the same parsing as tg_tl_parse and have no
 * ds:Signature child of the root yet; the output is checked with
 * tg_tl_load against cert before returning.
 * Returns 0; TG_EMALFORMED (*out_why filled: the input or the result would
 * be refused); TG_EINVAL (already signed, key does not match cert;
 * logged); TG_EUNSUPPORTED (a key that is neither RSA nor ECDSA; logged);
 * TG_ENOMEM or TG_ECRYPTO (logged). */
TG_WUR int tg_tl_sign(const uint8_t *xml, size_t len, EVP_PKEY *key, X509 *cert,
                      tg_tl_refusal_t *out_why, tg_buf_t *out);

/* ---- snapshots ------------------------------------------------------ */

typedef struct tg_tl_snapshot tg_tl_snapshot_t;

/* One CA as the OCSP path sees it: the certificates that share one issuer
 * name and key (so share every CertID issuer hash), on one list, with every
 * service (category) that lists any of them. */
typedef struct {
    X509 *const *certs; /* certs[0] is the first one listed; n_certs >= 1 */
    size_t n_certs;
    uint8_t sha256[32];    /* SHA-256 of certs[0]'s DER (the /crl/ path name) */
    size_t list_index;     /* index of the list in the snapshot */
    const char *list_name; /* its name ("gd", "hk") */
    const tg_tl_service_t *const *services;
    size_t n_services;
} tg_tl_ca_t;

/* Per-list counters at some time (metrics, logs after every load). */
typedef struct {
    size_t cas[TG_TL_STATUS_COUNT];      /* CAs by aggregated status */
    size_t services[TG_TL_STATUS_COUNT]; /* categories by status (removed ones included) */
    size_t removed_services;             /* categories kept from older lists */
    size_t unknown_status_uris;          /* status entries with unknown URIs */
} tg_tl_counts_t;

/* Builds a snapshot from n_lists accepted lists named names[i] ("gd",
 * "hk"; copied) and the previous snapshot prev (NULL for the first one).
 * Lists are borrowed: the snapshot takes its own references.
 *
 * Services that were in prev's list of the same name (or were kept by
 * prev as removed) but are missing from the newer list are kept, as
 * TERMINATED from the newer list's ListIssueDateTime (SPEC §2) unless they
 * were terminated already. A service is "the same" when it has the same
 * ServiceName and shares a certificate (or, without certificates, has the
 * same name and type).
 *
 * Every certificate of every service (current and history identities) is
 * indexed under SHA-1, SHA-256, SHA-384, SHA-512 and SM3 CertID issuer
 * hashes. A CA that appears on two lists is found on the first one (a
 * warning is logged).
 *
 * Returns 0 and a snapshot with refcount 1 in *out_snap; TG_ESTATE when a
 * list's TSLSequenceNumber is lower than prev's list of the same name
 * (rollback; logged) or names repeat; TG_EINVAL; TG_ENOMEM or TG_ECRYPTO
 * (logged). Not for a worker loop: it hashes every certificate. */
TG_WUR int tg_tl_snapshot_new(tg_tl_list_t *const *lists, const char *const *names, size_t n_lists,
                              const tg_tl_snapshot_t *prev, tg_tl_snapshot_t **out_snap);

/* Checks that list may follow prev's list of the same name: its
 * TSLSequenceNumber is not lower (rollback, SPEC §2). An equal number with
 * different bytes is accepted with a warning. Returns 0 (also when prev is
 * NULL or has no such list) or TG_ESTATE with *out_why = "rollback". */
TG_WUR int tg_tl_check_successor(const tg_tl_snapshot_t *prev, const char *name,
                                 const tg_tl_list_t *list, tg_tl_refusal_t *out_why);

/* Takes one more reference (atomic, any thread) and returns snap. */
tg_tl_snapshot_t *tg_tl_snapshot_ref(tg_tl_snapshot_t *snap);

/* Drops one reference (atomic, any thread); the last one frees the
 * snapshot and drops its list references. NULL is fine. */
void tg_tl_snapshot_unref(tg_tl_snapshot_t *snap);

/* Finds the CA that issued the certificate named by id (only alg,
 * hash_len, name_hash and key_hash are used; the serial is ignored).
 * Returns NULL when the issuer is on no list. O(1), allocation-free,
 * lock-free: this is the OCSP hot path. Borrowed from snap. */
const tg_tl_ca_t *tg_tl_snapshot_find(const tg_tl_snapshot_t *snap, const tg_certid_t *id);

/* Finds the CA one of whose certificates has this SHA-256 DER fingerprint
 * (the /crl/{list}/{ca}.crl path). O(1). NULL when none. Borrowed. */
const tg_tl_ca_t *tg_tl_snapshot_find_sha256(const tg_tl_snapshot_t *snap, const uint8_t fp[32]);

/* Number of lists / CAs, and the i-th (i < count; borrowed from snap). */
size_t tg_tl_snapshot_list_count(const tg_tl_snapshot_t *snap);
const tg_tl_list_t *tg_tl_snapshot_list(const tg_tl_snapshot_t *snap, size_t i);
const char *tg_tl_snapshot_list_name(const tg_tl_snapshot_t *snap, size_t i);
size_t tg_tl_snapshot_ca_count(const tg_tl_snapshot_t *snap);
const tg_tl_ca_t *tg_tl_snapshot_ca(const tg_tl_snapshot_t *snap, size_t i);

/* Looks a list up by name. Returns 0 and its index, or TG_ENOTFOUND. */
TG_WUR int tg_tl_snapshot_list_index(const tg_tl_snapshot_t *snap, const char *name,
                                     size_t *out_index);

/* The services kept as removed for list i (borrowed; *out_n may be 0). */
const tg_tl_service_t *tg_tl_snapshot_removed(const tg_tl_snapshot_t *snap, size_t i,
                                              size_t *out_n);

/* Fills *out_counts for list i at time t. Returns 0 or TG_EINVAL (no such
 * list). O(services + CAs); not for the hot path. */
TG_WUR int tg_tl_snapshot_counts(const tg_tl_snapshot_t *snap, size_t i, time_t t,
                                 tg_tl_counts_t *out_counts);

/* Status of a CA at time t, over all its categories: ACTIVE if any is
 * active; else SUSPENDED if any is suspended (since = the latest suspension
 * start among them); else TERMINATED (since = the latest termination among
 * them) if any is terminated; else NOT_LISTED (since 0). For ACTIVE, since
 * is the latest start among the active ones. out_since and out_reason may
 * be NULL; *out_reason says why (of the entry that gave since).
 * Allocation-free. */
tg_tl_status_t tg_tl_ca_status_at(const tg_tl_ca_t *ca, time_t t, time_t *out_since,
                                  tg_tl_reason_t *out_reason);

/* The CA's first ServiceSupplyPoint of kind (OCSP or CRL) among its
 * categories: an http(s) URI first; else, with allow_file, a file: URI;
 * else NULL. Borrowed from the snapshot. Allocation-free. */
const char *tg_tl_ca_supply_uri(const tg_tl_ca_t *ca, tg_tl_supply_kind_t kind, int allow_file);

/* ---- command line --------------------------------------------------- */

/* Both commands call tg_tl_global_init themselves (a no-op when already
 * done); the process calls tg_tl_global_cleanup once before exiting. */

/* `trustgate tl show FILE [--operator-cert CERT]... [--at TIME] [--json]`.
 * argv[0] is the first argument after "show". Prints to stdout; returns a
 * process exit code: 0 ok, 1 refused or failed, 2 usage. */
int tg_tl_cmd_show(int argc, char **argv);

/* `trustgate tl sign --key K --cert C IN OUT`. argv[0] is the first
 * argument after "sign". Writes OUT atomically (temporary file + rename).
 * Returns 0 ok, 1 failed, 2 usage. */
int tg_tl_cmd_sign(int argc, char **argv);

#endif
