/* wmem.h — where the CPU backend keeps its weights. By default each prepared weight is copied out of the
 * mapped file into anonymous memory that the kernel backs with transparent huge pages (2 MiB): a decode
 * step streams every weight once, and with 4 KiB file pages that stream takes a TLB miss and a page walk
 * every 4 KiB, which costs read bandwidth (docs/benchmarks.md has the measurement). Copies are packed
 * into large chunks of reserved address space, touched only as they fill, and a chunk goes back to the
 * system when its last weight is released. Where the kernel offers no huge pages (THP "never"), or when
 * switched off (ck_cpu_wmem_set(0), `--mmap`), weights stay the views of the mapping.
 * Process-wide and thread-safe. */
#ifndef CK_BACKEND_CPU_WMEM_H
#define CK_BACKEND_CPU_WMEM_H

#include <stddef.h>

/* When weights are copied: CK_WMEM_AUTO (the default) when the kernel gives huge pages to memory that asks
 * for them (/sys/kernel/mm/transparent_hugepage/enabled is "always" or "madvise"), CK_WMEM_OFF never,
 * CK_WMEM_ALWAYS always (tests: the copies then work without huge pages). */
enum { CK_WMEM_OFF = 0, CK_WMEM_AUTO = 1, CK_WMEM_ALWAYS = 2 };
void ck_cpu_wmem_set(int mode);
/* 1 when weights opened now are copied. */
int ck_cpu_wmem_enabled(void);

/* A copy of src[0, n) in huge-page memory, 64-byte aligned, with at least 64 readable bytes after it;
 * NULL when it would leave less than 1 GiB of memory available to the process (the machine's, or its
 * cgroup's limit), or the address space is exhausted (the caller then keeps its view). */
const void *ck_cpu_wmem_copy(const void *src, size_t n);
/* Releases a copy of n bytes made by ck_cpu_wmem_copy; any other pointer is ignored. */
void ck_cpu_wmem_release(const void *p, size_t n);
/* Bytes held in copies now (for tests and reports). */
size_t ck_cpu_wmem_bytes(void);

#endif
