/* membw.h — the machine's memory read bandwidth, measured: threads stream-read a buffer much larger than
 * the last-level cache, several passes, the best pass counts. Used to print a decode roofline (bytes
 * of weights read per token / bandwidth). */
#ifndef CK_BASE_MEMBW_H
#define CK_BASE_MEMBW_H

#include <stddef.h>

/* Read bandwidth in GB/s (1e9 bytes/s) of `threads` threads (<= 0: one per online CPU) summing a buffer of
 * `bytes` bytes (0: 1 GiB, or 4x the last-level cache when that is larger), best of `passes` passes
 * after one pass that pages the buffer in. Returns a negative value when the buffer cannot be had. */
double ck_read_bandwidth_gbs(size_t bytes, int threads, int passes);

#endif
