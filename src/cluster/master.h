/* master.h — the master's side of a static cluster: one connection per worker (consecutive layers on a
 * worker cost one round trip per step), each worker a ck_stage of the master's session, so the library's
 * generation loop runs the whole model unchanged. A worker that dies or stalls is reported within
 * CK_REPLY_MS naming it and its address; with recovery on, the master reconnects (waiting up to
 * recover_ms for the worker to come back) and rebuilds the worker's state by replaying the hidden states
 * it sent (kept per worker, with the call sizes, so the rebuilt caches are the ones it lost), then
 * finishes the step. A chain recovers as a whole: every worker connected and linked again, and the inputs
 * the chain was sent replayed through it. */
#ifndef CK_CLUSTER_MASTER_H
#define CK_CLUSTER_MASTER_H

#include "cake.h"
#include "cluster/topology.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ck_cluster ck_cluster;

typedef struct ck_cluster_opts {
    const char *model_dir;     /* for the model identity (config.json) */
    const ck_topology *topo;
    const char *key;           /* cluster key, or NULL for plaintext */
    int wire_dtype;            /* CK_WIRE_F32 (default, bit-identical to one process), F16 or BF16 */
    size_t hidden, max_ctx;    /* the model's hidden size; positions a session may hold */
    int recover_ms;            /* 0: fail on a lost worker; else how long to wait for it to come back */
    int push;                  /* zero-config: push each worker the weights of its layers before HELLO */
    /* ranges the master runs in this process besides its session's own engine (from
     * ck_cluster_local_ranges): each gets an engine and a session here, and a stage */
    const int64_t *local_first, *local_last;
    size_t n_local;
    int chain;                 /* chain forwarding: each worker sends its output on to the next one and the
                                  last back to the master (one stage for all workers) */
    const char *layer_prefix;  /* for the push: "model.layers" */
    void (*log)(void *user, const char *line); /* progress and recovery notes (may be NULL) */
    void *log_user;
    const volatile sig_atomic_t *stop; /* set when the process is stopping: a lost worker is not waited for
                                          (may be NULL) */
} ck_cluster_opts;

/* The ranges of layers no worker holds (the master runs them), in layer order: returns how many, filling
 * first[i], last[i] for i < cap. */
size_t ck_cluster_local_ranges(const ck_topology *t, int64_t n_layers, int64_t *first, int64_t *last, size_t cap);

/* Connects to every worker of the topology that holds layers, with the handshake and HELLO. The
 * cluster keeps its own copy of the topology; o->model_dir and o->key must outlive it. */
int ck_cluster_open(const ck_cluster_opts *o, ck_cluster **out, char *err, size_t errlen);
/* The workers as stages (layer order), for ck_session_set_stages. Returns how many. */
size_t ck_cluster_stages(ck_cluster *c, ck_stage *out, size_t cap);

typedef struct ck_worker_stats {
    const char *name, *host;
    char backend[32];          /* what the worker runs its layers on, as its HELLO_OK said ("" before) */
    int up;                    /* 1 while connected; 0 once a call, or reconnecting to it, failed */
    int64_t first, last;
    uint64_t calls, rows, bytes_sent, bytes_received, recoveries;
    double rtt_s;              /* wall time from sending a FORWARD to its reply, summed */
    double compute_s;          /* the worker's own time in its layers, summed */
} ck_worker_stats;
/* The workers' figures as of their last call; safe from any thread while the session runs. */
size_t ck_cluster_stats(ck_cluster *c, ck_worker_stats *out, size_t cap);

/* Says GOODBYE to every worker and closes. */
void ck_cluster_close(ck_cluster *c);

#endif
