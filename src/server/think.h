/* think.h — a chat reply's text split as llama-server splits it by default (--reasoning-format auto): a
 * <think>...</think> block at its start, or the rest of one the prompt left open, is the reply's
 * reasoning_content, the text after it its content. Fed the text as it streams, it holds back only what
 * may still turn out to be a tag; whitespace right after <think> and right after </think> is dropped. A
 * reply that does not start with <think> (after at most CK_THINK_WS bytes of whitespace) is all content. */
#ifndef CK_SERVER_THINK_H
#define CK_SERVER_THINK_H

#include <stddef.h>

#define CK_THINK_HOLD 16 /* bytes held back at most (a tag's prefix) */
#define CK_THINK_WS 8    /* whitespace allowed before the opening <think> (so the hold fits) */

typedef struct ck_think {
    int state;              /* 0: the start, undecided; 1: in the think block; 2: content */
    int skip_ws;            /* whitespace at this point is dropped */
    char held[CK_THINK_HOLD];
    size_t n_held;
} ck_think;

/* open: the prompt ended inside a think block (the template opened it), so the reply starts in it. */
void ck_think_init(ck_think *t, int open);

/* Splits the next text s[0..n) (last: the reply ends with it, so nothing is held) into reasoning and
 * content, appended to reason[*rn..] and content[*cn..], each of which must have room for n + CK_THINK_HOLD
 * more bytes. */
void ck_think_feed(ck_think *t, const char *s, size_t n, int last, char *reason, size_t *rn, char *content,
                   size_t *cn);

/* 1 when text[0..n), with trailing whitespace ignored, ends with "<think>" (the template opened one). */
int ck_think_opened(const char *text, size_t n);

#endif
