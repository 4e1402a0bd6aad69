/* Snapshots: the accepted lists of every side, the services kept as
 * removed, CAs grouped by issuer name + key, and the CertID index. */
#include "trustlist/trustlist_internal.h"

#include "common/log.h"
#include "pki/certid.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#define REMOVED_URI "urn:trustgate:removed-from-list"

typedef struct {
    uint32_t ca; /* index into cas */
    uint8_t alg;
    uint8_t len;
    uint8_t name[TG_HASH_MAX_LEN];
    uint8_t key[TG_HASH_MAX_LEN];
} idx_entry_t;

typedef struct {
    uint32_t ca;
    uint8_t fp[32];
} fp_entry_t;

typedef struct {
    const char *name;
    tg_tl_list_t *list; /* one reference */
    tg_tl_service_t *removed;
    size_t n_removed;
} snap_list_t;

struct tg_tl_snapshot {
    atomic_uint refs;
    snap_list_t *lists;
    size_t n_lists;
    tg_tl_ca_t *cas;
    size_t n_cas;
    idx_entry_t *entries;
    uint32_t *slots; /* entry index + 1; 0 = empty */
    size_t mask;
    fp_entry_t *fps;
    uint32_t *fp_slots;
    size_t fp_mask;
    tl_arena_t arena; /* everything above but the list references */
};

/* ---- small helpers ------------------------------------------------------ */

static const snap_list_t *find_list(const tg_tl_snapshot_t *s, const char *name)
{
    for (size_t i = 0; s != NULL && i < s->n_lists; i++) {
        if (strcmp(s->lists[i].name, name) == 0)
            return &s->lists[i];
    }
    return NULL;
}

static int certs_overlap(const tg_tl_service_t *a, const tg_tl_service_t *b)
{
    for (size_t i = 0; i < a->n_certs; i++) {
        for (size_t j = 0; j < b->n_certs; j++) {
            if (X509_cmp(a->certs[i], b->certs[j]) == 0)
                return 1;
        }
    }
    return 0;
}

/* Is old service svc still on list l? Same ServiceName and a shared
 * certificate; without certificates, same name and type. */
static int still_listed(const tg_tl_service_t *svc, const tg_tl_list_t *l)
{
    for (size_t i = 0; i < l->n_services; i++) {
        const tg_tl_service_t *s = &l->services[i];
        if (strcmp(s->name, svc->name) != 0)
            continue;
        if (svc->n_certs == 0 && s->n_certs == 0 && strcmp(s->type, svc->type) == 0)
            return 1;
        if (certs_overlap(svc, s))
            return 1;
    }
    return 0;
}

static const char *dup_str(tl_arena_t *a, const char *s)
{
    return s ? tl_arena_strndup(a, s, strlen(s)) : NULL;
}

static int dup_certs(tl_arena_t *a, X509 *const *in, size_t n, X509 *const **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    X509 **arr = tl_arena_alloc(a, n * sizeof(*arr));
    if (arr == NULL)
        return TG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (X509_up_ref(in[i]) != 1 || tl_arena_own_x509(a, in[i]) != 0)
            return TG_ENOMEM;
        arr[i] = in[i];
    }
    *out = arr;
    return 0;
}

/* Deep copy of svc into the snapshot's arena, terminated from removed_at
 * unless it was terminated already; entries after removed_at dropped. */
