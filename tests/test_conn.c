/* test_conn.c — ck_conn over real TCP sockets on 127.0.0.1 (ephemeral ports): plaintext and keyed round
 * trips (frames of 0, 1, 1000 bytes and 3 MB, byte counters), handshake failures (wrong key, key on one
 * side only: both sides fail fast with a message naming who holds a key), frame limits refused before the
 * body is read, deadlines (stalled peer, stalled handshake, accept), a peer that closes (recv says "closed
 * by the peer", send fails without SIGPIPE killing us), and a forwarding proxy that flips a byte or
 * replays a captured encrypted frame (refused as failing authentication); a hand-driven master that
 * speaks another version, reflects the worker's nonce, or rejects a valid proof. Runs in about a second. */
#include "testutil.h"

#include "cluster/conn.h"
#include "cluster/node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* 1 when the message s contains sub. */
static int has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Listens on 127.0.0.1 at an ephemeral port; *port gets the port the kernel chose. */
static int listen_local(int *port) {
    char err[256];
    int fd;
    if (ck_conn_listen("127.0.0.1:0", &fd, err, sizeof err) != 0) {
        fprintf(stderr, "listen: %s\n", err);
        exit(2);
    }
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        perror("getsockname");
        exit(2);
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

static void local_addr(char *out, size_t n, int port) { snprintf(out, n, "127.0.0.1:%d", port); }

/* A plain blocking TCP socket connected to 127.0.0.1:port. */
static int raw_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("raw connect");
        exit(2);
    }
    return fd;
}

static int raw_write(int fd, const void *buf, size_t n) {
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

static int raw_read(int fd, void *buf, size_t n) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r, n -= (size_t)r;
    }
    return 0;
}

/* A connected master (m) and worker (w), no handshake yet. */
static void connect_pair(ck_conn **m, ck_conn **w) {
    char err[256], addr[64];
    int port, lfd = listen_local(&port);
    local_addr(addr, sizeof addr, port);
    int rc = ck_conn_connect(addr, 2000, m, err, sizeof err);
    CK_EXPECT(rc == 0, "connect: %s", err);
    rc = rc == 0 ? ck_conn_accept(lfd, 2000, w, err, sizeof err) : -1;
    CK_EXPECT(rc == 0, "accept: %s", err);
    close(lfd);
    if (rc != 0) exit(1);
}

/* A raw socket as master and a ck_conn worker after a plaintext handshake (hello written by hand). */
static void raw_pair(int *raw, ck_conn **w) {
    char err[256];
    int port, lfd = listen_local(&port);
    *raw = raw_connect(port);
    int rc = ck_conn_accept(lfd, 2000, w, err, sizeof err);
    close(lfd);
    CK_EXPECT(rc == 0, "accept: %s", err);
    if (rc != 0) exit(1);
    uint8_t hello[34] = {1, 0, 7, 7, 7}, back[34];
    raw_write(*raw, hello, sizeof hello); /* fits in the socket buffer: no peer thread needed */
    rc = ck_conn_handshake(*w, NULL, 1, 2000, err, sizeof err);
    CK_EXPECT(rc == 0, "raw handshake: %s", err);
    CK_EXPECT(raw_read(*raw, back, sizeof back) == 0 && back[0] == 1 && back[1] == 0, "worker hello");
}

typedef struct {
    ck_conn *c;
    const char *key;
    int is_server, timeout_ms, rc;
    int64_t ms;
    char err[512];
} hs_arg;

static void *hs_thread(void *p) {
    hs_arg *a = p;
    int64_t t0 = now_ms();
    a->rc = ck_conn_handshake(a->c, a->key, a->is_server, a->timeout_ms, a->err, sizeof a->err);
    a->ms = now_ms() - t0;
    return NULL;
}

/* Runs both handshakes at once (the worker's on a thread). */
static void handshake_both(ck_conn *m, const char *km, ck_conn *w, const char *kw, hs_arg *hm, hs_arg *hw) {
    *hm = (hs_arg){.c = m, .key = km, .is_server = 0, .timeout_ms = 5000};
    *hw = (hs_arg){.c = w, .key = kw, .is_server = 1, .timeout_ms = 5000};
    pthread_t t;
    pthread_create(&t, NULL, hs_thread, hw);
    hs_thread(hm);
    pthread_join(t, NULL);
}

