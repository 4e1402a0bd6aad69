#include "responder/responder_internal.h"

#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096
#define ACCESS_FLUSH_BYTES 32768

static void close_wake_if_done(tg_worker_t *w);

struct tg_mail {
    struct tg_mail *next;
    void (*fn)(void *arg, int canceled);
    void *arg;
};

static void on_mail(uv_async_t *a)
{
    tg_worker_t *w = a->data;
    pthread_mutex_lock(&w->mail_lock);
    struct tg_mail *m = w->mail_head;
    w->mail_head = w->mail_tail = NULL;
    pthread_mutex_unlock(&w->mail_lock);
    while (m != NULL) {
        struct tg_mail *next = m->next;
        m->fn(m->arg, 0);
        free(m);
        m = next;
    }
}

void tg_worker_post(tg_worker_t *w, void (*fn)(void *arg, int canceled), void *arg)
{
    struct tg_mail *m = malloc(sizeof(*m));
    pthread_mutex_lock(&w->mail_lock);
    if (m == NULL || !w->mail_open) {
        pthread_mutex_unlock(&w->mail_lock);
        free(m);
        if (m == NULL)
            tg_error("worker %d: out of memory posting mail; an answer is dropped", w->id);
        fn(arg, 1);
        return;
    }
    m->next = NULL;
    m->fn = fn;
    m->arg = arg;
    if (w->mail_tail != NULL)
        w->mail_tail->next = m;
    else
        w->mail_head = m;
    w->mail_tail = m;
    uv_async_send(&w->mail); /* under the lock: the handle is open */
    pthread_mutex_unlock(&w->mail_lock);
}

/* Closes the mail handle once the worker stops and awaits nothing. */
static void close_mail_if_done(tg_worker_t *w)
{
    if (!w->wake_closed || w->up_waiting > 0)
        return;
    pthread_mutex_lock(&w->mail_lock);
    int open = w->mail_open;
    w->mail_open = 0;
    pthread_mutex_unlock(&w->mail_lock);
    if (open) {
        on_mail(&w->mail); /* posted before the close: delivered, not lost */
        uv_close((uv_handle_t *)&w->mail, NULL);
    }
}

void tg_worker_await_begin(tg_worker_t *w)
{
    if (w->up_waiting++ == 0)
        uv_ref((uv_handle_t *)&w->mail);
}

