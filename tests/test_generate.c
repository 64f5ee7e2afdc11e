/* test_generate.c — the library's generation loop (ck_generate) on qwen3-tiny with its real tokenizer,
 * against HF's greedy continuation (reference.json: 24 greedy ids and their text): the streamed text is
 * exact; stop strings end it at their first occurrence, also when one spans tokens or splits a multi-byte
 * character's neighbours; an end-of-sequence token releases the text held back as the start of a stop
 * string; max_tokens, a full context, cancel through on_text and through the flag; a
 * second request reuses the prefix the session holds and streams the same text; bad parameters are
 * refused by name. */
#include "cake.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct sink {
    char text[4096];
    size_t n;
    int pieces, cancel_after; /* cancel_after > 0: return 1 on that piece */
} sink;

static int on_text(void *user, const char *t, size_t len) {
    sink *s = user;
    if (s->n + len < sizeof s->text) memcpy(s->text + s->n, t, len), s->n += len;
    s->text[s->n] = 0;
    return ++s->pieces == s->cancel_after;
}

static ck_engine *e;
static int32_t *prompt;
static size_t n_prompt;
static const char *greedy_text;

/* Greedy generation of up to max tokens with the given stop strings into *out (fresh session unless s). */
static int gen(ck_session *s, size_t max, const char *const *stop, size_t n_stop, sink *out, ck_gen_result *r,
               const volatile int *cancel) {
    char err[256];
    ck_gen_params p;
    ck_gen_params_default(&p);
    p.temperature = 0, p.repeat_penalty = 1, p.max_tokens = max, p.stop = stop, p.n_stop = n_stop;
    p.on_text = on_text, p.user = out, p.cancel = cancel;
    int rc = ck_generate(s, prompt, n_prompt, &p, r, err, sizeof err);
    CK_EXPECT(rc == 0, "generate: %s", err);
    return rc;
}

static void check_stop(const char *stop) {
    ck_session *s;
    char err[256];
    CK_EXPECT(ck_session_open(e, 0, &s, err, sizeof err) == 0, "%s", err);
    sink out = {0};
    ck_gen_result r;
    const char *stops[2] = {"never appears", stop};
    gen(s, 24, stops, 2, &out, &r, NULL);
    size_t want = (size_t)(strstr(greedy_text, stop) - greedy_text);
    CK_EXPECT(out.n == want && !memcmp(out.text, greedy_text, want), "stop '%s': got '%s'", stop, out.text);
    CK_EXPECT(r.finish == CK_FINISH_STOP, "stop '%s': finish %d", stop, (int)r.finish);
    ck_session_close(s);
}

/* The model of dir with generation_config.json naming the greedy continuation's third token (id) an end
 * token as well: generation stops there with finish "stop", after the text of the first two. With a stop
 * string that the end of that text begins ("Type..."), the text held back for it must still come out. */
static void check_eos_releases_held(const char *dir, int32_t id) {
    char tmp[] = "/tmp/ck-eos-XXXXXX", src[700], dst[700], err[512];
    CK_EXPECT(mkdtemp(tmp) != NULL, "mkdtemp");
    const char *files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(src, sizeof src, "%s/%s", dir, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", tmp, files[i]);
        CK_EXPECT(symlink(src, dst) == 0, "symlink %s", dst);
    }
    snprintf(dst, sizeof dst, "%s/generation_config.json", tmp);
    FILE *f = fopen(dst, "w");
    CK_EXPECT(f != NULL, "%s", dst);
    if (f) fprintf(f, "{\"eos_token_id\": [151645, %d]}\n", (int)id), fclose(f);
    ck_engine *e2;
    ck_session *s;
    ck_gen_result r;
    if (ck_engine_open(tmp, NULL, &e2, err, sizeof err) != 0) {
        CK_EXPECT(0, "%s", err);
    } else {
        CK_EXPECT(ck_session_open(e2, 0, &s, err, sizeof err) == 0, "%s", err);
        const char *stops[][1] = {{"never appears"}, {"TypeNot"}, {"eNot"}};
        for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
            sink out = {0};
            ck_gen_params p;
            ck_gen_params_default(&p);
            p.temperature = 0, p.repeat_penalty = 1, p.max_tokens = 24, p.stop = stops[i], p.n_stop = 1;
            p.on_text = on_text, p.user = &out;
            CK_EXPECT(ck_generate(s, prompt, n_prompt, &p, &r, err, sizeof err) == 0, "%s", err);
            CK_EXPECT(!strcmp(out.text, "ValueTypeValueType") && r.finish == CK_FINISH_STOP && r.n_gen == 2,
                      "end token with stop '%s': '%s', finish %d after %zu", stops[i][0], out.text, (int)r.finish,
                      r.n_gen);
        }
        ck_session_close(s);
        ck_engine_close(e2);
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(dst, sizeof dst, "%s/%s", tmp, files[i]);
        unlink(dst);
    }
    snprintf(dst, sizeof dst, "%s/generation_config.json", tmp);
    unlink(dst);
    rmdir(tmp);
}

