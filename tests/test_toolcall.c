/* test_toolcall.c — tool calls in a reply (src/server/toolcall.c): the <tool_call> blocks after any text
 * become OpenAI tool_calls (arguments as JSON text), the text before them the content, the same whether
 * the text comes whole, a byte at a time or cut anywhere; text that only looks like a call (unclosed, not
 * JSON, no name, text after it) stays content, whole. */
#include "server/toolcall.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

/* Feeds text in pieces of `step` bytes (0: cut once at `cut`); compares the content that went out (plus the
 * rest when it did not parse) and the calls' JSON (NULL: none). */
static void feed_as(const char *name, const char *text, size_t step, size_t cut, const char *want_content,
                    const char *want_calls) {
    size_t n = strlen(text), on = 0;
    char *out = malloc(n + 4 * CK_TOOLCALL_HOLD + 1);
    ck_toolcalls t;
    ck_toolcalls_init(&t);
    if (step == 0) {
        ck_toolcalls_feed(&t, text, cut, 0, out, &on);
        ck_toolcalls_feed(&t, text + cut, n - cut, 1, out, &on);
    } else {
        for (size_t i = 0; i < n; i += step) ck_toolcalls_feed(&t, text + i, n - i < step ? n - i : step, 0, out, &on);
        ck_toolcalls_feed(&t, "", 0, 1, out, &on);
    }
    const char *rest;
    size_t rn;
    char *calls = ck_toolcalls_end(&t, "t1", &rest, &rn);
    memcpy(out + on, rest, rn);
    out[on + rn] = 0;
    CK_EXPECT(!strcmp(out, want_content), "%s (step %zu, cut %zu): content '%s'", name, step, cut, out);
    CK_EXPECT(want_calls ? calls && !strcmp(calls, want_calls) : !calls, "%s (step %zu, cut %zu): calls %s", name, step,
              cut, calls ? calls : "(none)");
    free(calls);
    free(out);
    ck_toolcalls_free(&t);
}

static void check(const char *name, const char *text, const char *want_content, const char *want_calls) {
    size_t n = strlen(text);
    for (size_t step = 1; step <= 3; step++) feed_as(name, text, step, 0, want_content, want_calls);
    for (size_t cut = 0; cut <= n; cut++) feed_as(name, text, 0, cut, want_content, want_calls);
}

int main(void) {
    check("Qwen's form after text",
          "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
          "Let me check.\n",
          "[{\"id\":\"call_t1_0\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
          "\"{\\\"city\\\":\\\"Paris\\\"}\"}}]");
    check("two calls, no text",
          "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\"}\n</tool_call>\n",
          "",
          "[{\"id\":\"call_t1_0\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}},"
          "{\"id\":\"call_t1_1\",\"type\":\"function\",\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}}]");
    check("arguments given as text", "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1}\"}</tool_call>", "",
          "[{\"id\":\"call_t1_0\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\": 1}\"}}]");
    check("no call", "Just text, <tool no call.", "Just text, <tool no call.", NULL);
    check("only the start of a tag", "Hi <tool_c", "Hi <tool_c", NULL);
    check("unclosed", "x <tool_call>{\"name\": \"f\"}", "x <tool_call>{\"name\": \"f\"}", NULL);
    check("not JSON", "<tool_call>{name: f}</tool_call>", "<tool_call>{name: f}</tool_call>", NULL);
    check("no name", "<tool_call>{\"arguments\": {}}</tool_call>", "<tool_call>{\"arguments\": {}}</tool_call>", NULL);
    check("text after the call", "<tool_call>{\"name\": \"f\"}</tool_call> and more",
          "<tool_call>{\"name\": \"f\"}</tool_call> and more", NULL);
    return ck_test_done("test_toolcall");
}