void tg_worker_await_end(tg_worker_t *w)
{
    if (--w->up_waiting == 0) {
        uv_unref((uv_handle_t *)&w->mail);
        close_mail_if_done(w);
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    tg_worker_t *w = listener->data;
    if (status < 0) {
        tg_warn("accept: %s", uv_strerror(status));
        return;
    }
    tg_conn_accept(w, listener);
}

static void flush_access_log(tg_worker_t *w)
{
    if (w->access_buf.len == 0)
        return;
    tg_server_access_write(w->srv, w->access_buf.data, w->access_buf.len);
    w->access_buf.len = 0;
}

static void on_tick(uv_timer_t *t)
{
    flush_access_log(t->data);
}

static void stop_listening(tg_worker_t *w)
{
    for (size_t i = 0; i < w->n_listeners; i++)
        uv_close((uv_handle_t *)&w->listeners[i], NULL);
    w->n_listeners = 0;
    uv_close((uv_handle_t *)&w->tick, NULL);
}

void tg_worker_refresh(tg_worker_t *w)
{
    uint64_t id = atomic_load_explicit(&w->srv->gen_id, memory_order_acquire);
    if (id == w->gen->id)
        return;
    tg_gen_t *old = w->gen;
    w->gen = tg_server_gen_acquire(w->srv);
    w->cfg = w->gen->cfgref->cfg;
    w->snap = w->gen->snap;
    tg_gen_unref(old);
}

/* The server asks for something: a new configuration, a drain, or, past the
 * drain deadline, closing whatever is left. */
static void on_wake(uv_async_t *a)
{
    tg_worker_t *w = a->data;
    tg_server_t *srv = w->srv;

    if (!w->stopping) {
        tg_worker_refresh(w);
        /* tell the main loop which generation this worker answers from:
         * from here on nothing built from an older one leaves it */
        atomic_store(&w->gen_seen, w->gen->id);
        uv_async_send(&srv->notify);
    }

    if (atomic_load(&srv->stop_requested) && !w->stopping) {
        w->stopping = 1;
        stop_listening(w);
        flush_access_log(w);
        for (tg_conn_t *c = w->conns, *next; c != NULL; c = next) {
            next = c->next;
            tg_conn_drain(c);
        }
    }
    if (atomic_load(&srv->force_close)) {
        for (tg_conn_t *c = w->conns, *next; c != NULL; c = next) {
            next = c->next;
            tg_conn_close(c);
        }
    }
    close_wake_if_done(w);
}

/* Called when a connection is gone; the loop ends once nothing is left. */
static void close_wake_if_done(tg_worker_t *w)
{
    if (!w->stopping || w->conns != NULL || w->wake_closed)
        return;
    pthread_mutex_lock(&w->wake_lock);
    w->wake_closed = 1;
    pthread_mutex_unlock(&w->wake_lock);
    uv_close((uv_handle_t *)&w->wake, NULL);
    close_mail_if_done(w);
}

void tg_worker_conn_gone(tg_worker_t *w)
{
    close_wake_if_done(w);
}

static void worker_main(void *arg)
{
    tg_worker_t *w = arg;
    char tag[16];
    snprintf(tag, sizeof(tag), "w%d", w->id);
    tg_log_set_thread_tag(tag);

    uv_run(&w->loop, UV_RUN_DEFAULT);

    tg_cache_reader_free(w->reader);
    w->reader = NULL;
    flush_access_log(w);
    int rc = uv_loop_close(&w->loop);
    if (rc != 0)
        tg_warn("uv_loop_close: %s", uv_strerror(rc));
    atomic_store(&w->exited, 1);
    atomic_fetch_add(&w->srv->n_exited, 1);
    uv_async_send(&w->srv->notify);
}

/* Sets up the worker's loop and listeners in the calling thread, so errors
 * are reported before anything runs, then starts the thread. */
int tg_worker_start(tg_worker_t *w)
{
    int rc = uv_loop_init(&w->loop);
    if (rc != 0) {
        tg_error("worker %d: uv_loop_init: %s", w->id, uv_strerror(rc));
        return TG_EUV;
    }
    w->loop.data = w;
    /* a reader per worker: lookups on the answer path allocate nothing */
    if (w->srv->cache != NULL && tg_cache_reader_new(w->srv->cache, &w->reader) != 0) {
        tg_error("worker %d: no cache reader; active CAs get tryLater", w->id);
        w->reader = NULL;
    }
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_async_init(&w->loop, &w->mail, on_mail);
    w->mail.data = w;
    uv_unref((uv_handle_t *)&w->mail); /* only awaited answers keep the loop up */
    pthread_mutex_lock(&w->mail_lock);
    w->mail_open = 1;
    pthread_mutex_unlock(&w->mail_lock);
    uv_timer_init(&w->loop, &w->tick);
    w->tick.data = w;
    uv_timer_start(&w->tick, on_tick, 1000, 1000);
    uv_unref((uv_handle_t *)&w->tick);

    size_t want = w->n_listeners;
    w->n_listeners = 0;
    for (size_t i = 0; i < want; i++) {
        uv_tcp_t *l = &w->listeners[i];
        uv_tcp_init(&w->loop, l);
        w->n_listeners++;
        l->data = w;
        rc = uv_tcp_open(l, w->listen_fds[i]);
        if (rc == 0) {
            w->listen_fds[i] = -1; /* the handle owns it now */
            rc = uv_listen((uv_stream_t *)l, LISTEN_BACKLOG, on_connection);
        }
        if (rc != 0) {
            tg_error("worker %d: listen on %s: %s", w->id, w->cfg->listen[i].text, uv_strerror(rc));
            goto fail;
        }
    }
    rc = uv_thread_create(&w->thread, worker_main, w);
    if (rc != 0) {
        tg_error("worker %d: thread: %s", w->id, uv_strerror(rc));
        goto fail;
    }
    w->started = 1;
    return 0;
fail:
    w->stopping = 1;
    stop_listening(w);
    w->wake_closed = 1;
    uv_close((uv_handle_t *)&w->wake, NULL);
    close_mail_if_done(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&w->loop);
    tg_cache_reader_free(w->reader);
    w->reader = NULL;
    return TG_EUV;
}

void tg_worker_wake(tg_worker_t *w)
{
    /* the worker may be closing its loop: an async send to a closed handle
     * would abort */
    pthread_mutex_lock(&w->wake_lock);
    if (!w->wake_closed)
        uv_async_send(&w->wake);
    pthread_mutex_unlock(&w->wake_lock);
}

const char *tg_worker_date(tg_worker_t *w)
{
    time_t now = time(NULL);
    if ((uint64_t)now != w->date_sec) {
        w->date_sec = (uint64_t)now;
        tg_http_date(now, w->date);
    }
    return w->date;
}

void tg_worker_access_log(tg_worker_t *w, tg_buf_t *line)
{
    if (tg_buf_append(&w->access_buf, line->data, line->len) != 0)
        return; /* dropping a log line is better than failing a request */
    if (w->access_buf.len >= ACCESS_FLUSH_BYTES)
        flush_access_log(w);
}
