/* test_config.c — config.json parsing: the fields of real checkpoints (top level and under text_config),
 * and clean errors for malformed or out-of-range values (including inputs found by fuzzing). */
#include "format/hfconfig.h"
#include "model/rope.h"
#include "testutil.h"

#include <string.h>

static int parse(const char *json, ck_config *c, char *err, size_t errlen) {
    return ck_config_parse(json, strlen(json), c, err, errlen);
}

#define BASE "\"vocab_size\":32,\"hidden_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":2"

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
    return ck_test_done("test_config");
}
