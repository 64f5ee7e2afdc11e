/* cmd_run.c — `cake run [MODEL] PROMPT`: renders the prompt with the model's chat template (system
 * prompt + user message) when it has one (a template that cannot be rendered stops the run unless --raw
 * is given), else uses the raw prompt, and streams the library's generation
 * (ck_generate) to stdout until an EOS id or -n tokens. A summary of the timings goes to stderr. A failed
 * write to stdout (a full disk, a closed pipe) stops generation and fails the command. */
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cluster.h"
#include "cli/common.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct run_opts {
    const char *model, *prompt, *system;
    ck_cli_sampling smp;  /* -n and the sampling flags */
    long ctx, threads, device;
    int cpu;
    const char *kv_type;
    int raw, no_think, verbose_prompt;
    const char *chat_template_file;
} run_opts;

/* The conversation of a run as JSON messages (system prompt + user message); NULL when out of memory. */
static char *messages_json(const run_opts *o) {
    cJSON *arr = cJSON_CreateArray();
    int ok = arr != NULL;
    const char *roles[2] = {"system", "user"}, *texts[2] = {o->system, o->prompt};
    for (int i = 0; ok && i < 2; i++) {
        if (!texts[i] || !*texts[i]) continue;
        cJSON *m = cJSON_CreateObject();
        ok = m && cJSON_AddStringToObject(m, "role", roles[i]) && cJSON_AddStringToObject(m, "content", texts[i]) &&
             cJSON_AddItemToArray(arr, m);
        if (!ok) cJSON_Delete(m);
    }
    char *s = ok ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return s;
}

/* --verbose-prompt: the text the model gets and its token ids, on stderr. */
static void print_prompt(const char *text, const int32_t *ids, size_t n) {
    fprintf(stderr, "prompt (%zu tokens):\n%s\nprompt ids:", n, text);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

/* The prompt as token ids: rendered with the model's chat template unless --raw is given or the model has
 * none (a template that cannot be rendered was refused when the model was opened). */
static int prompt_ids(const ck_engine *e, const run_opts *o, int32_t **ids, size_t *n, char *err, size_t errlen) {
    if (o->raw || ck_engine_chat(e) != CK_CHAT_RENDERED) {
        if (ck_engine_encode(e, o->prompt, strlen(o->prompt), 1, ids, n, err, errlen) != 0) return -1;
        if (o->verbose_prompt) print_prompt(o->prompt, *ids, *n);
        return 0;
    }
    char *msgs = messages_json(o), *text = NULL;
    if (!msgs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = ck_engine_chat_render(e, msgs, NULL, o->no_think ? "{\"enable_thinking\": false}" : NULL, 1, &text, NULL,
                                   ids, n, err, errlen);
    if (rc == 0 && o->verbose_prompt) print_prompt(text, *ids, *n);
    free(text);
    cJSON_free(msgs);
    return rc;
}

typedef struct out_state {
    int write_errno;       /* 0, or why writing stdout failed */
} out_state;

static int write_text(void *user, const char *text, size_t len) {
    out_state *o = user;
    if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
        o->write_errno = errno ? errno : EIO;
        return 1;
    }
    return 0;
}

/* The run's numbers on stderr; the engine's device on a line of its own (the cluster's plan names each
 * part's). */
static void print_summary(const ck_engine *e, const ck_session *s, const ck_gen_result *r, int cluster) {
    ck_timing all = ck_session_timing(s);
    size_t n_decoded = r->n_gen ? r->n_gen - 1 : 0; /* forwards after the prefill */
    double pre = r->prefill_s > 0 ? r->prefill_s : 1e-9, dec = r->decode_s > 0 ? r->decode_s : 1e-9;
    char rate[64] = ""; /* no rate without a decode step: the first token comes from the prefill */
    if (n_decoded) snprintf(rate, sizeof rate, " (%.1f tok/s)", (double)n_decoded / dec);
    fprintf(stderr,
            "\nprompt: %zu tokens, prefill %.3f s (%.1f tok/s)\n"
            "generated: %zu tokens, decode %.3f s%s\n"
            "time: embedding %.3f s, layers %.3f s, output head %.3f s (prefill: %.3f / %.3f / %.3f)\n",
            r->n_prompt, r->prefill_s, (double)(r->n_prompt - r->n_reused) / pre, r->n_gen, r->decode_s, rate,
            all.embed_s, all.layers_s, all.head_s, r->prefill.embed_s, r->prefill.layers_s, r->prefill.head_s);
    if (!cluster) fprintf(stderr, "device: %s\n", ck_engine_backend(e));
}

static int generate(ck_engine *e, ck_cluster *cl, const run_opts *o) {
    char err[1024];
    int32_t *ids = NULL;
    size_t n_prompt;
    if (prompt_ids(e, o, &ids, &n_prompt, err, sizeof err) != 0) {
        fprintf(stderr, "cake run: %s\n", err);
        return 1;
    }
    size_t max_ctx = ck_engine_max_ctx(e), want = n_prompt + (size_t)o->smp.n;
    if (o->ctx > 0) max_ctx = (size_t)o->ctx;
    else if (want < max_ctx) max_ctx = want;
    ck_session *s = NULL;
    if (ck_session_open(e, max_ctx, &s, err, sizeof err) != 0 || (cl && ck_cli_attach(s, cl, err, sizeof err) != 0)) {
        fprintf(stderr, "cake run: %s\n", err);
        ck_session_close(s);
        free(ids);
        return 1;
    }
    out_state out = {0};
    ck_gen_params p;
    ck_cli_gen_params(&o->smp, &p);
    p.on_text = write_text, p.user = &out;
    ck_gen_result r;
    int rc = ck_generate(s, ids, n_prompt, &p, &r, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "\ncake run: %s\n", err);
    } else if (out.write_errno || (isatty(STDOUT_FILENO) && printf("\n") < 0) || fflush(stdout) != 0) {
        fprintf(stderr, "cake run: cannot write the output: %s\n", strerror(out.write_errno ? out.write_errno : errno));
        rc = -1;
    } else {
        if (r.finish == CK_FINISH_LENGTH && r.n_gen < (size_t)o->smp.n)
            fprintf(stderr, "\ncake run: stopped after %zu tokens: the context of %zu positions is full (--ctx)\n",
                    r.n_gen, max_ctx);
        print_summary(e, s, &r, cl != NULL);
        if (cl) ck_cli_cluster_summary(cl, r.n_gen);
    }
    ck_session_close(s);
    free(ids);
    return rc == 0 ? 0 : 1;
}

