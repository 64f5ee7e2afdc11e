/* remote.c — the chat backend that talks to an OpenAI-compatible server (cake serve, llama-server, vLLM,
 * OpenAI itself) with libcurl: GET /v1/models once to check the server and name the model, then one
 * streamed POST /v1/chat/completions per turn. The transfer runs on curl's multi interface, waiting on the
 * socket and on stdin together, so keys (Ctrl+C) are handled within ~100 ms even while the server is
 * silent. Reasoning sent apart (delta.reasoning_content) is shown as a <think> block; a server that
 * answers with one JSON reply instead of a stream is accepted too. A streamed piece is not a token: the
 * token count and speed come from the server's usage, and without it the turn reports the characters
 * received and the time taken.
 * Invariants: replies are capped (1 MiB of non-stream body, 1 MiB per event); the server's error message
 * is reported when it answers with an error status or an error object. */
#include "tui/tui.h"

#include "base/err.h"
#include "tui/openai.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BODY_MAX (1u << 20)

typedef struct remote {
    char base[1024];       /* the URL without a trailing "/" or "/v1" */
    char auth[1100];       /* "Authorization: Bearer ...", or "" */
    char model[128];       /* the id /v1/models listed first */
    ck_chat_remote_opts o;
} remote;

typedef struct stream {
    CURL *h;
    const ck_chat_io *io;
    ck_chat_stats *st;
    ck_sse sse;
    int checked, is_sse;   /* the status and content type have been looked at */
    long status;
    char *body;            /* a non-stream reply (or an error), capped at BODY_MAX */
    size_t body_len;
    int done, stop, failed, finished, in_reasoning;
    size_t chars;          /* characters of reasoning and answer received */
    int64_t usage;         /* usage.completion_tokens, -1 until seen */
    double t_first, t_last; /* when the first and the last text arrived, 0 before */
    char err[512];
} stream;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Hands text to the UI: the server's (counted), or a tag of the <think> block (not counted). */
static int emit(stream *s, const char *text, int counted) {
    if (!*text) return 0;
    if (counted) {
        s->t_last = now_s();
        if (s->t_first == 0) s->t_first = s->t_last;
        for (const char *c = text; *c; c++) s->chars += ((unsigned char)*c & 0xC0) != 0x80;
    }
    if (s->io->on_text(s->io->ui, text, strlen(text))) s->stop = 1;
    return s->stop;
}

/* One chunk's text (reasoning first, as a <think> block). Returns nonzero to stop reading. */
static int take_chunk(stream *s, const ck_chunk *c) {
    if (c->error[0]) {
        ck_err(s->err, sizeof s->err, "the server reported: %s", c->error);
        s->failed = 1;
        return 1;
    }
    if (c->completion_tokens >= 0) s->usage = c->completion_tokens;
    if (c->prompt_tokens >= 0) s->st->n_prompt = (size_t)c->prompt_tokens;
    if (c->finish[0]) s->finished = 1, s->st->length = !strcmp(c->finish, "length");
    if (c->reasoning && *c->reasoning) {
        if (!s->in_reasoning && emit(s, "<think>", 0)) return 1;
        s->in_reasoning = 1;
        if (emit(s, c->reasoning, 1)) return 1;
    }
    if (c->content && *c->content) {
        if (s->in_reasoning && emit(s, "</think>\n\n", 0)) return 1;
        s->in_reasoning = 0;
        if (emit(s, c->content, 1)) return 1;
    }
    return 0;
}

