/* server.c — the HTTP side of `cake serve` (see server.h), on libmicrohttpd with one thread per
 * connection: a slow or idle client holds only its own thread, and a streaming reply may block while it
 * waits for tokens. Routes: GET / (web UI), GET /v1/models, GET /api/v1/topology, GET /health,
 * POST /v1/chat/completions and /v1/completions (also under /api, and without /v1). Errors are OpenAI-shaped JSON: 400 malformed request,
 * 401 missing credentials, 404 unknown route, 405 wrong method, 413 body too large, 503 while loading.
 * A reply waiting for its job polls its socket: a client that went away cancels its generation.
 * Invariant: a request's job is released exactly once, by the response's free callback (or at once when
 * no response took it), so an abandoned stream never leaks and never keeps a slot busy. */
#include "server/server.h"

#include "base/err.h"
#include "server/openai.h"
#include "server/sched.h"
#include "server/think.h"
#include "server/toolcall.h"
#include "server/ui.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 200 /* how often a waiting reply checks its client and the server */
#define KEEPALIVE_S 15 /* a stream waiting this long (queued) sends an SSE comment, so that clients and
                        * proxies with idle timeouts keep the connection */

typedef struct server {
    const ck_server_opts *o;
    atomic_int ready;          /* the model is loaded and the scheduler runs */
    atomic_int stopping;
    atomic_int requests;       /* requests in flight: a stop lets them send their last words first */
    ck_engine *e;
    ck_sched *sched;
    atomic_ullong next_id;
} server;

/* Per request: the body as it arrives. */
typedef struct request {
    char *body;
    size_t n, cap;
    int too_big;
} request;

/* ---- plain replies ---- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type, char *body) {
    const char *b = body ? body : "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\"}}";
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(b), (void *)b, MHD_RESPMEM_MUST_COPY);
    free(body);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    enum MHD_Result rc = MHD_queue_response(c, body ? status : 500, r);
    MHD_destroy_response(r);
    return rc;
}

/* The header names a preflight asks for, when they are a plain list of names (letters, digits, '-', '_',
 * commas and spaces, at most 1 KiB), else NULL. */
static const char *asked_headers(struct MHD_Connection *c) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
    if (!h || strlen(h) > 1024) return NULL;
    for (const char *p = h; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-_, ", *p)) return NULL;
    return h;
}

/* The answer to a CORS preflight: any origin may call the API with JSON bodies, an API key and the other
 * headers it asks for (the openai SDK's X-Stainless-*, for one). */
