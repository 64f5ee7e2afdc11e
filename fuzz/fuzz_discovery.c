/* fuzz_discovery.c — libFuzzer target: the discovery packet decoder (src/cluster/discovery.h) on arbitrary
 * datagrams. Each input is decoded twice: against a fixed key hash (the hash of "fuzz"), and against the
 * hash the packet itself carries (bytes 6..21 when present), so the fuzzer reaches the field parsers
 * without guessing 16 bytes. Whatever decodes must re-encode to exactly the input bytes (the format is
 * canonical), decode again to the same fields, and hold only what the contract allows (printable ASCII
 * strings of 1..63 bytes, tcp_port > 0, finite tflops >= 0); anything else aborts. */
#include "cluster/discovery.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int info_eq(const ck_disc_info *a, const ck_disc_info *b) {
    return !strcmp(a->name, b->name) && !strcmp(a->backend, b->backend) && a->tcp_port == b->tcp_port &&
           a->mem_bytes == b->mem_bytes && a->threads == b->threads &&
           !memcmp(&a->tflops, &b->tflops, sizeof a->tflops);
}

static int str_valid(const char *s) {
    size_t n = strnlen(s, CK_DISC_STR_MAX + 1);
    if (n < 1 || n > CK_DISC_STR_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return 0;
    return 1;
}

static void check(const uint8_t *data, size_t size, const uint8_t hash[CK_DISC_HASH_BYTES]) {
    ck_disc_packet p, q;
    char err[256];
    if (ck_disc_decode(data, size, hash, &p, err, sizeof err) != 0) return;
    if (memcmp(p.key_hash, hash, CK_DISC_HASH_BYTES) != 0) abort();
    uint8_t re[CK_DISC_MAX_PACKET];
    size_t len = 0;
    if (p.type == CK_DISC_QUERY) {
        if (ck_disc_encode_query(hash, re, sizeof re, &len, err, sizeof err) != 0) abort();
    } else {
        if (p.type != CK_DISC_REPLY) abort();
        if (!str_valid(p.info.name) || !str_valid(p.info.backend) || p.info.tcp_port == 0 || !isfinite(p.info.tflops) ||
            p.info.tflops < 0)
            abort();
        if (ck_disc_encode_reply(hash, &p.info, re, sizeof re, &len, err, sizeof err) != 0) abort();
    }
    if (len != size || memcmp(re, data, size) != 0) abort();
    if (ck_disc_decode(re, len, hash, &q, err, sizeof err) != 0 || q.type != p.type) abort();
    if (p.type == CK_DISC_REPLY && !info_eq(&p.info, &q.info)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t fixed[CK_DISC_HASH_BYTES];
    static int ready;
    if (!ready) {
        if (ck_disc_key_hash("fuzz", fixed) != 0) abort();
        ready = 1;
    }
    check(data, size, fixed);
    if (size >= CK_DISC_QUERY_BYTES) {
        uint8_t own[CK_DISC_HASH_BYTES];
        memcpy(own, data + 6, sizeof own);
        check(data, size, own);
    }
    return 0;
}
