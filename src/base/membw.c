/* membw.c — read-bandwidth probe (see membw.h). The buffer is allocated and written once (so every page
 * is real), then each pass has every thread sum its contiguous share with four independent 64-bit
 * accumulators (the compiler vectorizes the loads); the sums are kept so the reads cannot be dropped.
 * Plain threads that end with the probe, not OpenMP: a second OpenMP team (the engine's runs on its
 * compute thread) would make libgomp count more threads than cores and stop spinning at barriers, which
 * slows every later parallel region of the process. */
#include "base/membw.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CK_MEMBW_MAX_THREADS 512

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

typedef struct share {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} share;

static void *share_sum(void *v) {
    share *s = v;
    s->sum = sum_words(s->p, s->n);
    return NULL;
}

/* One timed pass: threads - 1 new threads and the caller each sum a contiguous share. -1 when a thread
 * cannot be started (the started ones are joined first). */
static double pass_seconds(const uint64_t *buf, size_t n, int threads, uint64_t *sink) {
    share sh[CK_MEMBW_MAX_THREADS];
    pthread_t tid[CK_MEMBW_MAX_THREADS];
    for (int i = 0; i < threads; i++)
        sh[i] = (share){buf + n * (size_t)i / (size_t)threads,
                        n * (size_t)(i + 1) / (size_t)threads - n * (size_t)i / (size_t)threads, 0};
    double t0 = now_s();
    int started = 1;
    while (started < threads && pthread_create(&tid[started], NULL, share_sum, &sh[started]) == 0) started++;
    share_sum(&sh[0]);
    for (int i = 1; i < started; i++) pthread_join(tid[i], NULL);
    double dt = now_s() - t0;
    for (int i = 0; i < started; i++) *sink += sh[i].sum;
    return started == threads ? dt : -1;
}

double ck_read_bandwidth_gbs(size_t bytes, int threads, int passes) {
    if (bytes == 0) {
        bytes = (size_t)1 << 30;
#ifdef _SC_LEVEL3_CACHE_SIZE
        long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
        if (llc > 0 && (size_t)llc < ((size_t)1 << 32) && 4 * (size_t)llc > bytes) bytes = 4 * (size_t)llc;
#endif
    }
    if (threads <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus > 0 ? (int)cpus : 1;
    }
    if (threads > CK_MEMBW_MAX_THREADS) threads = CK_MEMBW_MAX_THREADS;
    size_t n = bytes / sizeof(uint64_t);
    uint64_t *buf = NULL;
    if (n < 1024 || posix_memalign((void **)&buf, 64, n * sizeof *buf) != 0) return -1;
    for (size_t i = 0; i < n; i++) buf[i] = i * 0x9e3779b97f4a7c15ull;
    if (passes < 1) passes = 1;
    volatile uint64_t sink = 0;
    uint64_t total = 0;
    double best = 0;
    for (int p = 0; p <= passes; p++) { /* pass 0 warms up */
        double dt = pass_seconds(buf, n, threads, &total);
        if (dt < 0) {
            free(buf);
            return -1;
        }
        if (p > 0 && dt > 0 && (double)(n * sizeof *buf) / dt > best) best = (double)(n * sizeof *buf) / dt;
    }
    sink = total;
    (void)sink;
    free(buf);
    return best * 1e-9;
}
