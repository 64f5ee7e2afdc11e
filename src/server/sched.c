/* sched.c — continuous batching over the engine's sessions (see sched.h). */
#include "server/sched.h"

#include "base/err.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ck_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    char *text;                /* what the generation streamed so far */
    size_t n, cap;
    ck_job_status st;
    atomic_int cancel;
    volatile int cancel_flag;  /* what the generation loop polls (mirrors cancel) */
    int32_t *prompt;
    size_t n_prompt;
    ck_gen_params p;
    char **stops;              /* owned copies of p.stop */
    ck_job *next;              /* queue link */
};

typedef struct slot {
    ck_session *s;
    ck_job *job;               /* NULL when free */
    ck_gen *gen;
} slot;

struct ck_sched {
    ck_engine *e;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ck_job *head, *tail;       /* queue */
    size_t queued, running;
    int stop;
    slot *slots;
    size_t n_slots;
    pthread_t thread;
    int started;
};

/* ---- jobs ---- */

static void job_unref(ck_job *j) {
    pthread_mutex_lock(&j->mu);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last) return;
    for (size_t i = 0; i < j->p.n_stop; i++) free(j->stops[i]);
    free(j->stops);
    free(j->prompt);
    free(j->text);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

void ck_job_release(ck_job *j) {
    if (!j) return;
    ck_job_cancel(j); /* a submitter that lets go no longer reads: nothing to generate for */
    job_unref(j);
}

void ck_job_cancel(ck_job *j) {
    atomic_store(&j->cancel, 1);
    j->cancel_flag = 1;
}

/* on_text of the generation: appends to the job's text and wakes its reader. */
static int job_text(void *user, const char *text, size_t len) {
    ck_job *j = user;
    pthread_mutex_lock(&j->mu);
    if (j->n + len > j->cap) {
        size_t cap = j->cap ? j->cap : 4096;
        while (cap < j->n + len) cap *= 2;
        char *t = realloc(j->text, cap);
        if (!t) {
            pthread_mutex_unlock(&j->mu);
            return 1; /* out of memory: stop this generation */
        }
        j->text = t, j->cap = cap;
    }
    memcpy(j->text + j->n, text, len);
    j->n += len;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return atomic_load(&j->cancel);
}

static void job_finish(ck_job *j, const ck_gen_result *r, const char *error) {
    pthread_mutex_lock(&j->mu);
    j->st.done = 1;
    if (r) {
        j->st.finish = r->finish;
        j->st.n_gen = r->n_gen;
        j->st.decode_s = r->decode_s;
    } else {
        j->st.finish = CK_FINISH_CANCEL;
    }
    if (error) snprintf(j->st.error, sizeof j->st.error, "%s", error);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

int ck_job_wait(ck_job *j, size_t have, int timeout_ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&j->mu);
    int rc = 0;
    while (j->n <= have && !j->st.done && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&j->cv, &j->mu, &until);
    int news = j->n > have || j->st.done;
    pthread_mutex_unlock(&j->mu);
    return news;
}

size_t ck_job_read(ck_job *j, size_t from, char *buf, size_t cap) {
    pthread_mutex_lock(&j->mu);
    size_t n = from < j->n ? j->n - from : 0;
    if (n > cap) n = cap;
    if (n) memcpy(buf, j->text + from, n);
    pthread_mutex_unlock(&j->mu);
    return n;
}

size_t ck_job_len(ck_job *j) {
    pthread_mutex_lock(&j->mu);
    size_t n = j->n;
    pthread_mutex_unlock(&j->mu);
    return n;
}

void ck_job_status_get(ck_job *j, ck_job_status *st) {
    pthread_mutex_lock(&j->mu);
    *st = j->st;
    pthread_mutex_unlock(&j->mu);
}

static ck_job *job_new(const int32_t *prompt, size_t n, const ck_gen_params *p) {
    ck_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 2; /* the submitter and the scheduler */
    j->p = *p;
    j->p.n_stop = 0;
    j->prompt = malloc((n ? n : 1) * sizeof *prompt);
    j->stops = calloc(p->n_stop ? p->n_stop : 1, sizeof *j->stops);
    int ok = j->prompt && j->stops;
    for (size_t i = 0; ok && i < p->n_stop; i++, j->p.n_stop++) ok = (j->stops[i] = strdup(p->stop[i])) != NULL;
    if (!ok) {
        j->refs = 1;
        job_unref(j);
        return NULL;
    }
    memcpy(j->prompt, prompt, n * sizeof *prompt);
    j->n_prompt = j->st.n_prompt = n;
    j->p.stop = (const char *const *)j->stops;
    j->p.on_text = job_text, j->p.user = j, j->p.cancel = &j->cancel_flag;
    return j;
}

