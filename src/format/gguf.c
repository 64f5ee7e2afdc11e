/* gguf.c — GGUF parsing (see gguf.h). A bounds-checked little-endian reader walks the buffer once;
 * every count read from the file is checked against the bytes left before anything is allocated for it,
 * so a hostile header cannot make the parser allocate more than a small multiple of the file size. */
#include "format/gguf.h"
#include "base/err.h"
#include "tensor/dtype.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" read little-endian */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_NESTING 4     /* arrays of arrays of ... */

/* Every ggml type, so sizes are checked even for types we do not compute with (from gguf-py's
 * GGML_QUANT_SIZES). ck: our dtype, or -1. */
static const struct ggml_type {
    uint32_t id;
    const char *name;
    uint32_t block, bytes;
    int ck;
} ggml_types[] = {
    {0, "F32", 1, 4, CK_F32},      {1, "F16", 1, 2, CK_F16},         {2, "Q4_0", 32, 18, CK_Q4_0},
    {3, "Q4_1", 32, 20, -1},       {6, "Q5_0", 32, 22, -1},          {7, "Q5_1", 32, 24, -1},
    {8, "Q8_0", 32, 34, CK_Q8_0},  {9, "Q8_1", 32, 40, -1},          {10, "Q2_K", 256, 84, -1},
    {11, "Q3_K", 256, 110, -1},    {12, "Q4_K", 256, 144, CK_Q4_K},  {13, "Q5_K", 256, 176, CK_Q5_K},
    {14, "Q6_K", 256, 210, CK_Q6_K}, {15, "Q8_K", 256, 292, -1},     {16, "IQ2_XXS", 256, 66, -1},
    {17, "IQ2_XS", 256, 74, -1},   {18, "IQ3_XXS", 256, 98, -1},     {19, "IQ1_S", 256, 50, -1},
    {20, "IQ4_NL", 32, 18, -1},    {21, "IQ3_S", 256, 110, -1},      {22, "IQ2_S", 256, 82, -1},
    {23, "IQ4_XS", 256, 136, -1},  {24, "I8", 1, 1, -1},             {25, "I16", 1, 2, -1},
    {26, "I32", 1, 4, -1},         {27, "I64", 1, 8, -1},            {28, "F64", 1, 8, -1},
    {29, "IQ1_M", 256, 56, -1},    {30, "BF16", 1, 2, CK_BF16},      {34, "TQ1_0", 256, 54, -1},
    {35, "TQ2_0", 256, 66, -1},    {39, "MXFP4", 32, 17, -1},        {40, "NVFP4", 64, 36, -1},
    {41, "Q1_0", 128, 18, -1},     {42, "Q2_0", 64, 18, -1},
};

static const struct ggml_type *ggml_type_of(uint32_t id) {
    for (size_t i = 0; i < sizeof ggml_types / sizeof ggml_types[0]; i++)
        if (ggml_types[i].id == id) return &ggml_types[i];
    return NULL;
}

const char *ck_gguf_type_name(uint32_t id) {
    const struct ggml_type *t = ggml_type_of(id);
    return t ? t->name : NULL;
}

