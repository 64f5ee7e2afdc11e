/* safetensors.h — reads the safetensors container: an 8-byte little-endian header length, a JSON
 * header (name -> dtype, shape, [begin, end) offsets), then the raw tensor bytes. Parsing is pure:
 * ck_st_parse() never touches the file, so it can be fuzzed; ck_weights_open() maps files and calls it.
 * Invariant after a successful parse: every tensor's byte range lies inside the data section and its
 * length equals numel x element size (all products overflow-checked). */
#ifndef CK_FORMAT_SAFETENSORS_H
#define CK_FORMAT_SAFETENSORS_H

#include "base/file.h"
#include "format/gguf_model.h"
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

/* The shard index (model.safetensors.index.json): tensor name -> shard file. Parsing is pure (fuzzed);
 * refs are sorted by name, names are unique, shard names stay inside the model directory. */
typedef struct ck_st_ref {
    char *name;
    uint32_t shard;            /* index into shards */
} ck_st_ref;

typedef struct ck_st_index {
    ck_st_ref *refs;
    size_t n;
    char **shards;             /* distinct shard file names */
    size_t n_shards;
} ck_st_index;

int ck_st_index_parse(const char *text, size_t len, ck_st_index *out, char *err, size_t errlen);
void ck_st_index_free(ck_st_index *ix);

/* A model's weights: model.safetensors (mapped at open), or the shards of an index, each mapped the first
 * time one of its tensors is asked for, so a process that loads a range of layers maps only the shards
 * of that range, and a directory holding only those shards opens for it. */
typedef struct ck_weights {
    char *dir;
    ck_st_index index;         /* every tensor name of the checkpoint and its shard */
    ck_map *maps;              /* [n_shards] */
    ck_st *files;              /* [n_shards] parsed headers, entries sorted by name */
    unsigned char *opened;     /* [n_shards] 1 once mapped */
    ck_gguf_weights *gguf;     /* a GGUF model instead of safetensors (then only this is set) */
} ck_weights;

/* Opens DIR/model.safetensors.index.json (shards are mapped on demand), else DIR/model.safetensors; or,
 * when DIR is a GGUF model (ck_gguf_locate: a .gguf file, or a directory holding one and no
 * config.json), the GGUF file with its tensors under their HF names (gguf_model.h). */
int ck_weights_open(const char *dir, ck_weights *w, char *err, size_t errlen);
void ck_weights_close(ck_weights *w);

/* [p, p + n), the bytes of a tensor found here, has been copied elsewhere (a backend's own memory), so a
 * loaded model is not held twice: the pages of the file mapping it lies in leave the process's memory
 * (ck_map_drop), and a GGUF tensor's converted copy is freed (ck_gguf_weights_drop). */
void ck_weights_drop(ck_weights *w, const void *p, size_t n);

/* Tensor names of the checkpoint, sorted: i < ck_weights_count(w). */
size_t ck_weights_count(const ck_weights *w);
const char *ck_weights_name(const ck_weights *w, size_t i);
/* Shards mapped so far. */
size_t ck_weights_mapped_shards(const ck_weights *w);

/* Finds `name`, mapping its shard when needed. Returns 1 and fills *t when present, 0 when absent, -1
 * (with err) when its shard cannot be opened, or it has a dtype we cannot compute with or more than
 * CK_MAX_DIMS dimensions. */
int ck_weights_find(ck_weights *w, const char *name, ck_tensor *t, char *err, size_t errlen);

#endif
