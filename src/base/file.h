/* file.h — whole-file helpers: read a file into a NUL-terminated heap buffer, or map it read-only.
 * A mapping of an empty file is valid (data == NULL, size == 0). Errors name the path and errno. */
#ifndef CK_BASE_FILE_H
#define CK_BASE_FILE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ck_map {
    const uint8_t *data; /* read-only mapping of the whole file, or NULL when size == 0 */
    size_t size;         /* bytes */
} ck_map;

int ck_map_open(const char *path, ck_map *out, char *err, size_t errlen);
void ck_map_close(ck_map *m);

/* Reads the whole file; *out is malloc'd with a trailing NUL not counted in *len. */
int ck_file_read(const char *path, char **out, size_t *len, char *err, size_t errlen);

/* 1 when path exists and is a regular file / a directory, else 0. */
int ck_is_file(const char *path);
int ck_is_dir(const char *path);
/* 1 when something exists at path (even a broken symbolic link), else 0. */
int ck_path_exists(const char *path);

/* Joins dir and name with one '/' into buf; returns -1 (with err) when it does not fit. */
int ck_path_join(char *buf, size_t cap, const char *dir, const char *name, char *err, size_t errlen);

/* Formats a byte count for people: "512 B", "1.5 KiB", "3.2 GiB". */
void ck_format_bytes(uint64_t bytes, char *out, size_t cap);

#endif
