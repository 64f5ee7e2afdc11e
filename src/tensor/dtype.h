/* dtype.h — element types of stored weights, described by one traits table per type: elements per block,
 * bytes per block, conversion to f32 and a reference dot product. Nothing else in the code knows a type's
 * layout; row sizes come from ck_dtype_row_bytes, which refuses unknown types and rows that are not whole
 * blocks instead of computing a wrong size. f32/f16/bf16 have blocks of one element; the block-quantized
 * types of GGUF (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K; layouts and numerics in quant.h) add their activation
 * quantizer and integer dot here. Scalar code only: fast kernels live in the backends. */
#ifndef CK_TENSOR_DTYPE_H
#define CK_TENSOR_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum ck_dtype { CK_F32 = 0, CK_F16, CK_BF16, CK_Q8_0, CK_Q4_0, CK_Q4_K, CK_Q5_K, CK_Q6_K, CK_DTYPE_COUNT } ck_dtype;

typedef struct ck_dtype_traits {
    const char *name;       /* as safetensors spells it: "F32", "F16", "BF16" */
    size_t block;           /* elements per block */
    size_t block_bytes;     /* bytes per block */
    /* dst[i] = value i of src for i < n; n is a multiple of block */
    void (*to_f32)(float *dst, const void *src, size_t n);
    /* sum_i x[i] * w[i] for w[n] of this type, f32 accumulation in index order; n a multiple of block */
    float (*dot)(const float *x, const void *w, size_t n);
    /* dst = n values of src in this type (round to nearest); n a multiple of block (used by converters) */
    void (*from_f32)(void *dst, const float *src, size_t n);
    /* Block-quantized types (quant.h), else 0 / NULL: the format activations are quantized to, its bytes
     * for a row of n elements, the activation quantizer and the reference integer dot product of a
     * weight row with a quantized activation row. */
    int act;                /* a ck_act_format */
    size_t (*act_row_bytes)(size_t n);
    void (*quantize_act)(void *dst, const float *x, size_t n);
    float (*qdot)(const void *w, const void *xq, size_t n);
} ck_dtype_traits;

/* The traits of t, or NULL for a value that is not a known type. */
const ck_dtype_traits *ck_dtype_traits_of(ck_dtype t);

/* Bytes of n elements of t in *out. Returns -1 for an unknown type, an n that is not a whole number of
 * blocks, or an overflowing size. */
int ck_dtype_row_bytes(ck_dtype t, uint64_t n, size_t *out);

/* 1 when t is block-quantized (weights multiply quantized activations). */
int ck_dtype_is_quant(ck_dtype t);

/* "F32", ... or "?" for an unknown type. */
const char *ck_dtype_name(ck_dtype t);

/* The type named `name` (safetensors / ggml spelling: "F32", "Q8_0", ...), or -1. */
int ck_dtype_from_name(const char *name);

static inline float ck_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float ck_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: renormalize */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            u = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#endif
