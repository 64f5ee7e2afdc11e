/* test_jinja.c — the Jinja interpreter's language, feature by feature: every case of
 * tests/data/jinja/cases.json (whitespace control, statements, expressions, tests, filters, methods,
 * Python value formatting, errors) must render exactly as Jinja2 set up like HF's renderer did
 * (tools/jinja_ref.py writes the file), and every error case must fail. Then what Jinja2 cannot show:
 * limits (loops, output size, recursion, nesting) end hostile templates with an error naming the line,
 * and the JSON variables map to values as HF's json.loads would. */
#include "jinja/jinja.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

/* Renders src with vars (JSON text); returns the output (malloc'd) or NULL with err filled. */
static char *render(const char *src, const char *vars_json, const ck_jinja_limits *lim, char *err, size_t errlen) {
    ck_jinja *t;
    if (ck_jinja_parse(src, strlen(src), &t, err, errlen) != 0) return NULL;
    cJSON *vars = cJSON_Parse(vars_json ? vars_json : "{}");
    char *out = NULL;
    if (ck_jinja_render(t, vars, lim, &out, NULL, err, errlen) != 0) out = NULL;
    cJSON_Delete(vars);
    ck_jinja_free(t);
    return out;
}

static void check_cases(void) {
    cJSON *root = ck_test_json(CK_TEST_DATA "/jinja/cases.json");
    const cJSON *c;
    int ok = 0, total = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        const char *src = cJSON_GetObjectItem(c, "template")->valuestring;
        char *vars = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "vars"));
        char err[512] = "";
        char *out = render(src, vars, NULL, err, sizeof err);
        const cJSON *want = cJSON_GetObjectItem(c, "expected");
        int good;
        if (want) {
            good = out && !strcmp(out, want->valuestring);
            CK_EXPECT(good, "%s\n  want: %s\n  got:  %s", src, want->valuestring, out ? out : err);
        } else {
            good = !out && err[0];
            CK_EXPECT(good, "%s must fail (%s), rendered: %s", src, cJSON_GetObjectItem(c, "error")->valuestring,
                      out ? out : "");
        }
        ok += good;
        total++;
        free(out);
        free(vars);
    }
    printf("jinja language cases: %d/%d\n", ok, total);
    CK_EXPECT(total >= 100, "only %d cases", total);
    cJSON_Delete(root);
}

static void expect_error(const char *src, const char *vars, const ck_jinja_limits *lim, const char *needle) {
    char err[512] = "";
    char *out = render(src, vars, lim, err, sizeof err);
    CK_EXPECT(!out && strstr(err, needle), "%s: want an error with '%s', got '%s'", src, needle, out ? out : err);
    free(out);
}

