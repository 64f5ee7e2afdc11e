/* openai.c — the OpenAI chat-completions wire format (see openai.h). Requests are checked field by field
 * and refused with a message naming the field: a wrong type, a value out of range, or a feature cake does
 * not implement (presence/frequency penalties other than 0, n or best_of other than 1, logprobs, logit
 * biases, a response format other than text, a forced tool choice) is a 400, never silently ignored;
 * fields cake does not know are ignored, as OpenAI's own clients send many. A body must be exactly one
 * JSON object, and a string must not hold U+0000 (it would cut the C string the template gets). Replies are built with
 * cJSON, so every string is escaped as JSON requires. */
#include "server/openai.h"

#include "base/err.h"
#include "base/jsontext.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cJSON *field(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* A number field in [lo, hi] into *out; absent keeps *out. */
static int num_field(const cJSON *o, const char *name, double lo, double hi, double *out, char *err, size_t errlen) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return ck_err(err, errlen, "'%s' must be a number between %g and %g", name, lo, hi);
    *out = v->valuedouble;
    return 0;
}

/* An integer field in [lo, hi]. */
static int int_field(const cJSON *o, const char *name, double lo, double hi, double *out, char *err, size_t errlen) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return ck_err(err, errlen, "'%s' must be an integer between %.0f and %.0f", name, lo, hi);
    *out = v->valuedouble;
    return 0;
}

static int bool_field(const cJSON *o, const char *name, int *out, char *err, size_t errlen) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return ck_err(err, errlen, "'%s' must be true or false", name);
    *out = cJSON_IsTrue(v);
    return 0;
}

static int keep(ck_oai_request *r, char *s) {
    char **p = realloc(r->owned, (r->n_owned + 1) * sizeof *p);
    if (!p) {
        free(s);
        return -1;
    }
    r->owned = p;
    r->owned[r->n_owned++] = s;
    return 0;
}

/* Message content: a string, null (an assistant turn with tool calls), or an array of text parts, joined
 * with a newline between them (as llama-server and vLLM join them). */
static int content_of(ck_oai_request *r, const cJSON *c, size_t i, const char **out, char *err, size_t errlen) {
    if (!c) return *out = "", 0;
    if (cJSON_IsString(c)) return *out = c->valuestring, 0;
    if (!cJSON_IsArray(c)) return ck_err(err, errlen, "messages[%zu].content must be a string or an array of parts", i);
    size_t len = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, c) {
        const cJSON *type = field(part, "type"), *text = field(part, "text");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(text))
            return ck_err(err, errlen, "messages[%zu].content: only parts of type 'text' are supported", i);
        len += strlen(text->valuestring) + 1;
    }
    char *joined = malloc(len + 1), *w = joined;
    int first = 1;
    if (!joined || keep(r, joined) != 0) return ck_err(err, errlen, "out of memory");
    cJSON_ArrayForEach(part, c) {
        size_t n = strlen(field(part, "text")->valuestring);
        if (!first) *w++ = '\n';
        first = 0;
        memcpy(w, field(part, "text")->valuestring, n);
        w += n;
    }
    *w = 0;
    *out = joined;
    return 0;
}

/* The messages for the template: each message's fields as received, content as the string checked. */
static int template_messages(const cJSON *m, ck_oai_request *r, char *err, size_t errlen) {
    cJSON *out = cJSON_Duplicate(m, 1), *msg;
    size_t i = 0;
    cJSON_ArrayForEach(msg, out) {
        cJSON_ReplaceItemInObjectCaseSensitive(msg, "role", cJSON_CreateString(r->msgs[i].role));
        cJSON_DeleteItemFromObjectCaseSensitive(msg, "content");
        cJSON_AddStringToObject(msg, "content", r->msgs[i++].content);
    }
    r->messages_json = out ? cJSON_PrintUnformatted(out) : NULL;
    cJSON_Delete(out);
    return r->messages_json ? 0 : ck_err(err, errlen, "out of memory");
}

