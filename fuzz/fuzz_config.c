/* fuzz_config.c — libFuzzer target: config.json parsing on arbitrary text, then the RoPE setup that
 * reads its parameters; both must fail cleanly on anything malformed. */
#include "format/hfconfig.h"
#include "model/rope.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ck_config c;
    char err[256];
    if (ck_config_parse((const char *)data, size, &c, err, sizeof err) == 0) {
        ck_rope r;
        if (c.head_dim <= 4096 && ck_rope_init(&r, &c, NULL, (size_t)c.head_dim, err, sizeof err) == 0) ck_rope_free(&r);
        ck_config_free(&c);
    }
    return 0;
}
