/* st2gguf.c — converts an HF checkpoint directory to one GGUF file (see src/model/gguf_convert.h):
 *     st2gguf HF_DIR OUT.gguf [F32|F16|BF16|Q8_0|Q4_0|Q4_K|Q5_K|Q6_K]     (default Q8_0)
 * A matrix whose rows the type's blocks do not divide is written as Q8_0 (else F16), as llama.cpp's
 * quantizer falls back; the tool says how many did. */
#include "format/gguf.h"
#include "model/gguf_convert.h"
#include "tensor/dtype.h"

#include <stdio.h>

/* Prints how many matrices of the written file are not of type t because their rows did not fit its blocks
 * (others keep a float type by design: Qwen3.5's conv1d). */
static void report_fallbacks(const char *path, ck_dtype t) {
    ck_gguf_file f;
    char err[512];
    if (ck_gguf_open(path, &f, err, sizeof err) != 0) return;
    size_t n = 0, other = 0;
    uint32_t want = ck_gguf_ggml_type(t), seen = want;
    for (size_t i = 0; i < f.g.n_tensors; i++) {
        const ck_gguf_tensor *x = &f.g.tensors[i];
        if (x->n_dims < 2) continue; /* vectors stay F32 */
        n++;
        if (x->ggml_type != want && x->ne[0] % (uint64_t)ck_dtype_traits_of(t)->block) other++, seen = x->ggml_type;
    }
    if (other)
        fprintf(stderr, "st2gguf: %zu of %zu matrices written as %s (their rows are not a multiple of %s's block)\n",
                other, n, ck_gguf_type_name(seen), ck_gguf_type_name(want));
    ck_gguf_close(&f);
}

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
    report_fallbacks(argv[2], (ck_dtype)t);
    return 0;
}