typedef struct {
    ck_conn *c;
    int frames;
    char err[512];
} echo_arg;

/* Sends every frame back until the connection fails (normally: the master closes). */
static void *echo_thread(void *p) {
    echo_arg *a = p;
    for (;;) {
        const uint8_t *f;
        size_t n;
        if (ck_conn_recv(a->c, &f, &n, 8u << 20, 5000, a->err, sizeof a->err) != 0) break;
        if (ck_conn_send(a->c, f, n, 5000, a->err, sizeof a->err) != 0) break;
        a->frames++;
    }
    return NULL;
}

static void test_round_trip(const char *key) {
    ck_conn *m, *w;
    hs_arg hm, hw;
    connect_pair(&m, &w);
    handshake_both(m, key, w, key, &hm, &hw);
    CK_EXPECT(hm.rc == 0 && hw.rc == 0, "handshake: master '%s', worker '%s'", hm.err, hw.err);
    int keyed = key && key[0];
    CK_EXPECT(ck_conn_secure(m) == keyed && ck_conn_secure(w) == keyed, "secure flag");
    CK_EXPECT(!strncmp(ck_conn_peer(m), "127.0.0.1:", 10), "peer %s", ck_conn_peer(m));
    uint64_t hs_bytes = keyed ? 34 + 32 + 1 : 34;
    CK_EXPECT(ck_conn_bytes_sent(m) == hs_bytes && ck_conn_bytes_received(m) == hs_bytes, "handshake bytes %llu",
              (unsigned long long)ck_conn_bytes_sent(m));

    echo_arg ea = {.c = w};
    pthread_t t;
    pthread_create(&t, NULL, echo_thread, &ea);
    static const size_t sizes[] = {0, 1, 1000, 3u << 20, 1000, 0};
    size_t big = 3u << 20;
    uint8_t *buf = malloc(big);
    for (size_t i = 0; i < big; i++) buf[i] = (uint8_t)(i * 131 + (i >> 13));
    uint64_t expect = hs_bytes;
    char err[512];
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        buf[0] ^= (uint8_t)k; /* frames differ from one another */
        int rc = ck_conn_send(m, buf, n, 5000, err, sizeof err);
        CK_EXPECT(rc == 0, "send %zu: %s", n, err);
        const uint8_t *f = NULL;
        size_t got = 0;
        rc = ck_conn_recv(m, &f, &got, 8u << 20, 5000, err, sizeof err);
        CK_EXPECT(rc == 0, "recv %zu: %s", n, err);
        CK_EXPECT(rc == 0 && got == n && f && (n == 0 || !memcmp(f, buf, n)), "echo of %zu bytes (got %zu)", n, got);
        expect += 4 + n + (keyed ? 16 : 0);
    }
    CK_EXPECT(ck_conn_bytes_sent(m) == expect && ck_conn_bytes_received(m) == expect, "bytes %llu/%llu, want %llu",
              (unsigned long long)ck_conn_bytes_sent(m), (unsigned long long)ck_conn_bytes_received(m),
              (unsigned long long)expect);
    ck_conn_close(m);
    pthread_join(t, NULL);
    CK_EXPECT(ck_conn_bytes_sent(w) == expect && ck_conn_bytes_received(w) == expect, "worker bytes");
    CK_EXPECT(ea.frames == 6, "echoed %d frames", ea.frames);
    CK_EXPECT(has(ea.err, "closed by the peer"), "echo ended with: %s", ea.err);
    ck_conn_close(w);
    free(buf);
}

/* A peer's ERROR text reaches the receiver with its control characters (terminal escapes) replaced. */
static void test_error_text(void) {
    ck_conn *m, *w;
    hs_arg hm, hw;
    connect_pair(&m, &w);
    handshake_both(m, NULL, w, NULL, &hm, &hw);
    ck_msgbuf b = {0};
    ck_msg_send_error(w, &b, 3, "bad\x1b[2J\x1b]0;owned\x07 news\n\xc2\x9b" "2J \xc3\xa9");
    ck_msg got;
    char err[256];
    int rc = ck_msg_recv(m, NULL, 1 << 16, &got, 2000, err, sizeof err);
    CK_EXPECT(rc == 0 && got.type == CK_MSG_ERROR && got.u.error.message.n == 30 &&
                  !memcmp(got.u.error.message.p, "bad?[2J?]0;owned? news???2J \xc3\xa9", 30),
              "ERROR text: %s %.*s", rc ? err : "", rc ? 0 : got.u.error.message.n, rc ? "" : got.u.error.message.p);
    ck_msgbuf_free(&b);
    ck_conn_close(m);
    ck_conn_close(w);
}

