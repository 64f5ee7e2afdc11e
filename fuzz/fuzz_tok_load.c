/* fuzz_tok_load.c — libFuzzer target: tokenizer.json loading from arbitrary bytes (written to a private
 * temporary directory, since the loader reads a directory); it must fail cleanly or load a tokenizer
 * that then encodes and decodes a fixed string without crashing. */
#include "tok/tok.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "/tmp/ck_fuzz_tok_XXXXXX");
    if (!mkdtemp(dir)) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(data, 1, size, f);
    fclose(f);
    ck_tok *t;
    if (ck_tok_load(dir, &t, err, sizeof err) != 0) return 0;
    int32_t *ids = NULL;
    size_t n = 0;
    if (ck_tok_encode(t, "Hello, world! 123", 17, 1, &ids, &n, err, sizeof err) == 0) {
        char *out = NULL;
        size_t len;
        if (ck_tok_decode(t, ids, n, 0, &out, &len, err, sizeof err) == 0) free(out);
        free(ids);
    }
    ck_tok_free(t);
    return 0;
}