static int copy_removed(tl_arena_t *a, const tg_tl_service_t *svc, time_t removed_at,
                        tg_tl_service_t *out)
{
    memset(out, 0, sizeof(*out));
    out->type = dup_str(a, svc->type);
    out->name = dup_str(a, svc->name);
    out->tsp_name = dup_str(a, svc->tsp_name);
    if (out->type == NULL || out->name == NULL || out->tsp_name == NULL)
        return TG_ENOMEM;
    out->tsp_index = SIZE_MAX;
    out->removed = 1;
    out->oid_prefix = svc->oid_prefix;
    out->n_certs = svc->n_certs;
    if (dup_certs(a, svc->certs, svc->n_certs, &out->certs) != 0)
        return TG_ENOMEM;

    tg_tl_status_entry_t *entries = tl_arena_alloc(a, (svc->n_entries + 1) * sizeof(*entries));
    if (entries == NULL)
        return TG_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < svc->n_entries; i++) {
        const tg_tl_status_entry_t *e = &svc->entries[i];
        if (e->start > removed_at)
            continue;
        entries[k] = *e;
        entries[k].uri = dup_str(a, e->uri);
        if (entries[k].uri == NULL)
            return TG_ENOMEM;
        if (e->certs == svc->certs) {
            entries[k].certs = out->certs;
        } else if (dup_certs(a, e->certs, e->n_certs, &entries[k].certs) != 0) {
            return TG_ENOMEM;
        }
        k++;
    }
    if (tg_tl_service_status_at(svc, removed_at, NULL) != TG_TL_TERMINATED) {
        entries[k] = (tg_tl_status_entry_t){.uri = REMOVED_URI,
                                            .status = TG_TL_TERMINATED,
                                            .reason = TG_TL_REASON_REMOVED,
                                            .start = removed_at,
                                            .certs = out->certs,
                                            .n_certs = out->n_certs};
        k++;
    }
    out->entries = entries;
    out->n_entries = k;

    if (svc->n_supply_points > 0) {
        tg_tl_supply_point_t *sp = tl_arena_alloc(a, svc->n_supply_points * sizeof(*sp));
        if (sp == NULL)
            return TG_ENOMEM;
        for (size_t i = 0; i < svc->n_supply_points; i++) {
            sp[i].kind = svc->supply_points[i].kind;
            sp[i].type = dup_str(a, svc->supply_points[i].type);
            sp[i].uri = dup_str(a, svc->supply_points[i].uri);
            if ((svc->supply_points[i].type && !sp[i].type) || !sp[i].uri)
                return TG_ENOMEM;
        }
        out->supply_points = sp;
        out->n_supply_points = svc->n_supply_points;
    }
    if (svc->n_policy_oids > 0) {
        const char **o = tl_arena_alloc(a, svc->n_policy_oids * sizeof(*o));
        if (o == NULL)
            return TG_ENOMEM;
        for (size_t i = 0; i < svc->n_policy_oids; i++) {
            if ((o[i] = dup_str(a, svc->policy_oids[i])) == NULL)
                return TG_ENOMEM;
        }
        out->policy_oids = o;
        out->n_policy_oids = svc->n_policy_oids;
    }
    return 0;
}

/* The services of prev's list `name` (current and kept-removed) that l
 * no longer has, copied as removed into sl. */
static int carry_removed(tg_tl_snapshot_t *s, const tg_tl_snapshot_t *prev, snap_list_t *sl)
{
    const snap_list_t *old = find_list(prev, sl->name);
    if (old == NULL)
        return 0;
    size_t cand = old->list->n_services + old->n_removed;
    if (cand == 0)
        return 0;
    const tg_tl_service_t **gone = malloc(cand * sizeof(*gone));
    if (gone == NULL)
        return TG_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < cand; i++) {
        const tg_tl_service_t *svc = i < old->list->n_services
                                         ? &old->list->services[i]
                                         : &old->removed[i - old->list->n_services];
        if (!still_listed(svc, sl->list))
            gone[k++] = svc;
    }
    int rc = 0;
    if (k > 0) {
        sl->removed = tl_arena_alloc(&s->arena, k * sizeof(*sl->removed));
        if (sl->removed == NULL)
            rc = TG_ENOMEM;
        for (size_t i = 0; rc == 0 && i < k; i++) {
            rc = copy_removed(&s->arena, gone[i], sl->list->issued, &sl->removed[i]);
            if (rc == 0 && !gone[i]->removed) {
                tg_info("trust list %s: service \"%s\" is no longer listed; terminated from the "
                        "list's issue time",
                        sl->name, gone[i]->name);
            }
        }
        sl->n_removed = k;
    }
    free(gone);
    return rc;
}

