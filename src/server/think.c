/* think.c — see think.h. */
#include "server/think.h"

#include <string.h>

static const char OPEN[] = "<think>", CLOSE[] = "</think>";

static int is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* Length of the longest suffix of s[0..n) that is a proper prefix of tag. */
static size_t tag_prefix_suffix(const char *s, size_t n, const char *tag) {
    size_t t = strlen(tag);
    for (size_t k = n < t - 1 ? n : t - 1; k > 0; k--)
        if (!memcmp(s + n - k, tag, k)) return k;
    return 0;
}

void ck_think_init(ck_think *t, int open) {
    memset(t, 0, sizeof *t);
    t->state = open ? 1 : 0;
    t->skip_ws = open;
}

int ck_think_opened(const char *text, size_t n) {
    while (n > 0 && is_ws(text[n - 1])) n--;
    return n >= sizeof OPEN - 1 && !memcmp(text + n - (sizeof OPEN - 1), OPEN, sizeof OPEN - 1);
}

/* Takes what the held bytes and s make together, one byte at a time from a window of both. */
typedef struct view {
    const char *a, *b;
    size_t na, nb;
} view;

static char at(const view *v, size_t i) { return i < v->na ? v->a[i] : v->b[i - v->na]; }

static void copy(const view *v, size_t from, size_t to, char *out, size_t *on) {
    for (size_t i = from; i < to; i++) out[(*on)++] = at(v, i);
}

/* Where tag starts in v at or after from, or (size_t)-1. */
static size_t find(const view *v, size_t from, const char *tag) {
    size_t t = strlen(tag), n = v->na + v->nb;
    for (size_t i = from; i + t <= n; i++) {
        size_t k = 0;
        while (k < t && at(v, i + k) == tag[k]) k++;
        if (k == t) return i;
    }
    return (size_t)-1;
}

/* Keeps v[from..n) held for the next call. */
static void hold(ck_think *t, const view *v, size_t from) {
    char tmp[CK_THINK_HOLD];
    size_t n = v->na + v->nb, k = 0;
    for (size_t i = from; i < n && k < sizeof tmp; i++) tmp[k++] = at(v, i);
    memcpy(t->held, tmp, k);
    t->n_held = k;
}

void ck_think_feed(ck_think *t, const char *s, size_t n, int last, char *reason, size_t *rn, char *content,
                   size_t *cn) {
    char held[CK_THINK_HOLD];
    memcpy(held, t->held, t->n_held);
    view v = {held, s, t->n_held, n};
    size_t total = v.na + v.nb, i = 0;
    t->n_held = 0;
    while (i < total) {
        if (t->skip_ws) {
            while (i < total && is_ws(at(&v, i))) i++;
            if (i == total) break;
            t->skip_ws = 0;
        }
        if (t->state == 0) { /* does the reply open with <think>? (leading whitespace allowed) */
            size_t j = i;
            while (j < total && is_ws(at(&v, j)) && j - i <= CK_THINK_WS) j++;
            size_t k = 0;
            while (k < sizeof OPEN - 1 && j + k < total && at(&v, j + k) == OPEN[k]) k++;
            if (j - i > CK_THINK_WS) {
                t->state = 2; /* too much whitespace first: a reply that starts with text */
            } else if (k == sizeof OPEN - 1) {
                i = j + k, t->state = 1, t->skip_ws = 1;
            } else if (j + k == total && !last) {
                hold(t, &v, i); /* all of it may still be "<think>" */
                return;
            } else {
                t->state = 2;
            }
            continue;
        }
        if (t->state == 1) {
            size_t end = find(&v, i, CLOSE);
            if (end != (size_t)-1) {
                copy(&v, i, end, reason, rn);
                i = end + sizeof CLOSE - 1, t->state = 2, t->skip_ws = 1;
                continue;
            }
            size_t keep = 0;
            if (!last) { /* a tail that may be the start of </think> waits */
                char tail[sizeof CLOSE];
                size_t m = total - i < sizeof CLOSE - 1 ? total - i : sizeof CLOSE - 1;
                for (size_t q = 0; q < m; q++) tail[q] = at(&v, total - m + q);
                keep = tag_prefix_suffix(tail, m, CLOSE);
            }
            copy(&v, i, total - keep, reason, rn);
            hold(t, &v, total - keep);
            return;
        }
        copy(&v, i, total, content, cn);
        return;
    }
}
