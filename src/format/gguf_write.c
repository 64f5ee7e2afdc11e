/* gguf_write.c — GGUF v3 writer (see gguf_write.h). Three growable byte buffers (pairs, tensor infos,
 * data) are concatenated at save time: header, pairs, infos, padding to 32, data. */
#include "format/gguf_write.h"
#include "base/err.h"
#include "format/gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 32

static void put(ck_gguf_w *w, uint8_t **buf, size_t *len, size_t *cap, const void *p, size_t n) {
    if (w->failed) return;
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n) c *= 2;
        uint8_t *q = realloc(*buf, c);
        if (!q) {
            w->failed = 1;
            return;
        }
        *buf = q, *cap = c;
    }
    if (n) memcpy(*buf + *len, p, n);
    *len += n;
}

#define PUT_KV(w, p, n) put(w, &(w)->kv, &(w)->kv_len, &(w)->kv_cap, p, n)

static void put_u32(ck_gguf_w *w, uint32_t v) { PUT_KV(w, &v, 4); }
static void put_u64(ck_gguf_w *w, uint64_t v) { PUT_KV(w, &v, 8); }
static void put_str(ck_gguf_w *w, const char *s, size_t n) {
    put_u64(w, n);
    PUT_KV(w, s, n);
}

static void key(ck_gguf_w *w, const char *k, uint32_t type) {
    put_str(w, k, strlen(k));
    put_u32(w, type);
    w->n_kv++;
}

void ck_gguf_w_init(ck_gguf_w *w) { memset(w, 0, sizeof *w); }

void ck_gguf_w_free(ck_gguf_w *w) {
    free(w->kv);
    free(w->info);
    free(w->data);
    memset(w, 0, sizeof *w);
}

void ck_gguf_w_u32(ck_gguf_w *w, const char *k, uint32_t v) { key(w, k, CK_GGUF_U32), put_u32(w, v); }
void ck_gguf_w_i32(ck_gguf_w *w, const char *k, int32_t v) { key(w, k, CK_GGUF_I32), PUT_KV(w, &v, 4); }
void ck_gguf_w_f32(ck_gguf_w *w, const char *k, float v) { key(w, k, CK_GGUF_F32), PUT_KV(w, &v, 4); }
void ck_gguf_w_str(ck_gguf_w *w, const char *k, const char *s) { key(w, k, CK_GGUF_STRING), put_str(w, s, strlen(s)); }

void ck_gguf_w_bool(ck_gguf_w *w, const char *k, int v) {
    uint8_t b = v != 0;
    key(w, k, CK_GGUF_BOOL);
    PUT_KV(w, &b, 1);
}

void ck_gguf_w_raw(ck_gguf_w *w, const char *k, uint32_t type, const void *bytes, size_t n) {
    key(w, k, type);
    PUT_KV(w, bytes, n);
}

void ck_gguf_w_pairs_of(ck_gguf_w *w, const ck_gguf *g) {
    PUT_KV(w, g->meta, g->meta_len);
    w->n_kv += g->n_kv;
}

static void arr_head(ck_gguf_w *w, const char *k, uint32_t et, size_t n) {
    key(w, k, CK_GGUF_ARRAY);
    put_u32(w, et);
    put_u64(w, n);
}

void ck_gguf_w_arr_str(ck_gguf_w *w, const char *k, const char *const *strs, const size_t *lens, size_t n) {
    arr_head(w, k, CK_GGUF_STRING, n);
    for (size_t i = 0; i < n; i++) put_str(w, strs[i], lens ? lens[i] : strlen(strs[i]));
}

void ck_gguf_w_arr_i32(ck_gguf_w *w, const char *k, const int32_t *v, size_t n) {
    arr_head(w, k, CK_GGUF_I32, n);
    PUT_KV(w, v, n * 4);
}

void ck_gguf_w_arr_f32(ck_gguf_w *w, const char *k, const float *v, size_t n) {
    arr_head(w, k, CK_GGUF_F32, n);
    PUT_KV(w, v, n * 4);
}

void ck_gguf_w_tensor(ck_gguf_w *w, const char *name, uint32_t ggml_type, int n_dims, const uint64_t *ne,
                      const void *data, size_t nbytes) {
    uint64_t len = strlen(name), off = w->data_len;
    uint32_t nd = (uint32_t)n_dims;
    put(w, &w->info, &w->info_len, &w->info_cap, &len, 8);
    put(w, &w->info, &w->info_len, &w->info_cap, name, len);
    put(w, &w->info, &w->info_len, &w->info_cap, &nd, 4);
    put(w, &w->info, &w->info_len, &w->info_cap, ne, 8 * nd);
    put(w, &w->info, &w->info_len, &w->info_cap, &ggml_type, 4);
    put(w, &w->info, &w->info_len, &w->info_cap, &off, 8);
    static const uint8_t zeros[ALIGN];
    put(w, &w->data, &w->data_len, &w->data_cap, data, nbytes);
    put(w, &w->data, &w->data_len, &w->data_cap, zeros, (ALIGN - nbytes % ALIGN) % ALIGN);
    w->n_tensors++;
}

int ck_gguf_w_image(const ck_gguf_w *w, uint8_t **out, size_t *len) {
    *out = NULL;
    if (w->failed) return -1;
    size_t head = 4 + 4 + 8 + 8 + w->kv_len + w->info_len, pad = (ALIGN - head % ALIGN) % ALIGN;
    size_t n = head + pad + w->data_len;
    uint8_t *p = calloc(1, n ? n : 1);
    if (!p) return -1;
    uint32_t magic = 0x46554747u, version = 3;
    memcpy(p, &magic, 4);
    memcpy(p + 4, &version, 4);
    memcpy(p + 8, &w->n_tensors, 8);
    memcpy(p + 16, &w->n_kv, 8);
    if (w->kv_len) memcpy(p + 24, w->kv, w->kv_len);
    if (w->info_len) memcpy(p + 24 + w->kv_len, w->info, w->info_len);
    if (w->data_len) memcpy(p + head + pad, w->data, w->data_len);
    *out = p, *len = n;
    return 0;
}

int ck_gguf_w_save(const ck_gguf_w *w, const char *path, char *err, size_t errlen) {
    uint8_t *img;
    size_t n;
    if (ck_gguf_w_image(w, &img, &n) != 0) return ck_err(err, errlen, "%s: out of memory", path);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(img, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    free(img);
    return ok ? 0 : ck_err(err, errlen, "%s: cannot write: %s", path, strerror(errno));
}
