/* test_qmatmul.c — the whole-matmul kernels of prefill (Q8_0 and Q4_0: AVX512-VNNI, quant_gemm_vnni.c;
 * Q4_K, Q5_K and Q6_K: AVX512-VNNI, quant_gemm_vnni_k.c), on a CPU that has it (else it says
 * so): equal bit for bit to the reference dot product (tensor/quant.c) plus bias, on quantized random
 * floats and on random raw blocks (every scale, min and level pattern), for input lengths that fill whole
 * and partial groups of blocks,
 * weight row counts around the register tiles and the thread split, T = 1..40 tokens, one and two
 * threads, with and without bias; then, through ck_cpu_matmul_quant (which takes the kernel from
 * CK_QMATMUL_MIN_T rows on), every token's outputs are the bits it gets alone. */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "tensor/quant.h"
#include "testutil.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rng = 77;
static uint32_t next_u32(void) {
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
    return rng;
}
static float frand(void) { return (float)(next_u32() >> 8) / 8388608.0f - 1.0f; }

/* Random weight rows of type dt: every third row a thousand times smaller; with raw, every other row
 * random bytes with finite f16 scales. */
static uint8_t *weights(ck_dtype dt, size_t rows, size_t n, size_t *rb, int raw) {
    const ck_dtype_traits *tr = ck_dtype_traits_of(dt);
    ck_dtype_row_bytes(dt, n, rb);
    float *wf = malloc(n * sizeof *wf);
    uint8_t *w = malloc(rows * *rb);
    for (size_t j = 0; j < rows; j++) {
        uint8_t *row = w + j * *rb;
        if (raw && j % 2) {
            for (size_t i = 0; i < *rb; i++) row[i] = (uint8_t)next_u32();
            for (size_t b = 0; b < n / tr->block; b++) /* d (and dmin): the first fields, Q6_K's d the last */
                for (int f = 0; f < (dt == CK_Q4_K || dt == CK_Q5_K ? 2 : 1); f++) {
                    uint16_t h = ck_f32_to_f16(frand() * 0.01f);
                    memcpy(row + b * tr->block_bytes + (dt == CK_Q6_K ? offsetof(ck_block_q6_k, d) : 2 * (size_t)f), &h, 2);
                }
            continue;
        }
        for (size_t i = 0; i < n; i++) wf[i] = frand() * (j % 3 ? 1.0f : 1e-3f);
        tr->from_f32(row, wf, n);
    }
    free(wf);
    return w;
}

static void check(const char *name, ck_qmatmul_fn fn, ck_dtype dt, size_t n, size_t rows, size_t T, int threads) {
    const ck_dtype_traits *tr = ck_dtype_traits_of(dt);
    size_t rb = 0, xb = tr->act_row_bytes(n);
    uint8_t *w = weights(dt, rows, n, &rb, (int)(T % 2)), *xq = malloc(xb);
    float *x = malloc(T * n * sizeof *x), *bias = malloc(rows * sizeof *bias);
    for (size_t i = 0; i < T * n; i++) x[i] = frand() * ((i / 32) % 5 ? 1.0f : 40.0f);
    for (size_t i = 0; i < rows; i++) bias[i] = frand();
    const float *b = (rows + T) % 2 ? bias : NULL;
    ck_tensor W = {.dtype = dt, .ndim = 2, .shape = {rows, n}, .data = w};
    float *y = malloc(T * rows * sizeof *y), *want = malloc(T * rows * sizeof *want);
    CK_EXPECT(fn(y, x, &W, b, T, threads) == 0, "%s %s n=%zu rows=%zu T=%zu failed", name, tr->name, n, rows, T);
    for (size_t t = 0; t < T; t++) {
        tr->quantize_act(xq, x + t * n, n);
        for (size_t j = 0; j < rows; j++) want[t * rows + j] = tr->qdot(w + j * rb, xq, n) + (b ? b[j] : 0.0f);
    }
    int bad = 0;
    for (size_t i = 0; i < T * rows && !bad; i++) {
        bad = memcmp(&y[i], &want[i], sizeof *y) != 0;
        CK_EXPECT(!bad, "%s %s n=%zu rows=%zu T=%zu threads=%d (%zu, %zu): %.9g vs reference %.9g", name, tr->name, n,
                  rows, T, threads, i / rows, i % rows, y[i], want[i]);
    }
    free(x), free(bias), free(w), free(xq), free(y), free(want);
}

