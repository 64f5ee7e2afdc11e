/* cmd_template.c — `cake template [MODEL] --messages FILE.json [--tools FILE.json] [--kwargs JSON]
 * [--chat-template-file F] [--no-generation-prompt]`: renders a conversation with the model's chat
 * template (or F) exactly as HF apply_chat_template(messages, tools=..., add_generation_prompt=...,
 * tokenize=False, **kwargs) does and writes the text to stdout as is (no newline added). A template that
 * raises exits 1 with its message. Only the tokenizer files are read (a directory with tokenizer.json
 * and tokenizer_config.json is enough). With --chat-template-file and no MODEL, no model is opened at all (the
 * special tokens then come from --kwargs, if the template uses them). */
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/common.h"

#include "base/file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_ARG_MAX_BYTES ((size_t)64 << 20)

typedef struct tmpl_opts {
    const char *model, *messages, *tools, *kwargs, *template_file;
    int no_gen;
} tmpl_opts;

/* Reads the file a flag names; NULL after printing why. */
static char *read_arg_file(const char *flag, const char *path) {
    char *buf = NULL, err[512];
    if (ck_file_read_max(path, JSON_ARG_MAX_BYTES, &buf, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "cake template: --%s: %s\n", flag, err);
        return NULL;
    }
    return buf;
}

/* Renders into *text (with or without a model). Returns 0, or 1 after printing why. */
static int render(const tmpl_opts *o, const char *msgs, const char *tools, char **text, size_t *len) {
    char err[2048];
    int rc;
    if (!o->model && o->template_file) {
        char *tmpl = read_arg_file("chat-template-file", o->template_file);
        if (!tmpl) return 1;
        rc = ck_chat_template_render(tmpl, strlen(tmpl), msgs, tools, o->kwargs, !o->no_gen, text, len, err,
                                     sizeof err);
        free(tmpl);
    } else {
        ck_engine_opts eo = {.tokenizer_only = 1};
        ck_engine *e;
        if (ck_cli_open_opts("template", o->model, 1, &eo, &e) != 0) return 1;
        if (ck_cli_chat_template("template", e, o->template_file, 0) != 0) {
            ck_engine_close(e);
            return 1;
        }
        if (ck_engine_chat(e) == CK_CHAT_NONE) {
            fprintf(stderr, "cake template: the model has no chat template (give one with --chat-template-file)\n");
            ck_engine_close(e);
            return 1;
        }
        rc = ck_engine_chat_render(e, msgs, tools, o->kwargs, !o->no_gen, text, len, NULL, NULL, err, sizeof err);
        ck_engine_close(e);
    }
    if (rc != 0) {
        fprintf(stderr, "cake template: %s\n", err);
        return 1;
    }
    return 0;
}

int ck_cmd_template(int argc, char **argv) {
    tmpl_opts o = {0};
    const ck_arg args[] = {
        {"model", 0, CK_ARG_STR, &o.model, "model directory or HF repo id (or the positional)", "MODEL"},
        {"messages", 0, CK_ARG_STR, &o.messages, "the conversation: a JSON array of message objects", "FILE"},
        {"tools", 0, CK_ARG_STR, &o.tools, "tool schemas: a JSON array (default: tools=None)", "FILE"},
        {"kwargs", 0, CK_ARG_STR, &o.kwargs, "extra template variables as a JSON object, e.g. '{\"enable_thinking\": false}'", "JSON"},
        {"chat-template-file", 0, CK_ARG_STR, &o.template_file, "render with this Jinja template instead of the model's", "FILE"},
        {"no-generation-prompt", 0, CK_ARG_BOOL, &o.no_gen, "render with add_generation_prompt=false", NULL},
    };
    const char *pos[1];
    size_t n_pos;
    int rc = ck_args_parse("template", "[MODEL] --messages FILE.json [flags]", args, sizeof args / sizeof args[0], argc,
                           argv, pos, 1, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (n_pos == 1) {
        if (o.model) {
            fprintf(stderr, "cake template: MODEL given both as a flag and as an argument\n");
            return 2;
        }
        o.model = pos[0];
    }
    if (!o.messages) {
        fprintf(stderr, "cake template: --messages FILE.json is required (see cake template --help)\n");
        return 2;
    }
    char *msgs = read_arg_file("messages", o.messages), *tools = NULL, *text = NULL;
    size_t len = 0;
    rc = !msgs || (o.tools && !(tools = read_arg_file("tools", o.tools)));
    if (rc == 0) rc = render(&o, msgs, tools, &text, &len);
    if (rc == 0 && (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0)) {
        fprintf(stderr, "cake template: cannot write the output\n");
        rc = 1;
    }
    free(text);
    free(msgs);
    free(tools);
    return rc;
}
