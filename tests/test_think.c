/* test_think.c — the server's reasoning split (src/server/think.c): a reply's leading <think> block is its
 * reasoning and the rest its content, the same whether the text comes whole, a byte at a time or cut at
 * any one place (tags split across pieces included); a prompt that opened the block; replies that never
 * think; a reply cut off inside its reasoning. */
#include "server/think.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

/* Splits text fed in pieces of `step` bytes (0: cut once at `cut`), and compares with the expected parts. */
static void split_as(const char *name, int open, const char *text, size_t step, size_t cut, const char *want_r,
                     const char *want_c) {
    size_t n = strlen(text), rn = 0, cn = 0;
    char *r = malloc(n + 4 * CK_THINK_HOLD + 1), *c = malloc(n + 4 * CK_THINK_HOLD + 1);
    ck_think t;
    ck_think_init(&t, open);
    if (step == 0) {
        ck_think_feed(&t, text, cut, 0, r, &rn, c, &cn);
        ck_think_feed(&t, text + cut, n - cut, 1, r, &rn, c, &cn);
    } else {
        for (size_t i = 0; i < n; i += step) {
            size_t k = n - i < step ? n - i : step;
            ck_think_feed(&t, text + i, k, 0, r, &rn, c, &cn);
        }
        ck_think_feed(&t, "", 0, 1, r, &rn, c, &cn);
    }
    r[rn] = c[cn] = 0;
    CK_EXPECT(!strcmp(r, want_r) && !strcmp(c, want_c), "%s (step %zu, cut %zu): reasoning '%s', content '%s'", name,
              step, cut, r, c);
    free(r);
    free(c);
}

static void check(const char *name, int open, const char *text, const char *want_r, const char *want_c) {
    size_t n = strlen(text);
    for (size_t step = 1; step <= 3; step++) split_as(name, open, text, step, 0, want_r, want_c);
    split_as(name, open, text, n ? n : 1, 0, want_r, want_c);
    for (size_t cut = 0; cut <= n; cut++) split_as(name, open, text, 0, cut, want_r, want_c);
}

int main(void) {
    check("Qwen3's form", 0, "<think>\nLet me see.\n</think>\n\nHi there", "Let me see.\n", "Hi there");
    check("an empty block", 0, "<think>\n\n</think>\n\nHi", "", "Hi");
    check("leading whitespace before the tag", 0, "\n <think>a</think>b", "a", "b");
    check("opened by the prompt", 1, "\nhmm</think>\n\nHi", "hmm", "Hi");
    check("no think block", 0, "Hello <think>x</think>", "", "Hello <think>x</think>");
    check("whitespace, then no block", 0, "  Hello", "", "  Hello");
    check("eight bytes of whitespace before the tag", 0, " \n \n \n \n<think>a</think>b", "a", "b");
    check("more whitespace than that: text", 0, "          <think>a</think>b", "", "          <think>a</think>b");
    check("a tag's start that is not one", 0, "<thin>x", "", "<thin>x");
    check("cut off while thinking", 0, "<think>abc</thi", "abc</thi", "");
    check("opened, never closed", 1, "abc", "abc", "");
    check("only the start of a tag", 0, "<thi", "", "<thi");
    check("a close tag's start inside the reasoning", 0, "<think>a </ b</think>c", "a </ b", "c");
    check("the content keeps a later think tag", 0, "<think>a</think>b<think>c</think>", "a", "b<think>c</think>");
    CK_EXPECT(ck_think_opened("x<think>\n", 9) && ck_think_opened("<think>", 7) && !ck_think_opened("<think>x", 8) &&
                  !ck_think_opened("think>", 6) && !ck_think_opened("", 0),
              "ck_think_opened");
    return ck_test_done("test_think");
}