/* ---- CA grouping ----------------------------------------------------------- */

typedef struct {
    size_t list;
    uint8_t nh[32], kh[32]; /* SHA-256 CertID issuer hashes */
    size_t seq;             /* order of appearance */
    X509 *cert;
    const tg_tl_service_t *svc;
} tuple_t;

static int tuple_cmp(const void *pa, const void *pb)
{
    const tuple_t *a = pa, *b = pb;
    if (a->list != b->list)
        return a->list < b->list ? -1 : 1;
    int c = memcmp(a->nh, b->nh, 32);
    if (c == 0)
        c = memcmp(a->kh, b->kh, 32);
    if (c != 0)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int same_ca(const tuple_t *a, const tuple_t *b)
{
    return a->list == b->list && memcmp(a->nh, b->nh, 32) == 0 && memcmp(a->kh, b->kh, 32) == 0;
}

typedef struct {
    tuple_t *v;
    size_t n, cap;
} tuples_t;

static int add_certs(tuples_t *t, size_t list, X509 *const *certs, size_t n,
                     const tg_tl_service_t *svc)
{
    for (size_t i = 0; i < n; i++) {
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 64;
            tuple_t *p = realloc(t->v, cap * sizeof(*p));
            if (p == NULL)
                return TG_ENOMEM;
            t->v = p;
            t->cap = cap;
        }
        tuple_t *x = &t->v[t->n];
        x->list = list;
        x->seq = t->n;
        x->cert = certs[i];
        x->svc = svc;
        int rc = tg_pki_issuer_hashes(certs[i], TG_HASH_SHA256, x->nh, x->kh);
        if (rc != 0)
            return rc;
        t->n++;
    }
    return 0;
}

static int add_service(tuples_t *t, size_t list, const tg_tl_service_t *svc)
{
    int rc = add_certs(t, list, svc->certs, svc->n_certs, svc);
    for (size_t i = 0; rc == 0 && i < svc->n_entries; i++) {
        if (svc->entries[i].certs != svc->certs)
            rc = add_certs(t, list, svc->entries[i].certs, svc->entries[i].n_certs, svc);
    }
    return rc;
}

static int build_cas(tg_tl_snapshot_t *s)
{
    tuples_t t = {0};
    int rc = 0;
    for (size_t li = 0; rc == 0 && li < s->n_lists; li++) {
        const snap_list_t *sl = &s->lists[li];
        for (size_t i = 0; rc == 0 && i < sl->list->n_services; i++)
            rc = add_service(&t, li, &sl->list->services[i]);
        for (size_t i = 0; rc == 0 && i < sl->n_removed; i++)
            rc = add_service(&t, li, &sl->removed[i]);
    }
    if (rc != 0 || t.n == 0)
        goto out;
    qsort(t.v, t.n, sizeof(*t.v), tuple_cmp);
    size_t groups = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (i == 0 || !same_ca(&t.v[i], &t.v[i - 1]))
            groups++;
    }
    if (groups > UINT32_MAX / TG_HASH_COUNT) {
        rc = TG_ETOOBIG;
        goto out;
    }
    s->cas = tl_arena_alloc(&s->arena, groups * sizeof(*s->cas));
    if (s->cas == NULL) {
        rc = TG_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < t.n;) {
        size_t j = i + 1;
        while (j < t.n && same_ca(&t.v[j], &t.v[i]))
            j++;
        /* t.v[i..j) is one CA, in order of appearance. */
        X509 **certs = tl_arena_alloc(&s->arena, (j - i) * sizeof(*certs));
        const tg_tl_service_t **svcs = tl_arena_alloc(&s->arena, (j - i) * sizeof(*svcs));
        if (certs == NULL || svcs == NULL) {
            rc = TG_ENOMEM;
            goto out;
        }
        size_t nc = 0, ns = 0;
        for (size_t k = i; k < j; k++) {
            size_t m = 0;
            while (m < nc && X509_cmp(certs[m], t.v[k].cert) != 0)
                m++;
            if (m == nc)
                certs[nc++] = t.v[k].cert;
            m = 0;
            while (m < ns && svcs[m] != t.v[k].svc)
                m++;
            if (m == ns)
                svcs[ns++] = t.v[k].svc;
        }
        tg_tl_ca_t *ca = &s->cas[s->n_cas++];
        ca->certs = certs;
        ca->n_certs = nc;
        ca->services = svcs;
        ca->n_services = ns;
        ca->list_index = t.v[i].list;
        ca->list_name = s->lists[t.v[i].list].name;
        unsigned int fl = 0;
        if (X509_digest(certs[0], EVP_sha256(), ca->sha256, &fl) != 1 || fl != 32) {
            tg_log_openssl("X509_digest");
            rc = TG_ECRYPTO;
            goto out;
        }
        i = j;
    }
