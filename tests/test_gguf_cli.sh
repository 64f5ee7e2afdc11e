#!/bin/sh
# test_gguf_cli.sh — GGUF models through the cake CLI: `cake run FILE.gguf` (tokenizer, chat template and
# greedy text from the file alone) equals the safetensors checkpoint it was converted from, byte for byte;
# `cake run ORG/NAME:TAG` picks a GGUF file of a repository in the HF cache (offline); perplexity of a
# GGUF file; clear non-zero exits on broken or ambiguous GGUF models.
# usage: test_gguf_cli.sh CAKE TESTDATA UNPACKED
CAKE=$1 DATA=$2 UNPACKED=$3
ST2GGUF=$(dirname "$CAKE")/st2gguf
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { # check NAME CONDITION-RESULT
    if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}
PROMPT="Explain quantum computing in simple terms."

"$ST2GGUF" "$UNPACKED/qwen3-tiny" "$T/tiny-F32.gguf" F32; check "convert qwen3-tiny to F32" $?
"$ST2GGUF" "$UNPACKED/qwen3-tiny" "$T/tiny-Q8_0.gguf" Q8_0; check "convert qwen3-tiny to Q8_0" $?
"$ST2GGUF" "$UNPACKED/qwen3-tiny" "$T/tiny-Q4_K.gguf" Q4_K 2> "$T/conv.err"
[ $? = 0 ] && grep -q "matrices written as Q8_0 (their rows are not a multiple of Q4_K's block)" "$T/conv.err"
check "a K-quant that does not fit the rows falls back to Q8_0 and says so ($(cat "$T/conv.err"))" $?
# llama.cpp refuses a file whose token list is shorter than the embedding: the list is padded to vocab_size
python3 - "$T/tiny-F32.gguf" <<'PY'
import struct, sys
f = open(sys.argv[1], "rb")
def rd(fmt): return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))[0]
def s(): return f.read(rd("Q")).decode("utf-8", "replace")
size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def skip(t):
    if t == 8: s()
    elif t == 9:
        et, n = rd("I"), rd("Q")
        for _ in range(n): skip(et)
    else: f.read(size[t])
assert f.read(4) == b"GGUF" and rd("I") == 3
rd("Q"); nkv = rd("Q")
for _ in range(nkv):
    key, t = s(), rd("I")
    if key == "tokenizer.ggml.tokens":
        assert t == 9 and rd("I") == 8
        n = rd("Q")
        toks = [s() for _ in range(n)]
        assert n == 151936 and toks[151935] == "[PAD151935]", (n, toks[-1])
        sys.exit(0)
    skip(t)
sys.exit("no tokenizer.ggml.tokens")
PY
check "token list padded to the embedding's rows (151936)" $?
"$CAKE" run "$UNPACKED/qwen3-tiny" "$PROMPT" --temperature 0 -n 24 > "$T/st.txt" 2>/dev/null
"$CAKE" run "$T/tiny-F32.gguf" "$PROMPT" --temperature 0 -n 24 > "$T/gguf.txt" 2> "$T/gguf.err"
check "run FILE.gguf: same greedy text as the safetensors checkpoint" "$(cmp -s "$T/st.txt" "$T/gguf.txt"; echo $?)"
"$CAKE" run "$T/tiny-F32.gguf" "$PROMPT" --system-prompt "" --temperature 0 -n 24 > "$T/greedy.txt" 2>/dev/null
python3 - "$UNPACKED/qwen3-tiny/reference.json" "$T/greedy.txt" <<'PY'
import json, sys
ref = json.load(open(sys.argv[1]))
got = open(sys.argv[2], encoding="utf-8").read()
assert got == ref["greedy_text"], (got, ref["greedy_text"])
PY
check "run FILE.gguf greedy text equals HF's reference" $?
# cake template reads a GGUF file's vocabulary and chat template: the same prompt as the checkpoint's
printf '[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]' > "$T/msgs.json"
"$CAKE" template "$T/tiny-F32.gguf" --messages "$T/msgs.json" > "$T/tmpl_gguf.txt" 2> "$T/tmpl.err" &&
    "$CAKE" template "$UNPACKED/qwen3-tiny" --messages "$T/msgs.json" > "$T/tmpl_dir.txt" && [ -s "$T/tmpl_dir.txt" ] &&
    cmp -s "$T/tmpl_gguf.txt" "$T/tmpl_dir.txt"
check "template FILE.gguf renders what the checkpoint's tokenizer_config.json renders ($(cat "$T/tmpl.err"))" $?

