/* push.c — zero-config weight push (see push.h and docs/protocol.md, "Weight push").
 *
 * Plan: the small files are mapped whole; model.safetensors is assembled from a header built here (u64
 * length, JSON with dtype/shape/data_offsets in name order, spaces up to a multiple of 8) and one segment
 * per tensor pointing into the source shard's mapping, so a plan costs the header plus the segment
 * tables. Sizes and SHA-256 are computed at plan time.
 *
 * Master: after HAVE, each file's missing tail goes out in order in chunks of CK_PUSH_CHUNK raw bytes; a
 * chunk that lies in one segment is sent from the mapping, one that straddles segments is gathered into a
 * scratch buffer. zstd (level 1) is used when it saves at least 10 %.
 *
 * Worker: files live in the model directory as <name> (complete and verified) or <name>.partial (being
 * received), with <name>.partial.sha256 naming the hash the partial is meant to reach, so a partial left
 * by a push of other contents (another layer range, another revision) is restarted, not continued. A
 * PUSH must continue its file exactly where the partial ends; its payload is decompressed to exactly
 * raw_len bytes and its CRC checked before it is written. At PUSH_DONE every file is fsynced, its size
 * and SHA-256 checked, renamed into place and the directory fsynced: a file under its final name is
 * always complete and verified. */
#include "cluster/push.h"

#include "base/crc32.h"
#include "base/err.h"
#include "base/file.h"
#include "base/grow.h"
#include "base/sha256.h"
#include "cluster/node.h"
#include "format/gguf_model.h"
#include "hub/paths.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zstd.h>

#define SMALL_MSG_MAX (1u << 16)        /* ASSIGN, HAVE, PUSH_DONE, READY, ERROR all fit */
#define SMALL_FILE_MAX ((size_t)64 << 20) /* config / tokenizer files */
#define MAX_RANGE_LAYERS 65536

/* ---- plan ---- */

/* A growing text buffer for the safetensors header; `bad` sticks once an allocation failed. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int bad;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->bad) return;
    char *np = ck_grow(b->p, &b->cap, b->len + n + 1, 1, 4096);
    if (!np) {
        b->bad = 1;
        return;
    }
    b->p = np;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) b->bad = 1;
    else sb_add(b, tmp, (size_t)n);
}

/* s as a JSON string. */
static void sb_json_str(sbuf *b, const char *s) {
    sb_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            sb_add(b, e, 2);
        } else if (ch < 0x20)
            sb_printf(b, "\\u%04x", ch);
        else
            sb_add(b, (const char *)&ch, 1);
    }
    sb_add(b, "\"", 1);
}

/* 1 when name is "<prefix>.N.<rest>" with first <= N <= last; *layer gets N. */
static int layer_of(const char *name, const char *prefix, size_t plen, int64_t first, int64_t last, int64_t *layer) {
    if (strncmp(name, prefix, plen) || name[plen] != '.') return 0;
    const char *s = name + plen + 1;
    int64_t n = 0;
    size_t digits = 0;
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (n > (INT64_MAX - 9) / 10) return 0;
        n = n * 10 + (*s - '0');
    }
    if (!digits || *s != '.' || n < first || n > last) return 0;
    *layer = n;
    return 1;
}

static ck_push_file *add_file(ck_push_plan *p, const char *name) {
    ck_push_file *f = &p->files[p->n_files++];
    snprintf(f->name, sizeof f->name, "%s", name);
    return f;
}

/* Maps DIR/name as one segment of a new file; absent optional files are skipped. */
static int plan_small(ck_push_plan *p, const char *dir, const char *name, int required, char *err, size_t errlen) {
    char path[CK_PATH_MAX];
    if (ck_path_join(path, sizeof path, dir, name, err, errlen) != 0) return -1;
    if (!required && !ck_path_exists_any(path)) return 0;
    if (ck_path_check_file(path, err, errlen) != 0) return -1;
    ck_map *m = &p->maps[p->n_files];
    if (ck_map_open(path, m, err, errlen) != 0) return -1;
    if (m->size > SMALL_FILE_MAX) return ck_err(err, errlen, "%s is %zu bytes, over the limit for a push", path, m->size);
    ck_push_file *f = add_file(p, name);
    if (!(f->segs = calloc(1, sizeof *f->segs))) return ck_err(err, errlen, "out of memory");
    f->n_segs = 1;
    f->segs[0] = (ck_push_seg){m->data, m->size, 0};
    f->size = m->size;
    return 0;
}

/* One tensor of the range: its view and its bytes. */
typedef struct tensor_ref {
    const char *name;
    ck_tensor t;
    size_t nbytes;
} tensor_ref;

