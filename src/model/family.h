/* family.h — what an architecture family supplies to the shared forward pass of model.c: the
 * checkpoint's architecture names, loading of its per-layer weights (and any model-level settings such as
 * the embedding scale, RoPE tables, layers without KV cache), one block's forward over the rows in s->x,
 * and optionally state of its own (recurrent layers). */
#ifndef CK_MODEL_FAMILY_H
#define CK_MODEL_FAMILY_H

#include "model/model.h"

struct ck_family {
    const char *name;
    const char *const *archs; /* NULL-terminated config.json architecture names */
    /* Loads embed/lm_head/final norm and the layers into m (m->cfg, m->weights, m->be are set). */
    int (*load)(ck_model *m, char *err, size_t errlen);
    void (*unload)(ck_model *m);
    /* Block `layer` on s->x[T, hidden] (rows at positions s->pos ..), in place. */
    void (*layer)(const ck_model *m, ck_state *s, size_t layer, size_t T);
    /* Optional: family state in s->fam beside the KV caches (allocated, cleared on reset, freed). */
    int (*state_init)(const ck_model *m, ck_state *s, char *err, size_t errlen);
    void (*state_reset)(const ck_model *m, ck_state *s);
    void (*state_free)(const ck_model *m, ck_state *s);
};

extern const ck_family ck_family_dense;
extern const ck_family ck_family_qwen35; /* qwen35.c: Gated DeltaNet + gated attention hybrid */

#endif
