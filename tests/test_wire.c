/* test_wire.c — the cluster message codec (src/cluster/wire.h): every message type round-trips; the exact
 * bytes of every type are pinned by hand-written arrays so the format cannot drift silently; every
 * malformed frame (empty, unknown type, each truncation length, trailing bytes, FORWARD/HIDDEN before a
 * hidden size is agreed, rows and positions over the limits, overflowing sizes, unknown dtypes, payloads
 * of the wrong length, strings over the cap) is refused with a reason naming the message and the field;
 * encode refuses invalid messages and short buffers; the push messages (ASSIGN, HAVE, PUSH) at and past
 * their bounds (16 files, 128-byte plain file names, 4 MiB raw chunks, the zstd bound, 64-bit offsets);
 * f32/f16/bf16 packing is exact / rounds to nearest
 * even, checked against hand-computed values and against a double-precision reference over a sweep of
 * f32 bit patterns.
 * `test_wire --corpus DIR` instead writes the fuzz seeds (fuzz/fuzz_wire.c: 4-byte limits prefix, then a
 * frame) into DIR; `make fuzz` uses it. */
#include "cluster/wire.h"
#include "testutil.h"

#include <zstd.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ck_wire_limits LIM = {.hidden = 4, .max_rows = 8, .max_ctx = 64};

static ck_wire_str S(const char *s) { return (ck_wire_str){s, (uint16_t)strlen(s)}; }


/* ---- the sample messages and their hand-written encodings ---- */

static const uint8_t PAYLOAD_F16[16] = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x7c,   /* row 0: 1 -2 0 inf */
                                        0x01, 0x00, 0xff, 0x7b, 0x00, 0x80, 0x00, 0x38};  /* row 1 */
static const uint8_t PAYLOAD_F32[16] = {0x00, 0x00, 0x80, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x00, 0x00, 0xc0, 0x7f};

#define MODEL_ID                                                                                                     \
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, \
        0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f