static void check_limits(void) {
    ck_jinja_limits lim = ck_jinja_default_limits();
    lim.max_steps = 10000;
    expect_error("line one\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", NULL,
                 &lim, "template line 2: too many loop iterations");
    lim = ck_jinja_default_limits();
    lim.max_output_bytes = 1000;
    expect_error("{% for i in range(10000) %}xxxxxxxxxx{% endfor %}", NULL, &lim, "too large");
    expect_error("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                 NULL, &lim, "too large");
    lim = ck_jinja_default_limits();
    lim.max_memory_bytes = 1 << 20;
    expect_error("{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
                 NULL, &lim, "memory");
    expect_error("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", NULL, NULL, "nested too deeply");
    char deep[4096];
    size_t k = 0;
    k += (size_t)snprintf(deep + k, sizeof deep - k, "{{ ");
    for (int i = 0; i < 1000; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 1000; i++) deep[k++] = ')';
    k += (size_t)snprintf(deep + k, sizeof deep - k, " }}");
    expect_error(deep, NULL, NULL, "nested too deeply");
    k = 0;
    for (int i = 0; i < 300; i++) k += (size_t)snprintf(deep + k, sizeof deep - k, "{%% if x %%}");
    expect_error(deep, NULL, NULL, "nested too deeply");
    expect_error("ok\n\n{{ x.y.z }}", NULL, NULL, "template line 3: 'x' is undefined");
    expect_error("{{ raise_exception('exact') }}", NULL, NULL, "exact");
    char err[256];
    char *out = render("{{ raise_exception('Only user and assistant roles') }}", NULL, NULL, err, sizeof err);
    CK_EXPECT(!out && !strcmp(err, "Only user and assistant roles"), "raise message passes unchanged: '%s'", err);
    ck_jinja *t = NULL;
    CK_EXPECT(ck_jinja_parse("a\0b", 3, &t, err, sizeof err) != 0 && !t, "a NUL byte in a template is refused");
}

static void check_values(void) {
    char err[256];
    const char *vars = "{\"i\": 3, \"f\": 2.5, \"big\": 12345678901234, \"neg\": -0.5, \"b\": false, \"n\": null,"
                       " \"s\": \"\\u00e9x\", \"o\": {\"k\": [1, {\"z\": true}]}}";
    char *out = render("{{ i }} {{ f }} {{ big }} {{ neg }} {{ b }} {{ n }} {{ s | length }} {{ o }} {{ o | tojson }}",
                       vars, NULL, err, sizeof err);
    const char *want = "3 2.5 12345678901234 -0.5 False None 2 {'k': [1, {'z': True}]} {\"k\": [1, {\"z\": true}]}";
    CK_EXPECT(out && !strcmp(out, want), "values: %s", out ? out : err);
    free(out);
    out = render("{% for m in messages %}{{ m.role }}:{{ m.reasoning_content | default('-') }};{% endfor %}",
                 "{\"messages\": [{\"role\": \"user\"}, {\"role\": \"assistant\", \"reasoning_content\": \"r\"}]}",
                 NULL, err, sizeof err);
    CK_EXPECT(out && !strcmp(out, "user:-;assistant:r;"), "message fields pass through: %s", out ? out : err);
    free(out);
    /* numbers written as floats stay floats (Python's json.loads), once marked */
    const char *json = "{\"v\": [1.0, 2, -3.5e2, {\"a\": 1e3, \"s\": \"1.0, 2\"}, 10]}";
    cJSON *j = cJSON_Parse(json);
    ck_jinja_json_mark_floats(j, json, strlen(json));
    cJSON *dup = cJSON_Duplicate(j, 1);
    ck_jinja *tf;
    CK_EXPECT(ck_jinja_parse("{{ v }} {{ v | tojson }}", 24, &tf, err, sizeof err) == 0, "parse: %s", err);
    out = NULL;
    CK_EXPECT(ck_jinja_render(tf, dup, NULL, &out, NULL, err, sizeof err) == 0 && out &&
                  !strcmp(out, "[1.0, 2, -350.0, {'a': 1000.0, 's': '1.0, 2'}, 10] [1.0, 2, -350.0, {\"a\": 1000.0, \"s\": \"1.0, 2\"}, 10]"),
              "float marks: %s", out ? out : err);
    free(out);
    ck_jinja_free(tf);
    cJSON_Delete(j);
    cJSON_Delete(dup);
    /* a template is reusable and independent of earlier renders */
    ck_jinja *t;
    const char *src = "{% set ns = namespace(c=0) %}{% set ns.c = ns.c + 1 %}{{ ns.c }}";
    CK_EXPECT(ck_jinja_parse(src, strlen(src), &t, err, sizeof err) == 0, "parse: %s", err);
    for (int i = 0; i < 3; i++) {
        size_t len = 0;
        out = NULL;
        CK_EXPECT(ck_jinja_render(t, NULL, NULL, &out, &len, err, sizeof err) == 0 && out && !strcmp(out, "1") && len == 1,
                  "render %d: %s", i, out ? out : err);
        free(out);
    }
    ck_jinja_free(t);
}

int main(void) {
    setenv("SOURCE_DATE_EPOCH", "1721995200", 1);
    check_cases();
    check_limits();
    check_values();
    return ck_test_done("test_jinja");
}
