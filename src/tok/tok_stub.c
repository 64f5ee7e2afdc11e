/* tok_stub.c — temporary: tokenizer entry points until the BPE implementation lands. */
#include "tok/tok.h"
#include "base/err.h"

int ck_tok_load(const char *dir, ck_tok **out, char *err, size_t errlen) { (void)dir; *out = NULL; return ck_err(err, errlen, "tokenizer not available yet"); }
void ck_tok_free(ck_tok *t) { (void)t; }
int32_t ck_tok_eos_id(const ck_tok *t) { (void)t; return -1; }
