#include "common/err.h"

const char *tg_strerror(int err)
{
    switch (err) {
    case TG_OK: return "success";
    case TG_ENOMEM: return "out of memory";
    case TG_EINVAL: return "invalid argument";
    case TG_EIO: return "I/O error";
    case TG_ECRYPTO: return "cryptographic library error";
    case TG_EMALFORMED: return "malformed input";
    case TG_ETOOBIG: return "size limit exceeded";
    case TG_ENOTFOUND: return "not found";
    case TG_ECONFIG: return "invalid configuration";
    case TG_EUNSUPPORTED: return "unsupported";
    case TG_EUV: return "event loop error";
    case TG_ESTATE: return "invalid state";
    default: return "unknown error";
    }
}
