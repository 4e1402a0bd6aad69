/* libFuzzer harness: trustgate-bench's response check (bench/client/check.c)
 * on arbitrary bodies. It walks whatever a server sends back without
 * allocating, so it must never read out of bounds, whatever the bytes.
 * The first byte picks the expectation, whether a nonce was sent and
 * whether the full walk runs; the rest is the body. The CertID asked is
 * fixed; a seed that is a real OCSP response for another CertID still
 * walks every SingleResponse. */
#include "bench/client/check.h"
#include "bench/client/set.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const int expects[] = {TG_BST_GOOD,     TG_BST_REVOKED, TG_BST_UNKNOWN,
                                  TG_BST_TRYLATER, TG_BST_UNAUTH,  TG_BST_ANY};
    uint8_t mode = data[0];
    tg_certid_t id;
    memset(&id, 0, sizeof(id));
    id.alg = TG_HASH_SHA1;
    id.hash_len = 20;
    memset(id.name_hash, 0x11, 20);
    memset(id.key_hash, 0x22, 20);
    id.serial_len = 1;
    id.serial[0] = 0x01;
    uint8_t nonce[TG_BENCH_NONCE_LEN];
    memset(nonce, 0x5a, sizeof(nonce));
    tg_bench_verdict_t v;
    int kind = tg_bench_check(200, data + 1, size - 1, &id,
                              expects[(mode & 0x7) % (sizeof(expects) / sizeof(expects[0]))],
                              (mode & 0x8) ? nonce : NULL, mode & 0x10, &v);
    if (kind != TG_BERR_NONE && (kind < 0 || kind >= TG_BERR_COUNT))
        __builtin_trap(); /* an error kind out of range */
    return 0;
}
