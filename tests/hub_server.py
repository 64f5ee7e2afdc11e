#!/usr/bin/env python3
"""hub_server.py -- a stand-in for the HuggingFace Hub, Python 3 stdlib only, for tests/test_hub.sh.

Serves fixture repos built from tests/data on 127.0.0.1 with an ephemeral port (written to --port-file)
and answers the way the Hub does:
  GET  /api/models/ORG/NAME/revision/REV      model info: sha (commit), siblings[].rfilename
  GET  /api/models/ORG/NAME/tree/REV?recursive=true   paginated (Link: rel="next"); LFS entries carry lfs.oid
  HEAD/GET /ORG/NAME/resolve/REV/FILE         X-Repo-Commit + ETag "<git blob sha1>" for small files;
                                              302 to /cdn/... with X-Linked-Etag "<sha256>" and
                                              X-Linked-Size for LFS files
  GET  /cdn/KEY/FILE                          the LFS bytes, with Range support (206)
  errors: 401/404 with X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound / GatedRepo
Test hooks:
  GET /_control?drop=N     the next N transfers of model.safetensors from /cdn send half their bytes
                           and then drop the connection
  GET /_control?trickle=N  the next N transfers of model.safetensors from /cdn send 512 bytes at once,
                           then 2 bytes a second until the client gives up
  every request is logged to --log as "METHOD PATH range=<Range header or ->".
Repos: cake-test/tiny-qwen3 and mirror-org/tiny-qwen3 (plain), cake-test/gated-qwen3 (needs
"Authorization: Bearer hf_test_token"), cake-test/corrupt-qwen3 (model.safetensors served with one byte
flipped while its sha256 is announced), cake-test/sharded-qwen3 (weights split into two shards + index), cake-test/huge-info (its model info is a JSON reply
of more than 64 MiB), and with --gguf FILE (repeatable) cake-test/tiny-GGUF: those .gguf files (LFS), a
README.md and a .gitattributes, no config.json.
`hub_server.py corpus --data DIR --out D` writes those JSON replies as seed files for the fuzzer.
`hub_server.py export --data DIR --repo R --out D` writes the files of repo R into D (an HF model
directory for the plain repos), e.g. to convert them to the .gguf files given to --gguf.
`hub_server.py check-layout --data DIR --cache C --repo R --files a,b` checks that R sits in cache C the
way huggingface_hub lays it out: refs/main holds the commit (no newline); snapshots/<commit> holds exactly
those files, each a relative symlink ../../blobs/<etag>; every blob is named by its ETag (sha256 for LFS,
git blob sha1 otherwise) and has the served bytes; no .incomplete left. Prints "layout ok <blob bytes>".
"""
import argparse
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import tok_cut  # tests/tok_cut.py, beside this file

TOKEN = "hf_test_token"
LFS_MIN = 1 << 20


def split_safetensors(blob):
    """Splits a safetensors file into two valid shards; returns ({name: bytes}, index_json_bytes)."""
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", None)
    names = sorted(header)
    half = len(names) // 2
    data = blob[8 + n:]
    shards, weight_map = {}, {}
    for i, part in enumerate((names[:half], names[half:])):
        fname = "model-%05d-of-00002.safetensors" % (i + 1)
        h, chunks, off = {}, [], 0
        for t in part:
            b, e = header[t]["data_offsets"]
            chunk = data[b:e]
            h[t] = dict(header[t], data_offsets=[off, off + len(chunk)])
            chunks.append(chunk)
            off += len(chunk)
            weight_map[t] = fname
        if meta is not None:
            h["__metadata__"] = meta
        hj = json.dumps(h).encode()
        hj += b" " * ((8 - len(hj) % 8) % 8)
        shards[fname] = struct.pack("<Q", len(hj)) + hj + b"".join(chunks)
    index = json.dumps({"metadata": {"total_size": sum(len(s) for s in shards.values())},
                        "weight_map": weight_map}, indent=2).encode()
    return shards, index


