/* cmd_serve.c — `cake serve [MODEL] [--api ADDR]`: the OpenAI-compatible API and web UI (src/server).
 * With --topology or --cluster-key the server is the cluster's master: its sessions run the workers'
 * layers as stages (one sequence at a time, as a worker holds one sequence). Runs until SIGINT/SIGTERM. */
#include "cli/cli.h"
#include "cli/args.h"
#include "cli/cluster.h"
#include "cli/common.h"

#include "server/openai.h"
#include "server/server.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct serve_ctx {
    const char *model;
    const char *chat_template_file; /* --chat-template-file */
    ck_cli_cluster cc;
    int clustered;
    size_t max_ctx;
    ck_cluster *cl;
} serve_ctx;

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static int load(void *user, ck_engine **e, char *err, size_t errlen) {
    serve_ctx *c = user;
    const char *delay = getenv("CAKE_SERVE_LOAD_DELAY_MS"); /* tests: a model that takes a while to load */
    if (delay && atol(delay) > 0 && atol(delay) < 60000) usleep((useconds_t)atol(delay) * 1000);
    int rc = c->clustered ? ck_cli_master_open(&c->cc, c->max_ctx, e, &c->cl) : ck_cli_open("serve", c->model, 1, e);
    if (rc == 0 && c->chat_template_file && ck_cli_chat_template("serve", *e, c->chat_template_file, 1) != 0) {
        ck_cluster_close(c->cl);
        c->cl = NULL;
        ck_engine_close(*e);
        *e = NULL;
        rc = 1;
    }
    if (rc != 0) snprintf(err, errlen, "the model did not load (see above)");
    return rc ? -1 : 0;
}

static int session_open(void *user, ck_engine *e, size_t max_ctx, ck_session **s, char *err, size_t errlen) {
    serve_ctx *c = user;
    if (max_ctx > ck_engine_max_ctx(e)) max_ctx = ck_engine_max_ctx(e);
    if (ck_session_open(e, max_ctx, s, err, errlen) != 0) return -1;
    if (c->cl && ck_cli_attach(*s, c->cl, err, errlen) != 0) {
        ck_session_close(*s);
        *s = NULL;
        return -1;
    }
    return 0;
}

static char *workers_json(void *user) {
    serve_ctx *c = user;
    if (!c->cl) return NULL;
    ck_worker_stats st[64];
    size_t n = ck_cluster_stats(c->cl, st, 64);
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n && i < 64; i++) {
        cJSON *w = cJSON_CreateObject(), *l = cJSON_AddArrayToObject(w, "layers");
        cJSON_AddStringToObject(w, "name", st[i].name);
        cJSON_AddStringToObject(w, "address", st[i].host);
        cJSON_AddStringToObject(w, "backend", st[i].backend);
        cJSON_AddItemToArray(l, cJSON_CreateNumber((double)st[i].first));
        cJSON_AddItemToArray(l, cJSON_CreateNumber((double)st[i].last));
        cJSON_AddStringToObject(w, "status", st[i].up ? "up" : "down"); /* as of its last call */
        cJSON_AddNumberToObject(w, "calls", (double)st[i].calls);
        cJSON_AddNumberToObject(w, "recoveries", (double)st[i].recoveries);
        cJSON_AddItemToArray(a, w);
    }
    char *s = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return s;
}

static void on_ready(void *user, const char *address) {
    (void)user;
    fprintf(stderr, "cake serve: listening on http://%s (OpenAI API under /v1, web UI at /)\n", address);
}

/* The id clients see: ORG/NAME as given, else the directory's last component. */
static const char *model_id(const char *model) {
    if (!model) return "cake-tiny";
    if (ck_cli_looks_like_model(model) && model[0] != '/' && model[0] != '.' && strchr(model, '/') &&
        !strchr(strchr(model, '/') + 1, '/'))
        return model;
    static char real[4096];
    if (realpath(model, real)) model = real; /* ".", "..", "dir/.": the directory's own name */
    const char *end = model + strlen(model);
    while (end > model && end[-1] == '/') end--;
    const char *b = end;
    while (b > model && b[-1] != '/') b--;
    static char id[256];
    snprintf(id, sizeof id, "%.*s", (int)(end - b), b);
    return id;
}

