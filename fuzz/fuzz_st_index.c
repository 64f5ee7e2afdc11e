/* fuzz_st_index.c — libFuzzer target: model.safetensors.index.json parsing on arbitrary text. It must fail
 * cleanly on anything malformed; on success every tensor names a shard inside the model directory, the
 * names are sorted and unique, and every shard number is in range. */
#include "format/safetensors.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ck_st_index ix;
    char err[256];
    if (ck_st_index_parse((const char *)data, size, &ix, err, sizeof err) != 0) return 0;
    for (size_t i = 0; i < ix.n; i++) {
        if (ix.refs[i].shard >= ix.n_shards) abort();
        if (i > 0 && strcmp(ix.refs[i - 1].name, ix.refs[i].name) >= 0) abort();
    }
    for (size_t k = 0; k < ix.n_shards; k++)
        if (strchr(ix.shards[k], '/') || !strcmp(ix.shards[k], "..") || !ix.shards[k][0]) abort();
    ck_st_index_free(&ix);
    return 0;
}