ck_job *ck_sched_submit(ck_sched *s, const int32_t *prompt, size_t n, const ck_gen_params *p, char *err,
                        size_t errlen) {
    if (ck_gen_params_check(p, err, errlen) != 0) return NULL;
    ck_job *j = job_new(prompt, n, p);
    if (!j) {
        ck_err(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    if (s->stop) {
        pthread_mutex_unlock(&s->mu);
        job_unref(j), job_unref(j);
        ck_err(err, errlen, "the server is shutting down");
        return NULL;
    }
    if (s->tail) s->tail->next = j;
    else s->head = j;
    s->tail = j;
    s->queued++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return j;
}

void ck_sched_load(ck_sched *s, size_t *queued, size_t *running) {
    pthread_mutex_lock(&s->mu);
    *queued = s->queued, *running = s->running;
    pthread_mutex_unlock(&s->mu);
}

/* ---- the scheduler thread ---- */

/* The free slot whose session already holds the longest prefix of the prompt (a returning conversation
 * keeps its cache), or NULL. */
static slot *pick_slot(ck_sched *s, const ck_job *j) {
    slot *best = NULL;
    size_t best_n = 0;
    for (size_t i = 0; i < s->n_slots; i++) {
        if (s->slots[i].job) continue;
        size_t n = ck_session_prefix(s->slots[i].s, j->prompt, j->n_prompt);
        if (!best || n > best_n) best = &s->slots[i], best_n = n;
    }
    return best;
}

/* Starts queued jobs in free slots (their prompts then run in the steps). */
static void admit(ck_sched *s) {
    for (;;) {
        pthread_mutex_lock(&s->mu);
        ck_job *j = s->running < s->n_slots ? s->head : NULL;
        if (j) {
            s->head = j->next;
            if (!s->head) s->tail = NULL;
            s->queued--;
            s->running++;
        }
        pthread_mutex_unlock(&s->mu);
        if (!j) return;
        slot *sl = pick_slot(s, j);
        char err[256];
        if (atomic_load(&j->cancel)) {
            job_finish(j, NULL, NULL);
        } else if (ck_gen_queue(sl->s, j->prompt, j->n_prompt, &j->p, &sl->gen, err, sizeof err) != 0) {
            job_finish(j, NULL, err);
        } else {
            sl->job = j;
            continue;
        }
        job_unref(j);
        pthread_mutex_lock(&s->mu);
        s->running--;
        pthread_mutex_unlock(&s->mu);
    }
}

/* One token for every running job; finished ones leave their slots. */
static void step(ck_sched *s) {
    ck_gen *gens[s->n_slots];
    size_t n = 0;
    for (size_t i = 0; i < s->n_slots; i++)
        if (s->slots[i].job) gens[n++] = s->slots[i].gen;
    if (n) ck_gen_step(gens, n);
    for (size_t i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (!sl->job || !ck_gen_done(sl->gen)) continue;
        const char *error = ck_gen_error(sl->gen);
        job_finish(sl->job, ck_gen_result_get(sl->gen), error);
        if (error) ck_session_reset(sl->s); /* a failed forward leaves it undefined */
        ck_gen_free(sl->gen);
        job_unref(sl->job);
        sl->job = NULL, sl->gen = NULL;
        pthread_mutex_lock(&s->mu);
        s->running--;
        pthread_mutex_unlock(&s->mu);
    }
}

static void *sched_main(void *arg) {
    ck_sched *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->stop && !s->head && s->running == 0) pthread_cond_wait(&s->cv, &s->mu);
        int stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop) break;
        admit(s);
        step(s);
    }
    return NULL;
}

static int open_slots(ck_sched *s, const ck_sched_opts *o, char *err, size_t errlen) {
    s->slots = calloc(o->parallel, sizeof *s->slots);
    if (!s->slots) return ck_err(err, errlen, "out of memory");
    for (; s->n_slots < o->parallel; s->n_slots++) {
        ck_session **ps = &s->slots[s->n_slots].s;
        int rc = o->session_open ? o->session_open(o->user, o->e, o->max_ctx, ps, err, errlen)
                                 : ck_session_open(o->e, o->max_ctx, ps, err, errlen);
        if (rc != 0) return -1;
    }
    return 0;
}

int ck_sched_start(const ck_sched_opts *o, ck_sched **out, char *err, size_t errlen) {
    *out = NULL;
    if (o->parallel < 1 || o->parallel > 256) return ck_err(err, errlen, "parallel must be between 1 and 256");
    ck_sched *s = calloc(1, sizeof *s);
    if (!s) return ck_err(err, errlen, "out of memory");
    s->e = o->e;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (open_slots(s, o, err, errlen) != 0 || pthread_create(&s->thread, NULL, sched_main, s) != 0) {
        if (!err[0]) ck_err(err, errlen, "cannot start the scheduler thread");
        ck_sched_stop(s);
        return -1;
    }
    s->started = 1;
    *out = s;
    return 0;
}

void ck_sched_stop(ck_sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    for (ck_job *j = s->head; j; j = j->next) ck_job_cancel(j);
    for (size_t i = 0; i < s->n_slots; i++)
        if (s->slots[i].job) ck_job_cancel(s->slots[i].job);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->started) pthread_join(s->thread, NULL);
    while (s->head) { /* never started: finish them cancelled */
        ck_job *j = s->head;
        s->head = j->next;
        job_finish(j, NULL, "the server is shutting down");
        job_unref(j);
    }
    for (size_t i = 0; i < s->n_slots; i++) {
        if (s->slots[i].job) {
            job_finish(s->slots[i].job, ck_gen_result_get(s->slots[i].gen), "the server is shutting down");
            ck_gen_free(s->slots[i].gen);
            job_unref(s->slots[i].job);
        }
        ck_session_close(s->slots[i].s);
    }
    free(s->slots);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
