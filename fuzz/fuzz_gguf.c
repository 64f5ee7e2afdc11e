/* fuzz_gguf.c — libFuzzer target: ck_gguf_parse on arbitrary bytes must return 0 or -1, never crash;
 * on success every tensor's bytes lie inside the buffer, every string value too, and the HF config made
 * from the metadata either builds or fails cleanly. */
#include "format/gguf.h"
#include "format/gguf_model.h"

#include <stdint.h>
#include <stdlib.h>

static int inside(const void *p, uint64_t n, const uint8_t *data, size_t size) {
    const uint8_t *q = p;
    return q >= data && q <= data + size && n <= (uint64_t)(data + size - q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ck_gguf g;
    char err[256];
    if (ck_gguf_parse(data, size, &g, err, sizeof err) != 0) return 0;
    for (size_t i = 0; i < g.n_tensors; i++)
        if (!inside(g.tensors[i].data, g.tensors[i].nbytes, data, size)) abort();
    for (size_t i = 0; i < g.n_kv; i++)
        for (uint64_t j = 0; g.kv[i].strs && j < g.kv[i].n; j++)
            if (!inside(g.kv[i].strs[j].p, g.kv[i].strs[j].len, data, size)) abort();
    char *json;
    if (ck_gguf_config_json(&g, &json, err, sizeof err) == 0) free(json);
    ck_gguf_free(&g);
    return 0;
}
