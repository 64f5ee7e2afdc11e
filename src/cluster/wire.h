/* wire.h — the cluster protocol's messages (docs/protocol.md): typed, little-endian, versioned. Encoding
 * writes a message into a caller buffer; decoding is a pure function over received bytes that checks
 * every length against limits derived from the model config and the assignment before anything is
 * sized, and never allocates: decoded payloads point into the input buffer. A frame (one message) is
 * what ck_conn (conn.h) sends and receives; this file does not know about sockets or encryption.
 *
 * Message body layout (all integers little-endian; after a 1-byte type):
 *   HELLO       u32 version, u8[32] model_id, u32 first_layer, u32 last_layer, u32 hidden, u8 wire_dtype,
 *               u32 max_ctx, u32 max_rows, str name            (master -> worker: "run these layers")
 *   HELLO_OK    u32 version, u8[32] model_id, u32 first_layer, u32 last_layer, u64 mem_bytes, u32 threads,
 *               str backend, str name                            (worker -> master: ready)
 *   FORWARD     u32 session, u32 pos, u32 n, u8 dtype, bytes hidden [n, hidden] in dtype
 *   HIDDEN      u32 session, u32 pos, u32 n, u8 dtype, u64 compute_us, bytes hidden [n, hidden] in dtype
 *   TRUNCATE    u32 session, u32 pos                              (pos 0 = reset)
 *   TRUNCATED   u32 session, u32 pos                              (the position now held: pos or 0)
 *   PING / PONG u64 nonce
 *   GOODBYE     (empty)
 *   ERROR       u32 code, str message
 *   ASSIGN      u8[32] model_id, u32 first_layer, u32 last_layer, u16 n_files (1..16), then per file:
 *               str name (a plain file name, see ck_wire_file_name_valid), u64 size, u8[32] sha256
 *                                                                (master -> worker: "hold these files")
 *   HAVE        u16 n_files (0..16), then per file u64 bytes_present   (worker -> master)
 *   PUSH        u16 file, u64 offset, u32 raw_len (1..4 MiB), u32 crc32 (of the raw bytes), u8 codec
 *               (0 raw, 1 zstd), bytes data to the end of the frame (codec 0: exactly raw_len bytes;
 *               codec 1: 1..ZSTD_COMPRESSBOUND(raw_len) bytes)    (master -> worker)
 *   PUSH_DONE   (empty)                                           (master -> worker: all sent)
 *   READY       (empty)                                           (worker -> master: model loaded)
 *   str = u16 length + bytes (no NUL; at most CK_WIRE_MAX_STR bytes, valid UTF-8 not required). */
#ifndef CK_CLUSTER_WIRE_H
#define CK_CLUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define CK_WIRE_VERSION 1
#define CK_WIRE_MAX_STR 1024
#define CK_WIRE_MAX_FILES 16              /* files in one ASSIGN / HAVE */
#define CK_WIRE_MAX_FILE_NAME 128         /* bytes of a file name in ASSIGN */
#define CK_WIRE_PUSH_MAX_RAW (4u << 20)   /* raw bytes in one PUSH */

typedef enum ck_msg_type {
    CK_MSG_HELLO = 1,
    CK_MSG_HELLO_OK = 2,
    CK_MSG_FORWARD = 3,
    CK_MSG_HIDDEN = 4,
    CK_MSG_TRUNCATE = 5,
    CK_MSG_TRUNCATED = 6,
    CK_MSG_PING = 7,
    CK_MSG_PONG = 8,
    CK_MSG_GOODBYE = 9,
    CK_MSG_ERROR = 10,
    CK_MSG_ASSIGN = 11,
    CK_MSG_HAVE = 12,
    CK_MSG_PUSH = 13,
    CK_MSG_PUSH_DONE = 14,
    CK_MSG_READY = 15,
    CK_MSG_CHAIN = 16,         /* master -> worker after HELLO_OK: u64 route, str next_host, u64 next_route */
    CK_MSG_LINK = 17,          /* worker -> next worker, first on a link: u64 route */
} ck_msg_type;

/* PUSH payload encodings. */
typedef enum ck_wire_codec { CK_WIRE_CODEC_RAW = 0, CK_WIRE_CODEC_ZSTD = 1 } ck_wire_codec;

/* Activation element types on the wire. */
typedef enum ck_wire_dtype { CK_WIRE_F32 = 0, CK_WIRE_F16 = 1, CK_WIRE_BF16 = 2 } ck_wire_dtype;

/* Bytes per element of a wire dtype, 0 for an unknown value. */
size_t ck_wire_dtype_size(int dtype);

typedef struct ck_wire_str {
    const char *p;             /* into the decoded buffer; not NUL-terminated */
    uint16_t n;
} ck_wire_str;

