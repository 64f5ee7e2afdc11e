/* discovery.c — UDP discovery of workers (see discovery.h for the packet format and the contracts).
 *
 * The codec is pure: a cursor over a byte buffer whose reads fail instead of running past the end, and a
 * decode that accepts only the exact bytes encode writes (so decode-then-encode is the identity).
 *
 * The server is one thread blocked in poll() on its UDP socket and on the read end of a pipe; stop writes
 * to the pipe, joins the thread and closes both. The finder is one non-blocking UDP socket with
 * SO_BROADCAST driven by poll() against three deadlines (next resend, quiet period, overall timeout), all
 * on CLOCK_MONOTONIC. IPv4 only: IPv6 has no broadcast.
 *
 * Invariants: no packet is ever acted on unless ck_disc_decode accepted it with our key hash; the server
 * never answers a REPLY (so two servers cannot be made to ping-pong); the finder stores at most cap peers
 * and allocates once (its dedupe table), never per packet. */
#include "cluster/discovery.h"

#include "base/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <math.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DOMAIN "cake-discovery-v1"
#define RESEND_MS 250
#define QUIET_MS 300
#define MAX_ADDRS 32

static const uint8_t MAGIC[4] = {'C', 'A', 'K', 'E'};

/* ---- key hash ---- */

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_status = -1;

static void sodium_start(void) { sodium_status = sodium_init() < 0 ? -1 : 0; }

int ck_disc_key_hash(const char *key, uint8_t out[CK_DISC_HASH_BYTES]) {
    pthread_once(&sodium_once, sodium_start);
    if (sodium_status != 0 || !key || !key[0]) return -1;
    return crypto_generichash(out, CK_DISC_HASH_BYTES, (const unsigned char *)key, strlen(key),
                              (const unsigned char *)DOMAIN, sizeof DOMAIN - 1) == 0
               ? 0
               : -1;
}

/* ---- codec ---- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} wbuf;

static void put(wbuf *w, const void *src, size_t k) {
    memcpy(w->p + w->n, src, k);
    w->n += k;
}

static void put_le(wbuf *w, uint64_t v, size_t k) {
    for (size_t i = 0; i < k; i++) w->p[w->n++] = (uint8_t)(v >> (8 * i));
}

static int str_ok(const char *s, size_t len) {
    if (len < 1 || len > CK_DISC_STR_MAX) return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return 0;
    return 1;
}

static int check_info(const ck_disc_info *in, char *err, size_t errlen) {
    size_t nl = strnlen(in->name, sizeof in->name), bl = strnlen(in->backend, sizeof in->backend);
    if (!str_ok(in->name, nl)) return ck_err(err, errlen, "discovery: name must be 1..63 printable ASCII bytes");
    if (!str_ok(in->backend, bl)) return ck_err(err, errlen, "discovery: backend must be 1..63 printable ASCII bytes");
    if (in->tcp_port == 0) return ck_err(err, errlen, "discovery: tcp_port must be 1..65535");
    if (!isfinite(in->tflops) || in->tflops < 0)
        return ck_err(err, errlen, "discovery: tflops must be finite and >= 0");
    return 0;
}

static void put_header(wbuf *w, uint8_t type, const uint8_t hash[CK_DISC_HASH_BYTES]) {
    put(w, MAGIC, 4);
    put_le(w, CK_DISC_VERSION, 1);
    put_le(w, type, 1);
    put(w, hash, CK_DISC_HASH_BYTES);
}

int ck_disc_encode_query(const uint8_t key_hash[CK_DISC_HASH_BYTES], uint8_t *buf, size_t cap, size_t *len, char *err,
                         size_t errlen) {
    if (cap < CK_DISC_QUERY_BYTES) return ck_err(err, errlen, "discovery: buffer too small for a query");
    wbuf w = {buf, 0, cap};
    put_header(&w, CK_DISC_QUERY, key_hash);
    *len = w.n;
    return 0;
}

int ck_disc_encode_reply(const uint8_t key_hash[CK_DISC_HASH_BYTES], const ck_disc_info *info, uint8_t *buf, size_t cap,
                         size_t *len, char *err, size_t errlen) {
    if (check_info(info, err, errlen) != 0) return -1;
    size_t nl = strlen(info->name), bl = strlen(info->backend);
    size_t need = CK_DISC_QUERY_BYTES + 2 + 8 + 4 + 4 + 1 + nl + 1 + bl;
    if (cap < need) return ck_err(err, errlen, "discovery: buffer too small for a reply (%zu < %zu)", cap, need);
    wbuf w = {buf, 0, cap};
    put_header(&w, CK_DISC_REPLY, key_hash);
    put_le(&w, info->tcp_port, 2);
    put_le(&w, info->mem_bytes, 8);
    put_le(&w, info->threads, 4);
    uint32_t fb;
    memcpy(&fb, &info->tflops, 4);
    put_le(&w, fb, 4);
    put_le(&w, nl, 1);
    put(&w, info->name, nl);
    put_le(&w, bl, 1);
    put(&w, info->backend, bl);
    *len = w.n;
    return 0;
}

typedef struct {
    const uint8_t *p;
    size_t n, off;
} rbuf;

/* Reads k little-endian bytes into *v; 0, or -1 when fewer than k remain. */
static int get_le(rbuf *r, size_t k, uint64_t *v) {
    if (r->n - r->off < k) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < k; i++) x |= (uint64_t)r->p[r->off + i] << (8 * i);
    r->off += k;
    *v = x;
    return 0;
}