static int parse_messages(const cJSON *root, ck_oai_request *r, char *err, size_t errlen) {
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool"};
    const cJSON *m = field(root, "messages");
    if (!m) return ck_err(err, errlen, "'messages' is required");
    int n = cJSON_GetArraySize(m);
    if (!cJSON_IsArray(m) || n < 1 || n > CK_OAI_MAX_MESSAGES)
        return ck_err(err, errlen, "'messages' must be an array of 1 to %d messages", CK_OAI_MAX_MESSAGES);
    r->msgs = calloc((size_t)n, sizeof *r->msgs);
    if (!r->msgs) return ck_err(err, errlen, "out of memory");
    const cJSON *msg;
    cJSON_ArrayForEach(msg, m) {
        size_t i = r->n_msgs;
        const cJSON *role = cJSON_IsObject(msg) ? field(msg, "role") : NULL;
        if (!cJSON_IsString(role)) return ck_err(err, errlen, "messages[%zu].role must be a string", i);
        size_t k = 0;
        while (k < sizeof roles / sizeof roles[0] && strcmp(roles[k], role->valuestring)) k++;
        if (k == sizeof roles / sizeof roles[0])
            return ck_err(err, errlen, "messages[%zu].role '%.40s' is not one of system, developer, user, assistant, tool",
                          i, role->valuestring);
        /* the templates know "system"; OpenAI's newer name for it is "developer" */
        r->msgs[i].role = k == 1 ? "system" : role->valuestring;
        if (content_of(r, field(msg, "content"), i, &r->msgs[i].content, err, errlen) != 0) return -1;
        r->n_msgs++;
    }
    const cJSON *tools = field(root, "tools"), *kw = field(root, "chat_template_kwargs");
    if (tools && !cJSON_IsArray(tools)) return ck_err(err, errlen, "'tools' must be an array");
    if (tools && cJSON_GetArraySize(tools) && !(r->tools_json = cJSON_PrintUnformatted(tools)))
        return ck_err(err, errlen, "out of memory");
    const cJSON *tc = field(root, "tool_choice");
    r->call_tools = r->tools_json && !(cJSON_IsString(tc) && !strcmp(tc->valuestring, "none"));
    if (kw && !(r->kwargs_json = cJSON_PrintUnformatted(kw))) return ck_err(err, errlen, "out of memory");
    return template_messages(m, r, err, errlen);
}

static int parse_stop(const cJSON *root, ck_oai_request *r, char *err, size_t errlen) {
    const cJSON *s = field(root, "stop");
    if (!s) return 0;
    if (cJSON_IsString(s)) {
        if (!*s->valuestring) return ck_err(err, errlen, "'stop' must not be empty");
        r->stop[r->n_stop++] = s->valuestring;
        return 0;
    }
    if (!cJSON_IsArray(s) || cJSON_GetArraySize(s) > CK_OAI_MAX_STOP)
        return ck_err(err, errlen, "'stop' must be a string or an array of at most %d strings", CK_OAI_MAX_STOP);
    const cJSON *v;
    cJSON_ArrayForEach(v, s) {
        if (!cJSON_IsString(v) || !*v->valuestring) return ck_err(err, errlen, "'stop' entries must be non-empty strings");
        r->stop[r->n_stop++] = v->valuestring;
    }
    return 0;
}

