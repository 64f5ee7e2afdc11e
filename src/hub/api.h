/* api.h — pure parsers of the JSON the Hub sends: the model info (commit and file list), one page of the
 * recursive tree listing (sizes and LFS SHA-256 of files) and the weight_map of
 * model.safetensors.index.json. They read only (buf, len) — no network, no disk — so they can be
 * fuzzed (fuzz/fuzz_hub_json.c). Beside them, the one rule that picks a GGUF file of a repository by
 * a tag (ck_hub_gguf_pick), shared by the pull (the Hub's file list) and the resolver (a snapshot).
 *
 * Invariants: every file name they return has passed ck_hub_filename_valid() (so it can become a path
 * inside a snapshot); a commit is 40 lowercase hex digits; a sha256 is "" or 64 lowercase hex digits;
 * a size is -1 (unknown) or a non-negative value that fits in int64_t. */
#ifndef CK_HUB_API_H
#define CK_HUB_API_H

#include <stddef.h>
#include <stdint.h>

typedef struct ck_hub_names {     /* a list of file names, each malloc'd */
    char **v;
    size_t n, cap;
} ck_hub_names;

typedef struct ck_hub_info {      /* GET /api/models/ORG/NAME/revision/REV */
    char commit[41];              /* "sha" */
    ck_hub_names siblings;        /* siblings[].rfilename that are valid file names, as listed */
} ck_hub_info;

typedef struct ck_hub_file {      /* one file entry of GET /api/models/ORG/NAME/tree/REV */
    char *path;
    int64_t size;                 /* -1 unknown */
    char sha256[65];              /* "" unless an LFS file */
} ck_hub_file;

typedef struct ck_hub_tree {
    ck_hub_file *v;
    size_t n, cap;
} ck_hub_tree;

/* Returns 0, or -1 with err when buf is not a JSON object or names no commit. */
int ck_hub_info_parse(const char *buf, size_t len, ck_hub_info *out, char *err, size_t errlen);
void ck_hub_info_free(ck_hub_info *info);

/* Appends the files of one page (a JSON array) to t, which starts zeroed. Entries that are not files or
 * have no valid path are skipped. Returns 0, or -1 with err (not a JSON array, out of memory); t stays
 * valid either way. */
int ck_hub_tree_parse(const char *buf, size_t len, ck_hub_tree *t, char *err, size_t errlen);
void ck_hub_tree_free(ck_hub_tree *t);

/* The distinct shard files named by the weight_map of model.safetensors.index.json, in first-seen
 * order, into out (zeroed by the call). Returns 0, or -1 with err (no weight_map, an invalid name). */
int ck_hub_weight_map_parse(const char *buf, size_t len, ck_hub_names *out, char *err, size_t errlen);
/* 1 when name is in l */
int ck_hub_names_has(const ck_hub_names *l, const char *name);
/* Appends a copy of name to l; -1 when out of memory. */
int ck_hub_names_add(ck_hub_names *l, const char *name);
void ck_hub_names_free(ck_hub_names *l);

/* The root-level *.gguf files among names, ", "-separated into buf (cut with " ..." when it does not
 * fit cap, which must be at least 5). Returns how many there are. */
size_t ck_hub_gguf_list(const ck_hub_names *names, char *buf, size_t cap);
/* ORG/NAME:TAG -> the one root-level *.gguf file among names whose name contains tag, ignoring case
 * (Q8_0 picks Qwen3-0.6B-Q8_0.gguf). Returns 1 with its index in *pick; else err says why, starting
 * with where (the repository or directory), and lists the .gguf files of names: 0 when none matches,
 * -1 when several do or the match is a part of a split GGUF model (NAME-00001-of-00003.gguf), which
 * cake does not load. */
int ck_hub_gguf_pick(const ck_hub_names *names, const char *tag, const char *where, size_t *pick, char *err,
                     size_t errlen);

#endif
