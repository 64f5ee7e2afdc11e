/* bench_gemm.c — times the CPU matmul kernels (kernels.h) on one weight shape: for every kernel set the
 * CPU runs, exact and fast, T token rows x [n_out, n_in] bf16 weights through ck_cpu_gemm_run, best of
 * REPS runs; prints GFLOP/s (2 T n_out n_in per run) and the weight bytes per second.
 * usage: bench_gemm [T [n_out [n_in [threads [reps]]]]]  (default 128 3072 1024, all threads, 5)
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

int main(int argc, char **argv) {
    size_t T = argc > 1 ? strtoul(argv[1], NULL, 10) : 128, n_out = argc > 2 ? strtoul(argv[2], NULL, 10) : 3072;
    size_t n_in = argc > 3 ? strtoul(argv[3], NULL, 10) : 1024;
    int nt = argc > 4 ? atoi(argv[4]) : ck_cpu_threads(), reps = argc > 5 ? atoi(argv[5]) : 5;
    if (!T || !n_out || !n_in || nt < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_gemm [T [n_out [n_in [threads [reps]]]]]\n");
        return 2;
    }
    uint16_t *w = malloc(n_out * n_in * 2);
    float *x = malloc(T * n_in * sizeof *x), *y = malloc(T * n_out * sizeof *y);
    if (!w || !x || !y) return 1;
    uint32_t r = 1;
    for (size_t i = 0; i < n_out * n_in; i++) r = r * 1664525u + 1013904223u, w[i] = (uint16_t)(0x3c00 | (r >> 25));
    for (size_t i = 0; i < T * n_in; i++) r = r * 1664525u + 1013904223u, x[i] = (float)(r >> 8) / 16777216.0f - 0.5f;
    ck_tensor W = {.dtype = CK_BF16, .ndim = 2, .shape = {n_out, n_in}, .data = w};
    printf("T=%zu n_out=%zu n_in=%zu bf16 weights, %d threads, best of %d\n", T, n_out, n_in, nt, reps);
    for (const ck_cpu_kernels *const *k = ck_cpu_kernels_all(); *k; k++)
        for (int exact = 1; exact >= 0; exact--) {
            const ck_mm_kernel *mk = ck_cpu_mm_kernel(*k, CK_BF16, exact);
            if (!exact && mk == ck_cpu_mm_kernel(*k, CK_BF16, 1)) continue;
            if (!strcmp((*k)->name, "ref") && T * n_out * n_in > (1u << 28)) continue;
            double best = 1e30;
            for (int i = 0; i <= reps; i++) { /* the first run warms up */
                double t0 = now_s();
                ck_cpu_gemm_run(mk, y, x, &W, NULL, T, nt);
                double dt = now_s() - t0;
                if (i && dt < best) best = dt;
            }
            printf("  %-11s %-5s %8.3f ms  %7.1f GFLOP/s  %6.1f GB/s of weights\n", (*k)->name,
                   exact ? "exact" : "fast", best * 1e3, 2.0 * (double)(T * n_out * n_in) / best * 1e-9,
                   (double)(n_out * n_in * 2) / best * 1e-9);
        }
    free(w), free(x), free(y);
    return 0;
}