int main(void) {
    char dir[512], path[600], err[512];
    snprintf(dir, sizeof dir, "%s/qwen3-tiny", CK_TEST_UNPACKED);
    snprintf(path, sizeof path, "%s/reference.json", dir);
    cJSON *ref = ck_test_json(path);
    const cJSON *pi = cJSON_GetObjectItem(ref, "prompt_ids");
    n_prompt = (size_t)cJSON_GetArraySize(pi);
    prompt = malloc(n_prompt * sizeof *prompt);
    for (size_t i = 0; i < n_prompt; i++) prompt[i] = (int32_t)cJSON_GetArrayItem(pi, (int)i)->valuedouble;
    greedy_text = cJSON_GetObjectItem(ref, "greedy_text")->valuestring;
    if (ck_engine_open(dir, NULL, &e, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* the whole greedy continuation, then the same request again: the prefix is reused */
    ck_session *s;
    CK_EXPECT(ck_session_open(e, 0, &s, err, sizeof err) == 0, "%s", err);
    sink a = {0}, b = {0};
    ck_gen_result r;
    gen(s, 24, NULL, 0, &a, &r, NULL);
    CK_EXPECT(!strcmp(a.text, greedy_text), "greedy text '%s'", a.text);
    CK_EXPECT(r.finish == CK_FINISH_LENGTH && r.n_gen == 24 && r.n_reused == 0, "finish %d, %zu generated",
              (int)r.finish, r.n_gen);
    gen(s, 24, NULL, 0, &b, &r, NULL);
    CK_EXPECT(!strcmp(b.text, greedy_text), "second request '%s'", b.text);
    CK_EXPECT(r.n_reused == n_prompt - 1, "reused %zu of %zu prompt tokens", r.n_reused, n_prompt);
    printf("second request reused %zu of %zu prompt tokens\n", r.n_reused, n_prompt);
    /* NULL where the API takes a pointer: an error, never a crash */
    ck_gen_params np;
    ck_gen_params_default(&np);
    np.n_stop = 1;
    CK_EXPECT(ck_generate(s, prompt, n_prompt, NULL, &r, err, sizeof err) == -1 && strstr(err, "NULL parameters"), "%s", err);
    CK_EXPECT(ck_generate(s, prompt, n_prompt, &np, &r, err, sizeof err) == -1 && strstr(err, "NULL stop"), "%s", err);
    CK_EXPECT(ck_generate(s, prompt, n_prompt, &np, NULL, err, sizeof err) == -1 && strstr(err, "NULL result"), "%s", err);
    ck_session *none = NULL;
    ck_engine *no_e = NULL;
    CK_EXPECT(ck_session_open(NULL, 0, &none, err, sizeof err) == -1 && !none, "session of no engine: %s", err);
    CK_EXPECT(ck_engine_open(NULL, NULL, &no_e, err, sizeof err) == -1 && !no_e, "engine of no path: %s", err);
    CK_EXPECT(ck_engine_set_chat_template(e, NULL, 0, err, sizeof err) == -1, "NULL template accepted");
    CK_EXPECT(ck_set_kv_type(NULL, err, sizeof err) == -1 && ck_set_backend(NULL, 0, err, sizeof err) == -1,
              "NULL kv type / backend accepted");
    ck_message nomsg = {"user", NULL};
    int32_t *pids = NULL;
    size_t pn = 0;
    CK_EXPECT(ck_engine_plain_ids(e, &nomsg, 1, &pids, &pn, err, sizeof err) == -1 && !pids, "NULL content: %s", err);
    ck_session_close(s);

    check_stop("(calc(");     /* ends inside a token's text */
    check_stop("ValueType");  /* at the very start: nothing is emitted */
    check_stop("\xb8\x88\xe0\xb8\x81"); /* spans two tokens and starts inside a UTF-8 character */
    check_stop("กระจกระจก");  /* spans three tokens */
    const cJSON *gi = cJSON_GetObjectItem(ref, "greedy_ids");
    check_eos_releases_held(dir, (int32_t)cJSON_GetArrayItem(gi, 2)->valuedouble);

    /* max_tokens and a full context */
    CK_EXPECT(ck_session_open(e, n_prompt + 3, &s, err, sizeof err) == 0, "%s", err);
    sink c = {0};
    gen(s, 24, NULL, 0, &c, &r, NULL);
    CK_EXPECT(r.finish == CK_FINISH_LENGTH && r.n_gen == 4, "full context: finish %d after %zu", (int)r.finish, r.n_gen);
    ck_session_close(s);
    CK_EXPECT(ck_session_open(e, 0, &s, err, sizeof err) == 0, "%s", err);
    sink d = {0};
    gen(s, 5, NULL, 0, &d, &r, NULL);
    CK_EXPECT(r.finish == CK_FINISH_LENGTH && r.n_gen == 5, "max_tokens 5: finish %d after %zu", (int)r.finish, r.n_gen);
    sink z = {0};
    gen(s, 0, NULL, 0, &z, &r, NULL);
    CK_EXPECT(r.n_gen == 0 && z.n == 0, "max_tokens 0 generated %zu", r.n_gen);

    /* cancel from the callback and through the flag */
    sink f = {.cancel_after = 3};
    gen(s, 24, NULL, 0, &f, &r, NULL);
    CK_EXPECT(r.finish == CK_FINISH_CANCEL && f.pieces == 3 && r.n_gen < 24, "on_text cancel: finish %d, %d pieces",
              (int)r.finish, f.pieces);
    volatile int flag = 1;
    sink g = {0};
    gen(s, 24, NULL, 0, &g, &r, &flag);
    CK_EXPECT(r.finish == CK_FINISH_CANCEL && r.n_gen == 0, "cancel flag: finish %d, %zu", (int)r.finish, r.n_gen);

    /* bad parameters */
    ck_gen_params p;
    const char *empty[1] = {""};
    struct { const char *field; float t, tp, rp; const char *const *stop; } bad[] = {
        {"temperature", NAN, 1, 1, NULL}, {"temperature", -1, 1, 1, NULL}, {"top_p", 1, 2, 1, NULL},
        {"top_p", 1, 0, 1, NULL}, {"repeat_penalty", 1, 1, NAN, NULL}, {"repeat_penalty", 1, 1, INFINITY, NULL},
        {"stop string 0 is empty", 1, 1, 1, empty},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_gen_params_default(&p);
        p.temperature = bad[i].t, p.top_p = bad[i].tp, p.repeat_penalty = bad[i].rp;
        p.stop = bad[i].stop, p.n_stop = bad[i].stop ? 1 : 0;
        int rc = ck_generate(s, prompt, n_prompt, &p, &r, err, sizeof err);
        CK_EXPECT(rc != 0 && strstr(err, bad[i].field), "bad %s accepted ('%s')", bad[i].field, rc ? err : "");
    }
    ck_session_close(s);
    ck_engine_close(e);
    free(prompt);
    cJSON_Delete(ref);
    return ck_test_done("test_generate");
}
