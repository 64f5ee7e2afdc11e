#!/bin/sh
# gpu_bench.sh — batch-1 speed of cake on a GPU, on random weights of a real model's shape:
#   bench/gpu_bench.sh CAKE [MODEL_NAME] [DIR]
# makes the checkpoint with bench/mkrandom.py (torch + transformers) into DIR (default /tmp/cake-bench-NAME)
# unless it is there, then runs `cake bench` on device 0 (pp512 and tg128, three timed runs each after a
# warm-up, the device's copy bandwidth for the roofline); the same for the weights converted to Q8_0
# (build-gpu/st2gguf beside CAKE); decode at a depth of 4096; decode with each
# fusion of the CUDA queue alone (CK_CUDA_FUSE bits), none, and without programmatic dependent launch
# (CK_CUDA_PDL=0); greedy `cake run` decodes of 128 tokens after a short prompt (tg128 as a user sees
# it, first-call costs included); and the per-launch GPU times of a decode (CK_CUDA_PROFILE=1).
CAKE=$1 NAME=${2:-qwen3-0.6b}
DIR=${3:-/tmp/cake-bench-$NAME}
[ -n "$CAKE" ] || { echo "usage: gpu_bench.sh CAKE [MODEL_NAME] [DIR]"; exit 2; }
[ -f "$DIR/model.safetensors" ] || python3 "$(dirname "$0")/mkrandom.py" "$NAME" "$DIR" || exit 1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
tg() { "$CAKE" bench "$DIR" --device 0 -p 0 -n 128 -r 2 2>&1 | grep "^tg"; }
echo "-- cake bench (default)"
"$CAKE" bench "$DIR" --device 0 -p 512 -n 128 -r 3 2>&1
Q8=$DIR-q8_0
[ -f "$Q8/model.gguf" ] || { mkdir -p "$Q8" && "$(dirname "$CAKE")/st2gguf" "$DIR" "$Q8/model.gguf" Q8_0 >/dev/null; }
echo "-- cake bench, q8_0 (st2gguf of the same weights)"
"$CAKE" bench "$Q8" --device 0 -p 512 -n 128 -r 3 2>&1 | grep "^pp\|^tg\|bandwidth\|error\|bench:"
echo "-- cake bench, tg128 at depth 4096"
"$CAKE" bench "$DIR" --device 0 -p 0 -n 128 -d 4096 -r 2 2>&1 | grep "^tg"
for f in 0 1 2 4 12 16; do echo "-- CK_CUDA_FUSE=$f: $(CK_CUDA_FUSE=$f tg)"; done
echo "-- CK_CUDA_PDL=0: $(CK_CUDA_PDL=0 tg)"
echo "-- CK_CUDA_GRAPHS=0: $(CK_CUDA_GRAPHS=0 tg)"
for i in 1 2; do
    echo "-- cake run tg128 run $i"
    "$CAKE" run "$DIR" "Tell me a story." --temperature 0 -n 128 --ctx 512 2>&1 >/dev/null | tail -n 4
done
echo "-- tg128 with per-launch GPU times (CK_CUDA_PROFILE=1)"
CK_CUDA_PROFILE=1 "$CAKE" run "$DIR" "Tell me a story." --temperature 0 -n 128 --ctx 512 2>&1 >/dev/null | tail -n 16
