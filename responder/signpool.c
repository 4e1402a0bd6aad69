/* The signing pool: see signpool.h. One mutex-guarded FIFO, n threads. */
#include "responder/signpool.h"

#include "common/log.h"
#include "responder/responder_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct job {
    struct job *next;
    tg_worker_t *w;
    void (*work)(void *arg);
    void (*done)(void *arg, int canceled);
    void *arg;
} job_t;

struct tg_signpool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_t *head, *tail;
    size_t max_jobs;
    _Atomic size_t jobs; /* queued or running */
    int stopping;
    pthread_t *threads;
    size_t n_threads;
};

static void *pool_main(void *arg)
{
    tg_signpool_t *p = arg;
    tg_log_set_thread_tag("sign");
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        job_t *j = p->head;
        if (j == NULL) { /* stopping and nothing left */
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);
        j->work(j->arg);
        atomic_fetch_sub_explicit(&p->jobs, 1, memory_order_relaxed);
        tg_worker_post(j->w, j->done, j->arg);
        free(j);
    }
}

int tg_signpool_new(size_t n_threads, size_t max_jobs, tg_signpool_t **out_pool)
{
    if (n_threads == 0 || max_jobs == 0)
        return TG_EINVAL;
    tg_signpool_t *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->threads = calloc(n_threads, sizeof(pthread_t))) == NULL) {
        free(p);
        return TG_ENOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->max_jobs = max_jobs;
    for (; p->n_threads < n_threads; p->n_threads++) {
        if (pthread_create(&p->threads[p->n_threads], NULL, pool_main, p) != 0) {
            tg_error("signing pool: cannot start thread %zu", p->n_threads);
            tg_signpool_free(p);
            return TG_EIO;
        }
    }
    *out_pool = p;
    return 0;
}

int tg_signpool_submit(tg_signpool_t *pool, tg_worker_t *w, void (*work)(void *arg),
                       void (*done)(void *arg, int canceled), void *arg)
{
    job_t *j = malloc(sizeof(*j));
    if (j == NULL)
        return TG_ENOMEM;
    j->next = NULL;
    j->w = w;
    j->work = work;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&pool->mu);
    int rc = 0;
    if (pool->stopping)
        rc = TG_ESTATE;
    else if (atomic_load_explicit(&pool->jobs, memory_order_relaxed) >= pool->max_jobs)
        rc = TG_ETOOBIG;
    if (rc != 0) {
        pthread_mutex_unlock(&pool->mu);
        free(j);
        return rc;
    }
    atomic_fetch_add_explicit(&pool->jobs, 1, memory_order_relaxed);
    if (pool->tail != NULL)
        pool->tail->next = j;
    else
        pool->head = j;
    pool->tail = j;
    pthread_cond_signal(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    return 0;
}

size_t tg_signpool_depth(const tg_signpool_t *pool)
{
    return atomic_load_explicit(&pool->jobs, memory_order_relaxed);
}

void tg_signpool_free(tg_signpool_t *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->mu);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    for (size_t i = 0; i < pool->n_threads; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv);
    free(pool->threads);
    free(pool);
}