/* Bytes of one scalar metadata value of type t (strings and arrays: 0). */
static size_t scalar_size(uint32_t t) {
    static const uint8_t sz[CK_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < CK_GGUF_TYPE_COUNT ? sz[t] : 0;
}

/* ---- bounds-checked reader ---- */

typedef struct rd {
    const uint8_t *buf;
    size_t len, pos;
    char *err;
    size_t errlen;
} rd;

static int need(rd *r, uint64_t n, const char *what) {
    if (n > r->len - r->pos)
        return ck_err(r->err, r->errlen, "truncated GGUF: %s at byte %zu needs %llu bytes, %zu left", what, r->pos,
                      (unsigned long long)n, r->len - r->pos);
    return 0;
}

static int rd_u32(rd *r, uint32_t *v, const char *what) {
    if (need(r, 4, what)) return -1;
    memcpy(v, r->buf + r->pos, 4);
    r->pos += 4;
    return 0;
}

static int rd_u64(rd *r, uint64_t *v, const char *what) {
    if (need(r, 8, what)) return -1;
    memcpy(v, r->buf + r->pos, 8);
    r->pos += 8;
    return 0;
}

static int rd_str(rd *r, ck_gguf_str *s, const char *what) {
    uint64_t n;
    if (rd_u64(r, &n, what) || need(r, n, what)) return -1;
    s->p = (const char *)r->buf + r->pos;
    s->len = n;
    r->pos += (size_t)n;
    return 0;
}

/* A NUL-terminated copy of s; names with a NUL byte inside are refused. */
static char *dup_name(rd *r, ck_gguf_str s, const char *what) {
    if (memchr(s.p, 0, (size_t)s.len)) {
        ck_err(r->err, r->errlen, "GGUF %s at byte %zu contains a NUL byte", what, r->pos);
        return NULL;
    }
    char *p = malloc((size_t)s.len + 1);
    if (!p) {
        ck_err(r->err, r->errlen, "out of memory");
        return NULL;
    }
    memcpy(p, s.p, (size_t)s.len);
    p[s.len] = 0;
    return p;
}

/* Skips (or, with strs, records) n values of type t; arrays nest up to GGUF_MAX_NESTING deep. */
static int skip_values(rd *r, uint32_t t, uint64_t n, ck_gguf_str *strs, int depth, const char *key) {
    if (t == CK_GGUF_STRING) {
        if (n > (r->len - r->pos) / 8) return need(r, n * 8, "string array"); /* each string needs >= 8 bytes */
        for (uint64_t i = 0; i < n; i++) {
            ck_gguf_str s;
            if (rd_str(r, &s, "string value")) return -1;
            if (strs) strs[i] = s;
        }
        return 0;
    }
    if (t == CK_GGUF_ARRAY) {
        if (depth >= GGUF_MAX_NESTING) return ck_err(r->err, r->errlen, "GGUF key '%s': arrays nested too deep", key);
        for (uint64_t i = 0; i < n; i++) {
            uint32_t et;
            uint64_t en;
            if (need(r, 12, "nested array header")) return -1; /* also bounds n: each element takes 12 bytes */
            if (rd_u32(r, &et, "array type") || rd_u64(r, &en, "array length")) return -1;
            if (skip_values(r, et, en, NULL, depth + 1, key)) return -1;
        }
        return 0;
    }
    size_t sz = scalar_size(t);
    if (!sz) return ck_err(r->err, r->errlen, "GGUF key '%s': unknown value type %u", key, t);
    if (n > (r->len - r->pos) / sz) return need(r, n * sz, "array values");
    r->pos += (size_t)(n * sz);
    return 0;
}

static int parse_kv(rd *r, ck_gguf_kv *kv) {
    ck_gguf_str key;
    if (rd_str(r, &key, "metadata key") || !(kv->key = dup_name(r, key, "metadata key"))) return -1;
    if (rd_u32(r, &kv->type, "value type")) return -1;
    kv->elem_type = kv->type;
    kv->n = 1;
    if (kv->type == CK_GGUF_ARRAY && (rd_u32(r, &kv->elem_type, "array type") || rd_u64(r, &kv->n, "array length")))
        return -1;
    if (kv->elem_type == CK_GGUF_STRING) {
        if (kv->n > (r->len - r->pos) / 8) return need(r, kv->n * 8, "string array");
        kv->strs = malloc((size_t)(kv->n ? kv->n : 1) * sizeof *kv->strs);
        if (!kv->strs) return ck_err(r->err, r->errlen, "out of memory");
    }
    kv->data = r->buf + r->pos;
    return skip_values(r, kv->elem_type, kv->n, kv->strs, kv->type == CK_GGUF_ARRAY, kv->key);
}

static int parse_tensor_info(rd *r, ck_gguf_tensor *t) {
    ck_gguf_str name;
    uint32_t nd;
    if (rd_str(r, &name, "tensor name") || !(t->name = dup_name(r, name, "tensor name"))) return -1;
    if (rd_u32(r, &nd, "tensor dims")) return -1;
    if (nd < 1 || nd > CK_GGUF_MAX_DIMS)
        return ck_err(r->err, r->errlen, "GGUF tensor '%s': %u dimensions (1 to %d supported)", t->name, nd,
                      CK_GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    for (int i = 0; i < CK_GGUF_MAX_DIMS; i++) t->ne[i] = 1;
    for (uint32_t i = 0; i < nd; i++)
        if (rd_u64(r, &t->ne[i], "tensor dim")) return -1;
    return rd_u32(r, &t->ggml_type, "tensor type") || rd_u64(r, &t->offset, "tensor offset") ? -1 : 0;
}

/* Checks t's size and places it in the data section [data, data + data_len). */
static int place_tensor(ck_gguf *g, ck_gguf_tensor *t, char *err, size_t errlen) {
    const struct ggml_type *ty = ggml_type_of(t->ggml_type);
    if (!ty) return ck_err(err, errlen, "GGUF tensor '%s': unknown ggml type %u", t->name, t->ggml_type);
    t->dtype = ty->ck;
    uint64_t numel = 1;
    for (int i = 0; i < t->n_dims; i++) {
        if (t->ne[i] > (uint64_t)INT64_MAX || __builtin_mul_overflow(numel, t->ne[i], &numel))
            return ck_err(err, errlen, "GGUF tensor '%s': shape overflows", t->name);
    }
    if (t->ne[0] % ty->block)
        return ck_err(err, errlen, "GGUF tensor '%s': row of %llu elements is not a whole number of %s blocks (%u)",
                      t->name, (unsigned long long)t->ne[0], ty->name, ty->block);
    if (__builtin_mul_overflow(numel / ty->block, (uint64_t)ty->bytes, &t->nbytes))
        return ck_err(err, errlen, "GGUF tensor '%s': size overflows", t->name);
    if (t->offset % g->alignment)
        return ck_err(err, errlen, "GGUF tensor '%s': offset %llu is not a multiple of the alignment %llu", t->name,
                      (unsigned long long)t->offset, (unsigned long long)g->alignment);
    if (t->offset > g->data_len || t->nbytes > g->data_len - t->offset)
        return ck_err(err, errlen, "GGUF tensor '%s': data [%llu, +%llu) runs past the end of the file (%llu data bytes)",
                      t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                      (unsigned long long)g->data_len);
    t->data = g->data + t->offset;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Keys (or tensor names) are unique: sorts a temporary array of pointers and compares neighbours. */
static int check_unique(char **names, size_t n, const char *what, char *err, size_t errlen) {
    if (n < 2) return 0;
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(names[i - 1], names[i])) return ck_err(err, errlen, "GGUF: duplicate %s '%s'", what, names[i]);
    return 0;
}

static int parse_alignment(ck_gguf *g, char *err, size_t errlen) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const ck_gguf_kv *a = ck_gguf_find(g, "general.alignment");
    if (!a) return 0;
    uint32_t v;
    if (a->type != CK_GGUF_U32) return ck_err(err, errlen, "GGUF: general.alignment is not a uint32");
    memcpy(&v, a->data, 4);
    if (v == 0 || (v & (v - 1))) return ck_err(err, errlen, "GGUF: general.alignment %u is not a power of two", v);
    g->alignment = v;
    return 0;
}

static int check_names(ck_gguf *g, char *err, size_t errlen) {
    size_t n = g->n_kv > g->n_tensors ? g->n_kv : g->n_tensors;
    char **names = malloc((n ? n : 1) * sizeof *names);
    if (!names) return ck_err(err, errlen, "out of memory");
    for (size_t i = 0; i < g->n_kv; i++) names[i] = g->kv[i].key;
    int rc = check_unique(names, g->n_kv, "key", err, errlen);
    for (size_t i = 0; rc == 0 && i < g->n_tensors; i++) names[i] = g->tensors[i].name;
    if (rc == 0) rc = check_unique(names, g->n_tensors, "tensor", err, errlen);
    free(names);
    return rc;
}

static int parse_header(rd *r, ck_gguf *g, uint64_t *n_tensors, uint64_t *n_kv) {
    uint32_t magic;
    if (rd_u32(r, &magic, "magic")) return -1;
    if (magic != GGUF_MAGIC) return ck_err(r->err, r->errlen, "not a GGUF file (bad magic)");
    if (rd_u32(r, &g->version, "version")) return -1;
    if (g->version != 2 && g->version != 3) /* a big-endian file's 2 or 3 reads as 0x02000000 or 0x03000000 */
        return ck_err(r->err, r->errlen, "GGUF version %u is not supported (2 and 3 are)%s", g->version,
                      g->version != 0 && (g->version & 0xffff) == 0 ? "; big-endian files are not supported" : "");
    if (rd_u64(r, n_tensors, "tensor count") || rd_u64(r, n_kv, "metadata count")) return -1;
    /* a pair takes at least 12 bytes and a tensor info at least 28: refuse counts the file cannot hold */
    if (*n_kv > (r->len - r->pos) / 12 || *n_tensors > (r->len - r->pos) / 28)
        return ck_err(r->err, r->errlen, "truncated GGUF: %llu tensors and %llu metadata pairs do not fit in %zu bytes",
                      (unsigned long long)*n_tensors, (unsigned long long)*n_kv, r->len);
    return 0;
}

static int parse_all(rd *r, ck_gguf *g) {
    uint64_t n_tensors = 0, n_kv = 0;
    if (parse_header(r, g, &n_tensors, &n_kv)) return -1;
    /* one spare zeroed entry each: ck_gguf_free releases entries [0, n] (n: the one an error interrupted) */
    g->kv = calloc((size_t)n_kv + 1, sizeof *g->kv);
    g->tensors = calloc((size_t)n_tensors + 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return ck_err(r->err, r->errlen, "out of memory");
    g->meta = r->buf + r->pos;
    for (; g->n_kv < n_kv; g->n_kv++)
        if (parse_kv(r, &g->kv[g->n_kv])) return -1;
    g->meta_len = (size_t)(r->buf + r->pos - g->meta);
    if (parse_alignment(g, r->err, r->errlen)) return -1;
    for (; g->n_tensors < n_tensors; g->n_tensors++)
        if (parse_tensor_info(r, &g->tensors[g->n_tensors])) return -1;
    if (check_names(g, r->err, r->errlen)) return -1;
    uint64_t start = (r->pos + g->alignment - 1) / g->alignment * g->alignment;
    if (n_tensors && start > r->len) return need(r, start - r->pos, "padding before the tensor data");
    g->data = r->buf + (start <= r->len ? start : r->len);
    g->data_len = start <= r->len ? r->len - start : 0;
    for (size_t i = 0; i < g->n_tensors; i++)
        if (place_tensor(g, &g->tensors[i], r->err, r->errlen)) return -1;
    return 0;
}

int ck_gguf_parse(const uint8_t *buf, size_t len, ck_gguf *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    rd r = {buf, len, 0, err, errlen};
    if (parse_all(&r, out) != 0) {
        ck_gguf_free(out);
        return -1;
    }
    return 0;
}

void ck_gguf_free(ck_gguf *g) {
    for (size_t i = 0; g->kv && i <= g->n_kv; i++) { /* <= : see parse_all */
        free(g->kv[i].key);
        free(g->kv[i].strs);
    }
    for (size_t i = 0; g->tensors && i <= g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    memset(g, 0, sizeof *g);
}

/* ---- lookups ---- */

const ck_gguf_kv *ck_gguf_find(const ck_gguf *g, const char *key) {
    for (size_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const ck_gguf_tensor *ck_gguf_tensor_named(const ck_gguf *g, const char *name) {
    for (size_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

static int num_at(uint32_t t, const uint8_t *p, int64_t *iv, double *dv) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; float f; uint64_t u64; int64_t i64; double d; } u;
    size_t sz = scalar_size(t);
    if (!sz || t == CK_GGUF_STRING || t == CK_GGUF_ARRAY) return 0;
    memcpy(&u, p, sz);
    switch (t) {
    case CK_GGUF_U8: case CK_GGUF_BOOL: *iv = u.u8; break;
    case CK_GGUF_I8: *iv = u.i8; break;
    case CK_GGUF_U16: *iv = u.u16; break;
    case CK_GGUF_I16: *iv = u.i16; break;
    case CK_GGUF_U32: *iv = u.u32; break;
    case CK_GGUF_I32: *iv = u.i32; break;
    case CK_GGUF_I64: *iv = u.i64; break;
    case CK_GGUF_U64: if (u.u64 > (uint64_t)INT64_MAX) return 0; *iv = (int64_t)u.u64; break;
    case CK_GGUF_F32: *dv = u.f; return 2;
    case CK_GGUF_F64: *dv = u.d; return 2;
    default: return 0;
    }
    *dv = (double)*iv;
    return 1;
}

int ck_gguf_int(const ck_gguf *g, const char *key, int64_t *out) {
    const ck_gguf_kv *kv = ck_gguf_find(g, key);
    double d;
    return kv && kv->type == kv->elem_type && num_at(kv->type, kv->data, out, &d) == 1;
}

int ck_gguf_num(const ck_gguf *g, const char *key, double *out) {
    const ck_gguf_kv *kv = ck_gguf_find(g, key);
    int64_t i;
    return kv && kv->type == kv->elem_type && num_at(kv->type, kv->data, &i, out) != 0;
}

int ck_gguf_string(const ck_gguf *g, const char *key, ck_gguf_str *out) {
    const ck_gguf_kv *kv = ck_gguf_find(g, key);
    if (!kv || kv->type != CK_GGUF_STRING) return 0;
    *out = kv->strs[0];
    return 1;
}

int64_t ck_gguf_arr_int(const ck_gguf_kv *kv, uint64_t i) {
    int64_t v = 0;
    double d = 0;
    if (i >= kv->n || num_at(kv->elem_type, kv->data + i * scalar_size(kv->elem_type), &v, &d) != 1) return 0;
    return v;
}

double ck_gguf_arr_num(const ck_gguf_kv *kv, uint64_t i) {
    int64_t v = 0;
    double d = 0;
    if (i < kv->n) num_at(kv->elem_type, kv->data + i * scalar_size(kv->elem_type), &v, &d);
    return d;
}

int ck_gguf_str_eq(ck_gguf_str s, const char *lit) { return s.len == strlen(lit) && !memcmp(s.p, lit, s.len); }

int ck_gguf_open(const char *path, ck_gguf_file *f, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    if (ck_map_open(path, &f->map, err, errlen) != 0) return -1;
    char why[400];
    if (ck_gguf_parse(f->map.data, f->map.size, &f->g, why, sizeof why) != 0) {
        ck_map_close(&f->map);
        return ck_err(err, errlen, "%s: %s", path, why);
    }
    return 0;
}

void ck_gguf_close(ck_gguf_file *f) {
    ck_gguf_free(&f->g);
    ck_map_close(&f->map);
}