static const uint8_t B_HELLO[] = {
    0x01,                   /* type */
    0x01, 0x00, 0x00, 0x00, /* version 1 */
    MODEL_ID,               /* model_id */
    0x02, 0x00, 0x00, 0x00, /* first_layer 2 */
    0x05, 0x00, 0x00, 0x00, /* last_layer 5 */
    0x00, 0x01, 0x00, 0x00, /* hidden 256 */
    0x02,                   /* wire_dtype bf16 */
    0x00, 0x10, 0x00, 0x00, /* max_ctx 4096 */
    0x00, 0x02, 0x00, 0x00, /* max_rows 512 */
    0x02, 0x00, 'w',  '1',  /* name "w1" */
};
static const uint8_t B_HELLO_OK[] = {
    0x02, 0x01, 0x00, 0x00, 0x00, MODEL_ID, 0x02, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* mem_bytes 0x0102030405060708 */
    0x10, 0x00, 0x00, 0x00,                         /* threads 16 */
    0x03, 0x00, 'c',  'p',  'u',                    /* backend "cpu" */
    0x00, 0x00,                                     /* name "" */
};
static const uint8_t B_FORWARD[] = {
    0x03, 0x07, 0x00, 0x00, 0x00, /* session 7 */
    0x03, 0x00, 0x00, 0x00,       /* pos 3 */
    0x02, 0x00, 0x00, 0x00,       /* n 2 */
    0x01,                         /* dtype f16 */
    0x00, 0x3c, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x7c, 0x01, 0x00, 0xff, 0x7b, 0x00, 0x80, 0x00, 0x38,
};
static const uint8_t B_HIDDEN[] = {
    0x04, 0xff, 0xff, 0xff, 0xff,                   /* session 0xffffffff */
    0x3f, 0x00, 0x00, 0x00,                         /* pos 63 */
    0x01, 0x00, 0x00, 0x00,                         /* n 1 */
    0x00,                                           /* dtype f32 */
    0x39, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* compute_us 12345 */
    0x00, 0x00, 0x80, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x00, 0x00, 0xc0, 0x7f,
};
static const uint8_t B_TRUNCATE[] = {0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
static const uint8_t B_TRUNCATED[] = {0x06, 0x01, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00};
static const uint8_t B_PING[] = {0x07, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01};
static const uint8_t B_PONG[] = {0x08, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01};
static const uint8_t B_GOODBYE[] = {0x09};
static const uint8_t B_ERROR[] = {0x0a, 0x2a, 0x00, 0x00, 0x00, 0x05, 0x00, 'o', 'o', 'p', 's', '!'};
#define SHA_AA                                                                                                       \
    0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, \
        0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa
static const uint8_t B_ASSIGN[] = {
    0x0b,                   /* type */
    MODEL_ID,               /* model_id */
    0x01, 0x00, 0x00, 0x00, /* first_layer 1 */
    0x02, 0x00, 0x00, 0x00, /* last_layer 2 */
    0x02, 0x00,             /* n_files 2 */
    0x0b, 0x00, 'c', 'o', 'n', 'f', 'i', 'g', '.', 'j', 's', 'o', 'n', /* name "config.json" */
    0x68, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,                     /* size 872 */
    SHA_AA,                                                             /* sha256 */
    0x01, 0x00, 'a',                                                    /* name "a" */
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,                     /* size 0x0102030405060708 */
    MODEL_ID,                                                           /* sha256 */
};
static const uint8_t B_HAVE[] = {
    0x0c, 0x02, 0x00,                               /* n_files 2 */
    0x68, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 872 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0 */
};
static const uint8_t B_PUSH[] = {
    0x0d, 0x01, 0x00,                               /* file 1 */
    0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, /* offset 1 MiB */
    0x04, 0x00, 0x00, 0x00,                         /* raw_len 4 */
    0x11, 0xcd, 0x82, 0xed,                         /* crc32("abcd") = 0xed82cd11 */
    0x00,                                           /* codec raw */
    'a', 'b', 'c', 'd',
};
static const uint8_t B_PUSH_DONE[] = {0x0e};
static const uint8_t B_READY[] = {0x0f};
static const uint8_t B_CHAIN[] = {0x10, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* route */
                                  0x0e, 0x00, '1', '2', '7', '.', '0', '.', '0', '.', '1', ':', '1', '0', '1', '2',
                                  0x02, 0, 0, 0, 0, 0, 0, 0};                             /* next_route 2 */
static const uint8_t B_LINK[] = {0x11, 0x02, 0, 0, 0, 0, 0, 0, 0};

typedef struct sample {
    ck_msg m;
    const uint8_t *bytes;
    size_t len;
} sample;

#define NSAMPLES 17

static void samples(sample s[NSAMPLES]) {
    memset(s, 0, sizeof(sample) * NSAMPLES);
    uint8_t id[32];
    for (int i = 0; i < 32; i++) id[i] = (uint8_t)i;
    ck_msg *m = &s[0].m;
    m->type = CK_MSG_HELLO;
    m->u.hello.version = CK_WIRE_VERSION;
    memcpy(m->u.hello.model_id, id, 32);
    m->u.hello.first_layer = 2, m->u.hello.last_layer = 5, m->u.hello.hidden = 256;
    m->u.hello.wire_dtype = CK_WIRE_BF16, m->u.hello.max_ctx = 4096, m->u.hello.max_rows = 512;
    m->u.hello.name = S("w1");
    s[0].bytes = B_HELLO, s[0].len = sizeof B_HELLO;

    m = &s[1].m;
    m->type = CK_MSG_HELLO_OK;
    m->u.hello_ok.version = CK_WIRE_VERSION;
    memcpy(m->u.hello_ok.model_id, id, 32);
    m->u.hello_ok.first_layer = 2, m->u.hello_ok.last_layer = 5;
    m->u.hello_ok.mem_bytes = 0x0102030405060708ull, m->u.hello_ok.threads = 16;
    m->u.hello_ok.backend = S("cpu"), m->u.hello_ok.name = S("");
    s[1].bytes = B_HELLO_OK, s[1].len = sizeof B_HELLO_OK;

    m = &s[2].m;
    m->type = CK_MSG_FORWARD;
    m->u.hidden.session = 7, m->u.hidden.pos = 3, m->u.hidden.n = 2, m->u.hidden.dtype = CK_WIRE_F16;
    m->u.hidden.data = PAYLOAD_F16, m->u.hidden.data_len = sizeof PAYLOAD_F16;
    s[2].bytes = B_FORWARD, s[2].len = sizeof B_FORWARD;

    m = &s[3].m;
    m->type = CK_MSG_HIDDEN;
    m->u.hidden.session = 0xffffffffu, m->u.hidden.pos = 63, m->u.hidden.n = 1, m->u.hidden.dtype = CK_WIRE_F32;
    m->u.hidden.compute_us = 12345;
    m->u.hidden.data = PAYLOAD_F32, m->u.hidden.data_len = sizeof PAYLOAD_F32;
    s[3].bytes = B_HIDDEN, s[3].len = sizeof B_HIDDEN;

    s[4].m.type = CK_MSG_TRUNCATE, s[4].m.u.truncate.session = 1, s[4].m.u.truncate.pos = 0;
    s[4].bytes = B_TRUNCATE, s[4].len = sizeof B_TRUNCATE;
    s[5].m.type = CK_MSG_TRUNCATED, s[5].m.u.truncate.session = 1, s[5].m.u.truncate.pos = 32;
    s[5].bytes = B_TRUNCATED, s[5].len = sizeof B_TRUNCATED;
    s[6].m.type = CK_MSG_PING, s[6].m.u.ping.nonce = 0x0123456789abcdefull;
    s[6].bytes = B_PING, s[6].len = sizeof B_PING;
    s[7].m.type = CK_MSG_PONG, s[7].m.u.ping.nonce = 0x0123456789abcdefull;
    s[7].bytes = B_PONG, s[7].len = sizeof B_PONG;
    s[8].m.type = CK_MSG_GOODBYE;
    s[8].bytes = B_GOODBYE, s[8].len = sizeof B_GOODBYE;
    s[9].m.type = CK_MSG_ERROR, s[9].m.u.error.code = 42, s[9].m.u.error.message = S("oops!");
    s[9].bytes = B_ERROR, s[9].len = sizeof B_ERROR;

    m = &s[10].m;
    m->type = CK_MSG_ASSIGN;
    memcpy(m->u.assign.model_id, id, 32);
    m->u.assign.first_layer = 1, m->u.assign.last_layer = 2, m->u.assign.n_files = 2;
    m->u.assign.files[0].name = S("config.json"), m->u.assign.files[0].size = 872;
    memset(m->u.assign.files[0].sha256, 0xaa, 32);
    m->u.assign.files[1].name = S("a"), m->u.assign.files[1].size = 0x0102030405060708ull;
    memcpy(m->u.assign.files[1].sha256, id, 32);
    s[10].bytes = B_ASSIGN, s[10].len = sizeof B_ASSIGN;
    m = &s[11].m;
    m->type = CK_MSG_HAVE, m->u.have.n_files = 2, m->u.have.present[0] = 872, m->u.have.present[1] = 0;
    s[11].bytes = B_HAVE, s[11].len = sizeof B_HAVE;
    m = &s[12].m;
    m->type = CK_MSG_PUSH, m->u.push.file = 1, m->u.push.offset = 1u << 20, m->u.push.raw_len = 4;
    m->u.push.crc32 = 0xed82cd11u, m->u.push.codec = CK_WIRE_CODEC_RAW;
    m->u.push.data = (const uint8_t *)"abcd", m->u.push.data_len = 4;
    s[12].bytes = B_PUSH, s[12].len = sizeof B_PUSH;
    s[13].m.type = CK_MSG_PUSH_DONE, s[13].bytes = B_PUSH_DONE, s[13].len = sizeof B_PUSH_DONE;
    s[14].m.type = CK_MSG_READY, s[14].bytes = B_READY, s[14].len = sizeof B_READY;
    s[15].m.type = CK_MSG_CHAIN, s[15].m.u.chain.route = 0x0102030405060708ull;
    s[15].m.u.chain.next_host = S("127.0.0.1:1012"), s[15].m.u.chain.next_route = 2;
    s[15].bytes = B_CHAIN, s[15].len = sizeof B_CHAIN;
    s[16].m.type = CK_MSG_LINK, s[16].m.u.link.route = 2, s[16].bytes = B_LINK, s[16].len = sizeof B_LINK;
}

static ck_msg s_push_sample(void) {
    sample s[NSAMPLES];
    samples(s);
    return s[12].m;
}

/* ---- codec tests ---- */

static void test_layout_and_roundtrip(void) {
    static const char *const names[NSAMPLES] = {"HELLO", "HELLO_OK", "FORWARD", "HIDDEN",  "TRUNCATE",
                                                "TRUNCATED", "PING", "PONG", "GOODBYE", "ERROR",
                                                "ASSIGN", "HAVE", "PUSH", "PUSH_DONE", "READY", "CHAIN", "LINK"};
    sample s[NSAMPLES];
    samples(s);
    uint8_t buf[256];
    char err[256];
    for (int i = 0; i < NSAMPLES; i++) {
        const char *name = ck_msg_name(s[i].m.type);
        size_t len = ck_wire_encode(&s[i].m, buf, sizeof buf);
        CK_EXPECT(len == s[i].len, "%s: encoded %zu bytes, expected %zu", name, len, s[i].len);
        CK_EXPECT(len == s[i].len && !memcmp(buf, s[i].bytes, len), "%s: bytes differ from the hand-written layout",
                  name);
        ck_msg d;
        err[0] = 0;
        int rc = ck_wire_decode(s[i].bytes, s[i].len, &LIM, &d, err, sizeof err);
        CK_EXPECT(rc == 0, "%s: decode of the hand-written bytes: %s", name, err);
        CK_EXPECT(rc == 0 && ck_msg_equal(&d, &s[i].m), "%s: decoded message differs", name);
        /* payloads and strings point into the input, not into a copy */
        if (rc == 0 && (d.type == CK_MSG_FORWARD || d.type == CK_MSG_HIDDEN))
            CK_EXPECT(d.u.hidden.data == s[i].bytes + s[i].len - d.u.hidden.data_len, "%s: data not in the frame",
                      name);
        if (rc == 0 && d.type == CK_MSG_HELLO)
            CK_EXPECT(d.u.hello.name.p == (const char *)s[i].bytes + 60, "HELLO: name not in the frame");
        /* exactly enough room works, one byte less does not */
        CK_EXPECT(ck_wire_encode(&s[i].m, buf, s[i].len) == s[i].len, "%s: encode into an exact buffer", name);
        CK_EXPECT(ck_wire_encode(&s[i].m, buf, s[i].len - 1) == 0, "%s: encode into a short buffer", name);
        CK_EXPECT(!strcmp(name, names[i]), "name of type %d: %s", (int)s[i].m.type, name);
    }
    CK_EXPECT(!strcmp(ck_msg_name(0), "?") && !strcmp(ck_msg_name(18), "?") && !strcmp(ck_msg_name(-1), "?"),
              "unknown type names");

    /* strings at the cap round-trip; a HELLO_OK with both strings full */
    static char big[CK_WIRE_MAX_STR];
    memset(big, 'x', sizeof big);
    ck_msg m = s[1].m, d;
    m.u.hello_ok.backend = (ck_wire_str){big, CK_WIRE_MAX_STR};
    m.u.hello_ok.name = (ck_wire_str){big, CK_WIRE_MAX_STR};
    static uint8_t bb[4096];
    size_t len = ck_wire_encode(&m, bb, sizeof bb);
    CK_EXPECT(len == 1 + 56 + 2 * (2 + CK_WIRE_MAX_STR), "HELLO_OK at the string cap: %zu bytes", len);
    CK_EXPECT(ck_wire_decode(bb, len, &LIM, &d, err, sizeof err) == 0 && ck_msg_equal(&d, &m), "HELLO_OK at the cap: %s",
              err);

    /* FORWARD/HIDDEN at the limits: max_rows rows ending exactly at max_ctx, each dtype */
    for (int dt = 0; dt < 3; dt++) {
        static uint8_t data[8 * 4 * 4], frame[512];
        for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7 + 1);
        ck_msg f = {.type = dt == 1 ? CK_MSG_HIDDEN : CK_MSG_FORWARD};
        f.u.hidden.session = 9, f.u.hidden.pos = 56, f.u.hidden.n = 8, f.u.hidden.dtype = (uint8_t)dt;
        f.u.hidden.compute_us = dt == 1 ? UINT64_MAX : 0;
        f.u.hidden.data = data, f.u.hidden.data_len = 8 * 4 * ck_wire_dtype_size(dt);
        len = ck_wire_encode(&f, frame, sizeof frame);
        CK_EXPECT(len == ck_wire_hidden_size(8, 4, dt) - (f.type == CK_MSG_FORWARD ? 8 : 0), "dtype %d: size %zu", dt,
                  len);
        CK_EXPECT(ck_wire_decode(frame, len, &LIM, &d, err, sizeof err) == 0 && ck_msg_equal(&d, &f), "dtype %d: %s", dt,
                  err);
    }
}

