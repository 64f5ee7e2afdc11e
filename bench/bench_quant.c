/* bench_quant.c — times the quantized matmul (cpu/quant_ref.c) of every weight type with every kernel
 * set this CPU runs: a [N_OUT, N_IN] weight (default 3072 x 1024, a Qwen3-0.6B MLP projection; override
 * with `bench_quant N_OUT N_IN THREADS`) times T = 1 activation row (decode: weight bytes read per second)
 * and T = 64 rows (prefill: rows per second). Beside them, the bf16 matmul of the CPU backend.
 * Not a test: built by CMake, never run by CTest. */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint32_t rng = 1;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / 8388608.0f - 1.0f;
}

/* Seconds per call of f over at least 0.3 s. */
#define TIME(expr)                                                           \
    ({                                                                       \
        expr;                                                                \
        int n_ = 0;                                                          \
        double t0_ = now_s(), t_;                                            \
        do {                                                                 \
            expr;                                                            \
            n_++;                                                            \
        } while ((t_ = now_s() - t0_) < 0.3);                                \
        t_ / n_;                                                             \
    })

int main(int argc, char **argv) {
    size_t n_out = argc > 1 ? (size_t)atol(argv[1]) : 3072, n_in = argc > 2 ? (size_t)atol(argv[2]) : 1024, T = 64;
    int threads = argc > 3 ? atoi(argv[3]) : ck_cpu_threads();
    ck_cpu_threads_set(threads, NULL, 0);
    float *x = malloc(T * n_in * sizeof *x), *wf = malloc(n_out * n_in * sizeof *wf), *y = malloc(T * n_out * sizeof *y);
    for (size_t i = 0; i < T * n_in; i++) x[i] = frand();
    for (size_t i = 0; i < n_out * n_in; i++) wf[i] = frand() * 0.05f;
    uint8_t *w = malloc(n_out * n_in * 4);
    printf("matmul [%zu x %zu], %d threads\n", n_out, n_in, threads);
    const ck_dtype types[] = {CK_BF16, CK_Q8_0, CK_Q4_0, CK_Q4_K, CK_Q5_K, CK_Q6_K};
    const ck_cpu_kernels *const *sets = ck_cpu_kernels_all();
    ck_backend *be;
    char err[256];
    if (ck_backend_create("cpu", 0, &be, err, sizeof err) != 0) return 1;
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const ck_dtype_traits *tr = ck_dtype_traits_of(types[k]);
        size_t rb;
        ck_dtype_row_bytes(types[k], n_in, &rb);
        for (size_t o = 0; o < n_out; o++) tr->from_f32(w + o * rb, wf + o * n_in, n_in);
        ck_tensor W = {.dtype = types[k], .ndim = 2, .shape = {n_out, n_in}, .data = w};
        double bytes = (double)rb * (double)n_out;
        if (!tr->act) {
            double t1 = TIME(be->matmul(be, y, x, &W, NULL, 1)), t64 = TIME(be->matmul(be, y, x, &W, NULL, T));
            printf("%-5s %-10s decode %6.1f GB/s (%7.1f us)  prefill %8.0f rows/s\n", tr->name, "backend",
                   bytes / t1 / 1e9, t1 * 1e6, (double)T / t64);
            continue;
        }
        for (size_t s = 0; sets[s]; s++) {
            double t1 = TIME(ck_cpu_matmul_quant(y, x, &W, NULL, 1, sets[s], threads, err, sizeof err));
            double t64 = TIME(ck_cpu_matmul_quant(y, x, &W, NULL, T, sets[s], threads, err, sizeof err));
            printf("%-5s %-10s decode %6.1f GB/s (%7.1f us)  prefill %8.0f rows/s\n", tr->name, sets[s]->name,
                   bytes / t1 / 1e9, t1 * 1e6, (double)T / t64);
        }
    }
    ck_backend_destroy(be);
    free(x), free(wf), free(y), free(w);
    return 0;
}
