/* common.h — pieces shared by the model-running subcommands: opening MODEL (a directory, an HF repo id,
 * or the bundled default model when none is given), and the sampling flags of `cake run` and `cake chat`
 * (one table, one check, one translation into the library's ck_gen_params). */
#ifndef CK_CLI_COMMON_H
#define CK_CLI_COMMON_H

#include "cake.h"
#include "cli/args.h"

/* Resolves `model` (NULL = the default model) and opens it; need_tok: fail without a tokenizer. Returns 0, or 1 after printing why. */
int ck_cli_open(const char *cmd, const char *model, int need_tok, ck_engine **e);

/* ck_cli_open with engine options (NULL: the whole model). */
int ck_cli_open_opts(const char *cmd, const char *model, int need_tok, const ck_engine_opts *opts, ck_engine **e);

/* The chat template of a command that renders chats: replaces it with the Jinja file `file` when given
 * (--chat-template-file), then, unless raw (the command will not render: --raw), refuses a template
 * that cannot be rendered. Returns 0, or 1 after printing why. For run, chat and serve alike. */
int ck_cli_chat_template(const char *cmd, ck_engine *e, const char *file, int raw);

/* The bundled model used when no MODEL is given. */
const char *ck_cli_default_model(void);

/* 1 when a lone positional argument names a model (an existing directory or ORG/NAME) rather than a
 * prompt. */
int ck_cli_looks_like_model(const char *arg);

/* Sets the compute threads (0: the default), printing a note when the count was clamped. Returns 0, or 2
 * after printing a usage error. */
int ck_cli_threads(const char *cmd, long n);

/* Picks the backend of the engines this process opens: the devices of --devices (ck_cli_devices; not with
 * --cpu or --device), the CPU when `cpu`, else CUDA device `device` (-1:
 * not given, 0) when the build and the machine have one, else the CPU with a notice (a CUDA build without
 * a GPU, or --device on a build without CUDA); and their KV cache type (kv_type: NULL for the default).
 * Returns 0, or 2 after printing a usage error. */
int ck_cli_backend(const char *cmd, int cpu, long device, const char *kv_type);
/* The --device / --cpu / --kv-type flags of the model-running subcommands, for their ck_arg tables. */
#define CK_CLI_DEVICE_ARGS(cpu_var, device_var, kv_var)                                                            \
    {"device", 0, CK_ARG_INT, &(device_var), "GPU to run on (CUDA builds; default 0)", "N"},                        \
    {"devices", 0, CK_ARG_STR, &ck_cli_devices,                                                                    \
     "spread the model's layers over these devices, in layer order: GPU indices or cpu (e.g. 0,1 or 0,cpu)", "LIST"}, \
    {"cpu", 0, CK_ARG_BOOL, &(cpu_var), "run on the CPU even when a GPU is present", NULL},                          \
    {"kv-type", 0, CK_ARG_STR, &(kv_var),                                                                          \
     "KV cache type: f16, f32 or auto (default auto: f16, but f32 with --exact and for MoE models)", "T"},          \
    {"mmap", 0, CK_ARG_BOOL, &ck_cli_mmap,                                                                         \
     "CPU: keep the weights mapped from the file instead of copying them into huge pages (starts faster, decodes "  \
     "slower)", NULL}
/* --devices of the command (NULL when not given): the engines ck_cli_open opens spread over them. */
extern const char *ck_cli_devices;
/* --mmap of the command (ck_set_weights_mapped). */
extern int ck_cli_mmap;
/* The sampling flags: -n, --temperature, --top-k, --top-p, --repeat-penalty, --repeat-last-n, --seed. */
typedef struct ck_cli_sampling {
    long n, top_k, last_n;
    double temperature, top_p, penalty;
    const char *penalty_str; /* --repeat-penalty as given, NULL when not */
    uint64_t seed;
} ck_cli_sampling;

#define CK_CLI_SAMPLING_ARGS 7

/* cake's defaults: -n 2048, temperature 1, top-k off, top-p off, penalty 1.1 over 128 tokens (1 when
 * greedy), seed 299792458. */
void ck_cli_sampling_init(ck_cli_sampling *s);
/* Appends the flags' CK_CLI_SAMPLING_ARGS entries to args (cap entries, filled up to the first unnamed
 * one); n_name is the long name of -n. Returns the entries now in args, or 0 (after saying so) when cap
 * leaves no room for them and a terminating empty entry. */
size_t ck_cli_sampling_args(ck_cli_sampling *s, const char *n_name, ck_arg *args, size_t cap);
/* Resolves the penalty's default and checks every value. Returns 0, or 2 after printing why. */
int ck_cli_sampling_check(const char *cmd, ck_cli_sampling *s);
/* The library's generation parameters for the flags (no callbacks set). */
void ck_cli_gen_params(const ck_cli_sampling *s, ck_gen_params *p);

#endif
