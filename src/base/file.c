/* file.c — read/mmap whole regular files and explain paths that are not one (see file.h).
 * Every open uses O_NONBLOCK, so that opening a FIFO returns at once and fstat() can refuse it; reads are
 * bounded by the caller's limit plus one byte, so a file that grows past its size or lies about it
 * (procfs reports 0) cannot make us read without end. */
#include "base/file.h"
#include "base/err.h"
#include "base/grow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The error for a path whose (followed) type is not a regular file. */
static int not_regular(const char *path, mode_t mode, char *err, size_t errlen) {
    if (S_ISDIR(mode)) return ck_err(err, errlen, "%s is a directory", path);
    const char *kind = S_ISFIFO(mode)  ? "a FIFO"
                       : S_ISCHR(mode) ? "a character device"
                       : S_ISBLK(mode) ? "a block device"
                       : S_ISSOCK(mode) ? "a socket"
                                        : "of an unknown type";
    return ck_err(err, errlen, "%s is %s, not a regular file", path, kind);
}

/* The error for a failed open()/stat() of path with errno e. */
static int open_failed(const char *path, int e, char *err, size_t errlen) {
    struct stat st;
    if (e == ENOENT && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        return ck_err(err, errlen, "%s is a broken symbolic link", path);
    return ck_err(err, errlen, "cannot open %s: %s", path, strerror(e));
}

/* Opens path read-only without blocking and checks that it is a regular file; returns the fd or -1. */
static int open_regular(const char *path, struct stat *st, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return open_failed(path, errno, err, errlen);
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return ck_err(err, errlen, "cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return not_regular(path, st->st_mode, err, errlen);
    }
    return fd;
}

int ck_map_open(const char *path, ck_map *out, char *err, size_t errlen) {
    out->data = NULL;
    out->size = 0;
    struct stat st;
    int fd = open_regular(path, &st, err, errlen);
    if (fd < 0) return -1;
    if (st.st_size > 0) {
        if ((uint64_t)st.st_size > SIZE_MAX) {
            close(fd);
            return ck_err(err, errlen, "%s is too large to map", path);
        }
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return ck_err(err, errlen, "cannot map %s: %s", path, strerror(e));
        }
        out->data = p;
        out->size = (size_t)st.st_size;
    }
    close(fd);
    return 0;
}

void ck_map_close(ck_map *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

int ck_map_drop(const ck_map *m, const void *p, size_t n) {
    const uint8_t *q = p;
    if (!m->data || q < m->data || n > m->size || (size_t)(q - m->data) > m->size - n) return 0;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)q / page * page, hi = ((uintptr_t)q + n + page - 1) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED); /* the mapping starts and ends on pages */
    return 1;
}

static int too_large(const char *path, size_t max_bytes, char *err, size_t errlen) {
    char lim[32];
    ck_format_bytes(max_bytes, lim, sizeof lim);
    return ck_err(err, errlen, "%s is larger than the %s limit for this file (%zu bytes)", path, lim, max_bytes);
}

/* Reads fd to its end into a malloc'd, NUL-terminated buffer; stops at max_bytes + 1 bytes. */
static int read_all(int fd, const char *path, size_t max_bytes, size_t size_hint, char **out, size_t *len,
                    char *err, size_t errlen) {
    char *buf = NULL;
    size_t cap = 0, n = 0;
    size_t first = (size_hint < max_bytes ? size_hint : max_bytes) + 2; /* + the byte past the limit, NUL */
    while (n <= max_bytes) {
        char *nb = ck_grow(buf, &cap, n + 2, 1, first < 4096 ? 4096 : first);
        if (!nb) {
            free(buf);
            return ck_err(err, errlen, "out of memory reading %s", path);
        }
        buf = nb;
        size_t want = cap - 1 - n;
        if (want > max_bytes + 1 - n) want = max_bytes + 1 - n;
        ssize_t r = read(fd, buf + n, want);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            return ck_err(err, errlen, "cannot read %s: %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    if (n > max_bytes) {
        free(buf);
        return too_large(path, max_bytes, err, errlen);
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return 0;
}

int ck_file_read_max(const char *path, size_t max_bytes, char **out, size_t *len, char *err, size_t errlen) {
    *out = NULL;
    if (len) *len = 0;
    if (max_bytes > SIZE_MAX - 2) max_bytes = SIZE_MAX - 2;
    struct stat st;
    int fd = open_regular(path, &st, err, errlen);
    if (fd < 0) return -1;
    int rc = (uint64_t)st.st_size > max_bytes
                 ? too_large(path, max_bytes, err, errlen)
                 : read_all(fd, path, max_bytes, (size_t)st.st_size, out, len, err, errlen);
    close(fd);
    return rc;
}

int ck_file_read(const char *path, char **out, size_t *len, char *err, size_t errlen) {
    return ck_file_read_max(path, CK_FILE_READ_DEFAULT_MAX, out, len, err, errlen);
}

int ck_path_check_file(const char *path, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) == 0) return S_ISREG(st.st_mode) ? 0 : not_regular(path, st.st_mode, err, errlen);
    int e = errno;
    if (e != ENOENT) return ck_err(err, errlen, "%s: %s", path, strerror(e));
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        return ck_err(err, errlen, "%s is a broken symbolic link", path);
    return ck_err(err, errlen, "%s: no such file", path);
}

int ck_path_exists_any(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 || (errno != ENOENT && errno != ENOTDIR);
}

int ck_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int ck_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int ck_path_join(char *buf, size_t cap, const char *dir, const char *name, char *err, size_t errlen) {
    size_t dl = strlen(dir);
    int slash = dl > 0 && dir[dl - 1] == '/';
    int n = snprintf(buf, cap, "%s%s%s", dir, slash ? "" : "/", name);
    if (n < 0 || (size_t)n >= cap) return ck_err(err, errlen, "path too long: %s/%s", dir, name);
    return 0;
}

void ck_format_bytes(uint64_t bytes, char *out, size_t cap) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int i = 0;
    while (v >= 1024 && i < 4) v /= 1024, i++;
    if (i == 0) snprintf(out, cap, "%llu B", (unsigned long long)bytes);
    else snprintf(out, cap, "%.1f %s", v, unit[i]);
}