/* Sampling and length fields. */
static int parse_sampling(const cJSON *root, ck_oai_request *r, char *err, size_t errlen) {
    double pen = 0, n = 1, maxt = (double)r->max_tokens, seed = -1, top_k = r->top_k, last_n = r->repeat_last_n;
    if (num_field(root, "temperature", 0, CK_OAI_MAX_TEMPERATURE, &r->temperature, err, errlen) ||
        num_field(root, "top_p", 0, 1, &r->top_p, err, errlen) ||
        int_field(root, "top_k", 0, CK_OAI_MAX_TOP_K, &top_k, err, errlen) ||
        num_field(root, "repeat_penalty", 0, CK_OAI_MAX_REPEAT_PENALTY, &r->repeat_penalty, err, errlen) ||
        int_field(root, "repeat_last_n", 0, CK_OAI_MAX_REPEAT_LAST_N, &last_n, err, errlen) ||
        int_field(root, "max_tokens", 1, CK_OAI_MAX_MAX_TOKENS, &maxt, err, errlen) ||
        int_field(root, "max_completion_tokens", 1, CK_OAI_MAX_MAX_TOKENS, &maxt, err, errlen) ||
        int_field(root, "seed", -CK_OAI_MAX_SEED, CK_OAI_MAX_SEED, &seed, err, errlen) ||
        int_field(root, "n", 1, 128, &n, err, errlen))
        return -1;
    if (r->top_p == 0) return ck_err(err, errlen, "'top_p' must be greater than 0");
    if (r->repeat_penalty == 0) return ck_err(err, errlen, "'repeat_penalty' must be greater than 0");
    if (n != 1) return ck_err(err, errlen, "'n' other than 1 is not supported");
    const char *pens[] = {"presence_penalty", "frequency_penalty"};
    for (int i = 0; i < 2; i++) {
        if (num_field(root, pens[i], -2, 2, &pen, err, errlen) != 0) return -1;
        if (pen != 0) return ck_err(err, errlen, "'%s' other than 0 is not supported", pens[i]);
    }
    r->top_k = (int)top_k;
    r->repeat_last_n = (int)last_n;
    r->max_tokens = (size_t)maxt;
    if (field(root, "seed")) r->has_seed = 1, r->seed = (uint64_t)(int64_t)seed;
    return 0;
}

/* OpenAI features that would change the reply and that cake does not implement: refused unless given
 * with their "off" value. */
static int parse_unsupported(const cJSON *root, char *err, size_t errlen) {
    const cJSON *lp = field(root, "logprobs"), *tlp = field(root, "top_logprobs"), *bias = field(root, "logit_bias");
    const cJSON *fmt = field(root, "response_format"), *tc = field(root, "tool_choice");
    double best_of = 1;
    if (lp && !cJSON_IsFalse(lp)) return ck_err(err, errlen, "'logprobs' is not supported");
    if (tlp) return ck_err(err, errlen, "'top_logprobs' is not supported");
    if (bias && !(cJSON_IsObject(bias) && !bias->child))
        return ck_err(err, errlen, "'logit_bias' is not supported");
    if (int_field(root, "best_of", 1, 128, &best_of, err, errlen) != 0) return -1;
    if (best_of != 1) return ck_err(err, errlen, "'best_of' other than 1 is not supported");
    const cJSON *ft = fmt && cJSON_IsObject(fmt) ? field(fmt, "type") : NULL;
    if (fmt && !(cJSON_IsString(ft) && !strcmp(ft->valuestring, "text")))
        return ck_err(err, errlen, "'response_format' other than {\"type\": \"text\"} is not supported");
    if (tc && !(cJSON_IsString(tc) && (!strcmp(tc->valuestring, "auto") || !strcmp(tc->valuestring, "none"))))
        return ck_err(err, errlen, "'tool_choice' other than \"auto\" or \"none\" is not supported (the model "
                                   "chooses; cake does not force a call)");
    return 0;
}

/* The prompt of a text completion: a string, or an array of one string. */
static int parse_prompt(const cJSON *root, ck_oai_request *r, char *err, size_t errlen) {
    const cJSON *p = field(root, "prompt");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1) p = cJSON_GetArrayItem(p, 0);
    if (!cJSON_IsString(p)) return ck_err(err, errlen, "'prompt' is required: a string (or an array of one string)");
    int echo = 0;
    if (bool_field(root, "echo", &echo, err, errlen) != 0) return -1;
    if (echo || field(root, "suffix")) return ck_err(err, errlen, "'echo' and 'suffix' are not supported");
    r->prompt = p->valuestring;
    r->max_tokens = 16;
    return 0;
}

void ck_oai_defaults_init(ck_oai_defaults *d) {
    *d = (ck_oai_defaults){.temperature = 1.0, .top_p = 1.0, .repeat_penalty = 1.0, .repeat_last_n = 128};
}

