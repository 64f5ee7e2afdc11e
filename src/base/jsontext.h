/* jsontext.h — checks on JSON text before it is parsed. */
#ifndef CK_BASE_JSONTEXT_H
#define CK_BASE_JSONTEXT_H

#include <stddef.h>

/* 1 when the JSON text s[0..len) holds U+0000, raw or as the escape \u0000: a parser that gives C strings
 * cuts such a string at the NUL, so a caller refuses it rather than act on part of a string. */
int ck_json_text_has_nul(const char *s, size_t len);

#endif
