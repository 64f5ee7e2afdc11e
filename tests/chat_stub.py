#!/usr/bin/env python3
"""chat_stub.py -- a tiny OpenAI-compatible chat server, Python 3 stdlib only, for the frontend tests
(tests/test_chat_tui.sh). Listens on 127.0.0.1 with an ephemeral port written to
--port-file, and answers in OpenAI's streaming shapes (role chunk, content chunks, a final chunk with
finish_reason and usage, "data: [DONE]").

Modes (--mode):
  think   every reply streams "<think>", "Weighing the options", " carefully.", then waits until
          GET /_release (at most 30 s), then "</think>", "\\n\\nThe answer", " is 42.", usage 7/9 tokens.
          Deterministic: the test looks at the screen while the reasoning is open.
  slow    every reply streams "tick N " every 0.2 s for at most 60 s; a client that goes away is logged
          as "disconnected after N ticks" in --log.
  reason  every reply streams its reasoning apart, as llama-server and vLLM do (delta.reasoning_content
          "Weighing", " it."), then the answer (delta.content "Forty", "-two."), and reports no usage.
Every mode answers GET /v1/models with one model (--model-id) and logs each request to --log.
"""
import argparse
import json
import os
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
            {"think": self.think, "slow": self.slow, "reason": self.reason}[ARGS.mode](req)
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

    def reason(self, req):
        self.event(chunk({"role": "assistant", "content": ""}))
        for piece in ("Weighing", " it."):
            self.event(chunk({"reasoning_content": piece}))
        for piece in ("Forty", "-two."):
            self.event(chunk({"content": piece}))
        self.event(chunk({}, "stop"))
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


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["think", "slow", "reason"], required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--model-id", default="stub")
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
