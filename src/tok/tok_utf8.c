/* tok_utf8.c — UTF-8 helpers for the tokenizer: strict classification of the next character (Unicode
 * Table 3-7 well-formed sequences; invalid input is split into maximal subparts exactly as Rust's
 * String::from_utf8_lossy does), lossy conversion, whitespace classes, and the GPT-2 byte-level
 * alphabet (each byte 0..255 stands for one printable code point). Pure functions, no state. */
#include "tok/tok_internal.h"

int ck_tok_utf8_next(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    int need;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return -1;
    }
    for (int i = 1; i < need; i++) {
        if ((size_t)i >= n) return 0;
        uint8_t b = s[i];
        uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) return -i;
    }
    return need;
}

uint32_t ck_tok_utf8_cp(const uint8_t *s, int k) {
    switch (k) {
    case 1: return s[0];
    case 2: return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    case 3: return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    default:
        return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
               ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
}

int ck_tok_utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int ck_tok_utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        int k = ck_tok_utf8_next(s + i, n - i);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

int ck_tok_utf8_lossy(ck_tok_buf *b, const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        int k = ck_tok_utf8_next(s + i, n - i);
        if (k > 0) {
            if (ck_tok_buf_put(b, s + i, (size_t)k) != 0) return -1;
            i += (size_t)k;
        } else {
            if (ck_tok_buf_put(b, "\xEF\xBF\xBD", 3) != 0) return -1;
            i += k == 0 ? n - i : (size_t)-k;
        }
    }
    return 0;
}

int ck_tok_is_space(uint32_t cp) {
    if (cp >= 0x09 && cp <= 0x0D) return 1;
    switch (cp) {
    case 0x20: case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

int ck_tok_is_pyspace(uint32_t cp) { return ck_tok_is_space(cp) || (cp >= 0x1C && cp <= 0x1F); }

/* Bytes that stand for themselves in the GPT-2 alphabet: '!'..'~', 0xA1..0xAC, 0xAE..0xFF. */
static int byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t ck_tok_byte_to_cp(uint8_t b) {
    if (byte_is_printable(b)) return b;
    uint32_t n = 0; /* rank of b among the non-printable bytes */
    for (unsigned x = 0; x < b; x++)
        if (!byte_is_printable(x)) n++;
    return 256 + n;
}

int ck_tok_cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1; /* 68 bytes are not printable */
    uint32_t n = cp - 256;
    for (unsigned x = 0; x < 256; x++) {
        if (byte_is_printable(x)) continue;
        if (n == 0) return (int)x;
        n--;
    }
    return -1;
}
