/* dtype.c — the traits table of every weight type (see dtype.h). Element loads go through memcpy: a
 * safetensors header may place a tensor at any byte offset, and the compiler turns these into plain
 * loads where alignment allows. */
#include "tensor/dtype.h"

static inline uint16_t load16(const void *base, size_t i) {
    uint16_t h;
    memcpy(&h, (const uint8_t *)base + 2 * i, sizeof h);
    return h;
}

static void f32_to_f32(float *dst, const void *src, size_t n) { memcpy(dst, src, n * sizeof(float)); }

static void f16_to_f32(float *dst, const void *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = ck_f16_to_f32(load16(src, i));
}

static void bf16_to_f32(float *dst, const void *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = ck_bf16_to_f32(load16(src, i));
}

static float f32_dot(const float *x, const void *w, size_t n) {
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float f;
        memcpy(&f, (const uint8_t *)w + 4 * i, sizeof f);
        acc += x[i] * f;
    }
    return acc;
}

static float f16_dot(const float *x, const void *w, size_t n) {
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++) acc += x[i] * ck_f16_to_f32(load16(w, i));
    return acc;
}

static float bf16_dot(const float *x, const void *w, size_t n) {
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++) acc += x[i] * ck_bf16_to_f32(load16(w, i));
    return acc;
}

static const ck_dtype_traits traits[CK_DTYPE_COUNT] = {
    [CK_F32] = {"F32", 1, 4, f32_to_f32, f32_dot},
    [CK_F16] = {"F16", 1, 2, f16_to_f32, f16_dot},
    [CK_BF16] = {"BF16", 1, 2, bf16_to_f32, bf16_dot},
};

const ck_dtype_traits *ck_dtype_traits_of(ck_dtype t) {
    return (unsigned)t < CK_DTYPE_COUNT && traits[t].name ? &traits[t] : NULL;
}

int ck_dtype_row_bytes(ck_dtype t, uint64_t n, size_t *out) {
    const ck_dtype_traits *tr = ck_dtype_traits_of(t);
    if (!tr || n % tr->block) return -1;
    uint64_t blocks = n / tr->block;
    if (blocks > SIZE_MAX / tr->block_bytes) return -1;
    *out = (size_t)blocks * tr->block_bytes;
    return 0;
}

const char *ck_dtype_name(ck_dtype t) {
    const ck_dtype_traits *tr = ck_dtype_traits_of(t);
    return tr ? tr->name : "?";
}

int ck_dtype_from_name(const char *name) {
    for (int t = 0; t < CK_DTYPE_COUNT; t++)
        if (traits[t].name && !strcmp(traits[t].name, name)) return t;
    return -1;
}
