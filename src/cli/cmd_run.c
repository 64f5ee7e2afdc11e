/* cmd_run.c — placeholder for `cake run` and `cake perplexity` (being written). */
#include "cli/cli.h"

#include <stdio.h>

int ck_cmd_run(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "cake run: not built yet\n"); return 1; }
int ck_cmd_perplexity(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "cake perplexity: not built yet\n"); return 1; }