/* Opens the model (alone, or as a cluster master) and generates. Returns the exit status. */
static int run_model(const run_opts *o, const ck_cli_cluster *cc) {
    ck_engine *e;
    ck_cluster *cl = NULL;
    int rc = 0;
    if (cc->topology || cc->key) {
        ck_cli_cluster with_tok = *cc;
        with_tok.need_tok = 1;
        if ((rc = ck_cli_master_open(&with_tok, 0, &e, &cl)) != 0) return rc;
    } else if (ck_cli_open("run", o->model, 1, &e) != 0) {
        return 1;
    }
    if (rc == 0) rc = ck_cli_chat_template("run", e, o->chat_template_file, o->raw);
    if (rc == 0) rc = generate(e, cl, o);
    ck_cluster_close(cl);
    ck_engine_close(e);
    return rc;
}

/* MODEL and PROMPT from the positionals (one alone is the model when it looks like one, else the prompt).
 * 0, or 2 after a usage error. */
static int take_positionals(run_opts *o, const char **pos, size_t n_pos) {
    if (n_pos == 2) {
        o->model = o->model ? o->model : pos[0];
        o->prompt = o->prompt ? o->prompt : pos[1];
        if (o->model != pos[0] || o->prompt != pos[1]) {
            fprintf(stderr, "cake run: MODEL and PROMPT given both as flags and as arguments\n");
            return 2;
        }
    } else if (n_pos == 1) {
        if (!o->model && !o->prompt && ck_cli_looks_like_model(pos[0])) o->model = pos[0];
        else if (!o->prompt) o->prompt = pos[0];
        else if (!o->model) o->model = pos[0];
    }
    return 0;
}

/* The flags that set up this process's engines: threads, backend, KV cache type. 0, or 2 after a usage error. */
static int engine_flags(const run_opts *o) {
    return ck_cli_threads("run", o->threads) != 0 || ck_cli_backend("run", o->cpu, o->device, o->kv_type) != 0 ? 2 : 0;
}

