/* fuzz_openai.c — libFuzzer target: OpenAI request bodies (chat and text completions) on arbitrary bytes;
 * parsing must refuse malformed input cleanly, and a request it accepts must have at least one message
 * (chat) or a prompt (completion) and print back as a reply without crashing. */
#include "server/openai.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int completion = 0; completion < 2; completion++) {
        ck_oai_request r;
        char err[256];
        if (ck_oai_parse((const char *)data, size, completion, NULL, &r, err, sizeof err) == 0) {
            if (completion ? !r.prompt : r.n_msgs == 0) __builtin_trap();
            ck_oai_reply meta = {"id", "model", 0, completion};
            const char *text = completion ? r.prompt : r.msgs[r.n_msgs - 1].content;
            char *out = ck_oai_completion(&meta, NULL, 0, text, strlen(text), NULL, CK_FINISH_STOP, r.n_msgs, 1);
            free(out);
        }
        ck_oai_request_free(&r);
    }
    return 0;
}