/* One file of an ASSIGN. */
typedef struct ck_wire_file {
    ck_wire_str name;          /* 1..CK_WIRE_MAX_FILE_NAME bytes of [A-Za-z0-9._-], not ".", no ".." */
    uint64_t size;
    uint8_t sha256[32];
} ck_wire_file;

typedef struct ck_msg {
    ck_msg_type type;
    union {
        struct { uint32_t version; uint8_t model_id[32]; uint32_t first_layer, last_layer, hidden; uint8_t wire_dtype;
                 uint32_t max_ctx, max_rows; ck_wire_str name; } hello;
        struct { uint32_t version; uint8_t model_id[32]; uint32_t first_layer, last_layer; uint64_t mem_bytes;
                 uint32_t threads; ck_wire_str backend, name; } hello_ok;
        struct { uint32_t session, pos, n; uint8_t dtype; uint64_t compute_us; /* HIDDEN only */
                 const uint8_t *data; size_t data_len; } hidden; /* FORWARD and HIDDEN */
        struct { uint32_t session, pos; } truncate;   /* TRUNCATE and TRUNCATED */
        struct { uint64_t nonce; } ping;              /* PING and PONG */
        struct { uint32_t code; ck_wire_str message; } error;
        struct { uint8_t model_id[32]; uint32_t first_layer, last_layer; uint16_t n_files;
                 ck_wire_file files[CK_WIRE_MAX_FILES]; } assign;
        struct { uint16_t n_files; uint64_t present[CK_WIRE_MAX_FILES]; } have;
        struct { uint16_t file; uint64_t offset; uint32_t raw_len, crc32; uint8_t codec;
                 const uint8_t *data; size_t data_len; } push;
        /* chain forwarding: `route` names this master connection so that the previous worker's link can
         * attach to it; the worker sends its output on to next_host (over a LINK naming next_route), or,
         * with an empty next_host, back to the master as HIDDEN */
        struct { uint64_t route; ck_wire_str next_host; uint64_t next_route; } chain;
        struct { uint64_t route; } link;
    } u;
} ck_msg;

/* What a decoder accepts: ASSIGN, HAVE and PUSH are bounded by the constants above whatever the limits
 * (a PUSH's offset + raw_len must not wrap 64 bits; which file and offset it may carry is the receiver's
 * business). FORWARD/HIDDEN carry at most max_rows rows of exactly `hidden` elements, at
 * positions below max_ctx (pos + n <= max_ctx). hidden == 0 means "not agreed yet": FORWARD and HIDDEN
 * are then refused (only HELLO, HELLO_OK, PING, PONG, GOODBYE, ERROR decode). */
typedef struct ck_wire_limits {
    uint32_t hidden, max_rows, max_ctx;
} ck_wire_limits;

/* Decodes one message from buf[0..len) (a whole frame: trailing bytes are an error). Returns 0, or -1
 * with a reason in err for anything malformed: unknown type, short or long body, lengths over the
 * limits, an unknown dtype. Pure: no allocation, no I/O; pointers in *m point into buf. */
int ck_wire_decode(const uint8_t *buf, size_t len, const ck_wire_limits *lim, ck_msg *m, char *err, size_t errlen);

/* Encodes m into out[0..cap); returns the length, or 0 when it does not fit (or m is invalid). For
 * FORWARD/HIDDEN the payload bytes are m->u.hidden.data[0..data_len). */
size_t ck_wire_encode(const ck_msg *m, uint8_t *out, size_t cap);

/* Bytes an encoded FORWARD/HIDDEN of n rows of `hidden` elements in dtype takes (for sizing buffers). */
size_t ck_wire_hidden_size(uint32_t n, uint32_t hidden, int dtype);

/* Converts n f32 values to the wire dtype (round to nearest even for f16/bf16) and back. */
void ck_wire_pack(uint8_t *dst, const float *src, size_t n, int dtype);
void ck_wire_unpack(float *dst, const uint8_t *src, size_t n, int dtype);

/* 1 when name[0..n) is a plain file name an ASSIGN may carry: 1..CK_WIRE_MAX_FILE_NAME bytes of
 * [A-Za-z0-9._-], not ".", containing no "..". */
int ck_wire_file_name_valid(const char *name, size_t n);

/* The largest frame a PUSH can be (a zstd payload of CK_WIRE_PUSH_MAX_RAW bytes at its worst), for the
 * receiver's frame limit. */
size_t ck_wire_push_max_frame(void);

/* 1 when a and b encode to the same bytes (the encoding is canonical: every field of the message, and
 * nothing else, e.g. not a FORWARD's unused compute_us). Two messages that cannot be encoded are unequal. */
int ck_msg_equal(const ck_msg *a, const ck_msg *b);

/* Name of a message type for error messages ("FORWARD"), "?" when unknown. */
const char *ck_msg_name(int type);

#endif
