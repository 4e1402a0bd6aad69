/* Error codes shared by every trustgate module.
 *
 * Functions return 0 on success and a negative TG_E* code on failure, the
 * libuv convention; pointer-returning functions return NULL instead. */
#ifndef TG_COMMON_ERR_H
#define TG_COMMON_ERR_H

#define TG_WUR __attribute__((warn_unused_result))

enum {
    TG_OK = 0,
    TG_ENOMEM = -1,       /* allocation failed */
    TG_EINVAL = -2,       /* invalid argument or value */
    TG_EIO = -3,          /* I/O or system call failed (errno logged) */
    TG_ECRYPTO = -4,      /* OpenSSL reported an error (queue logged) */
    TG_EMALFORMED = -5,   /* peer-supplied data does not parse */
    TG_ETOOBIG = -6,      /* a size limit was exceeded */
    TG_ENOTFOUND = -7,    /* no such item */
    TG_ECONFIG = -8,      /* configuration is invalid (details logged) */
    TG_EUNSUPPORTED = -9, /* well-formed but not supported (e.g. hash OID) */
    TG_EUV = -10,         /* libuv reported an error (logged) */
    TG_ESTATE = -11,      /* operation not valid in the current state */
};

/* Returns a static, human-readable name for a TG_E* code (or "unknown
 * error" for anything else). Never NULL; the caller must not free it. */
const char *tg_strerror(int err);

#endif
