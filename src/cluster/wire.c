/* wire.c — the cluster message codec (see wire.h and docs/protocol.md). Decoding walks the frame with a
 * bounds-checked reader: every field is read only after checking that its bytes are there, every count
 * from the peer is checked against the limits before it sizes anything, products are overflow-checked,
 * and the frame must end exactly where the message does. Nothing is allocated; strings and activation
 * payloads point into the caller's buffer. Encoding is the exact inverse (the format has no optional or
 * padded fields, so decode(encode(m)) == m and encode(decode(b)) == b for every accepted b).
 * f16/bf16 conversion rounds to nearest, ties to even; f32 -> f16 overflows to +-inf, NaN stays NaN. */
#include "cluster/wire.h"
#include "base/err.h"
#include "tensor/dtype.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* Fixed part of each body after the type byte. */
#define HELLO_FIXED (4 + 32 + 4 + 4 + 4 + 1 + 4 + 4)
#define HELLO_OK_FIXED (4 + 32 + 4 + 4 + 8 + 4)
#define FORWARD_FIXED (4 + 4 + 4 + 1)
#define HIDDEN_FIXED (FORWARD_FIXED + 8)
#define ASSIGN_FIXED (32 + 4 + 4 + 2)
#define ASSIGN_FILE_FIXED (2 + 8 + 32) /* plus the name */
#define PUSH_FIXED (2 + 8 + 4 + 4 + 1)

size_t ck_wire_dtype_size(int dtype) {
    switch (dtype) {
    case CK_WIRE_F32: return 4;
    case CK_WIRE_F16: return 2;
    case CK_WIRE_BF16: return 2;
    default: return 0;
    }
}

const char *ck_msg_name(int type) {
    static const char *const names[] = {NULL,        "HELLO", "HELLO_OK", "FORWARD", "HIDDEN", "TRUNCATE",
                                        "TRUNCATED", "PING",  "PONG",     "GOODBYE", "ERROR",  "ASSIGN",
                                        "HAVE",      "PUSH",  "PUSH_DONE", "READY", "CHAIN",  "LINK"};
    if (type < CK_MSG_HELLO || type > CK_MSG_LINK) return "?";
    return names[type];
}

/* ---- little-endian helpers ---- */

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | (uint16_t)p[1] << 8); }
static uint32_t ld32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }
static void st16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void st32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void st64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- decoding ---- */

/* A cursor over one frame; `msg` names the message in every error. */
typedef struct reader {
    const uint8_t *p;
    size_t len, off;
    const char *msg;
    char *err;
    size_t errlen;
} reader;

/* Points *out at the next n bytes of the frame, or fails naming the field that is cut short. */
static int rd_bytes(reader *r, size_t n, const char *field, const uint8_t **out) {
    if (r->len - r->off < n)
        return ck_err(r->err, r->errlen, "%s: frame truncated in %s (needs %zu bytes at offset %zu, %zu left)",
                      r->msg, field, n, r->off, r->len - r->off);
    *out = r->p + r->off;
    r->off += n;
    return 0;
}

static int rd_u8(reader *r, const char *field, uint8_t *v) {
    const uint8_t *p = NULL;
    if (rd_bytes(r, 1, field, &p)) return -1;
    *v = p[0];
    return 0;
}

static int rd_u16(reader *r, const char *field, uint16_t *v) {
    const uint8_t *p = NULL;
    if (rd_bytes(r, 2, field, &p)) return -1;
    *v = ld16(p);
    return 0;
}

static int rd_u32(reader *r, const char *field, uint32_t *v) {
    const uint8_t *p = NULL;
    if (rd_bytes(r, 4, field, &p)) return -1;
    *v = ld32(p);
    return 0;
}

static int rd_u64(reader *r, const char *field, uint64_t *v) {
    const uint8_t *p = NULL;
    if (rd_bytes(r, 8, field, &p)) return -1;
    *v = ld64(p);
    return 0;
}

