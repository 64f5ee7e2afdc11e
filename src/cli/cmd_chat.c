/* cmd_chat.c — `cake chat [MODEL]` (the engine in this process) and `cake chat --server URL` (any
 * OpenAI-compatible server; `--server` alone means http://localhost:8080): parses the flags (the sampling
 * flags are `cake run`'s, with -n named --max-tokens; a server gets --top-k, --repeat-penalty,
 * --repeat-last-n and --seed only when they are given), opens the backend and runs the terminal UI
 * (src/tui). Exit status: 0 after the user quits, 1 when the model or the server cannot be opened or there
 * is no terminal, 2 on a usage error. */
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "server/openai.h"
#include "tui/tui.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SERVER "http://localhost:8080"

typedef struct chat_opts {
    const char *model, *server, *api_key, *system, *chat_template_file, *kv_type;
    long threads, device;
    int cpu;
    ck_cli_sampling smp;
    int has_top_k, has_penalty, has_last_n, has_seed; /* given on the command line */
} chat_opts;

/* The flags sent to a server only when given, and their help there. */
static const struct {
    const char *name, *help;
} server_default_flags[] = {
    {"top-k", "sample among the K most likely tokens (default off; with --server, the server's unless given)"},
    {"repeat-penalty", "penalty for repeated tokens; 1 = off (default 1.1, 1 with --temperature 0; with --server, the "
                       "server's unless given)"},
    {"repeat-last-n", "tokens the repeat penalty looks back at (default 128; with --server, the server's unless given)"},
    {"seed", "random seed (default 299792458; with --server, the server's unless given)"},
};

/* The index of the flag `name` in args[0..n). */
static size_t arg_index(const ck_arg *args, size_t n, const char *name) {
    size_t i = 0;
    while (i < n && strcmp(args[i].name, name)) i++;
    return i;
}

/* The name shown for a local model: its last path component. */
static void model_name(const char *model, char *out, size_t cap) {
    const char *m = model ? model : ck_cli_default_model();
    size_t n = strlen(m);
    while (n > 1 && m[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && m[b - 1] != '/') b--;
    snprintf(out, cap, "%.*s", (int)(n - b), m + b);
}

/* The ranges a chat needs beyond cake run's checks: a reply of at least one token, and with --server the
 * ranges cake serve accepts (server/openai.h; OpenAI's are no wider), since every turn would fail on them.
 * Returns 0, or 2 after printing why. */
static int check_ranges(const chat_opts *o) {
    const ck_cli_sampling *s = &o->smp;
    char why[160] = "";
    if (s->n < 1 || s->n > CK_OAI_MAX_MAX_TOKENS)
        snprintf(why, sizeof why, "-n/--max-tokens must be between 1 and %.0f", CK_OAI_MAX_MAX_TOKENS);
    else if (o->server && s->temperature > CK_OAI_MAX_TEMPERATURE)
        snprintf(why, sizeof why, "--temperature must be at most %g with --server", CK_OAI_MAX_TEMPERATURE);
    else if (o->server && o->has_top_k && s->top_k > CK_OAI_MAX_TOP_K)
        snprintf(why, sizeof why, "--top-k must be at most %.0f with --server", CK_OAI_MAX_TOP_K);
    else if (o->server && o->has_penalty && s->penalty > CK_OAI_MAX_REPEAT_PENALTY)
        snprintf(why, sizeof why, "--repeat-penalty must be at most %.0f with --server", CK_OAI_MAX_REPEAT_PENALTY);
    else if (o->server && o->has_seed && s->seed > (uint64_t)CK_OAI_MAX_SEED)
        snprintf(why, sizeof why, "--seed must be at most %.0f with --server (the API's seeds are signed 64-bit)",
                 CK_OAI_MAX_SEED);
    if (!why[0]) return 0;
    fprintf(stderr, "cake chat: %s\n", why);
    return 2;
}

static int open_backend(const chat_opts *o, ck_engine **e, ck_chat_backend *b) {
    char err[1024];
    if (o->server) {
        ck_chat_remote_opts ro = {o->server, o->api_key, {0}};
        ro.p = (ck_req_params){NULL, o->smp.temperature, o->smp.top_p, o->smp.n, o->has_top_k, o->has_penalty, o->has_last_n,
                               o->has_seed, o->smp.top_k, o->smp.last_n, o->smp.penalty, o->smp.seed};
        if (ck_chat_remote_open(&ro, b, err, sizeof err) == 0) return 0;
        fprintf(stderr, "cake chat: %s\n", err);
        return 1;
    }
    if (ck_cli_threads("chat", o->threads) != 0 || ck_cli_backend("chat", o->cpu, o->device, o->kv_type) != 0) return 2;
    if (ck_cli_open("chat", o->model, 1, e) != 0) return 1;
    if (ck_cli_chat_template("chat", *e, o->chat_template_file, 0) != 0) { /* an unrenderable template stops */
        ck_engine_close(*e);
        *e = NULL;
        return 1;
    }
    ck_gen_params p;
    ck_cli_gen_params(&o->smp, &p);
    if (ck_chat_local_open(*e, &p, b, err, sizeof err) != 0) {
        fprintf(stderr, "cake chat: %s\n", err);
        ck_engine_close(*e);
        return 1;
    }
    model_name(o->model, b->name, sizeof b->name);
    return 0;
}

static int chat(const chat_opts *o) {
    ck_engine *e = NULL;
    ck_chat_backend b;
    int rc = open_backend(o, &e, &b);
    if (rc != 0) return rc;
    ck_tui_opts to = {o->system};
    char err[1024];
    rc = ck_tui_run(&b, &to, err, sizeof err);
    b.close(b.ctx);
    ck_engine_close(e);
    if (rc != 0) {
        fprintf(stderr, "cake chat: %s\n", err);
        return 1;
    }
    return 0;
}

/* argv with the default URL after a `--server` that has no value. *owned is malloc'd when rewritten. */
static char **default_server(int *argc, char **argv, char ***owned) {
    *owned = NULL;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--server") || (i + 1 < *argc && argv[i + 1][0] != '-')) continue;
        char **v = malloc(((size_t)*argc + 2) * sizeof *v);
        if (!v) return argv;
        memcpy(v, argv, (size_t)(i + 1) * sizeof *v);
        v[i + 1] = (char *)DEFAULT_SERVER;
        memcpy(v + i + 2, argv + i + 1, (size_t)(*argc - i - 1) * sizeof *v);
        (*argc)++;
        v[*argc] = NULL;
        *owned = v;
        return v;
    }
    return argv;
}