def build_repos(dirs, ggufs=()):
    def rd(p):
        path = next((os.path.join(d, p) for d in dirs if os.path.exists(os.path.join(d, p))), os.path.join(dirs[0], p))
        with open(path, "rb") as f:
            return f.read()
    base = {
        "config.json": rd("qwen3-s/config.json"),
        "generation_config.json": rd("qwen3-s/generation_config.json"),
        "model.safetensors": rd("qwen3-s/model.safetensors"),
        "tokenizer.json": json.dumps(tok_cut.cut(json.loads(rd("qwen3-tiny/tokenizer.json")))).encode(),
        "tokenizer_config.json": rd("qwen3-tiny/tokenizer_config.json"),
        "README.md": b"# test model\n",
        ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
        "onnx/model.onnx": b"not needed for inference\n",
    }
    sharded = {k: v for k, v in base.items() if k != "model.safetensors"}
    shards, index = split_safetensors(base["model.safetensors"])
    sharded.update(shards)
    sharded["model.safetensors.index.json"] = index
    repos = {
        "cake-test/tiny-qwen3": {"files": base},
        "mirror-org/tiny-qwen3": {"files": base},
        "cake-test/gated-qwen3": {"files": base, "gated": True},
        "cake-test/corrupt-qwen3": {"files": base, "corrupt": "model.safetensors"},
        "cake-test/sharded-qwen3": {"files": sharded},
        "cake-test/huge-info": {"files": base, "huge": True},
    }
    if ggufs:
        files = {"README.md": b"# test GGUF model\n", ".gitattributes": b"*.gguf filter=lfs diff=lfs merge=lfs -text\n"}
        for p in ggufs:
            with open(p, "rb") as f:
                files[os.path.basename(p)] = f.read()
        repos["cake-test/tiny-GGUF"] = {"files": files}
    for name, r in repos.items():
        r["commit"] = hashlib.sha1(("commit of " + name).encode()).hexdigest()
        r["meta"] = {}
        for f, b in r["files"].items():
            lfs = f.endswith((".safetensors", ".gguf")) or len(b) >= LFS_MIN
            r["meta"][f] = {
                "size": len(b),
                "lfs": lfs,
                "sha256": hashlib.sha256(b).hexdigest(),
                "oid": hashlib.sha1(b"blob %d\0" % len(b) + b).hexdigest(),
            }
            r["meta"][f]["etag"] = r["meta"][f]["sha256"] if lfs else r["meta"][f]["oid"]
    return repos


def model_info(rid, r):
    return {"_id": "x", "id": rid, "modelId": rid, "sha": r["commit"], "private": False,
            "gated": "manual" if r.get("gated") else False,
            "siblings": [{"rfilename": f} for f in sorted(r["files"])]}


def tree_entries(r):
    entries = []
    for f in sorted(r["files"]):
        m = r["meta"][f]
        e = {"type": "file", "oid": m["oid"], "size": m["size"], "path": f}
        if m["lfs"]:
            e["lfs"] = {"oid": m["sha256"], "size": m["size"], "pointerSize": 134}
        entries.append(e)
    return entries


def write_corpus(repos, out):
    """Seeds for fuzz/fuzz_hub_json.c: the model info and tree listing of each repo, the shard index."""
    os.makedirs(out, exist_ok=True)
    for rid, r in repos.items():
        leaf = rid.replace("/", "--")
        if not r.get("huge"):
            with open(os.path.join(out, "info-" + leaf), "w") as f:
                json.dump(model_info(rid, r), f)
        with open(os.path.join(out, "tree-" + leaf), "w") as f:
            json.dump(tree_entries(r), f)
    with open(os.path.join(out, "index"), "wb") as f:
        f.write(repos["cake-test/sharded-qwen3"]["files"]["model.safetensors.index.json"])


