/* test_config.c — config.json parsing: the fields of real checkpoints (top level and under text_config),
 * and clean errors for malformed or out-of-range values (including inputs found by fuzzing); a value of the
 * wrong type is refused naming its key, never replaced by the default; null stands for absent where HF
 * allows it. */
#include "format/hfconfig.h"
#include "model/rope.h"
#include "testutil.h"

#include <string.h>

static int parse(const char *json, ck_config *c, char *err, size_t errlen) {
    return ck_config_parse(json, strlen(json), c, err, errlen);
}

#define BASE "\"vocab_size\":32,\"hidden_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":2"
#define ARCH "{\"architectures\":[\"X\"],"

/* Present with the wrong type, or out of range: the exact error. */
static void check_refused(void) {
    static const struct { const char *json, *want; } cs[] = {
        {ARCH BASE ",\"rms_norm_eps\":\"1e-5\"}", "config.json: rms_norm_eps must be a number (got a string)"},
        {ARCH BASE ",\"rms_norm_eps\":null}", "config.json: rms_norm_eps must be a number (got null)"},
        {ARCH "\"vocab_size\":32,\"hidden_size\":8,\"num_hidden_layers\":\"6\",\"num_attention_heads\":2}",
         "config.json: num_hidden_layers must be an integer (got a string)"},
        {ARCH "\"vocab_size\":32,\"hidden_size\":8.5,\"num_hidden_layers\":1,\"num_attention_heads\":2}",
         "config.json: hidden_size must be an integer (got 8.5)"},
        {ARCH BASE ",\"tie_word_embeddings\":\"no\"}", "config.json: tie_word_embeddings must be true or false (got a string)"},
        {ARCH BASE ",\"head_dim\":\"4\"}", "config.json: head_dim must be an integer or null (got a string)"},
        {ARCH BASE ",\"rope_parameters\":5}", "config.json: rope_parameters must be an object or null (got 5)"},
        {ARCH BASE ",\"eos_token_id\":[\"2\"]}",
         "config.json: eos_token_id must be a token id (or a list of them) or null (got a list)"},
        {ARCH BASE ",\"mlp_only_layers\":[0.5]}", "config.json: mlp_only_layers must be a list of integers or null (got a list)"},
        {ARCH BASE ",\"num_experts\":\"8\"}", "config.json: num_experts must be an integer (got a string)"},
        {ARCH "\"text_config\":5," BASE "}", "config.json: text_config must be an object or null (got 5)"},
        {ARCH BASE ",\"intermediate_size\":0}", "config.json: intermediate_size out of range (0)"},
        {ARCH BASE ",\"intermediate_size\":-4}", "config.json: intermediate_size out of range (-4)"},
        {ARCH BASE ",\"sliding_window\":0}", "config.json: sliding_window must be a positive integer or null (got 0)"},
        {ARCH BASE ",\"sliding_window\":-1}", "config.json: sliding_window must be a positive integer or null (got -1)"},
        {ARCH BASE ",\"sliding_window\":\"8\"}",
         "config.json: sliding_window must be a positive integer or null (got a string)"},
        {ARCH BASE ",\"layer_types\":5}", "config.json: layer_types must be a list of strings or null (got 5)"},
        {ARCH BASE ",\"layer_types\":[\"full_attention\",\"full_attention\"]}",
         "config.json: layer_types has 2 entries but num_hidden_layers is 1"},
        {ARCH BASE ",\"layer_types\":[]}", "config.json: layer_types has 0 entries but num_hidden_layers is 1"},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        ck_config c;
        char err[256] = "";
        int rc = parse(cs[i].json, &c, err, sizeof err);
        CK_EXPECT(rc == -1 && !strcmp(err, cs[i].want), "refused %zu: rc %d, '%s' (want '%s')", i, rc, err, cs[i].want);
        if (rc == 0) ck_config_free(&c);
    }
}

/* null where HF reads None as "not set" is the key's default; a window is ignored when use_sliding_window
 * is false, as HF does. */
static void check_nulls(void) {
    ck_config c;
    char err[256] = "";
    CK_EXPECT(parse(ARCH BASE ",\"head_dim\":null,\"num_key_value_heads\":null,\"sliding_window\":null,"
                    "\"rope_scaling\":null,\"rope_parameters\":null,\"layer_types\":null,\"bos_token_id\":null,"
                    "\"eos_token_id\":null,\"mlp_only_layers\":null,\"final_logit_softcapping\":null,"
                    "\"text_config\":null}", &c, err, sizeof err) == 0, "nulls: %s", err);
    CK_EXPECT(c.head_dim == 4 && c.n_kv_heads == 2 && c.sliding_window == 0 && c.bos_id == -1 && c.n_eos == 0,
              "nulls: head_dim %lld kv %lld window %lld bos %d eos %d", (long long)c.head_dim, (long long)c.n_kv_heads,
              (long long)c.sliding_window, c.bos_id, c.n_eos);
    ck_config_free(&c);
    CK_EXPECT(parse(ARCH BASE ",\"sliding_window\":8,\"layer_types\":[\"sliding_attention\"]}", &c, err,
                    sizeof err) == 0 && c.sliding_window == 8, "window 8: %s", err);
    ck_config_free(&c);
    CK_EXPECT(parse(ARCH BASE ",\"use_sliding_window\":false,\"sliding_window\":\"x\"}", &c, err, sizeof err) == 0 &&
                  c.sliding_window == 0, "window off: %s", err);
    ck_config_free(&c);
}

