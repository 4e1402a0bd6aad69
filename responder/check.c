/* `trustgate check`: beyond the configuration file itself, load every
 * signer and every trust list the way `serve` would, and say what is wrong. */
#include "responder/check.h"

#include "common/log.h"
#include "pki/signer.h"
#include "responder/tlmgr.h"
#include "trustlist/trustlist.h"

#include <time.h>

static int check_list(const tg_config_t *cfg, const tg_config_trustlist_t *tl, FILE *out)
{
    X509 **certs = NULL;
    size_t n_certs = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < tl->n_operator_certs; i++)
        rc = tg_tl_certs_load_pem(tl->operator_certs[i], &certs, &n_certs);
    tg_buf_t bytes;
    tg_buf_init(&bytes);
    char err[256] = "";
    if (rc == 0)
        rc = tg_tl_fetch_source(tl->source, tl->source_is_url, cfg->allow_file_urls,
                                (long)cfg->upstream_timeout_ms, NULL, &bytes, err, sizeof(err));
    if (rc != 0) {
        fprintf(out, "trust list %s: cannot read: %s\n", tl->name, err[0] ? err : tg_strerror(rc));
        goto out;
    }
    tg_tl_refusal_t why = {0};
    tg_tl_list_t *list = NULL;
    rc = tg_tl_load(bytes.data, bytes.len, certs, n_certs, &why, &list);
    if (rc != 0) {
        fprintf(out, "trust list %s: REFUSED (%s): %s\n", tl->name, why.code ? why.code : "?",
                why.message);
        goto out;
    }
    time_t now = time(NULL);
    fprintf(out, "trust list %s: %s sequence %llu, %zu categories, verified%s\n", tl->name,
            list->territory, (unsigned long long)list->sequence, list->n_services,
            tg_tl_list_is_stale(list, now) ? ", STALE (past NextUpdate)" : "");
    tg_tl_list_free(list);
out:
    tg_buf_free(&bytes);
    tg_tl_certs_free(certs, n_certs);
    return rc;
}

int tg_check_lists_and_signers(const tg_config_t *cfg, FILE *out)
{
    int bad = 0;
    for (size_t i = 0; i < cfg->n_signers; i++) {
        tg_signer_t *s = NULL;
        if (tg_signer_load(cfg->signers[i].cert, cfg->signers[i].key, &s) != 0) {
            fprintf(out, "signer %s: cannot load %s / %s\n", cfg->signers[i].name,
                    cfg->signers[i].cert, cfg->signers[i].key);
            bad = 1;
            continue;
        }
        fprintf(out, "signer %s: %s\n", cfg->signers[i].name, tg_signer_alg_name(tg_signer_alg(s)));
        tg_signer_free(s);
    }
    for (size_t i = 0; i < cfg->n_trustlists; i++) {
        if (check_list(cfg, &cfg->trustlists[i], out) != 0)
            bad = 1;
    }
    return bad ? TG_ECONFIG : 0;
}