static enum MHD_Result preflight(struct MHD_Connection *c) {
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    const char *asked = asked_headers(c);
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    MHD_add_response_header(r, "Access-Control-Allow-Headers", asked && *asked ? asked : "Authorization, Content-Type");
    MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
    enum MHD_Result rc = MHD_queue_response(c, 204, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_error_code(struct MHD_Connection *c, unsigned status, const char *message,
                                        const char *code) {
    const char *type = status == 401 ? "authentication_error" : status >= 500 ? "server_error" : "invalid_request_error";
    return reply(c, status, "application/json", ck_oai_error(message, type, code));
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *message) {
    const char *code = status == 404 ? "not_found" : status == 413 ? "request_too_large" : status == 503 ? "loading" : NULL;
    return reply_error_code(c, status, message, code);
}

/* ---- authentication ---- */

/* 1 when the request carries the API key or the UI credentials (or none are configured). */
static int authorized(server *sv, struct MHD_Connection *c) {
    const ck_server_opts *o = sv->o;
    if (!o->api_key && !o->ui_auth) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (o->api_key && h && !strncasecmp(h, "Bearer ", 7)) { /* the scheme's name is case-insensitive */
        h += 7;
        while (*h == ' ') h++;
        if (!strcmp(h, o->api_key)) return 1;
    }
    if (!o->ui_auth) return 0;
    char *pass = NULL, *user = MHD_basic_auth_get_username_password(c, &pass);
    int ok = 0;
    if (user && pass) {
        size_t ul = strlen(user);
        ok = !strncmp(o->ui_auth, user, ul) && o->ui_auth[ul] == ':' && !strcmp(o->ui_auth + ul + 1, pass);
    }
    MHD_free(user);
    MHD_free(pass);
    return ok;
}

static enum MHD_Result deny(server *sv, struct MHD_Connection *c) {
    if (!sv->o->ui_auth) return reply_error(c, 401, "missing or wrong API key (Authorization: Bearer ...)");
    const char *b = "{\"error\":{\"message\":\"authentication required\",\"type\":\"authentication_error\"}}";
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(b), (void *)b, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_basic_auth_fail_response(c, "cake", r);
    MHD_destroy_response(r);
    return rc;
}

/* ---- streamed and waited-for completions ---- */

typedef struct reply_ctx {
    server *sv;
    ck_job *job;
    ck_oai_reply meta;
    char id[48];
    int include_usage;
    int phase;                 /* stream: 0 role chunk, 1 content, 2 end events, 3 done */
    size_t sent;               /* bytes of the job's text already sent */
    char *pending;             /* formatted bytes not yet handed to MHD */
    size_t pending_n, pending_at;
    int fd;                    /* the client's socket, watched for a hang-up */
    time_t last_sent;          /* when the stream last sent something */
    int split;                 /* a chat reply: a leading <think> block goes to reasoning_content */
    ck_think think;            /* where the split stands */
    int tools;                 /* a chat reply to a request with tools: <tool_call> blocks are tool calls */
    ck_toolcalls tc;           /* where their split stands */
    int called;                /* the reply called tools (finish_reason "tool_calls") */
    int flushed;               /* the splits have had the end of the text */
} reply_ctx;

/* 1 when the client closed its end (or the socket failed). */
static int client_gone(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static void set_pending(reply_ctx *r, char *s) {
    free(r->pending);
    r->pending = s;
    r->pending_n = s ? strlen(s) : 0;
    r->pending_at = 0;
}

/* The text not yet sent, as one string (NULL when there is none). */
static char *take_text(reply_ctx *r, size_t *len) {
    size_t have = ck_job_len(r->job);
    if (have <= r->sent) return NULL;
    char *t = malloc(have - r->sent);
    if (!t) return NULL;
    *len = ck_job_read(r->job, r->sent, t, have - r->sent);
    r->sent += *len;
    return t;
}

/* The events after the text: the finish chunk (with usage) and the usage-only chunk when asked for, or
 * an error event when the generation failed (it did not finish) or `why` (not NULL) cut it, then [DONE]. */
static char *end_events(reply_ctx *r, const char *why) {
    ck_job_status st;
    ck_job_status_get(r->job, &st);
    if (!why && st.error[0]) why = st.error;
    char *err = why ? ck_oai_error(why, "server_error", NULL) : NULL;
    char *fin = err ? NULL
                    : ck_oai_chunk(&r->meta, NULL, NULL, 0, NULL, 0, r->called ? "tool_calls" : ck_oai_finish_reason(st.finish),
                                   (long long)st.n_prompt,
                                   (long long)st.n_gen);
    char *use = r->include_usage && !err ? ck_oai_usage_chunk(&r->meta, st.n_prompt, st.n_gen) : NULL;
    size_t n = (err ? strlen(err) + 9 : 0) + (fin ? strlen(fin) : 0) + (use ? strlen(use) : 0) + 16;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%s%s%s%s%sdata: [DONE]\n\n", err ? "data: " : "", err ? err : "", err ? "\n\n" : "",
                      fin ? fin : "", use ? use : "");
    free(err), free(fin), free(use);
    return out;
}

/* Two event strings as one (either may be NULL; both are freed). */
static char *join_events(char *a, char *b) {
    if (!a || !b) return a ? a : b;
    size_t na = strlen(a), nb = strlen(b);
    char *s = realloc(a, na + nb + 1);
    if (s) memcpy(s + na, b, nb + 1);
    else free(a);
    free(b);
    return s;
}

/* The next text t[0..len) of the reply (last: it ends there) through the splits: its reasoning (r->split),
 * the content that goes out now, and at the end the tool calls (r->tools), or the text that looked like
 * one, as content. Returns 0 with *reason, *content (malloc'd; lengths in *rn, *cn) and *calls (a JSON
 * array or NULL), or -1 when out of memory. */
static int split_text(reply_ctx *r, const char *t, size_t len, int last, char **reason, size_t *rn, char **content,
                      size_t *cn, char **calls) {
    size_t cap = len + CK_THINK_HOLD + CK_TOOLCALL_HOLD, tn = len;
    char *think = r->split && r->tools ? malloc(cap) : NULL; /* between the two splits, when both run */
    *reason = malloc(cap), *content = malloc(cap), *rn = *cn = 0, *calls = NULL;
    int rc = *reason && *content && (think || !(r->split && r->tools)) ? 0 : -1;
    const char *mid = t; /* the text after the think split */
    if (rc == 0 && r->split) {
        char *to = r->tools ? think : *content;
        tn = 0;
        ck_think_feed(&r->think, t, len, last, *reason, rn, to, &tn);
        mid = to;
    }
    if (rc == 0 && r->tools) rc = ck_toolcalls_feed(&r->tc, mid, tn, last, *content, cn);
    else if (rc == 0 && r->split) *cn = tn;
    else if (rc == 0) memcpy(*content, t, len), *cn = len;
    free(think);
    if (rc == 0 && last && r->tools) {
        const char *rest;
        size_t n;
        *calls = ck_toolcalls_end(&r->tc, r->id, &rest, &n);
        char *grown = n ? realloc(*content, *cn + n) : *content; /* what looked like a call is content */
        if (!grown) rc = -1;
        else memcpy(grown + *cn, rest, n), *content = grown, *cn += n;
    }
    r->called |= *calls != NULL;
    if (rc != 0) free(*reason), free(*content), free(*calls), *reason = *content = *calls = NULL;
    return rc;
}

/* The events of the next text t[0..len) (last: the reply ends there): its reasoning and content deltas,
 * then the tool calls' delta. NULL when it has nothing to say yet (the splits hold it all). */
static char *delta_events(reply_ctx *r, const char *t, size_t len, int last) {
    char *reason, *content, *calls, *out = NULL;
    size_t rn, cn;
    if (split_text(r, t, len, last, &reason, &rn, &content, &cn, &calls) != 0) return NULL;
    if (rn || cn) out = ck_oai_chunk(&r->meta, NULL, reason, rn, content, cn, NULL, -1, -1);
    if (calls) out = join_events(out, ck_oai_tool_calls_chunk(&r->meta, calls));
    free(reason);
    free(content);
    free(calls);
    return out;
}

/* Makes the next piece of the stream pending; returns 0, 1 at the end, -1 when the client is gone. */
static int stream_next(reply_ctx *r) {
    if (r->phase == 0) { /* a chat stream opens with the role; a text completion has none */
        r->phase = 1;
        if (r->meta.text) return stream_next(r);
        set_pending(r, ck_oai_chunk(&r->meta, "assistant", NULL, 0, NULL, 0, NULL, -1, -1));
        return 0;
    }
    if (r->phase == 2) {
        set_pending(r, end_events(r, NULL));
        r->phase = 3;
        return 0;
    }
    if (r->phase == 3) return 1;
    for (;;) {
        if (atomic_load(&r->sv->stopping)) { /* the stream ends with why, not with a cut connection */
            set_pending(r, end_events(r, "the server is shutting down"));
            r->phase = 3;
            return 0;
        }
        size_t len = 0;
        char *t = take_text(r, &len);
        ck_job_status st;
        ck_job_status_get(r->job, &st);
        int end = st.done && ck_job_len(r->job) == r->sent;
        if (t || (end && !r->flushed)) { /* (at the end, what the splits held goes out) */
            r->flushed = end;
            char *piece = delta_events(r, t ? t : "", t ? len : 0, end);
            free(t);
            if (piece) {
                set_pending(r, piece);
                return 0;
            }
        }
        if (end) {
            r->phase = 2;
            return stream_next(r);
        }
        if (ck_job_wait(r->job, r->sent, WAIT_MS) || atomic_load(&r->sv->stopping)) continue;
        if (client_gone(r->fd)) return -1;
        if (time(NULL) - r->last_sent >= KEEPALIVE_S) {
            set_pending(r, strdup(": keep-alive\n\n"));
            return 0;
        }
    }
}

/* A waited-for completion, once its job is done: 200 with the completion, or 500 with the generation's
 * error (a failed generation is never a 200). MHD_NO when the client left first or the server stops. */
static enum MHD_Result reply_whole(struct MHD_Connection *c, reply_ctx *r) {
    ck_job_status st;
    for (ck_job_status_get(r->job, &st); !st.done; ck_job_status_get(r->job, &st)) {
        if (atomic_load(&r->sv->stopping)) return reply_error_code(c, 503, "the server is shutting down", "shutting_down");
        if (!ck_job_wait(r->job, (size_t)-1, WAIT_MS) && client_gone(r->fd)) return MHD_NO;
    }
    if (st.error[0]) return reply(c, 500, "application/json", ck_oai_error(st.error, "server_error", NULL));
    size_t len = 0, rn = 0, cn = 0;
    char *t = take_text(r, &len), *reason, *content, *calls, *body = NULL;
    if (split_text(r, t ? t : "", t ? len : 0, 1, &reason, &rn, &content, &cn, &calls) == 0)
        body = ck_oai_completion(&r->meta, reason, rn, content, cn, calls, st.finish, st.n_prompt, st.n_gen);
    free(t);
    free(reason);
    free(content);
    free(calls);
    return body ? reply(c, 200, "application/json", body) : reply_error(c, 500, "out of memory");
}

static ssize_t reply_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    reply_ctx *r = cls;
    while (r->pending_at == r->pending_n) {
        int rc = stream_next(r);
        if (rc < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
        if (rc > 0) return MHD_CONTENT_READER_END_OF_STREAM;
        if (!r->pending) return MHD_CONTENT_READER_END_WITH_ERROR; /* out of memory */
    }
    size_t n = r->pending_n - r->pending_at < max ? r->pending_n - r->pending_at : max;
    memcpy(buf, r->pending + r->pending_at, n);
    r->pending_at += n;
    r->last_sent = time(NULL);
    return (ssize_t)n;
}

static void reply_free(void *cls) {
    reply_ctx *r = cls;
    ck_job_release(r->job); /* cancels the generation when it is still running */
    ck_toolcalls_free(&r->tc);
    free(r->pending);
    free(r);
}

/* ---- POST /v1/chat/completions ---- */

static void gen_params(server *sv, const ck_oai_request *q, ck_gen_params *p) {
    ck_gen_params_default(p);
    p->temperature = (float)q->temperature;
    p->top_p = (float)q->top_p;
    p->top_k = q->top_k;
    p->repeat_penalty = (float)q->repeat_penalty; /* 1 unless asked for: OpenAI has no repeat penalty */
    p->repeat_last_n = q->repeat_last_n;
    p->seed = q->has_seed ? q->seed : (uint64_t)time(NULL) ^ ((uint64_t)atomic_load(&sv->next_id) << 32);
    p->max_tokens = q->max_tokens ? q->max_tokens : (size_t)-1; /* the context ends it */
    p->stop = q->stop;
    p->n_stop = q->n_stop;
}

/* opened: the prompt opened a think block (the reply starts inside it). */
static enum MHD_Result respond_job(server *sv, struct MHD_Connection *c, ck_job *job, const ck_oai_request *q,
                                   int completion, int opened) {
    reply_ctx *r = calloc(1, sizeof *r);
    if (!r) {
        ck_job_release(job);
        return reply_error(c, 500, "out of memory");
    }
    r->sv = sv, r->job = job, r->include_usage = q->include_usage;
    snprintf(r->id, sizeof r->id, "%s-%llx%08llx", completion ? "cmpl" : "chatcmpl", (unsigned long long)time(NULL),
             (unsigned long long)atomic_fetch_add(&sv->next_id, 1));
    r->meta = (ck_oai_reply){r->id, sv->o->model_id, (long long)time(NULL), completion};
    r->last_sent = time(NULL); /* a queued stream's first keep-alive comes KEEPALIVE_S from now */
    r->split = !completion && !q->reasoning_raw;
    ck_think_init(&r->think, opened);
    r->tools = !completion && q->call_tools;
    ck_toolcalls_init(&r->tc);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fd = ci ? ci->connect_fd : -1;
    if (!q->stream) { /* this connection's own thread waits for the job, then answers */
        enum MHD_Result rc = reply_whole(c, r);
        reply_free(r);
        return rc;
    }
    int one = 1; /* each token goes out at once, not when Nagle's algorithm lets it */
    if (r->fd >= 0) setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, reply_read, r, reply_free);
    if (!resp) {
        reply_free(r);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    enum MHD_Result rc = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* The prompt's token ids: the messages through the chat template (a model without one continues the
 * messages' texts as one plain prompt, as `cake chat` does), or the text of a completion (with the
 * tokenizer's special tokens, e.g. BOS). Returns 0, or -1 with a message for a 400. */
static int prompt_ids(server *sv, const ck_oai_request *q, int completion, int32_t **ids, size_t *n, int *opened,
                      char *err, size_t errlen) {
    *opened = 0;
    if (completion) return ck_engine_encode(sv->e, q->prompt, strlen(q->prompt), 1, ids, n, err, errlen);
    int chat = ck_engine_chat(sv->e);
    if (chat == CK_CHAT_NONE) return ck_engine_plain_ids(sv->e, q->msgs, q->n_msgs, ids, n, err, errlen);
    if (chat != CK_CHAT_RENDERED) return ck_err(err, errlen, "the model's chat template is not one cake renders");
    char *text = NULL;
    size_t len = 0;
    int rc = ck_engine_chat_render(sv->e, q->messages_json, q->tools_json, q->kwargs_json, 1, &text, &len, ids, n, err,
                                   errlen);
    *opened = rc == 0 && ck_think_opened(text, len); /* the template opened a think block for the reply */
    free(text);
    return rc;
}

/* Positions a sequence may hold. */
static size_t context(const server *sv) {
    size_t model = ck_engine_max_ctx(sv->e);
    return sv->o->max_ctx && sv->o->max_ctx < model ? sv->o->max_ctx : model;
}

/* POST /v1/chat/completions and /v1/completions. */
static enum MHD_Result complete(server *sv, struct MHD_Connection *c, const request *rq, int completion) {
    char err[512];
    ck_oai_request q;
    int32_t *ids = NULL;
    size_t n = 0;
    int opened = 0;
    enum MHD_Result rc;
    if (ck_oai_parse(rq->body ? rq->body : "", rq->n, completion, sv->o->defaults, &q, err, sizeof err) != 0 ||
        prompt_ids(sv, &q, completion, &ids, &n, &opened, err, sizeof err) != 0) {
        rc = reply_error(c, 400, err);
    } else if (n == 0) {
        rc = reply_error(c, 400, "the prompt is empty");
    } else if (n >= context(sv)) {
        snprintf(err, sizeof err, "the prompt has %zu tokens; the context holds %zu", n, context(sv));
        rc = reply_error(c, 400, err);
    } else {
        ck_gen_params p;
        gen_params(sv, &q, &p);
        ck_job *job = ck_sched_submit(sv->sched, ids, n, &p, err, sizeof err);
        rc = job ? respond_job(sv, c, job, &q, completion, opened) : reply_error(c, 400, err);
    }
    free(ids);
    ck_oai_request_free(&q);
    return rc;
}

/* ---- GET routes ---- */

static long long rss_bytes(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    if (f) fclose(f);
    return (long long)resident * sysconf(_SC_PAGESIZE);
}

static char *topology(server *sv) {
    int64_t first, last;
    int embed, head;
    ck_engine_range(sv->e, &first, &last, &embed, &head);
    cJSON *o = cJSON_CreateObject(), *m = cJSON_AddObjectToObject(o, "master");
    cJSON_AddStringToObject(o, "model", sv->o->model_id);
    cJSON_AddNumberToObject(o, "n_layers", (double)ck_engine_n_layers(sv->e));
    cJSON_AddStringToObject(m, "name", "master");
    cJSON_AddStringToObject(m, "backend", ck_engine_backend(sv->e));
    if (last >= first) {
        cJSON *l = cJSON_AddArrayToObject(m, "layers");
        cJSON_AddItemToArray(l, cJSON_CreateNumber((double)first));
        cJSON_AddItemToArray(l, cJSON_CreateNumber((double)last));
    } else {
        cJSON_AddNullToObject(m, "layers");
    }
    cJSON_AddBoolToObject(m, "embed", embed);
    cJSON_AddBoolToObject(m, "head", head);
    cJSON_AddNumberToObject(m, "memory_bytes", (double)rss_bytes());
    char *w = sv->o->workers_json ? sv->o->workers_json(sv->o->user) : NULL;
    cJSON *workers = w ? cJSON_Parse(w) : NULL;
    free(w);
    cJSON_AddItemToObject(o, "workers", cJSON_IsArray(workers) ? workers : cJSON_CreateArray());
    if (workers && !cJSON_IsArray(workers)) cJSON_Delete(workers);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static char *health(server *sv) {
    size_t queued = 0, running = 0;
    ck_sched_load(sv->sched, &queued, &running);
    char *s = malloc(96);
    if (s) snprintf(s, 96, "{\"status\":\"ok\",\"running\":%zu,\"queued\":%zu}", running, queued);
    return s;
}

static enum MHD_Result ui(struct MHD_Connection *c) {
    struct MHD_Response *r = MHD_create_response_from_buffer(ck_ui_html_len, (void *)ck_ui_html, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

/* ---- routing ---- */

/* The route a path names: /api/v1/X is /v1/X (the original cake's prefix), and the OpenAI routes answer
 * without /v1 too (/chat/completions, /completions, /models: clients whose base URL lacks it), as
 * /v1/health answers as /health. */
static const char *api_path(const char *url) {
    static const char *const bare[][2] = {{"/chat/completions", "/v1/chat/completions"},
                                          {"/completions", "/v1/completions"},
                                          {"/models", "/v1/models"},
                                          {"/v1/health", "/health"}};
    for (size_t i = 0; i < sizeof bare / sizeof bare[0]; i++)
        if (!strcmp(url, bare[i][0])) return bare[i][1];
    return !strncmp(url, "/api/v1/", 8) ? url + 4 : url;
}

static enum MHD_Result route(server *sv, struct MHD_Connection *c, const char *url, const char *method,
                             const request *rq) {
    const char *p = api_path(url);
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    int is_text = !strcmp(p, "/v1/completions"), is_chat = is_text || !strcmp(p, "/v1/chat/completions");
    int is_models = !strcmp(p, "/v1/models");
    int is_topo = !strcmp(url, "/api/v1/topology"), is_ui = !strcmp(url, "/") || !strcmp(url, "/index.html");
    int is_health = !strcmp(p, "/health");
    if (!is_chat && !is_models && !is_topo && !is_ui && !is_health) return reply_error(c, 404, "unknown route");
    if (!strcmp(method, "OPTIONS")) return preflight(c);
    /* the web UI's page is public unless --ui-auth guards it: it asks for the API key itself */
    if (!is_health && !(is_ui && !sv->o->ui_auth) && !authorized(sv, c)) return deny(sv, c);
    if (is_chat ? !post : !get) return reply_error(c, 405, is_chat ? "use POST" : "use GET");
    if (rq->too_big) return reply_error(c, 413, "the request body is too large");
    if (is_ui) return ui(c);
    if (!atomic_load(&sv->ready)) return reply_error(c, 503, "the model is loading");
    if (is_models) return reply(c, 200, "application/json", ck_oai_models(sv->o->model_id, 0));
    if (is_topo) return reply(c, 200, "application/json", topology(sv));
    if (is_health) return reply(c, 200, "application/json", health(sv));
    return complete(sv, c, rq, is_text);
}

/* Accumulates the body up to max_body; past it the rest is read and dropped (a 413 follows). */
static void take_body(server *sv, request *rq, const char *data, size_t n) {
    if (rq->too_big || n > sv->o->max_body - rq->n) {
        rq->too_big = 1;
        return;
    }
    if (rq->n + n + 1 > rq->cap) {
        size_t cap = rq->cap ? rq->cap : 4096;
        while (cap < rq->n + n + 1) cap *= 2;
        char *b = realloc(rq->body, cap);
        if (!b) {
            rq->too_big = 1;
            return;
        }
        rq->body = b, rq->cap = cap;
    }
    memcpy(rq->body + rq->n, data, n);
    rq->n += n;
    rq->body[rq->n] = 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *data, size_t *data_size, void **con_cls) {
    (void)version;
    server *sv = cls;
    request *rq = *con_cls;
    if (!rq) { /* headers only: refuse a declared oversized body before it is sent */
        if (!(rq = calloc(1, sizeof *rq))) return MHD_NO;
        *con_cls = rq;
        atomic_fetch_add(&sv->requests, 1); /* until request_done: its reply has been sent (or abandoned) */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > sv->o->max_body) {
            rq->too_big = 1;
            return reply_error(c, 413, "the request body is too large");
        }
        return MHD_YES;
    }
    if (*data_size) {
        take_body(sv, rq, data, *data_size);
        *data_size = 0;
        return MHD_YES;
    }
    return route(sv, c, url, method, rq);
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t) {
    (void)c, (void)t;
    server *sv = cls;
    request *rq = *con_cls;
    if (rq) {
        free(rq->body);
        atomic_fetch_sub(&sv->requests, 1);
    }
    free(rq);
    *con_cls = NULL;
}

/* ---- start and stop ---- */

static struct MHD_Daemon *listen_on(server *sv, const char *api, char *err, size_t errlen) {
    char host[256];
    const char *colon = strrchr(api, ':');
    if (!colon || colon == api || (size_t)(colon - api) >= sizeof host || !colon[1])
        return ck_err(err, errlen, "--api: '%s' is not HOST:PORT", api), NULL;
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || errno || port < 1 || port > 65535 || colon[1] < '0' || colon[1] > '9')
        return ck_err(err, errlen, "--api: port '%s' is not 1-65535", colon + 1), NULL;
    memcpy(host, api, (size_t)(colon - api));
    host[colon - api] = 0;
    char *h = host;
    if (h[0] == '[' && h[strlen(h) - 1] == ']') h++, h[strlen(h) - 1] = 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *ai = NULL;
    int gai = getaddrinfo(h, colon + 1, &hints, &ai);
    if (gai != 0) return ck_err(err, errlen, "--api: cannot resolve '%s': %s", api, gai_strerror(gai)), NULL;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                     (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d = MHD_start_daemon(flags, 0, NULL, NULL, handle, sv, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_CONNECTION_TIMEOUT,
                                            (unsigned)60, MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
                                            MHD_OPTION_NOTIFY_COMPLETED, request_done, sv, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!d) ck_err(err, errlen, "cannot listen on %s (address in use, or not an address of this machine?)", api);
    return d;
}

static int start_engine(server *sv, char *err, size_t errlen) {
    const ck_server_opts *o = sv->o;
    if (o->load(o->user, &sv->e, err, errlen) != 0) return -1;
    ck_sched_opts so = {sv->e, o->parallel, o->max_ctx, o->session_open, o->user};
    return ck_sched_start(&so, &sv->sched, err, errlen);
}

int ck_server_run(const ck_server_opts *o, volatile sig_atomic_t *stop, char *err, size_t errlen) {
    server sv = {.o = o};
    struct MHD_Daemon *d = listen_on(&sv, o->api, err, errlen);
    if (!d) return -1;
    int rc = start_engine(&sv, err, errlen);
    if (rc == 0) {
        atomic_store(&sv.ready, 1);
        if (o->on_ready) o->on_ready(o->user, o->api);
        while (!*stop) usleep(100 * 1000);
    }
    atomic_store(&sv.ready, 0); /* new requests get 503 */
    atomic_store(&sv.stopping, 1); /* replies in flight end, saying why */
    for (int i = 0; i < 20 && atomic_load(&sv.requests) > 0; i++) usleep(100 * 1000); /* their last words go out */
    MHD_stop_daemon(d);
    ck_sched_stop(sv.sched);
    ck_engine_close(sv.e);
    return rc;
}
