/* value.c — the interpreter's values: the arena they live in, strings, lists and insertion-ordered
 * dicts, Python truthiness, equality and ordering, and the text forms Python gives them (str(), repr(),
 * float repr as the shortest round-tripping digits, json.dumps with ensure_ascii=False), plus the cJSON
 * -> value mapping for template variables.
 * Invariants: values never own memory (the arena does); every write to a jj_buf checks its cap. */
#include "jinja/jinja_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- arena ---- */

typedef struct jj_chunk {
    struct jj_chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} jj_chunk;

void *jj_alloc(jj_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->cap_bytes && (n > a->cap_bytes || a->used_bytes > a->cap_bytes - n)) {
        a->failed = 1;
        return NULL;
    }
    jj_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + size);
        if (!c) {
            a->failed = 1;
            return NULL;
        }
        c->used = 0;
        c->size = size;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used_bytes += n;
    memset(p, 0, n);
    return p;
}

void jj_arena_free(jj_arena *a) {
    for (jj_chunk *c = a->head, *nx; c; c = nx) {
        nx = c->next;
        free(c);
    }
    a->head = NULL;
    a->used_bytes = 0;
}

/* ---- constructors ---- */

jv jv_strn(jj_arena *a, const char *p, size_t n) {
    if (n > SIZE_MAX - sizeof(jj_str) - 1) return jv_undef(NULL);
    jj_str *s = jj_alloc(a, sizeof *s + n + 1);
    if (!s) return jv_undef(NULL);
    s->n = n;
    if (n) memcpy(s->p, p, n);
    s->p[n] = 0;
    jv v = {JV_STR, 0, {.s = s}};
    return v;
}

jv jv_str(jj_arena *a, const char *s) { return jv_strn(a, s, strlen(s)); }

jv jv_list_new(jj_arena *a) {
    jj_list *l = jj_alloc(a, sizeof *l);
    if (!l) return jv_undef(NULL);
    jv v = {JV_LIST, 0, {.l = l}};
    return v;
}

jv jv_dict_new(jj_arena *a) {
    jj_dict *d = jj_alloc(a, sizeof *d);
    if (!d) return jv_undef(NULL);
    jv v = {JV_DICT, 0, {.d = d}};
    return v;
}

int jv_oom(jv v) { return v.k == JV_UNDEF && v.u.name == NULL; }

int jj_list_push(jj_arena *a, jj_list *l, jv v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        if (cap > SIZE_MAX / sizeof(jv)) return -1;
        jv *na = jj_alloc(a, cap * sizeof(jv));
        if (!na) return -1;
        if (l->n) memcpy(na, l->a, l->n * sizeof(jv));
        l->a = na;
        l->cap = cap;
    }
    l->a[l->n++] = v;
    return 0;
}

const jv *jj_dict_get(const jj_dict *d, jv key) {
    for (size_t i = 0; i < d->n; i++)
        if (jv_eq(d->keys[i], key)) return &d->vals[i];
    return NULL;
}

const jv *jj_dict_gets(const jj_dict *d, const char *key) {
    size_t n = strlen(key);
    for (size_t i = 0; i < d->n; i++)
        if (d->keys[i].k == JV_STR && d->keys[i].u.s->n == n && !memcmp(d->keys[i].u.s->p, key, n))
            return &d->vals[i];
    return NULL;
}

int jj_dict_set(jj_arena *a, jj_dict *d, jv key, jv val) {
    jv *have = (jv *)jj_dict_get(d, key);
    if (have) {
        *have = val;
        return 0;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        if (cap > SIZE_MAX / sizeof(jv)) return -1;
        jv *nk = jj_alloc(a, cap * sizeof(jv)), *nv = jj_alloc(a, cap * sizeof(jv));
        if (!nk || !nv) return -1;
        if (d->n) {
            memcpy(nk, d->keys, d->n * sizeof(jv));
            memcpy(nv, d->vals, d->n * sizeof(jv));
        }
        d->keys = nk;
        d->vals = nv;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n++] = val;
    return 0;
}

