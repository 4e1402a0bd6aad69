/* The admin socket (SPEC §3, §6): a unix stream socket, mode 0600, on the
 * main loop. A client sends one command line and gets one answer, then the
 * connection closes:
 *
 *   status  -> one line of JSON
 *   reload  -> "ok" or "error: reason" (re-reads the configuration, as SIGHUP)
 */
#include "responder/responder_internal.h"

#include "common/file.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ADMIN_MAX_LINE 256

typedef struct admin_client {
    uv_pipe_t pipe;
    uv_write_t wreq;
    tg_server_t *srv;
    char line[ADMIN_MAX_LINE];
    size_t len;
    tg_buf_t out;
    int answered;
    int config_rc;
    int reload_pending; /* a reload answers later: keep the struct until then */
    int closing, handle_closed;
    struct admin_client *prev, *next; /* the server's open clients */
} admin_client_t;

/* A socket file left by a process that died is removed; one that answers
 * belongs to a running trustgate, and starting a second one is an error. */
static int remove_stale(const char *path, const struct sockaddr_un *sa)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        tg_error("admin socket %s: exists and is not a socket", path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    int err = errno;
    close(fd);
    if (rc == 0) {
        tg_error("admin socket %s: another process is listening on it", path);
        return -1;
    }
    if (err != ECONNREFUSED) {
        tg_error("admin socket %s: %s", path, strerror(err));
        return -1;
    }
    if (unlink(path) != 0) {
        tg_error("admin socket %s: cannot remove stale socket: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Creates the parent folders of path (mode 0750) when missing, so that the
 * built-in default ("var/admin.sock") works from any working directory. */
static int make_parent_dirs(const char *path)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)], failed[256];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    if (tg_file_mkdirs(dir, 0750, failed, sizeof(failed)) != 0) {
        tg_error("admin socket %s: cannot create %s: %s", path, failed, strerror(errno));
        return -1;
    }
    return 0;
}