static int on_event(void *user, const char *data, size_t len) {
    stream *s = user;
    ck_chunk c;
    if (ck_chunk_parse(data, len, &c, s->err, sizeof s->err) != 0) {
        s->failed = 1;
        return 1;
    }
    if (c.done) s->done = 1;
    int rc = c.done ? 1 : take_chunk(s, &c);
    ck_chunk_free(&c);
    return rc;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *user) {
    stream *s = user;
    size_t n = size * nmemb;
    if (!s->checked) {
        const char *ct = NULL;
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
        curl_easy_getinfo(s->h, CURLINFO_CONTENT_TYPE, &ct);
        s->is_sse = s->status == 200 && ct && strstr(ct, "text/event-stream");
        s->checked = 1;
    }
    if (s->is_sse) {
        int rc = ck_sse_feed(&s->sse, ptr, n, on_event, s, s->err, sizeof s->err);
        if (rc < 0) s->failed = 1;
        return rc ? 0 : n; /* 0 ends the transfer ([DONE], a stop, an error) */
    }
    size_t room = BODY_MAX - s->body_len, k = n < room ? n : room;
    char *b = k ? realloc(s->body, s->body_len + k + 1) : s->body;
    if (!b) return 0;
    memcpy(b + s->body_len, ptr, k);
    s->body = b, s->body_len += k;
    b[s->body_len] = 0;
    return n;
}

/* The server's reply when it was not a 200 stream: an error, or a whole non-streamed completion. */
static void take_body(stream *s) {
    ck_chunk c;
    int parsed = s->body && ck_chunk_parse(s->body, s->body_len, &c, s->err, sizeof s->err) == 0;
    if (s->status != 200) {
        ck_err(s->err, sizeof s->err, "the server answered HTTP %ld%s%s", s->status, parsed && c.error[0] ? ": " : "",
                 parsed && c.error[0] ? c.error : "");
        s->failed = 1;
    } else if (!parsed) {
        s->failed = 1;
    } else {
        take_chunk(s, &c);
        s->done = 1;
    }
    if (parsed) ck_chunk_free(&c);
}

static void set_common(CURL *h, const remote *r, struct curl_slist *hdr, const char *url, char *errbuf) {
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "cake-chat");
    (void)r;
}

static struct curl_slist *headers(const remote *r, int json) {
    struct curl_slist *h = NULL, *t;
    if (json && (t = curl_slist_append(h, "Content-Type: application/json"))) h = t;
    if (json && (t = curl_slist_append(h, "Accept: text/event-stream"))) h = t;
    if (r->auth[0] && (t = curl_slist_append(h, r->auth))) h = t;
    return h;
}

/* Runs the transfer, calling the UI's poll between waits. Returns the transfer's result. */
static CURLcode pump(CURL *h, stream *s) {
    CURLM *m = curl_multi_init();
    if (!m) return CURLE_OUT_OF_MEMORY;
    curl_multi_add_handle(m, h);
    CURLcode res = CURLE_OK;
    for (int running = 1; running;) {
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            res = CURLE_FAILED_INIT;
            break;
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)))
            if (msg->msg == CURLMSG_DONE) res = msg->data.result;
        if (!running || s->stop || s->done || s->failed) break;
        struct curl_waitfd fd = {STDIN_FILENO, CURL_WAIT_POLLIN, 0};
        curl_multi_poll(m, &fd, 1, 100, NULL);
        if (s->io->poll(s->io->ui)) s->stop = 1;
    }
    curl_multi_remove_handle(m, h);
    curl_multi_cleanup(m);
    return res;
}

