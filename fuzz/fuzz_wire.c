/* fuzz_wire.c — libFuzzer target: the cluster message decoder (src/cluster/wire.h) on arbitrary frames.
 * Input: 4 bytes of limits (hidden, max_rows, max_ctx as u16 LE), then the frame. The frame is decoded
 * under those limits, under the same hidden size with unbounded rows and context (the overflow paths),
 * under a hidden size of UINT32_MAX, and with no hidden size agreed. Whatever decodes must re-encode to
 * exactly the input bytes (the format is canonical), and decode again to an equal message; anything else
 * aborts. The decoded payload is also unpacked, to run the converters over arbitrary bits. ASSIGN names
 * must come out plain file names and PUSH payloads within their bounds. */
#include "cluster/wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int str_eq(ck_wire_str a, ck_wire_str b) { return a.n == b.n && (a.n == 0 || !memcmp(a.p, b.p, a.n)); }

static int msg_eq(const ck_msg *a, const ck_msg *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case CK_MSG_HELLO:
        return a->u.hello.version == b->u.hello.version && !memcmp(a->u.hello.model_id, b->u.hello.model_id, 32) &&
               a->u.hello.first_layer == b->u.hello.first_layer && a->u.hello.last_layer == b->u.hello.last_layer &&
               a->u.hello.hidden == b->u.hello.hidden && a->u.hello.wire_dtype == b->u.hello.wire_dtype &&
               a->u.hello.max_ctx == b->u.hello.max_ctx && a->u.hello.max_rows == b->u.hello.max_rows &&
               str_eq(a->u.hello.name, b->u.hello.name);
    case CK_MSG_HELLO_OK:
        return a->u.hello_ok.version == b->u.hello_ok.version &&
               !memcmp(a->u.hello_ok.model_id, b->u.hello_ok.model_id, 32) &&
               a->u.hello_ok.first_layer == b->u.hello_ok.first_layer &&
               a->u.hello_ok.last_layer == b->u.hello_ok.last_layer &&
               a->u.hello_ok.mem_bytes == b->u.hello_ok.mem_bytes && a->u.hello_ok.threads == b->u.hello_ok.threads &&
               str_eq(a->u.hello_ok.backend, b->u.hello_ok.backend) && str_eq(a->u.hello_ok.name, b->u.hello_ok.name);
    case CK_MSG_FORWARD:
    case CK_MSG_HIDDEN:
        return a->u.hidden.session == b->u.hidden.session && a->u.hidden.pos == b->u.hidden.pos &&
               a->u.hidden.n == b->u.hidden.n && a->u.hidden.dtype == b->u.hidden.dtype &&
               a->u.hidden.compute_us == b->u.hidden.compute_us && a->u.hidden.data_len == b->u.hidden.data_len &&
               !memcmp(a->u.hidden.data, b->u.hidden.data, a->u.hidden.data_len);
    case CK_MSG_TRUNCATE:
    case CK_MSG_TRUNCATED:
        return a->u.truncate.session == b->u.truncate.session && a->u.truncate.pos == b->u.truncate.pos;
    case CK_MSG_PING:
    case CK_MSG_PONG: return a->u.ping.nonce == b->u.ping.nonce;
    case CK_MSG_GOODBYE: return 1;
    case CK_MSG_ERROR: return a->u.error.code == b->u.error.code && str_eq(a->u.error.message, b->u.error.message);
    case CK_MSG_ASSIGN:
        if (memcmp(a->u.assign.model_id, b->u.assign.model_id, 32) || a->u.assign.first_layer != b->u.assign.first_layer ||
            a->u.assign.last_layer != b->u.assign.last_layer || a->u.assign.n_files != b->u.assign.n_files)
            return 0;
        for (int i = 0; i < a->u.assign.n_files; i++)
            if (!str_eq(a->u.assign.files[i].name, b->u.assign.files[i].name) ||
                a->u.assign.files[i].size != b->u.assign.files[i].size ||
                memcmp(a->u.assign.files[i].sha256, b->u.assign.files[i].sha256, 32))
                return 0;
        return 1;
    case CK_MSG_HAVE:
        return a->u.have.n_files == b->u.have.n_files &&
               !memcmp(a->u.have.present, b->u.have.present, a->u.have.n_files * sizeof a->u.have.present[0]);
    case CK_MSG_PUSH:
        return a->u.push.file == b->u.push.file && a->u.push.offset == b->u.push.offset &&
               a->u.push.raw_len == b->u.push.raw_len && a->u.push.crc32 == b->u.push.crc32 &&
               a->u.push.codec == b->u.push.codec && a->u.push.data_len == b->u.push.data_len &&
               !memcmp(a->u.push.data, b->u.push.data, a->u.push.data_len);
    case CK_MSG_PUSH_DONE:
    case CK_MSG_READY: return 1;
    case CK_MSG_CHAIN:
        return a->u.chain.route == b->u.chain.route && str_eq(a->u.chain.next_host, b->u.chain.next_host) &&
               a->u.chain.next_route == b->u.chain.next_route;
    case CK_MSG_LINK: return a->u.link.route == b->u.link.route;
    }
    return 0;
}