static void expect_reject(const char *what, const uint8_t *b, size_t len, const ck_wire_limits *lim,
                          const char *n1, const char *n2) {
    ck_msg m;
    char err[256] = "";
    int rc = ck_wire_decode(b, len, lim, &m, err, sizeof err);
    CK_EXPECT(rc == -1, "%s: accepted", what);
    CK_EXPECT(strstr(err, n1) != NULL, "%s: reason '%s' lacks '%s'", what, err, n1);
    if (n2) CK_EXPECT(strstr(err, n2) != NULL, "%s: reason '%s' lacks '%s'", what, err, n2);
}

/* A FORWARD or HIDDEN frame with the given header and `data_len` payload bytes, into b; returns its length. */
static size_t make_hidden(uint8_t *b, int type, uint32_t pos, uint32_t n, uint8_t dtype, size_t data_len) {
    ck_msg m = {.type = (ck_msg_type)type};
    static const uint8_t zeros[4096];
    m.u.hidden.session = 1, m.u.hidden.pos = pos, m.u.hidden.n = 1, m.u.hidden.dtype = CK_WIRE_F32;
    m.u.hidden.data = zeros, m.u.hidden.data_len = 4;
    size_t len = ck_wire_encode(&m, b, 64);
    len -= 4;                                   /* replace the placeholder row */
    for (int i = 0; i < 4; i++) b[9 + i] = (uint8_t)(n >> (8 * i));
    b[13] = dtype;
    memset(b + len, 0, data_len);
    return len + data_len;
}