/* Handshake between keys km and kw that must fail on both sides, fast, with the given messages, as a
 * refusal (-2: trying again will not help). */
static void test_handshake_fails(const char *km, const char *kw, const char *msg_m, const char *msg_w) {
    ck_conn *m, *w;
    hs_arg hm, hw;
    connect_pair(&m, &w);
    handshake_both(m, km, w, kw, &hm, &hw);
    CK_EXPECT(hm.rc == -2 && has(hm.err, msg_m), "master: rc %d, '%s' (want '%s')", hm.rc, hm.err, msg_m);
    CK_EXPECT(hw.rc == -2 && has(hw.err, msg_w), "worker: rc %d, '%s' (want '%s')", hw.rc, hw.err, msg_w);
    printf("test_conn: master: %s\ntest_conn: worker: %s\n", hm.err, hw.err);
    CK_EXPECT(hm.ms < 2000 && hw.ms < 2000, "failed in %lld / %lld ms", (long long)hm.ms, (long long)hw.ms);
    char err[256];
    CK_EXPECT(ck_conn_send(m, "x", 1, 100, err, sizeof err) == -1 && has(err, "unusable"), "send after failure: %s",
              err);
    ck_conn_close(m);
    ck_conn_close(w);
}

/* A worker facing a hand-driven master (raw socket) that deviates from the protocol in one way. */
enum { RAW_VERSION, RAW_REFLECT, RAW_REJECT, RAW_HTTP };

static void test_raw_master(int how, const char *want) {
    char err[256];
    int port, lfd = listen_local(&port), raw = raw_connect(port);
    ck_conn *w;
    CK_EXPECT(ck_conn_accept(lfd, 2000, &w, err, sizeof err) == 0, "accept: %s", err);
    close(lfd);
    hs_arg hw = {.c = w, .key = "k", .is_server = 1, .timeout_ms = 3000};
    pthread_t t;
    pthread_create(&t, NULL, hs_thread, &hw);
    uint8_t wh[34], mh[34] = {1, 1}, k[32], msg[65], proof[32], wproof[32], verdict = 0;
    raw_read(raw, wh, sizeof wh);
    if (how == RAW_VERSION) mh[0] = 2;
    if (how == RAW_HTTP) memcpy(mh, "HTTP/1.1 400 Bad Request\r\nContent-", 34); /* another service's answer */
    if (how == RAW_REFLECT) memcpy(mh, wh, sizeof mh);
    if (how == RAW_REJECT) randombytes_buf(mh + 2, 32);
    raw_write(raw, mh, sizeof mh);
    if (how == RAW_REJECT) { /* a correct proof, then "your proof is wrong" */
        crypto_hash_sha256(k, (const uint8_t *)"k", 1);
        msg[0] = 'M';
        memcpy(msg + 1, wh + 2, 32);
        memcpy(msg + 33, mh + 2, 32);
        crypto_auth_hmacsha256(proof, msg, sizeof msg, k);
        raw_read(raw, wproof, sizeof wproof);
        raw_write(raw, proof, sizeof proof);
        raw_write(raw, &verdict, 1);
    }
    pthread_join(t, NULL);
    CK_EXPECT(hw.rc == -2 && has(hw.err, want), "raw master %d: rc %d, %s (want %s)", how, hw.rc, hw.err, want);
    CK_EXPECT(hw.ms < 2000, "took %lld ms", (long long)hw.ms);
    close(raw);
    ck_conn_close(w);
}

