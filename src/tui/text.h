/* text.h — the terminal chat's pure text logic, kept apart from ncurses so it can be unit-tested:
 * cleaning streamed text for a terminal, measuring and wrapping UTF-8 into columns, splitting an
 * assistant reply into its <think> reasoning and its answer, and laying a conversation out as screen
 * lines. Nothing here draws, allocates per character or reads the terminal.
 * Invariants: every function takes byte lengths (text need not be NUL-terminated); widths come from
 * wcwidth() under the current LC_CTYPE (a UTF-8 locale is set by the caller), with unprintable or invalid
 * characters counted as one column and zero-width ones as zero. */
#ifndef CK_TUI_TEXT_H
#define CK_TUI_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* ---- cleaning ---- */

/* Appends text[0..n) to the growable buffer (*buf, *len, *cap) as terminal-safe UTF-8: tabs become four
 * spaces, CR and other C0/C1 controls and DEL are dropped (newlines kept), invalid or truncated UTF-8
 * sequences become U+FFFD. A multi-byte character split across two calls is kept whole: its first bytes
 * wait in *pend (*n_pend of them, at most 3) for the rest. Returns 0, or -1 when out of memory. */
int ck_text_append(char **buf, size_t *len, size_t *cap, char pend[4], size_t *n_pend, const char *text, size_t n);

/* ---- measuring and wrapping ---- */

/* Decodes one UTF-8 character at s[0..n) (n > 0): returns its byte length (1 for an invalid byte) and
 * sets *cols to its terminal width (0 for combining marks, 2 for wide characters, 1 when unknown). */
size_t ck_text_char(const char *s, size_t n, int *cols);

/* Terminal columns of s[0..n). */
size_t ck_text_cols(const char *s, size_t n);

/* The next screen line of s[0..n) when lines hold `width` columns (width >= 1): *shown gets the bytes to
 * draw (never more than width columns); returns the bytes consumed, which skip the '\n' that ended the
 * line, or the one space a word wrap broke at. Breaks at the last space that fits when a word would cross
 * the edge, else inside the word (at a character boundary). Returns 0 only when n == 0. */
size_t ck_text_wrap(const char *s, size_t n, size_t width, size_t *shown);

/* ---- numbers ---- */

/* A turn's numbers as the chat shows them: "24 tokens, 31.2 tok/s" (the rate left out when tok_s <= 0),
 * or, when the token count is unknown (n_tokens < 0), "57 characters in 1.3 s". */
void ck_turn_summary(char *out, size_t cap, int64_t n_tokens, double tok_s, size_t n_chars, double secs);

/* Whether a turn's error says the conversation does not fit the model's context, in the words of cake
 * ("the context holds"), llama-server ("context size"), vLLM and OpenAI ("maximum context length"), or
 * others ("context window"); any case. */
int ck_text_is_context_error(const char *err);

/* ---- <think> ---- */

enum { CK_THINK_NONE = 0, CK_THINK_OPEN, CK_THINK_DONE };

typedef struct ck_think_split {
    int state;                      /* CK_THINK_*: no reasoning, reasoning still streaming, reasoning closed */
    size_t think_off, think_len;    /* the reasoning, tags and surrounding blank lines excluded */
    size_t answer_off, answer_len;  /* the answer, leading blank lines excluded */
} ck_think_split;

/* Splits a (possibly partial) assistant reply. A reply that opens with "<think>" (after whitespace) holds
 * reasoning up to "</think>" (or to its end while the tag has not arrived); a reply with a "</think>" but
 * no opening tag (templates that open the block in the prompt) holds reasoning before it. A tail that
 * could be the start of "<think>" or "</think>" is held back (in neither part) until more text arrives,
 * unless final is set. */
void ck_think_split_text(const char *s, size_t n, int final, ck_think_split *out);

/* ---- layout ---- */

typedef enum ck_style {
    CK_STYLE_USER_HEAD,   /* "you" */
    CK_STYLE_BOT_HEAD,    /* the assistant's name and its numbers */
    CK_STYLE_TEXT,        /* message text */
    CK_STYLE_THINK_HEAD,  /* "thinking…" / "thought" */
    CK_STYLE_THINK,       /* reasoning text: dimmed */
    CK_STYLE_NOTE,        /* notes and errors from cake itself */
    CK_STYLE_BLANK,       /* an empty separator line */
} ck_style;

typedef struct ck_chat_item {
    int role;             /* 'u' user, 'a' assistant, 'n' note */
    const char *text;     /* cleaned UTF-8 (ck_text_append) */
    size_t len;
    const char *head;     /* the assistant's header ("cake · 24 tokens, 31.2 tok/s"); NULL for a default */
    int streaming;        /* 1 while its text is still arriving */
} ck_chat_item;

typedef struct ck_line {
    const char *text;     /* bytes to draw (into an item's text or a static label) */
    size_t len;
    int indent;           /* columns of blank before the text */
    ck_style style;
} ck_line;

/* Lays items out for a screen `width` columns wide (width >= 4): a header line per message, its text
 * wrapped and indented by two columns, a blank line between messages; an assistant's reasoning is a
 * "thinking…" header (while open) or "thought" (when closed) followed by the reasoning in
 * CK_STYLE_THINK and a blank line before the answer. Writes at most cap lines to out (out may be NULL to
 * count) and returns the total. */
size_t ck_chat_layout(const ck_chat_item *items, size_t n, size_t width, ck_line *out, size_t cap);

#define CK_THINKING_LABEL "thinking\xe2\x80\xa6"   /* "thinking…" */
#define CK_THOUGHT_LABEL "thought"

#endif
