/* fuzz_chat.c — libFuzzer target: chat-template recognition and rendering on arbitrary bytes.
 * Input: one flags byte (template family, add_generation_prompt, enable_thinking), then NUL-separated
 * fields: the first is template text (given to the recognizer), each later one a message whose first byte
 * picks the role (system / user / assistant / tool, or the rest of the field as an arbitrary role) and
 * whose remaining bytes are its content (any bytes, invalid UTF-8 included). Checked: rendering never
 * crashes; the supported families render every conversation (Gemma 3 may refuse non-alternating roles
 * with an error), an unknown family none; Qwen3 copies every user message verbatim. */
#include "tok/tok_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MSGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char *text = malloc(size); /* the fields, NUL-terminated in place */
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    int kind = data[0] & 3, gen = (data[0] >> 2) & 1, think = (data[0] >> 3) & 1;
    static const char *roles[] = {"system", "user", "assistant", "tool"};
    ck_chat_msg msgs[MAX_MSGS];
    size_t n = 0;
    char *p = text, *end = text + size - 1;
    int detected = ck_tok_chat_detect(p);
    if (detected < CK_CHAT_NONE || detected > CK_CHAT_GEMMA3) abort();
    p += strlen(p) + 1;
    while (p < end && n < MAX_MSGS) {
        uint8_t r = (uint8_t)*p;
        const char *content = *p ? p + 1 : p;
        msgs[n++] = (ck_chat_msg){r % 5 < 4 ? roles[r % 5] : content, content};
        p += strlen(p) + 1;
    }
    char *out = NULL, err[256];
    int rc = ck_tok_chat_render_kind(kind, (data[0] & 16) ? "<s>" : NULL, msgs, n, gen, think, &out, err, sizeof err);
    if (kind == CK_CHAT_NONE && rc == 0) abort();
    if ((kind == CK_CHAT_QWEN3 || kind == CK_CHAT_LLAMA3) && rc != 0) abort();
    if (rc == 0 && kind == CK_CHAT_QWEN3)
        for (size_t i = 0; i < n; i++)
            if (!strcmp(msgs[i].role, "user") && !strstr(out, msgs[i].content)) abort();
    free(out);
    free(text);
    return 0;
}
