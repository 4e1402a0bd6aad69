#include "responder/responder_internal.h"
#include "responder/signpool.h"
#include "responder/upmgr.h"

#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connections still busy this long after SIGTERM are cut, so the process
 * exits within the 5 s that orchestrators allow. */
#define DRAIN_DEADLINE_MS 4500

tg_gen_t *tg_server_gen_acquire(tg_server_t *srv)
{
    pthread_mutex_lock(&srv->gen_lock);
    tg_gen_t *g = tg_gen_ref(srv->gen);
    pthread_mutex_unlock(&srv->gen_lock);
    return g;
}

static void wake_all(tg_server_t *srv);

int tg_server_publish(tg_server_t *srv, tg_cfgref_t *cfgref, tg_tl_snapshot_t *snap)
{
    tg_gen_t *g = tg_gen_new(cfgref, snap, srv->gen ? srv->gen->id + 1 : 1);
    if (g == NULL) {
        tg_error("publish: out of memory; keeping the current state");
        return TG_ENOMEM;
    }
    pthread_mutex_lock(&srv->gen_lock);
    tg_gen_t *old = srv->gen;
    srv->gen = g;
    /* from here on every request a worker starts sees g (SPEC §6) */
    atomic_store_explicit(&srv->gen_id, g->id, memory_order_release);
    pthread_mutex_unlock(&srv->gen_lock);
    tg_gen_unref(old);
    wake_all(srv); /* idle workers let go of the old generation too */
    if (srv->crlmgr != NULL)
        tg_crlmgr_update(srv->crlmgr, g);
    return 0;
}

/* Opens the access log named by cfg (NULL: off, "-": stderr). Returns an fd
 * or -1 (off or failed; a failure is logged). */
static int access_log_open(const tg_config_t *cfg)
{
    if (cfg->access_log == NULL)
        return -1;
    if (strcmp(cfg->access_log, "-") == 0)
        return dup(STDERR_FILENO);
    int fd = open(cfg->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        tg_error("access log %s: %s", cfg->access_log, strerror(errno));
    return fd;
}

/* Writes whole access-log lines collected by a worker. Lines arrive in
 * blocks; the lock keeps blocks of different workers apart. */
void tg_server_access_write(tg_server_t *srv, const uint8_t *p, size_t n)
{
    pthread_mutex_lock(&srv->access_lock);
    int fd = srv->access_fd;
    while (fd >= 0 && n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break; /* a full disk must not stop the responder */
        }
        p += w;
        n -= (size_t)w;
    }
    pthread_mutex_unlock(&srv->access_lock);
}

/* Creates a listening socket for one address with SO_REUSEPORT, so every
 * worker has its own accept queue and the kernel spreads connections. */