/* Finds the range's tensors (mapping only their shards) into *refs, checking every layer has some. */
static int collect_tensors(ck_push_plan *p, const char *prefix, int64_t first, int64_t last, tensor_ref **refs,
                           size_t *n, char *err, size_t errlen) {
    ck_weights *w = &p->weights;
    size_t count = ck_weights_count(w), plen = strlen(prefix), nl = (size_t)(last - first + 1);
    unsigned char *seen = calloc(nl, 1);
    tensor_ref *v = calloc(count ? count : 1, sizeof *v);
    int rc = seen && v ? 0 : ck_err(err, errlen, "out of memory");
    *n = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const char *name = ck_weights_name(w, i);
        int64_t layer;
        if (!layer_of(name, prefix, plen, first, last, &layer)) continue;
        tensor_ref *r = &v[(*n)++];
        r->name = name;
        int found = ck_weights_find(w, name, &r->t, err, errlen);
        if (found == 0) rc = ck_err(err, errlen, "tensor '%s' is listed but cannot be found", name);
        else if (found < 0) rc = -1;
        else if (ck_dtype_row_bytes(r->t.dtype, ck_tensor_numel(&r->t), &r->nbytes) != 0)
            rc = ck_err(err, errlen, "tensor '%s': size overflows", name);
        seen[layer - first] = 1;
    }
    for (size_t l = 0; rc == 0 && l < nl; l++)
        if (!seen[l])
            rc = ck_err(err, errlen, "no tensors named %s.%" PRId64 ".* in %s (is the range inside the model?)", prefix,
                        first + (int64_t)l, p->weights.dir);
    free(seen);
    if (rc != 0) free(v);
    else *refs = v;
    return rc;
}

/* The header of model.safetensors for refs[0..n), with data offsets in that order, into p->st_header. */
static int build_header(ck_push_plan *p, const tensor_ref *refs, size_t n, char *err, size_t errlen) {
    sbuf b = {0};
    sb_add(&b, "{\"__metadata__\":{\"format\":\"pt\"}", 31);
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const tensor_ref *r = &refs[i];
        sb_add(&b, ",", 1);
        sb_json_str(&b, r->name);
        sb_printf(&b, ":{\"dtype\":\"%s\",\"shape\":[", ck_dtype_name(r->t.dtype));
        for (int d = 0; d < r->t.ndim; d++) sb_printf(&b, "%s%" PRIu64, d ? "," : "", r->t.shape[d]);
        sb_printf(&b, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + r->nbytes);
        off += r->nbytes;
    }
    sb_add(&b, "}", 1);
    while (!b.bad && b.len % 8) sb_add(&b, " ", 1);
    if (b.bad) {
        free(b.p);
        return ck_err(err, errlen, "out of memory");
    }
    if (!(p->st_header = malloc(8 + b.len))) {
        free(b.p);
        return ck_err(err, errlen, "out of memory");
    }
    for (int i = 0; i < 8; i++) p->st_header[i] = (uint8_t)((uint64_t)b.len >> (8 * i));
    memcpy(p->st_header + 8, b.p, b.len);
    p->st_header_len = 8 + b.len;
    free(b.p);
    return 0;
}

/* model.safetensors of the range: the header, then one segment per non-empty tensor. */
static int plan_weights(ck_push_plan *p, const char *dir, const char *prefix, int64_t first, int64_t last, char *err,
                        size_t errlen) {
    if (ck_weights_open(dir, &p->weights, err, errlen) != 0) return -1;
    p->weights_open = 1;
    tensor_ref *refs = NULL;
    size_t n = 0;
    if (collect_tensors(p, prefix, first, last, &refs, &n, err, errlen) != 0) return -1;
    int rc = build_header(p, refs, n, err, errlen);
    ck_push_file *f = rc ? NULL : add_file(p, "model.safetensors");
    if (f && !(f->segs = calloc(n + 1, sizeof *f->segs))) rc = ck_err(err, errlen, "out of memory");
    if (rc == 0) {
        f->segs[f->n_segs++] = (ck_push_seg){p->st_header, p->st_header_len, 0};
        uint64_t off = p->st_header_len;
        for (size_t i = 0; i < n; i++) {
            if (!refs[i].nbytes) continue;
            f->segs[f->n_segs++] = (ck_push_seg){refs[i].t.data, refs[i].nbytes, off};
            off += refs[i].nbytes;
        }
        f->size = off;
        p->n_tensors = n;
    }
    free(refs);
    return rc;
}

static void put_le(sbuf *b, uint64_t v, int bytes) {
    char c[8];
    for (int i = 0; i < bytes; i++) c[i] = (char)(v >> (8 * i));
    sb_add(b, c, (size_t)bytes);
}

/* Whether a GGUF tensor belongs in the model.gguf of layers [first, last]: blk.N.* with N in the range (the
 * layer in *layer), and the tensors every layer uses (rope_freqs.weight), but not the embedding, the final
 * norm or the output head (*layer = -1). */
static int gguf_wanted(const char *name, int64_t first, int64_t last, int64_t *layer) {
    *layer = -1;
    if (!strncmp(name, "blk.", 4)) return layer_of(name, "blk", 3, first, last, layer);
    return strcmp(name, "token_embd.weight") && strcmp(name, "output.weight") && strcmp(name, "output_norm.weight");
}

/* model.gguf of the range from the GGUF source at path: magic, the source's version, the range's tensor
 * count and the source's metadata count, the metadata as stored, the infos of the tensors gguf_wanted
 * picks (in the source's order, offsets laid out again at its alignment), zeros up to the alignment;
 * then one segment per tensor into the mapping and zero segments between them. */