out:
    free(t.v);
    return rc;
}

/* ---- the index ------------------------------------------------------------ */

static size_t mix(uint8_t alg, const uint8_t *name, const uint8_t *key)
{
    /* The hashes are cryptographic: eight bytes of each are uniform. */
    uint64_t a, b;
    memcpy(&a, key, 8);
    memcpy(&b, name, 8);
    uint64_t h = a ^ (b * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)alg * 0xC2B2AE3D27D4EB4Full);
    h ^= h >> 29;
    return (size_t)h;
}

static size_t table_size(size_t n)
{
    size_t size = 16;
    while (size < 2 * n)
        size *= 2;
    return size;
}

static int build_index(tg_tl_snapshot_t *s)
{
    size_t n = s->n_cas * TG_HASH_COUNT;
    size_t size = table_size(n);
    s->entries = tl_arena_alloc(&s->arena, (n ? n : 1) * sizeof(*s->entries));
    s->slots = tl_arena_alloc(&s->arena, size * sizeof(*s->slots));
    if (s->entries == NULL || s->slots == NULL)
        return TG_ENOMEM;
    s->mask = size - 1;
    size_t used = 0;
    for (size_t c = 0; c < s->n_cas; c++) {
        int warned = 0;
        for (int alg = 0; alg < TG_HASH_COUNT; alg++) {
            idx_entry_t *e = &s->entries[used];
            e->ca = (uint32_t)c;
            e->alg = (uint8_t)alg;
            e->len = (uint8_t)tg_hash_alg_len((tg_hash_alg_t)alg);
            int rc = tg_pki_issuer_hashes(s->cas[c].certs[0], (tg_hash_alg_t)alg, e->name, e->key);
            if (rc != 0)
                return rc;
            size_t i = mix(e->alg, e->name, e->key) & s->mask;
            int dup = 0;
            while (s->slots[i] != 0) {
                const idx_entry_t *o = &s->entries[s->slots[i] - 1];
                if (o->alg == e->alg && memcmp(o->name, e->name, e->len) == 0 &&
                    memcmp(o->key, e->key, e->len) == 0) {
                    dup = 1;
                    break;
                }
                i = (i + 1) & s->mask;
            }
            if (dup) {
                /* Only across lists (CAs of one list are grouped by key). */
                if (!warned) {
                    tg_warn("trust list %s: a CA is also on list %s; CertID lookups find it "
                            "there",
                            s->cas[c].list_name, s->cas[s->entries[s->slots[i] - 1].ca].list_name);
                    warned = 1;
                }
                continue;
            }
            s->slots[i] = (uint32_t)(used + 1);
            used++;
        }
    }

    size_t nfp = 0;
    for (size_t c = 0; c < s->n_cas; c++)
        nfp += s->cas[c].n_certs;
    size = table_size(nfp);
    s->fps = tl_arena_alloc(&s->arena, (nfp ? nfp : 1) * sizeof(*s->fps));
    s->fp_slots = tl_arena_alloc(&s->arena, size * sizeof(*s->fp_slots));
    if (s->fps == NULL || s->fp_slots == NULL)
        return TG_ENOMEM;
    s->fp_mask = size - 1;
    used = 0;
    for (size_t c = 0; c < s->n_cas; c++) {
        for (size_t k = 0; k < s->cas[c].n_certs; k++) {
            fp_entry_t *e = &s->fps[used];
            unsigned int fl = 0;
            if (X509_digest(s->cas[c].certs[k], EVP_sha256(), e->fp, &fl) != 1 || fl != 32) {
                tg_log_openssl("X509_digest");
                return TG_ECRYPTO;
            }
            e->ca = (uint32_t)c;
            size_t i = mix(0, e->fp, e->fp + 8) & s->fp_mask;
            int dup = 0;
            while (s->fp_slots[i] != 0) {
                if (memcmp(s->fps[s->fp_slots[i] - 1].fp, e->fp, 32) == 0) {
                    dup = 1;
                    break;
                }
                i = (i + 1) & s->fp_mask;
            }
            if (!dup) {
                s->fp_slots[i] = (uint32_t)(used + 1);
                used++;
            }
        }
    }
    return 0;
}

