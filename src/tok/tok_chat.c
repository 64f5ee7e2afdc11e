/* tok_chat.c — chat prompts rendered as HF apply_chat_template(..., tokenize=False) does: the
 * checkpoint's own Jinja template (tokenizer_config.json `chat_template`, its `default` entry in the
 * named-list form, or chat_template.jinja; the list's `tool_use` entry when tools are given; or a
 * replacement given by the caller) run by the Jinja
 * interpreter of src/jinja with the variables HF passes: messages, tools (None unless given),
 * documents (None), add_generation_prompt, the tokenizer's special tokens (bos_token, eos_token,
 * unk_token, pad_token, ... as strings, additional_special_tokens as a list) and extra keyword arguments
 * (enable_thinking, ...), which may override any of them.
 * Invariants: a template that does not parse, or a malformed chat_template entry, is kept and reported
 * (ck_tok_chat_unsupported) with the reason, never rendered; a render error carries the template's own
 * message. */
#include "base/err.h"
#include "jinja/jinja.h"
#include "tok/tok_internal.h"

#include <stdlib.h>
#include <string.h>

int ck_tok_tmpl_set(ck_tok_tmpl *m, const char *src, size_t len, char *err, size_t errlen) {
    char *copy = malloc(len + 1);
    if (!copy) return ck_err(err, errlen, "out of memory");
    memcpy(copy, src, len);
    copy[len] = 0;
    ck_tok_tmpl_free(m);
    m->src = copy;
    char perr[256];
    if (ck_jinja_parse(src, len, &m->j, perr, sizeof perr) != 0) {
        m->err = strdup(perr);
        return ck_err(err, errlen, "chat template: %s", perr);
    }
    return 0;
}

int ck_tok_tmpl_fail(ck_tok_tmpl *m, const char *why) {
    ck_tok_tmpl_free(m);
    m->src = strdup("");
    m->err = strdup(why);
    return m->src && m->err ? 0 : -1;
}

void ck_tok_tmpl_free(ck_tok_tmpl *m) {
    ck_jinja_free(m->j);
    free(m->src);
    free(m->err);
    *m = (ck_tok_tmpl){0};
}

int ck_tok_has_chat(const ck_tok *t) { return t->chat.j != NULL; }
int ck_tok_chat_unsupported(const ck_tok *t) { return t->chat.j == NULL && t->chat.src != NULL; }
const char *ck_tok_chat_error(const ck_tok *t) { return t->chat.err ? t->chat.err : ""; }

int ck_tok_chat_set_template(ck_tok *t, const char *src, size_t len, char *err, size_t errlen) {
    ck_tok_tmpl_free(&t->chat_tool); /* a template given by the caller serves every request, as in HF */
    return ck_tok_tmpl_set(&t->chat, src, len, err, errlen);
}

/* The variables of one render; NULL when out of memory. Members of kwargs replace defaults. */
static cJSON *render_vars(const cJSON *specials, const cJSON *messages, const cJSON *tools, const cJSON *kwargs,
                          int add_generation_prompt) {
    cJSON *v = specials ? cJSON_Duplicate(specials, 1) : cJSON_CreateObject();
    if (!v) return NULL;
    cJSON *m = messages ? cJSON_Duplicate(messages, 1) : cJSON_CreateArray();
    cJSON *tl = tools ? cJSON_Duplicate(tools, 1) : cJSON_CreateNull();
    int ok = m && tl && cJSON_AddItemToObject(v, "messages", m) && cJSON_AddItemToObject(v, "tools", tl) &&
             cJSON_AddNullToObject(v, "documents") && cJSON_AddBoolToObject(v, "add_generation_prompt", add_generation_prompt);
    if (!ok) {
        cJSON_Delete(v);
        return NULL;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, kwargs) {
        cJSON *dup = cJSON_Duplicate(it, 1);
        if (!dup || !it->string) {
            cJSON_Delete(dup);
            cJSON_Delete(v);
            return NULL;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(v, it->string);
        cJSON_AddItemToObject(v, it->string, dup);
    }
    return v;
}

int ck_chat_render_jinja(const struct ck_jinja *tmpl, const void *specials, const void *messages_,
                         const void *tools_, const void *kwargs_, int add_generation_prompt, char **out, size_t *len,
                         char *err, size_t errlen) {
    const cJSON *messages = messages_, *tools = tools_, *kwargs = kwargs_;
    *out = NULL;
    if (messages && !cJSON_IsArray(messages)) return ck_err(err, errlen, "chat: messages must be a JSON array");
    if (tools && !cJSON_IsArray(tools) && !cJSON_IsNull(tools)) return ck_err(err, errlen, "chat: tools must be a JSON array");
    if (kwargs && !cJSON_IsObject(kwargs)) return ck_err(err, errlen, "chat: template arguments must be a JSON object");
    cJSON *vars = render_vars(specials, messages, tools, kwargs, add_generation_prompt);
    if (!vars) return ck_err(err, errlen, "chat: out of memory");
    int rc = ck_jinja_render(tmpl, vars, NULL, out, len, err, errlen);
    cJSON_Delete(vars);
    return rc;
}

int ck_tok_chat_render_json(const ck_tok *t, const void *messages, const void *tools, const void *kwargs,
                            int add_generation_prompt, char **out, size_t *len, char *err, size_t errlen) {
    *out = NULL;
    /* HF's choice among named templates: "tool_use" when tools are given (even an empty list), else "default" */
    int tool = t->chat_tool.src && tools && !cJSON_IsNull((const cJSON *)tools);
    const ck_tok_tmpl *m = tool ? &t->chat_tool : &t->chat;
    if (!m->j) {
        if (m->src)
            return ck_err(err, errlen, "the %schat template cannot be used: %s", tool ? "tool_use " : "",
                          m->err ? m->err : "");
        return ck_err(err, errlen, "the model has no chat template");
    }
    return ck_chat_render_jinja(m->j, t->chat_specials, messages, tools, kwargs, add_generation_prompt, out, len,
                                err, errlen);
}

int ck_tok_chat_render(const ck_tok *t, const ck_chat_msg *msgs, size_t n_msgs, int add_generation_prompt,
                       int enable_thinking, char **out, char *err, size_t errlen) {
    *out = NULL;
    if (n_msgs && !msgs) return ck_err(err, errlen, "chat: NULL messages");
    cJSON *arr = cJSON_CreateArray(), *kw = cJSON_CreateObject();
    int ok = arr && kw;
    for (size_t i = 0; ok && i < n_msgs; i++) {
        if (!msgs[i].role || !msgs[i].content) {
            cJSON_Delete(arr);
            cJSON_Delete(kw);
            return ck_err(err, errlen, "chat: message %zu has no role or content", i);
        }
        cJSON *m = cJSON_CreateObject();
        ok = m && cJSON_AddStringToObject(m, "role", msgs[i].role) &&
             cJSON_AddStringToObject(m, "content", msgs[i].content) && cJSON_AddItemToArray(arr, m);
        if (!ok) cJSON_Delete(m);
    }
    /* enable_thinking=1 is HF's default: the kwarg is left out, as a caller of HF would */
    if (ok && !enable_thinking) ok = cJSON_AddFalseToObject(kw, "enable_thinking") != NULL;
    int rc = ok ? ck_tok_chat_render_json(t, arr, NULL, kw, add_generation_prompt, out, NULL, err, errlen)
                : ck_err(err, errlen, "chat: out of memory");
    cJSON_Delete(arr);
    cJSON_Delete(kw);
    return rc;
}