/* str = u16 length + bytes, at most CK_WIRE_MAX_STR. */
static int rd_str(reader *r, const char *field, ck_wire_str *s) {
    const uint8_t *p = NULL;
    if (rd_bytes(r, 2, field, &p)) return -1;
    uint16_t n = ld16(p);
    if (n > CK_WIRE_MAX_STR)
        return ck_err(r->err, r->errlen, "%s: %s is %u bytes, over the limit of %d", r->msg, field, (unsigned)n,
                      CK_WIRE_MAX_STR);
    if (rd_bytes(r, n, field, &p)) return -1;
    s->p = (const char *)p;
    s->n = n;
    return 0;
}

/* The frame must end where the message does. */
static int rd_end(reader *r) {
    if (r->off != r->len)
        return ck_err(r->err, r->errlen, "%s: %zu trailing bytes after the message (%zu expected)", r->msg,
                      r->len - r->off, r->off);
    return 0;
}

static int dec_hello(reader *r, ck_msg *m) {
    const uint8_t *id = NULL;
    if (rd_u32(r, "version", &m->u.hello.version) || rd_bytes(r, 32, "model_id", &id)) return -1;
    memcpy(m->u.hello.model_id, id, 32);
    if (rd_u32(r, "first_layer", &m->u.hello.first_layer) || rd_u32(r, "last_layer", &m->u.hello.last_layer) ||
        rd_u32(r, "hidden", &m->u.hello.hidden) || rd_u8(r, "wire_dtype", &m->u.hello.wire_dtype) ||
        rd_u32(r, "max_ctx", &m->u.hello.max_ctx) || rd_u32(r, "max_rows", &m->u.hello.max_rows) ||
        rd_str(r, "name", &m->u.hello.name) || rd_end(r))
        return -1;
    if (!ck_wire_dtype_size(m->u.hello.wire_dtype))
        return ck_err(r->err, r->errlen, "HELLO: unknown wire_dtype %u", (unsigned)m->u.hello.wire_dtype);
    return 0;
}

static int dec_hello_ok(reader *r, ck_msg *m) {
    const uint8_t *id = NULL;
    if (rd_u32(r, "version", &m->u.hello_ok.version) || rd_bytes(r, 32, "model_id", &id)) return -1;
    memcpy(m->u.hello_ok.model_id, id, 32);
    return rd_u32(r, "first_layer", &m->u.hello_ok.first_layer) ||
                   rd_u32(r, "last_layer", &m->u.hello_ok.last_layer) ||
                   rd_u64(r, "mem_bytes", &m->u.hello_ok.mem_bytes) ||
                   rd_u32(r, "threads", &m->u.hello_ok.threads) || rd_str(r, "backend", &m->u.hello_ok.backend) ||
                   rd_str(r, "name", &m->u.hello_ok.name) || rd_end(r)
               ? -1
               : 0;
}

/* FORWARD and HIDDEN: the fixed header, then exactly n * hidden elements of dtype to the end of the frame. */
static int dec_hidden(reader *r, ck_msg *m, const ck_wire_limits *lim) {
    if (!lim || lim->hidden == 0)
        return ck_err(r->err, r->errlen, "%s: no hidden size agreed yet (HELLO first)", r->msg);
    if (rd_u32(r, "session", &m->u.hidden.session) || rd_u32(r, "pos", &m->u.hidden.pos) ||
        rd_u32(r, "n", &m->u.hidden.n) || rd_u8(r, "dtype", &m->u.hidden.dtype))
        return -1;
    m->u.hidden.compute_us = 0;
    if (m->type == CK_MSG_HIDDEN && rd_u64(r, "compute_us", &m->u.hidden.compute_us)) return -1;
    uint32_t n = m->u.hidden.n, pos = m->u.hidden.pos;
    if (n == 0 || n > lim->max_rows)
        return ck_err(r->err, r->errlen, "%s: n %" PRIu32 " rows is not in 1..%" PRIu32 " (max_rows)", r->msg, n,
                      lim->max_rows);
    if ((uint64_t)pos + n > lim->max_ctx)
        return ck_err(r->err, r->errlen, "%s: pos %" PRIu32 " + n %" PRIu32 " is past max_ctx %" PRIu32, r->msg,
                      pos, n, lim->max_ctx);
    size_t es = ck_wire_dtype_size(m->u.hidden.dtype), want;
    if (!es) return ck_err(r->err, r->errlen, "%s: unknown dtype %u", r->msg, (unsigned)m->u.hidden.dtype);
    if (ck_mul_size(n, lim->hidden, &want) || ck_mul_size(want, es, &want))
        return ck_err(r->err, r->errlen, "%s: n %" PRIu32 " x hidden %" PRIu32 " overflows", r->msg, n,
                      lim->hidden);
    size_t have = r->len - r->off;
    if (have != want)
        return ck_err(r->err, r->errlen,
                      "%s: hidden data is %zu bytes, n %" PRIu32 " x hidden %" PRIu32 " x %zu bytes needs %zu",
                      r->msg, have, n, lim->hidden, es, want);
    m->u.hidden.data = r->p + r->off;
    m->u.hidden.data_len = want;
    r->off += want;
    return 0;
}