static void test_limits(void) {
    char err[512];
    const uint8_t *f;
    size_t n;
    /* plaintext: 5000 bytes against a 1000-byte limit */
    ck_conn *m, *w;
    hs_arg hm, hw;
    connect_pair(&m, &w);
    handshake_both(m, NULL, w, NULL, &hm, &hw);
    uint8_t *buf = calloc(1, 5000);
    CK_EXPECT(ck_conn_send(m, buf, 5000, 2000, err, sizeof err) == 0, "send: %s", err);
    CK_EXPECT(ck_conn_recv(w, &f, &n, 1000, 2000, err, sizeof err) == -1 &&
                  has(err, "frame of 5000 bytes from 127.0.0.1:") && has(err, "exceeds the limit of 1000 bytes"),
              "oversized: %s", err);
    CK_EXPECT(ck_conn_recv(w, &f, &n, 8000, 200, err, sizeof err) == -1 && has(err, "unusable after an earlier error"),
              "after refusal: %s", err);
    CK_EXPECT(ck_conn_send(m, buf, (size_t)CK_CONN_MAX_FRAME + 1, 200, err, sizeof err) == -1 && has(err, "exceeds"),
              "send over CK_CONN_MAX_FRAME: %s", err);
    ck_conn_close(m);
    ck_conn_close(w);

    /* keyed: the limit applies to the plaintext (1000 passes, 1001 is refused) */
    connect_pair(&m, &w);
    handshake_both(m, "k", w, "k", &hm, &hw);
    CK_EXPECT(ck_conn_send(m, buf, 1000, 2000, err, sizeof err) == 0, "send: %s", err);
    CK_EXPECT(ck_conn_recv(w, &f, &n, 1000, 2000, err, sizeof err) == 0 && n == 1000, "keyed at limit: %s", err);
    CK_EXPECT(ck_conn_send(m, buf, 1001, 2000, err, sizeof err) == 0, "send: %s", err);
    CK_EXPECT(ck_conn_recv(w, &f, &n, 1000, 2000, err, sizeof err) == -1 && has(err, "exceeds the limit of 1000"),
              "keyed over limit: %s", err);
    ck_conn_close(m);
    ck_conn_close(w);
    free(buf);

    /* a prefix announcing a huge frame is refused at once (the body is never awaited nor allocated) */
    int raw;
    raw_pair(&raw, &w);
    uint8_t hdr[4] = {0x00, 0x00, 0x00, 0x40}; /* 1 GiB */
    raw_write(raw, hdr, 4);
    int64_t t0 = now_ms();
    CK_EXPECT(ck_conn_recv(w, &f, &n, 1u << 20, 3000, err, sizeof err) == -1 &&
                  has(err, "frame of 1073741824 bytes") && has(err, "exceeds the limit of 1048576 bytes"),
              "1 GiB prefix: %s", err);
    CK_EXPECT(now_ms() - t0 < 1000, "refusal took %lld ms", (long long)(now_ms() - t0));
    close(raw);
    ck_conn_close(w);
    raw_pair(&raw, &w);
    uint8_t hdr2[4] = {0xff, 0xff, 0xff, 0xff};
    raw_write(raw, hdr2, 4);
    CK_EXPECT(ck_conn_recv(w, &f, &n, SIZE_MAX, 3000, err, sizeof err) == -1 &&
                  has(err, "exceeds the limit of 1073741824"),
              "4 GiB prefix with no caller limit: %s", err);
    close(raw);
    ck_conn_close(w);
}

