/* conn.c — framed TCP connections between master and worker (see conn.h for the contract).
 *
 * Sockets are non-blocking; every wait is a poll() bounded by the deadline of the call, EINTR is retried,
 * sends use MSG_NOSIGNAL so a dead peer is an error, never a SIGPIPE.
 *
 * Wire format (all integers little-endian):
 *   handshake   each side sends HELLO = u8 version, u8 keyed (0/1), u8[32] random nonce; then, when both
 *               are keyed: PROOF = HMAC-SHA256(K, own role || peer nonce || own nonce) (32 bytes), and
 *               after checking the peer's proof a VERDICT byte (1 accepted, 0 rejected) so that a side
 *               whose proof was refused learns it at once instead of waiting for its deadline.
 *               K = SHA-256(cluster key string); role = 'M' (master) or 'W' (worker).
 *   frame       u32 length, then length bytes. Keyed: the bytes are XChaCha20-Poly1305(plaintext) with
 *               the 4-byte length as additional data, nonce = u64 per-direction frame counter (from 0)
 *               followed by 16 zero bytes, key = BLAKE2b(key K; nonce_master || nonce_worker || label),
 *               one label (so one key) per direction.
 *
 * Invariants: the length of a frame is checked against the receiver's limit before any allocation; the
 * receive buffer and the encryption buffer only grow (no allocation per frame once grown); a counter is
 * advanced only when its frame went through whole. A failure in the middle of a frame (or a refused
 * frame) leaves the stream out of step, so that direction is marked broken and refuses further use; a
 * timeout before the first byte of a frame does not (the caller may wait again). One thread may send while
 * another receives on the same connection (the two directions share no mutable state but the byte
 * counters, which are atomic); two concurrent senders or receivers need the caller's lock. */
#include "cluster/conn.h"

#include "base/err.h"
#include "base/grow.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CONN_VERSION 1
#define HELLO_BYTES 34 /* version, keyed flag, 32-byte nonce */
#define NONCE_BYTES 32
#define PROOF_BYTES crypto_auth_hmacsha256_BYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SESSION_KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES

struct ck_conn {
    int fd;
    char peer[NI_MAXHOST + NI_MAXSERV + 4]; /* "addr:port" or "[v6]:port" */
    int handshaken;                          /* a handshake was attempted */
    int refused;                             /* it failed on what the peer answered (key, protocol) */
    int peer_closed;                         /* a read found the peer's end closed (EOF or reset) */
    int secure;                              /* frames are sealed */
    int tx_broken, rx_broken;                /* that direction is out of step after an error */
    uint8_t key_tx[SESSION_KEY_BYTES], key_rx[SESSION_KEY_BYTES];
    uint64_t ctr_tx, ctr_rx; /* frames sealed / opened so far in each direction */
    uint8_t *rbuf;           /* received frame (decrypted in place); rcap bytes */
    size_t rcap;
    uint8_t *sbuf; /* length prefix + ciphertext of the frame being sent; scap bytes */
    size_t scap;
    _Atomic uint64_t sent, received; /* socket bytes (readable from any thread) */
};

/* ---- libsodium start-up ---- */

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_status = -1;

static void sodium_start(void) { sodium_status = sodium_init() < 0 ? -1 : 0; }

static int sodium_ready(void) {
    pthread_once(&sodium_once, sodium_start);
    return sodium_status;
}

/* ---- deadlines ---- */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Absolute deadline for a call given timeout_ms (-1: none). */
static int64_t deadline_of(int timeout_ms) { return timeout_ms < 0 ? -1 : now_ms() + timeout_ms; }

/* Milliseconds left before the deadline for poll(): -1 when there is none, 0 when it has passed. */
static int ms_left(int64_t deadline) {
    if (deadline < 0) return -1;
    int64_t left = deadline - now_ms();
    if (left <= 0) return 0;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Waits until fd is ready for events; "timed out after N ms <what> <who>" when the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline, int timeout_ms, const char *what, const char *who,
                   char *err, size_t errlen) {
    for (;;) {
        int left = ms_left(deadline);
        if (deadline >= 0 && left == 0)
            return ck_err(err, errlen, "timed out after %d ms %s %s", timeout_ms, what, who);
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left);
        if (r > 0) return 0; /* ready, or POLLHUP/POLLERR: the next I/O call reports what happened */
        if (r < 0 && errno != EINTR) return ck_err(err, errlen, "poll on %s failed: %s", who, strerror(errno));
    }
}

/* ---- addresses ---- */

