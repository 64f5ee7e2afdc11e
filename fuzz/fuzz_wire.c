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
    if (ck_wire_decode(out, n, lim, &m2, err, sizeof err) != 0 || !ck_msg_equal(&m, &m2)) abort();
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