/* Reads a str into out[CK_DISC_STR_MAX + 1] (NUL-terminated). */
static int get_str(rbuf *r, const char *what, char *out, char *err, size_t errlen) {
    uint64_t k;
    if (get_le(r, 1, &k) != 0) return ck_err(err, errlen, "discovery: reply truncated at %s length", what);
    if (k < 1 || k > CK_DISC_STR_MAX)
        return ck_err(err, errlen, "discovery: %s length %u not in 1..63", what, (unsigned)k);
    if (r->n - r->off < k) return ck_err(err, errlen, "discovery: reply truncated in %s", what);
    if (!str_ok((const char *)r->p + r->off, (size_t)k))
        return ck_err(err, errlen, "discovery: %s is not printable ASCII", what);
    memcpy(out, r->p + r->off, (size_t)k);
    out[k] = 0;
    r->off += (size_t)k;
    return 0;
}

static int decode_reply(rbuf *r, ck_disc_info *in, char *err, size_t errlen) {
    uint64_t port, mem, thr, fb;
    if (get_le(r, 2, &port) || get_le(r, 8, &mem) || get_le(r, 4, &thr) || get_le(r, 4, &fb))
        return ck_err(err, errlen, "discovery: reply truncated in its fixed fields");
    if (port == 0) return ck_err(err, errlen, "discovery: reply with tcp_port 0");
    uint32_t f32 = (uint32_t)fb;
    float tf;
    memcpy(&tf, &f32, 4);
    if (!isfinite(tf) || tf < 0) return ck_err(err, errlen, "discovery: reply tflops not finite and >= 0");
    in->tcp_port = (uint16_t)port;
    in->mem_bytes = mem;
    in->threads = (uint32_t)thr;
    in->tflops = tf;
    if (get_str(r, "name", in->name, err, errlen) || get_str(r, "backend", in->backend, err, errlen)) return -1;
    return 0;
}

int ck_disc_decode(const uint8_t *buf, size_t len, const uint8_t want_hash[CK_DISC_HASH_BYTES], ck_disc_packet *pkt,
                   char *err, size_t errlen) {
    memset(pkt, 0, sizeof *pkt);
    if (len > CK_DISC_MAX_PACKET) return ck_err(err, errlen, "discovery: packet of %zu bytes is too long", len);
    if (len < CK_DISC_QUERY_BYTES) return ck_err(err, errlen, "discovery: packet of %zu bytes is too short", len);
    if (memcmp(buf, MAGIC, 4) != 0) return ck_err(err, errlen, "discovery: bad magic");
    if (buf[4] != CK_DISC_VERSION) return ck_err(err, errlen, "discovery: unsupported version %u", buf[4]);
    pkt->type = buf[5];
    memcpy(pkt->key_hash, buf + 6, CK_DISC_HASH_BYTES);
    if (pkt->type != CK_DISC_QUERY && pkt->type != CK_DISC_REPLY)
        return ck_err(err, errlen, "discovery: unknown packet type %u", pkt->type);
    if (sodium_memcmp(pkt->key_hash, want_hash, CK_DISC_HASH_BYTES) != 0)
        return ck_err(err, errlen, "discovery: packet for another cluster key");
    rbuf r = {buf, len, CK_DISC_QUERY_BYTES};
    if (pkt->type == CK_DISC_REPLY && decode_reply(&r, &pkt->info, err, errlen) != 0) return -1;
    if (r.off != len)
        return ck_err(err, errlen, "discovery: %zu trailing bytes after the %s", len - r.off,
                      pkt->type == CK_DISC_QUERY ? "query" : "reply");
    return 0;
}