static int plan_gguf(ck_push_plan *p, const char *path, int64_t first, int64_t last, char *err, size_t errlen) {
    if (ck_gguf_open(path, &p->gguf, err, errlen) != 0) return -1;
    p->gguf_open = 1;
    const ck_gguf *g = &p->gguf.g;
    uint64_t al = g->alignment, n = 0, off = 0;
    size_t nl = (size_t)(last - first + 1);
    unsigned char *seen = calloc(nl, 1);
    size_t *sel = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *sel);
    p->zeros = calloc(1, (size_t)al);
    int rc = seen && sel && p->zeros ? 0 : ck_err(err, errlen, "out of memory");
    for (size_t i = 0; rc == 0 && i < g->n_tensors; i++) {
        int64_t layer;
        if (!gguf_wanted(g->tensors[i].name, first, last, &layer)) continue;
        sel[n++] = i;
        if (layer >= 0) seen[layer - first] = 1;
    }
    for (size_t l = 0; rc == 0 && l < nl; l++)
        if (!seen[l])
            rc = ck_err(err, errlen, "no tensors named blk.%" PRId64 ".* in %s (is the range inside the model?)",
                        first + (int64_t)l, path);
    sbuf b = {0};
    sb_add(&b, "GGUF", 4);
    put_le(&b, g->version, 4);
    put_le(&b, n, 8);
    put_le(&b, g->n_kv, 8);
    sb_add(&b, (const char *)g->meta, g->meta_len);
    for (size_t k = 0; rc == 0 && k < n; k++) {
        const ck_gguf_tensor *t = &g->tensors[sel[k]];
        put_le(&b, strlen(t->name), 8);
        sb_add(&b, t->name, strlen(t->name));
        put_le(&b, (uint64_t)t->n_dims, 4);
        for (int d = 0; d < t->n_dims; d++) put_le(&b, t->ne[d], 8);
        put_le(&b, t->ggml_type, 4);
        put_le(&b, off, 8);
        off += (t->nbytes + al - 1) / al * al;
    }
    while (!b.bad && b.len % al) sb_add(&b, "", 1);
    if (rc == 0 && b.bad) rc = ck_err(err, errlen, "out of memory");
    ck_push_file *f = rc ? NULL : add_file(p, "model.gguf");
    if (f && !(f->segs = calloc(2 * n + 1, sizeof *f->segs))) rc = ck_err(err, errlen, "out of memory");
    if (rc == 0) {
        p->st_header = (uint8_t *)b.p, p->st_header_len = b.len, b.p = NULL;
        f->segs[f->n_segs++] = (ck_push_seg){p->st_header, p->st_header_len, 0};
        uint64_t at = p->st_header_len;
        for (size_t k = 0; k < n; k++) {
            const ck_gguf_tensor *t = &g->tensors[sel[k]];
            uint64_t pad = (t->nbytes + al - 1) / al * al - t->nbytes;
            if (t->nbytes) f->segs[f->n_segs++] = (ck_push_seg){t->data, t->nbytes, at};
            if (pad) f->segs[f->n_segs++] = (ck_push_seg){p->zeros, pad, at + t->nbytes};
            at += t->nbytes + pad;
        }
        f->size = at;
        p->n_tensors = n;
    }
    free(b.p), free(seen), free(sel);
    return rc;
}