/* RoPE parameters of the wrong type: refused when the RoPE tables are built, naming the key. */
static void check_rope_types(void) {
    static const struct { const char *rp, *want; } cs[] = {
        {"{\"rope_type\":\"default\",\"rope_theta\":\"500000\"}",
         "config.json: RoPE parameter rope_theta must be a number (got a string)"},
        {"{\"rope_type\":\"llama3\",\"rope_theta\":500000,\"factor\":\"32\"}",
         "config.json: RoPE parameter factor must be a number (got a string)"},
        {"{\"rope_type\":\"llama3\",\"factor\":32,\"original_max_position_embeddings\":null}",
         "config.json: RoPE parameter original_max_position_embeddings must be a number (got null)"},
        {"{\"rope_type\":\"linear\",\"factor\":null}", "config.json: RoPE parameter factor must be a number (got null)"},
        {"{\"rope_type\":5}", "config.json: rope_type must be a string (got 5)"},
        {"{\"partial_rotary_factor\":[1]}", "config.json: RoPE parameter partial_rotary_factor must be a number (got a list)"},
    };
    char json[512], err[256];
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        ck_config c;
        ck_rope r;
        snprintf(json, sizeof json, ARCH BASE ",\"rope_parameters\":%s}", cs[i].rp);
        err[0] = 0;
        if (parse(json, &c, err, sizeof err) != 0) {
            CK_EXPECT(0, "rope %zu: parse: %s", i, err);
            continue;
        }
        int rc = ck_rope_init(&r, &c, NULL, 4, err, sizeof err);
        CK_EXPECT(rc == -1 && !strcmp(err, cs[i].want), "rope %zu: rc %d, '%s' (want '%s')", i, rc, err, cs[i].want);
        if (rc == 0) ck_rope_free(&r);
        ck_config_free(&c);
    }
}

int main(void) {
    ck_config c;
    char err[256];
    CK_EXPECT(parse("{\"architectures\":[\"Qwen3ForCausalLM\"]," BASE ",\"eos_token_id\":[5,7],\"bos_token_id\":3}",
                    &c, err, sizeof err) == 0, "valid: %s", err);
    CK_EXPECT(c.n_eos == 2 && c.eos_ids[1] == 7 && c.bos_id == 3, "eos/bos");
    CK_EXPECT(c.head_dim == 4 && c.n_kv_heads == 2, "derived head_dim %lld kv %lld", (long long)c.head_dim,
              (long long)c.n_kv_heads);
    ck_config_free(&c);

    CK_EXPECT(parse("{\"architectures\":[\"X\"],\"text_config\":{" BASE ",\"head_dim\":16}}", &c, err, sizeof err) == 0,
              "text_config: %s", err);
    CK_EXPECT(c.hidden_size == 8 && c.head_dim == 16, "fields under text_config");
    ck_config_free(&c);

    /* found by fuzzing: an id far outside int32 must not be converted blindly */
    CK_EXPECT(parse("{\"architectures\":[\"X\"]," BASE ",\"eos_token_id\":3333333333333333333333333333333,"
                    "\"bos_token_id\":-4}", &c, err, sizeof err) == 0, "huge eos: %s", err);
    CK_EXPECT(c.n_eos == 0 && c.bos_id == -1, "out-of-range ids dropped (n_eos %d bos %d)", c.n_eos, c.bos_id);
    ck_config_free(&c);

    const char *bad[] = {
        "", "[]", "{\"architectures\":[]}", "{\"architectures\":[\"X\"]}",
        "{\"architectures\":[\"X\"]," BASE ",\"num_key_value_heads\":3}",
        "{\"architectures\":[\"X\"]," BASE ",\"rms_norm_eps\":-1}",
        "{\"architectures\":[\"X\"],\"vocab_size\":1e300,\"hidden_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":2}",
        "{\"architectures\":[\"X\"],\"vocab_size\":32,\"hidden_size\":8.5,\"num_hidden_layers\":1,\"num_attention_heads\":2}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        int rc = parse(bad[i], &c, err, sizeof err);
        CK_EXPECT(rc == -1 && err[0], "bad config %zu accepted", i);
        if (rc == 0) ck_config_free(&c);
    }

    /* RoPE parameters: unsupported type and bad partial factor are errors */
    CK_EXPECT(parse("{\"architectures\":[\"X\"]," BASE ",\"rope_parameters\":{\"rope_type\":\"yarn\"}}", &c, err,
                    sizeof err) == 0, "parse");
    ck_rope r;
    CK_EXPECT(ck_rope_init(&r, &c, NULL, 4, err, sizeof err) == -1 && strstr(err, "yarn"), "yarn: %s", err);
    ck_config_free(&c);
    CK_EXPECT(parse("{\"architectures\":[\"X\"]," BASE ",\"partial_rotary_factor\":1.5}", &c, err, sizeof err) == 0,
              "parse");
    CK_EXPECT(ck_rope_init(&r, &c, NULL, 4, err, sizeof err) == -1, "partial 1.5 accepted");
    ck_config_free(&c);
    check_refused();
    check_nulls();
    check_rope_types();
    return ck_test_done("test_config");
}
