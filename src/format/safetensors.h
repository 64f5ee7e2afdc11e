/* safetensors.h — reads the safetensors container: an 8-byte little-endian header length, a JSON
 * header (name -> dtype, shape, [begin, end) offsets), then the raw tensor bytes. Parsing is pure:
 * ck_st_parse() never touches the file, so it can be fuzzed; ck_weights_open() maps files and calls it.
 * Invariant after a successful parse: every tensor's byte range lies inside the data section and its
 * length equals numel x element size (all products overflow-checked). */
#ifndef CK_FORMAT_SAFETENSORS_H
#define CK_FORMAT_SAFETENSORS_H

#include "base/file.h"
#include "tensor/tensor.h"

#include <stddef.h>
#include <stdint.h>

#define CK_ST_MAX_DIMS 8 /* parsed; tensors over CK_MAX_DIMS (e.g. a vision tower's Conv3d) load as errors */

typedef struct ck_st_entry {
    char *name;
    int dtype;                 /* a ck_dtype, or -1 for a dtype we do not compute with */
    char dtype_name[12];
    int ndim;
    uint64_t shape[CK_ST_MAX_DIMS];
    const uint8_t *data;       /* inside the parsed buffer */
    uint64_t nbytes;
} ck_st_entry;

typedef struct ck_st {
    ck_st_entry *entries;
    size_t n;
} ck_st;

/* Parses a whole safetensors file image buf[0..len). Entries point into buf. */
int ck_st_parse(const uint8_t *buf, size_t len, ck_st *out, char *err, size_t errlen);
void ck_st_free(ck_st *st);

/* A model's weights: one or more mapped safetensors files with one name index. */
typedef struct ck_weights {
    ck_map *maps;
    ck_st *files;
    size_t n_files;
    const ck_st_entry **index; /* all entries sorted by name */
    size_t n_index;
} ck_weights;

/* Opens DIR/model.safetensors.index.json and its shards, else DIR/model.safetensors. */
int ck_weights_open(const char *dir, ck_weights *w, char *err, size_t errlen);
void ck_weights_close(ck_weights *w);

/* Finds `name`. Returns 1 and fills *t when present, 0 when absent, -1 (with err) when present with a
 * dtype we cannot compute with or more than CK_MAX_DIMS dimensions. */
int ck_weights_find(const ck_weights *w, const char *name, ck_tensor *t, char *err, size_t errlen);

#endif
