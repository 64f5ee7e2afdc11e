/* test_file_types.c — the file helpers of base/file.h on paths that are not ordinary files: exact size
 * limits of ck_file_read_max(), FIFOs and devices refused without blocking (read and mmap), the reasons
 * ck_path_check_file() gives, ck_path_exists_any(), and ck_tok_load() on a tokenizer.json that is a FIFO,
 * a directory or a broken link. An alarm turns a hang into a failure. */
#include "base/file.h"
#include "tok/tok.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", dir, name); }

static void write_file(const char *name, const char *text) {
    char p[128];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", p);
        exit(2);
    }
}

/* err must contain the path of name followed by what */
static int says(const char *err, const char *name, const char *what) {
    char want[256];
    snprintf(want, sizeof want, "%s/%s%s", dir, name, what);
    return strstr(err, want) != NULL;
}

static void test_read_limits(void) {
    char p[128], err[256], *buf;
    size_t len;
    write_file("ten.txt", "0123456789");
    path_of(p, sizeof p, "ten.txt");
    CK_EXPECT(ck_file_read_max(p, 10, &buf, &len, err, sizeof err) == 0 && len == 10 && buf[10] == 0 &&
                  !memcmp(buf, "0123456789", 10),
              "a file of exactly the limit is read (%s)", err);
    free(buf);
    buf = (char *)"x";
    CK_EXPECT(ck_file_read_max(p, 9, &buf, &len, err, sizeof err) == -1 && buf == NULL && len == 0 &&
                  says(err, "ten.txt", " is larger than the 9 B limit for this file (9 bytes)"),
              "one byte over the limit is refused: %s", err);
    write_file("empty.txt", "");
    path_of(p, sizeof p, "empty.txt");
    CK_EXPECT(ck_file_read_max(p, 0, &buf, &len, err, sizeof err) == 0 && len == 0 && buf && buf[0] == 0,
              "an empty file under a zero limit (%s)", err);
    free(buf);
    /* procfs files say size 0 and still have content: read to their end, within the limit */
    CK_EXPECT(ck_file_read_max("/proc/self/status", 1 << 20, &buf, &len, err, sizeof err) == 0 && len > 0 &&
                  strstr(buf, "Name:"),
              "a regular file whose size is not known ahead (%s)", err);
    free(buf);
    CK_EXPECT(ck_file_read_max("/proc/self/status", 4, &buf, &len, err, sizeof err) == -1 &&
                  strstr(err, "is larger than the 4 B limit"),
              "and its limit holds: %s", err);
    CK_EXPECT(ck_file_read_max("/dev/zero", 1 << 20, &buf, &len, err, sizeof err) == -1 &&
                  !strcmp(err, "/dev/zero is a character device, not a regular file"),
              "/dev/zero refused: %s", err);
}

static void test_fifo(void) {
    char p[128], err[256], *buf;
    size_t len;
    path_of(p, sizeof p, "fifo");
    if (mkfifo(p, 0600) != 0) {
        CK_EXPECT(0, "mkfifo %s failed", p);
        return;
    }
    CK_EXPECT(ck_file_read_max(p, 100, &buf, &len, err, sizeof err) == -1 &&
                  says(err, "fifo", " is a FIFO, not a regular file"),
              "reading a FIFO without a writer: %s", err);
    ck_map m;
    CK_EXPECT(ck_map_open(p, &m, err, sizeof err) == -1 && says(err, "fifo", " is a FIFO, not a regular file"),
              "mapping a FIFO: %s", err);
    int w = open(p, O_RDWR); /* now the FIFO has a writer, which never writes */
    CK_EXPECT(ck_file_read_max(p, 100, &buf, &len, err, sizeof err) == -1 && says(err, "fifo", " is a FIFO"),
              "reading a FIFO with an idle writer: %s", err);
    if (w >= 0) close(w);
    CK_EXPECT(ck_path_check_file(p, err, sizeof err) == -1 && says(err, "fifo", " is a FIFO, not a regular file"),
              "check: %s", err);
}

static void test_check(void) {
    char p[128], q[128], err[256];
    path_of(p, sizeof p, "ten.txt");
    CK_EXPECT(ck_path_check_file(p, err, sizeof err) == 0, "a regular file passes");
    path_of(q, sizeof q, "link.txt");
    CK_EXPECT(symlink(p, q) == 0 && ck_path_check_file(q, err, sizeof err) == 0, "a link to one passes");
    path_of(p, sizeof p, "nothing");
    CK_EXPECT(ck_path_check_file(p, err, sizeof err) == -1 && says(err, "nothing", ": no such file"), "%s", err);
    CK_EXPECT(!ck_path_exists_any(p), "nothing is there");
    path_of(q, sizeof q, "dangling");
    CK_EXPECT(symlink(p, q) == 0 && ck_path_check_file(q, err, sizeof err) == -1 &&
                  says(err, "dangling", " is a broken symbolic link"),
              "%s", err);
    CK_EXPECT(ck_path_exists_any(q), "a dangling link is something");
    char *buf;
    CK_EXPECT(ck_file_read_max(q, 10, &buf, NULL, err, sizeof err) == -1 &&
                  says(err, "dangling", " is a broken symbolic link"),
              "reading it: %s", err);
    path_of(p, sizeof p, "sub");
    CK_EXPECT(mkdir(p, 0700) == 0 && ck_path_check_file(p, err, sizeof err) == -1 &&
                  says(err, "sub", " is a directory"),
              "%s", err);
    CK_EXPECT(ck_file_read_max(p, 10, &buf, NULL, err, sizeof err) == -1 && says(err, "sub", " is a directory"),
              "reading a directory: %s", err);
    CK_EXPECT(ck_path_check_file("/dev/null", err, sizeof err) == -1 &&
                  !strcmp(err, "/dev/null is a character device, not a regular file"),
              "%s", err);
    path_of(p, sizeof p, "ten.txt/below");
    CK_EXPECT(!ck_path_exists_any(p), "a path through a file is absent");
}

/* tokenizer.json replaced by name with something that is not a regular file */
static void test_tok(const char *name, const char *what) {
    char p[128], err[512];
    path_of(p, sizeof p, "tokenizer.json");
    ck_tok *t = NULL;
    CK_EXPECT(ck_tok_load(dir, &t, err, sizeof err) == -1 && t == NULL && says(err, "tokenizer.json", what),
              "tokenizer.json %s: %s", name, err);
    if (t) ck_tok_free(t);
}

int main(void) {
    alarm(60);
    snprintf(dir, sizeof dir, "/tmp/ck_test_files_XXXXXX");
    if (!mkdtemp(dir)) return 2;
    test_read_limits();
    test_fifo();
    test_check();
    char p[128], q[128];
    path_of(p, sizeof p, "tokenizer.json");
    path_of(q, sizeof q, "fifo");
    if (rename(q, p) == 0) test_tok("FIFO", " is a FIFO, not a regular file");
    unlink(p);
    if (mkdir(p, 0700) == 0) test_tok("directory", " is a directory");
    rmdir(p);
    if (symlink("gone.json", p) == 0) test_tok("broken link", " is a broken symbolic link");
    unlink(p);
    const char *names[] = {"ten.txt", "empty.txt", "link.txt", "dangling"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        path_of(p, sizeof p, names[i]);
        unlink(p);
    }
    path_of(p, sizeof p, "sub");
    rmdir(p);
    rmdir(dir);
    return ck_test_done("test_file_types");
}