/* ---- addresses and clocks ---- */

/* "ip[:port]" (IPv4 or a name resolving to one) -> *sa; default_port when the port is missing. */
static int parse_addr(const char *s, size_t len, struct sockaddr_in *sa, char *err, size_t errlen) {
    char host[256], *end;
    while (len && (*s == ' ')) s++, len--;
    while (len && s[len - 1] == ' ') len--;
    if (len == 0 || len >= sizeof host) return ck_err(err, errlen, "discovery: bad address '%.*s'", (int)len, s);
    if (s[0] == '[') return ck_err(err, errlen, "discovery: '%.*s': IPv6 has no broadcast; use IPv4", (int)len, s);
    memcpy(host, s, len);
    host[len] = 0;
    unsigned long port = CK_DISC_PORT;
    char *colon = strrchr(host, ':');
    if (colon) {
        *colon = 0;
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (!colon[1] || *end || errno || port > 65535)
            return ck_err(err, errlen, "discovery: bad port in '%.*s'", (int)len, s);
    }
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (!host[0]) return ck_err(err, errlen, "discovery: no host in '%.*s'", (int)len, s);
    if (inet_pton(AF_INET, host, &sa->sin_addr) == 1) return 0;
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    int rc = getaddrinfo(host, NULL, &hints, &ai);
    if (rc != 0 || !ai) return ck_err(err, errlen, "discovery: cannot resolve '%s': %s", host, gai_strerror(rc));
    sa->sin_addr = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
    freeaddrinfo(ai);
    return 0;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int udp_socket(char *err, size_t errlen) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) ck_err(err, errlen, "discovery: socket: %s", strerror(errno));
    return fd;
}

/* ---- worker side ---- */

struct ck_disc_server {
    int fd;
    int stop_pipe[2];
    pthread_t thread;
    uint16_t port;
    uint8_t hash[CK_DISC_HASH_BYTES];
    uint8_t reply[CK_DISC_MAX_PACKET];
    size_t reply_len;
    _Atomic uint64_t answered, ignored;
};

/* Handles one datagram already received: answers a valid QUERY with our hash, counts anything else. */
static void serve_one(ck_disc_server *s, const uint8_t *buf, ssize_t got, const struct sockaddr_in *from) {
    ck_disc_packet pkt;
    if (got < 0 || ck_disc_decode(buf, (size_t)got, s->hash, &pkt, NULL, 0) != 0 || pkt.type != CK_DISC_QUERY ||
        from->sin_port == 0) {
        atomic_fetch_add(&s->ignored, 1);
        return;
    }
    if (sendto(s->fd, s->reply, s->reply_len, MSG_NOSIGNAL, (const struct sockaddr *)from, sizeof *from) ==
        (ssize_t)s->reply_len)
        atomic_fetch_add(&s->answered, 1);
    else
        atomic_fetch_add(&s->ignored, 1);
}

static void *serve_thread(void *arg) {
    ck_disc_server *s = arg;
    uint8_t buf[CK_DISC_MAX_PACKET + 1]; /* one byte more, so an over-long datagram reads as over-long */
    for (;;) {
        struct pollfd p[2] = {{s->fd, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};
        int r = poll(p, 2, -1);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) continue;
        if (p[1].revents) break;
        if (!(p[0].revents & POLLIN)) {
            if (p[0].revents & (POLLERR | POLLNVAL)) {
                int e;
                socklen_t el = sizeof e;
                getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &el); /* clears an ICMP error, if any */
            }
            continue;
        }
        for (;;) { /* drain what is queued */
            struct sockaddr_in from;
            socklen_t fl = sizeof from;
            memset(&from, 0, sizeof from);
            ssize_t got = recvfrom(s->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            if (got < 0 && errno == EINTR) continue;
            if (got < 0 && errno != ECONNREFUSED) break; /* ICMP errors from an earlier send are harmless */
            if (got >= 0) serve_one(s, buf, got, &from);
        }
    }
    return NULL;
}