static int listen_socket(const tg_config_listen_t *l)
{
    int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        tg_error("listen %s: socket: %s", l->text, strerror(errno));
        return -1;
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        (l->addr.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)) {
        tg_error("listen %s: setsockopt: %s", l->text, strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (const struct sockaddr *)&l->addr, l->addr_len) != 0) {
        tg_error("listen %s: bind: %s", l->text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int tg_server_new(tg_config_t *cfg, const char *config_path, tg_server_t **out_srv)
{
    int rc = TG_ENOMEM;
    tg_server_t *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        tg_config_free(cfg);
        return TG_ENOMEM;
    }
    pthread_mutex_init(&srv->gen_lock, NULL);
    pthread_mutex_init(&srv->access_lock, NULL);
    srv->access_fd = -1;
    srv->admin_fd = -1;
    tg_cfgref_t *ref = NULL;
    rc = tg_cfgref_new(cfg, NULL, &ref);
    if (rc != 0) {
        tg_config_free(cfg);
        goto fail;
    }
    srv->gen = tg_gen_new(ref, NULL, 1);
    tg_cfgref_release(ref);
    rc = TG_ENOMEM;
    if (srv->gen == NULL)
        goto fail;
    atomic_store(&srv->gen_id, 1);
    if (config_path != NULL && (srv->config_path = strdup(config_path)) == NULL)
        goto fail;
    srv->n_workers = cfg->workers;
    srv->workers = calloc(srv->n_workers, sizeof(tg_worker_t));
    if (srv->workers == NULL)
        goto fail;
    for (size_t i = 0; i < srv->n_workers; i++) {
        tg_worker_t *w = &srv->workers[i];
        w->id = (int)i;
        w->srv = srv;
        w->n_listeners = cfg->n_listen;
        pthread_mutex_init(&w->wake_lock, NULL);
        pthread_mutex_init(&w->mail_lock, NULL);
        for (size_t j = 0; j < TG_CONFIG_MAX_LISTEN; j++)
            w->listen_fds[j] = -1;
    }
    for (size_t i = 0; i < srv->n_workers; i++) {
        for (size_t j = 0; j < cfg->n_listen; j++) {
            int fd = listen_socket(&cfg->listen[j]);
            if (fd < 0) {
                rc = TG_EIO;
                goto fail;
            }
            srv->workers[i].listen_fds[j] = fd;
        }
    }
    /* the cache opens before anything serves: a restart answers from it */
    rc = tg_cache_open(cfg->cache_path, cfg->map_size_mb, &srv->cache);
    if (rc != 0) {
        tg_error("cache %s: cannot open (%s)", cfg->cache_path, tg_strerror(rc));
        goto fail;
    }
    rc = tg_crlmgr_new(srv->cache, &srv->crlmgr);
    if (rc != 0)
        goto fail;
    rc = tg_upmgr_new(srv->cache, &srv->upmgr);
    if (rc != 0)
        goto fail;
    /* one signing thread per core, off the worker loops and off libuv's
     * pool (trust-list loads) */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    rc = tg_signpool_new(cores > 0 ? (size_t)cores : 1, TG_SIGN_JOBS_PER_WORKER * srv->n_workers,
                         &srv->signpool);
    if (rc != 0)
        goto fail;
    if (cfg->admin_socket != NULL) {
        if ((srv->admin_path = strdup(cfg->admin_socket)) == NULL)
            goto fail;
        srv->admin_fd = tg_admin_listen(cfg->admin_socket);
        if (srv->admin_fd < 0) {
            free(srv->admin_path);
            srv->admin_path = NULL; /* not ours to unlink */
            rc = TG_EIO;
            goto fail;
        }
    }
    srv->access_fd = access_log_open(cfg);
    if (cfg->access_log != NULL && srv->access_fd < 0) {
        rc = TG_EIO;
        goto fail;
    }
    *out_srv = srv;
    return 0;
fail:
    tg_server_free(srv);
    return rc;
}

void tg_server_free(tg_server_t *srv)
{
    if (srv == NULL)
        return;
    for (size_t i = 0; srv->workers != NULL && i < srv->n_workers; i++) {
        tg_worker_t *w = &srv->workers[i];
        for (size_t j = 0; j < TG_CONFIG_MAX_LISTEN; j++) {
            if (w->listen_fds[j] >= 0)
                close(w->listen_fds[j]);
        }
        tg_gen_unref(w->gen);
        tg_buf_free(&w->access_buf);
        pthread_mutex_destroy(&w->wake_lock);
        pthread_mutex_destroy(&w->mail_lock);
    }
    free(srv->workers);
    tg_tlmgr_free(srv->tlmgr);
    tg_upmgr_free(srv->upmgr);       /* after the workers: asks in flight end canceled */
    tg_signpool_free(srv->signpool); /* idle: workers waited for their jobs */
    tg_crlmgr_free(srv->crlmgr);
    tg_cache_close(srv->cache); /* finishes queued writes */
    tg_gen_unref(srv->gen);
    if (srv->access_fd >= 0)
        close(srv->access_fd);
    if (srv->admin_fd >= 0)
        close(srv->admin_fd);
    if (srv->admin_path != NULL)
        unlink(srv->admin_path);
    free(srv->admin_path);
    pthread_mutex_destroy(&srv->gen_lock);
    pthread_mutex_destroy(&srv->access_lock);
    free(srv->config_path);
    free(srv);
}

static void wake_all(tg_server_t *srv)
{
    for (size_t i = 0; i < srv->n_workers; i++) {
        if (srv->workers[i].started)
            tg_worker_wake(&srv->workers[i]);
    }
}

static void on_drain_deadline(uv_timer_t *t)
{
    tg_server_t *srv = t->data;
    tg_warn("drain deadline reached; closing remaining connections");
    atomic_store(&srv->force_close, 1);
    wake_all(srv);
}

static void begin_stop(tg_server_t *srv, const char *why)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    tg_info("%s: draining (no new connections; in-flight answers finish)", why);
    atomic_store(&srv->stop_requested, 1);
    wake_all(srv);
    uv_timer_start(&srv->drain_timer, on_drain_deadline, DRAIN_DEADLINE_MS, 0);
}

/* Settings that live in sockets and threads cannot change under a running
 * server; say so instead of silently ignoring them. */
static void warn_restart_only(const tg_config_t *old, const tg_config_t *neu)
{
    int same_listen = old->n_listen == neu->n_listen;
    for (size_t i = 0; same_listen && i < old->n_listen; i++)
        same_listen = strcmp(old->listen[i].text, neu->listen[i].text) == 0;
    if (!same_listen)
        tg_warn("reload: listen addresses changed; restart to apply");
    if (old->workers != neu->workers)
        tg_warn("reload: workers changed (%u -> %u); restart to apply", old->workers, neu->workers);
}

