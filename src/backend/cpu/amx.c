/* amx.c — whether this process may use AMX (Advanced Matrix Extensions: 8 tile registers of 16 rows x 64
 * bytes, TDPBF16PS / TDPBSSD): the CPU reports AMX-TILE, AMX-BF16 and AMX-INT8 (CPUID leaf 7, EDX bits
 * 24, 22, 25), the OS enables the tile state (XCR0 bits 17 and 18), and Linux grants this process the
 * tile data state (arch_prctl ARCH_REQ_XCOMP_PERM, asked once; the grant covers every thread). The
 * kernels are in gemm_amx.c; this file needs no AMX compiler flags. */
#include "backend/cpu/kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static int amx_ok;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_probe(void) {
    unsigned a, b, c, d;
    if (!ck_cpu_has_avx512bf16() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    if (!(d & (1u << 24)) || !(d & (1u << 22)) || !(d & (1u << 25))) return;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return; /* OSXSAVE: xgetbv is there */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) return;
#if defined(__linux__)
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return;
#endif
    amx_ok = 1;
}

int ck_cpu_has_amx(void) {
    pthread_once(&amx_once, amx_probe);
    return amx_ok;
}

void ck_amx_tiles_load(const uint8_t rows[8], const uint16_t colsb[8]) {
    struct {
        uint8_t palette, start_row, reserved[14];
        uint16_t colsb[16];
        uint8_t rows[16];
    } c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 8; i++) c.rows[i] = rows[i], c.colsb[i] = colsb[i];
    /* as inline asm with a memory operand: GCC 12 drops the stores to c before _tile_loadconfig */
    __asm__ volatile("ldtilecfg %0" : : "m"(c));
}
#endif /* __x86_64__ */
