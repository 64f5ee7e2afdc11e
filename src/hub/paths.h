/* paths.h — where models live and how their names map to directories; nothing here touches the network.
 *
 * HF cache (shared with huggingface_hub, transformers, huggingface-cli):
 *   root   = $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
 *            $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub
 *   <root>/models--ORG--NAME/blobs/<etag>                 file contents, named by normalized ETag
 *   <root>/models--ORG--NAME/blobs/<etag>.incomplete      a download in progress (resumable)
 *   <root>/models--ORG--NAME/snapshots/<commit>/<file>    relative symlink ../../blobs/<etag>
 *   <root>/models--ORG--NAME/refs/<revision>              the commit (40 hex, no newline)
 *   <root>/.locks/models--ORG--NAME/<etag>.lock           flock held while a blob downloads
 * Token: $HF_TOKEN, else $HUGGING_FACE_HUB_TOKEN, else the file $HF_TOKEN_PATH, else $HF_HOME/token.
 * Endpoint: $HF_ENDPOINT (trailing '/' removed), else https://huggingface.co.
 *
 * cake worker cache (weights pushed to cluster workers; cake's own, not shared):
 *   root   = $CAKE_CACHE, else $XDG_CACHE_HOME/cake, else ~/.cache/cake
 *   <root>/models/<ORG--NAME>/   one plain model directory per model (config.json, *.safetensors, ...);
 *                                its name is the directory name with "--" read as "/".
 *
 * Invariants: every name that becomes a path component (repo id parts, revision, file name, etag,
 * commit) is checked by the matching *_valid() function first, so nothing from the command line or the
 * network can climb out of the cache with "..", an absolute path or a control character. */
#ifndef CK_HUB_PATHS_H
#define CK_HUB_PATHS_H

#include <stddef.h>

#define CK_PATH_MAX 4096
#define CK_HUB_DEFAULT_ENDPOINT "https://huggingface.co"

/* Each fills buf and returns 0, or -1 with a reason in err (path too long, no home directory). */
int ck_hub_home_dir(char *buf, size_t cap, char *err, size_t errlen);
int ck_hub_cache_dir(char *buf, size_t cap, char *err, size_t errlen);
int ck_cake_cache_dir(char *buf, size_t cap, char *err, size_t errlen);
int ck_hub_endpoint(char *buf, size_t cap, char *err, size_t errlen);

/* Finds the access token: 1 when one was found (copied, whitespace trimmed), 0 when there is none,
 * -1 with err when the token file exists but cannot be read or the token does not fit. */
int ck_hub_token(char *buf, size_t cap, char *err, size_t errlen);

/* 1 when $HF_HUB_OFFLINE is set to a true value (1, true, yes, on). */
int ck_hub_offline(void);

/* 1 when s is a Hub repo id: NAME or ORG/NAME, each part 1..96 chars of [A-Za-z0-9._-], not starting or
 * ending with '-' or '.', containing neither "--" nor "..". */
int ck_hub_repo_id_valid(const char *s);
/* 1 when s is a valid repo id of the ORG/NAME form (exactly one '/'). */
int ck_hub_repo_id_full(const char *s);
/* 1 when s is a usable revision (branch, tag, commit, refs/pr/N): 1..255 chars of
 * [A-Za-z0-9._/-], no "..", no empty path component, not starting with '/'. */
int ck_hub_revision_valid(const char *s);
/* 1 when s is a safe relative file path inside a repo: components of printable non-space-control chars,
 * none empty, "." or "..", no backslash, at most 1024 chars. */
int ck_hub_filename_valid(const char *s);
/* 1 when s is a usable blob name: 1..128 chars of [A-Za-z0-9_-]. */
int ck_hub_etag_valid(const char *s);
/* 1 when s is a commit hash: exactly 40 lowercase hex digits. */
int ck_hub_is_commit(const char *s);

/* Strips a weak-validator prefix "W/" and surrounding double quotes from an ETag header value, in place. */
void ck_hub_etag_normalize(char *etag);

/* <cache>/models--ORG--NAME for repo "ORG/NAME" (or models--NAME). repo must be valid. */
int ck_hub_repo_dir(char *buf, size_t cap, const char *cache, const char *repo, char *err, size_t errlen);
/* Inverse of the above for one directory name: "models--ORG--NAME" -> "ORG/NAME". Returns 1 on success,
 * 0 when dirname is not a model directory name or the name does not fit in cap. */
int ck_hub_repo_from_dirname(const char *dirname, char *repo, size_t cap);

/* Reads refs/<revision> of a repo directory (or takes revision itself when it is a commit) into
 * commit[41]. Returns 0, or -1 with err when the ref is missing or does not hold a commit. */
int ck_hub_ref_read(const char *repo_dir, const char *revision, char commit[41], char *err, size_t errlen);

#endif