static void test_deadlines(void) {
    char err[512];
    const uint8_t *f;
    size_t n;
    ck_conn *m, *w;
    hs_arg hm, hw;
    /* a silent peer: recv times out, naming the peer; the stream stays usable */
    connect_pair(&m, &w);
    handshake_both(m, NULL, w, NULL, &hm, &hw);
    int64_t t0 = now_ms();
    int rc = ck_conn_recv(m, &f, &n, 100, 200, err, sizeof err);
    int64_t dt = now_ms() - t0;
    CK_EXPECT(rc == -1 && has(err, "timed out after 200 ms waiting for 127.0.0.1:"), "stall: %s", err);
    CK_EXPECT(dt >= 150 && dt < 1500, "stall took %lld ms", (long long)dt);
    CK_EXPECT(ck_conn_send(w, "late", 4, 1000, err, sizeof err) == 0, "send: %s", err);
    CK_EXPECT(ck_conn_recv(m, &f, &n, 100, 1000, err, sizeof err) == 0 && n == 4 && !memcmp(f, "late", 4),
              "recv after a timeout between frames: %s", err);
    ck_conn_close(m);
    ck_conn_close(w);

    /* a peer that stalls mid-frame: timeout, then the direction is unusable */
    int raw;
    raw_pair(&raw, &w);
    uint8_t part[14] = {100, 0, 0, 0, 'h', 'a', 'l', 'f'};
    raw_write(raw, part, sizeof part);
    CK_EXPECT(ck_conn_recv(w, &f, &n, 1000, 200, err, sizeof err) == -1 && has(err, "timed out after 200 ms"),
              "mid-frame stall: %s", err);
    CK_EXPECT(ck_conn_recv(w, &f, &n, 1000, 200, err, sizeof err) == -1 && has(err, "unusable"), "after: %s", err);
    /* ... and a peer that closes mid-frame */
    close(raw);
    ck_conn_close(w);
    raw_pair(&raw, &w);
    raw_write(raw, part, sizeof part);
    close(raw);
    CK_EXPECT(ck_conn_recv(w, &f, &n, 1000, 2000, err, sizeof err) == -1 && has(err, "closed by the peer"),
              "closed mid-frame: %s", err);
    ck_conn_close(w);

    /* a handshake with a silent peer */
    int port, lfd = listen_local(&port);
    raw = raw_connect(port);
    CK_EXPECT(ck_conn_accept(lfd, 2000, &w, err, sizeof err) == 0, "accept: %s", err);
    t0 = now_ms();
    CK_EXPECT(ck_conn_handshake(w, "k", 1, 200, err, sizeof err) == -1 && has(err, "handshake") &&
                  has(err, "timed out after 200 ms waiting for 127.0.0.1:"),
              "handshake stall: %s", err);
    CK_EXPECT(now_ms() - t0 < 1500, "handshake stall took %lld ms", (long long)(now_ms() - t0));
    close(raw);
    ck_conn_close(w);

    /* accept with nobody connecting */
    CK_EXPECT(ck_conn_accept(lfd, 100, &w, err, sizeof err) == -1 && has(err, "timed out after 100 ms"), "accept: %s",
              err);
    close(lfd);
}

static void test_closed_peer(void) {
    char err[512];
    const uint8_t *f;
    size_t n;
    ck_conn *m, *w;
    hs_arg hm, hw;
    connect_pair(&m, &w);
    handshake_both(m, "k", w, "k", &hm, &hw);
    ck_conn_close(w);
    CK_EXPECT(ck_conn_recv(m, &f, &n, 100, 2000, err, sizeof err) == -1 && has(err, "closed by the peer") &&
                  has(err, "127.0.0.1:"),
              "recv from closed: %s", err);
    ck_conn_close(m);

    /* sends to a closed peer fail (EPIPE/ECONNRESET) and SIGPIPE (left at its default: fatal) never comes */
    connect_pair(&m, &w);
    handshake_both(m, NULL, w, NULL, &hm, &hw);
    ck_conn_close(w);
    size_t big = 64 * 1024;
    uint8_t *buf = calloc(1, big);
    int failed = 0;
    for (int i = 0; i < 200 && !failed; i++) {
        if (ck_conn_send(m, buf, big, 1000, err, sizeof err) != 0) failed = 1;
        else usleep(2000);
    }
    printf("test_conn: send to a closed peer: %s\n", err);
    CK_EXPECT(failed && (has(err, "closed by the peer") || has(err, "unusable")), "send to closed peer: %s",
              failed ? err : "(never failed)");
    CK_EXPECT(ck_conn_send(m, buf, 10, 1000, err, sizeof err) == -1, "send again");
    free(buf);
    ck_conn_close(m);
}

/* ---- a forwarding proxy between master and worker that can flip or replay master->worker bytes ---- */

typedef struct {
    int lfd, worker_port;
    atomic_llong flip_at;   /* stream offset of the master->worker byte to flip, or -1 */
    atomic_llong replay_at; /* stream offset where a frame starts that is sent twice, or -1 */
} proxy_arg;