int ck_wire_file_name_valid(const char *name, size_t n) {
    if (!name || n == 0 || n > CK_WIRE_MAX_FILE_NAME || (n == 1 && name[0] == '.')) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                 ch == '_' || ch == '-';
        if (!ok || (ch == '.' && i + 1 < n && name[i + 1] == '.')) return 0;
    }
    return 1;
}

size_t ck_wire_push_max_frame(void) { return 1 + PUSH_FIXED + ZSTD_COMPRESSBOUND(CK_WIRE_PUSH_MAX_RAW); }

/* ASSIGN: the count is checked before any file is read, each name's length before its bytes. */
static int dec_assign(reader *r, ck_msg *m) {
    const uint8_t *p = NULL;
    if (rd_bytes(r, 32, "model_id", &p)) return -1;
    memcpy(m->u.assign.model_id, p, 32);
    if (rd_u32(r, "first_layer", &m->u.assign.first_layer) || rd_u32(r, "last_layer", &m->u.assign.last_layer) ||
        rd_u16(r, "n_files", &m->u.assign.n_files))
        return -1;
    uint16_t n = m->u.assign.n_files;
    if (n == 0 || n > CK_WIRE_MAX_FILES)
        return ck_err(r->err, r->errlen, "ASSIGN: n_files %u is not in 1..%d", (unsigned)n, CK_WIRE_MAX_FILES);
    for (uint16_t i = 0; i < n; i++) {
        ck_wire_file *f = &m->u.assign.files[i];
        uint16_t len;
        if (rd_u16(r, "file name", &len)) return -1;
        if (len == 0 || len > CK_WIRE_MAX_FILE_NAME)
            return ck_err(r->err, r->errlen, "ASSIGN: file %u name is %u bytes, not in 1..%d", (unsigned)i,
                          (unsigned)len, CK_WIRE_MAX_FILE_NAME);
        if (rd_bytes(r, len, "file name", &p)) return -1;
        f->name = (ck_wire_str){(const char *)p, len};
        if (!ck_wire_file_name_valid(f->name.p, len))
            return ck_err(r->err, r->errlen, "ASSIGN: file %u name is not a plain file name ([A-Za-z0-9._-], no \"..\")",
                          (unsigned)i);
        if (rd_u64(r, "file size", &f->size) || rd_bytes(r, 32, "file sha256", &p)) return -1;
        memcpy(f->sha256, p, 32);
    }
    return rd_end(r);
}

static int dec_have(reader *r, ck_msg *m) {
    if (rd_u16(r, "n_files", &m->u.have.n_files)) return -1;
    if (m->u.have.n_files > CK_WIRE_MAX_FILES)
        return ck_err(r->err, r->errlen, "HAVE: n_files %u is over the limit of %d", (unsigned)m->u.have.n_files,
                      CK_WIRE_MAX_FILES);
    for (uint16_t i = 0; i < m->u.have.n_files; i++)
        if (rd_u64(r, "bytes_present", &m->u.have.present[i])) return -1;
    return rd_end(r);
}

