/* rope.h — rotary position embedding frequencies. A ck_rope is built from one RoPE parameter object of
 * config.json (transformers 5 `rope_parameters`, possibly one per layer type, or the older top-level
 * `rope_theta` + `rope_scaling`) and rotates the first rot_dim dims of each head (partial rotary).
 * Supported rope_type: default, linear, llama3. */
#ifndef CK_MODEL_ROPE_H
#define CK_MODEL_ROPE_H

#include "format/hfconfig.h"

#include <stddef.h>

typedef struct ck_rope {
    size_t rot_dim;   /* rotated dims per head, even */
    double *inv_freq; /* [rot_dim / 2] */
} ck_rope;

/* params: a rope parameter object, or NULL for the config's own (rope_parameters / rope_scaling /
 * rope_theta). Fields missing from params fall back to the top level of the config. */
int ck_rope_init(ck_rope *r, const ck_config *c, const cJSON *params, size_t head_dim, char *err, size_t errlen);
void ck_rope_free(ck_rope *r);

/* The rope parameter object for a layer type ("full_attention", "sliding_attention") when
 * rope_parameters is keyed by layer type, else NULL. */
const cJSON *ck_rope_params_for(const ck_config *c, const char *layer_type);

#endif
