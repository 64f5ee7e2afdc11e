/* fuzz_sse.c — libFuzzer target: the terminal chat's reading of a server's reply (src/tui/openai.h) on
 * arbitrary bytes. The first byte picks where the stream is split into two writes; every event goes
 * through ck_chunk_parse, and whatever text comes out goes through ck_text_append and the <think> split
 * and layout (src/tui/text.h). Checks: the same events come out whatever the split; cleaned text is valid
 * UTF-8 without control bytes other than '\n'; every wrapped line fits its width. Anything else aborts. */
#include "tui/openai.h"
#include "tui/text.h"

#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct sink {
    char *text;          /* the content and reasoning of every chunk, cleaned */
    size_t len, cap, n_pend;
    char pend[4];
    uint32_t hash;       /* of every event's bytes, to compare two splits */
    int events;
} sink;

static int on_event(void *user, const char *data, size_t len) {
    sink *s = user;
    for (size_t i = 0; i < len; i++) s->hash = (s->hash ^ (uint8_t)data[i]) * 16777619u;
    s->hash = (s->hash ^ 0xff) * 16777619u;
    s->events++;
    ck_chunk c;
    char err[256];
    if (ck_chunk_parse(data, len, &c, err, sizeof err) != 0) return 0;
    if (c.reasoning) ck_text_append(&s->text, &s->len, &s->cap, s->pend, &s->n_pend, c.reasoning, strlen(c.reasoning));
    if (c.content) ck_text_append(&s->text, &s->len, &s->cap, s->pend, &s->n_pend, c.content, strlen(c.content));
    ck_chunk_free(&c);
    return 0;
}

static void run(const uint8_t *d, size_t n, size_t cut, sink *s) {
    ck_sse p;
    char err[256];
    ck_sse_init(&p, 4096);
    if (ck_sse_feed(&p, (const char *)d, cut, on_event, s, err, sizeof err) == 0)
        ck_sse_feed(&p, (const char *)d + cut, n - cut, on_event, s, err, sizeof err);
    ck_sse_free(&p);
}

static void check_text(const sink *s) {
    for (size_t i = 0; i < s->len;) {
        int w;
        unsigned char c = (unsigned char)s->text[i];
        if ((c < 0x20 && c != '\n') || c == 0x7f) abort();
        size_t k = ck_text_char(s->text + i, s->len - i, &w);
        if (c >= 0x80 && k == 1) abort(); /* an invalid byte survived the cleaning */
        i += k;
    }
    ck_chat_item it = {'a', s->text ? s->text : "", s->len, NULL, 1};
    size_t n = ck_chat_layout(&it, 1, 7, NULL, 0);
    ck_line *l = malloc((n ? n : 1) * sizeof *l);
    if (!l) return;
    ck_chat_layout(&it, 1, 7, l, n);
    for (size_t i = 0; i < n; i++)
        if ((l[i].style == CK_STYLE_TEXT || l[i].style == CK_STYLE_THINK) &&
            (size_t)l[i].indent + ck_text_cols(l[i].text, l[i].len) > 7)
            abort();
    free(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) init = 1, setlocale(LC_ALL, "C.UTF-8");
    if (size < 1) return 0;
    size_t cut = data[0] % size;
    sink a = {0}, b = {0};
    run(data + 1, size - 1, cut, &a);
    run(data + 1, size - 1, 0, &b);
    if (a.hash != b.hash || a.events != b.events) abort();
    check_text(&a);
    free(a.text);
    free(b.text);
    return 0;
}