/* ---- truthiness, equality, ordering ---- */

int jv_truthy(jv v) {
    switch (v.k) {
    case JV_UNDEF: case JV_NONE: return 0;
    case JV_BOOL: case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s->n != 0;
    case JV_LIST: return (v.flags & JVF_GEN) || v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    default: return 1;
    }
}

int jv_is_number(jv v) { return v.k == JV_INT || v.k == JV_FLOAT || v.k == JV_BOOL; }
double jv_num(jv v) { return v.k == JV_FLOAT ? v.u.f : (double)v.u.i; }

static int jv_eq_depth(jv a, jv b, int depth) {
    if (depth > 64) return 0;
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.k != JV_FLOAT && b.k != JV_FLOAT) return a.u.i == b.u.i;
        return jv_num(a) == jv_num(b);
    }
    if (a.k != b.k) return 0;
    switch (a.k) {
    case JV_UNDEF: case JV_NONE: return 1;
    case JV_STR: return a.u.s->n == b.u.s->n && !memcmp(a.u.s->p, b.u.s->p, a.u.s->n);
    case JV_LIST: /* a list never equals a tuple */
        if (a.u.l->n != b.u.l->n || (a.flags & JVF_TUPLE) != (b.flags & JVF_TUPLE)) return 0;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!jv_eq_depth(a.u.l->a[i], b.u.l->a[i], depth + 1)) return 0;
        return 1;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n) return 0;
        for (size_t i = 0; i < a.u.d->n; i++) {
            const jv *o = jj_dict_get(b.u.d, a.u.d->keys[i]);
            if (!o || !jv_eq_depth(a.u.d->vals[i], *o, depth + 1)) return 0;
        }
        return 1;
    case JV_MACRO: return a.u.m == b.u.m;
    case JV_FUNC: return a.u.fn == b.u.fn;
    default: return 0;
    }
}

int jv_eq(jv a, jv b) { return jv_eq_depth(a, b, 0); }

int jv_cmp(jv a, jv b, int *cmp) {
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.k != JV_FLOAT && b.k != JV_FLOAT) *cmp = (a.u.i > b.u.i) - (a.u.i < b.u.i);
        else {
            double x = jv_num(a), y = jv_num(b);
            if (isnan(x) || isnan(y)) { *cmp = 2; return 0; } /* every comparison false */
            *cmp = (x > y) - (x < y);
        }
        return 0;
    }
    if (a.k == JV_STR && b.k == JV_STR) {
        size_t n = a.u.s->n < b.u.s->n ? a.u.s->n : b.u.s->n;
        int r = memcmp(a.u.s->p, b.u.s->p, n); /* UTF-8 byte order is code point order */
        *cmp = r ? (r > 0 ? 1 : -1) : (a.u.s->n > b.u.s->n) - (a.u.s->n < b.u.s->n);
        return 0;
    }
    if (a.k == JV_LIST && b.k == JV_LIST && (a.flags & JVF_TUPLE) == (b.flags & JVF_TUPLE)) {
        for (size_t i = 0; i < a.u.l->n && i < b.u.l->n; i++) {
            if (jv_eq(a.u.l->a[i], b.u.l->a[i])) continue;
            return jv_cmp(a.u.l->a[i], b.u.l->a[i], cmp);
        }
        *cmp = (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
        return 0;
    }
    return -1;
}

static int hashable(jv v, int depth) {
    if (v.k == JV_DICT || depth > 64) return 0;
    if (v.k != JV_LIST) return 1;
    if (!(v.flags & JVF_TUPLE)) return 0;
    for (size_t i = 0; i < v.u.l->n; i++)
        if (!hashable(v.u.l->a[i], depth + 1)) return 0;
    return 1;
}

int jv_hashable(jv v) { return hashable(v, 0); }

