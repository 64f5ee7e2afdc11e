/* openai.h — the OpenAI chat-completions wire format: parsing a request body into messages and sampling
 * parameters, and writing responses, stream chunks and errors in OpenAI's exact shapes. Pure functions
 * over bytes (no sockets, no engine), so that they can be tested and fuzzed alone. */
#ifndef CK_SERVER_OPENAI_H
#define CK_SERVER_OPENAI_H

#include "cake.h"

#include <stddef.h>
#include <stdint.h>

#define CK_OAI_MAX_STOP 16
#define CK_OAI_MAX_MESSAGES 4096
/* The ranges of the sampling fields a request may hold (beyond them: a 400). `cake chat --server` checks
 * its flags against the same ranges before the first request. */
#define CK_OAI_MAX_TEMPERATURE 2.0
#define CK_OAI_MAX_TOP_K 1e9
#define CK_OAI_MAX_MAX_TOKENS 1e12
#define CK_OAI_MAX_SEED 9.2e18         /* and at least -CK_OAI_MAX_SEED */
#define CK_OAI_MAX_REPEAT_PENALTY 1e6  /* and greater than 0 */
#define CK_OAI_MAX_REPEAT_LAST_N 2147483647.0

/* A parsed POST /v1/chat/completions (or /v1/completions) body. Strings point into storage owned by the
 * request. */
typedef struct ck_oai_request {
    ck_message *msgs;          /* chat: [n_msgs] role + content (text parts joined) */
    size_t n_msgs;
    const char *prompt;        /* completions: the prompt text */
    char *messages_json;       /* chat: the messages as the template gets them (every field kept; text parts
                                  joined into one string, "developer" as "system") */
    char *tools_json;          /* chat: the request's tools, or NULL */
    char *kwargs_json;         /* chat: chat_template_kwargs, or NULL */
    int stream;
    int include_usage;         /* stream_options.include_usage */
    int has_seed;
    uint64_t seed;
    double temperature;        /* default 1 */
    double top_p;              /* default 1 */
    int top_k;                 /* extension; 0 = off */
    double repeat_penalty;     /* extension (llama.cpp's name); default 1 = off */
    int repeat_last_n;         /* extension (llama.cpp's name); default 128 */
    size_t max_tokens;         /* 0 = until the context is full */
    int reasoning_raw;         /* llama-server's reasoning_format "none": a <think> block stays in content */
    int call_tools;            /* chat with tools and tool_choice not "none": <tool_call> blocks are calls */
    const char *stop[CK_OAI_MAX_STOP];
    size_t n_stop;
    void *json;                /* the parsed document the strings live in */
    char **owned;              /* joined contents */
    size_t n_owned;
} ck_oai_request;

/* What a request that leaves a sampling field out gets: OpenAI's defaults (temperature and top_p 1, no
 * top_k, no repeat penalty; ck_oai_defaults_init), or the server's (`cake serve --temperature ...`).
 * max_tokens 0: the endpoint's own (16 for a text completion, as OpenAI's; a chat runs until the context
 * is full). */
typedef struct ck_oai_defaults {
    double temperature, top_p, repeat_penalty;
    int top_k, repeat_last_n;
    size_t max_tokens;
} ck_oai_defaults;
void ck_oai_defaults_init(ck_oai_defaults *d);

/* Parses body[0..len) of a chat completion, or of a text completion when `completion` (prompt instead
 * of messages), the fields it leaves out taken from d (NULL: OpenAI's). Returns 0, or -1 with a message
 * for the client in err (a 400). */
int ck_oai_parse(const char *body, size_t len, int completion, const ck_oai_defaults *d, ck_oai_request *r,
                 char *err, size_t errlen);
void ck_oai_request_free(ck_oai_request *r);

/* "stop" or "length" (a cancelled generation reports "stop"). */
const char *ck_oai_finish_reason(ck_finish f);

/* The pieces of a reply; every function returns a malloc'd NUL-terminated string or NULL (out of
 * memory). id: "chatcmpl-..."; created: unix seconds. */
typedef struct ck_oai_reply {
    const char *id, *model;
    long long created;
    int text;                  /* a text completion ("text_completion", choices[].text) */
} ck_oai_reply;

/* The whole non-streamed response: text as the content, reason[0..rlen) (when rlen > 0) as the message's
 * reasoning_content; calls (a JSON array of tool calls, or NULL) as its tool_calls, with finish_reason
 * "tool_calls" and a null content when there is no text. */
char *ck_oai_completion(const ck_oai_reply *r, const char *reason, size_t rlen, const char *text, size_t len,
                        const char *calls, ck_finish f, size_t n_prompt, size_t n_gen);
/* One SSE event "data: {chunk}\n\n": the role chunk (role != NULL), a delta of reasoning_content
 * (reason[0..rlen), when rlen > 0) and of content (text[0..len), when len > 0 or there is no reasoning), or
 * the final chunk (finish != NULL, with usage when n_prompt/n_gen are given as >= 0). */
char *ck_oai_chunk(const ck_oai_reply *r, const char *role, const char *reason, size_t rlen, const char *text,
                   size_t len, const char *finish, long long n_prompt, long long n_gen);
/* A chunk whose delta holds the tool calls of calls (a JSON array, as ck_oai_completion takes), each with
 * its index. */
char *ck_oai_tool_calls_chunk(const ck_oai_reply *r, const char *calls);
/* The usage-only chunk of stream_options.include_usage (empty choices). */
char *ck_oai_usage_chunk(const ck_oai_reply *r, size_t n_prompt, size_t n_gen);
/* {"error":{"message":..,"type":..,"param":null,"code":..}} */
char *ck_oai_error(const char *message, const char *type, const char *code);
/* GET /v1/models */
char *ck_oai_models(const char *model, long long created);

#endif
