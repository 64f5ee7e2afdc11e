/* err.h — the error convention: functions return 0 on success or -1 on failure, and write a human
 * reason into a caller-owned buffer (err, errlen). ck_err() formats into it; it never aborts and
 * accepts a NULL/0 buffer. CK_CHECK_MUL guards products of sizes read from files or the network. */
#ifndef CK_BASE_ERR_H
#define CK_BASE_ERR_H

#include <stddef.h>
#include <stdint.h>

/* Writes a printf-style message into err (truncated to errlen) and returns -1. */
int ck_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* *out = a * b; returns 0, or -1 when the product overflows size_t. */
static inline int ck_mul_size(size_t a, size_t b, size_t *out) {
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}

#endif
