#!/bin/sh
# test_cake_tiny.sh CAKE TESTDATA UNPACKED
# Checks cake on the bundled model models/cake-tiny against the numbers that tools/train_tiny.py saved from
# HF transformers (float64) in models/cake-tiny/reference.json:
#   - `cake perplexity` on heldout.txt: same number of scored tokens, perplexity within 0.1 % of HF's;
#   - `cake run ... --temperature 0 -n 32` on each reference prompt: stdout is exactly the decoded greedy
#     continuation (generated text only, no prompt echo; one trailing newline after it is allowed).
# Only the first argument is used; the test data directories are not needed.
set -u
CAKE=${1:?usage: test_cake_tiny.sh CAKE [TESTDATA UNPACKED]}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
M="$ROOT/models/cake-tiny"
REF="$M/reference.json"
for f in config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json heldout.txt \
         reference.json; do
    [ -f "$M/$f" ] || { echo "FAIL: missing $M/$f"; exit 1; }
done
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
fail=0

# ---- perplexity on the held-out slice
if "$CAKE" perplexity "$M" "$M/heldout.txt" >"$TMP/ppl.out" 2>"$TMP/ppl.err"; then
    python3 - "$REF" "$TMP/ppl.out" <<'EOF' || fail=1
import json, math, re, sys
ref = json.load(open(sys.argv[1]))
lines = [l for l in open(sys.argv[2], encoding="utf-8", errors="replace").read().splitlines() if l.strip()]
last = lines[-1].strip() if lines else ""
m = re.fullmatch(r"ppl=(\S+) nll=(\S+) n=(\d+)", last)
if not m:
    print(f"FAIL perplexity: last stdout line {last!r} is not 'ppl=<float> nll=<float> n=<int>'")
    sys.exit(1)
ppl, nll, n = float(m.group(1)), float(m.group(2)), int(m.group(3))
ok = True
if n != ref["n_scored"]:
    print(f"FAIL perplexity: n={n}, HF scored {ref['n_scored']} tokens")
    ok = False
rel = abs(ppl / ref["ppl"] - 1) if math.isfinite(ppl) else float("inf")
if not rel <= 1e-3:
    print(f"FAIL perplexity: ppl={ppl!r} vs HF {ref['ppl']:.6f} (relative difference {rel:.3g} > 1e-3)")
    ok = False
if ok:
    print(f"ok perplexity: ppl={ppl} nll={nll} n={n} (HF: ppl={ref['ppl']:.6f} nll={ref['mean_nll']:.8f}, "
          f"relative difference {rel:.2g})")
sys.exit(0 if ok else 1)
EOF
else
    echo "FAIL perplexity: '$CAKE perplexity' exited with status $?"
    cat "$TMP/ppl.err"
    fail=1
fi

# ---- greedy continuations
n_prompts=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["greedy"]))' "$REF") || exit 1
[ "$n_prompts" -gt 0 ] || { echo "FAIL: reference.json has no greedy prompts"; exit 1; }
i=0
while [ "$i" -lt "$n_prompts" ]; do
    python3 - "$REF" "$i" "$TMP/prompt" <<'EOF' || exit 1
import json, sys
g = json.load(open(sys.argv[1]))["greedy"][int(sys.argv[2])]
open(sys.argv[3], "w", encoding="utf-8").write(g["prompt"])
EOF
    prompt=$(cat "$TMP/prompt")
    if "$CAKE" run "$M" "$prompt" --temperature 0 -n 32 >"$TMP/gen.out" 2>"$TMP/gen.err"; then
        python3 - "$REF" "$i" "$TMP/gen.out" <<'EOF' || fail=1
import json, sys
g = json.load(open(sys.argv[1]))["greedy"][int(sys.argv[2])]
got = open(sys.argv[3], "rb").read()
want = g["text"].encode("utf-8")
if got == want or got == want + b"\n":
    print(f"ok greedy {g['prompt']!r}")
    sys.exit(0)
print(f"FAIL greedy {g['prompt']!r}:\n  cake: {got.decode('utf-8', 'replace')!r}\n  HF:   {g['text']!r}")
print(f"  (HF's smallest top1-top2 logit margin on this continuation: {min(g['margins']):.4f})")
sys.exit(1)
EOF
    else
        echo "FAIL greedy '$prompt': '$CAKE run' exited with status $?"
        cat "$TMP/gen.err"
        fail=1
    fi
    i=$((i + 1))
done

if [ "$fail" -ne 0 ]; then
    echo "test_cake_tiny: FAILED"
    exit 1
fi
echo "test_cake_tiny: all checks passed"
