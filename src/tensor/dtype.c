/* dtype.c — the traits table of every weight type (see dtype.h). Element loads go through memcpy: a
 * safetensors header may place a tensor at any byte offset, and the compiler turns these into plain
 * loads where alignment allows. */
#include "tensor/dtype.h"
#include "tensor/quant.h"

#include <stdlib.h>

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

static void f32_from_f32(void *dst, const float *src, size_t n) { memcpy(dst, src, n * sizeof(float)); }

static void f16_from_f32(void *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint16_t h = ck_f32_to_f16(src[i]);
        memcpy((uint8_t *)dst + 2 * i, &h, 2);
    }
}

static void bf16_from_f32(void *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        uint16_t h = (u & 0x7fffffff) > 0x7f800000 ? (uint16_t)((u >> 16) | 0x40) /* quiet NaN */
                                                    : (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
        memcpy((uint8_t *)dst + 2 * i, &h, 2);
    }
}

/* f32 dot of a quantized row: dequantized one block at a time, accumulated in index order. */
#define QUANT_F32_DOT(fn, deq, blk, bytes)                                  \
    static float fn(const float *x, const void *w, size_t n) {              \
        float tmp[blk], acc = 0.0f;                                         \
        for (size_t b = 0; b < n / (blk); b++) {                            \
            deq(tmp, (const uint8_t *)w + b * (bytes), blk);                \
            for (size_t i = 0; i < (blk); i++) acc += x[b * (blk) + i] * tmp[i]; \
        }                                                                   \
        return acc;                                                         \
    }
QUANT_F32_DOT(q8_0_dot, ck_dequant_q8_0, CK_QK, sizeof(ck_block_q8_0))
QUANT_F32_DOT(q4_0_dot, ck_dequant_q4_0, CK_QK, sizeof(ck_block_q4_0))
QUANT_F32_DOT(q4_k_dot, ck_dequant_q4_k, CK_QKK, sizeof(ck_block_q4_k))
QUANT_F32_DOT(q5_k_dot, ck_dequant_q5_k, CK_QKK, sizeof(ck_block_q5_k))
QUANT_F32_DOT(q6_k_dot, ck_dequant_q6_k, CK_QKK, sizeof(ck_block_q6_k))

static size_t q8_row_bytes(size_t n) { return CK_Q8_ROW_BYTES(n / CK_QK); }
static size_t q8k_row_bytes(size_t n) { return CK_Q8K_ROW_BYTES(n / CK_QKK); }

#define Q8_ACT CK_ACT_Q8, q8_row_bytes, ck_quantize_q8
#define Q8K_ACT CK_ACT_Q8K, q8k_row_bytes, ck_quantize_q8k

static const ck_dtype_traits traits[CK_DTYPE_COUNT] = {
    [CK_F32] = {"F32", 1, 4, f32_to_f32, f32_dot, f32_from_f32, 0, NULL, NULL, NULL},
    [CK_F16] = {"F16", 1, 2, f16_to_f32, f16_dot, f16_from_f32, 0, NULL, NULL, NULL},
    [CK_BF16] = {"BF16", 1, 2, bf16_to_f32, bf16_dot, bf16_from_f32, 0, NULL, NULL, NULL},
    [CK_Q8_0] = {"Q8_0", CK_QK, sizeof(ck_block_q8_0), ck_dequant_q8_0, q8_0_dot, ck_quantize_q8_0, Q8_ACT, ck_qdot_q8_0_ref},
    [CK_Q4_0] = {"Q4_0", CK_QK, sizeof(ck_block_q4_0), ck_dequant_q4_0, q4_0_dot, ck_quantize_q4_0, Q8_ACT, ck_qdot_q4_0_ref},
    [CK_Q4_K] = {"Q4_K", CK_QKK, sizeof(ck_block_q4_k), ck_dequant_q4_k, q4_k_dot, ck_quantize_q4_k, Q8K_ACT, ck_qdot_q4_k_ref},
    [CK_Q5_K] = {"Q5_K", CK_QKK, sizeof(ck_block_q5_k), ck_dequant_q5_k, q5_k_dot, ck_quantize_q5_k, Q8K_ACT, ck_qdot_q5_k_ref},
    [CK_Q6_K] = {"Q6_K", CK_QKK, sizeof(ck_block_q6_k), ck_dequant_q6_k, q6_k_dot, ck_quantize_q6_k, Q8K_ACT, ck_qdot_q6_k_ref},
};

_Static_assert(sizeof(ck_block_q8_0) == 34 && sizeof(ck_block_q4_0) == 18 && sizeof(ck_block_q4_k) == 144 &&
                   sizeof(ck_block_q5_k) == 176 && sizeof(ck_block_q6_k) == 210,
               "ggml block sizes");

int ck_dtype_is_quant(ck_dtype t) {
    const ck_dtype_traits *tr = ck_dtype_traits_of(t);
    return tr && tr->act != 0;
}

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
