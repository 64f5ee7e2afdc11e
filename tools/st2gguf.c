/* st2gguf.c — converts an HF checkpoint directory to one GGUF file (see src/model/gguf_convert.h):
 *     st2gguf HF_DIR OUT.gguf [F32|F16|BF16|Q8_0|Q4_0|Q4_K|Q5_K|Q6_K]     (default Q8_0) */
#include "model/gguf_convert.h"

#include <stdio.h>

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: st2gguf HF_DIR OUT.gguf [F32|F16|BF16|Q8_0|Q4_0|Q4_K|Q5_K|Q6_K]\n");
        return 2;
    }
    int t = ck_dtype_from_name(argc == 4 ? argv[3] : "Q8_0");
    if (t < 0) {
        fprintf(stderr, "st2gguf: unknown type %s\n", argv[3]);
        return 2;
    }
    char err[1024];
    if (ck_gguf_convert(argv[1], argv[2], (ck_dtype)t, err, sizeof err) != 0) {
        fprintf(stderr, "st2gguf: %s\n", err);
        return 1;
    }
    return 0;
}