/* PUSH: raw_len and the codec are checked before the payload's length is compared with them. */
static int dec_push(reader *r, ck_msg *m) {
    if (rd_u16(r, "file", &m->u.push.file) || rd_u64(r, "offset", &m->u.push.offset) ||
        rd_u32(r, "raw_len", &m->u.push.raw_len) || rd_u32(r, "crc32", &m->u.push.crc32) ||
        rd_u8(r, "codec", &m->u.push.codec))
        return -1;
    uint32_t raw = m->u.push.raw_len;
    if (m->u.push.file >= CK_WIRE_MAX_FILES)
        return ck_err(r->err, r->errlen, "PUSH: file %u is not below %d", (unsigned)m->u.push.file, CK_WIRE_MAX_FILES);
    if (raw == 0 || raw > CK_WIRE_PUSH_MAX_RAW)
        return ck_err(r->err, r->errlen, "PUSH: raw_len %" PRIu32 " is not in 1..%u", raw, CK_WIRE_PUSH_MAX_RAW);
    if (m->u.push.offset > UINT64_MAX - raw)
        return ck_err(r->err, r->errlen, "PUSH: offset %" PRIu64 " + raw_len %" PRIu32 " overflows", m->u.push.offset,
                      raw);
    size_t have = r->len - r->off;
    if (m->u.push.codec == CK_WIRE_CODEC_RAW) {
        if (have != raw)
            return ck_err(r->err, r->errlen, "PUSH: raw data is %zu bytes, raw_len says %" PRIu32, have, raw);
    } else if (m->u.push.codec == CK_WIRE_CODEC_ZSTD) {
        if (have == 0 || have > ZSTD_COMPRESSBOUND(raw))
            return ck_err(r->err, r->errlen, "PUSH: zstd data is %zu bytes, not in 1..%zu for raw_len %" PRIu32, have,
                          (size_t)ZSTD_COMPRESSBOUND(raw), raw);
    } else
        return ck_err(r->err, r->errlen, "PUSH: unknown codec %u", (unsigned)m->u.push.codec);
    m->u.push.data = r->p + r->off;
    m->u.push.data_len = have;
    r->off += have;
    return 0;
}

/* A HELLO/HELLO_OK from a peer of another wire version may not parse at all: say so beside the reason. */
static void note_version(const uint8_t *buf, size_t len, char *err, size_t errlen) {
    if (len < 5 || !err || !errlen || ld32(buf + 1) == CK_WIRE_VERSION) return;
    size_t used = strnlen(err, errlen);
    if (used + 1 < errlen)
        ck_err(err + used, errlen - used, " (the peer speaks wire version %" PRIu32 ", this build %d)",
               ld32(buf + 1), CK_WIRE_VERSION);
}

int ck_wire_decode(const uint8_t *buf, size_t len, const ck_wire_limits *lim, ck_msg *m, char *err,
                   size_t errlen) {
    if (!buf || len == 0) return ck_err(err, errlen, "empty frame");
    memset(m, 0, sizeof *m);
    int type = buf[0];
    if (type < CK_MSG_HELLO || type > CK_MSG_LINK) return ck_err(err, errlen, "unknown message type %d", type);
    m->type = (ck_msg_type)type;
    reader r = {buf, len, 1, ck_msg_name(type), err, errlen};
    int rc;
    switch (m->type) {
    case CK_MSG_HELLO:
        if ((rc = dec_hello(&r, m))) note_version(buf, len, err, errlen);
        return rc;
    case CK_MSG_HELLO_OK:
        if ((rc = dec_hello_ok(&r, m))) note_version(buf, len, err, errlen);
        return rc;
    case CK_MSG_FORWARD:
    case CK_MSG_HIDDEN: return dec_hidden(&r, m, lim);
    case CK_MSG_TRUNCATE:
    case CK_MSG_TRUNCATED:
        return rd_u32(&r, "session", &m->u.truncate.session) || rd_u32(&r, "pos", &m->u.truncate.pos) || rd_end(&r)
                   ? -1
                   : 0;
    case CK_MSG_PING:
    case CK_MSG_PONG: return rd_u64(&r, "nonce", &m->u.ping.nonce) || rd_end(&r) ? -1 : 0;
    case CK_MSG_GOODBYE: return rd_end(&r);
    case CK_MSG_ERROR:
        return rd_u32(&r, "code", &m->u.error.code) || rd_str(&r, "message", &m->u.error.message) || rd_end(&r)
                   ? -1
                   : 0;
    case CK_MSG_ASSIGN: return dec_assign(&r, m);
    case CK_MSG_HAVE: return dec_have(&r, m);
    case CK_MSG_PUSH: return dec_push(&r, m);
    case CK_MSG_PUSH_DONE:
    case CK_MSG_READY: return rd_end(&r);
    case CK_MSG_CHAIN:
        return rd_u64(&r, "route", &m->u.chain.route) || rd_str(&r, "next_host", &m->u.chain.next_host) ||
                       rd_u64(&r, "next_route", &m->u.chain.next_route) || rd_end(&r)
                   ? -1
                   : 0;
    case CK_MSG_LINK: return rd_u64(&r, "route", &m->u.link.route) || rd_end(&r) ? -1 : 0;
    }
    return ck_err(err, errlen, "unknown message type %d", type);
}

