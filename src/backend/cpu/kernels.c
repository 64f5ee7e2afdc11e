/* kernels.c — picks the CPU kernel set at start-up (see kernels.h). */
#include "backend/cpu/kernels.h"

#include <stdlib.h>
#include <string.h>

static float dot_f32_ref(const float *x, const void *w, size_t n) { return ck_dot_ref(x, w, CK_F32, n); }
static float dot_f16_ref(const float *x, const void *w, size_t n) { return ck_dot_ref(x, w, CK_F16, n); }
static float dot_bf16_ref(const float *x, const void *w, size_t n) { return ck_dot_ref(x, w, CK_BF16, n); }

#define TILE_REF(name, dt)                                                                         \
    static void name(const float *x, size_t xs, const void *w, size_t ws, size_t n, float *out) {   \
        for (int j = 0; j < 2; j++)                                                                 \
            for (int r = 0; r < 4; r++)                                                             \
                out[j * 4 + r] = ck_dot_ref(x + r * xs, (const uint8_t *)w + j * ws * ck_dtype_size(dt), dt, n); \
    }
TILE_REF(tile_f32_ref, CK_F32)
TILE_REF(tile_f16_ref, CK_F16)
TILE_REF(tile_bf16_ref, CK_BF16)

static const ck_cpu_kernels ref_kernels = {
    "ref",
    {[CK_F32] = dot_f32_ref, [CK_F16] = dot_f16_ref, [CK_BF16] = dot_bf16_ref},
    {[CK_F32] = tile_f32_ref, [CK_F16] = tile_f16_ref, [CK_BF16] = tile_bf16_ref},
    2,
    ck_axpy_ref,
};
#if defined(__x86_64__)
static const ck_cpu_kernels avx2_kernels = {
    "avx2",
    {[CK_F32] = ck_dot_f32_avx2, [CK_F16] = ck_dot_f16_avx2, [CK_BF16] = ck_dot_bf16_avx2},
    {[CK_F32] = ck_tile_f32_avx2, [CK_F16] = ck_tile_f16_avx2, [CK_BF16] = ck_tile_bf16_avx2},
    2,
    ck_axpy_avx2,
};

static const ck_cpu_kernels avx512_kernels = {
    "avx512",
    {[CK_F32] = ck_dot_f32_avx512, [CK_F16] = ck_dot_f16_avx512, [CK_BF16] = ck_dot_bf16_avx512},
    {[CK_F32] = ck_tile_f32_avx512, [CK_F16] = ck_tile_f16_avx512, [CK_BF16] = ck_tile_bf16_avx512},
    4,
    ck_axpy_avx512,
};

#endif

const ck_cpu_kernels *ck_cpu_kernels_ref(void) { return &ref_kernels; }

const ck_cpu_kernels *const *ck_cpu_kernels_all(void) {
    static const ck_cpu_kernels *all[4];
    if (!all[0]) {
        size_t n = 0;
#if defined(__x86_64__)
        if (ck_cpu_has_avx512() && ck_cpu_has_avx2()) all[n++] = &avx512_kernels;
        if (ck_cpu_has_avx2()) all[n++] = &avx2_kernels;
#endif
        all[n] = &ref_kernels;
    }
    return all;
}

const ck_cpu_kernels *ck_cpu_kernels_get(void) {
    static const ck_cpu_kernels *picked;
    if (!picked) {
        const ck_cpu_kernels *const *all = ck_cpu_kernels_all();
        const char *want = getenv("CAKE_CPU_KERNELS");
        picked = all[0];
        for (size_t i = 0; want && all[i]; i++)
            if (!strcmp(all[i]->name, want)) picked = all[i];
    }
    return picked;
}
