/* tui.h — `cake chat`: an ncurses chat over a backend that runs one turn of a conversation, either the
 * engine in this process (local.c, through include/cake.h only) or an OpenAI-compatible server
 * (remote.c, libcurl + SSE). The UI keeps the conversation, sends all of it each turn (earlier replies
 * without their <think> reasoning), and streams the reply onto the screen as it arrives.
 * Invariants: a backend's turn calls back into the UI on the same thread (on_text for each piece of text,
 * poll at least every ~100 ms while no text arrives); either returning nonzero stops the turn, which then
 * returns 0 with stats->stopped set. Nothing here exits the process. */
#ifndef CK_TUI_H
#define CK_TUI_H

#include "cake.h"
#include "tui/openai.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ck_chat_io {
    int (*on_text)(void *ui, const char *text, size_t len); /* nonzero: stop */
    int (*poll)(void *ui);                                   /* nonzero: stop */
    void *ui;
} ck_chat_io;

typedef struct ck_chat_stats {
    size_t n_prompt;   /* prompt tokens, 0 when unknown */
    int64_t n_gen;     /* generated tokens (the engine's count, or the server's usage); -1 when unknown */
    double tok_s;      /* decode speed, 0 when unknown */
    size_t n_chars;    /* characters of text received (reasoning and answer) */
    double secs;       /* the turn's time, from the request to its end */
    int stopped;       /* the UI stopped the turn */
    int length;        /* ended by the token limit or a full context */
} ck_chat_stats;

typedef struct ck_chat_backend {
    char name[128];    /* the model id, shown in the status line */
    int token_pieces;  /* each piece of text the turn streams is one token (the live status counts them) */
    /* Runs one turn: msgs[0..n) is the whole conversation, ending with the user's message. Returns 0,
     * or -1 with a reason (the UI shows it and drops the turn from the conversation). */
    int (*turn)(void *ctx, const ck_message *msgs, size_t n, const ck_chat_io *io, ck_chat_stats *st, char *err,
                size_t errlen);
    void (*reset)(void *ctx); /* the conversation was cleared (may be NULL) */
    void (*close)(void *ctx);
    void *ctx;
} ck_chat_backend;

/* ---- backends ---- */

/* The engine in this process (it must hold the whole model and have a tokenizer). p: the generation
 * parameters of every turn (on_text/user/cancel are set per turn). The engine stays the caller's. A model
 * without a chat template cake renders runs as a plain continuation of the conversation's text. */
int ck_chat_local_open(ck_engine *e, const ck_gen_params *p, ck_chat_backend *out, char *err, size_t errlen);

typedef struct ck_chat_remote_opts {
    const char *url;      /* e.g. "http://localhost:8080" (a trailing "/v1" or "/" is fine) */
    const char *api_key;  /* sent as "Authorization: Bearer KEY"; NULL or "" for none */
    ck_req_params p;      /* the sampling fields of every request (p.model is ignored: the server's first) */
} ck_chat_remote_opts;

/* Checks the server (GET /v1/models, which also names the model) and returns a backend that POSTs
 * streamed /v1/chat/completions requests. */
int ck_chat_remote_open(const ck_chat_remote_opts *o, ck_chat_backend *out, char *err, size_t errlen);

/* ---- the UI ---- */

typedef struct ck_tui_opts {
    const char *system_prompt; /* the conversation's first message when not NULL or "" */
} ck_tui_opts;

/* Runs the terminal UI until /quit, Ctrl+D on an empty line, or a second Ctrl+C. Needs a terminal on
 * stdin and stdout. Returns 0, or -1 with a reason. */
int ck_tui_run(const ck_chat_backend *b, const ck_tui_opts *o, char *err, size_t errlen);

#endif
