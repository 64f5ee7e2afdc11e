#!/usr/bin/env python3
"""chat_stub.py -- a tiny OpenAI-compatible chat server, Python 3 stdlib only, for the frontend tests
(tests/test_chat_tui.sh, tests/test_web_ui.sh). Listens on 127.0.0.1 with an ephemeral port written to
--port-file, and answers in OpenAI's streaming shapes (role chunk, content chunks, a final chunk with
finish_reason and usage, "data: [DONE]").

Modes (--mode):
  think   every reply streams "<think>", "Weighing the options", " carefully.", then waits until
          GET /_release (at most 30 s), then "</think>", "\\n\\nThe answer", " is 42.", usage 7/9 tokens.
          Deterministic: the test looks at the screen while the reasoning is open.
  slow    every reply streams "tick N " every 0.2 s for at most 60 s; a client that goes away is logged
          as "disconnected after N ticks" in --log.
  cake    a stand-in for `cake serve` while it is not built: GET / serves --page, GET /api/v1/topology a
          canned one-node topology, and a chat request runs `CAKE run MODEL <last user message>` with the
          request's system message (none by default), temperature and max_tokens, streaming its stdout
          as content chunks and its token counts as usage. Only the last user message is used.
Every mode answers GET /v1/models with one model (--model-id) and logs each request to --log.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
RELEASE = threading.Event()
LOG_LOCK = threading.Lock()


def log(line):
    if ARGS.log:
        with LOG_LOCK, open(ARGS.log, "a") as f:
            f.write(line + "\n")


def chunk(delta, finish=None, usage=None):
    c = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": ARGS.model_id,
         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        c["usage"] = usage
    return c


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the stream ends when the connection closes

    def log_message(self, fmt, *a):
        pass

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def event(self, obj):
        data = obj if isinstance(obj, str) else json.dumps(obj)
        self.wfile.write(("data: " + data + "\n\n").encode())
        self.wfile.flush()

    def do_GET(self):
        log("GET " + self.path)
        if self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [
                {"id": ARGS.model_id, "object": "model", "created": 0, "owned_by": "cake"}]})
        elif self.path == "/_release":
            RELEASE.set()
            self.send_json(200, {"released": True})
        elif self.path == "/api/v1/topology" and ARGS.mode == "cake":
            self.send_json(200, topology())
        elif self.path == "/" and ARGS.mode == "cake" and ARGS.page:
            body = open(ARGS.page, "rb").read()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(n))
        except ValueError:
            return self.send_json(400, {"error": {"message": "malformed JSON", "type": "invalid_request_error"}})
        log("POST " + self.path + " " + json.dumps(req, sort_keys=True))
        if self.path != "/v1/chat/completions":
            return self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        try:
            {"think": self.think, "slow": self.slow, "cake": self.cake}[ARGS.mode](req)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def think(self, req):
        self.event(chunk({"role": "assistant", "content": ""}))
        for piece in ("<think>", "Weighing the options", " carefully."):
            self.event(chunk({"content": piece}))
        RELEASE.wait(30)
        RELEASE.clear()
        for piece in ("</think>", "\n\nThe answer", " is 42."):
            self.event(chunk({"content": piece}))
        self.event(chunk({}, "stop", {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}))
        self.event("[DONE]")

    def slow(self, req):
        self.event(chunk({"role": "assistant", "content": ""}))
        ticks = 0
        try:
            while ticks < 300:
                self.event(chunk({"content": "tick %d " % ticks}))
                ticks += 1
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            log("disconnected after %d ticks" % ticks)
            raise
        self.event(chunk({}, "length"))
        self.event("[DONE]")

    def cake(self, req):
        msgs = req.get("messages") or []
        user = [m.get("content", "") for m in msgs if m.get("role") == "user"]
        system = "".join(m.get("content", "") for m in msgs if m.get("role") == "system")
        cmd = [ARGS.cake, "run", ARGS.model, user[-1] if user else "", "--system-prompt", system,
               "--temperature", str(req.get("temperature", 1.0)),
               "-n", str(req.get("max_tokens") or req.get("max_completion_tokens") or 2048)]
        if req.get("seed") is not None:
            cmd += ["--seed", str(req["seed"])]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.event(chunk({"role": "assistant", "content": ""}))
        pending = b""
        try:
            while True:
                b = p.stdout.read1(4096)
                if not b:
                    break
                pending += b
                text = pending.decode("utf-8", "ignore")  # whole characters only
                cut = len(text.encode())
                pending = pending[cut:]
                if text:
                    self.event(chunk({"content": text}))
        except (BrokenPipeError, ConnectionResetError):
            p.kill()
            raise
        err = p.stderr.read().decode("utf-8", "replace")
        p.wait()
        pt = re.search(r"prompt: (\d+) tokens", err)
        gt = re.search(r"generated: (\d+) tokens", err)
        ng = int(gt[1]) if gt else 0
        finish = "length" if ng >= int(cmd[cmd.index("-n") + 1]) else "stop"
        usage = {"prompt_tokens": int(pt[1]) if pt else 0, "completion_tokens": ng}
        usage["total_tokens"] = usage["prompt_tokens"] + ng
        self.event(chunk({}, finish, usage))
        self.event("[DONE]")


def topology():
    n = json.load(open(os.path.join(ARGS.model, "config.json")))["num_hidden_layers"]
    return {"model": ARGS.model_id, "n_layers": n,
            "master": {"name": "master", "backend": "cpu", "layers": [0, n - 1], "embed": True, "head": True,
                       "memory_bytes": os.path.getsize(os.path.join(ARGS.model, "model.safetensors"))},
            "workers": []}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["think", "slow", "cake"], required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--model-id", default="stub")
    ap.add_argument("--cake")
    ap.add_argument("--model")
    ap.add_argument("--page")
    ARGS = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.replace(tmp, ARGS.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
