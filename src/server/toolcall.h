/* toolcall.h — tool calls in a chat reply, as llama-server returns them for Qwen's and Hermes' templates:
 * the reply's <tool_call>{"name": ..., "arguments": {...}}</tool_call> blocks, after any text, become the
 * message's tool_calls, and the text before them stays its content. Fed the content as it streams, the
 * text goes out until a block begins (holding back only what may be the start of its tag); from there the
 * rest is kept for the end, where it is parsed. A rest that is not a run of such blocks goes out as
 * content after all: nothing is lost. */
#ifndef CK_SERVER_TOOLCALL_H
#define CK_SERVER_TOOLCALL_H

#include <stddef.h>

#define CK_TOOLCALL_HOLD 16 /* bytes held back at most (the start of a tag) */

typedef struct ck_toolcalls {
    int collecting;         /* a block began: the rest is kept */
    char held[CK_TOOLCALL_HOLD];
    size_t n_held;
    char *rest;             /* from the first "<tool_call>" on */
    size_t n_rest, cap_rest;
} ck_toolcalls;

void ck_toolcalls_init(ck_toolcalls *t);
void ck_toolcalls_free(ck_toolcalls *t);

/* Content s[0..n) in (last: the reply ends with it): appends the text that goes out now to out[*on..],
 * which must have room for n + CK_TOOLCALL_HOLD more bytes. 0, or -1 when out of memory. */
int ck_toolcalls_feed(ck_toolcalls *t, const char *s, size_t n, int last, char *out, size_t *on);

/* At the end (after a feed with last set): the kept rest as a JSON array of OpenAI tool calls
 * ([{"id": "call_<id>_<i>", "type": "function", "function": {"name", "arguments": "<JSON text>"}}],
 * malloc'd), or NULL when there is no rest or it does not parse; then *text, *len give the rest, which
 * goes out as content. */
char *ck_toolcalls_end(ck_toolcalls *t, const char *id, const char **text, size_t *len);

#endif
