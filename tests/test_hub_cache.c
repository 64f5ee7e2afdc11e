/* test_hub_cache.c — the HF-cache library without a network: environment -> cache locations and token,
 * name validation, repo id <-> directory names, completeness of snapshots (dangling links, missing
 * shards, a refs/main that holds no commit or names a missing snapshot), listing both caches (and
 * refusing a cache root that is a regular file), name/suffix matching, ck_hub_find, ck_hub_resolve for
 * local paths, cached repos and HF_HUB_OFFLINE, ck_model_remove's refusal to delete outside the caches,
 * the parsers of the Hub's JSON replies and the GGUF file picker of ORG/NAME:TAG (hub/api.h).
 *
 * Extra modes used by tests/test_hub.sh while its fake Hub runs (environment set by the script):
 *   test_hub_cache resolve ORG/NAME   prints "<local|cached|pulled> <dir>" via ck_hub_resolve, the
 *                                     function behind ck_cli_resolve_model (pulls when missing)
 *   test_hub_cache diskfull URL       downloads URL into /dev/full: must fail as CK_HTTP_DISK/ENOSPC */
#include "testutil.h"

#include "hub/api.h"
#include "hub/http.h"
#include "hub/paths.h"
#include "hub/resolve.h"
#include "hub/scan.h"
#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];

static void put(const char *rel, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(p, 0777);
        *s = '/';
    }
    FILE *f = fopen(p, "w");
    if (!f) {
        perror(p);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static void lnk(const char *target, const char *rel) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(p, 0777);
        *s = '/';
    }
    if (symlink(target, p) != 0) {
        perror(p);
        exit(2);
    }
}

static const char *C1 = "1111111111111111111111111111111111111111";

/* a repo in the layout huggingface_hub writes, with weights named wname */
static void make_repo(const char *dir, const char *wname, int with_ref) {
    char rel[512], tgt[512];
    snprintf(rel, sizeof rel, "hub/%s/blobs/aaaa", dir);
    put(rel, "{\"model_type\":\"qwen3\"}");
    snprintf(rel, sizeof rel, "hub/%s/blobs/bbbb", dir);
    put(rel, "weights");
    snprintf(rel, sizeof rel, "hub/%s/snapshots/%s/config.json", dir, C1);
    lnk("../../blobs/aaaa", rel);
    if (wname) {
        snprintf(rel, sizeof rel, "hub/%s/snapshots/%s/%s", dir, C1, wname);
        snprintf(tgt, sizeof tgt, "../../blobs/%s", strcmp(wname, "dangling.safetensors") ? "bbbb" : "gone");
        lnk(tgt, rel);
    }
    if (with_ref) {
        snprintf(rel, sizeof rel, "hub/%s/refs/main", dir);
        put(rel, C1);
    }
}