static void check(const uint8_t *frame, size_t len, const ck_wire_limits *lim) {
    ck_msg m, m2;
    char err[256];
    if (ck_wire_decode(frame, len, lim, &m, err, sizeof err) != 0) {
        if (!memchr(err, 0, sizeof err) || !err[0]) abort(); /* a failure always says why */
        return;
    }
    if (m.type == CK_MSG_FORWARD || m.type == CK_MSG_HIDDEN) {
        const uint8_t *end = frame + len;
        if (m.u.hidden.data + m.u.hidden.data_len != end || m.u.hidden.n == 0 || m.u.hidden.n > lim->max_rows ||
            (uint64_t)m.u.hidden.pos + m.u.hidden.n > lim->max_ctx ||
            m.u.hidden.data_len != (size_t)m.u.hidden.n * lim->hidden * ck_wire_dtype_size(m.u.hidden.dtype))
            abort();
        size_t es = ck_wire_dtype_size(m.u.hidden.dtype), cnt = m.u.hidden.data_len / es;
        if (cnt <= 4096) {
            static float tmp[4096];
            static uint8_t back[4 * 4096];
            ck_wire_unpack(tmp, m.u.hidden.data, cnt, m.u.hidden.dtype);
            ck_wire_pack(back, tmp, cnt, m.u.hidden.dtype);
            /* f32 is bit-exact; f16/bf16 round-trip exactly except NaNs (quieted) */
            if (m.u.hidden.dtype == CK_WIRE_F32 && memcmp(back, m.u.hidden.data, m.u.hidden.data_len)) abort();
        }
    }
    if (m.type == CK_MSG_ASSIGN) { /* every name plain, the count in bounds */
        if (m.u.assign.n_files == 0 || m.u.assign.n_files > CK_WIRE_MAX_FILES) abort();
        for (int i = 0; i < m.u.assign.n_files; i++) {
            const ck_wire_str *nm = &m.u.assign.files[i].name;
            if (!ck_wire_file_name_valid(nm->p, nm->n) || memchr(nm->p, '/', nm->n)) abort();
        }
    }
    if (m.type == CK_MSG_PUSH) { /* the payload is the rest of the frame and within its bounds */
        if (m.u.push.data + m.u.push.data_len != frame + len || m.u.push.raw_len == 0 ||
            m.u.push.raw_len > CK_WIRE_PUSH_MAX_RAW || m.u.push.file >= CK_WIRE_MAX_FILES ||
            (m.u.push.codec == CK_WIRE_CODEC_RAW && m.u.push.data_len != m.u.push.raw_len) ||
            len > ck_wire_push_max_frame())
            abort();
    }
    uint8_t *out = malloc(len);
    if (!out) return;
    size_t n = ck_wire_encode(&m, out, len);
    if (n != len || memcmp(out, frame, len)) abort();
    if (ck_wire_decode(out, n, lim, &m2, err, sizeof err) != 0 || !msg_eq(&m, &m2)) abort();
    if (len > 1 && ck_wire_encode(&m, out, len - 1) != 0) abort(); /* never writes past cap */
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    ck_wire_limits lim = {data[0], data[1], (uint32_t)(data[2] | data[3] << 8)};
    const uint8_t *frame = data + 4;
    size_t len = size - 4;
    check(frame, len, &lim);
    ck_wire_limits wide = {lim.hidden, UINT32_MAX, UINT32_MAX};
    check(frame, len, &wide);
    ck_wire_limits huge = {UINT32_MAX, UINT32_MAX, UINT32_MAX};
    check(frame, len, &huge);
    ck_wire_limits none = {0, lim.max_rows, lim.max_ctx};
    check(frame, len, &none);
    return 0;
}
