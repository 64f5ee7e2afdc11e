/* test_discovery.c — UDP discovery (src/cluster/discovery.h).
 *
 * Codec: the key hash is pinned against an independent BLAKE2b (Python's hashlib); QUERY and REPLY bytes
 * are pinned by hand-written arrays and round-trip; every malformed packet is refused (wrong magic,
 * version, type or key hash, every truncation length, a trailing byte, over-long, string lengths 0 and
 * 64, non-printable name/backend bytes, tcp_port 0, negative or non-finite tflops), and every one-byte
 * corruption of a valid reply either is refused or decodes to something that re-encodes to those bytes.
 * Loopback: servers on 127.0.0.1:P, 127.0.0.2:P (and one of another key on 127.0.0.3:P) are found by a
 * query sent to the list of the three addresses, with their names and "ip:tcp_port" hosts; two servers
 * sharing 0.0.0.0:Q are both found through the loopback broadcast address 127.255.255.255:Q; garbage does
 * not stop a server (it is counted and the server still answers); min_workers returns early, the timeout
 * is honoured, a full out[] returns at once; bad arguments are refused.
 *
 * With arguments it is the helper of tests/test_discovery_netns.sh (network namespaces):
 *   test_discovery serve KEY NAME BIND TCP_PORT SECONDS   answers for SECONDS, printing "serving NAME"
 *   test_discovery find KEY BCAST TIMEOUT_MS MIN          prints "NAME HOST BACKEND" per worker found */
#include "cluster/discovery.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const uint8_t HASH_SECRET[16] = {0xeb, 0xdc, 0xd2, 0xc2, 0x9d, 0x57, 0x54, 0x35,
                                        0xe1, 0x9c, 0x3d, 0xda, 0x77, 0x27, 0x08, 0x3a};
static const uint8_t HASH_OTHER[16] = {0xd2, 0x45, 0x6e, 0xd5, 0x53, 0x64, 0xc3, 0x0a,
                                       0xf7, 0xf1, 0x02, 0xbb, 0xa5, 0x55, 0x7d, 0x7d};

#define H16 0xeb, 0xdc, 0xd2, 0xc2, 0x9d, 0x57, 0x54, 0x35, 0xe1, 0x9c, 0x3d, 0xda, 0x77, 0x27, 0x08, 0x3a

/* QUERY of "secret" */
static const uint8_t QUERY_BYTES[] = {'C', 'A', 'K', 'E', 1, 1, H16};
/* REPLY of "secret": tcp 10128, mem 0x0102030405060708, threads 16, tflops 1.5, "w1", "cpu" */
/* clang-format off */
static const uint8_t REPLY_BYTES[] = {'C', 'A', 'K', 'E', 1, 2, H16,
                                      0x90, 0x27,                         /* tcp_port (offset 22) */
                                      8, 7, 6, 5, 4, 3, 2, 1,             /* mem_bytes (24) */
                                      16, 0, 0, 0,                        /* threads (32) */
                                      0x00, 0x00, 0xc0, 0x3f,             /* tflops (36) */
                                      2, 'w', '1',                        /* name (40) */
                                      3, 'c', 'p', 'u'};                  /* backend (43) */
/* clang-format on */

static ck_disc_info info_of(const char *name, const char *backend, uint16_t tcp) {
    ck_disc_info in;
    memset(&in, 0, sizeof in);
    snprintf(in.name, sizeof in.name, "%s", name);
    snprintf(in.backend, sizeof in.backend, "%s", backend);
    in.tcp_port = tcp;
    in.mem_bytes = 0x0102030405060708ull;
    in.threads = 16;
    in.tflops = 1.5f;
    return in;
}

static int64_t ms_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int decodes(const uint8_t *b, size_t n) {
    ck_disc_packet p;
    char err[128];
    return ck_disc_decode(b, n, HASH_SECRET, &p, err, sizeof err) == 0;
}