/* Splits "host:port" or "[v6]:port" into host (may be "") and port. */
static int split_addr(const char *addr, char *host, size_t hostlen, char *port, size_t portlen, char *err,
                      size_t errlen) {
    if (!addr) return ck_err(err, errlen, "no address given (expected host:port)");
    const char *h = addr, *colon;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return ck_err(err, errlen, "bad address '%s' (expected [v6-address]:port)", addr);
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon) return ck_err(err, errlen, "bad address '%s' (expected host:port)", addr);
        hlen = (size_t)(colon - addr);
        if (memchr(addr, ':', hlen))
            return ck_err(err, errlen, "bad address '%s' (write an IPv6 address as [addr]:port)", addr);
    }
    const char *p = colon + 1;
    size_t plen = strlen(p);
    if (plen == 0 || plen > 5 || strspn(p, "0123456789") != plen || atoi(p) > 65535)
        return ck_err(err, errlen, "bad port in address '%s' (expected 0..65535)", addr);
    if (hlen >= hostlen) return ck_err(err, errlen, "host name too long in address '%s'", addr);
    memcpy(host, h, hlen);
    host[hlen] = 0;
    memcpy(port, p, plen + 1);
    (void)portlen; /* plen <= 5 < portlen (NI_MAXSERV) */
    return 0;
}

static int resolve(const char *addr, int passive, struct addrinfo **out, char *err, size_t errlen) {
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (split_addr(addr, host, sizeof host, port, sizeof port, err, errlen) != 0) return -1;
    if (!host[0] && !passive) return ck_err(err, errlen, "bad address '%s' (no host)", addr);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    int r = getaddrinfo(host[0] ? host : NULL, port, &hints, out);
    if (r != 0)
        return ck_err(err, errlen, "cannot resolve '%s': %s", addr,
                      r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
    return 0;
}

/* Writes "addr:port" (or "[v6]:port") for a socket address. */
static void format_sockaddr(const struct sockaddr *sa, socklen_t salen, char *out, size_t outlen) {
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (getnameinfo(sa, salen, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, outlen, "(unknown peer)");
        return;
    }
    snprintf(out, outlen, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

/* ---- connection setup ---- */

static int conn_new(int fd, const struct sockaddr *sa, socklen_t salen, ck_conn **out, char *err, size_t errlen) {
    ck_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return ck_err(err, errlen, "out of memory for a connection");
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* best effort: a latency hint only */
    c->fd = fd;
    format_sockaddr(sa, salen, c->peer, sizeof c->peer);
    *out = c;
    return 0;
}

int ck_conn_listen(const char *addr, int *fd_out, char *err, size_t errlen) {
    struct addrinfo *ai;
    if (resolve(addr, 1, &ai, err, errlen) != 0) return -1;
    int last_errno = 0;
    const char *step = "socket";
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last_errno = errno, step = "socket";
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0) {
            last_errno = errno, step = "bind";
        } else if (listen(fd, 64) != 0) {
            last_errno = errno, step = "listen";
        } else {
            freeaddrinfo(ai);
            *fd_out = fd;
            return 0;
        }
        close(fd);
    }
    freeaddrinfo(ai);
    return ck_err(err, errlen, "cannot listen on %s: %s failed: %s", addr, step,
                  last_errno ? strerror(last_errno) : "no usable address");
}

int ck_conn_accept(int listen_fd, int timeout_ms, ck_conn **out, char *err, size_t errlen) {
    int64_t deadline = deadline_of(timeout_ms);
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) return conn_new(fd, (struct sockaddr *)&ss, sl, out, err, errlen);
        /* errors of the pending connection itself (it went away) are not errors of the listener */
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return ck_err(err, errlen, "accept failed: %s", strerror(errno));
        if (wait_fd(listen_fd, POLLIN, deadline, timeout_ms, "waiting for", "a connection", err, errlen) != 0)
            return -1;
    }
}

/* Connects fd to one resolved address before the deadline. */
static int connect_one(int fd, const struct addrinfo *a, const char *addr, int64_t deadline, int timeout_ms,
                       char *err, size_t errlen) {
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return ck_err(err, errlen, "cannot connect to %s: %s", addr, strerror(errno));
    if (wait_fd(fd, POLLOUT, deadline, timeout_ms, "connecting to", addr, err, errlen) != 0) return -1;
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) soerr = errno;
    if (soerr) return ck_err(err, errlen, "cannot connect to %s: %s", addr, strerror(soerr));
    return 0;
}

