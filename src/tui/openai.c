/* openai.c — see openai.h. The SSE splitter follows the WHATWG event-stream rules that matter to chat
 * servers (data fields, CR/LF/CRLF line ends, comments, blank-line dispatch); the chunk reader accepts the
 * shapes OpenAI, llama-server, vLLM and cake send. */
#include "tui/openai.h"

#include "base/err.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ck_sse_init(ck_sse *p, size_t max_bytes) {
    memset(p, 0, sizeof *p);
    p->max_bytes = max_bytes;
}

void ck_sse_free(ck_sse *p) {
    free(p->line);
    free(p->data);
    memset(p, 0, sizeof *p);
}

static int reserve(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t want = *cap ? *cap * 2 : 256;
    if (want < need) want = need;
    char *q = realloc(*buf, want);
    if (!q) return -1;
    *buf = q, *cap = want;
    return 0;
}

/* One complete line (without its end). Returns as ck_sse_feed. */
static int sse_line(ck_sse *p, int (*on_event)(void *, const char *, size_t), void *user, char *err,
                    size_t errlen) {
    const char *l = p->line ? p->line : "";
    size_t n = p->line_len;
    if (n == 0) { /* blank line: dispatch */
        if (!p->has_data) return 0;
        p->has_data = 0;
        size_t len = p->data_len;
        p->data_len = 0;
        if (reserve(&p->data, &p->data_cap, len + 1) != 0) return ck_err(err, errlen, "out of memory");
        p->data[len] = 0;
        return on_event(user, p->data, len);
    }
    if (n < 5 || memcmp(l, "data", 4) != 0 || l[4] != ':') return 0; /* comment or another field */
    size_t v = 5 + (n > 5 && l[5] == ' ');
    size_t add = (n - v) + (p->has_data ? 1 : 0);
    if (p->data_len + add > p->max_bytes) return ck_err(err, errlen, "an event of the stream exceeds %zu bytes", p->max_bytes);
    if (reserve(&p->data, &p->data_cap, p->data_len + add + 1) != 0) return ck_err(err, errlen, "out of memory");
    if (p->has_data) p->data[p->data_len++] = '\n';
    memcpy(p->data + p->data_len, l + v, n - v);
    p->data_len += n - v;
    p->has_data = 1;
    return 0;
}

int ck_sse_feed(ck_sse *p, const char *buf, size_t n, int (*on_event)(void *user, const char *data, size_t len),
                void *user, char *err, size_t errlen) {
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if (c == '\n' && p->after_cr) {
            p->after_cr = 0;
            continue;
        }
        p->after_cr = c == '\r';
        if (c == '\n' || c == '\r') {
            int rc = sse_line(p, on_event, user, err, errlen);
            p->line_len = 0;
            if (rc != 0) return rc;
            continue;
        }
        if (p->line_len + 1 > p->max_bytes) return ck_err(err, errlen, "a line of the stream exceeds %zu bytes", p->max_bytes);
        if (reserve(&p->line, &p->line_cap, p->line_len + 1) != 0) return ck_err(err, errlen, "out of memory");
        p->line[p->line_len++] = c;
    }
    return 0;
}

void ck_chunk_free(ck_chunk *c) {
    free(c->content);
    free(c->reasoning);
    c->content = c->reasoning = NULL;
}

/* A copy of obj[name] when it is a string, NULL otherwise (or when out of memory). */
static char *dup_str(const cJSON *obj, const char *name) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(s) && s->valuestring ? strdup(s->valuestring) : NULL;
}

static int64_t get_count(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15 ? (int64_t)v->valuedouble : -1;
}

static void read_error(const cJSON *e, ck_chunk *out) {
    const cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : e;
    const char *msg = cJSON_IsString(m) && m->valuestring ? m->valuestring : "the server reported an error";
    snprintf(out->error, sizeof out->error, "%s", msg);
}