static void test_rejections(void) {
    sample s[NSAMPLES];
    samples(s);
    uint8_t b[4096];
    ck_msg m;
    char err[256];

    expect_reject("empty frame", b, 0, &LIM, "empty", NULL);
    CK_EXPECT(ck_wire_decode(NULL, 5, &LIM, &m, err, sizeof err) == -1, "NULL buffer accepted");
    for (int t = 0; t < 256; t++) {
        if (t >= CK_MSG_HELLO && t <= CK_MSG_LINK) continue;
        b[0] = (uint8_t)t;
        memset(b + 1, 0, 64);
        char what[32];
        snprintf(what, sizeof what, "type %d", t);
        expect_reject(what, b, 9, &LIM, "unknown message type", NULL);
    }

    /* every truncation length and one trailing byte, for every type */
    static const char *const first_field[NSAMPLES] = {"version", "version", "session", "session", "session",
                                                      "session", "nonce",   "nonce",   NULL,      "code",
                                                      "model_id", "n_files", "file", NULL, NULL};
    for (int i = 0; i < NSAMPLES; i++) {
        const char *name = ck_msg_name(s[i].m.type);
        for (size_t cut = 0; cut < s[i].len; cut++) {
            char what[64];
            snprintf(what, sizeof what, "%s cut to %zu bytes", name, cut);
            expect_reject(what, s[i].bytes, cut, &LIM, cut ? name : "empty", NULL);
        }
        if (first_field[i]) expect_reject("type byte alone", s[i].bytes, 1, &LIM, name, first_field[i]);
        memcpy(b, s[i].bytes, s[i].len);
        b[s[i].len] = 0;
        int hidden = s[i].m.type == CK_MSG_FORWARD || s[i].m.type == CK_MSG_HIDDEN;
        expect_reject("trailing byte", b, s[i].len + 1, &LIM, name,
                      hidden ? "hidden data" : s[i].m.type == CK_MSG_PUSH ? "raw data is 5 bytes" : "trailing");
    }
    /* the field named where a truncation falls */
    expect_reject("HELLO in model_id", B_HELLO, 20, &LIM, "HELLO", "model_id");
    expect_reject("HELLO in name", B_HELLO, sizeof B_HELLO - 1, &LIM, "HELLO", "name");
    expect_reject("HELLO_OK in mem_bytes", B_HELLO_OK, 50, &LIM, "HELLO_OK", "mem_bytes");
    expect_reject("HELLO_OK in backend", B_HELLO_OK, 60, &LIM, "HELLO_OK", "backend");
    expect_reject("HELLO_OK in name", B_HELLO_OK, sizeof B_HELLO_OK - 1, &LIM, "HELLO_OK", "name");
    expect_reject("HIDDEN in compute_us", B_HIDDEN, 16, &LIM, "HIDDEN", "compute_us");
    expect_reject("ERROR in message", B_ERROR, 8, &LIM, "ERROR", "message");
    expect_reject("FORWARD in data", B_FORWARD, sizeof B_FORWARD - 2, &LIM, "FORWARD", "hidden data is 14 bytes");
    /* a HELLO from another wire version says so */
    memcpy(b, B_HELLO, 10);
    b[1] = 2;
    expect_reject("HELLO v2", b, 10, &LIM, "model_id", "wire version 2");

    /* FORWARD / HIDDEN against the limits */
    const ck_wire_limits none = {0, 8, 64};
    expect_reject("FORWARD before HELLO", B_FORWARD, sizeof B_FORWARD, &none, "FORWARD", "hidden");
    expect_reject("HIDDEN before HELLO", B_HIDDEN, sizeof B_HIDDEN, &none, "HIDDEN", "hidden");
    expect_reject("FORWARD, no limits", B_FORWARD, sizeof B_FORWARD, NULL, "FORWARD", "hidden");
    for (int i = 0; i < NSAMPLES; i++) /* everything else decodes without agreed limits */
        if (s[i].m.type != CK_MSG_FORWARD && s[i].m.type != CK_MSG_HIDDEN)
            CK_EXPECT(ck_wire_decode(s[i].bytes, s[i].len, &none, &m, err, sizeof err) == 0 &&
                          ck_wire_decode(s[i].bytes, s[i].len, NULL, &m, err, sizeof err) == 0,
                      "%s without limits: %s", ck_msg_name(s[i].m.type), err);
    for (int t = CK_MSG_FORWARD; t <= CK_MSG_HIDDEN; t++) {
        const char *name = ck_msg_name(t);
        size_t len = make_hidden(b, t, 0, 0, CK_WIRE_F32, 0);
        expect_reject("n 0", b, len, &LIM, name, "n 0");
        len = make_hidden(b, t, 0, 9, CK_WIRE_F32, 9 * 16);
        expect_reject("n 9 > max_rows", b, len, &LIM, name, "max_rows");
        len = make_hidden(b, t, 0, 8, CK_WIRE_F32, 8 * 16);
        CK_EXPECT(ck_wire_decode(b, len, &LIM, &m, err, sizeof err) == 0, "%s: n = max_rows: %s", name, err);
        len = make_hidden(b, t, 57, 8, CK_WIRE_F32, 8 * 16);
        expect_reject("pos + n > max_ctx", b, len, &LIM, name, "max_ctx");
        len = make_hidden(b, t, 63, 1, CK_WIRE_F32, 16);
        CK_EXPECT(ck_wire_decode(b, len, &LIM, &m, err, sizeof err) == 0, "%s: pos + n = max_ctx: %s", name, err);
        len = make_hidden(b, t, 64, 1, CK_WIRE_F32, 16);
        expect_reject("pos = max_ctx", b, len, &LIM, name, "max_ctx");
        /* pos + n wraps in 32 bits: must still be refused */
        const ck_wire_limits wide = {4, UINT32_MAX, UINT32_MAX};
        len = make_hidden(b, t, UINT32_MAX, 2, CK_WIRE_F32, 32);
        expect_reject("pos + n wraps", b, len, &wide, name, "max_ctx");
        len = make_hidden(b, t, UINT32_MAX - 1, 1, CK_WIRE_F32, 16);
        CK_EXPECT(ck_wire_decode(b, len, &wide, &m, err, sizeof err) == 0, "%s: last position: %s", name, err);
        /* n * hidden * 4 overflows size_t */
        const ck_wire_limits huge = {UINT32_MAX, UINT32_MAX, UINT32_MAX};
        len = make_hidden(b, t, 0, UINT32_MAX, CK_WIRE_F32, 16);
        expect_reject("size overflow", b, len, &huge, name, "overflow");
        len = make_hidden(b, t, 0, 1, CK_WIRE_F32, 16);
        expect_reject("hidden UINT32_MAX, 16 bytes", b, len, &huge, name, "hidden data is 16 bytes");
        for (int dt = 3; dt < 256; dt += 63) {
            len = make_hidden(b, t, 0, 1, (uint8_t)dt, 16);
            expect_reject("unknown dtype", b, len, &LIM, name, "dtype");
        }
        /* wrong payload length for the dtype: f32 rows sent as f16, one byte short / long */
        len = make_hidden(b, t, 0, 2, CK_WIRE_F16, 32);
        expect_reject("f16 with f32 bytes", b, len, &LIM, name, "hidden data is 32 bytes");
        len = make_hidden(b, t, 0, 2, CK_WIRE_BF16, 15);
        expect_reject("one byte short", b, len, &LIM, name, "needs 16");
        len = make_hidden(b, t, 0, 2, CK_WIRE_BF16, 17);
        expect_reject("one byte long", b, len, &LIM, name, "needs 16");
        len = make_hidden(b, t, 0, 2, CK_WIRE_BF16, 16);
        CK_EXPECT(ck_wire_decode(b, len, &LIM, &m, err, sizeof err) == 0 && m.u.hidden.data_len == 16,
                  "%s: 2 bf16 rows: %s", name, err);
    }

    /* HELLO with an unknown wire dtype */
    memcpy(b, B_HELLO, sizeof B_HELLO);
    b[49] = 3;
    expect_reject("HELLO dtype 3", b, sizeof B_HELLO, &LIM, "HELLO", "wire_dtype");

    /* strings over the cap: the length alone is refused, with or without the bytes */
    static uint8_t big[2048];
    ck_msg e = {.type = CK_MSG_ERROR};
    e.u.error.code = 1;
    size_t len = ck_wire_encode(&e, big, sizeof big);
    big[len - 2] = (uint8_t)((CK_WIRE_MAX_STR + 1) & 0xff), big[len - 1] = (uint8_t)((CK_WIRE_MAX_STR + 1) >> 8);
    expect_reject("ERROR message over the cap, no bytes", big, len, &LIM, "ERROR", "message is 1025 bytes");
    memset(big + len, 'x', CK_WIRE_MAX_STR + 1);
    expect_reject("ERROR message over the cap", big, len + CK_WIRE_MAX_STR + 1, &LIM, "ERROR", "message");
    big[len - 2] = 0xff, big[len - 1] = 0xff;
    expect_reject("ERROR message 65535", big, len + CK_WIRE_MAX_STR + 1, &LIM, "ERROR", "65535");
    memcpy(big, B_HELLO, sizeof B_HELLO);
    big[sizeof B_HELLO - 4] = 0x01, big[sizeof B_HELLO - 3] = 0x04; /* 0x401 = 1025 */
    expect_reject("HELLO name over the cap", big, sizeof B_HELLO, &LIM, "HELLO", "name is 1025");
    memcpy(big, B_HELLO_OK, sizeof B_HELLO_OK);
    big[57] = 0x01, big[58] = 0x04;
    expect_reject("HELLO_OK backend over the cap", big, sizeof B_HELLO_OK, &LIM, "HELLO_OK", "backend is 1025");
    memcpy(big, B_HELLO_OK, sizeof B_HELLO_OK);
    big[sizeof B_HELLO_OK - 2] = 0x01, big[sizeof B_HELLO_OK - 1] = 0x04;
    expect_reject("HELLO_OK name over the cap", big, sizeof B_HELLO_OK, &LIM, "HELLO_OK", "name is 1025");
    /* a string length that claims more than the frame holds */
    memcpy(big, B_ERROR, sizeof B_ERROR);
    big[5] = 6;
    expect_reject("ERROR message longer than the frame", big, sizeof B_ERROR, &LIM, "ERROR", "message");
    big[5] = 4;
    expect_reject("ERROR message shorter than the frame", big, sizeof B_ERROR, &LIM, "ERROR", "trailing");
}