int ck_conn_connect(const char *addr, int timeout_ms, ck_conn **out, char *err, size_t errlen) {
    int64_t deadline = deadline_of(timeout_ms);
    struct addrinfo *ai;
    if (resolve(addr, 0, &ai, err, errlen) != 0) return -1;
    int rc = ck_err(err, errlen, "cannot connect to %s: no usable address", addr);
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            rc = ck_err(err, errlen, "cannot connect to %s: socket failed: %s", addr, strerror(errno));
            continue;
        }
        if (connect_one(fd, a, addr, deadline, timeout_ms, err, errlen) == 0) {
            rc = conn_new(fd, a->ai_addr, a->ai_addrlen, out, err, errlen);
            break;
        }
        close(fd);
        rc = -1;
        if (deadline >= 0 && ms_left(deadline) == 0) break;
    }
    freeaddrinfo(ai);
    return rc;
}

/* ---- raw I/O ---- */

/* Sends the iovecs whole (iov is consumed) before the deadline. */
static int write_iov(ck_conn *c, struct iovec *iov, int cnt, int64_t deadline, int timeout_ms, char *err,
                     size_t errlen) {
    for (;;) {
        while (cnt > 0 && iov->iov_len == 0) iov++, cnt--;
        if (cnt == 0) return 0;
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (w >= 0) {
            atomic_fetch_add_explicit(&c->sent, (uint64_t)w, memory_order_relaxed);
            size_t n = (size_t)w;
            while (n > 0) {
                size_t k = n < iov->iov_len ? n : iov->iov_len;
                iov->iov_base = (uint8_t *)iov->iov_base + k;
                iov->iov_len -= k;
                n -= k;
                if (iov->iov_len == 0) iov++, cnt--;
            }
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (wait_fd(c->fd, POLLOUT, deadline, timeout_ms, "sending to", c->peer, err, errlen) != 0) return -1;
            continue;
        }
        if (errno == EPIPE || errno == ECONNRESET)
            return ck_err(err, errlen, "connection to %s closed by the peer (%s)", c->peer, strerror(errno));
        return ck_err(err, errlen, "sending to %s failed: %s", c->peer, strerror(errno));
    }
}

/* Receives exactly n bytes into buf before the deadline. */
static int read_full(ck_conn *c, void *buf, size_t n, int64_t deadline, int timeout_ms, char *err, size_t errlen) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r > 0) {
            atomic_fetch_add_explicit(&c->received, (uint64_t)r, memory_order_relaxed);
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r == 0) return c->peer_closed = 1, ck_err(err, errlen, "connection to %s closed by the peer", c->peer);
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (wait_fd(c->fd, POLLIN, deadline, timeout_ms, "waiting for", c->peer, err, errlen) != 0) return -1;
            continue;
        }
        if (errno == ECONNRESET) {
            c->peer_closed = 1;
            return ck_err(err, errlen, "connection to %s closed by the peer (%s)", c->peer, strerror(errno));
        }
        return ck_err(err, errlen, "receiving from %s failed: %s", c->peer, strerror(errno));
    }
    return 0;
}

static int write_all(ck_conn *c, const void *buf, size_t n, int64_t deadline, int timeout_ms, char *err,
                     size_t errlen) {
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
    return write_iov(c, &iov, 1, deadline, timeout_ms, err, errlen);
}

