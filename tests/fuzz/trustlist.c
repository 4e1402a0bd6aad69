/* libFuzzer harness: tg_tl_parse (the hardened XML parser and the SPEC §2
 * profile reader, no signature check) on arbitrary bytes, then a snapshot
 * of what parsed. Seeds: the trust lists in $VECTORS/trustlists.
 *
 * Oracles besides the sanitizers:
 * - success and failure are exclusive: a list or a reason code, never both;
 *   only TG_EMALFORMED, TG_ETOOBIG and TG_ENOMEM fail;
 * - a parsed list keeps the input byte for byte, every service has a
 *   current status entry of a known class, and every status query answers;
 * - every CA of the snapshot is found again by its own SHA-1 and SM3
 *   CertIDs, and by its SHA-256 fingerprint;
 * - the OpenSSL error queue is left empty. */
#include "common/log.h"
#include "pki/certid.h"
#include "trustlist/trustlist.h"

#include <openssl/err.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_service(const tg_tl_service_t *s)
{
    if (s->n_entries == 0 || s->entries == NULL || s->name == NULL || s->type == NULL)
        abort();
    for (size_t i = 0; i < s->n_entries; i++) {
        const tg_tl_status_entry_t *e = &s->entries[i];
        if (e->status != TG_TL_ACTIVE && e->status != TG_TL_SUSPENDED &&
            e->status != TG_TL_TERMINATED)
            abort();
        for (size_t k = 0; k < e->n_certs; k++) {
            if (e->certs[k] == NULL)
                abort();
        }
        time_t since = 1;
        tg_tl_status_t st = tg_tl_service_status_at(s, e->start, &since);
        if (st == TG_TL_NOT_LISTED || since != e->start)
            abort();
    }
    for (size_t i = 0; i < s->n_policy_oids; i++) {
        if (s->policy_oids[i] == NULL || strncmp(s->policy_oids[i], "urn:", 4) == 0)
            abort();
    }
    for (size_t i = 0; i < s->n_supply_points; i++) {
        if (s->supply_points[i].uri == NULL)
            abort();
    }
}

static void check_snapshot(tg_tl_list_t *l)
{
    const char *name = "fuzz";
    tg_tl_snapshot_t *snap = NULL;
    int rc = tg_tl_snapshot_new(&l, &name, 1, NULL, &snap);
    if (rc == TG_ENOMEM)
        return;
    if (rc != 0)
        abort();
    static const uint8_t serial[] = {1};
    for (size_t i = 0; i < tg_tl_snapshot_ca_count(snap); i++) {
        const tg_tl_ca_t *ca = tg_tl_snapshot_ca(snap, i);
        tg_certid_t id;
        if (tg_pki_certid_for(ca->certs[0], TG_HASH_SHA1, serial, 1, &id) != 0 ||
            tg_tl_snapshot_find(snap, &id) != ca)
            abort();
        if (tg_pki_certid_for(ca->certs[0], TG_HASH_SM3, serial, 1, &id) != 0 ||
            tg_tl_snapshot_find(snap, &id) != ca)
            abort();
        if (tg_tl_snapshot_find_sha256(snap, ca->sha256) != ca)
            abort();
        (void)tg_tl_ca_status_at(ca, 0, NULL, NULL);
    }
    tg_tl_counts_t counts;
    if (tg_tl_snapshot_counts(snap, 0, 1700000000, &counts) != 0)
        abort();
    tg_tl_snapshot_unref(snap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
    if (!initialised) {
        tg_log_set_level(TG_LOG_ERROR); /* unknown status URIs warn per load */
        if (tg_tl_global_init() != 0)
            abort();
        initialised = 1;
    }
    tg_tl_refusal_t why;
    tg_tl_list_t *l = (tg_tl_list_t *)&why; /* must be overwritten */
    int rc = tg_tl_parse(data, size, &why, &l);
    if (rc != 0) {
        if (l != NULL || why.code == NULL)
            abort();
        if (rc != TG_EMALFORMED && rc != TG_ETOOBIG && rc != TG_ENOMEM)
            abort();
        if (ERR_peek_error() != 0)
            abort();
        return 0;
    }
    if (l == NULL || why.code != NULL || l->raw_len != size || memcmp(l->raw, data, size) != 0)
        abort();
    if (l->territory == NULL || l->territory[0] == '\0' || l->verified_by != NULL)
        abort();
    for (size_t i = 0; i < l->n_services; i++)
        check_service(&l->services[i]);
    size_t in_tsps = 0;
    for (size_t t = 0; t < l->n_tsps; t++) {
        if (l->tsps[t].first_service != in_tsps)
            abort();
        in_tsps += l->tsps[t].n_services;
    }
    if (in_tsps != l->n_services)
        abort();
    (void)tg_tl_list_is_stale(l, 1700000000);
    check_snapshot(l);
    tg_tl_list_free(l);
    if (ERR_peek_error() != 0)
        abort();
    return 0;
}
