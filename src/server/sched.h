/* sched.h — continuous batching: requests (jobs) queue for one of `parallel` slots, each slot a session of
 * the engine; one scheduler thread starts a job in a free slot and steps every running job together
 * through ck_gen_step: one token of each decoding job plus chunks of the prompts still running (chunked
 * prefill), so the weights are read once per step for all of them and a long prompt does not stall the
 * others. Jobs join and leave between steps. The text a job produces accumulates
 * in the job, where the HTTP side reads it at its own pace; a job whose reader is gone is cancelled.
 * Threading: the scheduler thread alone touches sessions and generations; a job's text and state are
 * guarded by its own mutex; a job lives until both the scheduler and the submitter released it. */
#ifndef CK_SERVER_SCHED_H
#define CK_SERVER_SCHED_H

#include "cake.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ck_sched ck_sched;
typedef struct ck_job ck_job;

typedef struct ck_sched_opts {
    ck_engine *e;
    size_t parallel;           /* slots: sequences decoded together at most (>= 1) */
    size_t max_ctx;            /* positions per slot (0: the model's maximum) */
    /* Opens a slot's session (NULL: ck_session_open); a cluster master attaches its workers here. */
    int (*session_open)(void *user, ck_engine *e, size_t max_ctx, ck_session **s, char *err, size_t errlen);
    void *user;
} ck_sched_opts;

int ck_sched_start(const ck_sched_opts *o, ck_sched **out, char *err, size_t errlen);
/* Cancels every job, stops the thread and closes the sessions. */
void ck_sched_stop(ck_sched *s);

/* Queues a generation of prompt[0..n) (copied) with p (copied, stop strings included; on_text, user and
 * cancel are the scheduler's). Returns the job, referenced once for the caller, or NULL with why. */
ck_job *ck_sched_submit(ck_sched *s, const int32_t *prompt, size_t n, const ck_gen_params *p, char *err,
                        size_t errlen);

/* Waits up to timeout_ms until the job holds more than `have` bytes of text or is done. Returns 1 when
 * there is something new (text or the end), 0 on timeout. */
int ck_job_wait(ck_job *j, size_t have, int timeout_ms);
/* Copies text [from, from + cap) into buf; returns the bytes copied. */
size_t ck_job_read(ck_job *j, size_t from, char *buf, size_t cap);
/* Bytes of text so far. */
size_t ck_job_len(ck_job *j);
typedef struct ck_job_status {
    int done;
    ck_finish finish;
    size_t n_prompt, n_gen;
    double decode_s;
    char error[256];           /* "" unless the generation failed */
} ck_job_status;
void ck_job_status_get(ck_job *j, ck_job_status *st);
/* Stops the job's generation at the next step (the reader is gone). */
void ck_job_cancel(ck_job *j);
void ck_job_release(ck_job *j);

/* Jobs queued and running, for /health. */
void ck_sched_load(ck_sched *s, size_t *queued, size_t *running);

#endif
