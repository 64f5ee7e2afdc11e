/* node.c — model identity and the message round trip shared by masters and workers (see node.h). */
#include "cluster/node.h"

#include "base/err.h"
#include "base/file.h"
#include "base/grow.h"
#include "base/sha256.h"
#include "format/gguf_model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ck_logf(ck_log_fn log, void *user, const char *fmt, ...) {
    if (!log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log(user, line);
}

double ck_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int ck_model_id(const char *dir, uint8_t id[32], char *err, size_t errlen) {
    char path[4096], *text;
    size_t len;
    int gguf = ck_gguf_locate(dir, path, sizeof path, err, errlen);
    if (gguf < 0) return -1;
    if (gguf) { /* the metadata as stored: a pushed range's model.gguf carries the source's */
        ck_gguf_file f;
        if (ck_gguf_open(path, &f, err, errlen) != 0) return -1;
        ck_sha256 h;
        ck_sha256_init(&h);
        ck_sha256_update(&h, "GGUF metadata", 13);
        ck_sha256_update(&h, f.g.meta, f.g.meta_len);
        ck_sha256_final(&h, id);
        ck_gguf_close(&f);
        return 0;
    }
    if (ck_path_join(path, sizeof path, dir, "config.json", err, errlen) != 0) return -1;
    if (ck_file_read_max(path, 4u << 20, &text, &len, err, errlen) != 0) return -1;
    ck_sha256 h;
    ck_sha256_init(&h);
    ck_sha256_update(&h, text, len);
    ck_sha256_final(&h, id);
    free(text);
    return 0;
}

void ck_model_id_short(const uint8_t id[32], char out[17]) {
    for (int i = 0; i < 8; i++) snprintf(out + 2 * i, 3, "%02x", id[i]);
}

int ck_msg_send(ck_conn *c, ck_msgbuf *b, const ck_msg *m, int timeout_ms, char *err, size_t errlen) {
    size_t need = 64 + 4 * (size_t)CK_WIRE_MAX_STR;
    if (m->type == CK_MSG_FORWARD || m->type == CK_MSG_HIDDEN) need += m->u.hidden.data_len;
    void *p = ck_grow(b->p, &b->cap, need, 1, 4096);
    if (!p) return ck_err(err, errlen, "out of memory");
    b->p = p;
    size_t n = ck_wire_encode(m, b->p, b->cap);
    if (n == 0) return ck_err(err, errlen, "internal: cannot encode a %s message", ck_msg_name(m->type));
    return ck_conn_send(c, b->p, n, timeout_ms, err, errlen);
}

int ck_msg_recv(ck_conn *c, const ck_wire_limits *lim, size_t max_len, ck_msg *m, int timeout_ms, char *err,
                size_t errlen) {
    const uint8_t *f;
    size_t n;
    char why[512];
    if (ck_conn_recv(c, &f, &n, max_len, timeout_ms, err, errlen) != 0) return -1;
    if (ck_wire_decode(f, n, lim, m, why, sizeof why) != 0) return ck_err(err, errlen, "bad message: %s", why);
    /* the texts lie in the connection's own receive buffer */
    if (m->type == CK_MSG_ERROR) ck_wire_str_clean((char *)m->u.error.message.p, m->u.error.message.n);
    if (m->type == CK_MSG_HELLO_OK) {
        ck_wire_str_clean((char *)m->u.hello_ok.backend.p, m->u.hello_ok.backend.n);
        ck_wire_str_clean((char *)m->u.hello_ok.name.p, m->u.hello_ok.name.n);
    }
    return 0;
}

void ck_wire_str_clean(char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) s[i] = '?';
        else if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f)
            s[i] = s[i + 1] = '?', i++; /* a C1 control (U+0080-U+009F), e.g. an 8-bit escape */
    }
}

void ck_msg_send_error(ck_conn *c, ck_msgbuf *b, uint32_t code, const char *text) {
    char ignored[64];
    size_t len = strlen(text);
    ck_msg m = {.type = CK_MSG_ERROR};
    m.u.error.code = code;
    m.u.error.message = (ck_wire_str){text, (uint16_t)(len > CK_WIRE_MAX_STR ? CK_WIRE_MAX_STR : len)};
    ck_msg_send(c, b, &m, 1000, ignored, sizeof ignored);
}

void ck_msgbuf_free(ck_msgbuf *b) {
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}
