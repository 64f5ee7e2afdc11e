/* jsontext.c — see jsontext.h. */
#include "base/jsontext.h"

#include <string.h>

int ck_json_text_has_nul(const char *s, size_t len) {
    if (memchr(s, 0, len)) return 1;
    for (size_t i = 0; i + 1 < len; i++)
        if (s[i] == '\\') { /* escapes stand only inside strings */
            if (s[i + 1] == 'u' && i + 6 <= len && !memcmp(s + i + 2, "0000", 4)) return 1;
            i++; /* the escaped character */
        }
    return 0;
}
