/* openai.h — the pure half of the terminal chat's remote mode: building an OpenAI chat-completions
 * request body, splitting a server-sent-events byte stream into events, and reading the JSON of one
 * streamed chunk (or of a whole non-streamed reply). No sockets here; remote.c does the HTTP with libcurl.
 * Invariants: nothing read from the server is trusted: events are capped in size, every JSON field is
 * type-checked, and parse failures are errors with a reason, never crashes. */
#ifndef CK_TUI_OPENAI_H
#define CK_TUI_OPENAI_H

#include <stddef.h>
#include <stdint.h>

/* ---- server-sent events ---- */

typedef struct ck_sse {
    char *line;          /* the line being read */
    size_t line_len, line_cap;
    char *data;          /* the data lines of the event being read, joined by '\n' */
    size_t data_len, data_cap;
    int has_data;        /* a data: field was seen since the last dispatch */
    int after_cr;        /* the last byte was CR, so a following LF ends nothing */
    size_t max_bytes;    /* cap on one line and on one event's data */
} ck_sse;

void ck_sse_init(ck_sse *p, size_t max_bytes);
void ck_sse_free(ck_sse *p);

/* Feeds buf[0..n) (any split of the stream). Lines end with LF, CRLF or CR; "data:" fields (one optional
 * space after the colon) accumulate; a blank line dispatches the event to on_event(user, data, len), with
 * data NUL-terminated. Comments (":...") and other fields are ignored. Returns 0; on_event's nonzero
 * value (parsing stops there); or -1 with a reason when a line or an event exceeds max_bytes or memory
 * runs out. */
int ck_sse_feed(ck_sse *p, const char *buf, size_t n, int (*on_event)(void *user, const char *data, size_t len),
                void *user, char *err, size_t errlen);

/* ---- chunks ---- */

typedef struct ck_chunk {
    int done;                 /* the "[DONE]" sentinel */
    char *content;            /* choices[0].delta.content (or .message.content); malloc'd, NULL when absent */
    char *reasoning;          /* choices[0].delta.reasoning_content (or .reasoning); malloc'd or NULL */
    int64_t prompt_tokens;    /* usage.prompt_tokens, -1 when absent */
    int64_t completion_tokens;/* usage.completion_tokens, -1 when absent */
    char finish[16];          /* choices[0].finish_reason, "" when absent or null */
    char error[512];          /* error.message (or the error string) of an error object, "" otherwise */
} ck_chunk;

/* Parses one event's data (a chat.completion.chunk, a whole chat.completion, an error object, or
 * "[DONE]"). Returns 0 (out filled; free it with ck_chunk_free), or -1 with a reason when it is not
 * JSON of those shapes. */
int ck_chunk_parse(const char *data, size_t len, ck_chunk *out, char *err, size_t errlen);
void ck_chunk_free(ck_chunk *c);

/* ---- requests ---- */

typedef struct ck_req_msg {
    const char *role;
    const char *content;
} ck_req_msg;

typedef struct ck_req_params {
    const char *model;        /* NULL: the field is left out */
    double temperature, top_p;
    long max_tokens;          /* < 0: left out */
    /* Each of these is sent only when its has_ flag is set (the user gave it); otherwise the server's own
     * default applies. top_k, repeat_penalty and repeat_last_n are llama.cpp's names (cake serve's too). */
    int has_top_k, has_repeat_penalty, has_repeat_last_n, has_seed;
    long top_k, repeat_last_n;
    double repeat_penalty;
    uint64_t seed;
} ck_req_params;

/* The JSON body of a streamed request: {"model", "messages", "stream": true, "stream_options":
 * {"include_usage": true}, "temperature", "top_p", "max_tokens", then "top_k", "repeat_penalty",
 * "repeat_last_n" and "seed" when set}. Returns a malloc'd string, or NULL when out of memory. */
char *ck_chat_request_json(const ck_req_params *p, const ck_req_msg *msgs, size_t n);

/* The first model id of a GET /v1/models reply ({"data":[{"id":...}]}) copied into id (at most idlen).
 * Returns 0, or -1 with a reason. */
int ck_models_first_id(const char *json, size_t len, char *id, size_t idlen, char *err, size_t errlen);

#endif
