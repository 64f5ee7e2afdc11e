/* main.c — `cake` entry point: dispatches to a subcommand (see cli.h). */
#include "cli/cli.h"
#include "cake.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"run", ck_cmd_run, "generate text from a prompt (MODEL is a directory or an HF repo id)"},
    {"serve", ck_cmd_serve, "OpenAI-compatible API server and web UI (--api 0.0.0.0:8080)"},
    {"chat", ck_cmd_chat, "chat in the terminal with MODEL, or with a server (--server URL)"},
    {"perplexity", ck_cmd_perplexity, "score a text file: ppl=<float> nll=<mean nll> n=<tokens>"},
    {"template", ck_cmd_template, "render a conversation (JSON) with the model's chat template, as HF does"},
    {"bench", ck_cmd_bench, "prefill and decode speed, memory bandwidth and the decode roofline"},
    {"pull", ck_cmd_pull, "download ORG/NAME (or one .gguf file of it: ORG/NAME:TAG) from the HuggingFace Hub"},
    {"list", ck_cmd_list, "list the models in the HF cache and in cake's worker cache"},
    {"rm", ck_cmd_rm, "delete a model from the HF cache or the worker cache"},
};

/* A command that succeeded but whose output could not all be written (a full disk, a closed pipe or
 * stdout) has failed: exit 1 with the reason, never 0 with the result lost. */
static int output_written(const char *cmd, int rc) {
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return rc;
    if (rc == 0) fprintf(stderr, "cake%s%s: cannot write the output: %s\n", cmd ? " " : "", cmd ? cmd : "",
                         errno ? strerror(errno) : "write error");
    return rc ? rc : 1;
}

static void usage(FILE *f) {
    fprintf(f, "usage: cake <command> [args] [--help]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`cake <command> --help` lists the command's flags; `cake --version` the version.\n");
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN); /* a closed pipe on stdout is a write error with a message, not a silent death */
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return output_written(NULL, 0);
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V") || !strcmp(argv[1], "version")) {
        printf("cake %s (backends: %s)\n", CK_VERSION, ck_backends_built());
        return output_written(NULL, 0);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return output_written(commands[i].name, commands[i].fn(argc - 1, argv + 1));
    fprintf(stderr, "cake: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
