/* cluster.c — the cluster side of `cake run`: a worker of a static topology
 * (`cake run MODEL --name W --topology T.yml --address A`), and the master's setup for
 * `cake run MODEL PROMPT --topology T.yml` (engine for the embedding, the head and the layers no worker
 * holds; workers connected as stages; per-worker timing for the summary). */
#include "cli/cluster.h"
#include "cli/cli.h"
#include "cli/common.h"

#include "base/err.h"
#include "base/file.h"
#include "cluster/assign.h"
#include "cluster/discovery.h"
#include "cluster/topology.h"
#include "cluster/wire.h"
#include "format/gguf_model.h"
#include "hub/paths.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <math.h>
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

static void trap_signals(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* The port of "host:port". */
static int port_of(const char *addr) {
    const char *c = strrchr(addr, ':');
    long p = c ? strtol(c + 1, NULL, 10) : 0;
    return p > 0 && p < 65536 ? (int)p : 0;
}

/* A worker closes a master connection silent this long: $CAKE_WORKER_IDLE_MS, else 10 minutes (0). */
static int idle_ms(void) {
    const char *s = getenv("CAKE_WORKER_IDLE_MS");
    long v = s ? strtol(s, NULL, 10) : 0;
    return v > 0 && v <= 86400000 ? (int)v : 0;
}

int ck_cli_zero_worker(const ck_cli_cluster *o) {
    char cache[4096], err[1024], host[64] = "worker", tag[9];
    uint8_t hash[CK_DISC_HASH_BYTES];
    const char *addr = o->address ? o->address : "0.0.0.0:10128";
    if (!port_of(addr)) {
        fprintf(stderr, "cake run: --address %s has no port\n", addr);
        return 2;
    }
    if (ck_cake_cache_dir(cache, sizeof cache, err, sizeof err) != 0 || ck_disc_key_hash(o->key, hash) != 0) {
        fprintf(stderr, "cake run: %s\n", err);
        return 1;
    }
    for (int i = 0; i < 4; i++) snprintf(tag + 2 * i, 3, "%02x", hash[i]);
    gethostname(host, sizeof host - 1);
    ck_devices_info dev; /* what it will run layers on: its --devices, a GPU, or the CPU */
    if (ck_devices_info_get(o->devices, &dev, err, sizeof err) != 0) {
        fprintf(stderr, "cake run: %s\n", err);
        return 1;
    }
    ck_disc_info me = {.tcp_port = (uint16_t)port_of(addr), .threads = (uint32_t)ck_set_threads(0, NULL, 0),
                       .tflops = (float)(dev.gpu_tflops + (dev.cpu ? ck_disc_estimate_tflops() : 0)),
                       .mem_bytes = dev.mem_bytes};
    snprintf(me.name, sizeof me.name, "%s", o->name ? o->name : host);
    snprintf(me.backend, sizeof me.backend, "%.*s", CK_DISC_STR_MAX, dev.backend);
    ck_disc_server *ds;
    const char *disc = o->discovery ? o->discovery : "0.0.0.0:10127";
    if (ck_disc_serve_start(o->key, &me, disc, &ds, err, sizeof err) != 0) {
        fprintf(stderr, "cake run: discovery on %s: %s\n", disc, err);
        return 1;
    }
    fprintf(stderr, "cake worker: %s answers discovery on %s (udp): %s%s%s, %.1f GB, %.2f TFLOPS\n", me.name, disc,
            me.backend, dev.gpus[0] ? " " : "", dev.gpus, (double)me.mem_bytes * 1e-9, (double)me.tflops);
    ck_worker_opts wo = {.name = me.name, .address = addr, .key = o->key, .cache_root = cache, .cluster_tag = tag,
                         .devices = o->devices, .idle_ms = idle_ms(), .log = log_line, .log_user = "cake worker: "};
    trap_signals();
    int rc = ck_worker_run(&wo, &stop_flag, err, sizeof err);
    ck_disc_serve_stop(ds);
    if (rc != 0) fprintf(stderr, "cake run: %s\n", err);
    return rc == 0 ? 0 : 1;
}

int ck_cli_worker(const ck_cli_cluster *o) {
    char dir[4096], err[1024];
    ck_topology t;
    if (!o->topology) {
        fprintf(stderr, "cake run: a worker needs --topology (or --cluster-key for discovery)\n");
        return 2;
    }
    if (ck_topology_load(o->topology, &t, err, sizeof err) != 0) {
        fprintf(stderr, "cake run: %s\n", err);
        return 1;
    }
    const ck_topo_worker *tw = ck_topology_find(&t, o->name);
    int rc = 1;
    char any[64];
    const char *address = o->address;
    if (tw && !address) { /* every interface, on the port the topology gives this worker */
        const char *colon = strrchr(tw->host, ':');
        snprintf(any, sizeof any, "0.0.0.0:%s", colon ? colon + 1 : "10128");
        address = any;
    }
    if (!tw) fprintf(stderr, "cake run: the topology %s has no worker named '%s'\n", o->topology, o->name);
    else if (tw->last < tw->first)
        fprintf(stderr, "cake run: the topology %s gives worker '%s' no layers: nothing to serve\n", o->topology,
                o->name);
    else if (ck_cli_resolve_model(o->model ? o->model : ck_cli_default_model(), dir, sizeof dir) == 0) {
        ck_worker_opts wo = {.model_dir = dir, .name = o->name, .address = address, .key = o->key,
                             .first = tw->first, .last = tw->last, .prefix = tw->prefix, .devices = o->devices,
                             .idle_ms = idle_ms(), .log = log_line, .log_user = "cake worker: "};
        if ((!o->key || !*o->key) && strncmp(address, "127.", 4) && strncmp(address, "localhost:", 10) &&
            strncmp(address, "[::1]:", 6))
            fprintf(stderr, "cake run: warning: no --cluster-key: traffic on %s is neither authenticated nor "
                            "encrypted, and anyone who can reach it can use this worker\n", address);
        trap_signals();
        if (ck_worker_run(&wo, &stop_flag, err, sizeof err) != 0) fprintf(stderr, "cake run: %s\n", err);
        else rc = 0;
    }
    ck_topology_free(&t);
    return rc;
}

#define MAX_LOCAL 8

/* Opens the master's engine: the embedding, the head and the last range of layers the workers leave; the
 * other ranges they leave (*n_local of them) go to first/last, for the cluster to run as local stages.
 * topo_file: the topology's file (named in errors), or NULL when discovery made it. */
static int open_master_engine(const char *dir, const ck_topology *t, const char *topo_file, ck_engine **e,
                              int64_t *first, int64_t *last, size_t *n_local, char *err, size_t errlen) {
    ck_engine_opts probe = {.partial = 1, .first_layer = 0, .last_layer = -1, .embed = 1, .head = 1};
    *n_local = 0;
    if (ck_engine_open(dir, &probe, e, err, errlen) != 0) return -1;
    int64_t L = (int64_t)ck_engine_n_layers(*e);
    if (ck_topology_check(t, ck_engine_layer_prefix(*e), L, err, errlen) != 0) {
        if (topo_file) { /* the file the user wrote is named */
            char why[1024];
            snprintf(why, sizeof why, "%s", err);
            ck_err(err, errlen, "%s: %s", topo_file, why);
        }
        return -1;
    }
    size_t n = ck_cluster_local_ranges(t, L, first, last, MAX_LOCAL + 1);
    if (n > MAX_LOCAL + 1) return ck_err(err, errlen, "the workers leave the master %zu separate ranges", n);
    if (n == 0) return 0;
    *n_local = n - 1;
    ck_engine_close(*e);
    *e = NULL;
    ck_engine_opts mine = {.partial = 1, .first_layer = first[n - 1], .last_layer = last[n - 1], .embed = 1, .head = 1};
    return ck_engine_open(dir, &mine, e, err, errlen);
}

/* Bytes of the checkpoint's *.safetensors files (or its GGUF file) per layer (an upper bound: embedding and
 * head included). */
static uint64_t layer_bytes(const char *dir, size_t n_layers) {
    uint64_t total = 0;
    char gguf[4096];
    struct stat gs;
    if (ck_gguf_locate(dir, gguf, sizeof gguf, NULL, 0) == 1 && stat(gguf, &gs) == 0) /* a GGUF file */
        return n_layers ? (uint64_t)gs.st_size / n_layers : (uint64_t)gs.st_size;
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));) {
        size_t n = strlen(de->d_name);
        char path[4096];
        struct stat st;
        if (n > 12 && !strcmp(de->d_name + n - 12, ".safetensors") &&
            ck_path_join(path, sizeof path, dir, de->d_name, NULL, 0) == 0 && stat(path, &st) == 0)
            total += (uint64_t)st.st_size;
    }
    if (d) closedir(d);
    return n_layers ? total / n_layers : total;
}

