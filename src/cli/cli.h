/* cli.h — the `cake` subcommands. Each takes argv after the subcommand name (argv[0] is the subcommand)
 * and returns the process exit status: 0 on success, 1 on a runtime error, 2 on a usage error. Only
 * src/cli may print usage or exit. Every command accepts --help and rejects unknown flags. */
#ifndef CK_CLI_H
#define CK_CLI_H

int ck_cmd_run(int argc, char **argv);
int ck_cmd_perplexity(int argc, char **argv);
int ck_cmd_template(int argc, char **argv);
int ck_cmd_bench(int argc, char **argv);
int ck_cmd_serve(int argc, char **argv);
int ck_cmd_chat(int argc, char **argv);
int ck_cmd_pull(int argc, char **argv);
int ck_cmd_list(int argc, char **argv);
int ck_cmd_rm(int argc, char **argv);

/* Resolves a MODEL argument (a local directory, or an HF repo id ORG/NAME found in the HF cache and
 * pulled when missing) into a directory path. Returns 0, or 1 with a message printed on stderr. */
int ck_cli_resolve_model(const char *arg, char *dir, unsigned long cap);

#endif
