/* Configurations with their signers, and generations (SPEC §6): what a
 * worker answers from, swapped as one unit. */
#include "responder/responder_internal.h"

#include "common/log.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Fills *out with the state of a signer's two files now. */
static void signer_files(const tg_config_signer_t *sc, tg_signer_files_t *out)
{
    memset(out, 0, sizeof(*out));
    out->ok = stat(sc->cert, &out->cert) == 0 && stat(sc->key, &out->key) == 0;
}

static int same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* prev's signer for sc when sc names the same files, unchanged since prev
 * loaded them (files: their state now); else NULL. */
static tg_signer_t *unchanged_signer(const tg_cfgref_t *prev, const tg_config_signer_t *sc,
                                     const tg_signer_files_t *files)
{
    if (prev == NULL || !files->ok)
        return NULL;
    for (size_t j = 0; j < prev->cfg->n_signers; j++) {
        const tg_config_signer_t *old = &prev->cfg->signers[j];
        const tg_signer_files_t *of = &prev->files[j];
        if (strcmp(old->name, sc->name) == 0 && strcmp(old->cert, sc->cert) == 0 &&
            strcmp(old->key, sc->key) == 0 && of->ok && same_stat(&of->cert, &files->cert) &&
            same_stat(&of->key, &files->key))
            return prev->signers[j];
    }
    return NULL;
}

int tg_cfgref_new(tg_config_t *cfg, const tg_cfgref_t *prev, tg_cfgref_t **out_ref)
{
    tg_cfgref_t *ref = calloc(1, sizeof(*ref));
    if (ref == NULL)
        return TG_ENOMEM;
    for (size_t i = 0; i < cfg->n_signers; i++) {
        const tg_config_signer_t *sc = &cfg->signers[i];
        signer_files(sc, &ref->files[i]);
        tg_signer_t *kept = unchanged_signer(prev, sc, &ref->files[i]);
        if (kept != NULL) {
            ref->signers[i] = tg_signer_ref(kept);
            tg_debug("[signer %s]: files unchanged, key kept", sc->name);
            continue;
        }
        int rc = tg_signer_load(sc->cert, sc->key, &ref->signers[i]);
        if (rc != 0) {
            tg_error("[signer %s]: cannot load %s / %s (%s)", sc->name, sc->cert, sc->key,
                     tg_strerror(rc));
            for (size_t j = 0; j < i; j++)
                tg_signer_free(ref->signers[j]);
            free(ref);
            return rc;
        }
        tg_info("[signer %s]: %s responder key loaded", sc->name,
                tg_signer_alg_name(tg_signer_alg(ref->signers[i])));
    }
    ref->cfg = cfg;
    atomic_init(&ref->refs, 1);
    *out_ref = ref;
    return 0;
}

void tg_cfgref_release(tg_cfgref_t *ref)
{
    if (ref == NULL)
        return;
    if (atomic_fetch_sub_explicit(&ref->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < ref->cfg->n_signers; i++)
        tg_signer_free(ref->signers[i]);
    tg_config_free(ref->cfg);
    free(ref);
}

/* "Trust-List-Sequence: gd=N, hk=M": the sequence number of the list in
 * force for each configured side, 0 while none is accepted (real lists
 * start at 1). Without configured lists both sides show 0. */
static void build_tl_header(tg_gen_t *g)
{
    const tg_config_t *cfg = g->cfgref->cfg;
    size_t n = 0, cap = sizeof(g->tl_header);
    n += (size_t)snprintf(g->tl_header, cap, "Trust-List-Sequence: ");
    if (cfg->n_trustlists == 0)
        n += (size_t)snprintf(g->tl_header + n, cap - n, "gd=0, hk=0");
    for (size_t i = 0; i < cfg->n_trustlists && n < cap; i++) {
        uint64_t seq = 0;
        size_t idx;
        if (g->snap != NULL &&
            tg_tl_snapshot_list_index(g->snap, cfg->trustlists[i].name, &idx) == 0)
            seq = tg_tl_snapshot_list(g->snap, idx)->sequence;
        n += (size_t)snprintf(g->tl_header + n, cap - n, "%s%s=%llu", i ? ", " : "",
                              cfg->trustlists[i].name, (unsigned long long)seq);
    }
    if (n + 3 > cap)
        n = cap - 3; /* cannot happen with 8 lists of 32-byte names */
    memcpy(g->tl_header + n, "\r\n", 3);
    g->tl_header_len = n + 2;
}

/* The pre-signed answer key of list i (see tg_gen_t.list_key): SHA-256
 * over the list's name, the SHA-256 of the list document in force and the
 * signer's certificate, first 8 bytes. 0 when the list has no signer or no
 * list is in force (nothing is pre-signed then). */
static uint64_t list_key(const tg_gen_t *g, size_t i)
{
    const tg_config_t *cfg = g->cfgref->cfg;
    size_t idx;
    int si = g->list_signer[i];
    if (si < 0 || g->snap == NULL ||
        tg_tl_snapshot_list_index(g->snap, cfg->trustlists[i].name, &idx) != 0)
        return 0;
    const tg_tl_list_t *l = tg_tl_snapshot_list(g->snap, idx);
    tg_slice_t cert = tg_signer_cert_der(g->cfgref->signers[si]);
    const char *name = cfg->trustlists[i].name;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, name, strlen(name) + 1) == 1 &&
             EVP_DigestUpdate(ctx, l->sha256, sizeof(l->sha256)) == 1 &&
             EVP_DigestUpdate(ctx, cert.p, cert.n) == 1 &&
             EVP_DigestFinal_ex(ctx, md, &md_len) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        tg_log_openssl("pre-signed answer key");
        return 0;
    }
    uint64_t key;
    memcpy(&key, md, sizeof(key));
    return key != 0 ? key : 1;
}

tg_gen_t *tg_gen_new(tg_cfgref_t *cfgref, tg_tl_snapshot_t *snap, uint64_t id)
{
    tg_gen_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    atomic_init(&g->refs, 1);
    g->id = id;
    atomic_fetch_add_explicit(&cfgref->refs, 1, memory_order_relaxed);
    g->cfgref = cfgref;
    g->snap = snap ? tg_tl_snapshot_ref(snap) : NULL;
    const tg_config_t *cfg = cfgref->cfg;
    for (size_t i = 0; i < cfg->n_trustlists; i++)
        g->list_signer[i] = cfg->trustlists[i].signer;
    for (size_t i = 0; i < cfg->n_trustlists; i++)
        g->list_key[i] = list_key(g, i);
    build_tl_header(g);
    return g;
}

tg_gen_t *tg_gen_ref(tg_gen_t *gen)
{
    atomic_fetch_add_explicit(&gen->refs, 1, memory_order_relaxed);
    return gen;
}

void tg_gen_unref(tg_gen_t *gen)
{
    if (gen == NULL)
        return;
    if (atomic_fetch_sub_explicit(&gen->refs, 1, memory_order_acq_rel) != 1)
        return;
    tg_tl_snapshot_unref(gen->snap);
    tg_cfgref_release(gen->cfgref);
    free(gen);
}