const char *jv_type_name(jv v) {
    switch (v.k) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return (v.flags & JVF_GEN) ? "generator" : (v.flags & JVF_TUPLE) ? "tuple" : "list";
    case JV_DICT: return v.u.d->ns ? "Namespace" : "dict";
    case JV_MACRO: return "Macro";
    default: return "function";
    }
}

/* ---- UTF-8 and Python whitespace ---- */

size_t jj_utf8_next(const char *p, size_t n) {
    const unsigned char *u = (const unsigned char *)p;
    if (n == 0) return 0;
    size_t k = u[0] < 0x80 ? 1 : (u[0] >> 5) == 6 ? 2 : (u[0] >> 4) == 14 ? 3 : (u[0] >> 3) == 30 ? 4 : 1;
    if (k > n) return 1;
    for (size_t i = 1; i < k; i++)
        if ((u[i] & 0xC0) != 0x80) return 1;
    return k;
}

static uint32_t utf8_cp(const char *p, size_t k) {
    const unsigned char *u = (const unsigned char *)p;
    if (k == 1) return u[0];
    if (k == 2) return ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    if (k == 3) return ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) | ((uint32_t)(u[2] & 0x3F) << 6) |
           (u[3] & 0x3F);
}

size_t jj_utf8_len(const char *p, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i += jj_utf8_next(p + i, n - i)) c++;
    return c;
}