int ck_disc_serve_start(const char *key, const ck_disc_info *me, const char *bind_addr, ck_disc_server **out, char *err,
                        size_t errlen) {
    *out = NULL;
    struct sockaddr_in sa;
    if (!bind_addr || !bind_addr[0]) bind_addr = CK_DISC_DEFAULT_BIND;
    if (parse_addr(bind_addr, strlen(bind_addr), &sa, err, errlen) != 0) return -1;
    ck_disc_server *s = calloc(1, sizeof *s);
    if (!s) return ck_err(err, errlen, "discovery: out of memory");
    s->fd = -1;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    if (ck_disc_key_hash(key, s->hash) != 0) {
        free(s);
        return ck_err(err, errlen, "discovery: a non-empty cluster key is required");
    }
    if (ck_disc_encode_reply(s->hash, me, s->reply, sizeof s->reply, &s->reply_len, err, errlen) != 0) goto fail;
    if ((s->fd = udp_socket(err, errlen)) < 0) goto fail;
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        ck_err(err, errlen, "discovery: cannot bind %s: %s", bind_addr, strerror(errno));
        goto fail;
    }
    struct sockaddr_in bound;
    socklen_t bl = sizeof bound;
    if (getsockname(s->fd, (struct sockaddr *)&bound, &bl) != 0) {
        ck_err(err, errlen, "discovery: getsockname: %s", strerror(errno));
        goto fail;
    }
    s->port = ntohs(bound.sin_port);
    if (pipe2(s->stop_pipe, O_CLOEXEC) != 0) {
        ck_err(err, errlen, "discovery: pipe: %s", strerror(errno));
        goto fail;
    }
    int rc = pthread_create(&s->thread, NULL, serve_thread, s);
    if (rc != 0) {
        ck_err(err, errlen, "discovery: cannot start the server thread: %s", strerror(rc));
        goto fail;
    }
    *out = s;
    return 0;
fail:
    if (s->fd >= 0) close(s->fd);
    if (s->stop_pipe[0] >= 0) close(s->stop_pipe[0]);
    if (s->stop_pipe[1] >= 0) close(s->stop_pipe[1]);
    free(s);
    return -1;
}

uint16_t ck_disc_serve_port(const ck_disc_server *s) { return s->port; }

void ck_disc_serve_stats(const ck_disc_server *s, uint64_t *answered, uint64_t *ignored) {
    if (answered) *answered = atomic_load(&((ck_disc_server *)s)->answered);
    if (ignored) *ignored = atomic_load(&((ck_disc_server *)s)->ignored);
}

void ck_disc_serve_stop(ck_disc_server *s) {
    if (!s) return;
    ssize_t w;
    do w = write(s->stop_pipe[1], "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_join(s->thread, NULL);
    close(s->fd);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    free(s);
}

/* ---- master side ---- */

typedef struct {
    uint32_t ip;   /* network order */
    uint16_t port; /* source port of the reply, network order */
    uint16_t tcp;  /* announced tcp_port */
} seen_key;

typedef struct {
    int fd;
    struct sockaddr_in addrs[MAX_ADDRS];
    size_t n_addrs;
    uint8_t query[CK_DISC_QUERY_BYTES];
    uint8_t hash[CK_DISC_HASH_BYTES];
    ck_disc_peer *out;
    seen_key *seen;
    size_t cap, n;
} finder;

/* Adds a (ignoring duplicates and anything past MAX_ADDRS, which the caller checked for its own list). */
static void add_addr(finder *f, const struct sockaddr_in *a) {
    for (size_t i = 0; i < f->n_addrs; i++)
        if (f->addrs[i].sin_addr.s_addr == a->sin_addr.s_addr && f->addrs[i].sin_port == a->sin_port) return;
    if (f->n_addrs < MAX_ADDRS) f->addrs[f->n_addrs++] = *a;
}

/* 255.255.255.255 leaves through one interface only (the default route's; none without one), so beside
 * it the query also goes to the broadcast address of every IPv4 interface that is up and has one. */
static void add_interface_broadcasts(finder *f, uint16_t port_be) {
    struct ifaddrs *ifs, *i;
    if (getifaddrs(&ifs) != 0) return;
    for (i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_broadaddr || !(i->ifa_flags & IFF_UP) || !(i->ifa_flags & IFF_BROADCAST) ||
            (i->ifa_flags & IFF_LOOPBACK) || !i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
            i->ifa_broadaddr->sa_family != AF_INET)
            continue;
        struct sockaddr_in a = *(const struct sockaddr_in *)i->ifa_broadaddr;
        a.sin_port = port_be;
        add_addr(f, &a);
    }
    freeifaddrs(ifs);
}

