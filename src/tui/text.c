/* text.c — see text.h. Pure functions over byte ranges: UTF-8 cleaning, column widths, wrapping, the
 * <think> split and the conversation layout. The UTF-8 decoder follows RFC 3629 (no overlongs, no
 * surrogates, nothing past U+10FFFF), so what reaches the terminal is always valid UTF-8. */
#include "tui/text.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* Length of the valid UTF-8 sequence at s[0..n): > 0 when whole and valid, 0 when the first byte(s) are
 * invalid, -1 when s is a valid but incomplete start of a sequence; *cp gets the code point. */
static int utf8_seq(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    int len;
    unsigned char lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) len = 2, *cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, *cp = c & 0x0F, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, *cp = c & 0x07, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 0;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) return -1;
        unsigned char b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
        *cp = (*cp << 6) | (b & 0x3F);
    }
    return len;
}

static int grow(char **buf, size_t *len, size_t *cap, size_t add) {
    if (*len + add + 1 <= *cap) return 0;
    size_t want = *cap ? *cap : 256;
    while (want < *len + add + 1) {
        if (want > SIZE_MAX / 2) return -1;
        want *= 2;
    }
    char *p = realloc(*buf, want);
    if (!p) return -1;
    *buf = p, *cap = want;
    return 0;
}

/* Appends one decoded character (or its replacement) to the buffer. */
static int put_char(char **buf, size_t *len, size_t *cap, const unsigned char *s, int seq, uint32_t cp) {
    static const char repl[] = "\xEF\xBF\xBD";
    const char *src = (const char *)s;
    size_t k = (size_t)seq;
    if (seq == 0) src = repl, k = 3;
    else if (cp == '\t') src = "    ", k = 4;
    else if ((cp < 0x20 && cp != '\n') || (cp >= 0x7F && cp < 0xA0)) return 0;
    if (grow(buf, len, cap, k) != 0) return -1;
    memcpy(*buf + *len, src, k);
    *len += k;
    (*buf)[*len] = 0;
    return 0;
}

int ck_text_append(char **buf, size_t *len, size_t *cap, char pend[4], size_t *n_pend, const char *text, size_t n) {
    const unsigned char *s = (const unsigned char *)text;
    uint32_t cp;
    if (grow(buf, len, cap, 0) != 0) return -1;
    while (*n_pend > 0 && n > 0) { /* finish the character the last call left open */
        pend[(*n_pend)++] = (char)*s++, n--;
        int seq = utf8_seq((const unsigned char *)pend, *n_pend, &cp);
        if (seq == -1) continue;
        if (put_char(buf, len, cap, (const unsigned char *)pend, seq, cp) != 0) return -1;
        if (seq == 0) { /* the pending bytes were not a character: replace the first, rescan the rest */
            size_t rest = *n_pend - 1;
            char tmp[4];
            memcpy(tmp, pend + 1, rest);
            *n_pend = 0;
            if (ck_text_append(buf, len, cap, pend, n_pend, tmp, rest) != 0) return -1;
        } else {
            *n_pend = 0;
        }
    }
    for (size_t i = 0; i < n;) {
        int seq = utf8_seq(s + i, n - i, &cp);
        if (seq == -1) { /* an incomplete tail: keep it for the next call */
            memcpy(pend, s + i, n - i);
            *n_pend = n - i;
            return 0;
        }
        if (put_char(buf, len, cap, s + i, seq, cp) != 0) return -1;
        i += seq > 0 ? (size_t)seq : 1;
    }
    return 0;
}

size_t ck_text_char(const char *s, size_t n, int *cols) {
    uint32_t cp;
    int seq = utf8_seq((const unsigned char *)s, n, &cp);
    if (seq <= 0) {
        *cols = 1;
        return 1;
    }
    int w = wcwidth((wchar_t)cp);
    *cols = w < 0 ? 1 : w;
    return (size_t)seq;
}

size_t ck_text_cols(const char *s, size_t n) {
    size_t cols = 0;
    for (size_t i = 0; i < n;) {
        int w;
        i += ck_text_char(s + i, n - i, &w);
        cols += (size_t)w;
    }
    return cols;
}

size_t ck_text_wrap(const char *s, size_t n, size_t width, size_t *shown) {
    size_t cols = 0, space = SIZE_MAX; /* byte offset of the last space on this line */
    for (size_t i = 0; i < n;) {
        if (s[i] == '\n') {
            *shown = i;
            return i + 1;
        }
        int w;
        size_t k = ck_text_char(s + i, n - i, &w);
        if (cols + (size_t)w > width && i > 0) {
            if (s[i] == ' ') { /* the line ends exactly at a space: break there */
                *shown = i;
                return i + 1;
            }
            if (space != SIZE_MAX && space > 0) {
                *shown = space;
                return space + 1;
            }
            *shown = i;
            return i;
        }
        if (s[i] == ' ') space = i;
        cols += (size_t)w;
        i += k;
    }
    *shown = n;
    return n;
}

