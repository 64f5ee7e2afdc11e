/* test_jinja_cases.c — every case of tests/data/chat_templates/cases.json (real checkpoints' chat
 * templates over 8 conversations, rendered by HF transformers) through the Jinja interpreter: `expected`
 * cases must render byte for byte, `error` cases must fail. The variables are the ones HF passed:
 * messages, add_generation_prompt, tools (None unless the case has them), documents=None, the special
 * tokens, date_string and the case's kwargs; strftime_now() reads the fixed date via SOURCE_DATE_EPOCH.
 * With an argument, only templates whose name contains it run, and mismatches print in full. */
#include "jinja/jinja.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static void show_diff(const char *name, const char *id, const char *want, const char *got, int full) {
    size_t i = 0;
    while (want[i] && got[i] && want[i] == got[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    fprintf(stderr, "  %s/%s differs at byte %zu:\n    want: %.*s\n    got:  %.*s\n", name, id, i, 120,
            want + from, 120, got + from);
    if (full) fprintf(stderr, "---- want\n%s\n---- got\n%s\n----\n", want, got);
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    setenv("SOURCE_DATE_EPOCH", "1721995200", 1); /* 2024-07-26T12:00:00Z, the fixture's fixed date */
    cJSON *root = ck_test_json(CK_TEST_DATA "/chat_templates/cases.json");
    const cJSON *special = cJSON_GetObjectItem(root, "special_tokens"), *tools = cJSON_GetObjectItem(root, "tools");
    const cJSON *tmpl;
    int total = 0, passed = 0;
    cJSON_ArrayForEach(tmpl, cJSON_GetObjectItem(root, "templates")) {
        if (only && !strstr(tmpl->string, only)) continue;
        const char *src = cJSON_GetObjectItem(tmpl, "template")->valuestring;
        char err[512];
        ck_jinja *t = NULL;
        int prc = ck_jinja_parse(src, strlen(src), &t, err, sizeof err);
        CK_EXPECT(prc == 0, "%s: parse: %s", tmpl->string, err);
        const cJSON *cs;
        cJSON_ArrayForEach(cs, cJSON_GetObjectItem(tmpl, "cases")) {
            const char *id = cJSON_GetObjectItem(cs, "id")->valuestring;
            total++;
            if (prc != 0) continue;
            cJSON *vars = cJSON_CreateObject();
            const cJSON *it;
            cJSON_ArrayForEach(it, special) cJSON_AddItemToObject(vars, it->string, cJSON_Duplicate(it, 1));
            cJSON_AddStringToObject(vars, "date_string", "26 Jul 2024");
            cJSON_AddItemToObject(vars, "messages", cJSON_Duplicate(cJSON_GetObjectItem(cs, "messages"), 1));
            cJSON_AddItemToObject(vars, "add_generation_prompt",
                                  cJSON_Duplicate(cJSON_GetObjectItem(cs, "add_generation_prompt"), 1));
            cJSON_AddItemToObject(vars, "tools", cJSON_IsTrue(cJSON_GetObjectItem(cs, "with_tools"))
                                                     ? cJSON_Duplicate(tools, 1) : cJSON_CreateNull());
            cJSON_AddNullToObject(vars, "documents");
            cJSON_ArrayForEach(it, cJSON_GetObjectItem(cs, "kwargs")) {
                cJSON_DeleteItemFromObject(vars, it->string);
                cJSON_AddItemToObject(vars, it->string, cJSON_Duplicate(it, 1));
            }
            char *out = NULL;
            int rc = ck_jinja_render(t, vars, NULL, &out, NULL, err, sizeof err);
            const cJSON *want = cJSON_GetObjectItem(cs, "expected");
            if (want) {
                int ok = rc == 0 && !strcmp(out, want->valuestring);
                CK_EXPECT(ok, "%s/%s: %s", tmpl->string, id, rc ? err : "output differs");
                if (!ok && rc == 0) show_diff(tmpl->string, id, want->valuestring, out, only != NULL);
                passed += ok;
            } else {
                CK_EXPECT(rc != 0, "%s/%s: rendered, but HF raised %s", tmpl->string, id,
                          cJSON_GetObjectItem(cs, "error")->valuestring);
                if (rc != 0 && only) fprintf(stderr, "  %s/%s failed as expected: %s\n", tmpl->string, id, err);
                passed += rc != 0;
            }
            free(out);
            cJSON_Delete(vars);
        }
        ck_jinja_free(t);
    }
    printf("chat template cases: %d/%d\n", passed, total);
    CK_EXPECT(only || total == 200, "expected 200 cases, found %d", total);
    cJSON_Delete(root);
    return ck_test_done("test_jinja_cases");
}