/* Decodes a copy of REPLY_BYTES with byte i set to v; 1 when accepted. */
static int reply_with(size_t i, uint8_t v) {
    uint8_t b[sizeof REPLY_BYTES];
    memcpy(b, REPLY_BYTES, sizeof b);
    b[i] = v;
    return decodes(b, sizeof b);
}

static void test_hash(void) {
    uint8_t h[16];
    CK_EXPECT(ck_disc_key_hash("secret", h) == 0 && !memcmp(h, HASH_SECRET, 16),
              "hash of 'secret' differs from hashlib");
    CK_EXPECT(ck_disc_key_hash("other", h) == 0 && !memcmp(h, HASH_OTHER, 16), "hash of 'other' differs from hashlib");
    CK_EXPECT(ck_disc_key_hash("", h) == -1, "empty key accepted");
    CK_EXPECT(ck_disc_key_hash(NULL, h) == -1, "NULL key accepted");
}

static void test_codec_roundtrip(void) {
    uint8_t buf[CK_DISC_MAX_PACKET];
    size_t len = 0;
    char err[128];
    CK_EXPECT(ck_disc_encode_query(HASH_SECRET, buf, sizeof buf, &len, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(len == sizeof QUERY_BYTES && !memcmp(buf, QUERY_BYTES, len), "query bytes differ");
    ck_disc_packet p;
    CK_EXPECT(ck_disc_decode(QUERY_BYTES, sizeof QUERY_BYTES, HASH_SECRET, &p, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(p.type == CK_DISC_QUERY && !memcmp(p.key_hash, HASH_SECRET, 16), "query decoded wrong");

    ck_disc_info in = info_of("w1", "cpu", 10128);
    CK_EXPECT(ck_disc_encode_reply(HASH_SECRET, &in, buf, sizeof buf, &len, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(len == sizeof REPLY_BYTES && !memcmp(buf, REPLY_BYTES, len), "reply bytes differ");
    CK_EXPECT(ck_disc_decode(REPLY_BYTES, sizeof REPLY_BYTES, HASH_SECRET, &p, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(p.type == CK_DISC_REPLY && !strcmp(p.info.name, "w1") && !strcmp(p.info.backend, "cpu") &&
                  p.info.tcp_port == 10128 && p.info.mem_bytes == 0x0102030405060708ull && p.info.threads == 16 &&
                  p.info.tflops == 1.5f,
              "reply decoded wrong");

    /* the longest strings, every printable byte, the extremes of the numbers */
    memset(&in, 0, sizeof in);
    for (int i = 0; i < 63; i++) in.name[i] = (char)(0x20 + i), in.backend[i] = (char)(0x7e - i);
    in.tcp_port = 65535;
    in.mem_bytes = UINT64_MAX;
    in.threads = UINT32_MAX;
    in.tflops = 0.0f;
    CK_EXPECT(ck_disc_encode_reply(HASH_SECRET, &in, buf, sizeof buf, &len, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(len == CK_DISC_MAX_PACKET, "longest reply is %zu bytes", len);
    CK_EXPECT(ck_disc_decode(buf, len, HASH_SECRET, &p, err, sizeof err) == 0 && !memcmp(&p.info.name, in.name, 64) &&
                  !memcmp(p.info.backend, in.backend, 64) && p.info.tcp_port == 65535 &&
                  p.info.mem_bytes == UINT64_MAX && p.info.threads == UINT32_MAX && p.info.tflops == 0.0f,
              "longest reply decoded wrong: %s", err);
    CK_EXPECT(ck_disc_encode_reply(HASH_SECRET, &in, buf, len - 1, &len, err, sizeof err) == -1, "short buffer taken");
    CK_EXPECT(ck_disc_encode_query(HASH_SECRET, buf, 21, &len, err, sizeof err) == -1, "short query buffer taken");
}

static void test_codec_rejects(void) {
    uint8_t b[CK_DISC_MAX_PACKET + 8];
    char err[128];
    ck_disc_packet p;
    CK_EXPECT(decodes(REPLY_BYTES, sizeof REPLY_BYTES), "valid reply refused");
    CK_EXPECT(!reply_with(0, 'c'), "bad magic accepted");
    CK_EXPECT(!reply_with(3, 'X'), "bad magic accepted");
    CK_EXPECT(!reply_with(4, 0) && !reply_with(4, 2), "bad version accepted");
    CK_EXPECT(!reply_with(5, 0) && !reply_with(5, 3) && !reply_with(5, 1), "bad type accepted");
    CK_EXPECT(!reply_with(6, 0xec) && !reply_with(21, 0x3b), "another key hash accepted");
    CK_EXPECT(ck_disc_decode(REPLY_BYTES, sizeof REPLY_BYTES, HASH_OTHER, &p, err, sizeof err) == -1 &&
                  strstr(err, "another cluster key"),
              "reply for another key accepted: %s", err);
    CK_EXPECT(ck_disc_decode(QUERY_BYTES, sizeof QUERY_BYTES, HASH_OTHER, &p, err, sizeof err) == -1,
              "query for another key accepted");
    for (size_t n = 0; n < sizeof REPLY_BYTES; n++)
        CK_EXPECT(!decodes(REPLY_BYTES, n), "reply truncated to %zu bytes accepted", n);
    for (size_t n = 0; n < sizeof QUERY_BYTES; n++)
        CK_EXPECT(!decodes(QUERY_BYTES, n), "query truncated to %zu bytes accepted", n);
    memcpy(b, QUERY_BYTES, sizeof QUERY_BYTES);
    b[sizeof QUERY_BYTES] = 0;
    CK_EXPECT(!decodes(b, sizeof QUERY_BYTES + 1), "query with a trailing byte accepted");
    memcpy(b, REPLY_BYTES, sizeof REPLY_BYTES);
    b[sizeof REPLY_BYTES] = 'x';
    CK_EXPECT(!decodes(b, sizeof REPLY_BYTES + 1), "reply with a trailing byte accepted");
    memset(b, 'a', sizeof b);
    memcpy(b, REPLY_BYTES, 26);
    CK_EXPECT(!decodes(b, CK_DISC_MAX_PACKET + 1), "over-long packet accepted");
    CK_EXPECT(ck_disc_decode(b, CK_DISC_MAX_PACKET + 1, HASH_SECRET, &p, err, sizeof err) == -1 &&
                  strstr(err, "too long"),
              "over-long: %s", err);

    /* fields: tcp_port (offset 22), tflops (36), name length (40), name bytes (41..42), backend (43..) */
    uint8_t z[sizeof REPLY_BYTES];
    memcpy(z, REPLY_BYTES, sizeof z);
    z[22] = z[23] = 0;
    CK_EXPECT(!decodes(z, sizeof z), "tcp_port 0 accepted");
    const uint32_t bad_f[] = {0x7fc00000u /* NaN */, 0x7f800000u /* inf */, 0xbf800000u /* -1 */, 0xff800000u};
    for (size_t i = 0; i < sizeof bad_f / sizeof bad_f[0]; i++) {
        memcpy(z, REPLY_BYTES, sizeof z);
        for (int k = 0; k < 4; k++) z[36 + k] = (uint8_t)(bad_f[i] >> (8 * k));
        CK_EXPECT(!decodes(z, sizeof z), "tflops bits %08x accepted", bad_f[i]);
    }
    CK_EXPECT(!reply_with(40, 0), "empty name accepted");
    CK_EXPECT(!reply_with(40, 64), "name length 64 accepted");
    CK_EXPECT(!reply_with(43, 0), "empty backend accepted");
    const uint8_t bad_bytes[] = {0x00, 0x09, 0x0a, 0x1f, 0x7f, 0x80, 0xc3, 0xff};
    for (size_t i = 0; i < sizeof bad_bytes; i++) {
        CK_EXPECT(!reply_with(41, bad_bytes[i]), "name byte %02x accepted", bad_bytes[i]);
        CK_EXPECT(!reply_with(42, bad_bytes[i]), "name byte %02x accepted", bad_bytes[i]);
        CK_EXPECT(!reply_with(46, bad_bytes[i]), "backend byte %02x accepted", bad_bytes[i]);
    }
    /* a string length that runs past the end, or leaves bytes over */
    CK_EXPECT(!reply_with(40, 3) && !reply_with(40, 1) && !reply_with(43, 4) && !reply_with(43, 2),
              "string length mismatch accepted");
    /* a 64-byte name in a well-formed frame */
    uint8_t big[CK_DISC_MAX_PACKET + 8];
    memcpy(big, REPLY_BYTES, 40);
    big[40] = 64;
    memset(big + 41, 'n', 64);
    big[105] = 1;
    big[106] = 'c';
    CK_EXPECT(!decodes(big, 107), "64-byte name accepted");
    big[40] = 63; /* the same frame with a 63-byte name is fine */
    big[104] = 1;
    big[105] = 'c';
    CK_EXPECT(decodes(big, 106), "63-byte name refused");

    /* every one-byte change: refused, or a packet that re-encodes to exactly the same bytes */
    for (size_t i = 0; i < sizeof REPLY_BYTES; i++)
        for (int v = 0; v < 256; v++) {
            memcpy(z, REPLY_BYTES, sizeof z);
            z[i] = (uint8_t)v;
            if (ck_disc_decode(z, sizeof z, HASH_SECRET, &p, err, sizeof err) != 0) continue;
            uint8_t re[CK_DISC_MAX_PACKET];
            size_t rl = 0;
            int ok = ck_disc_encode_reply(HASH_SECRET, &p.info, re, sizeof re, &rl, err, sizeof err) == 0 &&
                     rl == sizeof z && !memcmp(re, z, rl);
            if (!ok) CK_EXPECT(ok, "byte %zu = %02x decodes but does not re-encode", i, v);
        }

    /* encode refuses invalid info */
    ck_disc_info in = info_of("w1", "cpu", 1);
    size_t len;
    in.name[0] = 0;
    CK_EXPECT(ck_disc_encode_reply(HASH_SECRET, &in, b, sizeof b, &len, err, sizeof err) == -1, "empty name encoded");
    in = info_of("bad\nname", "cpu", 1);
    CK_EXPECT(ck_disc_encode_reply(HASH_SECRET, &in, b, sizeof b, &len, err, sizeof err) == -1, "newline encoded");
    in = info_of("w", "cpu", 1);
    memset(in.name, 'x', sizeof in.name); /* no terminator within 64 bytes */
    CK_EXPECT(ck_disc_encode_reply(HASH_SECRET, &in, b, sizeof b, &len, err, sizeof err) == -1, "64-byte name encoded");
    in = info_of("w", "cpu", 0);
    CK_EXPECT(ck_disc_encode_reply(HASH_SECRET, &in, b, sizeof b, &len, err, sizeof err) == -1, "tcp_port 0 encoded");
    in = info_of("w", "cpu", 1);
    in.tflops = -0.5f;
    CK_EXPECT(ck_disc_encode_reply(HASH_SECRET, &in, b, sizeof b, &len, err, sizeof err) == -1,
              "negative tflops encoded");
    in.tflops = NAN;
    CK_EXPECT(ck_disc_encode_reply(HASH_SECRET, &in, b, sizeof b, &len, err, sizeof err) == -1, "NaN tflops encoded");
    in.tflops = 1.0f;
    in.backend[0] = 0;
    CK_EXPECT(ck_disc_encode_reply(HASH_SECRET, &in, b, sizeof b, &len, err, sizeof err) == -1,
              "empty backend encoded");
}

/* ---- loopback ---- */

static ck_disc_server *serve(const char *key, const char *name, const char *bind_addr, uint16_t tcp) {
    ck_disc_info in = info_of(name, "cpu", tcp);
    ck_disc_server *s = NULL;
    char err[256];
    if (ck_disc_serve_start(key, &in, bind_addr, &s, err, sizeof err) != 0) {
        CK_EXPECT(0, "serve %s on %s: %s", name, bind_addr, err);
        return NULL;
    }
    return s;
}

/* Index of the peer called name in p[n], or -1. */
static int peer_named(const ck_disc_peer *p, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(p[i].name, name)) return (int)i;
    return -1;
}

static void send_raw(uint16_t port, const void *buf, size_t len) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CK_EXPECT(fd >= 0 && sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof sa) == (ssize_t)len, "raw send failed");
    if (fd >= 0) close(fd);
}

static void test_loopback(void) {
    char err[256], list[128];
    ck_disc_peer peers[8];
    size_t n = 99;
    ck_disc_server *a = serve("secret", "alpha", "127.0.0.1:0", 7001);
    if (!a) return;
    uint16_t port = ck_disc_serve_port(a);
    snprintf(list, sizeof list, "127.0.0.2:%u", port);
    ck_disc_server *b = serve("secret", "beta", list, 7002);
    snprintf(list, sizeof list, "127.0.0.3:%u", port);
    ck_disc_server *c = serve("other", "gamma", list, 7003);
    snprintf(list, sizeof list, "127.0.0.1:%u, 127.0.0.2:%u,127.0.0.3:%u", port, port, port);

    /* min_workers 2: both found, early return after the quiet period */
    int64_t t0 = ms_now();
    CK_EXPECT(ck_disc_find("secret", list, 3000, 2, peers, 8, &n, err, sizeof err) == 0, "find: %s", err);
    int64_t dt = ms_now() - t0;
    CK_EXPECT(n == 2, "found %zu workers, want 2", n);
    CK_EXPECT(dt >= 250 && dt < 2000, "early return took %lld ms", (long long)dt);
    int ia = peer_named(peers, n, "alpha"), ib = peer_named(peers, n, "beta");
    CK_EXPECT(ia >= 0 && !strcmp(peers[ia].host, "127.0.0.1:7001") && !strcmp(peers[ia].backend, "cpu") &&
                  peers[ia].mem_bytes == 0x0102030405060708ull && peers[ia].threads == 16 && peers[ia].tflops == 1.5f,
              "alpha missing or wrong (%s)", ia >= 0 ? peers[ia].host : "-");
    CK_EXPECT(ib >= 0 && !strcmp(peers[ib].host, "127.0.0.2:7002"), "beta missing or wrong (%s)",
              ib >= 0 ? peers[ib].host : "-");
    CK_EXPECT(peer_named(peers, n, "gamma") < 0, "a server of another key answered");

    /* the other key finds only gamma */
    CK_EXPECT(ck_disc_find("other", list, 2000, 1, peers, 8, &n, err, sizeof err) == 0, "find: %s", err);
    CK_EXPECT(n == 1 && !strcmp(peers[0].name, "gamma") && !strcmp(peers[0].host, "127.0.0.3:7003"), "other key: %zu",
              n);

    /* min_workers 0 collects for the whole timeout; resent queries do not duplicate peers */
    t0 = ms_now();
    CK_EXPECT(ck_disc_find("secret", list, 700, 0, peers, 8, &n, err, sizeof err) == 0, "find: %s", err);
    dt = ms_now() - t0;
    CK_EXPECT(n == 2, "min 0: found %zu workers", n);
    CK_EXPECT(dt >= 690 && dt < 1500, "timeout 700 took %lld ms", (long long)dt);
    /* more workers wanted than exist: the timeout is honoured and what was found is returned */
    t0 = ms_now();
    CK_EXPECT(ck_disc_find("secret", list, 800, 3, peers, 8, &n, err, sizeof err) == 0, "find: %s", err);
    dt = ms_now() - t0;
    CK_EXPECT(n == 2 && dt >= 790 && dt < 1600, "min 3: %zu workers in %lld ms", n, (long long)dt);
    /* out[] full: returns at once */
    t0 = ms_now();
    CK_EXPECT(ck_disc_find("secret", list, 3000, 1, peers, 1, &n, err, sizeof err) == 0, "find: %s", err);
    dt = ms_now() - t0;
    CK_EXPECT(n == 1 && dt < 250, "cap 1: %zu workers in %lld ms", n, (long long)dt);
    /* timeout 0: one send, no wait */
    t0 = ms_now();
    CK_EXPECT(ck_disc_find("secret", list, 0, 0, peers, 8, &n, err, sizeof err) == 0, "find: %s", err);
    CK_EXPECT(ms_now() - t0 < 100, "timeout 0 waited");
    /* a port where nobody listens: nothing found, no error */
    CK_EXPECT(ck_disc_find("secret", "127.0.0.1:9", 300, 1, peers, 8, &n, err, sizeof err) == 0 && n == 0,
              "port 9: %zu (%s)", n, err);

    /* garbage does not stop a server: counted, and it still answers */
    uint64_t ans0, ign0, ans1, ign1;
    ck_disc_serve_stats(a, &ans0, &ign0);
    uint8_t junk[2000];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 131 + 7);
    send_raw(port, junk, 0);
    send_raw(port, junk, 3);
    send_raw(port, junk, sizeof junk);
    send_raw(port, REPLY_BYTES, sizeof REPLY_BYTES); /* a reply is never answered */
    uint8_t q[CK_DISC_QUERY_BYTES];
    size_t ql;
    ck_disc_encode_query(HASH_OTHER, q, sizeof q, &ql, NULL, 0);
    send_raw(port, q, ql); /* another key */
    memcpy(junk, QUERY_BYTES, sizeof QUERY_BYTES);
    send_raw(port, junk, sizeof QUERY_BYTES + 1); /* trailing byte */
    for (int i = 0; i < 100; i++) {
        ck_disc_serve_stats(a, &ans1, &ign1);
        if (ign1 >= ign0 + 6) break;
        usleep(10000);
    }
    /* each datagram is either answered or ignored: all six ignored means none was answered */
    CK_EXPECT(ign1 == ign0 + 6, "garbage: ignored %llu -> %llu", (unsigned long long)ign0, (unsigned long long)ign1);
    snprintf(list, sizeof list, "127.0.0.1:%u", port);
    CK_EXPECT(ck_disc_find("secret", list, 2000, 1, peers, 8, &n, err, sizeof err) == 0 && n == 1 &&
                  !strcmp(peers[0].name, "alpha"),
              "alpha silent after garbage (%zu, %s)", n, err);
    ck_disc_serve_stats(a, &ans1, NULL);
    CK_EXPECT(ans1 > ans0, "answer not counted");
    ck_disc_serve_stats(c, &ans1, &ign1);
    CK_EXPECT(ign1 > 0, "gamma counted nothing");
    ck_disc_serve_stop(a);
    ck_disc_serve_stop(b);
    ck_disc_serve_stop(c);
    ck_disc_serve_stop(NULL);
}

/* Two workers of one host share 0.0.0.0:Q; the loopback broadcast address reaches both. */
static void test_loopback_broadcast(void) {
    char err[256], addr[64];
    ck_disc_peer peers[8];
    size_t n = 0;
    ck_disc_server *a = serve("secret", "b1", "0.0.0.0:0", 7101);
    if (!a) return;
    snprintf(addr, sizeof addr, "0.0.0.0:%u", ck_disc_serve_port(a));
    ck_disc_server *b = serve("secret", "b2", addr, 7102);
    snprintf(addr, sizeof addr, "127.255.255.255:%u", ck_disc_serve_port(a));
    CK_EXPECT(ck_disc_find("secret", addr, 3000, 2, peers, 8, &n, err, sizeof err) == 0, "find: %s", err);
    int i1 = peer_named(peers, n, "b1"), i2 = peer_named(peers, n, "b2");
    CK_EXPECT(n == 2 && i1 >= 0 && i2 >= 0 && !strcmp(peers[i1].host, "127.0.0.1:7101") &&
                  !strcmp(peers[i2].host, "127.0.0.1:7102"),
              "broadcast on lo found %zu", n);
    ck_disc_serve_stop(a);
    ck_disc_serve_stop(b);
}

static void test_bad_args(void) {
    char err[256];
    ck_disc_peer peers[2];
    size_t n = 5;
    ck_disc_server *s = NULL;
    ck_disc_info in = info_of("w", "cpu", 1);
    CK_EXPECT(ck_disc_find("", "127.0.0.1:5", 10, 0, peers, 2, &n, err, sizeof err) == -1 && n == 0, "empty key");
    CK_EXPECT(ck_disc_find("k", "127.0.0.1:5", 10, 0, peers, 0, &n, err, sizeof err) == -1, "cap 0");
    CK_EXPECT(ck_disc_find("k", "127.0.0.1:5", 10, 3, peers, 2, &n, err, sizeof err) == -1, "min > cap");
    CK_EXPECT(ck_disc_find("k", "127.0.0.1:5", -1, 0, peers, 2, &n, err, sizeof err) == -1, "negative timeout");
    const char *bad[] = {"127.0.0.1:99999", "127.0.0.1:", "127.0.0.1:x", "[::1]:5", ":5",
                         "127.0.0.1:5,",    "127.0.0.1:0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CK_EXPECT(ck_disc_find("k", bad[i], 10, 0, peers, 2, &n, err, sizeof err) == -1 && err[0], "'%s' accepted",
                  bad[i]);
    }
    CK_EXPECT(ck_disc_serve_start("", &in, "127.0.0.1:0", &s, err, sizeof err) == -1 && !s, "serve without key");
    CK_EXPECT(ck_disc_serve_start("k", &in, "127.0.0.1:99999", &s, err, sizeof err) == -1 && !s, "bad bind address");
    CK_EXPECT(ck_disc_serve_start("k", &in, "192.0.2.1:0", &s, err, sizeof err) == -1 && !s && strstr(err, "bind"),
              "bind to a foreign address: %s", err);
    in.name[0] = 0;
    CK_EXPECT(ck_disc_serve_start("k", &in, "127.0.0.1:0", &s, err, sizeof err) == -1 && !s, "serve with no name");
    double tf = ck_disc_estimate_tflops();
    CK_EXPECT(isfinite(tf) && tf >= 0, "tflops estimate %g", tf);
    printf("estimated %.4f TFLOPS\n", tf);
}

/* ---- helper mode for tests/test_discovery.sh ---- */

static int cmd_serve(char **a) {
    char err[256];
    ck_disc_info in = info_of(a[1], "cpu", (uint16_t)atoi(a[3]));
    ck_disc_server *s;
    if (ck_disc_serve_start(a[0], &in, a[2], &s, err, sizeof err) != 0) {
        fprintf(stderr, "serve: %s\n", err);
        return 1;
    }
    printf("serving %s on udp %u\n", a[1], ck_disc_serve_port(s));
    fflush(stdout);
    sleep((unsigned)atoi(a[4]));
    ck_disc_serve_stop(s);
    return 0;
}

static int cmd_find(char **a) {
    char err[256];
    ck_disc_peer peers[64];
    size_t n;
    if (ck_disc_find(a[0], a[1], atoi(a[2]), (size_t)atoi(a[3]), peers, 64, &n, err, sizeof err) != 0) {
        fprintf(stderr, "find: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < n; i++) printf("%s %s %s\n", peers[i].name, peers[i].host, peers[i].backend);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 7 && !strcmp(argv[1], "serve")) return cmd_serve(argv + 2);
    if (argc == 6 && !strcmp(argv[1], "find")) return cmd_find(argv + 2);
    if (argc > 1) {
        fprintf(stderr,
                "usage: test_discovery [serve KEY NAME BIND TCP_PORT SECONDS | find KEY BCAST TIMEOUT_MS MIN]\n");
        return 2;
    }
    test_hash();
    test_codec_roundtrip();
    test_codec_rejects();
    test_bad_args();
    test_loopback();
    test_loopback_broadcast();
    return ck_test_done("test_discovery");
}
