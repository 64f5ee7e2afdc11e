#!/usr/bin/env python3
"""check_templates.py — differential check of `cake template` against Jinja2 set up as HF transformers'
chat-template renderer (tools/jinja_ref.py): every given template file is rendered over the conversations
of tests/data/chat_templates/cases.json plus a few harder ones (content parts, empty, assistant last,
several tool calls with string and object arguments, non-ASCII), with and without tools; outputs must be
byte-identical and a conversation the template refuses must fail in both.
usage: python3 tools/check_templates.py build/cake TEMPLATE.jinja ...   (needs python3-jinja2)"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jinja_ref import make_env  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
EXTRA = [
    {"id": "parts", "messages": [{"role": "system", "content": [{"type": "text", "text": "Sys part"}]},
                                 {"role": "user", "content": [{"type": "text", "text": "Look"}, {"type": "image"},
                                                              {"type": "text", "text": " here"}]}],
     "add_generation_prompt": True, "kwargs": {}, "with_tools": False},
    {"id": "only_system", "messages": [{"role": "system", "content": "S"}], "add_generation_prompt": True,
     "kwargs": {}, "with_tools": False},
    {"id": "empty", "messages": [], "add_generation_prompt": True, "kwargs": {}, "with_tools": False},
    {"id": "assistant_last", "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "Part"}],
     "add_generation_prompt": False, "kwargs": {}, "with_tools": False},
    {"id": "tool_calls", "messages": [
        {"role": "system", "content": "You help."}, {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "abcdefghi", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
            {"id": "bcdefghij", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Rome", "unit": "c", "n": 2.5, "t": 1.0, "k": 3, "ok": True}}}]},
        {"role": "tool", "tool_call_id": "abcdefghi", "name": "get_weather", "content": "21"},
        {"role": "tool", "tool_call_id": "bcdefghij", "name": "get_weather", "content": "25"},
        {"role": "assistant", "content": "Paris 21, Rome 25."}, {"role": "user", "content": "Thanks"}],
     "add_generation_prompt": True, "kwargs": {}, "with_tools": True},
    {"id": "kwargs_tools", "messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": True,
     "kwargs": {"enable_thinking": True, "reasoning_effort": "high"}, "with_tools": True},
    {"id": "unicode", "messages": [{"role": "user", "content": "\u00a0nbsp\u2028ls \U0001F600 \t tab \\ \"q\" </s>"}],
     "add_generation_prompt": True, "kwargs": {}, "with_tools": False},
]


def main():
    cake, paths = sys.argv[1], sys.argv[2:]
    d = json.load(open(os.path.join(HERE, "..", "tests", "data", "chat_templates", "cases.json"), encoding="utf-8"))
    convs = list(d["templates"].values())[0]["cases"] + EXTRA
    env, ok, total = make_env(), 0, 0
    run_env = dict(os.environ, SOURCE_DATE_EPOCH="1721995200")  # the date strftime_now() gives in jinja_ref
    with tempfile.TemporaryDirectory() as tmp:
        mf, tf = os.path.join(tmp, "m.json"), os.path.join(tmp, "t.json")
        json.dump(d["tools"], open(tf, "w"))
        for path in paths:
            try:
                tmpl = env.from_string(open(path, encoding="utf-8").read())
            except Exception as e:  # noqa: BLE001
                print("skip %s: Jinja2 cannot parse it (%s)" % (path, e))
                continue
            for c in convs:
                kw = dict(d["special_tokens"], date_string="26 Jul 2024", **c["kwargs"])
                tools = d["tools"] if c["with_tools"] else None
                try:
                    want = tmpl.render(messages=c["messages"], tools=tools, documents=None,
                                       add_generation_prompt=c["add_generation_prompt"], **kw).encode("utf-8")
                except Exception:  # noqa: BLE001 — the template refuses this conversation
                    want = None
                json.dump(c["messages"], open(mf, "w"))
                cmd = [cake, "template", "--chat-template-file", path, "--messages", mf, "--kwargs", json.dumps(kw)]
                cmd += ["--tools", tf] if c["with_tools"] else []
                cmd += [] if c["add_generation_prompt"] else ["--no-generation-prompt"]
                r = subprocess.run(cmd, capture_output=True, env=run_env)
                good = (r.returncode != 0) if want is None else (r.returncode == 0 and r.stdout == want)
                total += 1
                ok += good
                if not good:
                    print("FAIL %s / %s: rc=%d %s" % (path, c["id"], r.returncode, r.stderr.decode()[:300]))
    print("%d/%d renders identical" % (ok, total))
    return 0 if ok == total else 1


if __name__ == "__main__":
    sys.exit(main())
