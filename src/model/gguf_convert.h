/* gguf_convert.h — converts an HF checkpoint directory (config.json + safetensors, optionally
 * tokenizer.json + tokenizer_config.json) of a supported architecture (gguf_model.h) to one GGUF file,
 * laid out as llama.cpp's convert_hf_to_gguf writes it: metadata keys, tensor names, Llama's permuted
 * Q/K rows, Llama 3 RoPE scaling as a rope_freqs tensor, 1-D tensors in F32, and the tokenizer as
 * tokenizer.ggml.* arrays (byte-level BPE only). 2-D weights take the requested type; a weight whose rows
 * are not a whole number of that type's blocks falls back to Q8_0, then F16 (as llama.cpp falls back). */
#ifndef CK_MODEL_GGUF_CONVERT_H
#define CK_MODEL_GGUF_CONVERT_H

#include "tensor/dtype.h"

#include <stddef.h>

/* Returns 0, or -1 with err. Tensors are quantized row by row from f32 values. */
int ck_gguf_convert(const char *hf_dir, const char *out_path, ck_dtype weight_type, char *err, size_t errlen);

/* The ggml type id of a ck dtype. */
uint32_t ck_gguf_ggml_type(ck_dtype t);

#endif