# a GGUF repository in the HF cache, two quantizations: ORG/NAME:TAG picks one
C="$T/hub/models--cake-test--tiny-GGUF"
mkdir -p "$C/refs" "$C/snapshots/0123456789abcdef0123456789abcdef01234567"
printf 0123456789abcdef0123456789abcdef01234567 > "$C/refs/main"
cp "$T/tiny-Q8_0.gguf" "$C/snapshots/0123456789abcdef0123456789abcdef01234567/tiny-Q8_0.gguf"
cp "$T/tiny-F32.gguf" "$C/snapshots/0123456789abcdef0123456789abcdef01234567/tiny-F32.gguf"
HF_HUB_CACHE="$T/hub" HF_HUB_OFFLINE=1 "$CAKE" run cake-test/tiny-GGUF:f32 "$PROMPT" --temperature 0 -n 24 > "$T/hub.txt" 2>/dev/null
check "run ORG/NAME:TAG from the HF cache" "$(cmp -s "$T/st.txt" "$T/hub.txt"; echo $?)"
HF_HUB_CACHE="$T/hub" HF_HUB_OFFLINE=1 "$CAKE" run cake-test/tiny-GGUF:Q8_0 "$PROMPT" --temperature 0 -n 4 > /dev/null 2>&1
check "run ORG/NAME:Q8_0 from the HF cache" $?
HF_HUB_CACHE="$T/hub" HF_HUB_OFFLINE=1 "$CAKE" run cake-test/tiny-GGUF "$PROMPT" -n 4 > /dev/null 2> "$T/amb.err"
rc=$?
check "two GGUF files and no tag: clear error ($(head -c 120 "$T/amb.err"))" "$( [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "several .gguf" "$T/amb.err"; echo $?)"
HF_HUB_CACHE="$T/hub" HF_HUB_OFFLINE=1 "$CAKE" run cake-test/tiny-GGUF:Q5_K "$PROMPT" -n 4 > /dev/null 2> "$T/tag.err"
rc=$?
check "a tag that matches no file: clear error" "$( [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "no .gguf file matches" "$T/tag.err"; echo $?)"

# perplexity of a GGUF file (token ids)
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(' '.join(map(str, r['ppl_ids'])))" \
    "$DATA/llama3-s/reference.json" > "$T/ids.txt"
"$ST2GGUF" "$DATA/llama3-s" "$T/llama-F32.gguf" F32
out=$("$CAKE" perplexity "$T/llama-F32.gguf" "$T/ids.txt" --tokens | tail -n 1)
python3 - "$DATA/llama3-s/reference.json" "$out" <<'PY'
import json, sys, re
ref = json.load(open(sys.argv[1]))
m = re.fullmatch(r"ppl=([0-9.e+-]+) nll=([0-9.e+-]+) n=(\d+)", sys.argv[2])
assert m and abs(float(m[1]) / ref["ppl"] - 1) <= 1e-3, (sys.argv[2], ref["ppl"])
PY
check "perplexity of a Llama GGUF (permuted Q/K, rope_freqs) ($out)" $?

# broken files: truncated, not GGUF, garbage after the magic
head -c 100000 "$T/tiny-Q8_0.gguf" > "$T/trunc.gguf"
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\377' > "$T/garbage.gguf"
for f in trunc garbage; do
    "$CAKE" run "$T/$f.gguf" "hi" -n 2 > /dev/null 2> "$T/$f.err"
    rc=$?
    check "broken GGUF '$f': clear error, no crash ($(head -c 100 "$T/$f.err"))" \
        "$( [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "GGUF" "$T/$f.err"; echo $?)"
done

# architectures cake reads from llama.cpp's files but does not write: the converter says so
"$ST2GGUF" "$DATA/phi3-s" "$T/phi3.gguf" BF16 > /dev/null 2> "$T/phi3.err"
rc=$?
check "converter refuses a read-only architecture ($(head -c 100 "$T/phi3.err"))" \
    "$( [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "read, not written" "$T/phi3.err" && [ ! -s "$T/phi3.gguf" ]; echo $?)"
# a llama.cpp-converted Qwen3.5 file through the CLI: perplexity on token ids (its token list is a
# placeholder) equals HF's on the fixture, on the exact path (the fast one moves it by 0.27 %)
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(' '.join(map(str, r['ppl_ids'])))" \
    "$DATA/qwen3_5-s/reference.json" > "$T/ids35.txt"
out=$("$CAKE" perplexity "$DATA/gguf-llama/qwen3_5-s-bf16.gguf" "$T/ids35.txt" --tokens --exact 2>&1 | tail -n 1)
python3 - "$DATA/qwen3_5-s/reference.json" "$out" <<'PY'
import json, sys, re
ref = json.load(open(sys.argv[1]))
m = re.fullmatch(r"ppl=([0-9.e+-]+) nll=([0-9.e+-]+) n=(\d+)", sys.argv[2])
assert m and abs(float(m[1]) / ref["ppl"] - 1) <= 1e-3, (sys.argv[2], ref["ppl"])
PY
check "perplexity of llama.cpp's qwen35 file = HF's ($out)" $?
exit $fail
