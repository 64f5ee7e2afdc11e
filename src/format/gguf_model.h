/* gguf_model.h — a GGUF file seen as an HF checkpoint, so the model code needs no GGUF knowledge:
 * the metadata becomes a config.json (architectures, sizes, RoPE, EOS ids), tensor names map to the HF
 * names of our families through one table (blk.N.attn_q.weight <-> model.layers.N.self_attn.q_proj.weight,
 * ...), and shapes are given outermost first. Llama-family files store the Q and K projections with the
 * rows of each head permuted for interleaved RoPE (llama.cpp's convert_hf_to_gguf `permute`); those are
 * un-permuted at load into owned copies (whole rows move, so quantized rows move as they are), after which
 * every weight is in HF layout. Qwen3.5 files (llama.cpp's qwen35 / qwen35moe) differ from HF in four
 * ways, each undone at load into an owned copy (the norm offset also in Gemma 3 files): the Gated DeltaNet value heads are tiled (head j * n_k + k
 * holds HF head k * (n_v / n_k) + j) in the V rows of in_proj_qkv and conv1d, the rows of in_proj_z/a/b,
 * A_log and dt_bias and the columns of out_proj (moved as whole head column groups; when a type's blocks
 * do not divide the head size, out_proj stays as stored and config.json says "linear_out_proj_tiled", so
 * the model reads its input in the file's order); A_log is stored as A = -exp(A_log); the (1 + w) RMSNorm
 * weights are stored as 1 + w; conv1d is [C, K] (HF [C, 1, K], the same bytes). Other tensors stay views
 * of the mapping, quantized types included; the stacked expert tensors of a mixture-of-experts file are
 * seen as one 2-D view per expert.
 * The converter (gguf_convert.c) uses the same tables in the other direction. */
#ifndef CK_FORMAT_GGUF_MODEL_H
#define CK_FORMAT_GGUF_MODEL_H

#include "format/gguf.h"
#include "tensor/tensor.h"

#include <stddef.h>

/* One architecture: GGUF general.architecture, HF architectures[0], model_type, whether its GGUF Q/K rows
 * are permuted, whether it is Qwen3.5's layout, whether its (1 + w) RMSNorm weights are stored as 1 + w,
 * and whether the converter writes it (the others are read only). */
typedef struct ck_gguf_arch {
    const char *gguf, *hf, *model_type;
    int permute_qk;
    int qwen35;
    int norm_plus_one;
    int write;
} ck_gguf_arch;

const ck_gguf_arch *ck_gguf_arch_by_gguf(const char *name, size_t len);
const ck_gguf_arch *ck_gguf_arch_by_hf(const char *hf_arch);
/* Comma-separated GGUF architectures we load, for error messages. */
const char *ck_gguf_archs_supported(void);

/* The pre-tokenizer regexes tokenizer.ggml.pre names ("qwen2", "qwen35", "llama-bpe"), as in their
 * tokenizer.json. */
extern const char ck_gguf_pre_qwen2[];
extern const char ck_gguf_pre_qwen35[];
extern const char ck_gguf_pre_llama3[];

/* Tensor names of architecture a: writes the mapped name into out and returns 1, or 0 when the name has
 * no mapping. */
int ck_gguf_name_to_hf(const ck_gguf_arch *a, const char *gguf_name, char *out, size_t cap);
int ck_gguf_name_from_hf(const ck_gguf_arch *a, const char *hf_name, char *out, size_t cap);
/* Experts: the HF name of expert e of a stacked blk.N.ffn_{gate,up,down}_exps.weight (1, or 0 when
 * the name is not one), and the other way (layer, expert and the stacked tensor's GGUF name). */
int ck_gguf_expert_name(const char *gguf_name, uint64_t e, char *out, size_t cap);
int ck_gguf_expert_from_hf(const char *hf_name, long *layer, long *expert, char *out, size_t cap);

/* Whether HF tensor name (under "model.") is one of architecture a's (1 + w) norms, which GGUF files store
 * as 1 + w: every layer norm, the per-head q/k norms and the final one (not Qwen3.5's gated DeltaNet norm,
 * a plain w). */
int ck_gguf_norm_plus_one(const ck_gguf_arch *a, const char *hf_name);
/* Qwen3.5's DeltaNet tensors with one group per value head (row groups, or column groups for out_proj), which
 * GGUF stores tiled when there are more value heads nv than key heads nk (GGUF head j * nk + k is HF head
 * k * (nv / nk) + j): the group size in rows (in columns when *cols), after *skip leading rows (the q and k
 * rows of in_proj_qkv and conv1d); 0 for every other tensor. */
uint64_t ck_gguf_qwen35_groups(const char *hf_name, uint64_t nk, uint64_t dk, uint64_t dv, uint64_t *skip, int *cols);
/* Rows of a [n_heads * head_dim, ...] Q/K weight (or bias) in GGUF order -> HF order (dst != src): HF row
 * h*hd + half*hd/2 + j is GGUF row h*hd + 2j + half. to_gguf = 1 goes the other way. */
void ck_gguf_permute_rows(uint8_t *dst, const uint8_t *src, size_t n_heads, size_t head_dim, size_t row_bytes,
                          int to_gguf);

/* Whether PATH is a GGUF model: a .gguf file (by its magic), or a directory without config.json that
 * holds exactly one *.gguf file. Returns 1 and the file's path in out; 0 when it is not (a directory to
 * read as an HF checkpoint, or nothing at PATH); -1 (with err) when it is a regular file that is not GGUF
 * (or cannot be read), ambiguous (several .gguf files), or a path does not fit. */
int ck_gguf_locate(const char *path, char *out, size_t cap, char *err, size_t errlen);

/* The config.json text (malloc'd, NUL-terminated) that describes the model in g. */
int ck_gguf_config_json(const ck_gguf *g, char **json, char *err, size_t errlen);

/* The tensors of a mapped GGUF under their HF names (sorted). */
typedef struct ck_gguf_weights {
    ck_gguf_file file;
    const ck_gguf_arch *arch;
    int64_t n_heads, n_kv_heads;
    int64_t lin_nk, lin_nv, lin_dk, lin_dv; /* Qwen3.5: DeltaNet key/value heads and head dims */
    int lin_out_tiled;         /* Qwen3.5: out_proj stays in the file's value-head order (its blocks split heads) */
    char **names;              /* [n] HF names, sorted */
    size_t *tensor;            /* [n] index into file.g.tensors */
    uint32_t *slice;           /* [n] 0, or expert + 1 of a stacked expert tensor */
    void **owned;              /* [n] un-permuted / converted copies, or NULL */
    size_t n;
} ck_gguf_weights;

int ck_gguf_weights_open(const char *path, ck_gguf_weights *w, char *err, size_t errlen);
void ck_gguf_weights_close(ck_gguf_weights *w);
/* [p, p + n), the bytes of a tensor found here, has been copied by a backend: an owned copy is freed (made
 * again if the tensor is found again), a view's pages of the mapping leave the process (ck_map_drop). */
void ck_gguf_weights_drop(ck_gguf_weights *w, const void *p, size_t n);
/* 1 and *t when present, 0 when absent, -1 (err names the tensor) for a type we do not compute with,
 * too many dims or no memory for an un-permuted copy. */
int ck_gguf_weights_find(ck_gguf_weights *w, const char *name, ck_tensor *t, char *err, size_t errlen);

#endif
