/* scan.h — what is in the caches: list models (HF cache and cake's worker cache, see paths.h), decide
 * whether a model directory is complete, find a model by name, delete one.
 *
 * Complete means usable for inference: config.json and the weights are present as regular files
 * (symlinks followed; a dangling link is a missing file) — every shard named by
 * model.safetensors.index.json, else model.safetensors, else some *.safetensors or *.gguf. A GGUF file
 * carries its own config, so a snapshot holding only the .gguf files that ORG/NAME:TAG pulled (pull.h)
 * is complete without config.json. An HF repo
 * with a refs/main is judged by ck_hub_find (which `run` relies on) alone, so a ref that holds no commit
 * or names a missing snapshot makes it incomplete; only without refs/main (a pull pinned to a commit
 * writes none) is its newest snapshot judged instead. A pull
 * links snapshot entries and writes the ref only after every blob is verified, so an interrupted pull
 * is never complete.
 *
 * Invariant of ck_model_remove(): it deletes only a directory that is a direct child of one of the two
 * cache roots (after resolving symlinks) and whose name has the cache's model-directory form. */
#ifndef CK_HUB_SCAN_H
#define CK_HUB_SCAN_H

#include "hub/paths.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { CK_SRC_HF = 0, CK_SRC_WORKER = 1 } ck_model_source;

typedef struct ck_model_entry {
    char name[256];              /* ORG/NAME (or NAME) */
    char path[CK_PATH_MAX];      /* models--ORG--NAME for HF, the model directory for worker */
    char snapshot[CK_PATH_MAX];  /* the directory a run would load; "" when there is none */
    ck_model_source source;
    int complete;                /* 1 when `snapshot` is complete */
    char why[768];               /* why it is not complete, starting with its name; "" when complete */
    uint64_t size_bytes;         /* HF: bytes in blobs/ (incl. .incomplete); worker: regular files under path */
} ck_model_entry;

typedef struct ck_model_list {
    ck_model_entry *v;
    size_t n;
} ck_model_list;

/* Lists both caches (either root may be NULL or missing: that cache is empty), sorted by source then
 * name. Returns 0, or -1 with err (out of memory, unreadable directory, a root that is not a directory). */
int ck_models_scan(const char *hf_cache, const char *cake_cache, ck_model_list *out, char *err, size_t errlen);
void ck_models_free(ck_model_list *l);

/* 1 when dir is a complete model directory; else 0 with the first missing piece in why. */
int ck_model_dir_complete(const char *dir, char *why, size_t whylen);

/* Sum of st_size of the regular files under dir, symlinks not followed. 0 when dir is missing. */
uint64_t ck_dir_size_bytes(const char *dir);

/* Indices of the entries matching query: the exact name, else every name whose last components equal
 * query ("Qwen3-0.6B" matches "evilsocket/Qwen3-0.6B"). Returns the number of matches (may exceed
 * cap; only cap indices are written). */
size_t ck_models_match(const ck_model_list *l, const char *query, size_t *idx, size_t cap);

/* Finds the complete snapshot of repo at refs/<revision> in the HF cache. Returns 0 with the snapshot
 * path in dir; 1 when it is absent or incomplete (reason in err; a pull would fix it); -1 on bad input. */
int ck_hub_find(const char *hf_cache, const char *repo, const char *revision, char *dir, size_t cap, char *err,
                size_t errlen);

/* Deletes the model's directory (and, for HF, its .locks entry). See the invariant above. */
int ck_model_remove(const ck_model_entry *m, const char *hf_cache, const char *cake_cache, char *err,
                    size_t errlen);

#endif
