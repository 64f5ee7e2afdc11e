/* gguf_write.h — writes GGUF version 3 files (the layout ck_gguf_parse reads and llama.cpp loads):
 * metadata pairs in the order added, tensor infos, then each tensor's bytes at offsets aligned to 32.
 * The writer copies everything it is given; errors (out of memory) are sticky and reported by
 * ck_gguf_w_save, so a caller can add many pairs and check once. */
#ifndef CK_FORMAT_GGUF_WRITE_H
#define CK_FORMAT_GGUF_WRITE_H

#include "format/gguf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ck_gguf_w {
    uint8_t *kv;               /* encoded pairs */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    uint8_t *info;             /* encoded tensor infos */
    size_t info_len, info_cap;
    uint8_t *data;             /* tensor bytes, each padded to 32 */
    size_t data_len, data_cap;
    uint64_t n_tensors;
    int failed;
} ck_gguf_w;

void ck_gguf_w_init(ck_gguf_w *w);
void ck_gguf_w_free(ck_gguf_w *w);

void ck_gguf_w_u32(ck_gguf_w *w, const char *key, uint32_t v);
void ck_gguf_w_i32(ck_gguf_w *w, const char *key, int32_t v);
void ck_gguf_w_f32(ck_gguf_w *w, const char *key, float v);
void ck_gguf_w_bool(ck_gguf_w *w, const char *key, int v);
void ck_gguf_w_str(ck_gguf_w *w, const char *key, const char *s);
/* Arrays; strs[i] of lens[i] bytes (lens NULL: NUL-terminated). */
void ck_gguf_w_arr_str(ck_gguf_w *w, const char *key, const char *const *strs, const size_t *lens, size_t n);
void ck_gguf_w_arr_i32(ck_gguf_w *w, const char *key, const int32_t *v, size_t n);
void ck_gguf_w_arr_f32(ck_gguf_w *w, const char *key, const float *v, size_t n);
/* A raw pair: value type and its encoded bytes (for tests that write odd files). */
void ck_gguf_w_raw(ck_gguf_w *w, const char *key, uint32_t type, const void *bytes, size_t n);
/* Every metadata pair of a parsed file, as stored (to rewrite a file's tensors under its metadata; the
 * file's alignment must be the writer's 32). */
void ck_gguf_w_pairs_of(ck_gguf_w *w, const ck_gguf *g);

/* A tensor of ggml type `ggml_type` with ne[0..n_dims) (innermost first) and its nbytes of data. */
void ck_gguf_w_tensor(ck_gguf_w *w, const char *name, uint32_t ggml_type, int n_dims, const uint64_t *ne,
                      const void *data, size_t nbytes);

/* The whole file image (malloc'd) in *out, or -1 when an earlier call ran out of memory. */
int ck_gguf_w_image(const ck_gguf_w *w, uint8_t **out, size_t *len);
/* Writes the file; -1 with err when it cannot. */
int ck_gguf_w_save(const ck_gguf_w *w, const char *path, char *err, size_t errlen);

#endif
