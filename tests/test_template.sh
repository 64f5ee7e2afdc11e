#!/bin/sh
# test_template.sh — `cake template` as a user runs it: every case of chat_templates/cases.json (real
# checkpoints' templates rendered by HF transformers) rendered by the CLI byte for byte (--chat-template-file,
# the special tokens given by --kwargs), error cases exiting non-zero with the template's message; the
# model's own template (qwen3-tiny, a tokenizer-only directory); and `cake run` refusing a template it
# cannot render unless --raw, printing the prompt with --verbose-prompt.
# usage: test_template.sh CAKE TESTDATA UNPACKED
CAKE=$1 DATA=$(cd "$2" && pwd) UNPACKED=$(cd "$3" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { # check NAME CONDITION-RESULT
    if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

# every case through the CLI
python3 - "$CAKE" "$DATA/chat_templates/cases.json" "$T" <<'PY'
import json, os, subprocess, sys
cake, path, tmp = sys.argv[1:4]
d = json.load(open(path, encoding="utf-8"))
env = dict(os.environ, SOURCE_DATE_EPOCH="1721995200")
ok = total = 0
for name, t in d["templates"].items():
    tf = os.path.join(tmp, "t.jinja")
    open(tf, "w", encoding="utf-8").write(t["template"])
    for c in t["cases"]:
        total += 1
        mf, tl = os.path.join(tmp, "m.json"), os.path.join(tmp, "tools.json")
        json.dump(c["messages"], open(mf, "w", encoding="utf-8"), ensure_ascii=False)
        json.dump(d["tools"], open(tl, "w", encoding="utf-8"))
        kw = dict(d["special_tokens"], date_string="26 Jul 2024", documents=None, **c["kwargs"])
        cmd = [cake, "template", "--chat-template-file", tf, "--messages", mf, "--kwargs", json.dumps(kw)]
        if c["with_tools"]: cmd += ["--tools", tl]
        if not c["add_generation_prompt"]: cmd += ["--no-generation-prompt"]
        r = subprocess.run(cmd, capture_output=True, env=env)
        if "expected" in c:
            good = r.returncode == 0 and r.stdout == c["expected"].encode("utf-8")
        else:
            good = r.returncode == 1 and r.stdout == b"" and r.stderr.startswith(b"cake template: ")
        if not good: print("  %s/%s: rc=%d %r" % (name, c["id"], r.returncode, r.stderr[:200]))
        ok += good
print("cli cases: %d/%d" % (ok, total))
sys.exit(0 if ok == total == 200 else 1)
PY
check "cake template: every case of cases.json" $?

# a raised error: exact message, non-zero, nothing on stdout
printf '[{"role": "user", "content": "hi"}]' > "$T/m.json"
printf '{%% for m in messages %%}{{ raise_exception("Roles must be " ~ m.role ~ "!") }}{%% endfor %%}' > "$T/raise.jinja"
out=$("$CAKE" template --chat-template-file "$T/raise.jinja" --messages "$T/m.json" 2> "$T/err"); rc=$?
[ $rc = 1 ] && [ -z "$out" ] && [ "$(cat "$T/err")" = "cake template: Roles must be user!" ]
check "cake template: raise_exception message and exit 1" $?

# a model's own template (tokenizer-only directory: tokenizer.json + tokenizer_config.json)
mkdir -p "$T/tok"
cp "$UNPACKED/qwen3-tiny/tokenizer.json" "$UNPACKED/qwen3-tiny/tokenizer_config.json" "$T/tok/"
printf '[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]' > "$T/m2.json"
"$CAKE" template "$T/tok" --messages "$T/m2.json" --kwargs '{"enable_thinking": false}' > "$T/out.txt"
printf '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n' > "$T/want.txt"
cmp -s "$T/out.txt" "$T/want.txt"
check "cake template: the model's own template (qwen3-tiny, enable_thinking=false)" $?
"$CAKE" template "$T/tok" --messages "$T/m2.json" --no-generation-prompt > "$T/out.txt"
printf '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n' > "$T/want.txt"
cmp -s "$T/out.txt" "$T/want.txt"
check "cake template: --no-generation-prompt" $?
"$CAKE" template "$T/tok" --messages "$T/missing.json" > /dev/null 2>&1; [ $? = 1 ]
check "cake template: missing messages file" $?
printf '{"role": "user"}' > "$T/notarray.json"
"$CAKE" template "$T/tok" --messages "$T/notarray.json" > /dev/null 2>&1; [ $? = 1 ]
check "cake template: messages not an array" $?
printf '[{"role": "user", "content": "Hi \\u0000 there"}]' > "$T/nul.json"
"$CAKE" template "$T/tok" --messages "$T/nul.json" > /dev/null 2> "$T/err"; [ $? = 1 ] && grep -q "U+0000" "$T/err"
check "cake template: U+0000 in a message is refused, not cut ($(cat "$T/err"))" $?
"$CAKE" template "$T/tok" > /dev/null 2>&1; [ $? = 2 ]
check "cake template: --messages required" $?

# HF's named templates (tokenizer_config.json chat_template: [{name, template}]): "default", and "tool_use"
# when tools are given (an empty list too); in a GGUF file (st2gguf) as tokenizer.chat_template.tool_use
mkdir -p "$T/named"
cp "$UNPACKED/qwen3-tiny/tokenizer.json" "$T/named/"
python3 - "$UNPACKED/qwen3-tiny/tokenizer_config.json" "$T" <<'PY'
import json, os, sys
c = json.load(open(sys.argv[1]))
def put(d, v):
    os.makedirs(os.path.join(sys.argv[2], d), exist_ok=True)
    json.dump(dict(c, chat_template=v), open(os.path.join(sys.argv[2], d, "tokenizer_config.json"), "w"))
put("named", [{"name": "default", "template": "D:{{ messages|length }}"}, {"name": "tool_use", "template": "T:{{ tools|length }}"},
              {"name": "rag", "template": "R"}])
put("nodefault", [{"name": "tool_use", "template": "T"}, {"name": "rag", "template": "R"}])
put("number", 42)
put("badentry", [{"name": "default"}])
json.dump([{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "g"}}],
          open(os.path.join(sys.argv[2], "tools.json"), "w"))
open(os.path.join(sys.argv[2], "empty.json"), "w").write("[]")
PY
[ "$("$CAKE" template "$T/named" --messages "$T/m2.json")" = "D:2" ]
check "cake template: a named list's default" $?
[ "$("$CAKE" template "$T/named" --messages "$T/m2.json" --tools "$T/tools.json")" = "T:2" ] &&
    [ "$("$CAKE" template "$T/named" --messages "$T/m2.json" --tools "$T/empty.json")" = "T:0" ]
check "cake template: a named list's tool_use when tools are given" $?
[ "$("$CAKE" template "$T/named" --messages "$T/m2.json" --tools "$T/tools.json" --chat-template-file "$T/raise.jinja" 2>&1)" = \
    "cake template: Roles must be system!" ]
check "cake template: --chat-template-file serves tool requests too" $?
for f in "$UNPACKED/qwen3-tiny"/*; do case $f in *tokenizer_config.json) ;; *) ln -sf "$f" "$T/named/";; esac; done
"$(dirname "$CAKE")/st2gguf" "$T/named" "$T/named.gguf" Q8_0 > /dev/null 2>&1 &&
    [ "$("$CAKE" template "$T/named.gguf" --messages "$T/m2.json")" = "D:2" ] &&
    [ "$("$CAKE" template "$T/named.gguf" --messages "$T/m2.json" --tools "$T/tools.json")" = "T:2" ]
check "cake template: named templates through GGUF (tokenizer.chat_template.tool_use)" $?
for d in nodefault number badentry; do cp "$UNPACKED/qwen3-tiny/tokenizer.json" "$T/$d/"; done
"$CAKE" template "$T/nodefault" --messages "$T/m2.json" > "$T/out.txt" 2> "$T/err"; rc=$?
[ $rc = 1 ] && [ ! -s "$T/out.txt" ] && grep -q "names templates \['tool_use', 'rag'\] but none \"default\"" "$T/err"
check "cake template: a named list without default is refused ($(head -n 1 "$T/err"))" $?
"$CAKE" template "$T/number" --messages "$T/m2.json" > /dev/null 2> "$T/err"; rc=$?
[ $rc = 1 ] && grep -q "chat_template is a number, not a string or a list" "$T/err"
check "cake template: chat_template of another type is refused ($(head -n 1 "$T/err"))" $?
"$CAKE" template "$T/badentry" --messages "$T/m2.json" > /dev/null 2> "$T/err"; rc=$?
[ $rc = 1 ] && grep -q 'chat_template\[0\] is not {"name": string, "template": string}' "$T/err"
check "cake template: a malformed named entry is refused ($(head -n 1 "$T/err"))" $?
for f in "$UNPACKED/qwen3-tiny"/*; do case $f in *tokenizer_config.json) ;; *) ln -sf "$f" "$T/number/";; esac; done
"$CAKE" run "$T/number" "Hi" -n 2 --temperature 0 > /dev/null 2> "$T/err"; rc=$?
[ $rc = 1 ] && grep -q "chat_template is a number" "$T/err" && "$CAKE" run "$T/number" "Hi" -n 2 --temperature 0 --raw > /dev/null 2>&1
check "cake run: a malformed chat_template stops the run, --raw runs" $?

# cake run: a checkpoint template that does not parse stops the run; --raw still runs
mkdir -p "$T/broken"
for f in "$UNPACKED/qwen3-tiny"/*; do ln -s "$f" "$T/broken/"; done
rm "$T/broken/tokenizer_config.json"
python3 - "$UNPACKED/qwen3-tiny/tokenizer_config.json" "$T/broken/tokenizer_config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["chat_template"] = "{% for m in messages %}{{ m.content }"
json.dump(c, open(sys.argv[2], "w"))
PY
"$CAKE" run "$T/broken" "Hi" -n 2 --temperature 0 > /dev/null 2> "$T/err"; rc=$?
[ $rc = 1 ] && grep -q "chat template cannot be rendered: template line 1" "$T/err"
check "cake run: unrenderable template refused ($(head -n 1 "$T/err"))" $?
"$CAKE" run "$T/broken" "Hi" -n 2 --temperature 0 --raw > /dev/null 2>&1
check "cake run: --raw runs without the template" $?
"$CAKE" run "$T/broken" "Hi" -n 2 --temperature 0 --chat-template-file "$T/raise.jinja" > /dev/null 2> "$T/err"; rc=$?
[ $rc = 1 ] && grep -q "Roles must be system!" "$T/err"
check "cake run: a template that raises stops the run" $?

# --verbose-prompt: the rendered prompt and its ids on stderr
"$CAKE" run "$UNPACKED/qwen3-tiny" "Hi" -n 1 --temperature 0 --system-prompt "" --verbose-prompt > /dev/null 2> "$T/err"
grep -q "^prompt ids: 151644 872 198 13048 151645 198 151644 77091 198$" "$T/err" && grep -q "^<|im_start|>user$" "$T/err"
check "cake run --verbose-prompt" $?

exit $fail
