/* common.c — see common.h. */
#include "cli/common.h"
#include "cli/cli.h"

#include "base/file.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CK_DEFAULT_MODEL
#define CK_DEFAULT_MODEL "models/cake-tiny"
#endif

const char *ck_cli_default_model(void) {
    const char *env = getenv("CAKE_DEFAULT_MODEL");
    return env && *env ? env : CK_DEFAULT_MODEL;
}

int ck_cli_looks_like_model(const char *arg) {
    if (ck_is_dir(arg)) return 1;
    const char *slash = strchr(arg, '/');
    if (!slash || slash == arg || !slash[1] || strchr(slash + 1, '/')) return 0;
    for (const char *p = arg; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.' || *p == '/')) return 0;
    return 1;
}

const char *ck_cli_devices;
int ck_cli_mmap;

int ck_cli_open_opts(const char *cmd, const char *model, int need_tok, const ck_engine_opts *opts, ck_engine **e) {
    char dir[4096], err[1024];
    if (!model) model = ck_cli_default_model();
    if (ck_cli_resolve_model(model, dir, sizeof dir) != 0) return 1;
    if (ck_engine_open(dir, opts, e, err, sizeof err) != 0) {
        fprintf(stderr, "cake %s: %s\n", cmd, err);
        return 1;
    }
    if (need_tok && !ck_engine_has_tokenizer(*e)) {
        fprintf(stderr, "cake %s: %s has no tokenizer.json\n", cmd, dir);
        ck_engine_close(*e);
        return 1;
    }
    return 0;
}

int ck_cli_backend(const char *cmd, int cpu, long device, const char *kv_type) {
    char err[256];
    ck_set_weights_mapped(ck_cli_mmap);
    if (kv_type && ck_set_kv_type(kv_type, err, sizeof err) != 0) {
        fprintf(stderr, "cake %s: --kv-type: %s\n", cmd, err);
        return 2;
    }
    int has_cuda = strstr(ck_backends_built(), "cuda") != NULL;
    if (device < -1 || device > 1024) {
        fprintf(stderr, "cake %s: --device must be a GPU index (0, 1, ...)\n", cmd);
        return 2;
    }
    if (cpu && device >= 0) {
        fprintf(stderr, "cake %s: --cpu and --device exclude each other\n", cmd);
        return 2;
    }
    if (ck_cli_devices && (cpu || device >= 0)) {
        fprintf(stderr, "cake %s: --devices names every device; it excludes --cpu and --device\n", cmd);
        return 2;
    }
    if (ck_cli_devices) { /* checked here, so that a bad list is a usage error before anything loads */
        const char *kinds[CK_MAX_DEVICES];
        int idx[CK_MAX_DEVICES];
        if (ck_parse_devices(ck_cli_devices, kinds, idx, CK_MAX_DEVICES, err, sizeof err) < 0) {
            fprintf(stderr, "cake %s: --devices: %s\n", cmd, err);
            return 2;
        }
        return 0;
    }
    if (cpu) return ck_set_backend("cpu", 0, err, sizeof err) == 0 ? 0 : 2;
    int n = ck_backend_count("cuda");
    if (n > 0) {
        if (ck_set_backend("cuda", device < 0 ? 0 : (int)device, err, sizeof err) != 0) {
            fprintf(stderr, "cake %s: --device %ld: %s\n", cmd, device, err);
            return 2;
        }
        return 0;
    }
    if (has_cuda || device >= 0)
        fprintf(stderr, "cake %s: %s; running on the CPU\n", cmd,
                has_cuda ? "no CUDA device found" : "this build has no CUDA backend");
    return 0;
}

int ck_cli_open(const char *cmd, const char *model, int need_tok, ck_engine **e) {
    ck_engine_opts o = {.devices = ck_cli_devices};
    return ck_cli_open_opts(cmd, model, need_tok, ck_cli_devices ? &o : NULL, e);
}

int ck_cli_chat_template(const char *cmd, ck_engine *e, const char *file, int raw) {
    char err[1024];
    if (file && ck_engine_set_chat_template_file(e, file, err, sizeof err) != 0) {
        fprintf(stderr, "cake %s: --chat-template-file: %s\n", cmd, err);
        return 1;
    }
    if (!raw && ck_engine_chat(e) == CK_CHAT_UNSUPPORTED) {
        fprintf(stderr,
                "cake %s: the model's chat template cannot be rendered: %s\n"
                "(--chat-template-file F renders with another template; --raw sends the prompt without one)\n",
                cmd, ck_engine_chat_error(e));
        return 1;
    }
    return 0;
}

int ck_cli_threads(const char *cmd, long n) {
    if (n < 0 || n > 1000000) {
        fprintf(stderr, "cake %s: --threads must be between 0 and 1000000\n", cmd);
        return 2;
    }
    char note[256];
    ck_set_threads((int)n, note, sizeof note);
    if (note[0]) fprintf(stderr, "cake %s: %s\n", cmd, note);
    return 0;
}

void ck_cli_sampling_init(ck_cli_sampling *s) {
    *s = (ck_cli_sampling){.n = 2048, .last_n = 128, .temperature = 1.0, .top_p = 1.0, .seed = 299792458};
}

size_t ck_cli_sampling_args(ck_cli_sampling *s, const char *n_name, ck_arg *args, size_t cap) {
    size_t n = 0;
    while (n < cap && args[n].name) n++;
    if (cap - n < CK_CLI_SAMPLING_ARGS + 1) {
        fprintf(stderr, "cake: internal error: a flag table holds %zu entries, too few for %zu\n", cap,
                n + CK_CLI_SAMPLING_ARGS + 1);
        return 0;
    }
    const ck_arg a[CK_CLI_SAMPLING_ARGS] = {
        {n_name, 'n', CK_ARG_INT, &s->n, "tokens to generate at most (default 2048)", "N"},
        {"temperature", 0, CK_ARG_FLOAT, &s->temperature, "sampling temperature; 0 = greedy (default 1.0)", "T"},
        {"top-k", 0, CK_ARG_INT, &s->top_k, "sample among the K most likely tokens (default off)", "K"},
        {"top-p", 0, CK_ARG_FLOAT, &s->top_p, "nucleus sampling cutoff (default off)", "P"},
        {"repeat-penalty", 0, CK_ARG_STR, &s->penalty_str, "penalty for repeated tokens; 1 = off (default 1.1; with --temperature 0, 1 unless given)", "R"},
        {"repeat-last-n", 0, CK_ARG_INT, &s->last_n, "tokens the repeat penalty looks back at (default 128)", "N"},
        {"seed", 0, CK_ARG_U64, &s->seed, "random seed (default 299792458)", "S"},
    };
    memcpy(args + n, a, sizeof a);
    return n + CK_CLI_SAMPLING_ARGS;
}

/* A whole-string decimal number. */
static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return errno || end == s || *end ? -1 : 0;
}