class Hub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"

    def log_message(self, fmt, *args):
        pass

    def log_req(self):
        with self.server.lock:
            with open(self.server.log, "a") as f:
                f.write("%s %s range=%s auth=%s\n" % (self.command, self.path, self.headers.get("Range", "-"),
                                                     "yes" if self.headers.get("Authorization") else "no"))

    def send(self, code, body=b"", headers=None, head=False):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def error(self, code, err_code, msg, head=False):
        body = json.dumps({"error": msg}).encode()
        self.send(code, body, {"Content-Type": "application/json", "X-Error-Code": err_code,
                               "X-Error-Message": msg}, head)

    def repo(self, org, name, head=False):
        rid = org + "/" + name
        r = self.server.repos.get(rid)
        if r is None:
            if self.headers.get("Authorization"):
                self.error(404, "RepoNotFound", "Repository Not Found for url: %s." % self.path, head)
            else:
                self.error(401, "RepoNotFound", "Repository Not Found for url: %s. Please make sure you "
                           "specified the correct repo_id and repo_type. If you are trying to access a private "
                           "or gated repo, make sure you are authenticated." % self.path, head)
        return rid, r

    def rev_ok(self, r, rev, head=False):
        if rev in ("main", r["commit"]):
            return True
        self.error(404, "RevisionNotFound", "Invalid rev id: " + rev, head)
        return False

    def do_HEAD(self):
        self.handle_any(head=True)

    def do_GET(self):
        self.handle_any(head=False)

    def handle_any(self, head):
        self.log_req()
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
        query = urllib.parse.parse_qs(url.query)
        if parts[0] == "_control":
            if "drop" in query:
                self.server.drop = int(query["drop"][0])
            if "trickle" in query:
                self.server.trickle = int(query["trickle"][0])
            return self.send(200, b"ok\n", head=head)
        if parts[0] == "api" and len(parts) >= 6 and parts[1] == "models":
            rid, r = self.repo(parts[2], parts[3], head)
            if r is None:
                return
            rev = urllib.parse.unquote(url.path.split("/")[6]) if len(parts) > 5 else ""
            if not self.rev_ok(r, rev, head):
                return
            if parts[4] == "revision" and len(parts) == 6 and r.get("huge"):
                pad = b" " * ((64 << 20) + 4096)
                body = b'{"sha": "%s", "siblings": [], "pad": "' % r["commit"].encode() + pad + b'"}'
                return self.send(200, body, {"Content-Type": "application/json"}, head)
            if parts[4] == "revision" and len(parts) == 6:
                return self.send(200, json.dumps(model_info(rid, r)).encode(), {"Content-Type": "application/json"},
                                 head)
            if parts[4] == "tree":
                entries = tree_entries(r)
                if query.get("recursive", ["false"])[0] not in ("true", "True", "1"):
                    entries = [e for e in entries if "/" not in e["path"]]
                cursor = int(query.get("cursor", ["0"])[0])
                page = entries[cursor:cursor + 3]
                hdrs = {"Content-Type": "application/json"}
                if cursor + 3 < len(entries):
                    hdrs["Link"] = '<http://127.0.0.1:%d%s?recursive=true&cursor=%d>; rel="next"' % (
                        self.server.server_port, url.path, cursor + 3)
                return self.send(200, json.dumps(page).encode(), hdrs, head)
            return self.error(404, "NotFound", "no such API", head)
        if len(parts) >= 5 and parts[2] == "resolve":
            rid, r = self.repo(parts[0], parts[1], head)
            if r is None or not self.rev_ok(r, parts[3], head):
                return
            fname = "/".join(parts[4:])
            if r.get("gated") and self.headers.get("Authorization") != "Bearer " + TOKEN:
                code = 403 if self.headers.get("Authorization") else 401
                return self.error(code, "GatedRepo", "Access to model %s is restricted. You must have access to "
                                  "it and be authenticated to access it. Please log in." % rid, head)
            if fname not in r["files"]:
                return self.error(404, "EntryNotFound", "%s does not exist on \"%s\"" % (fname, parts[3]), head)
            m = r["meta"][fname]
            hdrs = {"X-Repo-Commit": r["commit"], "Accept-Ranges": "bytes"}
            if m["lfs"]:
                hdrs.update({"ETag": '"%s"' % m["oid"], "X-Linked-Etag": '"%s"' % m["sha256"],
                             "X-Linked-Size": str(m["size"]),
                             "Location": "/cdn/%s/%s" % (urllib.parse.quote(rid.replace("/", "--")),
                                                          urllib.parse.quote(fname))})
                return self.send(302, b"Found. Redirecting", hdrs, head)
            hdrs["ETag"] = '"%s"' % m["oid"]
            return self.send_bytes(r["files"][fname], hdrs, head, fname, droppable=False)
        if parts[0] == "cdn" and len(parts) >= 3:
            rid = parts[1].replace("--", "/", 1)
            r = self.server.repos.get(rid)
            fname = "/".join(parts[2:])
            if r is None or fname not in r["files"]:
                return self.send(404, b"NoSuchKey", head=head)
            body = r["files"][fname]
            if r.get("corrupt") == fname:
                body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
            return self.send_bytes(body, {"ETag": '"%s"' % r["meta"][fname]["sha256"]}, head, fname,
                                   droppable=True)
        return self.send(404, b"Not Found", head=head)

    def send_bytes(self, body, hdrs, head, fname, droppable):
        start, code = 0, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(body):
                return self.send(416, b"", {"Content-Range": "bytes */%d" % len(body)}, head)
            code = 206
            hdrs = dict(hdrs, **{"Content-Range": "bytes %d-%d/%d" % (start, len(body) - 1, len(body))})
        part = body[start:]
        drop = trickle = False
        if droppable and not head and fname == "model.safetensors":
            with self.server.lock:
                if self.server.drop > 0:
                    self.server.drop -= 1
                    drop = True
                elif self.server.trickle > 0:
                    self.server.trickle -= 1
                    trickle = True
        if not drop and not trickle:
            return self.send(code, part, hdrs, head)
        self.send_response(code)
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if trickle:
            self.wfile.write(part[:512])
            self.wfile.flush()
            for i in range(512, len(part), 2):  # ends when the client hangs up (BrokenPipeError)
                time.sleep(1)
                self.wfile.write(part[i:i + 2])
                self.wfile.flush()
            return
        self.wfile.write(part[:len(part) // 2])
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def check_layout(repos, cache, rid, files):
    r = repos[rid]
    d = os.path.join(cache, "models--" + rid.replace("/", "--"))
    problems = []
    with open(os.path.join(d, "refs", "main"), "rb") as f:
        ref = f.read()
    if ref != r["commit"].encode():
        problems.append("refs/main holds %r, want %s" % (ref, r["commit"]))
    snap = os.path.join(d, "snapshots", r["commit"])
    found = set()
    for base, dirs, names in os.walk(snap):
        for n in names:
            found.add(os.path.relpath(os.path.join(base, n), snap))
    if found != set(files):
        problems.append("snapshot has %s, want %s" % (sorted(found), sorted(files)))
    etags = set()
    for f in files:
        p = os.path.join(snap, f)
        m = r["meta"][f]
        etags.add(m["etag"])
        if not os.path.islink(p):
            problems.append("%s is not a symlink" % f)
            continue
        want = "../" * (2 + f.count("/")) + "blobs/" + m["etag"]
        if os.readlink(p) != want:
            problems.append("%s -> %s, want %s" % (f, os.readlink(p), want))
        with open(p, "rb") as fh:
            b = fh.read()
        if len(b) != m["size"] or hashlib.sha256(b).hexdigest() != m["sha256"]:
            problems.append("%s has wrong bytes" % f)
    blobs = set(os.listdir(os.path.join(d, "blobs")))
    if blobs != etags:
        problems.append("blobs are %s, want %s" % (sorted(blobs), sorted(etags)))
    if problems:
        print("layout BAD:\n  " + "\n  ".join(problems))
        sys.exit(1)
    print("layout ok %d" % sum(os.path.getsize(os.path.join(d, "blobs", b)) for b in blobs))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["serve", "manifest", "check-layout", "corpus", "export"])
    ap.add_argument("--data", required=True, action="append", help="a fixture folder; repeat to search several")
    ap.add_argument("--gguf", action="append", default=[], help="a .gguf file of cake-test/tiny-GGUF; repeatable")
    ap.add_argument("--port-file")
    ap.add_argument("--log", default=os.devnull)
    ap.add_argument("--cache")
    ap.add_argument("--repo")
    ap.add_argument("--files")
    ap.add_argument("--out")
    a = ap.parse_args()
    repos = build_repos(a.data, a.gguf)
    if a.mode == "manifest":
        json.dump({k: {"commit": v["commit"], "meta": v["meta"]} for k, v in repos.items()}, sys.stdout, indent=1)
        return
    if a.mode == "corpus":
        return write_corpus(repos, a.out)
    if a.mode == "export":
        for f, b in repos[a.repo]["files"].items():
            p = os.path.join(a.out, f)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as fh:
                fh.write(b)
        return
    if a.mode == "check-layout":
        return check_layout(repos, a.cache, a.repo, a.files.split(","))
    srv = Server(("127.0.0.1", 0), Hub)
    srv.repos, srv.log, srv.drop, srv.trickle, srv.lock = repos, a.log, 0, 0, threading.Lock()
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_port))
    os.rename(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