int ck_cmd_chat(int argc, char **argv) {
    chat_opts o = {.device = -1};
    ck_cli_sampling_init(&o.smp);
    o.api_key = getenv("CAKE_API_KEY");
    if (!o.api_key || !*o.api_key) o.api_key = getenv("OPENAI_API_KEY");
    ck_arg args[CK_CLI_SAMPLING_ARGS + 24] = {
        {"model", 0, CK_ARG_STR, &o.model, "model directory or HF repo id (or the positional; default: the bundled model)", "MODEL"},
        {"server", 0, CK_ARG_STR, &o.server, "talk to an OpenAI-compatible server instead (alone: " DEFAULT_SERVER ")", "URL"},
        {"api-key", 0, CK_ARG_STR, &o.api_key, "the server's API key, sent as a Bearer token (default: $CAKE_API_KEY, else $OPENAI_API_KEY)", "KEY"},
        {"system-prompt", 0, CK_ARG_STR, &o.system, "system message of the conversation (default: none)", "TEXT"},
        {"chat-template-file", 0, CK_ARG_STR, &o.chat_template_file, "render the conversation with this Jinja chat template instead of the model's", "FILE"},
        {"threads", 't', CK_ARG_INT, &o.threads, "compute threads (default: $OMP_NUM_THREADS, else one per core)", "N"},
        CK_CLI_DEVICE_ARGS(o.cpu, o.device, o.kv_type),
    };
    size_t n_args = ck_cli_sampling_args(&o.smp, "max-tokens", args, sizeof args / sizeof args[0]);
    if (!n_args) return 1;
    for (size_t i = 0; i < sizeof server_default_flags / sizeof server_default_flags[0]; i++)
        args[arg_index(args, n_args, server_default_flags[i].name)].help = server_default_flags[i].help;
    char **owned;
    argv = default_server(&argc, argv, &owned);
    const char *pos[1];
    size_t n_pos;
    unsigned char seen[sizeof args / sizeof args[0]] = {0};
    int rc = ck_args_parse_seen("chat", "[MODEL] | --server [URL]  [flags]", args, n_args, argc, argv, pos, 1, &n_pos,
                                seen);
    free(owned);
    if (rc) return rc == 1 ? 0 : 2;
    o.has_top_k = seen[arg_index(args, n_args, "top-k")], o.has_penalty = seen[arg_index(args, n_args, "repeat-penalty")];
    o.has_last_n = seen[arg_index(args, n_args, "repeat-last-n")], o.has_seed = seen[arg_index(args, n_args, "seed")];
    if (n_pos == 1 && o.model) {
        fprintf(stderr, "cake chat: MODEL given both as --model and as an argument\n");
        return 2;
    }
    if (n_pos == 1) o.model = pos[0];
    if (o.server && o.chat_template_file) {
        fprintf(stderr, "cake chat: --chat-template-file is for local mode (the server renders its own chats)\n");
        return 2;
    }
    if (o.server && (o.cpu || o.device >= 0 || ck_cli_devices || o.kv_type || ck_cli_mmap)) {
        fprintf(stderr, "cake chat: --cpu, --device, --devices, --kv-type and --mmap are for local mode\n");
        return 2;
    }
    if (o.model && o.server) {
        fprintf(stderr, "cake chat: give either MODEL (local) or --server URL (remote), not both\n");
        return 2;
    }
    if (ck_cli_sampling_check("chat", &o.smp) != 0 || check_ranges(&o) != 0) return 2;
    return chat(&o);
}
