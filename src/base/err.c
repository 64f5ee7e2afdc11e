/* err.c — formatting of error reasons into caller-owned buffers (see err.h). */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>

int ck_err(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}