static void test_encode_invalid(void) {
    sample s[NSAMPLES];
    samples(s);
    static uint8_t b[8192];
    static char big[CK_WIRE_MAX_STR + 1];
    ck_msg m = {.type = (ck_msg_type)0};
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "type 0 encoded");
    m.type = (ck_msg_type)18;
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "type 18 encoded");
    CK_EXPECT(ck_wire_encode(NULL, b, sizeof b) == 0, "NULL message encoded");
    CK_EXPECT(ck_wire_encode(&s[8].m, NULL, 0) == 0, "NULL buffer");
    m = s[9].m;
    m.u.error.message = (ck_wire_str){big, CK_WIRE_MAX_STR + 1};
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "ERROR message over the cap encoded");
    m.u.error.message = (ck_wire_str){NULL, 3};
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "NULL string with a length encoded");
    m.u.error.message = (ck_wire_str){NULL, 0};
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 7, "NULL empty string");
    m = s[0].m;
    m.u.hello.name = (ck_wire_str){big, CK_WIRE_MAX_STR + 1};
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "HELLO name over the cap encoded");
    m = s[0].m;
    m.u.hello.wire_dtype = 7;
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "HELLO unknown wire_dtype encoded");
    m = s[1].m;
    m.u.hello_ok.backend = (ck_wire_str){big, CK_WIRE_MAX_STR + 1};
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "HELLO_OK backend over the cap encoded");
    for (int i = 2; i <= 3; i++) {
        m = s[i].m;
        m.u.hidden.n = 0;
        CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "n 0 encoded");
        m = s[i].m;
        m.u.hidden.dtype = 3;
        CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "dtype 3 encoded");
        m = s[i].m;
        m.u.hidden.data_len -= 1;
        CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "partial row encoded");
        m = s[i].m;
        m.u.hidden.data_len = 0;
        CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "empty payload encoded");
        m = s[i].m;
        m.u.hidden.data = NULL;
        CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "NULL payload encoded");
        m = s[i].m;
        m.u.hidden.data_len = SIZE_MAX - 3; /* a whole number of rows, but no frame that large exists */
        m.u.hidden.n = 1, m.u.hidden.dtype = CK_WIRE_BF16;
        CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "huge payload encoded");
    }

    CK_EXPECT(ck_wire_dtype_size(CK_WIRE_F32) == 4 && ck_wire_dtype_size(CK_WIRE_F16) == 2 &&
                  ck_wire_dtype_size(CK_WIRE_BF16) == 2 && ck_wire_dtype_size(3) == 0 && ck_wire_dtype_size(-1) == 0,
              "dtype sizes");
    CK_EXPECT(ck_wire_hidden_size(2, 4, CK_WIRE_F16) == 22 + 16, "hidden size: %zu", ck_wire_hidden_size(2, 4, 1));
    CK_EXPECT(ck_wire_hidden_size(1, 4, CK_WIRE_F32) == sizeof B_HIDDEN, "hidden size = HIDDEN frame");
    CK_EXPECT(ck_wire_hidden_size(1, 4, 3) == 0, "hidden size of an unknown dtype");
    CK_EXPECT(SIZE_MAX > UINT32_MAX && ck_wire_hidden_size(UINT32_MAX, UINT32_MAX, CK_WIRE_F32) == 0,
              "hidden size overflow");
}

/* ---- element conversion ---- */

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint16_t pack1(float f, int dtype) {
    uint8_t b[2];
    ck_wire_pack(b, &f, 1, dtype);
    return (uint16_t)(b[0] | b[1] << 8);
}

static float unpack1(uint16_t h, int dtype) {
    uint8_t b[2] = {(uint8_t)h, (uint8_t)(h >> 8)};
    float f;
    ck_wire_unpack(&f, b, 1, dtype);
    return f;
}

/* The binary16 value of a finite pattern h, in double. */
static double f16_value(uint16_t h) {
    int e = (h >> 10) & 0x1f, man = h & 0x3ff;
    double v = e ? ldexp(1024 + man, e - 25) : ldexp(man, -24);
    return (h & 0x8000) ? -v : v;
}

/* Reference f32 -> f16 by search over the ordered positive patterns, in double: nearest, ties to even,
 * 0x7c00 (inf) standing for 65536 so that exactly the values from 65520 up overflow. */
static uint16_t f16_ref(float f) {
    uint16_t sign = (uint16_t)(fbits(f) >> 16 & 0x8000);
    double a = fabs((double)f);
    unsigned lo = 0, hi = 0x7c00; /* largest pattern whose value <= a */
    while (lo < hi) {
        unsigned mid = (lo + hi + 1) / 2;
        double v = mid == 0x7c00 ? 65536.0 : f16_value((uint16_t)mid);
        if (v <= a) lo = mid;
        else hi = mid - 1;
    }
    if (lo == 0x7c00) return sign | 0x7c00;
    double vlo = f16_value((uint16_t)lo), vhi = lo + 1 == 0x7c00 ? 65536.0 : f16_value((uint16_t)(lo + 1));
    unsigned r = (a - vlo < vhi - a || (a - vlo == vhi - a && !(lo & 1))) ? lo : lo + 1;
    return (uint16_t)(sign | r);
}

