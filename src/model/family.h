/* family.h — what an architecture family supplies to the shared forward pass of model.c: the
 * checkpoint's architecture names, the tensor-name prefix of its layers, loading of the weights of the
 * model's range (and model-level settings such as the embedding scale, RoPE tables, layers without KV
 * cache), one block's forward over the rows in w->x, and optionally per-sequence state (recurrent layers)
 * and workspace scratch of its own. Backend memory comes from ck_model_vector / ck_model_alloc and is
 * freed by the model; unload frees only the family's host memory. */
#ifndef CK_MODEL_FAMILY_H
#define CK_MODEL_FAMILY_H

#include "model/model.h"

struct ck_family {
    const char *name;
    const char *const *archs; /* NULL-terminated config.json architecture names */
    /* Prefix of layer N's tensor names without N, e.g. "model.layers." */
    const char *(*layer_prefix)(const ck_config *c);
    /* Loads the range's layers, embedding and head into m (m->cfg, m->weights, m->be, m->range are set). */
    int (*load)(ck_model *m, char *err, size_t errlen);
    void (*unload)(ck_model *m);
    /* Block `layer` on w->x[r->T, hidden] (the rows of r's spans, positions in w->pos), in place. */
    void (*layer)(const ck_model *m, const ck_rows *r, ck_ws *w, size_t layer);
    /* Optional: family state in s->fam beside the KV caches (allocated, cleared on reset, freed). */
    int (*seq_init)(const ck_model *m, ck_seq *s, char *err, size_t errlen);
    void (*seq_reset)(const ck_model *m, ck_seq *s);
    void (*seq_free)(const ck_model *m, ck_seq *s);
    /* Optional: family scratch in w->fam (MoE routing, DeltaNet projections). */
    int (*ws_init)(const ck_model *m, ck_ws *w, char *err, size_t errlen);
    void (*ws_free)(const ck_model *m, ck_ws *w);
};

extern const ck_family ck_family_dense;
extern const ck_family ck_family_qwen35; /* qwen35.c: Gated DeltaNet + gated attention hybrid */

#endif
