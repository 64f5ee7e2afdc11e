/* grow.c — see grow.h. */
#include "base/grow.h"

#include <stdint.h>
#include <stdlib.h>

void *ck_grow(void *p, size_t *cap, size_t need, size_t elem, size_t first) {
    if (need <= *cap && p) return p;
    size_t c = *cap > first ? *cap : (first ? first : 1);
    while (c < need) {
        if (c > SIZE_MAX / 2) return NULL;
        c *= 2;
    }
    if (elem && c > SIZE_MAX / elem) return NULL;
    void *np = realloc(p, c * elem);
    if (!np) return NULL;
    *cap = c;
    return np;
}
