/* test_tui_text.c — the terminal chat's pure logic: UTF-8 cleaning across split writes, column widths,
 * word wrapping, the <think> split (whole, streaming, partial tags, no opening tag), the conversation
 * layout with its styles, a turn's numbers, and the OpenAI side (SSE splitting over every byte split, chunk parsing, the
 * request body). */
#include "testutil.h"
#include "tui/openai.h"
#include "tui/text.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

static char *clean(const char *s, size_t n) {
    char *buf = NULL, pend[4];
    size_t len = 0, cap = 0, np = 0;
    ck_text_append(&buf, &len, &cap, pend, &np, s, n);
    return buf;
}

static void test_clean(void) {
    char *c = clean("a\tb\rc\x01\x7f\n\xc2\x85z", 12);
    CK_EXPECT(!strcmp(c, "a    bc\nz"), "controls: '%s'", c);
    free(c);
    c = clean("x\xff" "y\xe2\x82", 5); /* an invalid byte, then a truncated tail (kept pending) */
    CK_EXPECT(!strcmp(c, "x\xef\xbf\xbdy"), "invalid: '%s'", c);
    free(c);
    c = clean("\xed\xa0\x80", 3); /* a surrogate is not UTF-8 */
    CK_EXPECT(!strcmp(c, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"), "surrogate: '%s'", c);
    free(c);
    /* "€" (e2 82 ac) and "😀" (f0 9f 98 80) fed one byte at a time come out whole */
    const char *s = "\xe2\x82\xac=\xf0\x9f\x98\x80";
    char *buf = NULL, pend[4];
    size_t len = 0, cap = 0, np = 0;
    for (size_t i = 0; i < strlen(s); i++) ck_text_append(&buf, &len, &cap, pend, &np, s + i, 1);
    CK_EXPECT(len == strlen(s) && !memcmp(buf, s, len) && np == 0, "split bytes: len %zu pend %zu", len, np);
    /* a pending lead byte followed by ASCII: replaced, and the ASCII kept */
    ck_text_append(&buf, &len, &cap, pend, &np, "\xe2", 1);
    ck_text_append(&buf, &len, &cap, pend, &np, "ok", 2);
    CK_EXPECT(len >= 5 && !memcmp(buf + len - 5, "\xef\xbf\xbdok", 5), "broken pending: '%s'", buf);
    free(buf);
}

static void test_wrap(void) {
    CK_EXPECT(ck_text_cols("a\xe4\xb8\xad" "b", 5) == 4, "CJK is two columns: %zu", ck_text_cols("a\xe4\xb8\xad" "b", 5));
    CK_EXPECT(ck_text_cols("e\xcc\x81", 3) == 1, "a combining accent takes no column");
    const char *t = "the quick brown fox";
    size_t shown, used = ck_text_wrap(t, strlen(t), 10, &shown);
    CK_EXPECT(shown == 9 && used == 10, "word wrap: shown %zu used %zu", shown, used);
    used = ck_text_wrap(t + 10, strlen(t) - 10, 10, &shown);
    CK_EXPECT(shown == 9 && used == 9, "last line: shown %zu used %zu", shown, used);
    used = ck_text_wrap("abcdefghij", 10, 4, &shown);
    CK_EXPECT(shown == 4 && used == 4, "hard break: %zu %zu", shown, used);
    used = ck_text_wrap("abcd efg", 8, 4, &shown);
    CK_EXPECT(shown == 4 && used == 5, "break at the space after a full line: %zu %zu", shown, used);
    used = ck_text_wrap("ab\ncd", 5, 10, &shown);
    CK_EXPECT(shown == 2 && used == 3, "newline: %zu %zu", shown, used);
    used = ck_text_wrap("\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad", 9, 5, &shown);
    CK_EXPECT(shown == 6 && used == 6, "wide characters never cross the edge: %zu %zu", shown, used);
    used = ck_text_wrap("\xe4\xb8\xad", 3, 1, &shown);
    CK_EXPECT(shown == 3 && used == 3, "a character wider than the line still advances: %zu %zu", shown, used);
}

static void split(const char *s, int final, ck_think_split *sp) {
    ck_think_split_text(s, strlen(s), final, sp);
}

static int part_is(const char *s, size_t off, size_t len, const char *want) {
    return len == strlen(want) && !memcmp(s + off, want, len);
}

static void test_think(void) {
    ck_think_split sp;
    const char *s = "<think>\nLet me see.\n</think>\n\nHello!";
    split(s, 1, &sp);
    CK_EXPECT(sp.state == CK_THINK_DONE && part_is(s, sp.think_off, sp.think_len, "Let me see.") &&
                  part_is(s, sp.answer_off, sp.answer_len, "Hello!"),
              "whole reply: state %d", sp.state);
    s = "<think>\nhmm, so";
    split(s, 0, &sp);
    CK_EXPECT(sp.state == CK_THINK_OPEN && part_is(s, sp.think_off, sp.think_len, "hmm, so") && sp.answer_len == 0,
              "streaming reasoning: state %d", sp.state);
    s = "<think>abc</thi";
    split(s, 0, &sp);
    CK_EXPECT(sp.state == CK_THINK_OPEN && part_is(s, sp.think_off, sp.think_len, "abc"), "partial close tag held: %zu",
              sp.think_len);
    s = "<thi";
    split(s, 0, &sp);
    CK_EXPECT(sp.state == CK_THINK_NONE && sp.answer_len == 0, "partial open tag held");
    split(s, 1, &sp);
    CK_EXPECT(sp.state == CK_THINK_NONE && part_is(s, sp.answer_off, sp.answer_len, "<thi"), "shown when final");
    s = "plain answer";
    split(s, 0, &sp);
    CK_EXPECT(sp.state == CK_THINK_NONE && part_is(s, sp.answer_off, sp.answer_len, s), "no think");
    s = "reasoning only\n</think>\nanswer";
    split(s, 0, &sp);
    CK_EXPECT(sp.state == CK_THINK_DONE && part_is(s, sp.think_off, sp.think_len, "reasoning only") &&
                  part_is(s, sp.answer_off, sp.answer_len, "answer"),
              "closing tag without an opening one");
    s = "<think></think>answer";
    split(s, 1, &sp);
    CK_EXPECT(sp.state == CK_THINK_DONE && sp.think_len == 0 && part_is(s, sp.answer_off, sp.answer_len, "answer"),
              "empty reasoning");
}

static void test_layout(void) {
    const char *u = "Why?", *a = "<think>because it is so</think>\n\nAn answer that wraps here";
    ck_chat_item items[3] = {{'n', "hi", 2, NULL, 0}, {'u', u, strlen(u), NULL, 0}, {'a', a, strlen(a), NULL, 1}};
    ck_line l[32];
    size_t n = ck_chat_layout(items, 3, 16, l, 32);
    const struct {
        const char *text;
        int indent;
        ck_style st;
    } want[] = {
        {"hi", 0, CK_STYLE_NOTE},         {"", 0, CK_STYLE_BLANK},        {"you", 0, CK_STYLE_USER_HEAD},
        {"Why?", 2, CK_STYLE_TEXT},       {"", 0, CK_STYLE_BLANK},        {"cake", 0, CK_STYLE_BOT_HEAD},
        {"thought", 2, CK_STYLE_THINK_HEAD}, {"because it is", 2, CK_STYLE_THINK}, {"so", 2, CK_STYLE_THINK}, {"", 0, CK_STYLE_BLANK},
        {"An answer that", 2, CK_STYLE_TEXT}, {"wraps here", 2, CK_STYLE_TEXT},
    };
    size_t nw = sizeof want / sizeof want[0];
    CK_EXPECT(n == nw, "layout has %zu lines, want %zu", n, nw);
    for (size_t i = 0; i < n && i < nw; i++)
        CK_EXPECT(l[i].len == strlen(want[i].text) && !memcmp(l[i].text, want[i].text, l[i].len) &&
                      l[i].indent == want[i].indent && l[i].style == want[i].st,
                  "line %zu: '%.*s' indent %d style %d", i, (int)l[i].len, l[i].text, l[i].indent, (int)l[i].style);
    /* while the reasoning streams, the header says thinking… */
    const char *open = "<think>still going";
    ck_chat_item one = {'a', open, strlen(open), "cake", 1};
    n = ck_chat_layout(&one, 1, 40, l, 32);
    CK_EXPECT(n == 3 && l[1].style == CK_STYLE_THINK_HEAD && l[1].len == strlen(CK_THINKING_LABEL) &&
                  !memcmp(l[1].text, CK_THINKING_LABEL, l[1].len) && l[2].style == CK_STYLE_THINK,
              "open reasoning: %zu lines", n);
    CK_EXPECT(ck_chat_layout(&one, 1, 40, NULL, 0) == 3, "counting without output");
}

static void test_summary(void) {
    char s[96];
    ck_turn_summary(s, sizeof s, 24, 31.25, 0, 0);
    CK_EXPECT(!strcmp(s, "24 tokens, 31.2 tok/s"), "tokens and speed: '%s'", s);
    ck_turn_summary(s, sizeof s, 1, 0, 0, 0);
    CK_EXPECT(!strcmp(s, "1 tokens"), "no speed: '%s'", s);
    ck_turn_summary(s, sizeof s, -1, 605082.5, 57, 1.26);
    CK_EXPECT(!strcmp(s, "57 characters in 1.3 s"), "unknown token count: '%s'", s);
}

static void test_context_error(void) {
    const char *yes[] = {"the server answered HTTP 400: the prompt has 4108 tokens; the context holds 4096",
                         "the prompt has 4108 tokens; the context holds 4096",
                         "the server answered HTTP 400: the request exceeds the available context size, try increasing it",
                         ("the server answered HTTP 400: This model's maximum context length is 4096 tokens. However, "
                          "you requested 4200 tokens"),
                         "Context window exceeded"};
    const char *no[] = {"the server answered HTTP 401", "https://x/v1/chat/completions: SSL: could not create a context",
                        "the server closed the stream before it finished"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        CK_EXPECT(ck_text_is_context_error(yes[i]), "a context error: %s", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CK_EXPECT(!ck_text_is_context_error(no[i]), "not a context error: %s", no[i]);
}

typedef struct events {
    char got[8][64];
    int n;
} events;

static int on_event(void *user, const char *data, size_t len) {
    events *e = user;
    if (e->n < 8) snprintf(e->got[e->n], sizeof e->got[0], "%.*s", (int)len, data);
    e->n++;
    return 0;
}

static void test_sse(void) {
    const char *stream = ": comment\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata:two\ndata: lines\n\nid: 3\n\ndata: [DONE]\r\r";
    size_t n = strlen(stream);
    for (size_t cut = 0; cut <= n; cut++) { /* every split of the stream into two writes */
        ck_sse p;
        events e = {0};
        char err[128];
        ck_sse_init(&p, 1024);
        int rc = ck_sse_feed(&p, stream, cut, on_event, &e, err, sizeof err);
        rc |= ck_sse_feed(&p, stream + cut, n - cut, on_event, &e, err, sizeof err);
        ck_sse_free(&p);
        CK_EXPECT(rc == 0 && e.n == 3 && !strcmp(e.got[0], "{\"a\":1}") && !strcmp(e.got[1], "two\nlines") &&
                      !strcmp(e.got[2], "[DONE]"),
                  "split at %zu: rc %d, %d events", cut, rc, e.n);
    }
    ck_sse p;
    events e = {0};
    char err[128] = "";
    ck_sse_init(&p, 16);
    int rc = ck_sse_feed(&p, "data: 0123456789abcdefgh\n\n", 26, on_event, &e, err, sizeof err);
    CK_EXPECT(rc == -1 && strstr(err, "exceeds 16 bytes") && e.n == 0, "oversized line refused: %d '%s'", rc, err);
    ck_sse_free(&p);
}

static void test_chunks(void) {
    ck_chunk c;
    char err[256];
    const char *j = "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi \\u00e9\"},\"finish_reason\":null}]}";
    CK_EXPECT(ck_chunk_parse(j, strlen(j), &c, err, sizeof err) == 0 && c.content && !strcmp(c.content, "Hi \xc3\xa9") &&
                  !c.finish[0] && c.completion_tokens == -1,
              "content chunk");
    ck_chunk_free(&c);
    j = "{\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":16,\"completion_tokens\":24}}";
    CK_EXPECT(ck_chunk_parse(j, strlen(j), &c, err, sizeof err) == 0 && !c.content && !strcmp(c.finish, "length") &&
                  c.prompt_tokens == 16 && c.completion_tokens == 24,
              "final chunk with usage");
    ck_chunk_free(&c);
    j = "{\"choices\":[{\"delta\":{\"reasoning_content\":\"hm\"}}]}";
    CK_EXPECT(ck_chunk_parse(j, strlen(j), &c, err, sizeof err) == 0 && c.reasoning && !strcmp(c.reasoning, "hm"),
              "reasoning chunk");
    ck_chunk_free(&c);
    j = "{\"error\":{\"message\":\"model is loading\",\"type\":\"x\"}}";
    CK_EXPECT(ck_chunk_parse(j, strlen(j), &c, err, sizeof err) == 0 && !strcmp(c.error, "model is loading"), "error");
    ck_chunk_free(&c);
    CK_EXPECT(ck_chunk_parse("[DONE]", 6, &c, err, sizeof err) == 0 && c.done, "done");
    CK_EXPECT(ck_chunk_parse("{\"choices\":", 11, &c, err, sizeof err) == -1 && strstr(err, "not a JSON object"),
              "broken JSON refused: %s", err);
    j = "{\"choices\":[{\"delta\":{\"content\":7}}],\"usage\":{\"completion_tokens\":-3}}";
    CK_EXPECT(ck_chunk_parse(j, strlen(j), &c, err, sizeof err) == 0 && !c.content && c.completion_tokens == -1,
              "wrong types ignored");
    ck_chunk_free(&c);
}

static void test_request(void) {
    ck_req_msg m[2] = {{"system", "Be \"brief\"."}, {"user", "hi\n"}};
    ck_req_params p = {.model = "qwen3-tiny", .temperature = 0, .top_p = 1, .max_tokens = 24};
    char *s = ck_chat_request_json(&p, m, 2);
    const char *want = "{\"model\":\"qwen3-tiny\",\"messages\":[{\"role\":\"system\",\"content\":\"Be \\\"brief\\\".\"},"
                       "{\"role\":\"user\",\"content\":\"hi\\n\"}],\"stream\":true,\"stream_options\":{\"include_usage\":"
                       "true},\"temperature\":0,\"top_p\":1,\"max_tokens\":24}";
    CK_EXPECT(s && !strcmp(s, want), "request body without the optional fields: %s", s ? s : "(null)");
    free(s);
    p = (ck_req_params){.temperature = 0.5, .top_p = 0.9, .max_tokens = -1, .has_top_k = 1, .top_k = 40,
                        .has_repeat_penalty = 1, .repeat_penalty = 1.3, .has_repeat_last_n = 1, .repeat_last_n = 64,
                        .has_seed = 1, .seed = 18446744073709551615ull};
    s = ck_chat_request_json(&p, m + 1, 1);
    want = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\\n\"}],\"stream\":true,\"stream_options\":{\"include_usage\":"
           "true},\"temperature\":0.5,\"top_p\":0.9,\"top_k\":40,\"repeat_penalty\":1.3,\"repeat_last_n\":64,"
           "\"seed\":18446744073709551615}";
    CK_EXPECT(s && !strcmp(s, want), "request body with every field given: %s", s ? s : "(null)");
    free(s);
    char id[64], err[256];
    const char *models = "{\"object\":\"list\",\"data\":[{\"id\":\"qwen3-tiny\",\"object\":\"model\"}]}";
    CK_EXPECT(ck_models_first_id(models, strlen(models), id, sizeof id, err, sizeof err) == 0 && !strcmp(id, "qwen3-tiny"),
              "models id");
    CK_EXPECT(ck_models_first_id("{\"data\":[]}", 11, id, sizeof id, err, sizeof err) == -1, "no model listed");
}

int main(void) {
    if (!setlocale(LC_ALL, "C.UTF-8")) setlocale(LC_ALL, "C.utf8");
    test_clean();
    test_wrap();
    test_think();
    test_layout();
    test_summary();
    test_context_error();
    test_sse();
    test_chunks();
    test_request();
    return ck_test_done("test_tui_text");
}
