/* tensor.h — a read-only view of a weight tensor: dtype, shape (outermost first, row-major) and a
 * pointer to its elements (in a mapped file on the CPU backend). Views never own their data. */
#ifndef CK_TENSOR_TENSOR_H
#define CK_TENSOR_TENSOR_H

#include "tensor/dtype.h"

#define CK_MAX_DIMS 4

typedef struct ck_tensor {
    ck_dtype dtype;
    int ndim;                  /* 0 means "absent" */
    uint64_t shape[CK_MAX_DIMS];
    const void *data;
    int exact;                 /* 1: products with this weight always take the backend's exact path (small
                                  weights whose outputs make discrete choices: MoE routers, recurrent gates) */
} ck_tensor;

static inline uint64_t ck_tensor_numel(const ck_tensor *t) {
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return t->ndim ? n : 0;
}

static inline int ck_tensor_present(const ck_tensor *t) { return t->ndim > 0; }

/* Bytes of t's elements, whole rows of its last dimension (ck_dtype_row_bytes); 0 when its dtype or
 * shape gives none. */
static inline size_t ck_tensor_bytes(const ck_tensor *t) {
    size_t rb;
    int last = t->ndim - 1;
    if (last < 0 || last >= CK_MAX_DIMS || ck_dtype_row_bytes(t->dtype, t->shape[last], &rb) != 0) return 0;
    return (size_t)(ck_tensor_numel(t) / t->shape[last]) * rb;
}

#endif
