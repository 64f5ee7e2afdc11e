/* dtype.c — element sizes, names and bulk conversion to f32 (see dtype.h). */
#include "tensor/dtype.h"

size_t ck_dtype_size(ck_dtype t) {
    switch (t) {
    case CK_F32: return 4;
    case CK_F16: return 2;
    case CK_BF16: return 2;
    default: return 0;
    }
}

const char *ck_dtype_name(ck_dtype t) {
    switch (t) {
    case CK_F32: return "F32";
    case CK_F16: return "F16";
    case CK_BF16: return "BF16";
    default: return "?";
    }
}

void ck_to_f32(float *dst, const void *src, ck_dtype t, size_t n) {
    switch (t) {
    case CK_F32: memcpy(dst, src, n * sizeof(float)); break;
    case CK_F16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = ck_f16_to_f32(s[i]);
        break;
    }
    case CK_BF16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = ck_bf16_to_f32(s[i]);
        break;
    }
    default: break;
    }
}
