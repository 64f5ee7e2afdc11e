/* fuzz_tok.c — libFuzzer target: the Qwen3 tokenizer (CK_FUZZ_TOKENIZER names its directory) encodes
 * arbitrary bytes (invalid UTF-8 must be refused, not crash); valid text must decode back to itself
 * after NFC, checked here only for ASCII input where NFC is the identity. */
#include "tok/tok.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ck_tok *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char err[256];
    const char *dir = getenv("CK_FUZZ_TOKENIZER");
    if (!dir || ck_tok_load(dir, &tok, err, sizeof err) != 0) {
        fprintf(stderr, "set CK_FUZZ_TOKENIZER to a directory with tokenizer.json (%s)\n", dir ? err : "unset");
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int32_t *ids;
    size_t n;
    char err[256];
    if (ck_tok_encode(tok, (const char *)data, size, 0, &ids, &n, err, sizeof err) != 0) return 0;
    char *out;
    size_t len;
    if (ck_tok_decode(tok, ids, n, 0, &out, &len, err, sizeof err) != 0) abort();
    int ascii = 1;
    for (size_t i = 0; i < size; i++) ascii &= data[i] > 0 && data[i] < 0x80;
    if (ascii && (len != size || memcmp(out, data, size) != 0)) abort();
    free(out);
    free(ids);
    return 0;
}
