/* push.h — zero-config weight push (docs/protocol.md, "Weight push"): a master sends each worker only the
 * files of its layer range, verifiably and resumably, into cake's worker cache.
 *
 * The master plans once per range (ck_push_plan): config.json, generation_config.json / tokenizer.json /
 * tokenizer_config.json when present, and a model.safetensors built on the fly that holds only the
 * tensors "<layer_prefix>.N.*" for N in [first, last]; or, for a GGUF model, one model.gguf built on the
 * fly: the source's metadata as stored (so its model id, ck_model_id, is the source's) and only the
 * tensors "blk.N.*" of the range and those every layer uses (rope_freqs), in their stored types and
 * layouts. A built file is a list of byte
 * segments (its header, then pointers into the mapped source): weights are never copied into memory.
 * Every file's size and SHA-256 are known before anything is sent.
 *
 * On a connection (after ck_conn_handshake, before HELLO):
 *   master: ASSIGN (model id, range, files with sizes and hashes)
 *   worker: HAVE   (bytes of each file it already holds: a verified final file counts whole, a
 *                   <name>.partial of the same target counts its length)
 *   master: PUSH*  (the missing ranges, in order, 1 MiB raw chunks, zstd when it saves >= 10 %, CRC-32)
 *           PUSH_DONE
 *   worker: fsyncs, checks each file's size and SHA-256, renames <name>.partial -> <name> atomically,
 *           fsyncs the directory, opens its engine, then READY (ck_push_ready) — or ERROR, saying why.
 * The worker's directory is <cache_root>/models/<cluster_tag>--<16 hex of model_id>/, so `cake list`
 * shows it. An interrupted push leaves .partial files that the next push continues; a half-written or
 * corrupted file is never renamed into place. */
#ifndef CK_CLUSTER_PUSH_H
#define CK_CLUSTER_PUSH_H

#include "cluster/conn.h"
#include "cluster/wire.h"
#include "format/gguf.h"
#include "format/safetensors.h"

#include <stddef.h>
#include <stdint.h>

#define CK_PUSH_CHUNK (1u << 20)      /* raw bytes per PUSH */
#define CK_PUSH_CHUNK_MS 60000        /* one PUSH sent / received (disk and link may be slow) */
#define CK_PUSH_VERIFY_MS 600000      /* the HAVE reply: the worker hashes the files it already holds */
#define CK_PUSH_READY_MS 600000       /* READY after PUSH_DONE: the worker verifies and loads the model */
#define CK_PUSH_ERROR_CODE 4          /* ERROR code a worker sends when a push fails */

/* A run of a planned file's bytes: `len` bytes at `data` (in a mapping or the plan's own header). */
typedef struct ck_push_seg {
    const uint8_t *data;
    uint64_t len;
    uint64_t offset;          /* of the first byte in the file */
} ck_push_seg;

typedef struct ck_push_file {
    char name[CK_WIRE_MAX_FILE_NAME + 1];
    uint64_t size;            /* bytes: the sum of the segments */
    uint8_t sha256[32];
    ck_push_seg *segs;
    size_t n_segs;
} ck_push_file;

/* The files a worker needs for one range. Read-only after ck_push_plan; owns the mappings it points into. */
typedef struct ck_push_plan {
    ck_push_file files[CK_WIRE_MAX_FILES];
    size_t n_files;
    uint64_t total_bytes;     /* sum of the files' sizes */
    size_t n_tensors;         /* tensors in the built model.safetensors */
    ck_weights weights;       /* the source checkpoint (only the range's shards get mapped) */
    int weights_open;
    ck_map maps[CK_WIRE_MAX_FILES]; /* the small files, mapped */
    uint8_t *st_header;       /* u64 length + JSON header of model.safetensors, space-padded to 8; or the
                                 header, metadata and tensor infos of model.gguf, zero-padded */
    size_t st_header_len;
    ck_gguf_file gguf;        /* a GGUF source */
    int gguf_open;
    uint8_t *zeros;           /* padding between the tensors of model.gguf (its alignment) */
} ck_push_plan;

/* Plans the files of layers [first, last] of the HF-layout model in model_dir whose layers are named
 * "<layer_prefix>.N." ("model.layers"), or of the GGUF model model_dir names (a .gguf file, or a directory
 * holding one; its layers are blk.N). Fails, naming the problem, when config.json is missing, an optional
 * file is present but not a regular file, the weights cannot be opened, a layer of the range has no
 * tensors, or a tensor cannot be read. */
int ck_push_plan_build(const char *model_dir, const char *layer_prefix, int64_t first, int64_t last,
                       ck_push_plan **out, char *err, size_t errlen);
/* C gives a type and a function one name space: the call is spelled ck_push_plan(dir, prefix, first, last,
 * &plan, err, errlen) through this function-like macro, which leaves the type name ck_push_plan alone. */
#define ck_push_plan(...) ck_push_plan_build(__VA_ARGS__)
void ck_push_plan_free(ck_push_plan *p);

/* Master side, on a fresh (handshaken) connection: ASSIGN, HAVE, the missing bytes, PUSH_DONE, then waits
 * for READY. progress (may be NULL) gets the bytes the worker holds so far and the plan's total, once after
 * HAVE and after every chunk. A worker's ERROR is reported with its message. stop_after_bytes is a test
 * hook: 0 = never; else it stops once that many raw bytes went out (the last chunk is cut to land exactly
 * there) and returns -1 without PUSH_DONE, as an interrupted transfer would; the caller closes c. */
int ck_push_send(ck_conn *c, const ck_push_plan *p, const uint8_t model_id[32], int64_t first, int64_t last,
                 void (*progress)(void *user, uint64_t done, uint64_t total), void *user, uint64_t stop_after_bytes,
                 char *err, size_t errlen);

/* Worker side, on a fresh (handshaken) connection whose first message was `assign` (anything but an ASSIGN
 * is refused): receives the push into
 * <cache_root>/models/<cluster_tag>--<16 hex of model_id>/ (created 0700 with its parents), verifies every
 * file, and writes the directory into model_dir[cap], the range into *first / *last, and into *replaced
 * whether a file was written into place (an engine opened there before holds the files it replaced: the
 * worker must open another). The caller opens its engine there and answers with ck_push_ready (or ck_msg_send_error). On failure the master has been
 * sent an ERROR with the same reason; .partial files stay for the next push unless a hash proved them bad.
 * cluster_tag: [A-Za-z0-9_.-], e.g. 8 hex digits of the cluster key's hash, so that two clusters on one
 * machine never share files. Only one push at a time writes a directory (a lock file in it). */
int ck_push_receive(ck_conn *c, const ck_msg *assign, const char *cache_root, const char *cluster_tag,
                    char *model_dir, size_t cap, int64_t *first, int64_t *last, int *replaced, char *err,
                    size_t errlen);

/* Sends READY (the worker loaded the pushed model). */
int ck_push_ready(ck_conn *c, char *err, size_t errlen);

#endif