/* Reference f32 -> bf16 in double: the two neighbours are the f32 value truncated and one ulp up. */
static uint16_t bf16_ref(float f) {
    uint32_t u = fbits(f);
    uint16_t t = (uint16_t)(u >> 16);
    if (isinf(f)) return t;
    double a = fabs((double)f), vlo = fabs((double)bitsf((uint32_t)t << 16));
    double vhi = (t & 0x7fff) == 0x7f7f ? ldexp(1.0, 128) : fabs((double)bitsf((uint32_t)(t + 1) << 16));
    return (a - vlo < vhi - a || (a - vlo == vhi - a && !(t & 1))) ? t : (uint16_t)(t + 1);
}

static void test_pack(void) {
    /* f32: bit-exact both ways (NaN payloads, -0, subnormals), little-endian on the wire */
    const uint32_t f32s[] = {0x3f800000u, 0x80000000u, 0x00000001u, 0x7f800000u, 0xff800000u,
                             0x7fc00001u, 0xffbfffffu, 0x12345678u, 0x7f7fffffu};
    const size_t nf = sizeof f32s / sizeof f32s[0];
    float src[16], back[16];
    uint8_t buf[64];
    for (size_t i = 0; i < nf; i++) src[i] = bitsf(f32s[i]);
    ck_wire_pack(buf, src, nf, CK_WIRE_F32);
    CK_EXPECT(buf[0] == 0x00 && buf[1] == 0x00 && buf[2] == 0x80 && buf[3] == 0x3f, "1.0f little-endian");
    CK_EXPECT(buf[28] == 0x78 && buf[31] == 0x12, "0x12345678 little-endian");
    ck_wire_unpack(back, buf, nf, CK_WIRE_F32);
    for (size_t i = 0; i < nf; i++) CK_EXPECT(fbits(back[i]) == f32s[i], "f32 %08x round trip", f32s[i]);

    /* f16, hand-computed */
    static const struct { float f; uint16_t h; } f16[] = {
        {1.0f, 0x3c00}, {-2.0f, 0xc000}, {0.0f, 0x0000}, {-0.0f, 0x8000}, {0.5f, 0x3800},
        {65504.0f, 0x7bff},                     /* largest finite */
        {65519.99609375f, 0x7bff},              /* just below the overflow threshold */
        {65520.0f, 0x7c00},                     /* the tie between 65504 and 2^16 goes to even: inf */
        {1e6f, 0x7c00}, {-1e6f, 0xfc00}, {3.4e38f, 0x7c00},
        {1.00048828125f, 0x3c00},               /* 1 + 2^-11: tie, down to even 0x3c00 */
        {1.00146484375f, 0x3c02},               /* 1 + 3*2^-11: tie, up to even 0x3c02 */
        {1.00048828125f + 0x1p-20f, 0x3c01},    /* just above the tie */
        {1.00048828125f - 0x1p-23f, 0x3c00},    /* just below the tie */
        {2049.0f, 0x6800},                      /* 2048 + 1: tie between 2048 and 2050 -> 2048 */
        {2051.0f, 0x6802},                      /* 2051: tie between 2050 and 2052 -> 2052 */
        {0x1p-14f, 0x0400},                     /* smallest normal */
        {0x1p-14f - 0x1p-25f, 0x0400},          /* 1023.5 * 2^-24: tie, up to even 0x400 (normal) */
        {0x1p-14f - 0x3p-25f, 0x03fe},          /* 1022.5 * 2^-24: tie, down to even 0x3fe */
        {0x1p-24f, 0x0001},                     /* smallest subnormal */
        {0x1p-25f, 0x0000},                     /* half of it: tie, to even 0 */
        {0x1p-25f + 0x1p-40f, 0x0001},          /* just above half */
        {0x3p-25f, 0x0002},                     /* 1.5 * 2^-24: tie -> 2 */
        {0x5p-25f, 0x0002},                     /* 2.5 * 2^-24: tie -> 2 */
        {-0x1p-24f, 0x8001}, {-0x1p-26f, 0x8000}, {1e-10f, 0x0000}, {0x1p-149f, 0x0000},
        {0x3p-16f, 0x0300},                     /* 0.75 * 2^-14 = 768 * 2^-24 */
    };
    for (size_t i = 0; i < sizeof f16 / sizeof f16[0]; i++) {
        uint16_t h = pack1(f16[i].f, CK_WIRE_F16);
        CK_EXPECT(h == f16[i].h, "f16(%a) = %04x, expected %04x", (double)f16[i].f, h, f16[i].h);
    }
    CK_EXPECT(pack1(INFINITY, CK_WIRE_F16) == 0x7c00 && pack1(-INFINITY, CK_WIRE_F16) == 0xfc00, "f16 inf");
    uint16_t hn = pack1(NAN, CK_WIRE_F16), hs = pack1(bitsf(0xff800001u), CK_WIRE_F16);
    CK_EXPECT((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff), "f16 NaN stays NaN: %04x", hn);
    CK_EXPECT((hs & 0xfc00) == 0xfc00 && (hs & 0x3ff), "f16 NaN with only a low payload bit stays NaN: %04x", hs);
    CK_EXPECT(isnan(unpack1(hn, CK_WIRE_F16)) && isnan(unpack1(hs, CK_WIRE_F16)), "f16 NaN unpacks to NaN");
    CK_EXPECT(isinf(unpack1(0x7c00, CK_WIRE_F16)) && unpack1(0xfc00, CK_WIRE_F16) < 0, "f16 inf unpacks");
    CK_EXPECT(unpack1(0x0001, CK_WIRE_F16) == 0x1p-24f && unpack1(0x7bff, CK_WIRE_F16) == 65504.0f &&
                  unpack1(0x3555, CK_WIRE_F16) == 0x1.554p-2f,
              "f16 unpack");
    /* every finite f16 survives unpack -> pack */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        if (pack1(unpack1((uint16_t)h, CK_WIRE_F16), CK_WIRE_F16) != h && bad++ < 5)
            CK_EXPECT(0, "f16 %04x does not survive a round trip", h);
    }
    CK_EXPECT(bad == 0, "%d f16 patterns lost in a round trip", bad);

    /* bf16, hand-computed */
    static const struct { uint32_t f; uint16_t h; } bf[] = {
        {0x3f800000u, 0x3f80}, {0xc0000000u, 0xc000}, {0x80000000u, 0x8000},
        {0x3f808000u, 0x3f80},                  /* 1 + 2^-8: tie, down to even */
        {0x3f818000u, 0x3f82},                  /* 1 + 3*2^-8: tie, up to even */
        {0x3f808001u, 0x3f81}, {0x3f807fffu, 0x3f80},
        {0x7f7fffffu, 0x7f80},                  /* FLT_MAX rounds up to inf */
        {0x7f7f7fffu, 0x7f7f}, {0x7f7f8000u, 0x7f80}, /* tie at the top: odd 0x7f7f -> inf */
        {0xff7f8001u, 0xff80},
        {0x00008000u, 0x0000}, {0x00018000u, 0x0002}, /* subnormal ties */
        {0x7f800000u, 0x7f80}, {0xff800000u, 0xff80},
    };
    for (size_t i = 0; i < sizeof bf / sizeof bf[0]; i++) {
        uint16_t h = pack1(bitsf(bf[i].f), CK_WIRE_BF16);
        CK_EXPECT(h == bf[i].h, "bf16(%08x) = %04x, expected %04x", bf[i].f, h, bf[i].h);
    }
    uint16_t bn = pack1(bitsf(0x7f800001u), CK_WIRE_BF16), bq = pack1(bitsf(0xffffffffu), CK_WIRE_BF16);
    CK_EXPECT((bn & 0x7f80) == 0x7f80 && (bn & 0x7f), "bf16 NaN with a low payload stays NaN: %04x", bn);
    CK_EXPECT(bq == 0xffff, "bf16 NaN with a full payload: %04x", bq);
    CK_EXPECT(isnan(unpack1(bn, CK_WIRE_BF16)) && unpack1(0x3f80, CK_WIRE_BF16) == 1.0f, "bf16 unpack");

    /* sweep: ~1M f32 patterns of every exponent against the double-precision references */
    int bad16 = 0, badbf = 0;
    for (uint64_t u = 0; u <= 0xffffffffu; u += 4099) {
        float f = bitsf((uint32_t)u);
        if (isnan(f)) continue;
        uint16_t a = pack1(f, CK_WIRE_F16), r = f16_ref(f);
        if (a != r && bad16++ < 5) CK_EXPECT(0, "f16(%08x) = %04x, reference %04x", (uint32_t)u, a, r);
        a = pack1(f, CK_WIRE_BF16), r = bf16_ref(f);
        if (a != r && badbf++ < 5) CK_EXPECT(0, "bf16(%08x) = %04x, reference %04x", (uint32_t)u, a, r);
    }
    CK_EXPECT(bad16 == 0 && badbf == 0, "sweep: %d f16 and %d bf16 mismatches", bad16, badbf);

    /* a vector converts element by element; unaligned buffers are fine */
    float v[5] = {1.0f, -2.0f, 0.5f, 65504.0f, 0x1p-24f};
    uint8_t raw[11];
    ck_wire_pack(raw + 1, v, 5, CK_WIRE_F16);
    CK_EXPECT(raw[1] == 0x00 && raw[2] == 0x3c && raw[3] == 0x00 && raw[4] == 0xc0 && raw[9] == 0x01 && raw[10] == 0,
              "f16 vector bytes");
    float w[5];
    ck_wire_unpack(w, raw + 1, 5, CK_WIRE_F16);
    CK_EXPECT(!memcmp(v, w, sizeof v), "f16 vector round trip");
}