/* ---- encoding ---- */

static int str_ok(const ck_wire_str *s) { return s->n <= CK_WIRE_MAX_STR && (s->p || s->n == 0); }

/* The encoded size of an ASSIGN, or 0 when it breaks a rule the decoder enforces. */
static size_t assign_size(const ck_msg *m) {
    uint16_t n = m->u.assign.n_files;
    if (n == 0 || n > CK_WIRE_MAX_FILES) return 0;
    size_t len = 1 + ASSIGN_FIXED;
    for (uint16_t i = 0; i < n; i++) {
        const ck_wire_file *f = &m->u.assign.files[i];
        if (!ck_wire_file_name_valid(f->name.p, f->name.n)) return 0;
        len += ASSIGN_FILE_FIXED + f->name.n;
    }
    return len;
}

/* The encoded size of a PUSH, or 0 when the decoder would refuse it. */
static size_t push_size(const ck_msg *m) {
    uint32_t raw = m->u.push.raw_len;
    size_t len = m->u.push.data_len;
    if (m->u.push.file >= CK_WIRE_MAX_FILES || raw == 0 || raw > CK_WIRE_PUSH_MAX_RAW || !m->u.push.data ||
        m->u.push.offset > UINT64_MAX - raw)
        return 0;
    if (m->u.push.codec == CK_WIRE_CODEC_RAW ? len != raw
        : m->u.push.codec == CK_WIRE_CODEC_ZSTD ? len == 0 || len > ZSTD_COMPRESSBOUND(raw)
                                                 : 1)
        return 0;
    return 1 + PUSH_FIXED + len;
}

/* The encoded size of m, or 0 when m cannot be encoded (unknown type, string over the cap, FORWARD/HIDDEN
 * with no rows, an unknown dtype or a payload that is not whole rows of n elements). */
static size_t encoded_size(const ck_msg *m) {
    switch (m->type) {
    case CK_MSG_HELLO:
        if (!str_ok(&m->u.hello.name) || !ck_wire_dtype_size(m->u.hello.wire_dtype)) return 0;
        return 1 + HELLO_FIXED + 2 + (size_t)m->u.hello.name.n;
    case CK_MSG_HELLO_OK:
        if (!str_ok(&m->u.hello_ok.backend) || !str_ok(&m->u.hello_ok.name)) return 0;
        return 1 + HELLO_OK_FIXED + 2 + (size_t)m->u.hello_ok.backend.n + 2 + (size_t)m->u.hello_ok.name.n;
    case CK_MSG_FORWARD:
    case CK_MSG_HIDDEN: {
        size_t es = ck_wire_dtype_size(m->u.hidden.dtype), row;
        size_t len = m->u.hidden.data_len, fixed = m->type == CK_MSG_HIDDEN ? HIDDEN_FIXED : FORWARD_FIXED;
        if (!es || m->u.hidden.n == 0 || len == 0 || !m->u.hidden.data) return 0;
        if (ck_mul_size(m->u.hidden.n, es, &row) || len % row != 0 || len > SIZE_MAX - 1 - fixed) return 0;
        return 1 + fixed + len;
    }
    case CK_MSG_TRUNCATE:
    case CK_MSG_TRUNCATED: return 1 + 8;
    case CK_MSG_PING:
    case CK_MSG_PONG: return 1 + 8;
    case CK_MSG_GOODBYE: return 1;
    case CK_MSG_ERROR:
        if (!str_ok(&m->u.error.message)) return 0;
        return 1 + 4 + 2 + (size_t)m->u.error.message.n;
    case CK_MSG_ASSIGN: return assign_size(m);
    case CK_MSG_HAVE: return m->u.have.n_files > CK_WIRE_MAX_FILES ? 0 : 1 + 2 + 8 * (size_t)m->u.have.n_files;
    case CK_MSG_PUSH: return push_size(m);
    case CK_MSG_PUSH_DONE:
    case CK_MSG_READY: return 1;
    case CK_MSG_CHAIN: return str_ok(&m->u.chain.next_host) ? 1 + 8 + 2 + (size_t)m->u.chain.next_host.n + 8 : 0;
    case CK_MSG_LINK: return 1 + 8;
    }
    return 0;
}