/* ck_hub_*_parse on small replies, including what fuzzing turned up */
static void test_api(void) {
    char err[256];
    ck_hub_info info;
    const char *good = "{\"sha\":\"1111111111111111111111111111111111111111\",\"siblings\":[{\"rfilename\":"
                       "\"config.json\"},{\"rfilename\":\"../x\"},{\"rfilename\":7},{\"rfilename\":\"a/b.bin\"}]}";
    CK_EXPECT(ck_hub_info_parse(good, strlen(good), &info, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(!strcmp(info.commit, C1) && info.siblings.n == 2 && !strcmp(info.siblings.v[1], "a/b.bin"),
              "info %s %zu", info.commit, info.siblings.n);
    ck_hub_info_free(&info);
    const char *nosha = "{\"sha\":\"main\",\"siblings\":[{\"rfilename\":\"config.json\"}]}";
    CK_EXPECT(ck_hub_info_parse(nosha, strlen(nosha), &info, err, sizeof err) == -1 && strstr(err, "commit"),
              "no commit: %s", err);
    CK_EXPECT(ck_hub_info_parse("[1", 2, &info, err, sizeof err) == -1, "truncated info");

    ck_hub_tree t;
    memset(&t, 0, sizeof t);
    /* sizes out of int64_t range (1e999 parses as inf), fractional or negative are unknown; an oid that is
     * not lowercase hex is no sha256; directories and unsafe paths are skipped */
    const char *page = "[{\"type\":\"file\",\"path\":\"a\",\"size\":1e999},"
                       "{\"type\":\"file\",\"path\":\"b\",\"size\":1.5},"
                       "{\"type\":\"file\",\"path\":\"c\",\"size\":-3,\"lfs\":{\"oid\":"
                       "\"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789\",\"size\":9}},"
                       "{\"type\":\"file\",\"path\":\"d\",\"size\":5,\"lfs\":{\"oid\":"
                       "\"abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789\",\"size\":9}},"
                       "{\"type\":\"directory\",\"path\":\"e\"},{\"type\":\"file\",\"path\":\"/etc/x\"}]";
    CK_EXPECT(ck_hub_tree_parse(page, strlen(page), &t, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(t.n == 4, "tree entries %zu", t.n);
    if (t.n == 4) {
        CK_EXPECT(t.v[0].size == -1 && t.v[1].size == -1 && t.v[2].size == -1, "sizes %lld %lld %lld",
                  (long long)t.v[0].size, (long long)t.v[1].size, (long long)t.v[2].size);
        CK_EXPECT(!t.v[2].sha256[0] && t.v[3].size == 9 && strlen(t.v[3].sha256) == 64, "lfs entries");
    }
    CK_EXPECT(ck_hub_tree_parse("{}", 2, &t, err, sizeof err) == -1 && t.n == 4, "not an array: %s", err);
    ck_hub_tree_free(&t);

    ck_hub_names sh;
    const char *idx = "{\"weight_map\":{\"x\":\"m-1.safetensors\",\"y\":\"m-2.safetensors\",\"z\":\"m-1.safetensors\"}}";
    CK_EXPECT(ck_hub_weight_map_parse(idx, strlen(idx), &sh, err, sizeof err) == 0 && sh.n == 2, "shards %zu", sh.n);
    ck_hub_names_free(&sh);
    const char *bad = "{\"weight_map\":{\"x\":\"../../etc/passwd\"}}";
    CK_EXPECT(ck_hub_weight_map_parse(bad, strlen(bad), &sh, err, sizeof err) == -1, "unsafe shard name");
    CK_EXPECT(ck_hub_weight_map_parse("{}", 2, &sh, err, sizeof err) == -1 && strstr(err, "weight_map"), "%s", err);
}

static int mode_resolve(const char *repo) {
    char dir[4096], err[2048];
    ck_resolved how;
    if (ck_hub_resolve(repo, NULL, dir, sizeof dir, &how, err, sizeof err) != 0) {
        fprintf(stderr, "resolve: %s\n", err);
        return 1;
    }
    printf("%s %s\n", how == CK_RESOLVED_LOCAL ? "local" : how == CK_RESOLVED_CACHED ? "cached" : "pulled", dir);
    return 0;
}

static int mode_diskfull(const char *url) {
    int fd = open("/dev/full", O_WRONLY);
    if (fd < 0) {
        printf("skip: no /dev/full\n");
        return 0;
    }
    ck_http h;
    ck_http_resp r;
    char err[1024];
    uint64_t have = 0;
    CK_EXPECT(ck_http_open(&h, "http://127.0.0.1", NULL, err, sizeof err) == 0, "%s", err);
    ck_http_kind k = ck_http_download(&h, url, fd, &have, NULL, NULL, &r, err, sizeof err);
    CK_EXPECT(k == CK_HTTP_DISK, "kind %d: %s", (int)k, err);
    CK_EXPECT(r.write_errno == ENOSPC, "errno %d", r.write_errno);
    CK_EXPECT(strstr(err, "No space left") != NULL, "message: %s", err);
    ck_http_resp_free(&r);
    ck_http_close(&h);
    close(fd);
    return ck_test_done("test_hub_cache diskfull");
}

/* ck_hub_gguf_pick: root-level *.gguf files only, TAG anywhere in the name ignoring case, one match or an
 * error that lists the .gguf files; a part of a split model is refused */
static void test_gguf_pick(void) {
    static const char *files[] = {"README.md", "Qwen3-0.6B-Q8_0.gguf", "Qwen3-0.6B-Q4_K_M.gguf", "Qwen3-0.6B-Q4_K_S.gguf",
                                  "BF16/Qwen3-0.6B-BF16.gguf", "Qwen3-0.6B-F16.gguf.txt",
                                  "big-Q6_K-00001-of-00002.gguf", "big-Q6_K-00002-of-00002.gguf"};
    ck_hub_names names = {0};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) ck_hub_names_add(&names, files[i]);
    const char *all = "Qwen3-0.6B-Q8_0.gguf, Qwen3-0.6B-Q4_K_M.gguf, Qwen3-0.6B-Q4_K_S.gguf, "
                      "big-Q6_K-00001-of-00002.gguf, big-Q6_K-00002-of-00002.gguf";
    char err[1024], exp[1024], list[1024];
    size_t pick = 99;
    CK_EXPECT(ck_hub_gguf_pick(&names, "q8_0", "r", &pick, err, sizeof err) == 1 && pick == 1, "q8_0 -> %zu", pick);
    CK_EXPECT(ck_hub_gguf_pick(&names, "Q4_K_S", "r", &pick, err, sizeof err) == 1 && pick == 3, "Q4_K_S -> %zu", pick);
    CK_EXPECT(ck_hub_gguf_pick(&names, "q4_k", "org/m", &pick, err, sizeof err) == -1, "two Q4_K files");
    snprintf(exp, sizeof exp, "org/m: more than one .gguf file matches 'q4_k' (.gguf files: %s); give a longer TAG", all);
    CK_EXPECT(!strcmp(err, exp), "several: %s", err);
    CK_EXPECT(ck_hub_gguf_pick(&names, "BF16", "org/m", &pick, err, sizeof err) == 0, "subfolders are not looked in");
    snprintf(exp, sizeof exp, "org/m: no .gguf file matches 'BF16' (.gguf files: %s)", all);
    CK_EXPECT(!strcmp(err, exp), "none: %s", err);
    CK_EXPECT(ck_hub_gguf_pick(&names, "F16", "r", &pick, err, sizeof err) == 0, "only names ending in .gguf");
    CK_EXPECT(ck_hub_gguf_pick(&names, "q6_k", "r", &pick, err, sizeof err) == -1 &&
                  strstr(err, "r: 'q6_k' matches big-Q6_K-00001-of-00002.gguf, a part of a split GGUF model"),
              "split: %s", err);
    CK_EXPECT(ck_hub_gguf_pick(&names, "00002-of", "r", &pick, err, sizeof err) == -1 && strstr(err, "split"),
              "one split part: %s", err);
    CK_EXPECT(ck_hub_gguf_list(&names, list, sizeof list) == 5 && !strcmp(list, all), "list: %s", list);
    CK_EXPECT(ck_hub_gguf_list(&names, list, 30) == 5 && strlen(list) == 29 && !strcmp(list + 25, " ..."),
              "a list cut to fit: %s", list);
    ck_hub_names_free(&names);
    CK_EXPECT(ck_hub_gguf_pick(&names, "Q8_0", "r", &pick, err, sizeof err) == 0 &&
                  !strcmp(err, "r: no .gguf file matches 'Q8_0' (.gguf files: none)"),
              "empty: %s", err);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "resolve")) return mode_resolve(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "diskfull")) return mode_diskfull(argv[2]);

    snprintf(root, sizeof root, "/tmp/ck_hub_cache_XXXXXX");
    if (!mkdtemp(root)) return 2;
    char buf[4096], exp[4096], err[1024], hub[512], cake[512];
    snprintf(hub, sizeof hub, "%s/hub", root);
    snprintf(cake, sizeof cake, "%s/cake", root);

    /* --- locations from the environment --- */
    unsetenv("HF_HUB_CACHE");
    unsetenv("HUGGINGFACE_HUB_CACHE");
    unsetenv("HF_TOKEN");
    unsetenv("HUGGING_FACE_HUB_TOKEN");
    unsetenv("HF_TOKEN_PATH");
    unsetenv("HF_HUB_OFFLINE");
    unsetenv("CAKE_CACHE");
    unsetenv("HF_HOME");
    setenv("HOME", root, 1);
    unsetenv("XDG_CACHE_HOME");
    CK_EXPECT(ck_hub_cache_dir(buf, sizeof buf, err, sizeof err) == 0, "%s", err);
    snprintf(exp, sizeof exp, "%s/.cache/huggingface/hub", root);
    CK_EXPECT(!strcmp(buf, exp), "default cache %s", buf);
    CK_EXPECT(ck_cake_cache_dir(buf, sizeof buf, err, sizeof err) == 0, "%s", err);
    snprintf(exp, sizeof exp, "%s/.cache/cake", root);
    CK_EXPECT(!strcmp(buf, exp), "default cake cache %s", buf);
    setenv("XDG_CACHE_HOME", "/x", 1);
    ck_hub_cache_dir(buf, sizeof buf, err, sizeof err);
    CK_EXPECT(!strcmp(buf, "/x/huggingface/hub"), "xdg cache %s", buf);
    setenv("HF_HOME", "~/hfh", 1);
    ck_hub_cache_dir(buf, sizeof buf, err, sizeof err);
    snprintf(exp, sizeof exp, "%s/hfh/hub", root);
    CK_EXPECT(!strcmp(buf, exp), "HF_HOME cache %s", buf);
    setenv("HUGGINGFACE_HUB_CACHE", "/old", 1);
    ck_hub_cache_dir(buf, sizeof buf, err, sizeof err);
    CK_EXPECT(!strcmp(buf, "/old"), "legacy var %s", buf);
    setenv("HF_HUB_CACHE", hub, 1);
    ck_hub_cache_dir(buf, sizeof buf, err, sizeof err);
    CK_EXPECT(!strcmp(buf, hub), "HF_HUB_CACHE %s", buf);
    setenv("CAKE_CACHE", cake, 1);
    ck_cake_cache_dir(buf, sizeof buf, err, sizeof err);
    CK_EXPECT(!strcmp(buf, cake), "CAKE_CACHE %s", buf);
    setenv("HF_ENDPOINT", "http://127.0.0.1:9/", 1);
    ck_hub_endpoint(buf, sizeof buf, err, sizeof err);
    CK_EXPECT(!strcmp(buf, "http://127.0.0.1:9"), "endpoint %s", buf);
    unsetenv("HF_ENDPOINT");
    ck_hub_endpoint(buf, sizeof buf, err, sizeof err);
    CK_EXPECT(!strcmp(buf, "https://huggingface.co"), "default endpoint %s", buf);

    /* --- token: variable, then token file under HF_HOME --- */
    snprintf(exp, sizeof exp, "%s/hfh", root);
    setenv("HF_HOME", exp, 1);
    CK_EXPECT(ck_hub_token(buf, sizeof buf, err, sizeof err) == 0, "no token expected");
    put("hfh/token", "  hf_from_file\n");
    CK_EXPECT(ck_hub_token(buf, sizeof buf, err, sizeof err) == 1 && !strcmp(buf, "hf_from_file"), "file token %s", buf);
    setenv("HF_TOKEN", "hf_from_env", 1);
    CK_EXPECT(ck_hub_token(buf, sizeof buf, err, sizeof err) == 1 && !strcmp(buf, "hf_from_env"), "env token %s", buf);
    unsetenv("HF_TOKEN");

    /* --- names --- */
    CK_EXPECT(ck_hub_repo_id_valid("evilsocket/Qwen3-0.6B"), "valid id");
    CK_EXPECT(ck_hub_repo_id_valid("gpt2") && !ck_hub_repo_id_full("gpt2"), "bare name");
    CK_EXPECT(ck_hub_repo_id_full("a/b"), "full id");
    CK_EXPECT(!ck_hub_repo_id_valid("a/b/c") && !ck_hub_repo_id_valid("../x") && !ck_hub_repo_id_valid("a/..") &&
                  !ck_hub_repo_id_valid("a--b/c") && !ck_hub_repo_id_valid("/a") && !ck_hub_repo_id_valid("") &&
                  !ck_hub_repo_id_valid("a/b c"),
              "invalid ids");
    CK_EXPECT(ck_hub_revision_valid("main") && ck_hub_revision_valid("refs/pr/1") && ck_hub_revision_valid("v1.0"),
              "revisions");
    CK_EXPECT(!ck_hub_revision_valid("../x") && !ck_hub_revision_valid("/abs") && !ck_hub_revision_valid("a//b") &&
                  !ck_hub_revision_valid(""),
              "bad revisions");
    CK_EXPECT(ck_hub_filename_valid("config.json") && ck_hub_filename_valid("onnx/model.onnx"), "file names");
    CK_EXPECT(!ck_hub_filename_valid("../x") && !ck_hub_filename_valid("/etc/passwd") &&
                  !ck_hub_filename_valid("a/../../b") && !ck_hub_filename_valid("a\\b") &&
                  !ck_hub_filename_valid("a\nb") && !ck_hub_filename_valid("a/") && !ck_hub_filename_valid("./a"),
              "bad file names");
    char etag[64] = "W/\"abc123\"";
    ck_hub_etag_normalize(etag);
    CK_EXPECT(!strcmp(etag, "abc123"), "etag %s", etag);
    CK_EXPECT(ck_hub_etag_valid("abc123") && !ck_hub_etag_valid("../a") && !ck_hub_etag_valid(""), "etag validity");
    CK_EXPECT(ck_hub_is_commit(C1) && !ck_hub_is_commit("main") && !ck_hub_is_commit("111"), "commit");
    CK_EXPECT(ck_hub_repo_dir(buf, sizeof buf, "/c", "evilsocket/Qwen3-0.6B", err, sizeof err) == 0 &&
                  !strcmp(buf, "/c/models--evilsocket--Qwen3-0.6B"),
              "repo dir %s", buf);
    CK_EXPECT(ck_hub_repo_from_dirname("models--evilsocket--Qwen3-0.6B", buf, sizeof buf) &&
                  !strcmp(buf, "evilsocket/Qwen3-0.6B"),
              "dir name %s", buf);
    CK_EXPECT(!ck_hub_repo_from_dirname("datasets--a--b", buf, sizeof buf) &&
                  !ck_hub_repo_from_dirname(".locks", buf, sizeof buf),
              "not model dirs");
    char enc[256];
    ck_url_encode("refs/pr/1", 0, enc, sizeof enc);
    CK_EXPECT(!strcmp(enc, "refs%2Fpr%2F1"), "encode %s", enc);
    ck_url_encode("dir/a b.json", 1, enc, sizeof enc);
    CK_EXPECT(!strcmp(enc, "dir/a%20b.json"), "encode %s", enc);

    /* --- a cache with complete, partial and broken repos --- */
    make_repo("models--org--a", "model.safetensors", 1);         /* complete */
    make_repo("models--other--a", "model.safetensors", 0);       /* pinned commit: no refs/main */
    make_repo("models--org--dangling", "dangling.safetensors", 1); /* link into a missing blob */
    make_repo("models--org--noweights", NULL, 1);
    make_repo("models--org--sharded", "model-00001-of-00002.safetensors", 1);
    snprintf(buf, sizeof buf, "hub/models--org--sharded/snapshots/%s/model.safetensors.index.json", C1);
    put(buf, "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\"}}");
    put("hub/models--org--a/blobs/cccc.incomplete", "12345");
    make_repo("models--org--badref", "model.safetensors", 0); /* a complete snapshot, but refs/main garbage */
    put("hub/models--org--badref/refs/main", "not a commit\n");
    make_repo("models--org--lostref", "model.safetensors", 0); /* refs/main names a snapshot that is not there */
    put("hub/models--org--lostref/refs/main", "2222222222222222222222222222222222222222");
    put("hub/datasets--org--data/x", "not a model");
    put("cake/models/work--m/config.json", "{}");
    put("cake/models/work--m/model.gguf", "GGUF");
    put("cake/models/work--half/config.json", "{}");

    ck_model_list l;
    CK_EXPECT(ck_models_scan(hub, cake, &l, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(l.n == 9, "entries %zu", l.n);
    const char *want[][3] = {{"org/a", "1", "hf"},         {"org/badref", "0", "hf"},   {"org/dangling", "0", "hf"},
                             {"org/lostref", "0", "hf"},   {"org/noweights", "0", "hf"}, {"org/sharded", "0", "hf"},
                             {"other/a", "1", "hf"},       {"work/half", "0", "worker"}, {"work/m", "1", "worker"}};
    for (size_t i = 0; i < l.n && i < 9; i++) {
        CK_EXPECT(!strcmp(l.v[i].name, want[i][0]), "entry %zu name %s", i, l.v[i].name);
        CK_EXPECT(l.v[i].complete == atoi(want[i][1]), "%s complete %d", l.v[i].name, l.v[i].complete);
        CK_EXPECT(!strcmp(l.v[i].source == CK_SRC_HF ? "hf" : "worker", want[i][2]), "%s source", l.v[i].name);
        CK_EXPECT((l.v[i].why[0] == 0) == l.v[i].complete, "%s why '%s'", l.v[i].name, l.v[i].why);
        /* list and run agree: with a refs/main, an HF entry is complete exactly when the resolver takes it */
        if (l.v[i].source == CK_SRC_HF && strcmp(l.v[i].name, "other/a"))
            CK_EXPECT((ck_hub_find(hub, l.v[i].name, "main", buf, sizeof buf, err, sizeof err) == 0) == l.v[i].complete,
                      "%s: list says %d, resolver: %s", l.v[i].name, l.v[i].complete, err);
    }
    CK_EXPECT(l.n == 9 && strstr(l.v[1].why, "does not hold a commit"), "badref why: %s", l.n > 1 ? l.v[1].why : "");
    CK_EXPECT(l.n == 9 && strstr(l.v[3].why, "no directory"), "lostref why: %s", l.n > 3 ? l.v[3].why : "");
    /* sizes: blobs aaaa (22) + bbbb (7) + the 5-byte .incomplete */
    CK_EXPECT(l.n && l.v[0].size_bytes == 22 + 7 + 5, "size %llu", (unsigned long long)l.v[0].size_bytes);

    size_t idx[8];
    CK_EXPECT(ck_models_match(&l, "org/a", idx, 8) == 1 && !strcmp(l.v[idx[0]].name, "org/a"), "exact match");
    CK_EXPECT(ck_models_match(&l, "a", idx, 8) == 2, "ambiguous suffix");
    CK_EXPECT(ck_models_match(&l, "m", idx, 8) == 1 && l.v[idx[0]].source == CK_SRC_WORKER, "worker suffix");
    CK_EXPECT(ck_models_match(&l, "rg/a", idx, 8) == 0, "suffix is whole components only");

    /* --- find / resolve --- */
    char dir[4096];
    CK_EXPECT(ck_hub_find(hub, "org/a", "main", dir, sizeof dir, err, sizeof err) == 0, "%s", err);
    snprintf(exp, sizeof exp, "%s/models--org--a/snapshots/%s", hub, C1);
    CK_EXPECT(!strcmp(dir, exp), "find dir %s", dir);
    CK_EXPECT(ck_hub_find(hub, "other/a", "main", dir, sizeof dir, err, sizeof err) == 1, "no ref -> absent");
    CK_EXPECT(ck_hub_find(hub, "org/dangling", "main", dir, sizeof dir, err, sizeof err) == 1, "dangling -> absent");
    CK_EXPECT(ck_hub_find(hub, "org/sharded", "main", dir, sizeof dir, err, sizeof err) == 1 &&
                  strstr(err, "model-00002-of-00002") != NULL,
              "missing shard named: %s", err);
    CK_EXPECT(ck_hub_find(hub, "no/such", "main", dir, sizeof dir, err, sizeof err) == 1, "missing repo");

    ck_resolved how;
    CK_EXPECT(ck_hub_resolve("org/a", NULL, dir, sizeof dir, &how, err, sizeof err) == 0 && how == CK_RESOLVED_CACHED &&
                  !strcmp(dir, exp),
              "resolve cached: %s", err);
    CK_EXPECT(ck_hub_resolve(root, NULL, dir, sizeof dir, &how, err, sizeof err) == 0 && how == CK_RESOLVED_LOCAL &&
                  !strcmp(dir, root),
              "resolve local: %s", err);
    CK_EXPECT(ck_hub_resolve("./nope", NULL, dir, sizeof dir, &how, err, sizeof err) == -1 &&
                  strstr(err, "not a model") != NULL,
              "resolve junk: %s", err);
    setenv("HF_HUB_OFFLINE", "1", 1);
    CK_EXPECT(ck_hub_resolve("other/a", NULL, dir, sizeof dir, &how, err, sizeof err) == -1 &&
                  strstr(err, "HF_HUB_OFFLINE") != NULL,
              "offline: %s", err);
    unsetenv("HF_HUB_OFFLINE");

    /* --- remove --- */
    ck_model_entry fake = l.v[0];
    snprintf(fake.path, sizeof fake.path, "%s/hfh", root); /* not a model dir of the cache */
    CK_EXPECT(ck_model_remove(&fake, hub, cake, err, sizeof err) == -1, "outside the cache must be refused");
    snprintf(fake.path, sizeof fake.path, "%s/hub/../hub/models--org--a/snapshots", root);
    CK_EXPECT(ck_model_remove(&fake, hub, cake, err, sizeof err) == -1, "a subdirectory must be refused");
    fake.source = CK_SRC_WORKER;
    snprintf(fake.path, sizeof fake.path, "%s/models--org--a", hub);
    CK_EXPECT(ck_model_remove(&fake, hub, cake, err, sizeof err) == -1, "HF dir as worker must be refused");
    CK_EXPECT(ck_model_remove(&l.v[0], hub, cake, err, sizeof err) == 0, "%s", err);
    snprintf(buf, sizeof buf, "%s/models--org--a", hub);
    CK_EXPECT(!ck_is_dir(buf), "removed");
    CK_EXPECT(ck_model_remove(&l.v[8], hub, cake, err, sizeof err) == 0, "%s", err);
    snprintf(buf, sizeof buf, "%s/models/work--m", cake);
    CK_EXPECT(!ck_is_dir(buf), "worker model removed");
    snprintf(buf, sizeof buf, "%s/models--other--a/blobs/bbbb", hub);
    CK_EXPECT(access(buf, F_OK) == 0, "other repos untouched");
    ck_models_free(&l);

    /* a cache root that is a regular file is an error, not an empty cache */
    put("plainfile", "x");
    snprintf(buf, sizeof buf, "%s/plainfile", root);
    CK_EXPECT(ck_models_scan(buf, cake, &l, err, sizeof err) == -1 && strstr(err, "not a directory"), "hf file: %s", err);
    CK_EXPECT(ck_models_scan(hub, buf, &l, err, sizeof err) == -1 && strstr(err, "not a directory"), "cake file: %s", err);
    snprintf(exp, sizeof exp, "%s/none", root);
    CK_EXPECT(ck_models_scan(exp, exp, &l, err, sizeof err) == 0 && l.n == 0, "missing roots are empty: %s", err);
    ck_models_free(&l);

    test_api();
    test_gguf_pick();

    snprintf(buf, sizeof buf, "rm -rf '%s'", root);
    if (system(buf) != 0) fprintf(stderr, "cleanup failed\n");
    return ck_test_done("test_hub_cache");
}
