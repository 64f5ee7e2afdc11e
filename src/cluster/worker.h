/* worker.h — a cluster worker: an engine opened for its layer range, listening for masters. Each
 * connection gets a thread, its own sessions (KV caches and recurrent state of the worker's layers), and
 * is only ever able to run those layers: HELLO must name this model and exactly this range, and every
 * FORWARD is bounded by the agreed hidden size, rows and context before anything is read into memory.
 * A misbehaving master (garbage, oversized frames, wrong key) loses its connection; the worker goes on. */
#ifndef CK_CLUSTER_WORKER_H
#define CK_CLUSTER_WORKER_H

#include "cake.h"

#include <stddef.h>
#include <stdint.h>


typedef struct ck_worker_opts {
    const char *model_dir;   /* the checkpoint (or a directory holding the shards of this range); NULL for
                                a zero-config worker, whose master assigns the layers and pushes their
                                weights into cache_root before serving them */
    const char *cache_root;  /* zero-config: cake's worker cache */
    const char *cluster_tag; /* zero-config: names the cluster in the cache (a hash of the key) */
    const char *name;        /* as the topology names this worker */
    const char *address;     /* "0.0.0.0:10128" */
    const char *key;         /* cluster key, or NULL for plaintext */
    int64_t first, last;     /* the layers this worker runs */
    const char *prefix;      /* the topology's layer prefix, checked against the checkpoint's (or NULL) */
    const char *devices;     /* the devices the range is spread over, in layer order: GPU indices or cpu,
                                e.g. "0,1" (NULL: one engine on the process default backend) */
    int idle_ms;             /* a connection silent this long is closed (0: 10 minutes) */
    /* progress and per-connection errors, one line each (may be NULL) */
    void (*log)(void *user, const char *line);
    void *log_user;
} ck_worker_opts;

/* Opens the range (static), listens, and serves masters until *stop becomes nonzero (checked twice a
 * second).
 * Returns 0 after a stop, or -1 with err when the model cannot be opened or the address not bound. */
int ck_worker_run(const ck_worker_opts *o, const volatile int *stop, char *err, size_t errlen);

#endif
