/* pull.h — download a model repo from the HuggingFace Hub into the HF cache, laid out exactly as
 * huggingface_hub lays it out (see paths.h), so Python tools and cake share one copy.
 *
 * What is fetched: config.json (required), generation_config.json, tokenizer.json and
 * tokenizer_config.json when the repo has them, and the weights: model.safetensors.index.json plus every
 * shard it names, else model.safetensors, else the top-level *.safetensors files. With a gguf_tag (a
 * GGUF repository holds one file per quantization, each carrying its own config and tokenizer): only
 * the one root-level *.gguf file that ck_hub_gguf_pick (api.h) picks by the tag, nothing else.
 *
 * Invariants:
 * - a blob is written as blobs/<etag>.incomplete (under the same flock huggingface_hub takes in
 *   .locks/), resumed with a Range request after an interruption, and renamed to blobs/<etag> only once
 *   its size matches what the Hub announced and, when the Hub reports one (LFS files), its SHA-256
 *   matches; a blob that fails the hash check is deleted, never kept or resumed from;
 * - snapshot symlinks are created and refs/<revision> written only after every file is in place, so a
 *   failed pull leaves nothing that scan.h counts as complete;
 * - this layer never prints: progress and notes go through ck_pull_progress callbacks. */
#ifndef CK_HUB_PULL_H
#define CK_HUB_PULL_H

#include "hub/paths.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ck_pull_progress {
    void *ud;
    /* a one-line status message (retrying, verifying, ...) */
    void (*note)(void *ud, const char *msg);
    /* a transfer of file begins; size_bytes 0 when unknown; have_bytes already on disk (resume) */
    void (*file_start)(void *ud, const char *file, uint64_t size_bytes, uint64_t have_bytes);
    /* bytes of the current file now on disk */
    void (*file_bytes)(void *ud, uint64_t done_bytes);
    /* file is in place: downloaded now (cached == 0) or already in the cache (cached == 1) */
    void (*file_done)(void *ud, const char *file, uint64_t size_bytes, int cached);
} ck_pull_progress;

typedef struct ck_pull_opts {
    const char *repo;          /* ORG/NAME (or NAME) */
    const char *revision;      /* branch, tag or commit; NULL = "main" */
    const char *endpoint;      /* NULL = $HF_ENDPOINT or https://huggingface.co */
    const char *token;         /* NULL = from the environment / token file (paths.h) */
    const char *cache_dir;     /* NULL = the HF cache from the environment */
    const char *gguf_tag;      /* non-NULL: fetch only the .gguf file whose name contains it (Q8_0, ...) */
    int max_attempts;          /* transfers tried per file before giving up; 0 = 3 */
    int verify;                /* 1: re-hash cached LFS blobs against the Hub's SHA-256 */
    const ck_pull_progress *progress; /* may be NULL */
} ck_pull_opts;

typedef struct ck_pull_result {
    char snapshot[CK_PATH_MAX];  /* snapshots/<commit> */
    char commit[41];
    char gguf[1025];             /* with gguf_tag: the file picked (its name in the snapshot); else "" */
    int n_files;                 /* files in the snapshot that this pull looked at */
    int n_downloaded;            /* of which transferred now */
    uint64_t bytes_downloaded;
} ck_pull_result;

/* Returns 0, or -1 with a reason a user can act on in err (repo/revision/file not found, gated repo
 * and HF_TOKEN, network down, disk full, checksum mismatch, interrupted download and how to resume). */
int ck_hub_pull(const ck_pull_opts *o, ck_pull_result *res, char *err, size_t errlen);

#endif
