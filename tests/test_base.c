/* test_base.c — base helpers: array growth (doubling, first size, overflow refused without losing the
 * array) and byte formatting. */
#include "base/file.h"
#include "base/grow.h"
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    size_t cap = 0;
    int *a = ck_grow(NULL, &cap, 1, sizeof *a, 8);
    CK_EXPECT(a && cap == 8, "first growth gives the first size (cap %zu)", cap);
    int *b = ck_grow(a, &cap, 8, sizeof *a, 8);
    CK_EXPECT(b == a && cap == 8, "no growth when it fits");
    b = ck_grow(a, &cap, 9, sizeof *a, 8);
    CK_EXPECT(b && cap == 16, "doubles (cap %zu)", cap);
    a = b;
    b = ck_grow(a, &cap, 100, sizeof *a, 8);
    CK_EXPECT(b && cap == 128, "doubles until it fits (cap %zu)", cap);
    a = b;
    size_t before = cap;
    CK_EXPECT(ck_grow(a, &cap, SIZE_MAX / 2 + 2, sizeof *a, 8) == NULL && cap == before,
              "overflowing growth refused, capacity kept");
    free(a);
    char s[32];
    ck_format_bytes(512, s, sizeof s);
    CK_EXPECT(!strcmp(s, "512 B"), "%s", s);
    ck_format_bytes(1536, s, sizeof s);
    CK_EXPECT(!strcmp(s, "1.5 KiB"), "%s", s);
    ck_format_bytes(5ull << 30, s, sizeof s);
    CK_EXPECT(!strcmp(s, "5.0 GiB"), "%s", s);
    return ck_test_done("test_base");
}
