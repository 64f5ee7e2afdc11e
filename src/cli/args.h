/* args.h — table-driven flag parsing for the subcommands: --name VALUE, --name=VALUE, -x VALUE and
 * boolean switches; everything else is a positional argument. Unknown flags, missing values and values
 * that do not parse are usage errors; --help prints the table. */
#ifndef CK_CLI_ARGS_H
#define CK_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CK_ARG_STR, CK_ARG_INT, CK_ARG_FLOAT, CK_ARG_BOOL, CK_ARG_U64 } ck_arg_type;

typedef struct ck_arg {
    const char *name;    /* long name without dashes */
    char short_name;     /* 0 when none */
    ck_arg_type type;
    void *dst;           /* const char **, long *, double *, int *, uint64_t * */
    const char *help;
    const char *metavar; /* shown in --help, e.g. "N" */
} ck_arg;

/* Parses argv[1..argc). Positionals are stored in pos[0..*n_pos) (at most max_pos).
 * Returns 0 on success, 1 when --help was printed, 2 on a usage error (message printed). */
int ck_args_parse(const char *cmd, const char *usage, const ck_arg *args, size_t n_args, int argc, char **argv,
                  const char **pos, size_t max_pos, size_t *n_pos);

/* As ck_args_parse; seen[k] (n_args of them, zeroed by the caller) is set to 1 for each args[k] given. */
int ck_args_parse_seen(const char *cmd, const char *usage, const ck_arg *args, size_t n_args, int argc, char **argv,
                       const char **pos, size_t max_pos, size_t *n_pos, unsigned char *seen);

void ck_args_help(const char *cmd, const char *usage, const ck_arg *args, size_t n_args);

#endif