/* Re-reads the configuration file and hands the new one to the workers.
 * Returns 0, or the error after logging it (the current one stays). */
static int reload_config(tg_server_t *srv)
{
    if (srv->config_path == NULL) {
        tg_info("reload: running on the built-in default configuration; nothing to re-read");
        return 0;
    }
    tg_config_t *cfg = NULL;
    int rc = tg_config_load(srv->config_path, &cfg);
    if (rc != 0) {
        tg_error("reload of %s failed (%s); keeping the current configuration", srv->config_path,
                 tg_strerror(rc));
        return rc;
    }
    tg_cfgref_t *ref = NULL;
    rc = tg_cfgref_new(cfg, srv->gen->cfgref, &ref);
    if (rc != 0) {
        tg_config_free(cfg);
        tg_error("reload of %s failed (%s); keeping the current configuration", srv->config_path,
                 tg_strerror(rc));
        return rc;
    }
    warn_restart_only(srv->gen->cfgref->cfg, cfg);
    tg_log_set_level((tg_log_level_t)cfg->log_level);

    /* reopen the access log: this is also how log rotation works */
    int fd = access_log_open(cfg);
    pthread_mutex_lock(&srv->access_lock);
    int old_fd = srv->access_fd;
    srv->access_fd = fd;
    pthread_mutex_unlock(&srv->access_lock);
    if (old_fd >= 0)
        close(old_fd);

    rc = tg_server_publish(srv, ref, srv->gen->snap);
    tg_cfgref_release(ref);
    if (rc != 0)
        return rc;
    tg_info("reloaded %s", srv->config_path);
    return 0;
}

/* 1 when the trust-list sections of a and b are the same (then a reload
 * only re-reads the lists instead of rebuilding their sources). */
static int same_lists(const tg_config_t *a, const tg_config_t *b)
{
    if (a->n_trustlists != b->n_trustlists || a->allow_file_urls != b->allow_file_urls ||
        strcmp(a->cache_path, b->cache_path) != 0)
        return 0;
    for (size_t i = 0; i < a->n_trustlists; i++) {
        const tg_config_trustlist_t *x = &a->trustlists[i], *y = &b->trustlists[i];
        if (strcmp(x->name, y->name) != 0 || strcmp(x->source, y->source) != 0 ||
            x->refresh_s != y->refresh_s || x->n_operator_certs != y->n_operator_certs)
            return 0;
        for (size_t j = 0; j < x->n_operator_certs; j++) {
            if (strcmp(x->operator_certs[j], y->operator_certs[j]) != 0)
                return 0;
        }
    }
    return 1;
}

int tg_server_reload(tg_server_t *srv, tg_tlmgr_done_cb cb, void *arg)
{
    tg_cfgref_t *before = srv->gen->cfgref;
    atomic_fetch_add_explicit(&before->refs, 1, memory_order_relaxed);
    int rc = reload_config(srv);
    int changed = rc == 0 && !same_lists(before->cfg, srv->gen->cfgref->cfg);
    tg_cfgref_release(before);
    if (srv->crlmgr != NULL)
        tg_crlmgr_refresh(srv->crlmgr); /* a reload re-reads every source, CRLs too */
    if (srv->tlmgr == NULL) {
        if (cb)
            cb(arg, 0, 0);
    } else if (changed) {
        tg_tlmgr_reconfigure(srv->tlmgr, cb, arg);
    } else {
        tg_tlmgr_reload(srv->tlmgr, cb, arg);
    }
    return rc;
}

static void on_signal(uv_signal_t *h, int signum)
{
    tg_server_t *srv = h->data;
    if (signum != SIGHUP) {
        begin_stop(srv, signum == SIGTERM ? "SIGTERM" : "SIGINT");
        return;
    }
    if (srv->stopping) {
        tg_info("SIGHUP while stopping: ignored");
        return;
    }
    if (tg_server_reload(srv, NULL, NULL) != 0)
        tg_warn("SIGHUP: configuration refused; still serving the previous one (trust lists "
                "are reloaded all the same)");
}

typedef struct ack_waiter {
    uint64_t id;
    void (*cb)(void *arg);
    void *arg;
    struct ack_waiter *next;
} ack_waiter_t;

/* 1 when every running worker answers from generation id or later. */
static int taken_up(tg_server_t *srv, uint64_t id)
{
    for (size_t i = 0; i < srv->n_workers; i++) {
        tg_worker_t *w = &srv->workers[i];
        if (w->started && !atomic_load(&w->exited) && atomic_load(&w->gen_seen) < id)
            return 0;
    }
    return 1;
}