static void put_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The AEAD nonce of frame number ctr: ctr little-endian, then zeros. */
static void frame_nonce(uint64_t ctr, uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES]) {
    memset(nonce, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    for (int i = 0; i < 8; i++) nonce[i] = (uint8_t)(ctr >> (8 * i));
}

/* ---- handshake ---- */

/* Rewrites a transport error of the handshake as "handshake: <reason>". */
static int handshake_io_error(ck_conn *c, char *err, size_t errlen) {
    c->tx_broken = c->rx_broken = 1;
    if (!err || !errlen) return -1;
    char why[512];
    snprintf(why, sizeof why, "%s", err);
    return ck_err(err, errlen, "handshake: %s", why);
}

static int handshake_fail(ck_conn *c) {
    c->tx_broken = c->rx_broken = 1;
    c->refused = 1;
    return -1;
}

/* Both sides keyed or both not; otherwise a message saying which side holds a key. */
static int check_flags(ck_conn *c, int keyed, int peer_keyed, int is_server, char *err, size_t errlen) {
    if (keyed == peer_keyed) return 0;
    handshake_fail(c);
    if (is_server && keyed)
        return ck_err(err, errlen, "handshake with %s: this worker expects a cluster key but the master sent none",
                      c->peer);
    if (is_server)
        return ck_err(err, errlen, "handshake with %s: the master sent a cluster key but this worker has none",
                      c->peer);
    if (keyed)
        return ck_err(err, errlen, "handshake with %s: a cluster key was given but the worker has none", c->peer);
    return ck_err(err, errlen, "handshake with %s: the worker expects a cluster key but none was given", c->peer);
}

/* The message a proof covers: role || a || b. */
static void proof_msg(uint8_t out[1 + 2 * NONCE_BYTES], uint8_t role, const uint8_t *a, const uint8_t *b) {
    out[0] = role;
    memcpy(out + 1, a, NONCE_BYTES);
    memcpy(out + 1 + NONCE_BYTES, b, NONCE_BYTES);
}

/* One direction's session key: BLAKE2b keyed with k over nonce_m || nonce_w || label. */
static void session_key(uint8_t out[SESSION_KEY_BYTES], const uint8_t k[32], const uint8_t *nonce_m,
                        const uint8_t *nonce_w, const char *label) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, k, 32, SESSION_KEY_BYTES);
    crypto_generichash_update(&st, nonce_m, NONCE_BYTES);
    crypto_generichash_update(&st, nonce_w, NONCE_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)label, strlen(label));
    crypto_generichash_final(&st, out, SESSION_KEY_BYTES);
    sodium_memzero(&st, sizeof st);
}

/* The keyed part: exchange proofs and verdicts, then derive the session keys. */
static int handshake_keyed(ck_conn *c, const char *key, int is_server, const uint8_t *own_nonce,
                           const uint8_t *peer_nonce, int64_t deadline, int timeout_ms, char *err, size_t errlen) {
    if (sodium_memcmp(own_nonce, peer_nonce, NONCE_BYTES) == 0) {
        handshake_fail(c);
        return ck_err(err, errlen, "handshake with %s: the peer sent back our own nonce (reflection refused)", c->peer);
    }
    uint8_t k[32], proof[PROOF_BYTES], peer_proof[PROOF_BYTES];
    crypto_hash_sha256(k, (const uint8_t *)key, strlen(key));
    uint8_t role = is_server ? 'W' : 'M', peer_role = is_server ? 'M' : 'W';
    uint8_t msg[1 + 2 * NONCE_BYTES];
    proof_msg(msg, role, peer_nonce, own_nonce);
    crypto_auth_hmacsha256(proof, msg, sizeof msg, k);
    int rc = -1;
    if (write_all(c, proof, sizeof proof, deadline, timeout_ms, err, errlen) != 0 ||
        read_full(c, peer_proof, sizeof peer_proof, deadline, timeout_ms, err, errlen) != 0) {
        rc = handshake_io_error(c, err, errlen);
        goto done;
    }
    proof_msg(msg, peer_role, own_nonce, peer_nonce);
    int ok = crypto_auth_hmacsha256_verify(peer_proof, msg, sizeof msg, k) == 0;
    uint8_t verdict = (uint8_t)ok, peer_verdict = 0;
    if (!ok) {
        write_all(c, &verdict, 1, deadline, timeout_ms, NULL, 0); /* best effort: tell the peer, then give up */
        handshake_fail(c);
        rc = ck_err(err, errlen, "handshake with %s: cluster key mismatch (authentication failed)", c->peer);
        goto done;
    }
    if (write_all(c, &verdict, 1, deadline, timeout_ms, err, errlen) != 0 ||
        read_full(c, &peer_verdict, 1, deadline, timeout_ms, err, errlen) != 0) {
        rc = handshake_io_error(c, err, errlen);
        goto done;
    }
    if (peer_verdict != 1) {
        handshake_fail(c);
        rc = ck_err(err, errlen,
                    "handshake with %s: cluster key mismatch (authentication failed: the peer rejected our key)",
                    c->peer);
        goto done;
    }
    const uint8_t *nonce_m = is_server ? peer_nonce : own_nonce, *nonce_w = is_server ? own_nonce : peer_nonce;
    session_key(is_server ? c->key_rx : c->key_tx, k, nonce_m, nonce_w, "cake conn master->worker");
    session_key(is_server ? c->key_tx : c->key_rx, k, nonce_m, nonce_w, "cake conn worker->master");
    c->ctr_tx = c->ctr_rx = 0;
    c->secure = 1;
    rc = 0;
done:
    sodium_memzero(k, sizeof k);
    return rc;
}

