/* tok_stub.c — temporary: tokenizer entry points until the BPE implementation lands. */
#include "tok/tok.h"
#include "base/err.h"

int ck_tok_load(const char *dir, ck_tok **out, char *err, size_t errlen) { (void)dir; *out = NULL; return ck_err(err, errlen, "tokenizer not available yet"); }
void ck_tok_free(ck_tok *t) { (void)t; }
int32_t ck_tok_eos_id(const ck_tok *t) { (void)t; return -1; }
int ck_tok_has_chat(const ck_tok *t) { (void)t; return 0; }
int ck_tok_chat_render(const ck_tok *t, const ck_chat_msg *m, size_t n, int a, int b, char **out, char *err, size_t errlen) { (void)t; (void)m; (void)n; (void)a; (void)b; *out = 0; return ck_err(err, errlen, "stub"); }
int ck_tok_encode(const ck_tok *t, const char *text, size_t len, int a, int32_t **ids, size_t *n, char *err, size_t errlen) { (void)t; (void)text; (void)len; (void)a; *ids = 0; *n = 0; return ck_err(err, errlen, "stub"); }
void ck_tok_stream_init(ck_tok_stream *s, const ck_tok *t) { (void)s; (void)t; }
int ck_tok_stream_push(ck_tok_stream *s, int32_t id, char *buf, size_t cap) { (void)s; (void)id; (void)buf; (void)cap; return 0; }
int ck_tok_stream_flush(ck_tok_stream *s, char *buf, size_t cap) { (void)s; (void)buf; (void)cap; return 0; }
