/* discovery.h — zero-config discovery of workers over UDP broadcast (IPv4), as in the original cake.
 *
 * A master broadcasts a QUERY to UDP port CK_DISC_PORT (10127 unless told otherwise); every worker that
 * holds the same cluster key answers with a REPLY to the query's source address, saying its name, the TCP
 * port of its cluster listener, its backend, memory, threads and an estimate of its speed. The master then
 * connects to "source ip:tcp_port" over TCP, where conn.h's handshake proves the key.
 *
 * Nothing secret crosses the network: a packet carries only a 16-byte hash of the cluster key
 * (BLAKE2b-128 of the key, keyed with the domain string "cake-discovery-v1"), never the key. The hash is
 * enough for anyone who sniffs it to make workers answer (revealing the fields below) or to forge replies
 * (which then fail the TCP handshake), and it lets an eavesdropper test guesses of a weak key offline:
 * use a long random cluster key.
 *
 * Packets (all integers little-endian, lengths strict: trailing or missing bytes are refused):
 *   QUERY  "CAKE" u8 version=1  u8 type=1  u8 key_hash[16]                                  (22 bytes)
 *   REPLY  "CAKE" u8 version=1  u8 type=2  u8 key_hash[16]  u16 tcp_port (1..65535)
 *          u64 mem_bytes  u32 threads  f32 tflops (finite, >= 0)  str name  str backend  (<= 168 bytes)
 *   str = u8 length (1..63) then that many printable ASCII bytes (0x20..0x7e); no NUL, no terminator.
 * The codec (ck_disc_encode_*, ck_disc_decode) is pure and fuzzed (fuzz/fuzz_discovery.c); decode
 * accepts exactly the bytes encode produces, so decode-then-encode reproduces the input. */
#ifndef CK_CLUSTER_DISCOVERY_H
#define CK_CLUSTER_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>

#define CK_DISC_PORT 10127
#define CK_DISC_VERSION 1
#define CK_DISC_QUERY 1
#define CK_DISC_REPLY 2
#define CK_DISC_HASH_BYTES 16
#define CK_DISC_STR_MAX 63                    /* longest name / backend, in bytes */
#define CK_DISC_QUERY_BYTES 22                /* magic 4 + version 1 + type 1 + hash 16 */
#define CK_DISC_MAX_PACKET (22 + 18 + 2 * 64) /* the longest REPLY: 168 bytes */
#define CK_DISC_DEFAULT_BIND "0.0.0.0:10127"
#define CK_DISC_DEFAULT_BROADCAST "255.255.255.255:10127"

/* What a worker announces. name and backend: NUL-terminated, 1..63 printable ASCII bytes. */
typedef struct {
    char name[CK_DISC_STR_MAX + 1];    /* the worker's name (--name) */
    char backend[CK_DISC_STR_MAX + 1]; /* what it runs layers on: "cpu", "cuda", "cuda:0+cuda:1", ... */
    uint16_t tcp_port;                 /* port of the worker's cluster listener, 1..65535 */
    uint64_t mem_bytes;                /* memory there for weights and state (GPUs: free memory) */
    uint32_t threads;                  /* compute threads */
    float tflops;                      /* speed (finite, >= 0; 0 = unknown): a GPU's peak f32, the CPU's measured */
} ck_disc_info;

/* One decoded packet. info is filled for a REPLY only (zeroed for a QUERY). */
typedef struct {
    uint8_t type; /* CK_DISC_QUERY or CK_DISC_REPLY */
    uint8_t key_hash[CK_DISC_HASH_BYTES];
    ck_disc_info info;
} ck_disc_packet;

/* One worker found by ck_disc_find. */
typedef struct {
    char name[CK_DISC_STR_MAX + 1];
    char host[32]; /* "ip:tcp_port", ip = source address of the reply (dotted IPv4) */
    char backend[CK_DISC_STR_MAX + 1];
    uint64_t mem_bytes;
    uint32_t threads;
    float tflops;
} ck_disc_peer;

typedef struct ck_disc_server ck_disc_server;

/* out = BLAKE2b-128(key) keyed with "cake-discovery-v1". Returns 0, or -1 when key is NULL or empty
 * or libsodium cannot start. */
int ck_disc_key_hash(const char *key, uint8_t out[CK_DISC_HASH_BYTES]);

/* ---- pure codec ---- */

