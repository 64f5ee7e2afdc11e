/* common.c — see common.h. */
#include "cli/common.h"
#include "cli/cli.h"

#include "base/file.h"

#include <ctype.h>
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

int ck_cli_open(const char *cmd, const char *model, int need_tok, ck_engine **e) {
    return ck_cli_open_opts(cmd, model, need_tok, NULL, e);
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
