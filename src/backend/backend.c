/* backend.c — backend instances by kind and the sticky error every backend shares (see backend.h). */
#include "backend/backend.h"
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ck_backend_create(const char *kind, int device, ck_backend **out, char *err, size_t errlen) {
    *out = NULL;
    if (!strcmp(kind, "cpu")) {
        (void)device;
        return ck_backend_cpu_create(out, err, errlen);
    }
    return ck_err(err, errlen, "unknown backend '%s' (this build has: cpu)", kind);
}

void ck_backend_destroy(ck_backend *b) {
    if (b) b->destroy(b);
}

void ck_backend_fail(ck_backend *b, const char *fmt, ...) {
    if (b->failed) return;
    b->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->why, sizeof b->why, fmt, ap);
    va_end(ap);
}

void ck_matmul_n(ck_backend *b, size_t n, float *const *y, const float *x, const ck_tensor *const *W,
                 const float *const *bias, size_t T) {
    if (b->matmul_n && n <= CK_MATMUL_MAX) {
        b->matmul_n(b, n, y, x, W, bias, T);
        return;
    }
    for (size_t i = 0; i < n; i++) b->matmul(b, y[i], x, W[i], bias ? bias[i] : NULL, T);
}