int ck_oai_parse(const char *body, size_t len, int completion, const ck_oai_defaults *d, ck_oai_request *r,
                 char *err, size_t errlen) {
    ck_oai_defaults openai;
    if (!d) ck_oai_defaults_init(&openai), d = &openai;
    memset(r, 0, sizeof *r);
    r->temperature = d->temperature, r->top_p = d->top_p, r->top_k = d->top_k;
    r->repeat_penalty = d->repeat_penalty, r->repeat_last_n = d->repeat_last_n;
    int thinking = 1; /* checked here, passed to the template with the other kwargs */
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    r->json = root;
    if (!root) return ck_err(err, errlen, "the body is not valid JSON (at byte %zu)", end ? (size_t)(end - body) : (size_t)0);
    while (end && (size_t)(end - body) < len && strchr(" \t\r\n", *end)) end++;
    if (end && (size_t)(end - body) < len)
        return ck_err(err, errlen, "the body holds more than one JSON value (at byte %zu)", (size_t)(end - body));
    if (!cJSON_IsObject(root)) return ck_err(err, errlen, "the body is not a JSON object");
    if (ck_json_text_has_nul(body, len)) return ck_err(err, errlen, "strings must not contain U+0000 (\\u0000)");
    if (parse_unsupported(root, err, errlen) != 0) return -1;
    const cJSON *so = field(root, "stream_options"), *kw = field(root, "chat_template_kwargs");
    if (bool_field(root, "stream", &r->stream, err, errlen) != 0) return -1;
    if (so && (!cJSON_IsObject(so) || bool_field(so, "include_usage", &r->include_usage, err, errlen) != 0))
        return ck_err(err, errlen, "'stream_options' must be an object with a boolean include_usage");
    if (kw && (!cJSON_IsObject(kw) || bool_field(kw, "enable_thinking", &thinking, err, errlen) != 0))
        return ck_err(err, errlen, "'chat_template_kwargs' must be an object; enable_thinking a boolean");
    const cJSON *rf = field(root, "reasoning_format");
    if (rf && !cJSON_IsString(rf)) return ck_err(err, errlen, "'reasoning_format' must be a string");
    r->reasoning_raw = rf && !strcmp(rf->valuestring, "none");
    if (completion ? parse_prompt(root, r, err, errlen) : parse_messages(root, r, err, errlen)) return -1;
    if (d->max_tokens) r->max_tokens = d->max_tokens;
    if (parse_stop(root, r, err, errlen) != 0) return -1;
    return parse_sampling(root, r, err, errlen);
}

void ck_oai_request_free(ck_oai_request *r) {
    cJSON_free(r->messages_json);
    cJSON_free(r->tools_json);
    cJSON_free(r->kwargs_json);
    for (size_t i = 0; i < r->n_owned; i++) free(r->owned[i]);
    free(r->owned);
    free(r->msgs);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

const char *ck_oai_finish_reason(ck_finish f) { return f == CK_FINISH_LENGTH ? "length" : "stop"; }

/* ---- replies ---- */

static cJSON *envelope(const ck_oai_reply *r, const char *object) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)r->created);
    cJSON_AddStringToObject(o, "model", r->model);
    cJSON_AddStringToObject(o, "system_fingerprint", "cake");
    return o;
}

static cJSON *usage(size_t n_prompt, size_t n_gen) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)n_gen);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(n_prompt + n_gen));
    return u;
}

/* A JSON string of text[0..len) (which may hold NULs or be cut anywhere). */
static cJSON *string_n(const char *text, size_t len) {
    char *s = malloc(len + 1);
    if (!s) return NULL;
    memcpy(s, text, len);
    s[len] = 0;
    cJSON *v = cJSON_CreateString(s);
    free(s);
    return v;
}

static char *print(cJSON *o) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

