/* file.h — whole-file helpers: read a regular file of bounded size into a NUL-terminated heap buffer, map
 * one read-only, and say precisely what is wrong with a path that should be a regular file.
 * Nothing here blocks on a FIFO or reads from a device: only regular files are read or mapped (symbolic
 * links are followed). A mapping of an empty file is valid (data == NULL, size == 0). Errors name the path
 * and the reason ("PATH is a FIFO, not a regular file", "PATH is a broken symbolic link", ...). */
#ifndef CK_BASE_FILE_H
#define CK_BASE_FILE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ck_map {
    const uint8_t *data; /* read-only mapping of the whole file, or NULL when size == 0 */
    size_t size;         /* bytes */
} ck_map;

/* Maps the regular file PATH read-only; anything else (FIFO, device, directory) is an error, never a
 * wait. */
int ck_map_open(const char *path, ck_map *out, char *err, size_t errlen);
void ck_map_close(ck_map *m);
/* The pages that hold [p, p + n) leave this process's memory when that range lies inside m (they are read
 * from the file again if touched, so nothing changes for a reader of any part of m): for data already
 * copied elsewhere. Returns 1 when the range is inside m, else 0 (and nothing is done). */
int ck_map_drop(const ck_map *m, const void *p, size_t n);

/* Reads the whole regular file PATH, at most max_bytes bytes: a file that is not regular, or that holds
 * more than max_bytes, is an error naming PATH (and the limit). *out is malloc'd with a trailing NUL not
 * counted in *len (len may be NULL); on error *out is NULL. Each caller picks the limit for its file. */
int ck_file_read_max(const char *path, size_t max_bytes, char **out, size_t *len, char *err, size_t errlen);

/* ck_file_read_max() with CK_FILE_READ_DEFAULT_MAX, for callers that have not picked their own limit. */
#define CK_FILE_READ_DEFAULT_MAX ((size_t)256 << 20)
int ck_file_read(const char *path, char **out, size_t *len, char *err, size_t errlen);

/* Returns 0 when PATH is a regular file (after following symbolic links), else -1 with the reason in err:
 * "PATH: no such file", "PATH is a broken symbolic link", "PATH is a directory", "PATH is a FIFO, not a
 * regular file", "PATH is a character device, not a regular file", "PATH: <strerror>" (e.g. a permission
 * denied on the way). Does not open the file, so it cannot block. */
int ck_path_check_file(const char *path, char *err, size_t errlen);

/* 1 when something is at PATH — of any type, a dangling symbolic link included — or when it cannot be
 * told (e.g. a directory on the way is not searchable); 0 when nothing is there. Lets a caller of an
 * optional file tell "absent" (skip it) from "present but wrong" (ck_path_check_file() says why). */
int ck_path_exists_any(const char *path);

/* 1 when path exists and is a regular file / a directory, else 0. */
int ck_is_file(const char *path);
int ck_is_dir(const char *path);

/* Joins dir and name with one '/' into buf; returns -1 (with err) when it does not fit. */
int ck_path_join(char *buf, size_t cap, const char *dir, const char *name, char *err, size_t errlen);

/* Formats a byte count for people: "512 B", "1.5 KiB", "3.2 GiB". */
void ck_format_bytes(uint64_t bytes, char *out, size_t cap);

#endif