int ck_cmd_run(int argc, char **argv) {
    long recover_ms = 30000, disc_s = 5;
    int exact = 0;
    ck_cli_cluster cc = {0};
    run_opts o = {.system = "You are a helpful AI assistant.", .device = -1};
    ck_cli_sampling_init(&o.smp);
    ck_arg args[CK_CLI_SAMPLING_ARGS + 32] = {
        {"model", 0, CK_ARG_STR, &o.model, "model directory, .gguf file or HF repo id (ORG/NAME[:TAG]) (or the first positional)", "MODEL"},
        {"prompt", 0, CK_ARG_STR, &o.prompt, "the prompt (or the last positional)", "TEXT"},
        {"system-prompt", 0, CK_ARG_STR, &o.system, "system message; empty for none (default: \"You are a helpful AI assistant.\")", "TEXT"},
        {"ctx", 0, CK_ARG_INT, &o.ctx, "context size in tokens (default: prompt + sample-len, at most the model's)", "N"},
        {"raw", 0, CK_ARG_BOOL, &o.raw, "use the prompt as is, without the chat template", NULL},
        {"no-think", 0, CK_ARG_BOOL, &o.no_think, "render the chat template with enable_thinking=false", NULL},
        {"chat-template-file", 0, CK_ARG_STR, &o.chat_template_file, "render the prompt with this Jinja chat template instead of the model's", "FILE"},
        {"verbose-prompt", 0, CK_ARG_BOOL, &o.verbose_prompt, "print the rendered prompt and its token ids to stderr", NULL},
        {"threads", 't', CK_ARG_INT, &o.threads, "compute threads (default: $OMP_NUM_THREADS, else one per core)", "N"},
        CK_CLI_DEVICE_ARGS(o.cpu, o.device, o.kv_type),
        {"exact", 0, CK_ARG_BOOL, &exact, "f32 activations in every matmul (default: bf16 weights meet activations rounded to bf16 where the CPU multiplies bf16 natively; also CAKE_EXACT=1)", NULL},
        {"topology", 0, CK_ARG_STR, &cc.topology, "cluster topology (YAML): workers, their addresses and layers", "FILE"},
        {"name", 0, CK_ARG_STR, &cc.name, "run as the worker of this name in --topology (no prompt)", "NAME"},
        {"address", 0, CK_ARG_STR, &cc.address, "the worker's listening address (default: every interface, on the port of its --topology entry; zero-config 0.0.0.0:10128)", "ADDR"},
        {"cluster-key", 0, CK_ARG_STR, &cc.key, "shared secret: authenticates and encrypts cluster traffic", "KEY"},
        {"wire-dtype", 0, CK_ARG_STR, &cc.wire_dtype, "activations between nodes: f32 (default, exact), f16, bf16", "T"},
        {"discovery-timeout", 0, CK_ARG_INT, &disc_s, "zero-config master: seconds to look for workers (default 5)", "S"},
        {"min-workers", 0, CK_ARG_INT, &cc.min_workers, "zero-config master: workers to wait for (default 1)", "N"},
        {"discovery-address", 0, CK_ARG_STR, &cc.discovery, "UDP address a worker answers discovery on (default 0.0.0.0:10127) or a master broadcasts to (default 255.255.255.255:10127; a comma-separated list works too)", "ADDR"},
        {"chain", 0, CK_ARG_BOOL, &cc.chain, "chain forwarding: each worker passes its output to the next, the last one back to the master (one round trip per step instead of one per worker)", NULL},
        {"recover-ms", 0, CK_ARG_INT, &recover_ms, "how long the master waits for a lost worker to come back and replays its state; 0 fails at once (default 30000)", "MS"},
    };
    size_t n_args = ck_cli_sampling_args(&o.smp, "sample-len", args, sizeof args / sizeof args[0]);
    if (!n_args) return 1;
    const char *pos[2];
    size_t n_pos;
    int rc = ck_args_parse("run", "[MODEL] PROMPT [flags]", args, n_args, argc, argv, pos, 2, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (exact) ck_set_exact(1);
    if (take_positionals(&o, pos, n_pos) != 0) return 2;
    cc.model = o.model;
    cc.devices = ck_cli_devices; /* a worker's layers, or the whole model here */
    if (cc.key && !cc.topology && !o.model && !o.prompt) { /* `cake run --cluster-key K`: a zero-config worker */
        if (engine_flags(&o) != 0) return 2;
        return ck_cli_zero_worker(&cc);
    }
    if (cc.name) {
        if (o.prompt && o.model) {
            fprintf(stderr, "cake run: a worker (--name) takes no prompt\n");
            return 2;
        }
        if (!o.model) cc.model = o.prompt; /* the lone positional is the model */
        if (engine_flags(&o) != 0) return 2;
        return ck_cli_worker(&cc);
    }
    if (!o.prompt) {
        fprintf(stderr, "cake run: no prompt given (see cake run --help)\n");
        return 2;
    }
    if (recover_ms < 0 || recover_ms > 3600000) {
        fprintf(stderr, "cake run: --recover-ms must be between 0 and 3600000\n");
        return 2;
    }
    cc.recover_ms = (int)recover_ms;
    if (disc_s < 0 || disc_s > 3600 || cc.min_workers < 0 || cc.min_workers > 32) {
        fprintf(stderr, "cake run: --discovery-timeout is 0-3600 s and --min-workers 0-32\n");
        return 2;
    }
    cc.discovery_ms = disc_s * 1000;
    if (o.ctx < 0) {
        fprintf(stderr, "cake run: --ctx must be >= 0\n");
        return 2;
    }
    if (ck_cli_sampling_check("run", &o.smp) != 0) return 2;
    if (engine_flags(&o) != 0) return 2;
    return run_model(&o, &cc);
}