int ck_chunk_parse(const char *data, size_t len, ck_chunk *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->prompt_tokens = out->completion_tokens = -1;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        out->done = 1;
        return 0;
    }
    cJSON *j = cJSON_ParseWithLength(data, len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return ck_err(err, errlen, "the server sent something that is not a JSON object: %.60s", data);
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (e && !cJSON_IsNull(e)) read_error(e, out);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(u)) {
        out->prompt_tokens = get_count(u, "prompt_tokens");
        out->completion_tokens = get_count(u, "completion_tokens");
    }
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "choices");
    const cJSON *c0 = cJSON_IsArray(ch) ? cJSON_GetArrayItem(ch, 0) : NULL;
    if (cJSON_IsObject(c0)) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(c0, "delta");
        if (!cJSON_IsObject(d)) d = cJSON_GetObjectItemCaseSensitive(c0, "message");
        if (cJSON_IsObject(d)) {
            out->content = dup_str(d, "content");
            out->reasoning = dup_str(d, "reasoning_content");
            if (!out->reasoning) out->reasoning = dup_str(d, "reasoning");
        }
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(c0, "finish_reason");
        if (cJSON_IsString(f) && f->valuestring) snprintf(out->finish, sizeof out->finish, "%s", f->valuestring);
    }
    cJSON_Delete(j);
    return 0;
}

char *ck_chat_request_json(const ck_req_params *p, const ck_req_msg *msgs, size_t n) {
    cJSON *j = cJSON_CreateObject(), *arr = NULL, *so = NULL;
    char seed[32];
    int ok = j != NULL;
    if (ok && p->model) ok = cJSON_AddStringToObject(j, "model", p->model) != NULL;
    ok = ok && (arr = cJSON_AddArrayToObject(j, "messages")) != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        if (!m || !cJSON_AddItemToArray(arr, m)) {
            cJSON_Delete(m);
            ok = 0;
            break;
        }
        ok = cJSON_AddStringToObject(m, "role", msgs[i].role) && cJSON_AddStringToObject(m, "content", msgs[i].content);
    }
    ok = ok && cJSON_AddTrueToObject(j, "stream") && (so = cJSON_AddObjectToObject(j, "stream_options")) &&
         cJSON_AddTrueToObject(so, "include_usage") && cJSON_AddNumberToObject(j, "temperature", p->temperature) &&
         cJSON_AddNumberToObject(j, "top_p", p->top_p);
    if (ok && p->max_tokens >= 0) ok = cJSON_AddNumberToObject(j, "max_tokens", (double)p->max_tokens) != NULL;
    if (ok && p->has_top_k) ok = cJSON_AddNumberToObject(j, "top_k", (double)p->top_k) != NULL;
    if (ok && p->has_repeat_penalty) ok = cJSON_AddNumberToObject(j, "repeat_penalty", p->repeat_penalty) != NULL;
    if (ok && p->has_repeat_last_n) ok = cJSON_AddNumberToObject(j, "repeat_last_n", (double)p->repeat_last_n) != NULL;
    if (ok && p->has_seed) {
        snprintf(seed, sizeof seed, "%" PRIu64, p->seed);
        ok = cJSON_AddRawToObject(j, "seed", seed) != NULL;
    }
    char *s = ok ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return s;
}

int ck_models_first_id(const char *json, size_t len, char *id, size_t idlen, char *err, size_t errlen) {
    cJSON *j = cJSON_ParseWithLength(json, len);
    const cJSON *d = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "data") : NULL;
    const cJSON *m0 = cJSON_IsArray(d) ? cJSON_GetArrayItem(d, 0) : NULL;
    const cJSON *s = cJSON_IsObject(m0) ? cJSON_GetObjectItemCaseSensitive(m0, "id") : NULL;
    int rc = 0;
    if (!cJSON_IsString(s) || !s->valuestring || !*s->valuestring)
        rc = ck_err(err, errlen, "GET /v1/models did not list a model ({\"data\":[{\"id\":...}]})");
    else snprintf(id, idlen, "%s", s->valuestring);
    cJSON_Delete(j);
    return rc;
}