/* ---- the push messages ---- */

/* An ASSIGN of n files named by names[], each 1 byte with a zero hash, into b; returns its length. */
static size_t make_assign(uint8_t *b, size_t cap, int n, const char *const *names) {
    ck_msg m = {.type = CK_MSG_ASSIGN};
    m.u.assign.n_files = 1;
    m.u.assign.files[0].name = S("x");
    size_t len = ck_wire_encode(&m, b, cap); /* the fixed part, then files appended by hand */
    len -= 2 + 1 + 40;
    b[41] = (uint8_t)n, b[42] = (uint8_t)(n >> 8);
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(names[i]);
        b[len] = (uint8_t)nl, b[len + 1] = (uint8_t)(nl >> 8);
        memcpy(b + len + 2, names[i], nl);
        memset(b + len + 2 + nl, 0, 40);
        b[len + 2 + nl] = 1;
        len += 2 + nl + 40;
    }
    return len;
}

static void test_push_messages(void) {
    static uint8_t b[1 << 16];
    char err[256];
    ck_msg m, d;
    /* ASSIGN at the limits: 16 files with 128-byte names */
    static char longname[CK_WIRE_MAX_FILE_NAME + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[CK_WIRE_MAX_FILE_NAME] = 0;
    const char *names[17];
    for (int i = 0; i < 17; i++) names[i] = longname;
    size_t len = make_assign(b, sizeof b, 16, names);
    CK_EXPECT(len == 43 + 16 * (2 + 128 + 40), "ASSIGN of 16 files: %zu bytes", len);
    CK_EXPECT(ck_wire_decode(b, len, NULL, &m, err, sizeof err) == 0 && m.u.assign.n_files == 16 &&
                  m.u.assign.files[15].name.n == 128 && m.u.assign.files[15].size == 1,
              "ASSIGN of 16 files: %s", err);
    CK_EXPECT(ck_wire_encode(&m, b + len, sizeof b - len) == len && !memcmp(b, b + len, len), "ASSIGN re-encodes");
    len = make_assign(b, sizeof b, 17, names);
    expect_reject("ASSIGN of 17 files", b, len, NULL, "ASSIGN", "n_files 17");
    expect_reject("ASSIGN of 17 files, count alone", b, 43, NULL, "ASSIGN", "n_files 17");
    len = make_assign(b, sizeof b, 0, names);
    expect_reject("ASSIGN of no files", b, len, NULL, "ASSIGN", "n_files 0");
    longname[CK_WIRE_MAX_FILE_NAME] = 'n';
    len = make_assign(b, sizeof b, 1, names);
    expect_reject("ASSIGN name of 129 bytes", b, len, NULL, "ASSIGN", "129 bytes");
    static const char *const bad[] = {"", ".", "..", "a/b", "../x", "x..y", "a b", "a\\b", "\xc3\xa9", "a\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        len = make_assign(b, sizeof b, 1, &bad[i]);
        expect_reject(bad[i], b, len, NULL, "ASSIGN", i == 0 ? "0 bytes" : "plain file name");
        CK_EXPECT(!ck_wire_file_name_valid(bad[i], strlen(bad[i])), "'%s' is a valid file name", bad[i]);
    }
    static const char *const good[] = {"config.json", "model-00001-of-00002.safetensors", ".hidden", "a.b.c", "_-"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        len = make_assign(b, sizeof b, 1, &good[i]);
        CK_EXPECT(ck_wire_decode(b, len, NULL, &m, err, sizeof err) == 0, "ASSIGN %s: %s", good[i], err);
    }
    /* encode refuses what decode refuses */
    m = (ck_msg){.type = CK_MSG_ASSIGN};
    m.u.assign.n_files = 1;
    m.u.assign.files[0].name = S("../etc");
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "ASSIGN with a bad name encoded");
    m.u.assign.files[0].name = S("ok");
    m.u.assign.n_files = 17;
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "ASSIGN of 17 files encoded");
    m.u.assign.n_files = 0;
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "ASSIGN of no files encoded");

    /* HAVE */
    m = (ck_msg){.type = CK_MSG_HAVE};
    m.u.have.n_files = 16;
    for (int i = 0; i < 16; i++) m.u.have.present[i] = UINT64_MAX - (uint64_t)i;
    len = ck_wire_encode(&m, b, sizeof b);
    CK_EXPECT(len == 3 + 16 * 8 && ck_wire_decode(b, len, NULL, &d, err, sizeof err) == 0 && ck_msg_equal(&m, &d),
              "HAVE of 16: %s", err);
    b[1] = 17;
    expect_reject("HAVE of 17", b, len, NULL, "HAVE", "n_files 17");
    m.u.have.n_files = 17;
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "HAVE of 17 encoded");
    b[0] = CK_MSG_HAVE, b[1] = 0, b[2] = 0;
    CK_EXPECT(ck_wire_decode(b, 3, NULL, &d, err, sizeof err) == 0 && d.u.have.n_files == 0, "HAVE of 0: %s", err);

    /* PUSH: zstd round trip at the raw limit, then each bound */
    static uint8_t raw[CK_WIRE_PUSH_MAX_RAW], z[ZSTD_COMPRESSBOUND(CK_WIRE_PUSH_MAX_RAW)];
    static uint8_t frame[ZSTD_COMPRESSBOUND(CK_WIRE_PUSH_MAX_RAW) + 64];
    for (size_t i = 0; i < sizeof raw; i++) raw[i] = (uint8_t)(i % 251 < 100 ? 0 : i * 2654435761u >> 24);
    size_t zn = ZSTD_compress(z, sizeof z, raw, sizeof raw, 1);
    CK_EXPECT(!ZSTD_isError(zn), "zstd");
    m = (ck_msg){.type = CK_MSG_PUSH};
    m.u.push.file = 15, m.u.push.offset = UINT64_MAX - CK_WIRE_PUSH_MAX_RAW, m.u.push.raw_len = CK_WIRE_PUSH_MAX_RAW;
    m.u.push.crc32 = 0x12345678u, m.u.push.codec = CK_WIRE_CODEC_ZSTD, m.u.push.data = z, m.u.push.data_len = zn;
    len = ck_wire_encode(&m, frame, sizeof frame);
    CK_EXPECT(len == 20 + zn && ck_wire_decode(frame, len, NULL, &d, err, sizeof err) == 0 && ck_msg_equal(&m, &d) &&
                  d.u.push.data == frame + 20,
              "zstd PUSH at the limits: %s", err);
    CK_EXPECT(ck_wire_push_max_frame() == 20 + ZSTD_COMPRESSBOUND(CK_WIRE_PUSH_MAX_RAW), "push max frame %zu",
              ck_wire_push_max_frame());
    m.u.push.data = z, m.u.push.data_len = ZSTD_COMPRESSBOUND(CK_WIRE_PUSH_MAX_RAW);
    len = ck_wire_encode(&m, frame, sizeof frame); /* the largest PUSH there is */
    CK_EXPECT(len == ck_wire_push_max_frame() && ck_wire_decode(frame, len, NULL, &d, err, sizeof err) == 0,
              "PUSH at the zstd bound: %s", err);
    frame[len] = 0;
    expect_reject("zstd PUSH over the bound", frame, len + 1, NULL, "PUSH", "zstd data");
    m.u.push.codec = CK_WIRE_CODEC_RAW, m.u.push.data = raw, m.u.push.data_len = CK_WIRE_PUSH_MAX_RAW;
    len = ck_wire_encode(&m, frame, sizeof frame);
    CK_EXPECT(len == 20 + CK_WIRE_PUSH_MAX_RAW && ck_wire_decode(frame, len, NULL, &d, err, sizeof err) == 0,
              "raw PUSH at the limit: %s", err);
    /* the fields, one at a time, on B_PUSH */
    memcpy(b, B_PUSH, sizeof B_PUSH);
    b[1] = 16;
    expect_reject("PUSH file 16", b, sizeof B_PUSH, NULL, "PUSH", "file 16");
    memcpy(b, B_PUSH, sizeof B_PUSH);
    b[19] = 2;
    expect_reject("PUSH codec 2", b, sizeof B_PUSH, NULL, "PUSH", "codec 2");
    memcpy(b, B_PUSH, sizeof B_PUSH);
    b[11] = 0;
    expect_reject("PUSH raw_len 0", b, sizeof B_PUSH, NULL, "PUSH", "raw_len 0");
    memcpy(b, B_PUSH, sizeof B_PUSH);
    b[11] = 1, b[12] = 0, b[13] = 0x40; /* 4 MiB + 1 */
    expect_reject("PUSH raw_len over 4 MiB", b, sizeof B_PUSH, NULL, "PUSH", "raw_len 4194305");
    memcpy(b, B_PUSH, sizeof B_PUSH);
    b[11] = 5;
    expect_reject("PUSH raw data short", b, sizeof B_PUSH, NULL, "PUSH", "raw data is 4 bytes");
    memcpy(b, B_PUSH, sizeof B_PUSH);
    memset(b + 3, 0xff, 8);
    expect_reject("PUSH offset wraps", b, sizeof B_PUSH, NULL, "PUSH", "overflows");
    memcpy(b, B_PUSH, sizeof B_PUSH);
    b[19] = CK_WIRE_CODEC_ZSTD;
    CK_EXPECT(ck_wire_decode(b, sizeof B_PUSH, NULL, &d, err, sizeof err) == 0, "zstd PUSH of 4 bytes: %s", err);
    expect_reject("zstd PUSH with no data", b, 20, NULL, "PUSH", "zstd data is 0 bytes");
    /* encode refuses the same */
    m = s_push_sample();
    m.u.push.data_len = 3;
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "raw PUSH with data_len != raw_len encoded");
    m = s_push_sample();
    m.u.push.codec = 2;
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "PUSH codec 2 encoded");
    m = s_push_sample();
    m.u.push.file = 16;
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "PUSH file 16 encoded");
    m = s_push_sample();
    m.u.push.offset = UINT64_MAX - 3;
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "PUSH offset wrap encoded");
    m = s_push_sample();
    m.u.push.raw_len = 0, m.u.push.data_len = 0;
    CK_EXPECT(ck_wire_encode(&m, b, sizeof b) == 0, "PUSH of 0 bytes encoded");
}

/* ---- fuzz seeds ---- */

static int write_corpus(const char *dir) {
    sample s[NSAMPLES];
    samples(s);
    for (int i = 0; i < NSAMPLES; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, ck_msg_name(s[i].m.type));
        FILE *f = fopen(path, "wb");
        /* limits prefix: hidden, max_rows, max_ctx (u16) — the ones the samples decode under */
        const uint8_t prefix[4] = {(uint8_t)LIM.hidden, (uint8_t)LIM.max_rows, (uint8_t)LIM.max_ctx, 0};
        if (!f || fwrite(prefix, 1, 4, f) != 4 || fwrite(s[i].bytes, 1, s[i].len, f) != s[i].len || fclose(f)) {
            fprintf(stderr, "test_wire: cannot write %s\n", path);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--corpus")) return write_corpus(argv[2]);
    test_layout_and_roundtrip();
    test_rejections();
    test_encode_invalid();
    test_push_messages();
    test_pack();
    return ck_test_done("test_wire");
}