int ck_push_plan_build(const char *model_dir, const char *layer_prefix, int64_t first, int64_t last,
                       ck_push_plan **out, char *err, size_t errlen) {
    *out = NULL;
    if (!layer_prefix || !*layer_prefix) return ck_err(err, errlen, "push plan: no layer prefix");
    if (first < 0 || last < first || last >= (int64_t)UINT32_MAX || last - first >= MAX_RANGE_LAYERS)
        return ck_err(err, errlen, "push plan: bad layer range %" PRId64 "-%" PRId64, first, last);
    ck_push_plan *p = calloc(1, sizeof *p);
    if (!p) return ck_err(err, errlen, "out of memory");
    static const char *const small[] = {"config.json", "generation_config.json", "tokenizer.json",
                                        "tokenizer_config.json"};
    char gguf[CK_PATH_MAX];
    int rc = ck_gguf_locate(model_dir, gguf, sizeof gguf, err, errlen);
    if (rc == 1) rc = plan_gguf(p, gguf, first, last, err, errlen);
    else if (rc == 0) { /* an HF checkpoint */
        for (size_t i = 0; rc == 0 && i < sizeof small / sizeof small[0]; i++)
            rc = plan_small(p, model_dir, small[i], i == 0, err, errlen);
        if (rc == 0) rc = plan_weights(p, model_dir, layer_prefix, first, last, err, errlen);
    }
    for (size_t i = 0; rc == 0 && i < p->n_files; i++) {
        ck_push_file *f = &p->files[i];
        ck_sha256 h;
        ck_sha256_init(&h);
        for (size_t s = 0; s < f->n_segs; s++) ck_sha256_update(&h, f->segs[s].data, (size_t)f->segs[s].len);
        ck_sha256_final(&h, f->sha256);
        p->total_bytes += f->size;
    }
    if (rc != 0) {
        ck_push_plan_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

void ck_push_plan_free(ck_push_plan *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_files; i++) free(p->files[i].segs);
    for (size_t i = 0; i < CK_WIRE_MAX_FILES; i++) ck_map_close(&p->maps[i]);
    if (p->weights_open) ck_weights_close(&p->weights);
    if (p->gguf_open) ck_gguf_close(&p->gguf);
    free(p->st_header);
    free(p->zeros);
    free(p);
}

/* ---- master ---- */

/* Points *out at bytes [off, off + len) of f: into a segment when they lie in one, else gathered into
 * scratch (at least len bytes). */
static const uint8_t *file_bytes(const ck_push_file *f, uint64_t off, size_t len, uint8_t *scratch) {
    size_t lo = 0, hi = f->n_segs;
    while (hi - lo > 1) { /* the last segment starting at or before off */
        size_t mid = (lo + hi) / 2;
        if (f->segs[mid].offset <= off) lo = mid;
        else hi = mid;
    }
    const ck_push_seg *s = &f->segs[lo];
    if (off - s->offset + len <= s->len) return s->data + (off - s->offset);
    size_t done = 0;
    for (size_t i = lo; done < len && i < f->n_segs; i++) {
        s = &f->segs[i];
        uint64_t from = off + done - s->offset, take = s->len - from;
        if (take > len - done) take = len - done;
        memcpy(scratch + done, s->data + from, (size_t)take);
        done += (size_t)take;
    }
    return scratch;
}

/* ck_msg_send with the buffer grown for a payload of data_len bytes first. */
static int send_big(ck_conn *c, ck_msgbuf *b, const ck_msg *m, size_t data_len, int timeout_ms, char *err,
                    size_t errlen) {
    size_t need = 64 + 4 * (size_t)CK_WIRE_MAX_STR + data_len;
    void *p = ck_grow(b->p, &b->cap, need, 1, 4096);
    if (!p) return ck_err(err, errlen, "out of memory");
    b->p = p;
    return ck_msg_send(c, b, m, timeout_ms, err, errlen);
}

/* After a failed send: the worker may have said why before it closed. */
static int worker_error(ck_conn *c, char *err, size_t errlen) {
    ck_msg m;
    char ignored[256];
    if (ck_msg_recv(c, NULL, SMALL_MSG_MAX, &m, 2000, ignored, sizeof ignored) == 0 && m.type == CK_MSG_ERROR)
        ck_err(err, errlen, "worker %s: %.*s", ck_conn_peer(c), m.u.error.message.n, m.u.error.message.p);
    return -1;
}

/* Sends the ASSIGN of plan p and checks the HAVE reply into present[]. */
static int assign(ck_conn *c, ck_msgbuf *b, const ck_push_plan *p, const uint8_t model_id[32], int64_t first,
                  int64_t last, uint64_t *present, char *err, size_t errlen) {
    ck_msg m = {.type = CK_MSG_ASSIGN};
    memcpy(m.u.assign.model_id, model_id, 32);
    m.u.assign.first_layer = (uint32_t)first;
    m.u.assign.last_layer = (uint32_t)last;
    m.u.assign.n_files = (uint16_t)p->n_files;
    for (size_t i = 0; i < p->n_files; i++) {
        ck_wire_file *f = &m.u.assign.files[i];
        f->name = (ck_wire_str){p->files[i].name, (uint16_t)strlen(p->files[i].name)};
        f->size = p->files[i].size;
        memcpy(f->sha256, p->files[i].sha256, 32);
    }
    if (ck_msg_send(c, b, &m, CK_HANDSHAKE_MS, err, errlen) != 0) return -1;
    if (ck_msg_recv(c, NULL, SMALL_MSG_MAX, &m, CK_PUSH_VERIFY_MS, err, errlen) != 0) return -1;
    if (m.type == CK_MSG_ERROR)
        return ck_err(err, errlen, "worker %s refused the push: %.*s", ck_conn_peer(c), m.u.error.message.n,
                      m.u.error.message.p);
    if (m.type != CK_MSG_HAVE)
        return ck_err(err, errlen, "worker %s answered ASSIGN with %s, not HAVE", ck_conn_peer(c),
                      ck_msg_name(m.type));
    if (m.u.have.n_files != p->n_files)
        return ck_err(err, errlen, "worker %s: HAVE lists %u files, ASSIGN had %zu", ck_conn_peer(c),
                      (unsigned)m.u.have.n_files, p->n_files);
    for (size_t i = 0; i < p->n_files; i++) {
        if (m.u.have.present[i] > p->files[i].size)
            return ck_err(err, errlen, "worker %s: HAVE says %" PRIu64 " bytes of %s, which has %" PRIu64,
                          ck_conn_peer(c), m.u.have.present[i], p->files[i].name, p->files[i].size);
        present[i] = m.u.have.present[i];
    }
    return 0;
}

/* Working state of one ck_push_send. */
typedef struct sender {
    ck_conn *c;
    ck_msgbuf b;
    ZSTD_CCtx *zc;
    uint8_t *zbuf, *scratch;
    size_t zcap;
} sender;

/* One PUSH of f's bytes [off, off + len). */
static int send_chunk(sender *s, const ck_push_file *f, uint16_t idx, uint64_t off, size_t len, char *err,
                      size_t errlen) {
    const uint8_t *raw = file_bytes(f, off, len, s->scratch);
    ck_msg m = {.type = CK_MSG_PUSH};
    m.u.push.file = idx;
    m.u.push.offset = off;
    m.u.push.raw_len = (uint32_t)len;
    m.u.push.crc32 = ck_crc32(0, raw, len);
    m.u.push.codec = CK_WIRE_CODEC_RAW;
    m.u.push.data = raw;
    m.u.push.data_len = len;
    size_t z = ZSTD_compressCCtx(s->zc, s->zbuf, s->zcap, raw, len, 1);
    if (!ZSTD_isError(z) && z > 0 && 10 * (uint64_t)z <= 9 * (uint64_t)len) {
        m.u.push.codec = CK_WIRE_CODEC_ZSTD;
        m.u.push.data = s->zbuf;
        m.u.push.data_len = z;
    }
    if (send_big(s->c, &s->b, &m, m.u.push.data_len, CK_PUSH_CHUNK_MS, err, errlen) != 0)
        return worker_error(s->c, err, errlen);
    return 0;
}

/* PUSH_DONE, then READY or the worker's ERROR. */
static int finish(sender *s, char *err, size_t errlen) {
    ck_msg m = {.type = CK_MSG_PUSH_DONE};
    if (ck_msg_send(s->c, &s->b, &m, CK_PUSH_CHUNK_MS, err, errlen) != 0) return worker_error(s->c, err, errlen);
    if (ck_msg_recv(s->c, NULL, SMALL_MSG_MAX, &m, CK_PUSH_READY_MS, err, errlen) != 0) return -1;
    if (m.type == CK_MSG_ERROR)
        return ck_err(err, errlen, "worker %s: %.*s", ck_conn_peer(s->c), m.u.error.message.n, m.u.error.message.p);
    if (m.type != CK_MSG_READY)
        return ck_err(err, errlen, "worker %s answered PUSH_DONE with %s, not READY", ck_conn_peer(s->c),
                      ck_msg_name(m.type));
    return 0;
}

int ck_push_send(ck_conn *c, const ck_push_plan *p, const uint8_t model_id[32], int64_t first, int64_t last,
                 void (*progress)(void *user, uint64_t done, uint64_t total), void *user, uint64_t stop_after_bytes,
                 char *err, size_t errlen) {
    if (!c || !p || p->n_files == 0 || p->n_files > CK_WIRE_MAX_FILES)
        return ck_err(err, errlen, "push: no connection or an empty plan");
    if (first < 0 || last < first || last > (int64_t)UINT32_MAX)
        return ck_err(err, errlen, "push: bad layer range %" PRId64 "-%" PRId64, first, last);
    uint64_t present[CK_WIRE_MAX_FILES], done = 0, sent = 0;
    sender s = {.c = c, .zcap = ZSTD_compressBound(CK_PUSH_CHUNK)};
    s.zc = ZSTD_createCCtx();
    s.zbuf = malloc(s.zcap);
    s.scratch = malloc(CK_PUSH_CHUNK);
    int rc = s.zc && s.zbuf && s.scratch ? 0 : ck_err(err, errlen, "out of memory");
    if (rc == 0) rc = assign(c, &s.b, p, model_id, first, last, present, err, errlen);
    for (size_t i = 0; rc == 0 && i < p->n_files; i++) done += present[i];
    if (rc == 0 && progress) progress(user, done, p->total_bytes);
    for (size_t i = 0; rc == 0 && i < p->n_files; i++) {
        const ck_push_file *f = &p->files[i];
        for (uint64_t off = present[i]; rc == 0 && off < f->size;) {
            uint64_t len = f->size - off < CK_PUSH_CHUNK ? f->size - off : CK_PUSH_CHUNK;
            if (stop_after_bytes && len > stop_after_bytes - sent) len = stop_after_bytes - sent;
            rc = send_chunk(&s, f, (uint16_t)i, off, (size_t)len, err, errlen);
            off += len, done += len, sent += len;
            if (rc == 0 && progress) progress(user, done, p->total_bytes);
            if (rc == 0 && stop_after_bytes && sent >= stop_after_bytes)
                rc = ck_err(err, errlen, "push stopped after %" PRIu64 " bytes (test hook)", sent);
        }
    }
    if (rc == 0) rc = finish(&s, err, errlen);
    ck_msgbuf_free(&s.b);
    ZSTD_freeCCtx(s.zc);
    free(s.zbuf);
    free(s.scratch);
    return rc;
}

/* ---- worker ---- */

/* One assigned file at the worker. */
typedef struct rx_file {
    char name[CK_WIRE_MAX_FILE_NAME + 1];
    char final[CK_PATH_MAX], partial[CK_PATH_MAX], want[CK_PATH_MAX]; /* <name>, .partial, .partial.sha256 */
    uint64_t size, have;      /* have: bytes of the partial (or size when complete) */
    char sha_hex[65];
    int complete;             /* the final file is there and verified */
    int fd;                   /* the partial, open for writing, or -1 */
} rx_file;

/* Working state of one ck_push_receive. */
typedef struct receiver {
    ck_conn *c;
    ck_msgbuf b;
    rx_file files[CK_WIRE_MAX_FILES];
    size_t n_files;
    char dir[CK_PATH_MAX];
    int lock_fd;
    ZSTD_DCtx *zd;
    uint8_t *raw;
    size_t raw_cap;
    int replaced; /* a file was renamed into place */
} receiver;

/* mkdir -p with mode 0700 for every directory created. */
static int mkdir_p(const char *path, char *err, size_t errlen) {
    char tmp[CK_PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return ck_err(err, errlen, "path too long: %s", path);
    for (char *s = tmp + 1;; s++) {
        if (*s != '/' && *s) continue;
        char keep = *s;
        *s = 0;
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return ck_err(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        *s = keep;
        if (!keep) break;
    }
    if (!ck_is_dir(path)) return ck_err(err, errlen, "%s is not a directory", path);
    return 0;
}

/* Writes the whole of text to path (small files). */
static int write_small(const char *path, const char *text, char *err, size_t errlen) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t n = strlen(text);
    if (fd < 0) return ck_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
    ssize_t w = write(fd, text, n);
    int e = errno;
    close(fd);
    if (w != (ssize_t)n) return ck_err(err, errlen, "cannot write %s: %s", path, w < 0 ? strerror(e) : "short write");
    return 0;
}

/* 1 when the small file at path holds exactly text. */
static int holds(const char *path, const char *text) {
    char *have = NULL;
    size_t len = 0;
    char ignored[64];
    int same = ck_file_read_max(path, 256, &have, &len, ignored, sizeof ignored) == 0 && len == strlen(text) &&
               !memcmp(have, text, len);
    free(have);
    return same;
}

/* Decides what the worker already holds of f (see push.h) and leaves a partial that may be continued,
 * with its .sha256 marker, for anything incomplete. */
static int file_state(rx_file *f, char *err, size_t errlen) {
    struct stat st;
    char hex[65], marker[80];
    f->have = 0;
    f->complete = 0;
    if (stat(f->final, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == f->size &&
        ck_sha256_file(f->final, hex, err, errlen) == 0 && !strcmp(hex, f->sha_hex)) {
        f->complete = 1;
        f->have = f->size;
        unlink(f->partial);
        unlink(f->want);
        return 0;
    }
    snprintf(marker, sizeof marker, "%s\n", f->sha_hex);
    int cont = stat(f->partial, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= f->size &&
               holds(f->want, marker);
    if (cont) {
        f->have = (uint64_t)st.st_size;
        return 0;
    }
    if (unlink(f->partial) != 0 && errno != ENOENT)
        return ck_err(err, errlen, "cannot remove %s: %s", f->partial, strerror(errno));
    return write_small(f->want, marker, err, errlen);
}

/* The assignment's directory, locked, and the state of each file in it. */
static int open_dir(receiver *r, const ck_msg *m, const char *cache_root, const char *tag, char *err, size_t errlen) {
    char id16[17], repo[300], leaf[300], models[CK_PATH_MAX];
    ck_model_id_short(m->u.assign.model_id, id16);
    snprintf(repo, sizeof repo, "%s/%s", tag, id16);
    snprintf(leaf, sizeof leaf, "%s--%s", tag, id16);
    if (!ck_hub_repo_id_full(repo)) return ck_err(err, errlen, "bad cluster tag '%s'", tag);
    if (ck_path_join(models, sizeof models, cache_root, "models", err, errlen) != 0 ||
        ck_path_join(r->dir, sizeof r->dir, models, leaf, err, errlen) != 0 || mkdir_p(r->dir, err, errlen) != 0)
        return -1;
    char lock[CK_PATH_MAX];
    if (ck_path_join(lock, sizeof lock, r->dir, ".push.lock", err, errlen) != 0) return -1;
    if ((r->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return ck_err(err, errlen, "cannot create %s: %s", lock, strerror(errno));
    if (flock(r->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return ck_err(err, errlen, "another push into %s is in progress", r->dir);
    return 0;
}

/* Checks the ASSIGN's files (unique names, none a partial's) and sets up r->files. */
static int take_files(receiver *r, const ck_msg *m, char *err, size_t errlen) {
    r->n_files = m->u.assign.n_files;
    for (size_t i = 0; i < r->n_files; i++) {
        const ck_wire_file *wf = &m->u.assign.files[i];
        rx_file *f = &r->files[i];
        snprintf(f->name, sizeof f->name, "%.*s", wf->name.n, wf->name.p);
        size_t n = strlen(f->name);
        if ((n >= 8 && !strcmp(f->name + n - 8, ".partial")) || (n >= 15 && !strcmp(f->name + n - 15, ".partial.sha256")) ||
            !strcmp(f->name, ".push.lock"))
            return ck_err(err, errlen, "ASSIGN: file name %s is reserved", f->name);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(r->files[j].name, f->name)) return ck_err(err, errlen, "ASSIGN: file %s listed twice", f->name);
        f->size = wf->size;
        ck_sha256_to_hex(wf->sha256, f->sha_hex);
        char path[CK_PATH_MAX];
        if (ck_path_join(path, sizeof path, r->dir, f->name, err, errlen) != 0) return -1;
        size_t pl = strlen(path);
        if (pl + sizeof ".partial.sha256" > sizeof f->want) return ck_err(err, errlen, "path too long in %s", r->dir);
        memcpy(f->final, path, pl + 1);
        memcpy(f->partial, path, pl);
        memcpy(f->partial + pl, ".partial", sizeof ".partial");
        memcpy(f->want, path, pl);
        memcpy(f->want + pl, ".partial.sha256", sizeof ".partial.sha256");
    }
    return 0;
}

/* Refuses a push that cannot fit on the disk. */
static int check_space(receiver *r, char *err, size_t errlen) {
    uint64_t need = 0;
    for (size_t i = 0; i < r->n_files; i++) need += r->files[i].size - r->files[i].have;
    struct statvfs vs;
    if (statvfs(r->dir, &vs) != 0) return 0; /* unknown: the writes will tell */
    uint64_t avail = (uint64_t)vs.f_bavail * vs.f_frsize;
    if (need > avail) {
        char a[32], b[32];
        ck_format_bytes(need, a, sizeof a);
        ck_format_bytes(avail, b, sizeof b);
        return ck_err(err, errlen, "not enough disk space in %s: the push needs %s more, %s free", r->dir, a, b);
    }
    return 0;
}

/* Writes len bytes at off of f's partial. */
static int write_at(rx_file *f, const uint8_t *data, size_t len, uint64_t off, char *err, size_t errlen) {
    if (f->fd < 0) {
        if ((f->fd = open(f->partial, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0)
            return ck_err(err, errlen, "cannot open %s: %s", f->partial, strerror(errno));
        struct stat st;
        if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != f->have)
            return ck_err(err, errlen, "%s changed during the push", f->partial);
    }
    while (len) {
        ssize_t w = pwrite(f->fd, data, len, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == ENOSPC || errno == EDQUOT))
            return ck_err(err, errlen, "disk full while writing %s", f->partial);
        if (w <= 0) return ck_err(err, errlen, "cannot write %s: %s", f->partial, w < 0 ? strerror(errno) : "no progress");
        data += w, len -= (size_t)w, off += (uint64_t)w;
    }
    return 0;
}

/* Checks and writes one PUSH. */
static int take_push(receiver *r, const ck_msg *m, char *err, size_t errlen) {
    uint16_t i = m->u.push.file;
    uint32_t raw = m->u.push.raw_len;
    if (i >= r->n_files) return ck_err(err, errlen, "PUSH for file %u of %zu", (unsigned)i, r->n_files);
    rx_file *f = &r->files[i];
    if (f->complete) return ck_err(err, errlen, "PUSH for %s, which is complete", f->name);
    if (m->u.push.offset != f->have)
        return ck_err(err, errlen, "PUSH for %s at offset %" PRIu64 ", expected %" PRIu64, f->name, m->u.push.offset,
                      f->have);
    if (raw > f->size - f->have)
        return ck_err(err, errlen, "PUSH for %s runs past its size %" PRIu64 " (offset %" PRIu64 " + %" PRIu32 ")",
                      f->name, f->size, f->have, raw);
    const uint8_t *data = m->u.push.data;
    if (m->u.push.codec == CK_WIRE_CODEC_ZSTD) {
        uint8_t *nb = ck_grow(r->raw, &r->raw_cap, raw, 1, CK_PUSH_CHUNK);
        if (!nb) return ck_err(err, errlen, "out of memory");
        r->raw = nb;
        size_t z = ZSTD_decompressDCtx(r->zd, r->raw, raw, m->u.push.data, m->u.push.data_len);
        if (ZSTD_isError(z)) return ck_err(err, errlen, "PUSH for %s: bad zstd data: %s", f->name, ZSTD_getErrorName(z));
        if (z != raw)
            return ck_err(err, errlen, "PUSH for %s: zstd data gave %zu bytes, raw_len says %" PRIu32, f->name, z, raw);
        data = r->raw;
    }
    uint32_t crc = ck_crc32(0, data, raw);
    if (crc != m->u.push.crc32)
        return ck_err(err, errlen, "PUSH for %s at offset %" PRIu64 ": CRC-32 %08" PRIx32 ", expected %08" PRIx32,
                      f->name, f->have, crc, m->u.push.crc32);
    if (write_at(f, data, raw, f->have, err, errlen) != 0) return -1;
    f->have += raw;
    return 0;
}

/* At PUSH_DONE: each incomplete file synced, checked and renamed into place. */
static int finish_file(rx_file *f, char *err, size_t errlen) {
    if (f->complete) return 0;
    if (f->fd < 0 && (f->fd = open(f->partial, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return ck_err(err, errlen, "cannot open %s: %s", f->partial, strerror(errno));
    struct stat st;
    if (fsync(f->fd) != 0) return ck_err(err, errlen, "cannot sync %s: %s", f->partial, strerror(errno));
    if (fstat(f->fd, &st) != 0) return ck_err(err, errlen, "cannot stat %s: %s", f->partial, strerror(errno));
    if ((uint64_t)st.st_size != f->size)
        return ck_err(err, errlen, "%s is incomplete after the push: %" PRIu64 " of %" PRIu64 " bytes", f->name,
                      (uint64_t)st.st_size, f->size);
    close(f->fd);
    f->fd = -1;
    char hex[65];
    if (ck_sha256_file(f->partial, hex, err, errlen) != 0) return -1;
    if (strcmp(hex, f->sha_hex)) {
        unlink(f->partial);
        unlink(f->want);
        return ck_err(err, errlen, "%s: SHA-256 mismatch after the push (got %.16s..., expected %.16s...); the partial "
                      "file was deleted, push again", f->name, hex, f->sha_hex);
    }
    if (rename(f->partial, f->final) != 0)
        return ck_err(err, errlen, "cannot rename %s to %s: %s", f->partial, f->final, strerror(errno));
    unlink(f->want);
    f->complete = 1;
    return 0;
}

static int sync_dir(const char *dir, char *err, size_t errlen) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ck_err(err, errlen, "cannot open %s: %s", dir, strerror(errno));
    int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : ck_err(err, errlen, "cannot sync %s: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

/* Receives PUSH messages until PUSH_DONE. */
static int receive_chunks(receiver *r, char *err, size_t errlen) {
    size_t max_frame = ck_wire_push_max_frame();
    for (;;) {
        ck_msg m;
        if (ck_msg_recv(r->c, NULL, max_frame, &m, CK_PUSH_CHUNK_MS, err, errlen) != 0) return -1;
        if (m.type == CK_MSG_PUSH_DONE) return 0;
        if (m.type == CK_MSG_ERROR)
            return ck_err(err, errlen, "master %s: %.*s", ck_conn_peer(r->c), m.u.error.message.n, m.u.error.message.p);
        if (m.type != CK_MSG_PUSH) return ck_err(err, errlen, "%s during a push", ck_msg_name(m.type));
        if (take_push(r, &m, err, errlen) != 0) return -1;
    }
}

/* The whole exchange after ASSIGN was received into *m. */
static int receive(receiver *r, const ck_msg *m, const char *cache_root, const char *tag, char *err, size_t errlen) {
    if (m->u.assign.first_layer > m->u.assign.last_layer)
        return ck_err(err, errlen, "ASSIGN: layer range %" PRIu32 "-%" PRIu32 " is empty", m->u.assign.first_layer,
                      m->u.assign.last_layer);
    if (open_dir(r, m, cache_root, tag, err, errlen) != 0 || take_files(r, m, err, errlen) != 0) return -1;
    ck_msg have = {.type = CK_MSG_HAVE};
    have.u.have.n_files = (uint16_t)r->n_files;
    for (size_t i = 0; i < r->n_files; i++) {
        if (file_state(&r->files[i], err, errlen) != 0) return -1;
        have.u.have.present[i] = r->files[i].have;
    }
    if (check_space(r, err, errlen) != 0 || ck_msg_send(r->c, &r->b, &have, CK_REPLY_MS, err, errlen) != 0 ||
        receive_chunks(r, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < r->n_files; i++) {
        r->replaced |= !r->files[i].complete;
        if (finish_file(&r->files[i], err, errlen) != 0) return -1;
    }
    if (sync_dir(r->dir, err, errlen) != 0) return -1;
    uint8_t id[32];
    for (size_t i = 0; i < r->n_files; i++)
        if ((!strcmp(r->files[i].name, "config.json") || !strcmp(r->files[i].name, "model.gguf")) &&
            (ck_model_id(r->dir, id, err, errlen) != 0 || memcmp(id, m->u.assign.model_id, 32)))
            return ck_err(err, errlen, "the pushed %s does not have the ASSIGN's model id", r->files[i].name);
    return 0;
}

int ck_push_receive(ck_conn *c, const ck_msg *assign, const char *cache_root, const char *cluster_tag,
                    char *model_dir, size_t cap, int64_t *first, int64_t *last, int *replaced, char *err,
                    size_t errlen) {
    receiver *r = calloc(1, sizeof *r);
    if (!r) return ck_err(err, errlen, "out of memory");
    r->c = c;
    r->lock_fd = -1;
    for (size_t i = 0; i < CK_WIRE_MAX_FILES; i++) r->files[i].fd = -1;
    int rc = 0;
    if (!cache_root || !*cache_root || !cluster_tag) rc = ck_err(err, errlen, "push: no cache directory or cluster tag");
    else if (!(r->zd = ZSTD_createDCtx())) rc = ck_err(err, errlen, "out of memory");
    else if (assign->type != CK_MSG_ASSIGN) rc = ck_err(err, errlen, "expected ASSIGN, got %s", ck_msg_name(assign->type));
    else rc = receive(r, assign, cache_root, cluster_tag, err, errlen);
    if (rc == 0 && snprintf(model_dir, cap, "%s", r->dir) >= (int)cap) rc = ck_err(err, errlen, "path too long: %s", r->dir);
    if (rc == 0) {
        *first = assign->u.assign.first_layer;
        *last = assign->u.assign.last_layer;
        *replaced = r->replaced;
    } else
        ck_msg_send_error(c, &r->b, CK_PUSH_ERROR_CODE, err);
    for (size_t i = 0; i < CK_WIRE_MAX_FILES; i++)
        if (r->files[i].fd >= 0) close(r->files[i].fd);
    if (r->lock_fd >= 0) close(r->lock_fd);
    ZSTD_freeDCtx(r->zd);
    ck_msgbuf_free(&r->b);
    free(r->raw);
    free(r);
    return rc;
}

int ck_push_ready(ck_conn *c, char *err, size_t errlen) {
    ck_msgbuf b = {0};
    ck_msg m = {.type = CK_MSG_READY};
    int rc = ck_msg_send(c, &b, &m, CK_REPLY_MS, err, errlen);
    ck_msgbuf_free(&b);
    return rc;
}