static int cp_is_pyspace(uint32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

int jj_is_pyspace_at(const char *p, size_t n, size_t *len) {
    size_t k = jj_utf8_next(p, n);
    if (k == 0) return 0;
    uint32_t c = (k == 1 && (unsigned char)p[0] >= 0x80) ? 0xFFFD : utf8_cp(p, k);
    *len = k;
    return cp_is_pyspace(c);
}

/* ---- buffers ---- */

int jj_buf_put(jj_buf *b, const char *p, size_t n) {
    if (b->failed) return -1;
    if (b->max_bytes && (n > b->max_bytes || b->n > b->max_bytes - n)) {
        b->failed = 1;
        return -1;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) {
            if (cap > SIZE_MAX / 2) { b->failed = 1; return -1; }
            cap *= 2;
        }
        char *np = realloc(b->p, cap);
        if (!np) {
            b->failed = 1;
            return -1;
        }
        b->p = np;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

int jj_buf_puts(jj_buf *b, const char *s) { return jj_buf_put(b, s, strlen(s)); }

int jj_buf_printf(jj_buf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof tmp) return -1;
    return jj_buf_put(b, tmp, (size_t)k);
}

/* ---- Python text forms ---- */

int jj_write_float(jj_buf *b, double f) {
    if (isnan(f)) return jj_buf_puts(b, "nan");
    if (isinf(f)) return jj_buf_puts(b, f > 0 ? "inf" : "-inf");
    char e[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) { /* shortest digits that read back as f */
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    /* e = [-]d[.ddd]e[+-]XX: split digits and exponent */
    char digits[24];
    size_t nd = 0;
    const char *p = e;
    int neg = *p == '-';
    if (neg) p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    char out[64];
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (exp >= -5 && exp < 16) { /* Python: repr uses fixed notation for 1e-4 <= |f| < 1e16 */
        if (exp < -4) goto sci;
        if (exp < 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int z = 0; z < -exp - 1; z++) out[o++] = '0';
            for (size_t i = 0; i < nd; i++) out[o++] = digits[i];
        } else {
            for (int i = 0; i <= exp; i++) out[o++] = (size_t)i < nd ? digits[i] : '0';
            out[o++] = '.';
            if ((size_t)exp + 1 < nd)
                for (size_t i = (size_t)exp + 1; i < nd; i++) out[o++] = digits[i];
            else
                out[o++] = '0';
        }
        return jj_buf_put(b, out, o);
    }
sci:
    out[o++] = digits[0];
    if (nd > 1) {
        out[o++] = '.';
        for (size_t i = 1; i < nd; i++) out[o++] = digits[i];
    }
    o += (size_t)snprintf(out + o, sizeof out - o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    return jj_buf_put(b, out, o);
}

/* Python's str.isprintable() for one code point: not in categories Cc, Cf, Cs, Co, Cn, Zl, Zp, Zs. */
static int py_printable(uint32_t cp) {
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    switch (p->category) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS: case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_ZS:
        return 0;
    default: return 1;
    }
}

static int write_str_repr(jj_buf *b, const jj_str *s) {
    int has_sq = memchr(s->p, '\'', s->n) != NULL, has_dq = memchr(s->p, '"', s->n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    int rc = jj_buf_put(b, &q, 1);
    for (size_t i = 0; i < s->n; i++) {
        unsigned char ch = (unsigned char)s->p[i];
        if (ch == '\\') rc |= jj_buf_puts(b, "\\\\");
        else if (ch == (unsigned char)q) rc |= jj_buf_printf(b, "\\%c", q);
        else if (ch == '\n') rc |= jj_buf_puts(b, "\\n");
        else if (ch == '\r') rc |= jj_buf_puts(b, "\\r");
        else if (ch == '\t') rc |= jj_buf_puts(b, "\\t");
        else if (ch < 0x20 || ch == 0x7F) rc |= jj_buf_printf(b, "\\x%02x", ch);
        else if (ch < 0x80) rc |= jj_buf_put(b, (const char *)&ch, 1);
        else { /* non-ASCII: kept when printable, else escaped as Python's repr does */
            size_t k = jj_utf8_next(s->p + i, s->n - i);
            uint32_t cp = k > 1 ? utf8_cp(s->p + i, k) : 0xFFFD;
            if (k > 1 && !py_printable(cp)) {
                if (cp < 0x100) rc |= jj_buf_printf(b, "\\x%02x", cp);
                else if (cp < 0x10000) rc |= jj_buf_printf(b, "\\u%04x", cp);
                else rc |= jj_buf_printf(b, "\\U%08x", cp);
            } else {
                rc |= jj_buf_put(b, s->p + i, k);
            }
            i += k - 1;
        }
    }
    rc |= jj_buf_put(b, &q, 1);
    return rc ? -1 : 0;
}

static int write_py(jj_buf *b, jv v, int repr, int depth) {
    if (depth > 64) return jj_buf_puts(b, "[...]");
    switch (v.k) {
    case JV_UNDEF: return 0;
    case JV_NONE: return jj_buf_puts(b, "None");
    case JV_BOOL: return jj_buf_puts(b, v.u.i ? "True" : "False");
    case JV_INT: return jj_buf_printf(b, "%lld", (long long)v.u.i);
    case JV_FLOAT: return jj_write_float(b, v.u.f);
    case JV_STR: return repr ? write_str_repr(b, v.u.s) : jj_buf_put(b, v.u.s->p, v.u.s->n);
    case JV_LIST: {
        if (v.flags & JVF_GEN) return jj_buf_puts(b, "<generator object>");
        int rc = jj_buf_puts(b, (v.flags & JVF_TUPLE) ? "(" : "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) rc |= jj_buf_puts(b, ", ");
            rc |= write_py(b, v.u.l->a[i], 1, depth + 1);
        }
        if ((v.flags & JVF_TUPLE) && v.u.l->n == 1) rc |= jj_buf_puts(b, ",");
        rc |= jj_buf_puts(b, (v.flags & JVF_TUPLE) ? ")" : "]");
        return rc ? -1 : 0;
    }
    case JV_DICT: {
        int rc = jj_buf_puts(b, v.u.d->ns ? "<Namespace {" : "{");
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) rc |= jj_buf_puts(b, ", ");
            rc |= write_py(b, v.u.d->keys[i], 1, depth + 1);
            rc |= jj_buf_puts(b, ": ");
            rc |= write_py(b, v.u.d->vals[i], 1, depth + 1);
        }
        rc |= jj_buf_puts(b, v.u.d->ns ? "}>" : "}");
        return rc ? -1 : 0;
    }
    case JV_MACRO: return jj_buf_puts(b, "<Macro>");
    default: return jj_buf_puts(b, "<function>");
    }
}