const tg_tl_ca_t *tg_tl_snapshot_find(const tg_tl_snapshot_t *snap, const tg_certid_t *id)
{
    if (snap == NULL || id == NULL || (unsigned)id->alg >= TG_HASH_COUNT ||
        id->hash_len != tg_hash_alg_len(id->alg))
        return NULL;
    size_t i = mix((uint8_t)id->alg, id->name_hash, id->key_hash) & snap->mask;
    for (;;) {
        uint32_t v = snap->slots[i];
        if (v == 0)
            return NULL;
        const idx_entry_t *e = &snap->entries[v - 1];
        if (e->alg == (uint8_t)id->alg && memcmp(e->name, id->name_hash, e->len) == 0 &&
            memcmp(e->key, id->key_hash, e->len) == 0)
            return &snap->cas[e->ca];
        i = (i + 1) & snap->mask;
    }
}

const tg_tl_ca_t *tg_tl_snapshot_find_sha256(const tg_tl_snapshot_t *snap, const uint8_t fp[32])
{
    if (snap == NULL || fp == NULL)
        return NULL;
    size_t i = mix(0, fp, fp + 8) & snap->fp_mask;
    for (;;) {
        uint32_t v = snap->fp_slots[i];
        if (v == 0)
            return NULL;
        if (memcmp(snap->fps[v - 1].fp, fp, 32) == 0)
            return &snap->cas[snap->fps[v - 1].ca];
        i = (i + 1) & snap->fp_mask;
    }
}

/* ---- life cycle ------------------------------------------------------------ */

int tg_tl_check_successor(const tg_tl_snapshot_t *prev, const char *name, const tg_tl_list_t *list,
                          tg_tl_refusal_t *out_why)
{
    if (out_why != NULL) {
        out_why->code = NULL;
        out_why->message[0] = '\0';
    }
    const snap_list_t *old = find_list(prev, name);
    if (old == NULL)
        return 0;
    if (list->sequence < old->list->sequence) {
        tl_refuse(out_why, "rollback",
                  "list %s: TSLSequenceNumber %llu is lower than the accepted %llu", name,
                  (unsigned long long)list->sequence, (unsigned long long)old->list->sequence);
        return TG_ESTATE;
    }
    if (list->sequence == old->list->sequence && memcmp(list->sha256, old->list->sha256, 32) != 0) {
        tg_warn("trust list %s: new content under the same TSLSequenceNumber %llu", name,
                (unsigned long long)list->sequence);
    }
    return 0;
}

