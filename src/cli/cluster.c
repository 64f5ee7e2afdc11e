/* cluster.c — the cluster side of `cake run`: a worker of a static topology
 * (`cake run MODEL --name W --topology T.yml --address A`), and the master's setup for
 * `cake run MODEL PROMPT --topology T.yml` (engine for the embedding, the head and the layers no worker
 * holds; workers connected as stages; per-worker timing for the summary). */
#include "cli/cluster.h"
#include "cli/cli.h"
#include "cli/common.h"

#include "cluster/topology.h"
#include "cluster/wire.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void log_line(void *user, const char *line) {
    fprintf(stderr, "%s%s\n", (const char *)user, line);
}

int ck_cli_wire_dtype(const char *s) {
    if (!s || !strcmp(s, "f32")) return CK_WIRE_F32;
    if (!strcmp(s, "f16")) return CK_WIRE_F16;
    if (!strcmp(s, "bf16")) return CK_WIRE_BF16;
    return -1;
}

int ck_cli_worker(const ck_cli_cluster *o) {
    char dir[4096], err[1024];
    ck_topology t;
    if (!o->topology || !o->address) {
        fprintf(stderr, "cake run: a worker needs --topology and --address (or --cluster-key for discovery)\n");
        return 2;
    }
    if (ck_topology_load(o->topology, &t, err, sizeof err) != 0) {
        fprintf(stderr, "cake run: %s\n", err);
        return 1;
    }
    const ck_topo_worker *tw = ck_topology_find(&t, o->name);
    int rc = 1;
    if (!tw) fprintf(stderr, "cake run: the topology %s has no worker named '%s'\n", o->topology, o->name);
    else if (ck_cli_resolve_model(o->model ? o->model : ck_cli_default_model(), dir, sizeof dir) == 0) {
        ck_worker_opts wo = {.model_dir = dir, .name = o->name, .address = o->address, .key = o->key,
                             .first = tw->first, .last = tw->last, .prefix = tw->prefix, .log = log_line,
                             .log_user = "cake worker: "};
        if ((!o->key || !*o->key) && strncmp(o->address, "127.", 4) && strncmp(o->address, "localhost:", 10) &&
            strncmp(o->address, "[::1]:", 6))
            fprintf(stderr, "cake run: warning: no --cluster-key: traffic on %s is neither authenticated nor "
                            "encrypted, and anyone who can reach it can use this worker\n", o->address);
        struct sigaction sa = {0};
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        if (ck_worker_run(&wo, &stop_flag, err, sizeof err) != 0) fprintf(stderr, "cake run: %s\n", err);
        else rc = 0;
    }
    ck_topology_free(&t);
    return rc;
}

/* Opens the master's engine: the embedding, the head and the layers the workers leave. */
static int open_master_engine(const char *dir, const ck_topology *t, ck_engine **e, char *err, size_t errlen) {
    ck_engine_opts probe = {.partial = 1, .first_layer = 0, .last_layer = -1, .embed = 1, .head = 1};
    if (ck_engine_open(dir, &probe, e, err, errlen) != 0) return -1;
    int64_t L = (int64_t)ck_engine_n_layers(*e), first, last;
    if (ck_topology_check(t, ck_engine_layer_prefix(*e), L, err, errlen) != 0 ||
        ck_cluster_local_range(t, L, &first, &last, err, errlen) != 0)
        return -1;
    if (last < first) return 0;
    ck_engine_close(*e);
    *e = NULL;
    ck_engine_opts mine = {.partial = 1, .first_layer = first, .last_layer = last, .embed = 1, .head = 1};
    return ck_engine_open(dir, &mine, e, err, errlen);
}

int ck_cli_master_open(const ck_cli_cluster *o, size_t max_ctx_hint, ck_engine **e, ck_cluster **cl) {
    char dir[4096], err[1024];
    ck_topology *t = calloc(1, sizeof *t);
    *e = NULL, *cl = NULL;
    int dtype = ck_cli_wire_dtype(o->wire_dtype);
    if (!t) return 1;
    if (dtype < 0) {
        fprintf(stderr, "cake run: --wire-dtype is f32, f16 or bf16\n");
        free(t);
        return 2;
    }
    if (ck_topology_load(o->topology, t, err, sizeof err) != 0 ||
        ck_cli_resolve_model(o->model ? o->model : ck_cli_default_model(), dir, sizeof dir) != 0 ||
        open_master_engine(dir, t, e, err, sizeof err) != 0) {
        if (err[0]) fprintf(stderr, "cake run: %s\n", err);
        ck_engine_close(*e);
        *e = NULL;
        ck_topology_free(t);
        free(t);
        return 1;
    }
    int64_t first, last;
    int has_embed, has_head;
    ck_engine_range(*e, &first, &last, &has_embed, &has_head);
    fprintf(stderr, "cluster: %s, %zu layers\n", ck_engine_arch(*e), ck_engine_n_layers(*e));
    for (size_t i = 0; i < t->n; i++)
        if (t->workers[i].last >= t->workers[i].first)
            fprintf(stderr, "  worker %-12s %-22s layers %lld-%lld\n", t->workers[i].name, t->workers[i].host,
                    (long long)t->workers[i].first, (long long)t->workers[i].last);
    if (last >= first) fprintf(stderr, "  master (this process)          layers %lld-%lld, embedding, head\n",
                               (long long)first, (long long)last);
    else fprintf(stderr, "  master (this process)          embedding, head\n");
    ck_cluster_opts co = {.model_dir = dir, .topo = t, .key = o->key, .wire_dtype = dtype,
                          .hidden = ck_engine_hidden(*e),
                          .max_ctx = max_ctx_hint ? max_ctx_hint : ck_engine_max_ctx(*e),
                          .recover_ms = o->recover_ms, .log = log_line, .log_user = "cluster: "};
    signal(SIGPIPE, SIG_IGN);
    if (ck_cluster_open(&co, cl, err, sizeof err) != 0) {
        fprintf(stderr, "cake run: %s\n", err);
        ck_engine_close(*e);
        *e = NULL;
        ck_topology_free(t);
        free(t);
        return 1;
    }
    return 0; /* t lives as long as the process: the cluster keeps pointers into it */
}

void ck_cli_cluster_summary(const ck_cluster *cl, size_t n_steps) {
    ck_worker_stats st[64];
    size_t n = ck_cluster_stats(cl, st, 64);
    double per = n_steps ? 1e3 / (double)n_steps : 0;
    for (size_t i = 0; i < n; i++)
        fprintf(stderr,
                "worker %s (%s, layers %lld-%lld): %llu calls, round trip %.2f ms/step, compute %.2f ms/step, "
                "network+codec %.2f ms/step, %.1f KiB sent, %.1f KiB received%s\n",
                st[i].name, st[i].host, (long long)st[i].first, (long long)st[i].last, (unsigned long long)st[i].calls,
                st[i].rtt_s * per, st[i].compute_s * per, (st[i].rtt_s - st[i].compute_s) * per,
                (double)st[i].bytes_sent / 1024, (double)st[i].bytes_received / 1024,
                st[i].recoveries ? " (recovered)" : "");
}

int ck_cli_attach(ck_session *s, ck_cluster *cl, char *err, size_t errlen) {
    ck_stage st[64];
    size_t n = ck_cluster_stages(cl, st, 64);
    return ck_session_set_stages(s, st, n, err, errlen);
}