char *ck_oai_completion(const ck_oai_reply *r, const char *reason, size_t rlen, const char *text, size_t len,
                        const char *calls, ck_finish f, size_t n_prompt, size_t n_gen) {
    cJSON *tc = calls ? cJSON_Parse(calls) : NULL;
    cJSON *o = envelope(r, r->text ? "text_completion" : "chat.completion"), *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    if (r->text) {
        cJSON_AddItemToObject(c, "text", string_n(text, len));
    } else {
        cJSON *msg = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        if (tc && !len) cJSON_AddNullToObject(msg, "content");
        else cJSON_AddItemToObject(msg, "content", string_n(text, len));
        if (rlen) cJSON_AddItemToObject(msg, "reasoning_content", string_n(reason, rlen));
        if (tc) cJSON_AddItemToObject(msg, "tool_calls", tc), tc = NULL;
    }
    cJSON_Delete(tc);
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", calls ? "tool_calls" : ck_oai_finish_reason(f));
    cJSON_AddItemToArray(choices, c);
    cJSON_AddItemToObject(o, "usage", usage(n_prompt, n_gen));
    return print(o);
}

/* "data: " + json + "\n\n" */
static char *event(char *json) {
    if (!json) return NULL;
    size_t n = strlen(json);
    char *s = malloc(n + 9);
    if (s) snprintf(s, n + 9, "data: %s\n\n", json);
    free(json);
    return s;
}

char *ck_oai_chunk(const ck_oai_reply *r, const char *role, const char *reason, size_t rlen, const char *text,
                   size_t len, const char *finish, long long n_prompt, long long n_gen) {
    cJSON *o = envelope(r, r->text ? "text_completion" : "chat.completion.chunk");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON *delta = r->text ? NULL : cJSON_AddObjectToObject(c, "delta");
    if (r->text) {
        cJSON_AddItemToObject(c, "text", string_n(finish ? "" : text, finish ? 0 : len));
    } else if (role) {
        cJSON_AddStringToObject(delta, "role", role);
        cJSON_AddStringToObject(delta, "content", "");
    } else if (!finish) {
        if (rlen) cJSON_AddItemToObject(delta, "reasoning_content", string_n(reason, rlen));
        if (len || !rlen) cJSON_AddItemToObject(delta, "content", string_n(text, len));
    }
    cJSON_AddNullToObject(c, "logprobs");
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
    else cJSON_AddNullToObject(c, "finish_reason");
    cJSON_AddItemToArray(choices, c);
    if (finish && n_prompt >= 0 && n_gen >= 0) cJSON_AddItemToObject(o, "usage", usage((size_t)n_prompt, (size_t)n_gen));
    return event(print(o));
}

char *ck_oai_tool_calls_chunk(const ck_oai_reply *r, const char *calls) {
    cJSON *o = envelope(r, "chat.completion.chunk"), *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject(), *delta = cJSON_AddObjectToObject(c, "delta"), *tc = cJSON_Parse(calls), *it;
    int i = 0;
    cJSON_ArrayForEach(it, tc) cJSON_AddNumberToObject(it, "index", i++);
    cJSON_AddItemToObject(delta, "tool_calls", tc ? tc : cJSON_CreateArray());
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddNullToObject(c, "finish_reason");
    cJSON_AddItemToArray(choices, c);
    return event(print(o));
}

char *ck_oai_usage_chunk(const ck_oai_reply *r, size_t n_prompt, size_t n_gen) {
    cJSON *o = envelope(r, r->text ? "text_completion" : "chat.completion.chunk");
    cJSON_AddArrayToObject(o, "choices");
    cJSON_AddItemToObject(o, "usage", usage(n_prompt, n_gen));
    return event(print(o));
}

char *ck_oai_error(const char *message, const char *type, const char *code) {
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNullToObject(e, "param");
    if (code) cJSON_AddStringToObject(e, "code", code);
    else cJSON_AddNullToObject(e, "code");
    return print(o);
}

char *ck_oai_models(const char *model, long long created) {
    cJSON *o = cJSON_CreateObject(), *data = cJSON_AddArrayToObject(o, "data"), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddStringToObject(m, "id", model);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)created);
    cJSON_AddStringToObject(m, "owned_by", "cake");
    cJSON_AddItemToArray(data, m);
    return print(o);
}
