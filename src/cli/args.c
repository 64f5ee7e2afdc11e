/* args.c — see args.h. */
#include "cli/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ck_args_help(const char *cmd, const char *usage, const ck_arg *args, size_t n_args) {
    printf("usage: cake %s %s\n\nflags:\n", cmd, usage);
    for (size_t i = 0; i < n_args; i++) {
        char left[64];
        const char *mv = args[i].type == CK_ARG_BOOL ? "" : args[i].metavar ? args[i].metavar : "VALUE";
        if (args[i].short_name)
            snprintf(left, sizeof left, "-%c, --%s %s", args[i].short_name, args[i].name, mv);
        else
            snprintf(left, sizeof left, "    --%s %s", args[i].name, mv);
        printf("  %-28s %s\n", left, args[i].help);
    }
    printf("  %-28s %s\n", "-h, --help", "show this help");
}

static int set_value(const char *cmd, const ck_arg *a, const char *v) {
    char *end;
    errno = 0;
    switch (a->type) {
    case CK_ARG_STR: *(const char **)a->dst = v; return 0;
    case CK_ARG_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end) break;
        *(long *)a->dst = x;
        return 0;
    }
    case CK_ARG_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-') break;
        *(uint64_t *)a->dst = x;
        return 0;
    }
    case CK_ARG_FLOAT: {
        double x = strtod(v, &end);
        if (errno || end == v || *end) break;
        *(double *)a->dst = x;
        return 0;
    }
    case CK_ARG_BOOL: break;
    }
    fprintf(stderr, "cake %s: invalid value '%s' for --%s\n", cmd, v, a->name);
    return 2;
}

int ck_args_parse(const char *cmd, const char *usage, const ck_arg *args, size_t n_args, int argc, char **argv,
                  const char **pos, size_t max_pos, size_t *n_pos) {
    return ck_args_parse_seen(cmd, usage, args, n_args, argc, argv, pos, max_pos, n_pos, NULL);
}

int ck_args_parse_seen(const char *cmd, const char *usage, const ck_arg *args, size_t n_args, int argc, char **argv,
                       const char **pos, size_t max_pos, size_t *n_pos, unsigned char *seen) {
    *n_pos = 0;
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (only_pos || s[0] != '-' || s[1] == 0) {
            if (*n_pos >= max_pos) {
                fprintf(stderr, "cake %s: unexpected argument '%s'\n", cmd, s);
                return 2;
            }
            pos[(*n_pos)++] = s;
            continue;
        }
        if (!strcmp(s, "--")) {
            only_pos = 1;
            continue;
        }
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            ck_args_help(cmd, usage, args, n_args);
            return 1;
        }
        const ck_arg *a = NULL;
        const char *inline_v = NULL;
        for (size_t k = 0; k < n_args && !a; k++) {
            if (s[1] == '-') {
                size_t nl = strlen(args[k].name);
                if (!strncmp(s + 2, args[k].name, nl) && (s[2 + nl] == 0 || s[2 + nl] == '=')) {
                    a = &args[k];
                    if (s[2 + nl] == '=') inline_v = s + 3 + nl;
                }
            } else if (args[k].short_name && s[1] == args[k].short_name && s[2] == 0) {
                a = &args[k];
            }
        }
        if (!a) {
            fprintf(stderr, "cake %s: unknown flag '%s' (see cake %s --help)\n", cmd, s, cmd);
            return 2;
        }
        if (seen) seen[a - args] = 1;
        if (a->type == CK_ARG_BOOL) {
            if (inline_v) {
                fprintf(stderr, "cake %s: --%s takes no value\n", cmd, a->name);
                return 2;
            }
            *(int *)a->dst = 1;
            continue;
        }
        if (!inline_v) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cake %s: --%s needs a value\n", cmd, a->name);
                return 2;
            }
            inline_v = argv[++i];
        }
        if (set_value(cmd, a, inline_v) != 0) return 2;
    }
    return 0;
}
