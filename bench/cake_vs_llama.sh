#!/usr/bin/env bash
# cake_vs_llama.sh — time cake (`cake bench`) and an already-built llama-bench on the same weights,
# alternately, round by round, and summarize each engine's speed and the MEDIAN OF THE PER-ROUND
# RATIOS cake / llama.cpp (on a shared machine the bandwidth state drifts between rounds: only ratios
# of back-to-back runs mean anything; the ratio of the medians is not printed). Builds nothing.
#
# usage: bench/cake_vs_llama.sh CAKE MODEL LLAMA_BENCH GGUF [GGUF_Q8]
#   CAKE         the cake binary (e.g. build/cake)
#   MODEL        what cake runs: an HF checkpoint directory (bf16 safetensors) or a .gguf file
#   LLAMA_BENCH  a llama-bench binary
#   GGUF         the same weights as GGUF for llama.cpp; GGUF_Q8 (optional): a q8_0 GGUF, run by
#                llama.cpp, and by cake too when CAKE_Q8=1 (cake then runs GGUF_Q8 itself)
# env: ROUNDS (default 5), THREADS (default 2), NGEN (default 64), NPROMPT (default "128 512"),
#      DEPTH (default 0), REPS (default 3, per test and engine in each round), CAKE_FLAGS (e.g. --exact),
#      LLAMA_FLAGS (e.g. "-ngl 99" on a GPU machine, where a CUDA build of cake runs on device 0 itself)
set -euo pipefail

if [ $# -lt 4 ]; then
    sed -n '2,15p' "$0" >&2
    exit 2
fi
CAKE=$1 MODEL=$2 LLB=$3 GGUF=$4 GGUF_Q8=${5:-}
ROUNDS=${ROUNDS:-5} THREADS=${THREADS:-2} NGEN=${NGEN:-64} NPROMPT=${NPROMPT:-128 512} DEPTH=${DEPTH:-0}
REPS=${REPS:-3} CAKE_FLAGS=${CAKE_FLAGS:-} LLAMA_FLAGS=${LLAMA_FLAGS:-} CAKE_Q8=${CAKE_Q8:-0}
export OMP_NUM_THREADS=$THREADS

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

json() { tail -n 1 "$tmp/cake.out" | python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }
cake_pp() { # model n -> tok/s
    "$CAKE" bench "$1" -t "$THREADS" -p "$2" -n 0 -d "$DEPTH" -r "$REPS" --bandwidth-mb 256 --json $CAKE_FLAGS \
        >"$tmp/cake.out" 2>"$tmp/cake.err" || { cat "$tmp/cake.err" >&2; exit 1; }
    json pp_tok_s
}
cake_tg() { # model -> tok/s; also leaves the bandwidth and roofline in $tmp/cake.out
    "$CAKE" bench "$1" -t "$THREADS" -p 0 -n "$NGEN" -d "$DEPTH" -r "$REPS" --json $CAKE_FLAGS \
        >"$tmp/cake.out" 2>"$tmp/cake.err" || { cat "$tmp/cake.err" >&2; exit 1; }
    json tg_tok_s
}
llama_run() { # gguf p n -> avg tok/s
    "$LLB" -m "$1" -p "$2" -n "$3" -d "$DEPTH" -t "$THREADS" -r "$REPS" $LLAMA_FLAGS -o csv 2>/dev/null |
        awk -F, 'NR==1 { for (i = 1; i <= NF; i++) if ($i ~ /avg_ts/) c = i; next }
                 { gsub(/"/, "", $c); print $c }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }'; }

# one line per measurement in $tmp/log: KEY VALUE (KEY: test_engine, e.g. tg_cake, pp128_llama, tg_ratio)
: >"$tmp/log"
pair() { # key cake_value llama_value
    echo "$1_cake $2" >>"$tmp/log"
    echo "$1_llama $3" >>"$tmp/log"
    echo "$1_ratio $(ratio "$2" "$3")" >>"$tmp/log"
}
for r in $(seq 1 "$ROUNDS"); do
    ct=$(cake_tg "$MODEL")
    bw=$(json bandwidth_gbs) roof=$(json roofline_tg_tok_s)
    lt=$(llama_run "$GGUF" 0 "$NGEN")
    pair tg "$ct" "$lt"
    echo "bw $bw" >>"$tmp/log"
    echo "roof $roof" >>"$tmp/log"
    line="round $r: bandwidth $bw GB/s (roofline $roof tok/s) | tg$NGEN cake $ct llama $lt ($(ratio "$ct" "$lt"))"
    for p in $NPROMPT; do
        cp_=$(cake_pp "$MODEL" "$p")
        lp=$(llama_run "$GGUF" "$p" 0)
        pair "pp$p" "$cp_" "$lp"
        line="$line | pp$p cake $cp_ llama $lp ($(ratio "$cp_" "$lp"))"
    done
    if [ -n "$GGUF_Q8" ]; then
        qt=$(llama_run "$GGUF_Q8" 0 "$NGEN") qp=$(llama_run "$GGUF_Q8" "${NPROMPT%% *}" 0)
        if [ "$CAKE_Q8" = 1 ]; then
            cqt=$(cake_tg "$GGUF_Q8") cqp=$(cake_pp "$GGUF_Q8" "${NPROMPT%% *}")
            pair q8_tg "$cqt" "$qt"
            pair "q8_pp${NPROMPT%% *}" "$cqp" "$qp"
            line="$line | q8_0 tg$NGEN cake $cqt llama $qt ($(ratio "$cqt" "$qt")) pp${NPROMPT%% *} cake $cqp llama $qp ($(ratio "$cqp" "$qp"))"
        else
            echo "q8_tg_llama $qt" >>"$tmp/log"
            echo "q8_pp${NPROMPT%% *}_llama $qp" >>"$tmp/log"
            line="$line | llama q8_0 tg $qt pp${NPROMPT%% *} $qp"
        fi
    fi
    echo "$line"
done

med() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/log" | median; }
range() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/log" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'; }
echo
echo "$ROUNDS rounds, $THREADS threads, depth $DEPTH, bandwidth median $(med bw) GB/s (range $(range bw)), cake roofline median $(med roof) tok/s"
printf '| %-12s | %12s | %12s | %30s |\n' test "cake tok/s" "llama tok/s" "cake/llama: median of per-round ratios (range)"
for k in tg $(for p in $NPROMPT; do echo "pp$p"; done) q8_tg "q8_pp${NPROMPT%% *}"; do
    grep -q "^${k}_llama " "$tmp/log" || continue
    if grep -q "^${k}_ratio " "$tmp/log"; then
        printf '| %-12s | %12s | %12s | %30s |\n' "$k" "$(med "${k}_cake")" "$(med "${k}_llama")" "$(med "${k}_ratio") ($(range "${k}_ratio"))"
    else
        printf '| %-12s | %12s | %12s | %30s |\n' "$k" - "$(med "${k}_llama")" -
    fi
done
