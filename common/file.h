/* Whole-file reads and atomic whole-file writes. */
#ifndef TG_COMMON_FILE_H
#define TG_COMMON_FILE_H

#include "common/buf.h"
#include "common/err.h"

#include <sys/types.h>

/* Appends the whole file at path to out (owned by the caller), refusing a
 * file of more than max bytes. Returns 0, TG_EIO (errno tells why),
 * TG_ETOOBIG or TG_ENOMEM. Logs nothing: the caller knows what the file is. */
TG_WUR int tg_file_read(const char *path, size_t max, tg_buf_t *out);

/* Replaces the file at path with n bytes from p, atomically: a temporary
 * file next to it (mode), fsync, rename. Readers see the old or the new
 * content, never a mix, even across a crash. Returns 0 or TG_EIO (errno
 * tells why; the temporary file is removed). Logs nothing. */
TG_WUR int tg_file_write_atomic(const char *path, const uint8_t *p, size_t n, mode_t mode);

/* Creates the folder path and its missing parents (mode), like mkdir -p.
 * Returns 0 or TG_EIO (errno tells why; *out_failed, when not NULL, gets
 * the folder that could not be made, at most 4095 bytes). Logs nothing. */
TG_WUR int tg_file_mkdirs(const char *path, mode_t mode, char *out_failed, size_t failed_len);

#endif
