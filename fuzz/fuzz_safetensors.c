/* fuzz_safetensors.c — libFuzzer target: ck_st_parse on arbitrary bytes must return 0 or -1, never
 * crash, and on success every tensor's bytes must lie inside the buffer. */
#include "format/safetensors.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ck_st st;
    char err[256];
    if (ck_st_parse(data, size, &st, err, sizeof err) == 0) {
        for (size_t i = 0; i < st.n; i++)
            if (st.entries[i].data < data || st.entries[i].data + st.entries[i].nbytes > data + size) abort();
        ck_st_free(&st);
    }
    return 0;
}