static void snapshot_free(tg_tl_snapshot_t *s)
{
    for (size_t i = 0; s->lists != NULL && i < s->n_lists; i++)
        tg_tl_list_free(s->lists[i].list);
    tl_arena_free(&s->arena);
    free(s);
}

int tg_tl_snapshot_new(tg_tl_list_t *const *lists, const char *const *names, size_t n_lists,
                       const tg_tl_snapshot_t *prev, tg_tl_snapshot_t **out_snap)
{
    *out_snap = NULL;
    if (n_lists > 0 && (lists == NULL || names == NULL)) {
        tg_error("tg_tl_snapshot_new: no lists or names");
        return TG_EINVAL;
    }
    for (size_t i = 0; i < n_lists; i++) {
        if (lists[i] == NULL || names[i] == NULL || names[i][0] == '\0') {
            tg_error("tg_tl_snapshot_new: list %zu has no list or no name", i);
            return TG_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(names[i], names[j]) == 0) {
                tg_error("tg_tl_snapshot_new: list name \"%s\" repeats", names[i]);
                return TG_ESTATE;
            }
        }
        tg_tl_refusal_t why;
        if (tg_tl_check_successor(prev, names[i], lists[i], &why) != 0) {
            tg_error("trust list refused: %s: %s", why.code, why.message);
            return TG_ESTATE;
        }
    }
    tg_tl_snapshot_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        tg_error("trust list snapshot: out of memory");
        return TG_ENOMEM;
    }
    atomic_init(&s->refs, 1u);
    int rc = 0;
    if (n_lists > 0) {
        s->lists = tl_arena_alloc(&s->arena, n_lists * sizeof(*s->lists));
        if (s->lists == NULL) {
            rc = TG_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < n_lists; i++) {
        s->lists[i].name = dup_str(&s->arena, names[i]);
        if (s->lists[i].name == NULL) {
            rc = TG_ENOMEM;
            goto out;
        }
        s->lists[i].list = tg_tl_list_ref(lists[i]);
        s->n_lists++;
    }
    for (size_t i = 0; rc == 0 && i < n_lists; i++)
        rc = carry_removed(s, prev, &s->lists[i]);
    if (rc == 0)
        rc = build_cas(s);
    if (rc == 0)
        rc = build_index(s);
out:
    if (rc != 0) {
        if (rc == TG_ENOMEM)
            tg_error("trust list snapshot: out of memory");
        else if (rc == TG_ETOOBIG)
            tg_error("trust list snapshot: too many CAs");
        snapshot_free(s);
        return rc;
    }
    *out_snap = s;
    return 0;
}

tg_tl_snapshot_t *tg_tl_snapshot_ref(tg_tl_snapshot_t *snap)
{
    atomic_fetch_add_explicit(&snap->refs, 1u, memory_order_relaxed);
    return snap;
}

void tg_tl_snapshot_unref(tg_tl_snapshot_t *snap)
{
    if (snap == NULL)
        return;
    if (atomic_fetch_sub_explicit(&snap->refs, 1u, memory_order_acq_rel) == 1)
        snapshot_free(snap);
}

size_t tg_tl_snapshot_list_count(const tg_tl_snapshot_t *snap)
{
    return snap->n_lists;
}

const tg_tl_list_t *tg_tl_snapshot_list(const tg_tl_snapshot_t *snap, size_t i)
{
    return i < snap->n_lists ? snap->lists[i].list : NULL;
}

const char *tg_tl_snapshot_list_name(const tg_tl_snapshot_t *snap, size_t i)
{
    return i < snap->n_lists ? snap->lists[i].name : NULL;
}

int tg_tl_snapshot_list_index(const tg_tl_snapshot_t *snap, const char *name, size_t *out_index)
{
    const snap_list_t *sl = find_list(snap, name);
    if (sl == NULL)
        return TG_ENOTFOUND;
    *out_index = (size_t)(sl - snap->lists);
    return 0;
}

