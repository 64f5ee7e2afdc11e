/* crc32.h — plain CRC-32 (IEEE, the checksum of zlib's crc32(), gzip and PNG), table-driven and
 * incremental. It guards pushed weight chunks against corruption in transit and on the way to disk; it is
 * no protection against an attacker (the cluster key's AEAD and the files' SHA-256 are). */
#ifndef CK_BASE_CRC32_H
#define CK_BASE_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc (0 to start) over data[0..len): ck_crc32(0, "123456789", 9) == 0xCBF43926, and
 * ck_crc32(ck_crc32(0, a, n), b, m) equals the CRC of a followed by b. data may be NULL when len is 0. */
uint32_t ck_crc32(uint32_t crc, const void *data, size_t len);

#endif
