#!/usr/bin/env bash
# cake_vs_llama.sh — time cake and an already-built llama-bench on the same weights, alternately,
# and print the medians. Used for docs/benchmarks.md; builds nothing.
#
# usage: bench/cake_vs_llama.sh CAKE MODEL_DIR LLAMA_BENCH BF16_GGUF [Q8_0_GGUF]
#   CAKE         the cake binary (e.g. build/cake)
#   MODEL_DIR    HF checkpoint (bf16 safetensors) that cake runs
#   LLAMA_BENCH  a llama-bench binary
#   BF16_GGUF    the same weights as a bf16 GGUF; Q8_0_GGUF (optional) is timed on llama.cpp only
# env: ROUNDS (default 5), THREADS (default 2), NGEN (default 64), NPROMPT (default 128)
set -euo pipefail

if [ $# -lt 4 ]; then
    sed -n '4,10p' "$0" >&2
    exit 2
fi
CAKE=$1 MODEL=$2 LLB=$3 GGUF=$4 GGUF_Q8=${5:-}
ROUNDS=${ROUNDS:-5} THREADS=${THREADS:-2} NGEN=${NGEN:-64} NPROMPT=${NPROMPT:-128}
export OMP_NUM_THREADS=$THREADS

# A prose prompt of about NPROMPT tokens for cake's prefill (about one Qwen3 token per word; cake
# reports the exact count; llama-bench uses NPROMPT random tokens).
WORDS="the history of the printing press begins with movable type invented in east asia and later \
refined in europe where it changed how books letters pamphlets and newspapers were made and read by \
ordinary people across many countries during the following centuries of trade science and religion"
PROMPT=""
while [ "$(wc -w <<<"$PROMPT")" -lt $((NPROMPT - 2)) ]; do PROMPT="$PROMPT $WORDS"; done
PROMPT=$(cut -d' ' -f2-$((NPROMPT - 1)) <<<"$PROMPT")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cake_run() { # prompt ngen -> stderr summary in $tmp/cake.err
    "$CAKE" run "$MODEL" "$1" --temperature 0 --raw -n "$2" >/dev/null 2>"$tmp/cake.err"
}
num() { sed -n "s/.*$1 [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p" "$tmp/cake.err"; }
llama_run() { # gguf p n -> avg tok/s
    "$LLB" -m "$1" -p "$2" -n "$3" -t "$THREADS" -r 3 -o csv 2>/dev/null |
        awk -F, 'NR==1 { for (i = 1; i <= NF; i++) if ($i ~ /avg_ts/) c = i; next }
                 { gsub(/"/, "", $c); print $c }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: >"$tmp/log"
for r in $(seq 1 "$ROUNDS"); do
    cake_run "The quick brown fox jumps over the lazy dog." "$NGEN"
    grep -q "generated: $NGEN tokens" "$tmp/cake.err" || echo "warning: cake stopped early: $(grep generated "$tmp/cake.err")" >&2
    cd_=$(num decode)
    parts=$(sed -n 's/^time: //p' "$tmp/cake.err")
    echo "cake_tg $cd_" >>"$tmp/log"
    echo "cake_parts $parts" >>"$tmp/log"
    lt=$(llama_run "$GGUF" 0 "$NGEN")
    echo "llama_tg $lt" >>"$tmp/log"
    cake_run "$PROMPT" 1
    cp_=$(num prefill)
    ntok=$(sed -n 's/^prompt: \([0-9]*\) tokens.*/\1/p' "$tmp/cake.err")
    echo "cake_pp $cp_" >>"$tmp/log"
    lp=$(llama_run "$GGUF" "$NPROMPT" 0)
    echo "llama_pp $lp" >>"$tmp/log"
    line="round $r: cake tg $cd_ pp $cp_ ($ntok tok) | llama.cpp bf16 tg $lt pp $lp"
    if [ -n "$GGUF_Q8" ]; then
        qt=$(llama_run "$GGUF_Q8" 0 "$NGEN") qp=$(llama_run "$GGUF_Q8" "$NPROMPT" 0)
        echo "q8_tg $qt" >>"$tmp/log"
        echo "q8_pp $qp" >>"$tmp/log"
        line="$line | llama.cpp q8_0 tg $qt pp $qp"
    fi
    echo "$line"
    echo "  cake decode parts: $parts"
done

med() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/log" | median; }
ct=$(med cake_tg) cp=$(med cake_pp) lt=$(med llama_tg) lp=$(med llama_pp)
echo
echo "medians over $ROUNDS rounds, $THREADS threads (tok/s):"
printf '| %-10s | %-7s | %12s | %12s |\n' engine weights "prefill" "decode"
printf '| %-10s | %-7s | %12s | %12s |\n' cake bf16 "$cp" "$ct"
printf '| %-10s | %-7s | %12s | %12s |\n' llama.cpp bf16 "$lp" "$lt"
if [ -n "$GGUF_Q8" ]; then
    printf '| %-10s | %-7s | %12s | %12s |\n' llama.cpp q8_0 "$(med q8_pp)" "$(med q8_tg)"
fi
awk -v a="$cp" -v b="$lp" -v c="$ct" -v d="$lt" \
    'BEGIN { printf "cake / llama.cpp (bf16): prefill %.2f, decode %.2f\n", a / b, c / d }'