static uint8_t *put_str(uint8_t *p, const ck_wire_str *s) {
    st16(p, s->n);
    if (s->n) memcpy(p + 2, s->p, s->n);
    return p + 2 + s->n;
}

size_t ck_wire_encode(const ck_msg *m, uint8_t *out, size_t cap) {
    if (!m) return 0;
    size_t len = encoded_size(m);
    if (len == 0 || !out || len > cap) return 0;
    uint8_t *p = out;
    *p++ = (uint8_t)m->type;
    switch (m->type) {
    case CK_MSG_HELLO:
        st32(p, m->u.hello.version);
        memcpy(p + 4, m->u.hello.model_id, 32);
        st32(p + 36, m->u.hello.first_layer);
        st32(p + 40, m->u.hello.last_layer);
        st32(p + 44, m->u.hello.hidden);
        p[48] = m->u.hello.wire_dtype;
        st32(p + 49, m->u.hello.max_ctx);
        st32(p + 53, m->u.hello.max_rows);
        p = put_str(p + HELLO_FIXED, &m->u.hello.name);
        break;
    case CK_MSG_HELLO_OK:
        st32(p, m->u.hello_ok.version);
        memcpy(p + 4, m->u.hello_ok.model_id, 32);
        st32(p + 36, m->u.hello_ok.first_layer);
        st32(p + 40, m->u.hello_ok.last_layer);
        st64(p + 44, m->u.hello_ok.mem_bytes);
        st32(p + 52, m->u.hello_ok.threads);
        p = put_str(p + HELLO_OK_FIXED, &m->u.hello_ok.backend);
        p = put_str(p, &m->u.hello_ok.name);
        break;
    case CK_MSG_FORWARD:
    case CK_MSG_HIDDEN:
        st32(p, m->u.hidden.session);
        st32(p + 4, m->u.hidden.pos);
        st32(p + 8, m->u.hidden.n);
        p[12] = m->u.hidden.dtype;
        p += FORWARD_FIXED;
        if (m->type == CK_MSG_HIDDEN) {
            st64(p, m->u.hidden.compute_us);
            p += 8;
        }
        memcpy(p, m->u.hidden.data, m->u.hidden.data_len);
        p += m->u.hidden.data_len;
        break;
    case CK_MSG_TRUNCATE:
    case CK_MSG_TRUNCATED:
        st32(p, m->u.truncate.session);
        st32(p + 4, m->u.truncate.pos);
        p += 8;
        break;
    case CK_MSG_PING:
    case CK_MSG_PONG:
        st64(p, m->u.ping.nonce);
        p += 8;
        break;
    case CK_MSG_GOODBYE: break;
    case CK_MSG_ERROR:
        st32(p, m->u.error.code);
        p = put_str(p + 4, &m->u.error.message);
        break;
    case CK_MSG_ASSIGN:
        memcpy(p, m->u.assign.model_id, 32);
        st32(p + 32, m->u.assign.first_layer);
        st32(p + 36, m->u.assign.last_layer);
        st16(p + 40, m->u.assign.n_files);
        p += ASSIGN_FIXED;
        for (uint16_t i = 0; i < m->u.assign.n_files; i++) {
            const ck_wire_file *f = &m->u.assign.files[i];
            p = put_str(p, &f->name);
            st64(p, f->size);
            memcpy(p + 8, f->sha256, 32);
            p += 40;
        }
        break;
    case CK_MSG_HAVE:
        st16(p, m->u.have.n_files);
        p += 2;
        for (uint16_t i = 0; i < m->u.have.n_files; i++, p += 8) st64(p, m->u.have.present[i]);
        break;
    case CK_MSG_PUSH:
        st16(p, m->u.push.file);
        st64(p + 2, m->u.push.offset);
        st32(p + 10, m->u.push.raw_len);
        st32(p + 14, m->u.push.crc32);
        p[18] = m->u.push.codec;
        p += PUSH_FIXED;
        memcpy(p, m->u.push.data, m->u.push.data_len);
        p += m->u.push.data_len;
        break;
    case CK_MSG_PUSH_DONE:
    case CK_MSG_READY: break;
    case CK_MSG_CHAIN:
        st64(p, m->u.chain.route);
        p = put_str(p + 8, &m->u.chain.next_host);
        st64(p, m->u.chain.next_route);
        p += 8;
        break;
    case CK_MSG_LINK:
        st64(p, m->u.link.route);
        p += 8;
        break;
    }
    return (size_t)(p - out) == len ? len : 0;
}

