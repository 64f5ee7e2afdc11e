/* fuzz_jinja.c — libFuzzer target: the Jinja interpreter (lexer, parser, evaluator) on arbitrary bytes.
 * Input: template text, optionally followed by a NUL byte and a JSON object of variables (when it does
 * not parse, a fixed chat conversation with tools is used, so templates reach deep). Rendering runs with
 * small limits. Checked: parsing and rendering never crash, hang or leak; a render that succeeds stays
 * within the output limit and its length matches the text; a failure always says why. */
#include "jinja/jinja.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char DEFAULT_VARS[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi \\u2603\"},"
    " {\"role\": \"assistant\", \"content\": \"<think>\\nhm\\n</think>\\n\\nHello\", \"reasoning_content\": \"r\","
    " \"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1.5}}}]},"
    " {\"role\": \"tool\", \"content\": \"{\\\"t\\\": 21}\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}}],"
    " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"enable_thinking\": false}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *src = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    cJSON *vars = NULL;
    if (nul) vars = cJSON_ParseWithLength((const char *)nul + 1, size - tlen - 1);
    if (!cJSON_IsObject(vars)) {
        cJSON_Delete(vars);
        vars = cJSON_Parse(DEFAULT_VARS);
    }
    ck_jinja *t = NULL;
    char err[256] = "";
    if (ck_jinja_parse(src, tlen, &t, err, sizeof err) != 0) {
        if (t || !err[0]) abort();
        cJSON_Delete(vars);
        return 0;
    }
    ck_jinja_limits lim = {1 << 20, 64u << 20, 100000, 120};
    char *out = NULL;
    size_t len = 0;
    err[0] = 0;
    int rc = ck_jinja_render(t, vars, &lim, &out, &len, err, sizeof err);
    if (rc == 0 && (!out || len > lim.max_output_bytes || strlen(out) > len)) abort();
    if (rc != 0 && out) abort();
    free(out);
    ck_jinja_free(t);
    cJSON_Delete(vars);
    return 0;
}