static int handshake(ck_conn *c, const char *key, int is_server, int timeout_ms, char *err, size_t errlen) {
    if (c->handshaken || c->sent || c->received)
        return ck_err(err, errlen, "handshake with %s: must be the first thing on a fresh connection", c->peer);
    c->handshaken = 1;
    if (sodium_ready() != 0) {
        handshake_fail(c);
        return ck_err(err, errlen, "handshake: libsodium failed to initialize");
    }
    int64_t deadline = deadline_of(timeout_ms);
    int keyed = key && key[0];
    uint8_t hello[HELLO_BYTES], peer_hello[HELLO_BYTES];
    hello[0] = CONN_VERSION;
    hello[1] = (uint8_t)keyed;
    randombytes_buf(hello + 2, NONCE_BYTES);
    /* both sides send first, then read: 34 bytes always fit in the socket buffers, so no deadlock */
    if (write_all(c, hello, sizeof hello, deadline, timeout_ms, err, errlen) != 0 ||
        read_full(c, peer_hello, sizeof peer_hello, deadline, timeout_ms, err, errlen) != 0)
        return handshake_io_error(c, err, errlen);
    if (peer_hello[0] != CONN_VERSION && peer_hello[0] >= ' ' && peer_hello[0] < 0x7f) { /* text: another service */
        int n = 0;
        while (n < 24 && peer_hello[n] >= ' ' && peer_hello[n] < 0x7f) n++;
        handshake_fail(c);
        return ck_err(err, errlen, "handshake with %s: the peer is not a cake node (it answered \"%.*s\")", c->peer, n,
                      (const char *)peer_hello);
    }
    if (peer_hello[0] != CONN_VERSION) {
        handshake_fail(c);
        return ck_err(err, errlen, "handshake with %s: the peer speaks connection protocol version %u, this side %u",
                      c->peer, peer_hello[0], CONN_VERSION);
    }
    if (peer_hello[1] > 1) {
        handshake_fail(c);
        return ck_err(err, errlen, "handshake with %s: malformed hello (keyed flag %u)", c->peer, peer_hello[1]);
    }
    if (check_flags(c, keyed, peer_hello[1], is_server, err, errlen) != 0) return -1;
    if (!keyed) return 0;
    return handshake_keyed(c, key, is_server, hello + 2, peer_hello + 2, deadline, timeout_ms, err, errlen);
}

int ck_conn_handshake(ck_conn *c, const char *key, int is_server, int timeout_ms, char *err, size_t errlen) {
    if (!c) return ck_err(err, errlen, "handshake: no connection");
    return handshake(c, key, is_server, timeout_ms, err, errlen) == 0 ? 0 : c->refused ? -2 : -1;
}

/* ---- frames ---- */

/* Seals frame into c->sbuf as length prefix + ciphertext; *total gets the bytes to send. */
static int seal(ck_conn *c, const void *frame, size_t len, size_t *total, char *err, size_t errlen) {
    size_t need = 4 + len + TAG_BYTES; /* len <= CK_CONN_MAX_FRAME: no overflow */
    uint8_t *nb = ck_grow(c->sbuf, &c->scap, need, 1, 4096);
    if (!nb) return ck_err(err, errlen, "out of memory for a %zu-byte frame to %s", len, c->peer);
    c->sbuf = nb;
    static const uint8_t empty[1];
    uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    frame_nonce(c->ctr_tx, nonce);
    put_le32(nb, (uint32_t)(len + TAG_BYTES));
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(nb + 4, &clen, len ? frame : empty, len, nb, 4, NULL, nonce,
                                               c->key_tx);
    *total = 4 + (size_t)clen;
    return 0;
}

int ck_conn_send(ck_conn *c, const void *frame, size_t len, int timeout_ms, char *err, size_t errlen) {
    if (!c) return ck_err(err, errlen, "send: no connection");
    if (len > CK_CONN_MAX_FRAME)
        return ck_err(err, errlen, "frame of %zu bytes to %s exceeds the %u-byte limit", len, c->peer,
                      CK_CONN_MAX_FRAME);
    if (len && !frame) return ck_err(err, errlen, "send to %s: no frame bytes", c->peer);
    if (c->tx_broken) return ck_err(err, errlen, "connection to %s is unusable after an earlier error", c->peer);
    int64_t deadline = deadline_of(timeout_ms);
    uint64_t before = c->sent;
    int rc;
    if (c->secure) {
        if (c->ctr_tx == UINT64_MAX) return ck_err(err, errlen, "connection to %s: frame counter exhausted", c->peer);
        size_t total = 0;
        if (seal(c, frame, len, &total, err, errlen) != 0) return -1;
        rc = write_all(c, c->sbuf, total, deadline, timeout_ms, err, errlen);
        if (rc == 0) c->ctr_tx++;
    } else {
        uint8_t hdr[4];
        put_le32(hdr, (uint32_t)len);
        struct iovec iov[2] = {{.iov_base = hdr, .iov_len = 4}, {.iov_base = (void *)frame, .iov_len = len}};
        rc = write_iov(c, iov, 2, deadline, timeout_ms, err, errlen);
    }
    if (rc != 0 && c->sent != before) c->tx_broken = 1; /* part of a frame went out */
    return rc;
}