/* What the turn's outcome is, once the transfer ended. Returns 0 or -1 (s->err says why). */
static int conclude(stream *s, CURLcode res, const char *errbuf, const char *url) {
    if (s->stop) {
        s->st->stopped = 1;
        return 0;
    }
    if (s->failed) return -1;
    if (!s->is_sse && res == CURLE_OK) take_body(s);
    else if (res != CURLE_OK && !s->done)
        ck_err(s->err, sizeof s->err, "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(res));
    else if (!s->done && !s->finished)
        ck_err(s->err, sizeof s->err, "the server closed the stream before it finished");
    else return 0;
    return s->failed || s->err[0] ? -1 : 0;
}

static int remote_turn(void *ctx, const ck_message *msgs, size_t n, const ck_chat_io *io, ck_chat_stats *st, char *err,
                       size_t errlen) {
    remote *r = ctx;
    ck_req_msg *rm = malloc((n ? n : 1) * sizeof *rm);
    if (!rm) return ck_err(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) rm[i] = (ck_req_msg){msgs[i].role, msgs[i].content};
    ck_req_params p = r->o.p;
    p.model = r->model;
    char *body = ck_chat_request_json(&p, rm, n);
    free(rm);
    char url[1200], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof url, "%s/v1/chat/completions", r->base);
    struct curl_slist *hdr = headers(r, 1);
    CURL *h = body ? curl_easy_init() : NULL;
    if (!h) {
        free(body);
        curl_slist_free_all(hdr);
        return ck_err(err, errlen, "out of memory");
    }
    stream s = {.h = h, .io = io, .st = st, .usage = -1};
    ck_sse_init(&s.sse, BODY_MAX);
    set_common(h, r, hdr, url, errbuf);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    double t0 = now_s();
    CURLcode res = pump(h, &s);
    int rc = conclude(&s, res, errbuf, url);
    st->n_gen = s.usage, st->n_chars = s.chars, st->secs = now_s() - t0;
    if (s.usage > 1 && s.t_last > s.t_first) st->tok_s = (double)(s.usage - 1) / (s.t_last - s.t_first);
    if (rc != 0) ck_err(err, errlen, "%s", s.err);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    ck_sse_free(&s.sse);
    free(s.body);
    free(body);
    return rc;
}

static void remote_close(void *ctx) {
    free(ctx);
}

/* GET /v1/models: checks the server and names the model. */
static int check_server(remote *r, char *name, size_t namelen, char *err, size_t errlen) {
    char url[1200], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof url, "%s/v1/models", r->base);
    struct curl_slist *hdr = headers(r, 0);
    CURL *h = curl_easy_init();
    if (!h) return ck_err(err, errlen, "out of memory");
    stream s = {.h = h, .usage = -1};
    set_common(h, r, hdr, url, errbuf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    s.checked = 1; /* collect the body whatever it is */
    CURLcode res = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    int rc = 0;
    if (res != CURLE_OK) rc = ck_err(err, errlen, "cannot reach %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(res));
    else if (status == 401 || status == 403)
        rc = ck_err(err, errlen, "%s answered HTTP %ld: give the server's key with --api-key", url, status);
    else if (status != 200) rc = ck_err(err, errlen, "%s answered HTTP %ld", url, status);
    else if (ck_models_first_id(s.body ? s.body : "", s.body_len, name, namelen, err, errlen) != 0) rc = -1;
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    free(s.body);
    return rc;
}

int ck_chat_remote_open(const ck_chat_remote_opts *o, ck_chat_backend *out, char *err, size_t errlen) {
    size_t n = strlen(o->url);
    if (n == 0 || n >= 1000 || (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8)))
        return ck_err(err, errlen, "the server URL must start with http:// or https:// (got '%.100s')", o->url);
    if (o->api_key && strlen(o->api_key) > 1000) return ck_err(err, errlen, "the API key is too long");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return ck_err(err, errlen, "cannot initialize libcurl");
    remote *r = calloc(1, sizeof *r);
    if (!r) return ck_err(err, errlen, "out of memory");
    r->o = *o;
    memcpy(r->base, o->url, n + 1);
    while (n > 0 && r->base[n - 1] == '/') r->base[--n] = 0;
    if (n >= 3 && !strcmp(r->base + n - 3, "/v1")) r->base[n -= 3] = 0;
    if (o->api_key && *o->api_key) snprintf(r->auth, sizeof r->auth, "Authorization: Bearer %s", o->api_key);
    memset(out, 0, sizeof *out);
    if (check_server(r, out->name, sizeof out->name, err, errlen) != 0) {
        free(r);
        return -1;
    }
    snprintf(r->model, sizeof r->model, "%s", out->name);
    out->turn = remote_turn, out->close = remote_close, out->ctx = r;
    return 0;
}
