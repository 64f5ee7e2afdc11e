/* resolve.h — turns a MODEL argument into a directory (or file) to load: an existing local path wins;
 * otherwise an ORG/NAME repo id is looked up in the HF cache (refs/main -> complete snapshot) and pulled
 * when absent or incomplete. ORG/NAME:TAG names the repository's one *.gguf file whose name contains TAG
 * (ck_hub_gguf_pick in api.h, e.g. Qwen/Qwen3-0.6B-GGUF:Q8_0): the cached snapshot's when it holds exactly
 * one such file, an error when it holds several, else that one file is pulled alone (pull.h gguf_tag).
 * Anything else is an error that says what a MODEL may be. Never touches the network when the model (the
 * tagged file) is in the cache. */
#ifndef CK_HUB_RESOLVE_H
#define CK_HUB_RESOLVE_H

#include "hub/pull.h"

#include <stddef.h>

typedef enum { CK_RESOLVED_LOCAL = 0, CK_RESOLVED_CACHED = 1, CK_RESOLVED_PULLED = 2 } ck_resolved;

/* Returns 0 with the path in dir (and how it was found in *how, when how != NULL), or -1 with err. */
int ck_hub_resolve(const char *arg, const ck_pull_progress *progress, char *dir, size_t cap, ck_resolved *how,
                   char *err, size_t errlen);

#endif
