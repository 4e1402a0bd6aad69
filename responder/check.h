/* `trustgate check` beyond the INI file: signers and trust lists. */
#ifndef TG_RESPONDER_CHECK_H
#define TG_RESPONDER_CHECK_H

#include "config/config.h"

#include <stdio.h>

/* Loads every signer and every trust list of cfg (reading file sources and
 * fetching URL sources) and verifies the lists against their pinned
 * operator certificates, printing one line per item to out. Returns 0 when
 * all are good, else TG_ECONFIG. Blocking; command line only. */
int tg_check_lists_and_signers(const tg_config_t *cfg, FILE *out);

#endif
