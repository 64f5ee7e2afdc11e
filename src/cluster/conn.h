/* conn.h — one TCP connection between a master and a worker, carrying frames (one message each): a
 * 4-byte little-endian length, then the frame's bytes. Every read and write has a deadline; sends never
 * raise SIGPIPE; a frame longer than the receiver's limit is refused before anything is allocated.
 *
 * With a cluster key both sides prove they hold it (mutual challenge-response: each sends a random
 * 32-byte nonce and answers the other's with HMAC-SHA256(key, role || nonce_peer || nonce_own)), then
 * derive two session keys (one per direction) from the key and both nonces, and every later frame is
 * sealed with XChaCha20-Poly1305 (libsodium), nonces counting up per direction, so a replayed, reordered
 * or modified frame is refused. Without a key frames travel in plaintext. A key on one side only, or a
 * different key, fails the handshake on both sides with a message saying so, within the deadline. */
#ifndef CK_CLUSTER_CONN_H
#define CK_CLUSTER_CONN_H

#include <stddef.h>
#include <stdint.h>

typedef struct ck_conn ck_conn;

/* "host:port" (IPv4 or a name; "[v6]:port" optional) -> a listening socket (SO_REUSEADDR). */
int ck_conn_listen(const char *addr, int *fd_out, char *err, size_t errlen);
/* Accepts one connection on a listening socket, waiting at most timeout_ms (-1: forever). */
int ck_conn_accept(int listen_fd, int timeout_ms, ck_conn **out, char *err, size_t errlen);
/* Connects to "host:port" within timeout_ms (TCP_NODELAY set). */
int ck_conn_connect(const char *addr, int timeout_ms, ck_conn **out, char *err, size_t errlen);

/* The handshake above: key NULL or "" for plaintext (both sides must agree); is_server: 1 on the worker.
 * Must be the first thing on a fresh connection. Returns 0; -2 when the peer answered and the answer ends
 * it (another key, none where one is wanted, another protocol, not a cake node: trying again will not
 * help); -1 on any other failure (time out, connection lost). */
int ck_conn_handshake(ck_conn *c, const char *key, int is_server, int timeout_ms, char *err, size_t errlen);

/* Sends one frame of len bytes (len <= CK_CONN_MAX_FRAME) within timeout_ms. */
int ck_conn_send(ck_conn *c, const void *frame, size_t len, int timeout_ms, char *err, size_t errlen);
/* Receives one frame of at most max_len bytes within timeout_ms (-1: forever) into a buffer the
 * connection owns (valid until the next recv). A peer that closes says "closed by the peer". */
int ck_conn_recv(ck_conn *c, const uint8_t **frame, size_t *len, size_t max_len, int timeout_ms, char *err,
                 size_t errlen);

/* The peer as "addr:port". */
const char *ck_conn_peer(const ck_conn *c);
/* 1 once a receive found the peer's end closed (it went away, as against a time out or garbage). */
int ck_conn_peer_closed(const ck_conn *c);
/* 1 when frames are encrypted. */
int ck_conn_secure(const ck_conn *c);
/* Bytes sent / received on the socket so far (framing and encryption included). */
uint64_t ck_conn_bytes_sent(const ck_conn *c);
uint64_t ck_conn_bytes_received(const ck_conn *c);
void ck_conn_close(ck_conn *c);

#define CK_CONN_MAX_FRAME (1u << 30)

#endif