int tg_admin_listen(const char *path)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        tg_error("admin socket %s: path longer than %zu bytes", path, sizeof(sa.sun_path) - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (make_parent_dirs(path) != 0 || remove_stale(path, &sa) != 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        tg_error("admin socket %s: socket: %s", path, strerror(errno));
        return -1;
    }
    /* created 0600 from the start: no window in which others may connect.
     * Called before any thread exists, so the umask change is not racy. */
    mode_t old = umask(0177);
    int rc = bind(fd, (const struct sockaddr *)&sa, sizeof(sa));
    int err = errno;
    umask(old);
    if (rc != 0 || listen(fd, 16) != 0) {
        tg_error("admin socket %s: %s", path, strerror(rc != 0 ? err : errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void client_free(admin_client_t *c)
{
    tg_buf_free(&c->out);
    free(c);
}

static void client_closed(uv_handle_t *h)
{
    admin_client_t *c = h->data;
    c->handle_closed = 1;
    if (!c->reload_pending)
        client_free(c);
}

/* Closes a client once; unlinks it from the server's list. */
static void client_close(admin_client_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    tg_server_t *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->admin_clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->pipe, client_closed);
}

static void client_written(uv_write_t *req, int status)
{
    (void)status; /* the client may be gone; nothing to retry */
    admin_client_t *c = req->data;
    client_close(c);
}

/* One line of JSON: process, connections, and each configured list with
 * the sequence in force (0: none), its issue time and staleness. */
static void status_json(tg_server_t *srv, tg_buf_t *out)
{
    const tg_gen_t *gen = srv->gen;
    const tg_config_t *cfg = gen->cfgref->cfg;
    time_t now = time(NULL);
    int rc =
        tg_buf_printf(out,
                      "{\"version\":\"%s\",\"uptime_s\":%llu,\"workers\":%zu,"
                      "\"connections\":%llu,\"config\":\"%s\",\"stopping\":%s,"
                      "\"generation\":%llu,\"trustlists\":{",
                      TG_VERSION, (unsigned long long)((uv_now(&srv->loop) - srv->start_ms) / 1000),
                      srv->n_workers, (unsigned long long)atomic_load(&srv->conns_total),
                      srv->config_path ? srv->config_path : "(built-in default)",
                      srv->stopping ? "true" : "false", (unsigned long long)gen->id);
    for (size_t i = 0; i < cfg->n_trustlists; i++) {
        size_t idx;
        const tg_tl_list_t *l = NULL;
        if (gen->snap != NULL &&
            tg_tl_snapshot_list_index(gen->snap, cfg->trustlists[i].name, &idx) == 0)
            l = tg_tl_snapshot_list(gen->snap, idx);
        rc |= tg_buf_printf(out,
                            "%s\"%s\":{\"loaded\":%s,\"sequence\":%llu,\"issued\":%lld,"
                            "\"next_update\":%lld,\"stale\":%s}",
                            i ? "," : "", cfg->trustlists[i].name, l ? "true" : "false",
                            (unsigned long long)(l ? l->sequence : 0),
                            (long long)(l ? l->issued : 0), (long long)(l ? l->next_update : 0),
                            l && tg_tl_list_is_stale(l, now) ? "true" : "false");
    }
    rc |= tg_buf_append_str(out, "}}\n");
    if (rc != 0)
        out->len = 0;
}

static void send_answer(admin_client_t *c)
{
    if (c->out.len == 0) {
        client_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->pipe, &b, 1, client_written) != 0)
        client_close(c);
}

static void reload_taken_up(void *arg)
{
    admin_client_t *c = arg;
    c->reload_pending = 0;
    if (c->closing) {
        if (c->handle_closed)
            client_free(c);
        return;
    }
    send_answer(c);
}

/* Answers `reload` once every list is accepted, unchanged or refused and
 * every worker has taken the result up: when the client reads "ok", the
 * lists it installed are in force everywhere. */
static void reload_done(void *arg, int accepted, int refused)
{
    admin_client_t *c = arg;
    c->reload_pending = 0;
    if (c->closing) { /* the server stopped meanwhile */
        if (c->handle_closed)
            client_free(c);
        return;
    }
    if (tg_buf_printf(&c->out, "%s; trust lists: %d in force, %d refused\n",
                      c->config_rc == 0 ? "ok: configuration reloaded"
                                        : "error: configuration refused, the previous one stays "
                                          "(see the log)",
                      accepted, refused) != 0)
        c->out.len = 0;
    /* answer only once every worker answers from what was just loaded */
    c->reload_pending = 1;
    tg_server_when_taken_up(c->srv, reload_taken_up, c);
}

static void answer(admin_client_t *c)
{
    tg_server_t *srv = c->srv;
    c->answered = 1;
    size_t n = c->len;
    while (n > 0 && (c->line[n - 1] == '\r' || c->line[n - 1] == ' '))
        n--;
    tg_slice_t cmd = TG_SLICE(c->line, n);
    int rc = 0;
    if (tg_slice_eq_str(cmd, "status")) {
        status_json(srv, &c->out);
    } else if (tg_slice_eq_str(cmd, "reload")) {
        if (srv->stopping) {
            rc = tg_buf_append_str(&c->out, "error: the server is stopping\n");
        } else {
            tg_info("admin: reload requested");
            c->reload_pending = 1;
            c->config_rc = tg_server_reload(srv, reload_done, c);
            return; /* reload_done answers */
        }
    } else {
        rc = tg_buf_append_str(&c->out, "error: unknown command (try: status, reload)\n");
    }
    if (rc != 0)
        c->out.len = 0;
    send_answer(c);
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    admin_client_t *c = h->data;
    buf->base = c->line + c->len;
    buf->len = sizeof(c->line) - c->len;
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    admin_client_t *c = s->data;
    if (nread < 0) {
        uv_read_stop(s);
        if (nread == UV_EOF && !c->answered && c->len > 0)
            answer(c); /* a command without a newline, then EOF */
        else if (!c->answered)
            client_close(c);
        return;
    }
    c->len += (size_t)nread;
    char *nl = memchr(c->line, '\n', c->len);
    if (nl != NULL) {
        c->len = (size_t)(nl - c->line);
        uv_read_stop(s);
        answer(c);
    } else if (c->len == sizeof(c->line)) {
        uv_read_stop(s);
        client_close(c);
    }
}

static void on_admin_connection(uv_stream_t *server, int status)
{
    tg_server_t *srv = server->data;
    if (status < 0)
        return;
    admin_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->srv = srv;
    uv_pipe_init(&srv->loop, &c->pipe, 0);
    c->pipe.data = c;
    c->next = srv->admin_clients;
    if (c->next)
        c->next->prev = c;
    srv->admin_clients = c;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 ||
        uv_read_start((uv_stream_t *)&c->pipe, client_alloc, client_read) != 0)
        client_close(c);
}

int tg_admin_start(tg_server_t *srv)
{
    uv_pipe_init(&srv->loop, &srv->admin, 0);
    srv->admin.data = srv;
    srv->admin_open = 1;
    int rc = uv_pipe_open(&srv->admin, srv->admin_fd);
    if (rc == 0) {
        srv->admin_fd = -1; /* the handle owns it */
        rc = uv_listen((uv_stream_t *)&srv->admin, 16, on_admin_connection);
    }
    if (rc != 0) {
        tg_error("admin socket: %s", uv_strerror(rc));
        return TG_EUV;
    }
    return 0;
}

void tg_admin_stop(tg_server_t *srv)
{
    if (!srv->admin_open)
        return;
    srv->admin_open = 0;
    uv_close((uv_handle_t *)&srv->admin, NULL);
    /* a client that never sends its command must not keep the loop alive */
    while (srv->admin_clients != NULL)
        client_close(srv->admin_clients);
    if (srv->admin_path != NULL)
        unlink(srv->admin_path);
}