/* The server's sampling defaults: OpenAI's, with the flags given (NaN / -1: not given) in their place, within
 * the ranges a request's own fields must keep to. 0, or -1 after saying why. */
static int sampling_defaults(double temp, double top_p, double rep, long top_k, long last_n, long max_tokens,
                             ck_oai_defaults *d) {
    ck_oai_defaults_init(d);
    if ((!isnan(temp) && !(temp >= 0 && temp <= CK_OAI_MAX_TEMPERATURE)) || (!isnan(top_p) && !(top_p > 0 && top_p <= 1)) ||
        (!isnan(rep) && !(rep > 0 && rep <= CK_OAI_MAX_REPEAT_PENALTY)) || top_k > (long)CK_OAI_MAX_TOP_K ||
        last_n > (long)CK_OAI_MAX_REPEAT_LAST_N || max_tokens == 0 || max_tokens < -1 || top_k < -1 || last_n < -1) {
        fprintf(stderr, "cake serve: --temperature is 0-2, --top-p in (0, 1], --repeat-penalty > 0, --top-k, "
                        "--repeat-last-n >= 0 and -n >= 1\n");
        return -1;
    }
    if (!isnan(temp)) d->temperature = temp;
    if (!isnan(top_p)) d->top_p = top_p;
    if (!isnan(rep)) d->repeat_penalty = rep;
    if (top_k >= 0) d->top_k = (int)top_k;
    if (last_n >= 0) d->repeat_last_n = (int)last_n;
    if (max_tokens > 0) d->max_tokens = (size_t)max_tokens;
    return 0;
}

