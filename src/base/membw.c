/* membw.c — read-bandwidth probe (see membw.h). The buffer is allocated and written once (so every page
 * is real), then each pass has every thread sum its contiguous share with four independent 64-bit
 * accumulators (the compiler vectorizes the loads); the sums are kept so the reads cannot be dropped. */
#include "base/membw.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t sum_words(const uint64_t *p, size_t n) {
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) a += p[i], b += p[i + 1], c += p[i + 2], d += p[i + 3];
    for (; i < n; i++) a += p[i];
    return a + b + c + d;
}

double ck_read_bandwidth_gbs(size_t bytes, int threads, int passes) {
    if (bytes == 0) {
        bytes = (size_t)1 << 30;
#ifdef _SC_LEVEL3_CACHE_SIZE
        long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
        if (llc > 0 && (size_t)llc < ((size_t)1 << 32) && 4 * (size_t)llc > bytes) bytes = 4 * (size_t)llc;
#endif
    }
    size_t n = bytes / sizeof(uint64_t);
    uint64_t *buf = NULL;
    if (n < 1024 || posix_memalign((void **)&buf, 64, n * sizeof *buf) != 0) return -1;
    int nt = threads > 0 ? threads : omp_get_max_threads();
    if (passes < 1) passes = 1;
    volatile uint64_t sink = 0;
    double best = 0;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t i = 0; i < n; i++) buf[i] = i * 0x9e3779b97f4a7c15ull;
    for (int p = 0; p <= passes; p++) { /* pass 0 warms up */
        uint64_t total = 0;
        double t0 = now_s();
#pragma omp parallel num_threads(nt) reduction(+ : total)
        {
            size_t id = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
            size_t lo = n * id / nth, hi = n * (id + 1) / nth;
            total += sum_words(buf + lo, hi - lo);
        }
        double dt = now_s() - t0;
        sink += total;
        if (p > 0 && dt > 0 && (double)(n * sizeof *buf) / dt > best) best = (double)(n * sizeof *buf) / dt;
    }
    (void)sink;
    free(buf);
    return best * 1e-9;
}