/* Name order, then address order: workers that share a name (the host name by default) keep their
 * places from one run to the next. */
static int cmp_peer(const void *a, const void *b) {
    const ck_disc_peer *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->host, y->host);
}

/* A worker's capability (its measured TFLOPS, else its threads) rounded to half powers of two, so that
 * measurement noise does not move layers (and force a new push) from one run to the next. */
static double capability(double tflops, double threads) {
    double v = tflops > 0 ? tflops : threads * 0.01;
    return v > 0 ? exp2(round(2 * log2(v)) / 2) : 1;
}

/* Zero-config: discovers the workers holding the key and places the layers on them, in name order (the
 * same workers get the same layers every run, so cached weights stay valid) (topology in t). */
static int discover(const ck_cli_cluster *o, const char *dir, ck_topology *t, char *err, size_t errlen) {
    ck_disc_peer peers[32];
    size_t n = 0;
    long want = o->min_workers > 0 ? o->min_workers : 1;
    fprintf(stderr, "cluster: discovering workers (%s, up to %ld ms)\n", o->discovery ? o->discovery : "broadcast",
            o->discovery_ms);
    if (ck_disc_find(o->key, o->discovery, (int)o->discovery_ms, (size_t)want, peers, 32, &n, err, errlen) != 0)
        return -1;
    if (n < (size_t)want) return ck_err(err, errlen, "found %zu worker(s) with this cluster key, need %ld", n, want);
    ck_engine *probe;
    ck_engine_opts po = {.partial = 1, .first_layer = 0, .last_layer = -1, .embed = 1, .head = 1};
    if (ck_engine_open(dir, &po, &probe, err, errlen) != 0) return -1;
    int64_t L = (int64_t)ck_engine_n_layers(probe), first[32], last[32], mfirst;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s", ck_engine_layer_prefix(probe));
    ck_engine_close(probe);
    qsort(peers, n, sizeof *peers, cmp_peer);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  found %-12s %-22s %s, %.1f GB, %u threads, %.2f TFLOPS\n", peers[i].name, peers[i].host,
                peers[i].backend, (double)peers[i].mem_bytes * 1e-9, peers[i].threads, (double)peers[i].tflops);
    ck_assign_node nodes[32], master = {0, 0};
    double per_thread = 0;
    size_t n_cpu = 0;
    for (size_t i = 0; i < n; i++) {
        nodes[i] = (ck_assign_node){capability(peers[i].tflops, peers[i].threads), peers[i].mem_bytes};
        if (strstr(peers[i].backend, "cuda")) continue; /* CPU workers: "cpu", "cpu+cpu", ... */
        per_thread += nodes[i].weight / (peers[i].threads ? peers[i].threads : 1);
        n_cpu++;
    }
    /* The master on a GPU weighs that GPU's peak (as a GPU worker announces it). On the CPU it counts as an
     * average CPU worker with its thread count: its own speed measured now would not compare fairly with
     * the workers' (measured when they started, under other loads), and the placement must not move
     * between runs; only without CPU workers does it measure itself. */
    ck_devices_info mine;
    if (ck_devices_info_get(NULL, &mine, err, errlen) != 0) return -1;
    int threads = ck_set_threads(0, NULL, 0);
    if (!mine.cpu) master.weight = capability(mine.gpu_tflops, threads);
    else if (n_cpu) master.weight = per_thread / (double)n_cpu * threads;
    else master.weight = capability(ck_disc_estimate_tflops(), threads);
    master.mem_bytes = mine.mem_bytes;
    if (ck_assign_layers(nodes, n, &master, L, layer_bytes(dir, (size_t)L), first, last, &mfirst, err, errlen) != 0)
        return -1;
    t->workers = calloc(n, sizeof *t->workers);
    if (!t->workers) return ck_err(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        ck_topo_worker *w = &t->workers[t->n++];
        w->name = strdup(peers[i].name);
        w->host = strdup(peers[i].host);
        w->prefix = strdup(prefix);
        w->first = first[i], w->last = last[i];
        if (!w->name || !w->host || !w->prefix) return ck_err(err, errlen, "out of memory");
    }
    return 0;
}