/* Writes a QUERY (CK_DISC_QUERY_BYTES) into buf[cap]; *len gets its length. -1 when cap is too small. */
int ck_disc_encode_query(const uint8_t key_hash[CK_DISC_HASH_BYTES], uint8_t *buf, size_t cap, size_t *len, char *err,
                         size_t errlen);
/* Writes a REPLY announcing info into buf[cap] (CK_DISC_MAX_PACKET always suffices); *len gets its
 * length. -1 when info breaks the rules above (name/backend empty, too long or not printable ASCII,
 * tcp_port 0, tflops negative or not finite) or cap is too small. */
int ck_disc_encode_reply(const uint8_t key_hash[CK_DISC_HASH_BYTES], const ck_disc_info *info, uint8_t *buf, size_t cap,
                         size_t *len, char *err, size_t errlen);
/* Decodes buf[len] into *pkt. Returns 0, or -1 with a reason naming the field when the packet is
 * malformed in any way (magic, version, type, a length off by even one byte, a string empty, over 63
 * bytes or not printable ASCII, tcp_port 0, tflops negative or not finite) or when its key hash differs
 * from want_hash. Never reads outside buf[len]; *pkt is unspecified after a failure. */
int ck_disc_decode(const uint8_t *buf, size_t len, const uint8_t want_hash[CK_DISC_HASH_BYTES], ck_disc_packet *pkt,
                   char *err, size_t errlen);

/* ---- worker side ---- */

/* Binds a UDP socket to bind_addr ("ip:port", "ip" for port 10127, NULL for "0.0.0.0:10127"; port 0
 * picks a free one; SO_REUSEADDR is set so several workers of one host can share the port and all hear a
 * broadcast) and starts a thread that answers every valid QUERY carrying key's hash with a REPLY
 * announcing *me, sent to the query's source address. Anything else (garbage, replies, another key's
 * queries) is ignored and counted. Returns 0 with *out set, or -1 with a reason (bad key, invalid *me,
 * bad address, socket or thread failure). */
int ck_disc_serve_start(const char *key, const ck_disc_info *me, const char *bind_addr, ck_disc_server **out, char *err,
                        size_t errlen);
/* The UDP port the server is bound to (useful after binding port 0). */
uint16_t ck_disc_serve_port(const ck_disc_server *s);
/* Queries answered and packets ignored so far (readable while the server runs; either may be NULL). */
void ck_disc_serve_stats(const ck_disc_server *s, uint64_t *answered, uint64_t *ignored);
/* Stops the thread, joins it, closes the socket and frees s (NULL is a no-op). */
void ck_disc_serve_stop(ck_disc_server *s);

/* ---- master side ---- */

/* Sends a QUERY carrying key's hash to every address of broadcast_addr (a comma-separated list of at
 * most 32 "ip:port" or "ip" (port 10127); NULL or "" for "255.255.255.255:10127"; broadcast and unicast
 * addresses alike, e.g. "10.77.0.255:10127" or "127.0.0.1:7000,127.0.0.2:7000"; 255.255.255.255 also
 * sends to the broadcast address of every IPv4 interface that is up, since the limited broadcast leaves
 * through the default route's interface only, or none without one), again every 250 ms, and
 * collects the distinct REPLYs with the same key hash into out[cap] (a worker is told apart by the source
 * ip:port of its reply and its tcp_port, so resent queries do not count twice). Returns when timeout_ms
 * has passed; or, with min_workers > 0, as soon as at least min_workers have answered and 300 ms have
 * passed without a new one; or when out is full. min_workers 0 collects for the whole timeout_ms.
 * Returns 0 with *n = workers found (possibly fewer than min_workers: the caller decides), or -1 with a
 * reason for bad arguments (key empty, cap 0, min_workers > cap, timeout_ms < 0, unparsable address),
 * socket failures, or when the first query could be sent to none of the addresses. */
int ck_disc_find(const char *key, const char *broadcast_addr, int timeout_ms, size_t min_workers, ck_disc_peer *out,
                 size_t cap, size_t *n, char *err, size_t errlen);

/* A rough single-precision speed estimate of this machine in TFLOPS: one thread runs a multiply-add loop
 * over independent accumulators for about 50 ms (compiled for the baseline ISA), and the rate is
 * multiplied by the online cores. Good for ranking machines of a cluster, not as a benchmark. Always
 * finite and >= 0 (0 when the clock fails). Blocks the caller for ~50 ms. */
double ck_disc_estimate_tflops(void);

#endif
