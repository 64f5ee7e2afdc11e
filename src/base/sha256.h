/* sha256.h — streaming SHA-256 (FIPS 180-4), plain scalar C. Used to verify downloaded weights against
 * the hash the Hub reports. A context is fed any number of byte ranges in order; ck_sha256_final()
 * writes the 32-byte digest and leaves the context unusable until ck_sha256_init() is called again. */
#ifndef CK_BASE_SHA256_H
#define CK_BASE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct ck_sha256 {
    uint32_t h[8];        /* chaining state */
    uint64_t len_bytes;   /* total bytes fed so far */
    uint8_t buf[64];      /* pending partial block */
    size_t buf_len;       /* 0 .. 63 bytes in buf */
} ck_sha256;

void ck_sha256_init(ck_sha256 *s);
void ck_sha256_update(ck_sha256 *s, const void *data, size_t len);
void ck_sha256_final(ck_sha256 *s, uint8_t digest[32]);

/* digest of one buffer, as 64 lowercase hex characters plus NUL */
void ck_sha256_hex(const void *data, size_t len, char hex[65]);
/* formats a 32-byte digest as 64 lowercase hex characters plus NUL */
void ck_sha256_to_hex(const uint8_t digest[32], char hex[65]);

/* Hashes a whole file into hex; returns 0, or -1 with the reason in err. */
int ck_sha256_file(const char *path, char hex[65], char *err, size_t errlen);

#endif