int jv_write_str(jj_buf *b, jv v) { return write_py(b, v, 0, 0); }
int jv_write_repr(jj_buf *b, jv v) { return write_py(b, v, 1, 0); }

jv jv_to_str(jj_arena *a, jv v) {
    if (v.k == JV_STR) return v;
    jj_buf b = {0};
    if (jv_write_str(&b, v) != 0) {
        free(b.p);
        return jv_undef(NULL);
    }
    jv s = jv_strn(a, b.p ? b.p : "", b.n);
    free(b.p);
    return s;
}

/* ---- json.dumps ---- */

/* A \uXXXX escape (two, as a surrogate pair, above U+FFFF) for ensure_ascii. */
static int json_escape_cp(jj_buf *b, uint32_t cp) {
    if (cp < 0x10000) return jj_buf_printf(b, "\\u%04x", cp);
    cp -= 0x10000;
    return jj_buf_printf(b, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
}

static int json_string(jj_buf *b, const char *p, size_t n, int ascii) {
    int rc = jj_buf_put(b, "\"", 1);
    size_t run = 0; /* bytes copied verbatim in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        const char *esc = NULL;
        char u[8];
        if (ch == '"') esc = "\\\"";
        else if (ch == '\\') esc = "\\\\";
        else if (ch == '\n') esc = "\\n";
        else if (ch == '\r') esc = "\\r";
        else if (ch == '\t') esc = "\\t";
        else if (ch == '\b') esc = "\\b";
        else if (ch == '\f') esc = "\\f";
        else if (ch < 0x20) {
            snprintf(u, sizeof u, "\\u%04x", ch);
            esc = u;
        } else if (ascii && ch >= 0x80) { /* ensure_ascii: the character as \u escapes */
            size_t k = jj_utf8_next(p + i, n - i);
            rc |= jj_buf_put(b, p + run, i - run);
            rc |= json_escape_cp(b, k > 1 ? utf8_cp(p + i, k) : 0xFFFD);
            i += k - 1;
            run = i + 1;
            continue;
        }
        if (!esc) continue;
        rc |= jj_buf_put(b, p + run, i - run);
        rc |= jj_buf_puts(b, esc);
        run = i + 1;
    }
    rc |= jj_buf_put(b, p + run, n - run);
    rc |= jj_buf_put(b, "\"", 1);
    return rc ? -1 : 0;
}

typedef struct json_opts {
    int indent;
    const char *item_sep, *key_sep;
    int sort_keys, ascii;
    char *err;
    size_t errlen;
} json_opts;

static int json_newline(jj_buf *b, const json_opts *o, int level) {
    if (o->indent < 0) return 0;
    int rc = jj_buf_put(b, "\n", 1);
    for (long i = 0; i < (long)o->indent * level && !rc; i++) rc = jj_buf_put(b, " ", 1);
    return rc;
}

static int json_key(jj_buf *b, jv k, const json_opts *o) {
    if (k.k == JV_STR) return json_string(b, k.u.s->p, k.u.s->n, o->ascii);
    if (k.k == JV_NONE) return jj_buf_puts(b, "\"null\"");
    if (k.k == JV_BOOL) return jj_buf_puts(b, k.u.i ? "\"true\"" : "\"false\"");
    if (k.k == JV_INT || k.k == JV_FLOAT) {
        int rc = jj_buf_put(b, "\"", 1);
        rc |= k.k == JV_INT ? jj_buf_printf(b, "%lld", (long long)k.u.i) : jj_write_float(b, k.u.f);
        return rc | jj_buf_put(b, "\"", 1);
    }
    snprintf(o->err, o->errlen, "keys must be str, int, float, bool or None, not %s", jv_type_name(k));
    return -2;
}