/* Input lengths in blocks of the type: whole and partial groups (16 blocks of 32; two super-blocks). */
static void check_kernel(const char *name, ck_qmatmul_fn fn, ck_dtype dt) {
    size_t blocks_q8[] = {1, 2, 3, 9, 16, 17, 32}, blocks_k[] = {1, 2, 3, 4, 5, 12};
    int b32 = dt == CK_Q8_0 || dt == CK_Q4_0;
    const size_t *blocks = b32 ? blocks_q8 : blocks_k;
    size_t nl = b32 ? sizeof blocks_q8 / sizeof *blocks_q8 : sizeof blocks_k / sizeof *blocks_k;
    size_t rowss[] = {1, 3, 4, 5, 15, 16, 17, 31, 32, 33, 48, 50};
    size_t Ts[] = {1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 40};
    for (size_t li = 0; li < nl; li++)
        for (size_t ri = 0; ri < sizeof rowss / sizeof rowss[0]; ri++)
            for (size_t ti = (li + ri) % 2; ti < sizeof Ts / sizeof Ts[0]; ti += 2)
                check(name, fn, dt, blocks[li] * ck_dtype_traits_of(dt)->block, rowss[ri], Ts[ti], 1 + (int)(ti % 2));
}

int main(void) {
    int any = 0;
#if defined(__x86_64__)
    if (ck_cpu_has_vnni()) {
        check_kernel("vnni", ck_qmatmul_q32_vnni, CK_Q8_0);
        check_kernel("vnni", ck_qmatmul_q32_vnni, CK_Q4_0);
        check_kernel("vnni", ck_qmatmul_k_vnni, CK_Q4_K);
        check_kernel("vnni", ck_qmatmul_k_vnni, CK_Q5_K);
        check_kernel("vnni", ck_qmatmul_q6_k_vnni, CK_Q6_K);
        any = 1;
    }
    else printf("test_qmatmul: no AVX512-VNNI on this CPU: its kernel is not checked\n");
#endif
    /* through ck_cpu_matmul_quant: the picked kernel set's whole-matmul kernel from CK_QMATMUL_MIN_T rows,
     * the same bits as token by token */
    const ck_cpu_kernels *k = ck_cpu_kernels_get();
    const ck_dtype types[] = {CK_Q8_0, CK_Q4_0, CK_Q4_K, CK_Q5_K, CK_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        ck_dtype dt = types[i];
        if (!k->qmatmul[dt]) {
            printf("test_qmatmul: no whole-matmul %s kernel in the %s set\n", ck_dtype_name(dt), k->name);
            continue;
        }
        size_t n = dt == CK_Q8_0 || dt == CK_Q4_0 ? 544 : 768, rows = 40, T = 24, rb = 0;
        uint8_t *w = weights(dt, rows, n, &rb, 1);
        float *x = malloc(T * n * sizeof *x), *y = malloc(T * rows * 4), *y1 = malloc(rows * 4);
        for (size_t j = 0; j < T * n; j++) x[j] = frand();
        ck_tensor W = {.dtype = dt, .ndim = 2, .shape = {rows, n}, .data = w};
        char err[256];
        CK_EXPECT(ck_cpu_matmul_quant(y, x, &W, NULL, T, k, 2, err, sizeof err) == 0, "%s", err);
        for (size_t t = 0; t < T; t++) {
            CK_EXPECT(ck_cpu_matmul_quant(y1, x + t * n, &W, NULL, 1, k, 2, err, sizeof err) == 0, "%s", err);
            CK_EXPECT(memcmp(y1, y + t * rows, rows * 4) == 0, "%s matmul (%s): token %zu alone differs from T=%zu",
                      ck_dtype_name(dt), k->name, t, T);
        }
        free(x), free(y), free(y1), free(w);
    }
    (void)any;
    { /* a fused call whose first weights have a whole-matmul kernel and the last has none (Q4_K q, k with
       * a Q6_K v, in a copy of the kernel set without a Q6_K one): each output equals its weight alone */
        ck_cpu_kernels mixed = *k;
        mixed.qmatmul[CK_Q6_K] = NULL;
        ck_dtype dts[3] = {CK_Q4_K, CK_Q4_K, CK_Q6_K};
        size_t n = 512, rows = 20, T = 12, rb = 0;
        uint8_t *w[3];
        float *y[3], *y1 = malloc(rows * 4), *x = malloc(T * n * sizeof *x);
        ck_tensor W[3];
        const ck_tensor *Wp[3];
        const float *bias[3] = {NULL, NULL, NULL};
        for (int i = 0; i < 3; i++) {
            w[i] = weights(dts[i], rows, n, &rb, 0), y[i] = malloc(T * rows * 4);
            W[i] = (ck_tensor){.dtype = dts[i], .ndim = 2, .shape = {rows, n}, .data = w[i]}, Wp[i] = &W[i];
        }
        for (size_t j = 0; j < T * n; j++) x[j] = frand();
        char err[256];
        CK_EXPECT(ck_cpu_matmul_quant_n(3, y, x, Wp, bias, T, &mixed, 2, err, sizeof err) == 0, "%s", err);
        for (int i = 0; i < 3; i++) {
            for (size_t t = 0; t < T; t++) {
                CK_EXPECT(ck_cpu_matmul_quant(y1, x + t * n, &W[i], NULL, 1, k, 2, err, sizeof err) == 0, "%s", err);
                CK_EXPECT(memcmp(y1, y[i] + t * rows, rows * 4) == 0, "fused weight %d (%s): token %zu alone differs", i,
                          ck_dtype_name(dts[i]), t);
            }
            free(w[i]), free(y[i]);
        }
        free(y1), free(x);
    }
    { /* decode and small batches of a fused call over weights of different types and row counts (Q4_K_M's
       * q, k, v), its row groups split over 2, 3, 5 and 8 threads by their bytes (from 4 threads on in
       * pieces dealt from a counter, at 8 more pieces than row groups): every output is written, and equals
       * its weight alone */
        ck_dtype dts[3] = {CK_Q4_K, CK_Q6_K, CK_Q5_K};
        size_t n = 1024, rows[3] = {130, 97, 150}, rb = 0;
        uint8_t *w[3];
        float *y[3], *y1 = malloc(3 * 150 * 4), *x = malloc(3 * n * sizeof *x);
        ck_tensor W[3];
        const ck_tensor *Wp[3];
        const float *bias[3] = {NULL, NULL, NULL};
        for (int i = 0; i < 3; i++) {
            w[i] = weights(dts[i], rows[i], n, &rb, 0), y[i] = malloc(3 * rows[i] * 4);
            W[i] = (ck_tensor){.dtype = dts[i], .ndim = 2, .shape = {rows[i], n}, .data = w[i]}, Wp[i] = &W[i];
        }
        for (size_t j = 0; j < 3 * n; j++) x[j] = frand();
        char err[256];
        const int threads[] = {2, 3, 5, 8};
        for (size_t T = 1; T <= 3; T += 2)
            for (int th = 0; th < 4; th++) {
                for (int i = 0; i < 3; i++) memset(y[i], 0xff, T * rows[i] * 4); /* NaNs where nothing is written */
                CK_EXPECT(ck_cpu_matmul_quant_n(3, y, x, Wp, bias, T, k, threads[th], err, sizeof err) == 0, "%s", err);
                for (int i = 0; i < 3; i++) {
                    CK_EXPECT(ck_cpu_matmul_quant(y1, x, &W[i], NULL, T, k, 1, err, sizeof err) == 0, "%s", err);
                    CK_EXPECT(memcmp(y1, y[i], T * rows[i] * 4) == 0, "fused weight %d (%s), T=%zu, %d threads: differs "
                              "from the weight alone", i, ck_dtype_name(dts[i]), T, threads[th]);
                }
            }
        for (int i = 0; i < 3; i++) free(w[i]), free(y[i]);
        free(y1), free(x);
    }
    return ck_test_done("test_qmatmul");
}