int ck_cli_master_open(const ck_cli_cluster *o, size_t max_ctx_hint, ck_engine **e, ck_cluster **cl) {
    char dir[4096], err[1024];
    ck_topology *t = calloc(1, sizeof *t);
    *e = NULL, *cl = NULL;
    int dtype = ck_cli_wire_dtype(o->wire_dtype);
    int64_t lfirst[MAX_LOCAL + 1], llast[MAX_LOCAL + 1];
    size_t n_local = 0;
    if (!t) return 1;
    if (dtype < 0 || ck_cli_devices) {
        fprintf(stderr, "cake run: %s\n", dtype < 0 ? "--wire-dtype is f32, f16 or bf16"
                                                   : "--devices is for one process or a worker (--name), not a master");
        free(t);
        return 2;
    }
    err[0] = 0;
    if (ck_cli_resolve_model(o->model ? o->model : ck_cli_default_model(), dir, sizeof dir) != 0 ||
        (o->topology ? ck_topology_load(o->topology, t, err, sizeof err) : discover(o, dir, t, err, sizeof err)) != 0 ||
        open_master_engine(dir, t, o->topology, e, lfirst, llast, &n_local, err, sizeof err) != 0) {
        if (err[0]) fprintf(stderr, "cake run: %s\n", err);
        ck_engine_close(*e);
        *e = NULL;
        ck_topology_free(t);
        free(t);
        return 1;
    }
    size_t holding = 0;
    for (size_t i = 0; i < t->n; i++) holding += t->workers[i].last >= t->workers[i].first;
    if (!holding || (o->need_tok && !ck_engine_has_tokenizer(*e))) {
        fprintf(stderr, "cake run: %s\n", holding ? "the model has no tokenizer.json"
                                                  : "the topology gives none of its workers a layer: nothing to run on them");
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
    const char *on = ck_engine_backend(*e);
    if (last >= first) fprintf(stderr, "  master (this process)          layers %lld-%lld, embedding, head on %s\n",
                               (long long)first, (long long)last, on);
    else fprintf(stderr, "  master (this process)          embedding, head on %s\n", on);
    for (size_t i = 0; i < n_local; i++)
        fprintf(stderr, "  master (this process)          layers %lld-%lld on %s\n", (long long)lfirst[i],
                (long long)llast[i], on);
    ck_cluster_opts co = {.model_dir = dir, .topo = t, .key = o->key, .wire_dtype = dtype,
                          .hidden = ck_engine_hidden(*e),
                          .max_ctx = max_ctx_hint && max_ctx_hint < ck_engine_max_ctx(*e) ? max_ctx_hint
                                                                                          : ck_engine_max_ctx(*e),
                          .recover_ms = o->recover_ms, .log = log_line, .log_user = "cluster: ",
                          .push = !o->topology, .layer_prefix = ck_engine_layer_prefix(*e), .chain = o->chain,
                          .local_first = lfirst, .local_last = llast, .n_local = n_local, .stop = o->stop};
    signal(SIGPIPE, SIG_IGN);
    if (ck_cluster_open(&co, cl, err, sizeof err) != 0) {
        fprintf(stderr, "cake run: %s\n", err);
        ck_engine_close(*e);
        *e = NULL;
        ck_topology_free(t);
        free(t);
        return 1;
    }
    ck_topology_free(t);
    free(t);
    return 0;
}

void ck_cli_cluster_summary(ck_cluster *cl, size_t n_steps) {
    ck_worker_stats st[64];
    size_t n = ck_cluster_stats(cl, st, 64);
    double per = n_steps ? 1e3 / (double)n_steps : 1e3; /* no steps: totals */
    const char *unit = n_steps ? "ms/step" : "ms in all";
    for (size_t i = 0; i < n; i++)
        fprintf(stderr,
                "worker %s (%s, layers %lld-%lld): %llu calls, round trip %.2f %s, compute %.2f %s, "
                "network+codec %.2f %s, %.1f KiB sent, %.1f KiB received%s\n",
                st[i].name, st[i].host, (long long)st[i].first, (long long)st[i].last, (unsigned long long)st[i].calls,
                st[i].rtt_s * per, unit, st[i].compute_s * per, unit, (st[i].rtt_s - st[i].compute_s) * per, unit,
                (double)st[i].bytes_sent / 1024, (double)st[i].bytes_received / 1024,
                st[i].recoveries ? " (recovered)" : "");
}

int ck_cli_attach(ck_session *s, ck_cluster *cl, char *err, size_t errlen) {
    ck_stage st[64];
    size_t n = ck_cluster_stages(cl, st, 64);
    return ck_session_set_stages(s, st, n, err, errlen);
}
