/* toolcall.c — see toolcall.h. */
#include "server/toolcall.h"

#include "base/grow.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char OPEN[] = "<tool_call>", CLOSE[] = "</tool_call>";
#define OPEN_LEN (sizeof OPEN - 1)
#define CLOSE_LEN (sizeof CLOSE - 1)

void ck_toolcalls_init(ck_toolcalls *t) { memset(t, 0, sizeof *t); }

void ck_toolcalls_free(ck_toolcalls *t) {
    free(t->rest);
    memset(t, 0, sizeof *t);
}

static int keep(ck_toolcalls *t, const char *s, size_t n) {
    if (!n) return 0;
    char *p = ck_grow(t->rest, &t->cap_rest, t->n_rest + n + 1, 1, 256);
    if (!p) return -1;
    t->rest = p;
    memcpy(t->rest + t->n_rest, s, n);
    t->n_rest += n;
    t->rest[t->n_rest] = 0;
    return 0;
}

int ck_toolcalls_feed(ck_toolcalls *t, const char *s, size_t n, int last, char *out, size_t *on) {
    if (t->collecting) return keep(t, s, n);
    /* what was held and s, as one piece */
    char *buf = malloc(t->n_held + n + 1);
    if (!buf) return -1;
    memcpy(buf, t->held, t->n_held);
    memcpy(buf + t->n_held, s, n);
    size_t total = t->n_held + n;
    t->n_held = 0;
    buf[total] = 0;
    char *at = NULL;
    for (size_t i = 0; i + OPEN_LEN <= total && !at; i++)
        if (!memcmp(buf + i, OPEN, OPEN_LEN)) at = buf + i;
    int rc = 0;
    if (at) {
        memcpy(out + *on, buf, (size_t)(at - buf));
        *on += (size_t)(at - buf);
        t->collecting = 1;
        rc = keep(t, at, total - (size_t)(at - buf));
    } else {
        size_t hold = 0; /* a tail that may be the start of "<tool_call>" waits */
        for (size_t k = total < OPEN_LEN - 1 ? total : OPEN_LEN - 1; k > 0 && !last && !hold; k--)
            if (!memcmp(buf + total - k, OPEN, k)) hold = k;
        memcpy(out + *on, buf, total - hold);
        *on += total - hold;
        memcpy(t->held, buf + total - hold, hold);
        t->n_held = hold;
    }
    free(buf);
    return rc;
}

static int is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* The blocks of rest[0..n) as tool calls appended to calls; 0, or -1 when rest is not a run of blocks. */
static int parse_blocks(const char *rest, size_t n, const char *id, cJSON *calls) {
    size_t i = 0;
    for (int k = 0;; k++) {
        while (i < n && is_ws(rest[i])) i++;
        if (i == n) return k > 0 ? 0 : -1;
        if (n - i < OPEN_LEN || memcmp(rest + i, OPEN, OPEN_LEN)) return -1;
        i += OPEN_LEN;
        const char *end = NULL;
        for (size_t j = i; j + CLOSE_LEN <= n && !end; j++)
            if (!memcmp(rest + j, CLOSE, CLOSE_LEN)) end = rest + j;
        if (!end) return -1;
        cJSON *o = cJSON_ParseWithLength(rest + i, (size_t)(end - rest) - i);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(o, "arguments");
        if (!cJSON_IsObject(o) || !cJSON_IsString(name) || (args && !cJSON_IsObject(args) && !cJSON_IsString(args))) {
            cJSON_Delete(o);
            return -1;
        }
        char *args_text = !args ? strdup("{}") : cJSON_IsString(args) ? strdup(args->valuestring)
                                                                      : cJSON_PrintUnformatted(args);
        char call_id[96];
        snprintf(call_id, sizeof call_id, "call_%s_%d", id, k);
        cJSON *c = cJSON_CreateObject(), *fn = cJSON_CreateObject();
        int ok = args_text && c && fn && cJSON_AddStringToObject(c, "id", call_id) &&
                 cJSON_AddStringToObject(c, "type", "function") && cJSON_AddStringToObject(fn, "name", name->valuestring) &&
                 cJSON_AddStringToObject(fn, "arguments", args_text);
        if (ok) cJSON_AddItemToObject(c, "function", fn), fn = NULL;
        if (ok) cJSON_AddItemToArray(calls, c), c = NULL;
        cJSON_Delete(c);
        cJSON_Delete(fn);
        if (args_text && args && !cJSON_IsString(args)) cJSON_free(args_text);
        else free(args_text);
        cJSON_Delete(o);
        if (!ok) return -1;
        i = (size_t)(end - rest) + CLOSE_LEN;
    }
}

char *ck_toolcalls_end(ck_toolcalls *t, const char *id, const char **text, size_t *len) {
    *text = t->rest ? t->rest : "";
    *len = t->n_rest;
    if (!t->n_rest) return NULL;
    cJSON *calls = cJSON_CreateArray();
    char *out = calls && parse_blocks(t->rest, t->n_rest, id, calls) == 0 ? cJSON_PrintUnformatted(calls) : NULL;
    cJSON_Delete(calls);
    if (out) *len = 0;
    return out;
}
