#!/bin/sh
# gpu_bench.sh — batch-1 speed of cake on a GPU, on random weights of a real model's shape:
#   bench/gpu_bench.sh CAKE [MODEL_NAME] [DIR]
# makes the checkpoint with bench/mkrandom.py (torch + transformers) into DIR (default /tmp/cake-bench-NAME)
# unless it is there, then runs `cake run` greedy: decode of 128 tokens after a short prompt (tg128) and
# a prefill of about 512 tokens (pp512), three times each; prints each run's summary lines and the weight
# bytes per token for the roofline (tok/s <= bandwidth / bytes per token).
CAKE=$1 NAME=${2:-qwen3-0.6b}
DIR=${3:-/tmp/cake-bench-$NAME}
[ -n "$CAKE" ] || { echo "usage: gpu_bench.sh CAKE [MODEL_NAME] [DIR]"; exit 2; }
[ -f "$DIR/model.safetensors" ] || python3 "$(dirname "$0")/mkrandom.py" "$NAME" "$DIR" || exit 1
bytes=$(python3 -c "import json,struct,sys; f=open(sys.argv[1],'rb'); n=struct.unpack('<Q',f.read(8))[0]; h=json.loads(f.read(n)); print(sum(v['data_offsets'][1]-v['data_offsets'][0] for k,v in h.items() if k!='__metadata__'))" "$DIR/model.safetensors")
echo "weights: $bytes bytes read per decoded token (tied head counted once)"
long=$(python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 57))")
for i in 1 2 3; do
    echo "-- tg128 run $i"
    "$CAKE" run "$DIR" "Tell me a story." --temperature 0 -n 128 --ctx 512 2>&1 >/dev/null | tail -n 4
done
echo "-- tg128 with per-op GPU times (CK_CUDA_PROFILE=1, eager launches)"
CK_CUDA_PROFILE=1 "$CAKE" run "$DIR" "Tell me a story." --temperature 0 -n 128 --ctx 512 2>&1 >/dev/null | tail -n 20
echo "-- tg128 without batching of same-kind ops (CK_CUDA_BATCH=0)"
CK_CUDA_BATCH=0 "$CAKE" run "$DIR" "Tell me a story." --temperature 0 -n 128 --ctx 512 2>&1 >/dev/null | tail -n 4
echo "-- tg128 without CUDA graphs (CK_CUDA_GRAPHS=0)"
CK_CUDA_GRAPHS=0 "$CAKE" run "$DIR" "Tell me a story." --temperature 0 -n 128 --ctx 512 2>&1 >/dev/null | tail -n 4
for i in 1 2 3; do
    echo "-- pp512 run $i"
    "$CAKE" run "$DIR" "$long" --raw --temperature 0 -n 1 --ctx 1024 2>&1 >/dev/null | tail -n 4
done