static void *proxy_thread(void *p) {
    proxy_arg *a = p;
    struct pollfd lp = {.fd = a->lfd, .events = POLLIN};
    if (poll(&lp, 1, 5000) != 1) return NULL;
    int from_m = accept(a->lfd, NULL, NULL);
    if (from_m < 0) return NULL;
    fcntl(from_m, F_SETFL, fcntl(from_m, F_GETFL) & ~O_NONBLOCK);
    int to_w = raw_connect(a->worker_port);
    long long off = 0;
    uint8_t buf[65536], cap[8192];
    size_t cap_len = 0, cap_need = 4;
    int replayed = 0;
    for (;;) {
        struct pollfd pf[2] = {{.fd = from_m, .events = POLLIN}, {.fd = to_w, .events = POLLIN}};
        if (poll(pf, 2, 5000) <= 0) break;
        if (pf[1].revents) { /* worker -> master: as is */
            ssize_t r = recv(to_w, buf, sizeof buf, 0);
            if (r <= 0 || raw_write(from_m, buf, (size_t)r) != 0) break;
        }
        if (pf[0].revents) {
            ssize_t r = recv(from_m, buf, sizeof buf, 0);
            if (r <= 0) break;
            long long flip = atomic_load(&a->flip_at), rep = atomic_load(&a->replay_at);
            for (ssize_t i = 0; i < r; i++, off++) {
                if (off == flip) buf[i] ^= 0x40;
                if (rep >= 0 && off >= rep && cap_len < cap_need) {
                    cap[cap_len++] = buf[i];
                    if (cap_len == 4) {
                        cap_need = 4 + ((size_t)cap[0] | (size_t)cap[1] << 8 | (size_t)cap[2] << 16 |
                                        (size_t)cap[3] << 24);
                        if (cap_need > sizeof cap) cap_need = sizeof cap;
                    }
                }
            }
            if (raw_write(to_w, buf, (size_t)r) != 0) break;
            if (!replayed && cap_len > 4 && cap_len == cap_need) {
                replayed = 1;
                if (raw_write(to_w, cap, cap_len) != 0) break;
            }
        }
    }
    close(from_m);
    close(to_w);
    return NULL;
}

/* Master -> proxy -> worker, keyed; flips the byte at frame offset flip_off of the first frame after the
 * handshake, or (flip_off < 0) sends that frame twice. The worker must refuse the bad frame. */
static void test_proxy(long long flip_off) {
    char err[512], addr[64];
    int wport, wl = listen_local(&wport), pport;
    proxy_arg pa = {.worker_port = wport};
    pa.lfd = listen_local(&pport);
    atomic_init(&pa.flip_at, -1);
    atomic_init(&pa.replay_at, -1);
    pthread_t t;
    pthread_create(&t, NULL, proxy_thread, &pa);
    ck_conn *m, *w;
    local_addr(addr, sizeof addr, pport);
    CK_EXPECT(ck_conn_connect(addr, 2000, &m, err, sizeof err) == 0, "connect via proxy: %s", err);
    CK_EXPECT(ck_conn_accept(wl, 2000, &w, err, sizeof err) == 0, "accept from proxy: %s", err);
    hs_arg hm, hw;
    handshake_both(m, "sesame", w, "sesame", &hm, &hw);
    CK_EXPECT(hm.rc == 0 && hw.rc == 0, "handshake via proxy: '%s' / '%s'", hm.err, hw.err);

    long long start = (long long)ck_conn_bytes_sent(m);
    if (flip_off >= 0) atomic_store(&pa.flip_at, start + flip_off);
    else atomic_store(&pa.replay_at, start);
    uint8_t msg[100];
    for (int i = 0; i < 100; i++) msg[i] = (uint8_t)i;
    CK_EXPECT(ck_conn_send(m, msg, sizeof msg, 2000, err, sizeof err) == 0, "send: %s", err);
    const uint8_t *f;
    size_t n;
    int rc = ck_conn_recv(w, &f, &n, 1000, 2000, err, sizeof err);
    if (flip_off < 0) { /* the original passes, its replay does not */
        CK_EXPECT(rc == 0 && n == 100 && !memcmp(f, msg, 100), "original frame: %s", err);
        rc = ck_conn_recv(w, &f, &n, 1000, 2000, err, sizeof err);
    }
    CK_EXPECT(rc == -1 && has(err, "failed authentication (tampered, replayed or wrong key)"),
              "%s (offset %lld): rc %d, %s", flip_off < 0 ? "replay" : "flip", flip_off, rc, err);
    ck_conn_close(m);
    ck_conn_close(w);
    pthread_join(t, NULL);
    close(pa.lfd);
    close(wl);
}

