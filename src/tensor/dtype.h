/* dtype.h — element types of stored weights and their conversion to f32. Scalar code only: these run
 * once per element at load time or inside kernels that have their own fast paths. */
#ifndef CK_TENSOR_DTYPE_H
#define CK_TENSOR_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum ck_dtype { CK_F32 = 0, CK_F16, CK_BF16, CK_DTYPE_COUNT } ck_dtype;

/* Bytes per element. */
size_t ck_dtype_size(ck_dtype t);
const char *ck_dtype_name(ck_dtype t);

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

/* dst[i] = (float)src[i] for n elements of type t. */
void ck_to_f32(float *dst, const void *src, ck_dtype t, size_t n);

#endif