int ck_cmd_serve(int argc, char **argv) {
    serve_ctx c = {0};
    long parallel = 4, ctx = 4096, threads = 0, max_body = 8 << 20, recover_ms = 30000, disc_s = 5, device = -1;
    int cpu = 0;
    const char *kv_type = NULL;
    ck_server_opts o = {.api = "0.0.0.0:8080"};
    /* the server's sampling defaults: set only when given (NaN / -1: OpenAI's) */
    double temp = NAN, top_p = NAN, rep = NAN;
    long top_k = -1, last_n = -1, max_tokens = -1;
    const ck_arg args[] = {
        {"model", 0, CK_ARG_STR, &c.model, "model directory, .gguf file or HF repo id (ORG/NAME[:TAG]) (or the positional)", "MODEL"},
        {"api", 0, CK_ARG_STR, &o.api, "listen address (default 0.0.0.0:8080)", "ADDR"},
        {"chat-template-file", 0, CK_ARG_STR, &c.chat_template_file, "render chats with this Jinja template instead of the model's", "FILE"},
        {"parallel", 0, CK_ARG_INT, &parallel, "sequences decoded together at most; the rest queue (default 4)", "N"},
        {"ctx", 0, CK_ARG_INT, &ctx, "context size per sequence in tokens (default 4096, at most the model's)", "N"},
        {"api-key", 0, CK_ARG_STR, &o.api_key, "require Authorization: Bearer KEY on the API", "KEY"},
        {"ui-auth", 0, CK_ARG_STR, &o.ui_auth, "HTTP basic auth for the web UI and the API", "USER:PASS"},
        {"max-body", 0, CK_ARG_INT, &max_body, "largest request body in bytes (default 8 MiB)", "BYTES"},
        {"threads", 't', CK_ARG_INT, &threads, "compute threads (default: $OMP_NUM_THREADS, else one per core)", "N"},
        CK_CLI_DEVICE_ARGS(cpu, device, kv_type),
        {"topology", 0, CK_ARG_STR, &c.cc.topology, "cluster topology (YAML): serve as its master", "FILE"},
        {"cluster-key", 0, CK_ARG_STR, &c.cc.key, "shared secret of the cluster (zero-config without --topology)", "KEY"},
        {"wire-dtype", 0, CK_ARG_STR, &c.cc.wire_dtype, "activations between nodes: f32 (default), f16, bf16", "T"},
        {"chain", 0, CK_ARG_BOOL, &c.cc.chain,
         "chain forwarding: each worker passes its output to the next, the last one back to the master (one round "
         "trip per step instead of one per worker)",
         NULL},
        {"recover-ms", 0, CK_ARG_INT, &recover_ms, "how long to wait for a lost worker (default 30000; 0 fails at once)", "MS"},
        {"discovery-timeout", 0, CK_ARG_INT, &disc_s, "zero-config: seconds to look for workers (default 5)", "S"},
        {"min-workers", 0, CK_ARG_INT, &c.cc.min_workers, "zero-config: workers to wait for (default 1)", "N"},
        {"discovery-address", 0, CK_ARG_STR, &c.cc.discovery, "zero-config: UDP address to broadcast to", "ADDR"},
        {"temperature", 0, CK_ARG_FLOAT, &temp, "temperature of requests that set none (default 1, OpenAI's; 0-2)", "T"},
        {"top-p", 0, CK_ARG_FLOAT, &top_p, "top_p of requests that set none (default 1)", "P"},
        {"top-k", 0, CK_ARG_INT, &top_k, "top_k of requests that set none (default 0: off)", "K"},
        {"repeat-penalty", 0, CK_ARG_FLOAT, &rep, "repeat_penalty of requests that set none (default 1: off)", "R"},
        {"repeat-last-n", 0, CK_ARG_INT, &last_n, "repeat_last_n of requests that set none (default 128)", "N"},
        {"max-tokens", 'n', CK_ARG_INT, &max_tokens, "max_tokens of requests that set none (default: until the context is full; text completions 16)", "N"},
    };
    const char *pos[1];
    size_t n_pos;
    int rc = ck_args_parse("serve", "[MODEL] [flags]", args, sizeof args / sizeof args[0], argc, argv, pos, 1, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (n_pos == 1 && c.model) {
        fprintf(stderr, "cake serve: MODEL given both as a flag and as an argument\n");
        return 2;
    }
    if (n_pos == 1) c.model = pos[0];
    if (parallel < 1 || parallel > 256 || ctx < 1 || max_body < 1024 || recover_ms < 0 || recover_ms > 3600000 ||
        disc_s < 0 || disc_s > 3600) {
        fprintf(stderr, "cake serve: --parallel is 1-256, --ctx >= 1, --max-body >= 1024, --recover-ms 0-3600000\n");
        return 2;
    }
    if (o.ui_auth && !strchr(o.ui_auth, ':')) {
        fprintf(stderr, "cake serve: --ui-auth takes USER:PASS\n");
        return 2;
    }
    ck_oai_defaults defaults;
    if (sampling_defaults(temp, top_p, rep, top_k, last_n, max_tokens, &defaults) != 0) return 2;
    o.defaults = &defaults;
    if (ck_cli_threads("serve", threads) != 0 || ck_cli_backend("serve", cpu, device, kv_type) != 0) return 2;
    c.clustered = c.cc.topology || c.cc.key;
    c.cc.model = c.model;
    c.cc.need_tok = 1;
    c.cc.recover_ms = (int)recover_ms;
    c.cc.stop = &stop;
    c.cc.discovery_ms = disc_s * 1000;
    c.max_ctx = (size_t)ctx;
    if (c.clustered && parallel > 1) {
        fprintf(stderr, "cake serve: as a cluster master, one sequence at a time (--parallel 1)\n");
        parallel = 1;
    }
    o.model_id = model_id(c.model);
    o.parallel = (size_t)parallel, o.max_ctx = (size_t)ctx, o.max_body = (size_t)max_body;
    o.load = load, o.session_open = session_open, o.workers_json = workers_json, o.on_ready = on_ready, o.user = &c;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    char err[1024];
    rc = ck_server_run(&o, &stop, err, sizeof err);
    ck_cluster_close(c.cl);
    if (rc != 0) {
        fprintf(stderr, "cake serve: %s\n", err);
        return 1;
    }
    return 0;
}
