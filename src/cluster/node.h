/* node.h — what masters and workers share: the model identity both sides compare in the handshake, the
 * deadlines of the protocol, and the message round trip over a connection (encode into a reusable
 * buffer, send, receive, decode). */
#ifndef CK_CLUSTER_NODE_H
#define CK_CLUSTER_NODE_H

#include "cluster/conn.h"
#include "cluster/wire.h"

#include <stddef.h>
#include <stdint.h>

#define CK_HANDSHAKE_MS 5000      /* connect, key handshake, HELLO / HELLO_OK */
#define CK_REPLY_MS 5000          /* a worker's reply to one decode step; more per extra row */
#define CK_REPLY_MS_PER_ROW 50
#define CK_WIRE_ROWS 256          /* rows per FORWARD (a multiple of the engine's chunk) */

/* A progress/diagnostic sink: one line per call (the CLI prints it). */
typedef void (*ck_log_fn)(void *user, const char *line);
/* Formats a line and hands it to log (nothing when log is NULL). */
void ck_logf(ck_log_fn log, void *user, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Monotonic seconds. */
double ck_now_s(void);

/* SHA-256 of DIR/config.json, or of a GGUF model's metadata as stored (DIR a .gguf file or a directory
 * holding one, ck_gguf_locate): two processes run the same model when these agree. */
int ck_model_id(const char *dir, uint8_t id[32], char *err, size_t errlen);
/* The first 8 bytes of an id as hex, for messages. */
void ck_model_id_short(const uint8_t id[32], char out[17]);

/* A growing encode buffer. */
typedef struct ck_msgbuf {
    uint8_t *p;
    size_t cap;
} ck_msgbuf;

/* Encodes m into b (grown as needed) and sends it. */
int ck_msg_send(ck_conn *c, ck_msgbuf *b, const ck_msg *m, int timeout_ms, char *err, size_t errlen);
/* Receives and decodes one message under lim; frames over max_len are refused unread. The texts of an
 * ERROR and a HELLO_OK come with their control characters replaced (ck_wire_str_clean): a peer's words
 * reach terminals, logs and the server's topology. */
int ck_msg_recv(ck_conn *c, const ck_wire_limits *lim, size_t max_len, ck_msg *m, int timeout_ms, char *err,
                size_t errlen);
/* Replaces the C0 and C1 control characters and DEL of s[0..n) by '?', in place. */
void ck_wire_str_clean(char *s, size_t n);
/* Sends an ERROR message (best effort: failures are ignored). */
void ck_msg_send_error(ck_conn *c, ck_msgbuf *b, uint32_t code, const char *text);
void ck_msgbuf_free(ck_msgbuf *b);

#endif