static int parse_addr_list(finder *f, const char *list, char *err, size_t errlen) {
    struct sockaddr_in a, lim[MAX_ADDRS];
    size_t n_lim = 0, entries = 0;
    if (!list || !list[0]) list = CK_DISC_DEFAULT_BROADCAST;
    for (const char *p = list;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (entries++ == MAX_ADDRS) return ck_err(err, errlen, "discovery: more than %d addresses", MAX_ADDRS);
        if (parse_addr(p, len, &a, err, errlen) != 0) return -1;
        if (a.sin_port == 0) return ck_err(err, errlen, "discovery: port 0 in '%.*s'", (int)len, p);
        add_addr(f, &a);
        if (a.sin_addr.s_addr == htonl(INADDR_BROADCAST)) lim[n_lim++] = a;
        if (!c) break;
        p = c + 1;
    }
    for (size_t i = 0; i < n_lim; i++) add_interface_broadcasts(f, lim[i].sin_port);
    return 0;
}

/* Sends the query to every address; returns how many sends went through. The first failure's reason
 * goes into err. */
static size_t send_queries(finder *f, char *err, size_t errlen) {
    size_t ok = 0;
    for (size_t i = 0; i < f->n_addrs; i++) {
        ssize_t w;
        do
            w = sendto(f->fd, f->query, sizeof f->query, MSG_NOSIGNAL, (struct sockaddr *)&f->addrs[i],
                       sizeof f->addrs[i]);
        while (w < 0 && errno == EINTR);
        if (w == (ssize_t)sizeof f->query) {
            ok++;
        } else if (ok == 0 && err && errlen) {
            char ip[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &f->addrs[i].sin_addr, ip, sizeof ip);
            int e = w < 0 ? errno : 0;
            ck_err(err, errlen, "discovery: cannot send to %s:%u: %s%s", ip, ntohs(f->addrs[i].sin_port),
                   e ? strerror(e) : "short send",
                   e == ENETUNREACH ? " (no route: give the subnet's broadcast address, e.g. 192.168.1.255:10127)"
                                    : "");
        }
    }
    return ok;
}

/* Records a decoded reply from `from` unless already seen; returns 1 when it was new. */
static int add_peer(finder *f, const ck_disc_info *in, const struct sockaddr_in *from) {
    seen_key k = {from->sin_addr.s_addr, from->sin_port, in->tcp_port};
    for (size_t i = 0; i < f->n; i++)
        if (f->seen[i].ip == k.ip && f->seen[i].port == k.port && f->seen[i].tcp == k.tcp) return 0;
    if (f->n == f->cap) return 0;
    ck_disc_peer *p = &f->out[f->n];
    memset(p, 0, sizeof *p);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &from->sin_addr, ip, sizeof ip);
    snprintf(p->host, sizeof p->host, "%s:%u", ip, (unsigned)in->tcp_port);
    memcpy(p->name, in->name, sizeof p->name);
    memcpy(p->backend, in->backend, sizeof p->backend);
    p->mem_bytes = in->mem_bytes;
    p->threads = in->threads;
    p->tflops = in->tflops;
    f->seen[f->n++] = k;
    return 1;
}

/* Reads every queued datagram; returns how many new peers were added. */
static size_t drain_replies(finder *f) {
    uint8_t buf[CK_DISC_MAX_PACKET + 1];
    size_t added = 0;
    for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        memset(&from, 0, sizeof from);
        ssize_t got = recvfrom(f->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && errno == ECONNREFUSED) continue; /* an ICMP reply to a unicast query: no one there */
        if (got < 0) return added;
        ck_disc_packet pkt;
        if (from.sin_family != AF_INET || ck_disc_decode(buf, (size_t)got, f->hash, &pkt, NULL, 0) != 0 ||
            pkt.type != CK_DISC_REPLY)
            continue;
        added += (size_t)add_peer(f, &pkt.info, &from);
    }
}