static int is_ws(char c) {
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/* [*off, *off + *len) without leading and trailing whitespace. */
static void trim(const char *s, size_t *off, size_t *len) {
    while (*len > 0 && is_ws(s[*off])) (*off)++, (*len)--;
    while (*len > 0 && is_ws(s[*off + *len - 1])) (*len)--;
}

/* Bytes at the end of s[0..n) that are a proper prefix of tag (and so may become the tag). */
static size_t partial_tag(const char *s, size_t n, const char *tag) {
    size_t t = strlen(tag);
    for (size_t k = t - 1; k > 0; k--)
        if (k <= n && memcmp(s + n - k, tag, k) == 0) return k;
    return 0;
}

static const char *find(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0) return s + i;
    return NULL;
}

void ck_think_split_text(const char *s, size_t n, int final, ck_think_split *out) {
    static const char open[] = "<think>", close[] = "</think>";
    size_t ws = 0;
    while (ws < n && is_ws(s[ws])) ws++;
    memset(out, 0, sizeof *out);
    size_t body = ws, hold = 0;
    int opened = n - ws >= 7 && memcmp(s + ws, open, 7) == 0;
    if (opened) body = ws + 7;
    else if (!final && n > ws && n - ws < 7 && memcmp(s + ws, open, n - ws) == 0) hold = n - ws;
    const char *c = find(s + body, n - body, close);
    if (c) {
        out->state = CK_THINK_DONE;
        out->think_off = opened ? body : 0, out->think_len = (size_t)(c - s) - out->think_off;
        out->answer_off = (size_t)(c - s) + 8, out->answer_len = n - out->answer_off;
    } else {
        if (!final && !hold) hold = partial_tag(s + body, n - body, close);
        out->state = opened ? CK_THINK_OPEN : CK_THINK_NONE;
        if (opened) out->think_off = body, out->think_len = n - hold - body, out->answer_off = n;
        else out->answer_off = ws, out->answer_len = n - hold - ws;
    }
    trim(s, &out->think_off, &out->think_len);
    trim(s, &out->answer_off, &out->answer_len);
}

/* Appends the wrapped lines of s[0..n) to out (when room) and returns the new count. */
static size_t put_text(const char *s, size_t n, size_t width, int indent, ck_style st, ck_line *out, size_t cap,
                       size_t k) {
    for (size_t off = 0; off < n;) {
        size_t shown, used = ck_text_wrap(s + off, n - off, width - (size_t)indent, &shown);
        if (out && k < cap) out[k] = (ck_line){s + off, shown, indent, st};
        k++;
        off += used;
    }
    return k;
}

static size_t put_label(const char *s, int indent, ck_style st, ck_line *out, size_t cap, size_t k) {
    if (out && k < cap) out[k] = (ck_line){s, strlen(s), indent, st};
    return k + 1;
}

size_t ck_chat_layout(const ck_chat_item *items, size_t n, size_t width, ck_line *out, size_t cap) {
    size_t k = 0;
    if (width < 4) width = 4;
    for (size_t i = 0; i < n; i++) {
        const ck_chat_item *it = &items[i];
        if (i > 0) k = put_label("", 0, CK_STYLE_BLANK, out, cap, k);
        if (it->role == 'n') {
            k = put_text(it->text, it->len, width, 0, CK_STYLE_NOTE, out, cap, k);
            continue;
        }
        if (it->role == 'u') {
            k = put_label("you", 0, CK_STYLE_USER_HEAD, out, cap, k);
            k = put_text(it->text, it->len, width, 2, CK_STYLE_TEXT, out, cap, k);
            continue;
        }
        k = put_label(it->head ? it->head : "cake", 0, CK_STYLE_BOT_HEAD, out, cap, k);
        ck_think_split sp;
        ck_think_split_text(it->text, it->len, !it->streaming, &sp);
        if (sp.state != CK_THINK_NONE) {
            int open = sp.state == CK_THINK_OPEN && it->streaming;
            k = put_label(open ? CK_THINKING_LABEL : CK_THOUGHT_LABEL, 2, CK_STYLE_THINK_HEAD, out, cap, k);
            k = put_text(it->text + sp.think_off, sp.think_len, width, 2, CK_STYLE_THINK, out, cap, k);
            if (sp.answer_len) k = put_label("", 0, CK_STYLE_BLANK, out, cap, k);
        }
        k = put_text(it->text + sp.answer_off, sp.answer_len, width, 2, CK_STYLE_TEXT, out, cap, k);
    }
    return k;
}

void ck_turn_summary(char *out, size_t cap, int64_t n_tokens, double tok_s, size_t n_chars, double secs) {
    if (n_tokens < 0) snprintf(out, cap, "%zu characters in %.1f s", n_chars, secs);
    else if (tok_s > 0) snprintf(out, cap, "%" PRId64 " tokens, %.1f tok/s", n_tokens, tok_s);
    else snprintf(out, cap, "%" PRId64 " tokens", n_tokens);
}

int ck_text_is_context_error(const char *err) {
    static const char *const phrases[] = {"the context holds", "context size", "context length", "context window"};
    for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++)
        if (strcasestr(err, phrases[i])) return 1;
    return 0;
}
