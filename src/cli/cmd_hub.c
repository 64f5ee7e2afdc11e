/* cmd_hub.c — placeholder for `cake pull | list | rm` and model resolution (being written). */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int ck_cmd_pull(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "cake pull: not built yet\n"); return 1; }
int ck_cmd_list(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "cake list: not built yet\n"); return 1; }
int ck_cmd_rm(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "cake rm: not built yet\n"); return 1; }

int ck_cli_resolve_model(const char *arg, char *dir, unsigned long cap) {
    if (strlen(arg) + 1 > cap) return 1;
    strcpy(dir, arg);
    return 0;
}
