/* grow.h — growth of heap arrays by doubling: the one place that checks the size arithmetic of
 * "make room for n more elements". */
#ifndef CK_BASE_GROW_H
#define CK_BASE_GROW_H

#include <stddef.h>

/* Returns p reallocated to hold at least `need` elements of `elem` bytes (capacity doubled from
 * max(*cap, first) until it fits; *cap updated), or p itself when it already fits. Returns NULL, with p
 * and *cap untouched, when the size overflows or the allocation fails. */
void *ck_grow(void *p, size_t *cap, size_t need, size_t elem, size_t first);

#endif
