/* wmem.c — huge-page memory for CPU weights (see wmem.h). Chunks are reservations of at least
 * CK_WMEM_CHUNK bytes (MAP_NORESERVE: only the pages a copy touches are committed), aligned to 2 MiB and
 * advised MADV_HUGEPAGE; copies are bump-allocated in the newest chunk and counted per chunk. A copy that
 * would leave less than CK_WMEM_RESERVE of the memory available to the process (the machine's, or its
 * cgroup's limit) is refused: that weight, and in practice the ones after it, stay mapped. */
#include "backend/cpu/wmem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CK_WMEM_HUGE ((size_t)2 << 20)
#define CK_WMEM_CHUNK ((size_t)1 << 30)
#define CK_WMEM_ALIGN 64
#define CK_WMEM_MAX_CHUNKS 4096
#define CK_WMEM_RESERVE ((size_t)1 << 30)   /* memory left free by copies */
#define CK_WMEM_RECHECK ((size_t)256 << 20) /* copied bytes between readings of MemAvailable */

typedef struct chunk {
    uint8_t *base;
    size_t size, used; /* bytes reserved / handed out */
    size_t live;       /* copies not yet released */
    size_t bytes;      /* bytes of those copies */
} chunk;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static chunk chunks[CK_WMEM_MAX_CHUNKS];
static size_t n_chunks; /* chunks[n_chunks - 1] is the one being filled */
static atomic_int mode = CK_WMEM_AUTO;
static int thp = -1; /* -1 until read */

static int kernel_offers_thp(void) {
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return 0;
    char line[128] = "";
    int ok = fgets(line, sizeof line, f) && (strstr(line, "[always]") || strstr(line, "[madvise]"));
    fclose(f);
    return ok;
}

int ck_cpu_wmem_enabled(void) {
    int m = atomic_load(&mode);
    if (m != CK_WMEM_AUTO) return m == CK_WMEM_ALWAYS;
    pthread_mutex_lock(&lock);
    if (thp < 0) thp = kernel_offers_thp();
    int on = thp;
    pthread_mutex_unlock(&lock);
    return on;
}

void ck_cpu_wmem_set(int m) {
    atomic_store(&mode, m == CK_WMEM_OFF || m == CK_WMEM_ALWAYS ? m : CK_WMEM_AUTO);
}

/* The first number in file `path` (after `key` on its line when key is not NULL), or -1. */
static long long read_number(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    long long v = -1;
    size_t k = key ? strlen(key) : 0;
    while (v < 0 && fgets(line, sizeof line, f))
        if (!key || !strncmp(line, key, k)) v = sscanf(line + k, "%lld", &v) == 1 ? v : -1;
    fclose(f);
    return v;
}

/* Bytes the process could still be given: MemAvailable, or less when its cgroup (v2) has a memory limit;
 * SIZE_MAX when neither can be read. */
static size_t mem_available(void) {
    long long kb = read_number("/proc/meminfo", "MemAvailable:");
    size_t avail = kb >= 0 && (unsigned long long)kb < SIZE_MAX / 1024 ? (size_t)kb * 1024 : SIZE_MAX;
    char line[4096], path[4200];
    FILE *f = fopen("/proc/self/cgroup", "r");
    int v2 = f && fgets(line, sizeof line, f) && !strncmp(line, "0::", 3);
    if (f) fclose(f);
    if (!v2) return avail;
    line[strcspn(line, "\n")] = 0;
    snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", line + 3);
    long long max = read_number(path, NULL); /* "max" (no limit) reads as -1 */
    snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.current", line + 3);
    long long cur = read_number(path, NULL);
    if (max > 0 && cur >= 0) {
        size_t room = max > cur ? (size_t)(max - cur) : 0;
        if (room < avail) avail = room;
    }
    return avail;
}

/* Whether n more bytes of copies leave CK_WMEM_RESERVE of memory free; MemAvailable is read again after
 * every CK_WMEM_RECHECK bytes copied. A model that would not fit stays mapped from then on (the kernel
 * can evict file pages, not these), so loading a model near the size of the memory still works. */
static size_t avail = SIZE_MAX, since_check = SIZE_MAX;
static int fits(size_t n) {
    if (since_check > CK_WMEM_RECHECK || n > avail) {
        avail = mem_available();
        since_check = 0;
    }
    return avail == SIZE_MAX || (avail >= CK_WMEM_RESERVE && n <= avail - CK_WMEM_RESERVE);
}

/* Counts n bytes of copies made against the last reading. */
static void spent(size_t n) {
    if (avail != SIZE_MAX) avail -= n;
    since_check += n;
}

/* A reservation of `size` bytes (a multiple of CK_WMEM_HUGE) aligned to CK_WMEM_HUGE; NULL on failure. */
static uint8_t *reserve(size_t size) {
    size_t span = size + CK_WMEM_HUGE;
    uint8_t *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uint8_t *base = (uint8_t *)(((uintptr_t)p + CK_WMEM_HUGE - 1) & ~(uintptr_t)(CK_WMEM_HUGE - 1));
    if (base > p) munmap(p, (size_t)(base - p));
    if (p + span > base + size) munmap(base + size, (size_t)(p + span - (base + size)));
    madvise(base, size, MADV_HUGEPAGE);
    return base;
}

/* Room for `need` bytes in the newest chunk, opening a new one when it is full; NULL on failure. */
static chunk *room(size_t need) {
    chunk *c = n_chunks ? &chunks[n_chunks - 1] : NULL;
    if (c && c->size - c->used >= need) return c;
    if (n_chunks == CK_WMEM_MAX_CHUNKS || need > SIZE_MAX - 2 * CK_WMEM_HUGE) return NULL;
    size_t size = (need + CK_WMEM_HUGE - 1) / CK_WMEM_HUGE * CK_WMEM_HUGE;
    if (size < CK_WMEM_CHUNK) size = CK_WMEM_CHUNK;
    uint8_t *base = reserve(size);
    if (!base) return NULL;
    c = &chunks[n_chunks++];
    *c = (chunk){.base = base, .size = size};
    return c;
}

const void *ck_cpu_wmem_copy(const void *src, size_t n) {
    if (n > SIZE_MAX / 2) return NULL;
    size_t need = (n + CK_WMEM_ALIGN - 1) / CK_WMEM_ALIGN * CK_WMEM_ALIGN + CK_WMEM_ALIGN; /* + the slack */
    pthread_mutex_lock(&lock);
    chunk *c = fits(n) ? room(need) : NULL;
    uint8_t *p = NULL;
    if (c) {
        spent(n);
        p = c->base + c->used;
        c->used += need;
        c->live++;
        c->bytes += n;
    }
    pthread_mutex_unlock(&lock);
    if (p) memcpy(p, src, n); /* the chunk cannot go while this copy is live */
    return p;
}

void ck_cpu_wmem_release(const void *p, size_t n) {
    const uint8_t *q = p;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_chunks; i++) {
        chunk *c = &chunks[i];
        if (q < c->base || q >= c->base + c->used) continue;
        c->bytes -= n;
        if (--c->live == 0) {
            munmap(c->base, c->size);
            memmove(c, c + 1, (n_chunks - i - 1) * sizeof *c);
            n_chunks--;
        }
        break;
    }
    pthread_mutex_unlock(&lock);
}

size_t ck_cpu_wmem_bytes(void) {
    pthread_mutex_lock(&lock);
    size_t n = 0;
    for (size_t i = 0; i < n_chunks; i++) n += chunks[i].bytes;
    pthread_mutex_unlock(&lock);
    return n;
}