int ck_cli_sampling_check(const char *cmd, ck_cli_sampling *s) {
    if (!s->penalty_str) s->penalty = s->temperature > 0 ? 1.1 : 1.0; /* greedy means the model's argmax */
    else if (parse_double(s->penalty_str, &s->penalty) != 0) {
        fprintf(stderr, "cake %s: invalid value '%s' for --repeat-penalty\n", cmd, s->penalty_str);
        return 2;
    }
    if (s->n < 0 || s->top_k < 0 || s->last_n < 0 || s->top_k > INT32_MAX || s->last_n > INT32_MAX) {
        fprintf(stderr, "cake %s: --top-k and --repeat-last-n are 0-%d, -n >= 0\n", cmd, INT32_MAX);
        return 2;
    }
    ck_gen_params p;
    ck_cli_gen_params(s, &p);
    char why[256];
    if (ck_gen_params_check(&p, why, sizeof why) != 0) {
        fprintf(stderr, "cake %s: %s\n", cmd, why);
        return 2;
    }
    return 0;
}

void ck_cli_gen_params(const ck_cli_sampling *s, ck_gen_params *p) {
    ck_gen_params_default(p);
    p->temperature = (float)s->temperature, p->top_k = (int)s->top_k, p->top_p = (float)s->top_p;
    p->repeat_penalty = (float)s->penalty, p->repeat_last_n = (int)s->last_n, p->seed = s->seed;
    p->max_tokens = (size_t)s->n;
}
