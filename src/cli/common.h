/* common.h — pieces shared by the model-running subcommands: opening MODEL (a directory, an HF repo id,
 * or the bundled default model when none is given). */
#ifndef CK_CLI_COMMON_H
#define CK_CLI_COMMON_H

#include "cake.h"

/* Resolves `model` (NULL = the default model) and opens it; need_tok: fail without a tokenizer. Returns 0, or 1 after printing why. */
int ck_cli_open(const char *cmd, const char *model, int need_tok, ck_engine **e);

/* The bundled model used when no MODEL is given. */
const char *ck_cli_default_model(void);

/* 1 when a lone positional argument names a model (an existing directory or ORG/NAME) rather than a
 * prompt. */
int ck_cli_looks_like_model(const char *arg);

/* Sets the compute threads (0: the default), printing a note when the count was clamped. Returns 0, or 2
 * after printing a usage error. */
int ck_cli_threads(const char *cmd, long n);

/* Picks the backend of the engines this process opens: the CPU when `cpu`, else CUDA device `device` (-1:
 * not given, 0) when the build and the machine have one, else the CPU with a notice (a CUDA build without
 * a GPU, or --device on a build without CUDA). Returns 0, or 2 after printing a usage error. */
int ck_cli_backend(const char *cmd, int cpu, long device);
/* The --device / --cpu flags of the model-running subcommands, for their ck_arg tables. */
#define CK_CLI_DEVICE_ARGS(cpu_var, device_var)                                                                    \
    {"device", 0, CK_ARG_INT, &(device_var), "GPU to run on (CUDA builds; default 0)", "N"},                        \
    {"cpu", 0, CK_ARG_BOOL, &(cpu_var), "run on the CPU even when a GPU is present", NULL}

#endif
