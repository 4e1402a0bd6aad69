#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tg_file_read(const char *path, size_t max, tg_buf_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return TG_EIO;
    size_t start = out->len;
    int rc = 0;
    for (;;) {
        if (out->len - start > max) {
            rc = TG_ETOOBIG;
            break;
        }
        if (tg_buf_reserve(out, 65536) != 0) {
            rc = TG_ENOMEM;
            break;
        }
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = TG_EIO;
            break;
        }
        if (n == 0)
            break;
        out->len += (size_t)n;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int tg_file_write_atomic(const char *path, const uint8_t *p, size_t n, mode_t mode)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return TG_EIO;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return TG_EIO;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            break;
        off += (size_t)w;
    }
    int ok = off == n && fsync(fd) == 0;
    int saved = errno;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        saved = ok ? errno : saved;
        unlink(tmp);
        errno = saved;
        return TG_EIO;
    }
    return 0;
}

int tg_file_mkdirs(const char *path, mode_t mode, char *out_failed, size_t failed_len)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return TG_EIO;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST) {
            if (out_failed != NULL)
                snprintf(out_failed, failed_len, "%s", buf);
            return TG_EIO;
        }
        buf[i] = c;
    }
    return 0;
}