static int json_value(jj_buf *b, jv v, const json_opts *o, int level);

static int json_dict(jj_buf *b, const jj_dict *d, const json_opts *o, int level) {
    if (d->n == 0) return jj_buf_puts(b, "{}");
    size_t order_local[64], *order = d->n <= 64 ? order_local : malloc(d->n * sizeof *order);
    if (!order) return -1;
    for (size_t i = 0; i < d->n; i++) order[i] = i;
    if (o->sort_keys) /* insertion sort: dicts in templates are small */
        for (size_t i = 1; i < d->n; i++)
            for (size_t j = i; j > 0; j--) {
                int c = 0;
                if (jv_cmp(d->keys[order[j - 1]], d->keys[order[j]], &c) != 0 || c <= 0) break;
                size_t t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
            }
    int rc = jj_buf_puts(b, "{");
    for (size_t i = 0; i < d->n && rc == 0; i++) {
        if (i) rc = jj_buf_puts(b, o->item_sep);
        if (!rc) rc = json_newline(b, o, level + 1);
        if (!rc) rc = json_key(b, d->keys[order[i]], o);
        if (!rc) rc = jj_buf_puts(b, o->key_sep);
        if (!rc) rc = json_value(b, d->vals[order[i]], o, level + 1);
    }
    if (!rc) rc = json_newline(b, o, level);
    if (!rc) rc = jj_buf_puts(b, "}");
    if (order != order_local) free(order);
    return rc;
}

static int json_value(jj_buf *b, jv v, const json_opts *o, int level) {
    if (level > 64) {
        snprintf(o->err, o->errlen, "tojson: nesting too deep");
        return -2;
    }
    switch (v.k) {
    case JV_NONE: return jj_buf_puts(b, "null");
    case JV_BOOL: return jj_buf_puts(b, v.u.i ? "true" : "false");
    case JV_INT: return jj_buf_printf(b, "%lld", (long long)v.u.i);
    case JV_FLOAT:
        if (isnan(v.u.f)) return jj_buf_puts(b, "NaN");
        if (isinf(v.u.f)) return jj_buf_puts(b, v.u.f > 0 ? "Infinity" : "-Infinity");
        return jj_write_float(b, v.u.f);
    case JV_STR: return json_string(b, v.u.s->p, v.u.s->n, o->ascii);
    case JV_LIST: {
        if (v.flags & JVF_GEN) break;
        if (v.u.l->n == 0) return jj_buf_puts(b, "[]");
        int rc = jj_buf_puts(b, "[");
        for (size_t i = 0; i < v.u.l->n && rc == 0; i++) {
            if (i) rc = jj_buf_puts(b, o->item_sep);
            if (!rc) rc = json_newline(b, o, level + 1);
            if (!rc) rc = json_value(b, v.u.l->a[i], o, level + 1);
        }
        if (!rc) rc = json_newline(b, o, level);
        return rc ? rc : jj_buf_puts(b, "]");
    }
    case JV_DICT:
        if (!v.u.d->ns) return json_dict(b, v.u.d, o, level);
        break; /* a namespace is not JSON serializable */
    default: break;
    }
    snprintf(o->err, o->errlen, "Object of type %s is not JSON serializable", jv_type_name(v));
    return -2;
}

int jv_write_json(jj_buf *b, jv v, int indent, const char *item_sep, const char *key_sep, int flags,
                  char *err, size_t errlen) {
    json_opts o = {indent, item_sep ? item_sep : (indent >= 0 ? "," : ", "), key_sep ? key_sep : ": ", flags & 1,
                   (flags & 2) != 0, err, errlen};
    int rc = json_value(b, v, &o, 0);
    if (rc == -1) snprintf(err, errlen, "out of memory or output too large");
    return rc ? -1 : 0;
}