size_t tg_tl_snapshot_ca_count(const tg_tl_snapshot_t *snap)
{
    return snap->n_cas;
}

const tg_tl_ca_t *tg_tl_snapshot_ca(const tg_tl_snapshot_t *snap, size_t i)
{
    return i < snap->n_cas ? &snap->cas[i] : NULL;
}

const tg_tl_service_t *tg_tl_snapshot_removed(const tg_tl_snapshot_t *snap, size_t i, size_t *out_n)
{
    *out_n = i < snap->n_lists ? snap->lists[i].n_removed : 0;
    return i < snap->n_lists ? snap->lists[i].removed : NULL;
}

tg_tl_status_t tg_tl_ca_status_at(const tg_tl_ca_t *ca, time_t t, time_t *out_since,
                                  tg_tl_reason_t *out_reason)
{
    tg_tl_status_t best = TG_TL_NOT_LISTED;
    const tg_tl_status_entry_t *pick = NULL;
    /* Rank: ACTIVE beats SUSPENDED beats TERMINATED beats NOT_LISTED;
     * within a rank, the latest start. */
    static const int rank[TG_TL_STATUS_COUNT] = {
        [TG_TL_NOT_LISTED] = 0, [TG_TL_TERMINATED] = 1, [TG_TL_SUSPENDED] = 2, [TG_TL_ACTIVE] = 3};
    for (size_t i = 0; i < ca->n_services; i++) {
        const tg_tl_status_entry_t *e = tg_tl_service_entry_at(ca->services[i], t);
        if (e == NULL)
            continue;
        if (pick == NULL || rank[e->status] > rank[best] ||
            (e->status == best && e->start > pick->start)) {
            pick = e;
            best = e->status;
        }
    }
    if (out_since != NULL)
        *out_since = pick ? pick->start : 0;
    if (out_reason != NULL)
        *out_reason = pick ? pick->reason : TG_TL_REASON_NONE;
    return best;
}

int tg_tl_snapshot_counts(const tg_tl_snapshot_t *snap, size_t i, time_t t,
                          tg_tl_counts_t *out_counts)
{
    if (i >= snap->n_lists)
        return TG_EINVAL;
    memset(out_counts, 0, sizeof(*out_counts));
    const snap_list_t *sl = &snap->lists[i];
    for (size_t k = 0; k < sl->list->n_services; k++)
        out_counts->services[tg_tl_service_status_at(&sl->list->services[k], t, NULL)]++;
    for (size_t k = 0; k < sl->n_removed; k++)
        out_counts->services[tg_tl_service_status_at(&sl->removed[k], t, NULL)]++;
    out_counts->removed_services = sl->n_removed;
    out_counts->unknown_status_uris = sl->list->n_unknown_status;
    for (size_t c = 0; c < snap->n_cas; c++) {
        if (snap->cas[c].list_index == i)
            out_counts->cas[tg_tl_ca_status_at(&snap->cas[c], t, NULL, NULL)]++;
    }
    return 0;
}

const char *tg_tl_ca_supply_uri(const tg_tl_ca_t *ca, tg_tl_supply_kind_t kind, int allow_file)
{
    const char *file_uri = NULL;
    for (size_t i = 0; i < ca->n_services; i++) {
        const tg_tl_service_t *svc = ca->services[i];
        for (size_t j = 0; j < svc->n_supply_points; j++) {
            const tg_tl_supply_point_t *sp = &svc->supply_points[j];
            if (sp->kind != kind || sp->uri == NULL)
                continue;
            if (strncmp(sp->uri, "http://", 7) == 0 || strncmp(sp->uri, "https://", 8) == 0)
                return sp->uri;
            if (allow_file && file_uri == NULL && strncmp(sp->uri, "file:", 5) == 0)
                file_uri = sp->uri;
        }
    }
    return file_uri;
}