static int find_loop(finder *f, int timeout_ms, size_t min_workers, char *err, size_t errlen) {
    int64_t start = now_ms(), deadline = start + timeout_ms, next_send = start, last_new = start;
    int sent_once = 0;
    for (;;) {
        int64_t now = now_ms();
        if (now >= next_send) {
            if (send_queries(f, sent_once ? NULL : err, sent_once ? 0 : errlen) == 0 && !sent_once) return -1;
            sent_once = 1;
            next_send = now + RESEND_MS;
        }
        int64_t until = deadline;
        int early = min_workers > 0 && f->n >= min_workers;
        if (early && last_new + QUIET_MS < until) until = last_new + QUIET_MS;
        if (now >= until || f->n == f->cap) return 0;
        if (next_send < until) until = next_send;
        struct pollfd p = {f->fd, POLLIN, 0};
        int r = poll(&p, 1, (int)(until - now));
        if (r < 0 && errno != EINTR) return ck_err(err, errlen, "discovery: poll: %s", strerror(errno));
        if (r > 0 && drain_replies(f) > 0) last_new = now_ms();
    }
}

int ck_disc_find(const char *key, const char *broadcast_addr, int timeout_ms, size_t min_workers, ck_disc_peer *out,
                 size_t cap, size_t *n, char *err, size_t errlen) {
    *n = 0;
    if (!out || cap == 0) return ck_err(err, errlen, "discovery: no room for peers (cap 0)");
    if (min_workers > cap) return ck_err(err, errlen, "discovery: min_workers %zu exceeds cap %zu", min_workers, cap);
    if (timeout_ms < 0) return ck_err(err, errlen, "discovery: negative timeout");
    finder f;
    memset(&f, 0, sizeof f);
    f.out = out;
    f.cap = cap;
    if (ck_disc_key_hash(key, f.hash) != 0)
        return ck_err(err, errlen, "discovery: a non-empty cluster key is required");
    if (parse_addr_list(&f, broadcast_addr, err, errlen) != 0) return -1;
    size_t bytes;
    if (ck_mul_size(cap, sizeof *f.seen, &bytes) != 0 || !(f.seen = malloc(bytes)))
        return ck_err(err, errlen, "discovery: cannot allocate room for %zu peers", cap);
    size_t qlen;
    ck_disc_encode_query(f.hash, f.query, sizeof f.query, &qlen, NULL, 0);
    int rc = -1, one = 1;
    if ((f.fd = udp_socket(err, errlen)) < 0) goto done;
    if (setsockopt(f.fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0) {
        ck_err(err, errlen, "discovery: SO_BROADCAST: %s", strerror(errno));
        goto done;
    }
    rc = find_loop(&f, timeout_ms, min_workers, err, errlen);
    *n = f.n;
done:
    if (f.fd >= 0) close(f.fd);
    free(f.seen);
    return rc;
}

/* ---- speed estimate ---- */

double ck_disc_estimate_tflops(void) {
    enum { LANES = 64, INNER = 4096 };
    float acc[LANES];
    const float a = 0.999999f, b = 1e-7f;
    for (int i = 0; i < LANES; i++) acc[i] = (float)i * 1e-3f;
    int64_t start = now_ms(), elapsed = 0;
    double flops = 0;
    struct timespec t0, t1;
    if (clock_gettime(CLOCK_MONOTONIC, &t0) != 0) return 0;
    while (elapsed < 50) {
        for (int k = 0; k < INNER; k++)
            for (int i = 0; i < LANES; i++) acc[i] = acc[i] * a + b; /* 2 flops, independent lanes */
        flops += 2.0 * LANES * INNER;
        elapsed = now_ms() - start;
    }
    if (clock_gettime(CLOCK_MONOTONIC, &t1) != 0) return 0;
    volatile float sink = 0;
    for (int i = 0; i < LANES; i++) sink += acc[i];
    (void)sink;
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    double tf = secs > 0 ? flops / secs * (double)cores * 1e-12 : 0;
    return isfinite(tf) && tf > 0 ? tf : 0;
}