static void run_waiters(tg_server_t *srv)
{
    for (ack_waiter_t **pp = &srv->waiters; *pp != NULL;) {
        ack_waiter_t *a = *pp;
        if (!taken_up(srv, a->id) && !srv->main_closed) {
            pp = &a->next;
            continue;
        }
        *pp = a->next;
        a->cb(a->arg);
        free(a);
    }
}

void tg_server_when_taken_up(tg_server_t *srv, void (*cb)(void *arg), void *arg)
{
    uint64_t id = srv->gen->id;
    ack_waiter_t *a = taken_up(srv, id) ? NULL : calloc(1, sizeof(*a));
    if (a == NULL) {
        cb(arg); /* taken up already (or no memory to wait: do not hang) */
        return;
    }
    a->id = id;
    a->cb = cb;
    a->arg = arg;
    a->next = srv->waiters;
    srv->waiters = a;
    wake_all(srv);
}

static void on_all_exited_check(uv_async_t *a)
{
    tg_server_t *srv = a->data;
    run_waiters(srv);
    if (srv->main_closed || atomic_load(&srv->n_exited) < srv->n_workers)
        return;
    srv->main_closed = 1;
    run_waiters(srv); /* nobody is left to wait for */
    uv_close((uv_handle_t *)&srv->sig_term, NULL);
    uv_close((uv_handle_t *)&srv->sig_int, NULL);
    uv_close((uv_handle_t *)&srv->sig_hup, NULL);
    uv_close((uv_handle_t *)&srv->drain_timer, NULL);
    uv_close((uv_handle_t *)&srv->notify, NULL);
    tg_admin_stop(srv);
    tg_tlmgr_stop(srv->tlmgr);
}

static void on_stop_request(uv_async_t *a)
{
    tg_server_t *srv = a->data;
    if (atomic_load(&srv->stop_requested) && !srv->stopping)
        begin_stop(srv, "stop requested");
    on_all_exited_check(a);
}

void tg_server_request_stop(tg_server_t *srv)
{
    atomic_store(&srv->stop_requested, 1);
    uv_async_send(&srv->notify);
}

int tg_server_run(tg_server_t *srv)
{
    int rc = uv_loop_init(&srv->loop);
    if (rc != 0) {
        tg_error("uv_loop_init: %s", uv_strerror(rc));
        return TG_EUV;
    }
    srv->loop.data = srv;
    uv_signal_init(&srv->loop, &srv->sig_term);
    uv_signal_init(&srv->loop, &srv->sig_int);
    uv_signal_init(&srv->loop, &srv->sig_hup);
    uv_timer_init(&srv->loop, &srv->drain_timer);
    uv_async_init(&srv->loop, &srv->notify, on_stop_request);
    srv->sig_term.data = srv->sig_int.data = srv->sig_hup.data = srv;
    srv->drain_timer.data = srv->notify.data = srv;
    uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
    uv_signal_start(&srv->sig_int, on_signal, SIGINT);
    uv_signal_start(&srv->sig_hup, on_signal, SIGHUP);
    srv->start_ms = uv_now(&srv->loop);

    int start_rc = tg_tlmgr_new(srv, &srv->tlmgr);
    if (start_rc == 0)
        start_rc = tg_tlmgr_start(srv->tlmgr);
    if (start_rc == 0 && srv->admin_fd >= 0)
        start_rc = tg_admin_start(srv);
    size_t started = 0;
    while (start_rc == 0 && started < srv->n_workers) {
        tg_worker_t *w = &srv->workers[started];
        w->gen = tg_server_gen_acquire(srv);
        w->cfg = w->gen->cfgref->cfg;
        w->snap = w->gen->snap;
        start_rc = tg_worker_start(w);
        if (start_rc != 0) {
            tg_gen_unref(w->gen);
            w->gen = NULL;
            break;
        }
        started++;
    }
    if (start_rc != 0) {
        /* workers that never started count as exited */
        atomic_fetch_add(&srv->n_exited, srv->n_workers - started);
        begin_stop(srv, "start-up failed");
    }
    if (start_rc == 0) {
        const tg_config_t *cfg = srv->gen->cfgref->cfg;
        for (size_t j = 0; j < cfg->n_listen; j++)
            tg_info("listening on %s with %zu workers", cfg->listen[j].text, srv->n_workers);
    }
    on_all_exited_check(&srv->notify); /* all may already be gone */
    uv_run(&srv->loop, UV_RUN_DEFAULT);

    for (size_t i = 0; i < srv->n_workers; i++) {
        if (srv->workers[i].started)
            uv_thread_join(&srv->workers[i].thread);
    }
    uv_loop_close(&srv->loop);
    if (start_rc == 0)
        tg_info("stopped");
    return start_rc;
}
