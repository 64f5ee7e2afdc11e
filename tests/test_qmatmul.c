/* test_qmatmul.c — the whole-matmul Q8_0 kernels of prefill (AVX512-VNNI, quant_gemm_vnni.c; AMX-INT8,
 * quant_amx.c), each on a CPU that has it (else it says so): equal bit for bit to the reference dot
 * product (tensor/quant.c) plus bias, for input lengths that fill whole and partial groups of blocks,
 * weight row counts around the register tiles and the thread split, T = 1..40 tokens, one and two
 * threads, with and without bias; then, through ck_cpu_matmul_quant (which takes the kernel from
 * CK_QMATMUL_MIN_T rows on), every token's outputs are the bits it gets alone. */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "tensor/quant.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static uint32_t rng = 77;
static uint32_t next_u32(void) {
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
    return rng;
}
static float frand(void) { return (float)(next_u32() >> 8) / 8388608.0f - 1.0f; }

/* Random Q8_0 weight rows (every third row a thousand times smaller). */
static uint8_t *weights(size_t rows, size_t n, size_t *rb) {
    ck_dtype_row_bytes(CK_Q8_0, n, rb);
    float *wf = malloc(n * sizeof *wf);
    uint8_t *w = malloc(rows * *rb);
    for (size_t j = 0; j < rows; j++) {
        for (size_t i = 0; i < n; i++) wf[i] = frand() * (j % 3 ? 1.0f : 1e-3f);
        ck_quantize_q8_0(w + j * *rb, wf, n);
    }
    free(wf);
    return w;
}

static void check(const char *name, ck_qmatmul_fn fn, size_t n, size_t rows, size_t T, int threads) {
    const ck_dtype_traits *tr = ck_dtype_traits_of(CK_Q8_0);
    size_t rb = 0, xb = tr->act_row_bytes(n);
    uint8_t *w = weights(rows, n, &rb), *xq = malloc(xb);
    float *x = malloc(T * n * sizeof *x), *bias = malloc(rows * sizeof *bias);
    for (size_t i = 0; i < T * n; i++) x[i] = frand() * ((i / 32) % 5 ? 1.0f : 40.0f);
    for (size_t i = 0; i < rows; i++) bias[i] = frand();
    const float *b = (rows + T) % 2 ? bias : NULL;
    ck_tensor W = {.dtype = CK_Q8_0, .ndim = 2, .shape = {rows, n}, .data = w};
    float *y = malloc(T * rows * sizeof *y), *want = malloc(T * rows * sizeof *want);
    CK_EXPECT(fn(y, x, &W, b, T, threads) == 0, "%s n=%zu rows=%zu T=%zu failed", name, n, rows, T);
    for (size_t t = 0; t < T; t++) {
        tr->quantize_act(xq, x + t * n, n);
        for (size_t j = 0; j < rows; j++) want[t * rows + j] = ck_qdot_q8_0_ref(w + j * rb, xq, n) + (b ? b[j] : 0.0f);
    }
    int bad = 0;
    for (size_t i = 0; i < T * rows && !bad; i++) {
        bad = memcmp(&y[i], &want[i], sizeof *y) != 0;
        CK_EXPECT(!bad, "%s n=%zu rows=%zu T=%zu threads=%d (%zu, %zu): %.9g vs reference %.9g", name, n, rows, T,
                  threads, i / rows, i % rows, y[i], want[i]);
    }
    free(x), free(bias), free(w), free(xq), free(y), free(want);
}

static void check_kernel(const char *name, ck_qmatmul_fn fn) {
    size_t lens[] = {32, 64, 96, 288, 512, 544, 1024}, rowss[] = {1, 3, 4, 5, 15, 16, 17, 31, 32, 33, 48, 50};
    size_t Ts[] = {1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 40};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (size_t ri = 0; ri < sizeof rowss / sizeof rowss[0]; ri++)
            for (size_t ti = (li + ri) % 2; ti < sizeof Ts / sizeof Ts[0]; ti += 2)
                check(name, fn, lens[li], rowss[ri], Ts[ti], 1 + (int)(ti % 2));
}

int main(void) {
    int any = 0;
#if defined(__x86_64__)
    if (ck_cpu_has_vnni()) check_kernel("vnni", ck_qmatmul_q8_0_vnni), any = 1;
    else printf("test_qmatmul: no AVX512-VNNI on this CPU: its kernel is not checked\n");
    if (ck_cpu_has_amx()) check_kernel("amx", ck_qmatmul_q8_0_amx), any = 1;
    else printf("test_qmatmul: no AMX on this CPU (or OS): its kernel is not checked\n");
#endif
    /* through ck_cpu_matmul_quant: the picked kernel set's whole-matmul kernel from CK_QMATMUL_MIN_T rows,
     * the same bits as token by token */
    const ck_cpu_kernels *k = ck_cpu_kernels_get();
    if (k->qmatmul[CK_Q8_0]) {
        size_t n = 544, rows = 40, T = 24, rb = 0;
        uint8_t *w = weights(rows, n, &rb);
        float *x = malloc(T * n * sizeof *x), *y = malloc(T * rows * 4), *y1 = malloc(rows * 4);
        for (size_t i = 0; i < T * n; i++) x[i] = frand();
        ck_tensor W = {.dtype = CK_Q8_0, .ndim = 2, .shape = {rows, n}, .data = w};
        char err[256];
        CK_EXPECT(ck_cpu_matmul_quant(y, x, &W, NULL, T, k, 2, err, sizeof err) == 0, "%s", err);
        for (size_t t = 0; t < T; t++) {
            CK_EXPECT(ck_cpu_matmul_quant(y1, x + t * n, &W, NULL, 1, k, 2, err, sizeof err) == 0, "%s", err);
            CK_EXPECT(memcmp(y1, y + t * rows, rows * 4) == 0, "q8_0 matmul (%s): token %zu alone differs from T=%zu",
                      k->name, t, T);
        }
        free(x), free(y), free(y1), free(w);
    } else if (!any) {
        printf("test_qmatmul: no whole-matmul Q8_0 kernel on this CPU: nothing checked\n");
    }
    return ck_test_done("test_qmatmul");
}