int ck_msg_equal(const ck_msg *a, const ck_msg *b) {
    size_t la = a ? encoded_size(a) : 0, lb = b ? encoded_size(b) : 0;
    if (la == 0 || la != lb) return 0;
    uint8_t *x = malloc(la), *y = malloc(lb);
    int eq = x && y && ck_wire_encode(a, x, la) == la && ck_wire_encode(b, y, lb) == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return eq;
}

size_t ck_wire_hidden_size(uint32_t n, uint32_t hidden, int dtype) {
    size_t es = ck_wire_dtype_size(dtype), len;
    if (!es || ck_mul_size(n, hidden, &len) || ck_mul_size(len, es, &len) || len > SIZE_MAX - 1 - HIDDEN_FIXED)
        return 0;
    return 1 + HIDDEN_FIXED + len;
}

/* ---- element conversion ---- */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Round to nearest, ties to even; NaN stays NaN (quiet, sign and top payload bits kept); overflow rounds
 * into the exponent and gives +-inf, as IEEE rounding does. */
static uint16_t f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

/* Round to nearest, ties to even, into IEEE binary16: magnitudes from 65520 up become +-inf, values below
 * 2^-14 become subnormals (multiples of 2^-24), at most 2^-25 become +-0; NaN stays a quiet NaN. */
static uint16_t f32_to_f16(float f) {
    uint32_t u = f32_bits(f), a = u & 0x7fffffffu;
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* >= 65520: rounds past 65504; or inf */
    if (a >= 0x38800000u) {                                 /* normal: rebias exponent 127 -> 15 */
        uint32_t h = (a >> 13) - (112u << 10), rem = a & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* a carry into the exponent is right */
        return (uint16_t)(sign | h);
    }
    uint32_t e = a >> 23;
    if (e < 102) return sign; /* below 2^-25: rounds to zero */
    uint32_t man = (a & 0x7fffff) | 0x800000, shift = 126 - e; /* value = man * 2^(e-150) = q * 2^-24 */
    uint32_t q = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++; /* q == 0x400 is the smallest normal: right too */
    return (uint16_t)(sign | q);
}

void ck_wire_pack(uint8_t *dst, const float *src, size_t n, int dtype) {
    switch (dtype) {
    case CK_WIRE_F32:
        for (size_t i = 0; i < n; i++) st32(dst + 4 * i, f32_bits(src[i]));
        break;
    case CK_WIRE_F16:
        for (size_t i = 0; i < n; i++) st16(dst + 2 * i, f32_to_f16(src[i]));
        break;
    case CK_WIRE_BF16:
        for (size_t i = 0; i < n; i++) st16(dst + 2 * i, f32_to_bf16(src[i]));
        break;
    default: break; /* unknown dtype: nothing to write (decode refuses such frames) */
    }
}

void ck_wire_unpack(float *dst, const uint8_t *src, size_t n, int dtype) {
    switch (dtype) {
    case CK_WIRE_F32:
        for (size_t i = 0; i < n; i++) dst[i] = bits_f32(ld32(src + 4 * i));
        break;
    case CK_WIRE_F16:
        for (size_t i = 0; i < n; i++) dst[i] = ck_f16_to_f32(ld16(src + 2 * i));
        break;
    case CK_WIRE_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = ck_bf16_to_f32(ld16(src + 2 * i));
        break;
    default: break;
    }
}
