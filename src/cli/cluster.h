/* cluster.h (cli) — `cake run` as a cluster worker or master (see cluster.c). */
#ifndef CK_CLI_CLUSTER_H
#define CK_CLI_CLUSTER_H

#include "cake.h"
#include "cluster/master.h"
#include "cluster/worker.h"

typedef struct ck_cli_cluster {
    const char *model, *name, *topology, *address, *key, *wire_dtype;
    const char *discovery;     /* UDP address: where a worker answers / a master broadcasts */
    const char *devices;       /* a worker: the devices its layers are spread over (--devices), or NULL */
    int recover_ms, chain;
    long discovery_ms, min_workers;
    int need_tok;              /* a master that encodes text: a model without a tokenizer is refused before
                                  any weights are pushed */
    const volatile sig_atomic_t *stop; /* a master: set when the process is stopping (then a lost worker is
                                          not waited for); may be NULL */
} ck_cli_cluster;

/* A zero-config worker (`cake run --cluster-key K [--name N] [--address A]`): answers discovery, takes
 * the layers and weights a master pushes, serves them. Runs until SIGINT/SIGTERM. */
int ck_cli_zero_worker(const ck_cli_cluster *o);

/* Runs a worker until SIGINT/SIGTERM; returns the exit status. */
int ck_cli_worker(const ck_cli_cluster *o);
/* Opens the master's engine and connects the workers: those of o->topology, or without one the workers
 * discovered with o->key (layers assigned by capability and memory, weights pushed). Returns 0, or an
 * exit status after printing why. max_ctx_hint: the context the master's sessions use (0: the model's;
 * more than the model's is cut to it, as a single process's sessions are). */
int ck_cli_master_open(const ck_cli_cluster *o, size_t max_ctx_hint, ck_engine **e, ck_cluster **cl);
/* Runs the workers' layers as stages of s. */
int ck_cli_attach(ck_session *s, ck_cluster *cl, char *err, size_t errlen);
/* Per-worker round trip, compute and network time per step, on stderr. */
void ck_cli_cluster_summary(ck_cluster *cl, size_t n_steps);
/* CK_WIRE_* for "f32"/"f16"/"bf16" (NULL: f32), -1 otherwise. */
int ck_cli_wire_dtype(const char *s);

#endif