/* ---- cJSON -> values ---- */

/* cJSON keeps a number as a double, so 1.0 and 1 look alike; Python's json keeps 1.0 a float. The flag
 * below (a type bit cJSON leaves alone and copies with cJSON_Duplicate) marks the numbers written with a
 * fraction or an exponent. */
#define JJ_JSON_FLOAT_BIT (1 << 14)

/* Whether each number of the JSON text, in document order, is a float literal; -1 when out of memory. */
static int scan_numbers(const char *p, size_t n, unsigned char **flags, size_t *count) {
    size_t cap = 0;
    *flags = NULL;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"') { /* skip the string */
            for (i++; i < n && p[i] != '"'; i++)
                if (p[i] == '\\') i++;
            continue;
        }
        if (p[i] != '-' && (p[i] < '0' || p[i] > '9')) continue;
        int is_float = 0;
        for (; i < n && p[i] && strchr("+-0123456789.eE", p[i]); i++)
            if (p[i] == '.' || p[i] == 'e' || p[i] == 'E') is_float = 1;
        i--;
        if (*count == cap) {
            cap = cap ? cap * 2 : 64;
            unsigned char *nf = realloc(*flags, cap);
            if (!nf) return -1;
            *flags = nf;
        }
        (*flags)[(*count)++] = (unsigned char)is_float;
    }
    return 0;
}

static void mark_numbers(cJSON *j, const unsigned char *flags, size_t count, size_t *k, int depth) {
    for (; j && depth < 200; j = j->next) {
        if (cJSON_IsNumber(j)) {
            if (*k < count && flags[*k]) j->type |= JJ_JSON_FLOAT_BIT;
            (*k)++;
        }
        if (j->child) mark_numbers(j->child, flags, count, k, depth + 1);
    }
}

void ck_jinja_json_mark_floats(void *cjson, const char *text, size_t len) {
    unsigned char *flags;
    size_t count, k = 0;
    if (!cjson || !text || scan_numbers(text, len, &flags, &count) != 0) return;
    size_t total = 0;
    mark_numbers(cjson, NULL, 0, &total, 0); /* count first: mark only when the scan lines up */
    if (total == count) mark_numbers(cjson, flags, count, &k, 0);
    free(flags);
}

int jv_from_json(jj_arena *a, const void *cjson, jv *out, int depth) {
    const cJSON *j = cjson;
    if (depth > 64) return -1;
    if (!j || cJSON_IsNull(j)) { *out = jv_none(); return 0; }
    if (cJSON_IsBool(j)) { *out = jv_bool(cJSON_IsTrue(j)); return 0; }
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (!(j->type & JJ_JSON_FLOAT_BIT) && d == floor(d) && fabs(d) < 9007199254740992.0) *out = jv_int((int64_t)d);
        else *out = jv_float(d);
        return 0;
    }
    if (cJSON_IsString(j)) {
        *out = jv_str(a, j->valuestring ? j->valuestring : "");
        return jv_oom(*out) ? -1 : 0;
    }
    if (cJSON_IsArray(j)) {
        *out = jv_list_new(a);
        if (jv_oom(*out)) return -1;
        const cJSON *it;
        cJSON_ArrayForEach(it, j) {
            jv e;
            if (jv_from_json(a, it, &e, depth + 1) != 0 || jj_list_push(a, out->u.l, e) != 0) return -1;
        }
        return 0;
    }
    if (cJSON_IsObject(j)) {
        *out = jv_dict_new(a);
        if (jv_oom(*out)) return -1;
        const cJSON *it;
        cJSON_ArrayForEach(it, j) {
            jv e, k = jv_str(a, it->string ? it->string : "");
            if (jv_oom(k) || jv_from_json(a, it, &e, depth + 1) != 0 || jj_dict_set(a, out->u.d, k, e) != 0)
                return -1;
        }
        return 0;
    }
    *out = jv_none();
    return 0;
}