/* Reads the length prefix and checks the frame against the limits; *wire_len gets the bytes that follow. */
static int recv_header(ck_conn *c, size_t max_len, uint32_t *wire_len, int64_t deadline, int timeout_ms, char *err,
                       size_t errlen) {
    uint8_t hdr[4];
    if (read_full(c, hdr, 4, deadline, timeout_ms, err, errlen) != 0) return -1;
    uint32_t n = get_le32(hdr);
    size_t limit = max_len < CK_CONN_MAX_FRAME ? max_len : CK_CONN_MAX_FRAME;
    size_t plain = n;
    if (c->secure) {
        if (n < TAG_BYTES)
            return ck_err(err, errlen, "malformed frame from %s: %u bytes, shorter than its authentication tag",
                          c->peer, n);
        plain = n - TAG_BYTES;
    }
    if (plain > limit)
        return ck_err(err, errlen, "frame of %zu bytes from %s exceeds the limit of %zu bytes (refused)", plain,
                      c->peer, limit);
    *wire_len = n;
    return 0;
}

int ck_conn_recv(ck_conn *c, const uint8_t **frame, size_t *len, size_t max_len, int timeout_ms, char *err,
                 size_t errlen) {
    if (!c) return ck_err(err, errlen, "recv: no connection");
    if (c->rx_broken) return ck_err(err, errlen, "connection to %s is unusable after an earlier error", c->peer);
    int64_t deadline = deadline_of(timeout_ms);
    uint64_t before = c->received;
    uint32_t n = 0;
    if (recv_header(c, max_len, &n, deadline, timeout_ms, err, errlen) != 0) goto fail;
    uint8_t *nb = ck_grow(c->rbuf, &c->rcap, n ? n : 1, 1, 4096);
    if (!nb) {
        ck_err(err, errlen, "out of memory for a %u-byte frame from %s", n, c->peer);
        goto fail;
    }
    c->rbuf = nb;
    if (read_full(c, nb, n, deadline, timeout_ms, err, errlen) != 0) goto fail;
    size_t plain = n;
    if (c->secure) {
        uint8_t hdr[4], nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
        put_le32(hdr, n);
        frame_nonce(c->ctr_rx, nonce);
        unsigned long long mlen = 0;
        if (c->ctr_rx == UINT64_MAX ||
            crypto_aead_xchacha20poly1305_ietf_decrypt(nb, &mlen, NULL, nb, n, hdr, 4, nonce, c->key_rx) != 0) {
            ck_err(err, errlen, "frame from %s failed authentication (tampered, replayed or wrong key)", c->peer);
            goto fail;
        }
        c->ctr_rx++;
        plain = (size_t)mlen;
    }
    *frame = nb;
    *len = plain;
    return 0;
fail:
    if (c->received != before) c->rx_broken = 1; /* part of a frame was consumed */
    return -1;
}

/* ---- accessors ---- */

const char *ck_conn_peer(const ck_conn *c) { return c ? c->peer : "(no connection)"; }
int ck_conn_peer_closed(const ck_conn *c) { return c && c->peer_closed; }
int ck_conn_secure(const ck_conn *c) { return c ? c->secure : 0; }
uint64_t ck_conn_bytes_sent(const ck_conn *c) {
    return c ? atomic_load_explicit(&c->sent, memory_order_relaxed) : 0;
}
uint64_t ck_conn_bytes_received(const ck_conn *c) {
    return c ? atomic_load_explicit(&c->received, memory_order_relaxed) : 0;
}

void ck_conn_close(ck_conn *c) {
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    sodium_memzero(c->key_tx, sizeof c->key_tx);
    sodium_memzero(c->key_rx, sizeof c->key_rx);
    free(c->rbuf);
    free(c->sbuf);
    free(c);
}