static void test_addresses(void) {
    char err[512];
    int fd;
    ck_conn *c;
    CK_EXPECT(ck_conn_listen("nonsense", &fd, err, sizeof err) == -1 && has(err, "host:port"), "no port: %s", err);
    CK_EXPECT(ck_conn_listen("127.0.0.1:99999", &fd, err, sizeof err) == -1 && has(err, "bad port"), "port: %s", err);
    CK_EXPECT(ck_conn_connect("::1:80", 100, &c, err, sizeof err) == -1 && has(err, "[addr]:port"), "bare v6: %s", err);
    CK_EXPECT(ck_conn_connect("no-such-host.invalid:80", 2000, &c, err, sizeof err) == -1 && has(err, "cannot resolve"),
              "resolve: %s", err);
    /* a port nobody listens on: refused */
    int port, lfd = listen_local(&port);
    close(lfd);
    char addr[64];
    local_addr(addr, sizeof addr, port);
    CK_EXPECT(ck_conn_connect(addr, 2000, &c, err, sizeof err) == -1 && has(err, "cannot connect to 127.0.0.1:"),
              "refused: %s", err);
    /* names resolve */
    lfd = listen_local(&port);
    snprintf(addr, sizeof addr, "localhost:%d", port);
    if (ck_conn_connect(addr, 2000, &c, err, sizeof err) == 0) ck_conn_close(c);
    else CK_EXPECT(0, "localhost: %s", err);
    close(lfd);
    /* IPv6 in brackets, where the machine has it */
    if (ck_conn_listen("[::1]:0", &fd, err, sizeof err) == 0) {
        struct sockaddr_in6 sa;
        socklen_t sl = sizeof sa;
        getsockname(fd, (struct sockaddr *)&sa, &sl);
        snprintf(addr, sizeof addr, "[::1]:%d", ntohs(sa.sin6_port));
        ck_conn *s;
        CK_EXPECT(ck_conn_connect(addr, 2000, &c, err, sizeof err) == 0, "v6 connect: %s", err);
        CK_EXPECT(ck_conn_accept(fd, 2000, &s, err, sizeof err) == 0, "v6 accept: %s", err);
        CK_EXPECT(!strncmp(ck_conn_peer(c), "[::1]:", 6), "v6 peer %s", ck_conn_peer(c));
        ck_conn_close(c);
        ck_conn_close(s);
        close(fd);
    } else {
        printf("test_conn: no IPv6 loopback here (%s), [v6]:port not exercised\n", err);
    }
}

int main(void) {
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the test: sends must not raise it */
    if (sodium_init() < 0) return 2;
    test_addresses();
    test_round_trip(NULL);
    test_round_trip("correct horse battery staple");
    test_error_text();
    test_handshake_fails("alpha", "beta", "cluster key mismatch (authentication failed)",
                         "cluster key mismatch (authentication failed)");
    test_handshake_fails(NULL, "k", "the worker expects a cluster key but none was given",
                         "this worker expects a cluster key but the master sent none");
    test_handshake_fails("k", "", "a cluster key was given but the worker has none",
                         "the master sent a cluster key but this worker has none");
    test_raw_master(RAW_VERSION, "protocol version 2");
    test_raw_master(RAW_HTTP, "the peer is not a cake node (it answered \"HTTP/1.1 400 Bad Request\")");
    test_raw_master(RAW_REFLECT, "reflection refused");
    test_raw_master(RAW_REJECT, "cluster key mismatch (authentication failed: the peer rejected our key)");
    test_limits();
    test_deadlines();
    test_closed_peer();
    test_proxy(0);   /* the length prefix (additional data) */
    test_proxy(10);  /* the ciphertext */
    test_proxy(-1);  /* replay */
    return ck_test_done("test_conn");
}
