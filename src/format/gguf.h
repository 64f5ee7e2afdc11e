/* gguf.h — reads llama.cpp's GGUF container (versions 2 and 3, little-endian): a header (magic "GGUF",
 * version, tensor count, metadata count), metadata key/value pairs (integers, floats, bools, strings and
 * arrays of any of them, arrays of arrays included), tensor infos (name, dims innermost first, ggml type,
 * offset), padding to general.alignment (default 32), then the tensor data. Parsing is pure:
 * ck_gguf_parse() never touches a file, so it can be fuzzed; ck_gguf_open() maps a file and calls it.
 * Invariants after a successful parse: keys and tensor names are unique; every value lies inside the
 * buffer; every tensor has 1..4 dims whose product (overflow-checked) is a whole number of its type's
 * blocks, its offset is a multiple of the alignment and its bytes lie inside the data section. Strings
 * are returned as (pointer, length) into the buffer: they are not NUL-terminated. */
#ifndef CK_FORMAT_GGUF_H
#define CK_FORMAT_GGUF_H

#include "base/file.h"

#include <stddef.h>
#include <stdint.h>

enum {
    CK_GGUF_U8 = 0, CK_GGUF_I8, CK_GGUF_U16, CK_GGUF_I16, CK_GGUF_U32, CK_GGUF_I32, CK_GGUF_F32, CK_GGUF_BOOL,
    CK_GGUF_STRING, CK_GGUF_ARRAY, CK_GGUF_U64, CK_GGUF_I64, CK_GGUF_F64, CK_GGUF_TYPE_COUNT
};

#define CK_GGUF_MAX_DIMS 4

typedef struct ck_gguf_str {
    const char *p;             /* inside the buffer, not NUL-terminated */
    uint64_t len;
} ck_gguf_str;

typedef struct ck_gguf_kv {
    char *key;                 /* NUL-terminated copy */
    uint32_t type;             /* CK_GGUF_* */
    uint32_t elem_type;        /* arrays: the element type; else == type */
    uint64_t n;                /* arrays: element count; else 1 */
    const uint8_t *data;       /* the value (arrays: the first element) inside the buffer */
    ck_gguf_str *strs;         /* strings and arrays of strings: [n] (owned array) */
} ck_gguf_kv;

typedef struct ck_gguf_tensor {
    char *name;                /* NUL-terminated copy */
    uint32_t ggml_type;
    int dtype;                 /* the ck_dtype of ggml_type, or -1 when we do not compute with it */
    int n_dims;
    uint64_t ne[CK_GGUF_MAX_DIMS]; /* innermost first, as ggml; unused dims are 1 */
    uint64_t offset;           /* from the start of the data section */
    const uint8_t *data;
    uint64_t nbytes;
} ck_gguf_tensor;

typedef struct ck_gguf {
    uint32_t version;
    uint64_t alignment;
    ck_gguf_kv *kv;
    size_t n_kv;
    const uint8_t *meta;       /* the metadata pairs as stored (after the header, before the tensor infos) */
    size_t meta_len;
    ck_gguf_tensor *tensors;
    size_t n_tensors;
    const uint8_t *data;       /* start of the data section */
    uint64_t data_len;
} ck_gguf;

/* Parses a whole GGUF image buf[0..len). Values and tensor data point into buf. */
int ck_gguf_parse(const uint8_t *buf, size_t len, ck_gguf *out, char *err, size_t errlen);
void ck_gguf_free(ck_gguf *g);

/* The ggml type's name ("Q4_K", ...) or NULL for an unknown id. */
const char *ck_gguf_type_name(uint32_t ggml_type);

/* The pair with this key, or NULL. */
const ck_gguf_kv *ck_gguf_find(const ck_gguf *g, const char *key);
/* The tensor with this name, or NULL. */
const ck_gguf_tensor *ck_gguf_tensor_named(const ck_gguf *g, const char *name);
/* Scalars: 1 when present and convertible (any integer type to int64 when it fits, any number to
 * double, strings as (p, len)), 0 when absent or of another type. */
int ck_gguf_int(const ck_gguf *g, const char *key, int64_t *out);
int ck_gguf_num(const ck_gguf *g, const char *key, double *out);
int ck_gguf_string(const ck_gguf *g, const char *key, ck_gguf_str *out);
/* Element i of a numeric array (i < kv->n) as int64 / double. */
int64_t ck_gguf_arr_int(const ck_gguf_kv *kv, uint64_t i);
double ck_gguf_arr_num(const ck_gguf_kv *kv, uint64_t i);
/* 1 when s equals the NUL-terminated lit. */
int ck_gguf_str_eq(ck_gguf_str s, const char *lit);

/* A mapped GGUF file. */
typedef struct ck_gguf_file {
    ck_map map;
    ck_gguf g;
} ck_gguf_file;

/* Maps PATH and parses it; errors name the path. */
int ck_gguf_open(const char *path, ck_gguf_file *f, char *err, size_t errlen);
void ck_gguf_close(ck_gguf_file *f);

#endif
