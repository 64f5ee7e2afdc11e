#!/bin/bash
# run.sh — the GPU test suite, on a machine with an NVIDIA GPU and nvcc (CI has none; run it whenever the
# CUDA code changes and paste its summary into the change's note):
#   tests/gpu/run.sh [DEPS]    DEPS: a folder of .debs from `tools/gpu-deps.sh fetch DEPS`, for a machine
#                              without our -dev libraries (they are unpacked there and put on the paths)
# Builds cake with the CUDA backend (CK_CUDA=ON) into build-gpu, then runs
#   1. test_backend on the CUDA backend (every op against double-precision references), test_gguf (GGUF
#      files of every type the CPU computes), test_batch (batched decoding, on one engine and split),
#   2. test_models on the CUDA backend for every fixture family (GPU tolerances, see test_models.c), over
#      f32 KV caches and again over f16 ones, and the fast path on a few families,
#   3. a 2-process cluster on loopback: a CUDA worker holding layers 0-1 of qwen3-tiny and a CPU master
#      holding the rest must give the greedy text of single-node runs, and so must a CPU worker serving a
#      CUDA master; then the worker's layers spread over devices (--devices: GPU + CPU, two instances on
#      one GPU, two GPUs where there are two), and the whole model over devices in one process (GPU parts
#      pass their rows device to device; again with CK_PARTS_VIA_HOST=1, through the host),
# and prints a summary table. Exit status: 0 when everything passed. Logs go to $LOGS (default
# build-gpu/logs). Environment: CK_TEST_DEVICE (default 0), JOBS (build jobs).
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
if [ -n "$1" ]; then . "$ROOT/tools/gpu-deps.sh" env "$1" > /dev/null || exit 1; set +u; fi
B=${BUILD:-$ROOT/build-gpu}
LOGS=${LOGS:-$B/logs}
DEV=${CK_TEST_DEVICE:-0}
mkdir -p "$LOGS"
# the GPU machine's newer gcc warns about snprintf truncations the project checks for itself
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DCK_CUDA=ON -DCMAKE_C_FLAGS="-Wno-format-truncation" \
    > "$LOGS/cmake.log" 2>&1 &&
    cmake --build "$B" -j "${JOBS:-$(nproc)}" > "$LOGS/build.log" 2>&1
if [ $? != 0 ]; then
    echo "build failed:"; tail -n 40 "$LOGS/cmake.log" "$LOGS/build.log"; exit 1
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
fail=0
row() { printf '%-22s %-6s %s\n' "$1" "$2" "$3"; }
summary=$(mktemp)

# the op conformance test with the default fusions (GLU as the gate/up GEMV's epilogue, the head-row kernel
# in the decode attention, a DeltaNet decode row's ops as one kernel), then with the GLU fused the other
# way (CK_CUDA_FUSE=31: into the down GEMV's prologue, off by default; the head-row kernel on its own; the
# DeltaNet ops one by one), with the older GEMV kernels the split kernel
# replaced, with the decode attention's kernel per query head instead of per KV head (CK_CUDA_ATTN_GROUP=0),
# and on the fast path (CAKE_EXACT=0: prefill GEMMs on activations rounded to 16 bits, Q8_0 prefill through
# an f16 copy)
for cfg in default CK_CUDA_FUSE=31 CK_CUDA_SPLIT_GEMV=0 CK_CUDA_ATTN_GROUP=0 CAKE_EXACT=0; do
    log="$LOGS/test_backend-$cfg.log"
    env ${cfg/default/CK_CUDA_FUSE=} CK_TEST_BACKEND=cuda CK_TEST_DEVICE=$DEV "$B/test_backend" > "$log" 2>&1
    rc=$?
    worst=$(grep "worst" "$log" | sort -g -k6 | tail -n 1 | awk '{print $1 " " $6}')
    checks=$(tail -n 1 "$log")
    [ $rc = 0 ] && st=ok || { st=FAIL; fail=1; }
    row "test_backend ${cfg/default/}" "$st" "$checks; worst err/mag: $worst" >> "$summary"
done

# GGUF files on the GPU: fixtures converted to F32/BF16/F16/Q8_0/Q4_0 and a wider model in Q8_0, Q6_K, Q5_K,
# Q4_K and Q4_0 (the quantized GEMVs of gemv.cu and quant.cu on every prefill row: test_gguf runs exact),
# llama.cpp's own files, each within its tolerance of the float model
CK_TEST_BACKEND=cuda CK_TEST_DEVICE=$DEV "$B/test_gguf" > "$LOGS/test_gguf.log" 2>&1
rc=$?
wide=$(grep "^wide Q" "$LOGS/test_gguf.log" | awk '{printf "%s %s; ", $2, $5}')
[ $rc = 0 ] && st=ok || { st=FAIL; fail=1; }
row "test_gguf" "$st" "$(tail -n 1 "$LOGS/test_gguf.log"); |NLL diff| $wide" >> "$summary"

# batched decoding on the GPU: sequences stepped together get the logits each gets alone, on one engine and
# on the model split over two (and three) instances of the GPU, rows device to device and through the host
CK_TEST_BACKEND=cuda CK_TEST_DEVICE=$DEV "$B/test_batch" > "$LOGS/test_batch.log" 2>&1
rc=$?
[ $rc = 0 ] && st=ok || { st=FAIL; fail=1; }
row "test_batch" "$st" "$(tail -n 1 "$LOGS/test_batch.log"); $(grep -c "bit-identical" "$LOGS/test_batch.log") families bit-identical" >> "$summary"

for m in qwen3-s qwen3-f32-s qwen2-s llama3-s qwen3-tiny mistral-s qwen3_5-s phi3-s olmo2-s exaone4-s gemma3-s \
    qwen3moe-s qwen3_5moe-s falcon3-s qwen3moe-mixed-s; do
    [ -d "tests/data/$m" ] || [ -d "$B/data/$m" ] || continue
    CK_TEST_BACKEND=cuda CK_TEST_DEVICE=$DEV "$B/test_models" "$m" > "$LOGS/model-$m.log" 2>&1
    rc=$?
    s=$(grep "^summary $m " "$LOGS/model-$m.log" | cut -d' ' -f3-)
    [ $rc = 0 ] && st=ok || { st=FAIL; fail=1; }
    row "$m" "$st" "${s:-no summary (see $LOGS/model-$m.log)}" >> "$summary"
done

# every family again over f16 KV caches (the fast path's default; the exact path above keeps f32 ones),
# within the same GPU tolerance
for m in qwen3-s qwen3-f32-s qwen2-s llama3-s qwen3-tiny mistral-s qwen3_5-s phi3-s olmo2-s exaone4-s gemma3-s \
    qwen3moe-s qwen3_5moe-s falcon3-s qwen3moe-mixed-s; do
    [ -d "tests/data/$m" ] || [ -d "$B/data/$m" ] || continue
    CK_TEST_KV=f16 CK_TEST_BACKEND=cuda CK_TEST_DEVICE=$DEV "$B/test_models" "$m" > "$LOGS/model-kv16-$m.log" 2>&1
    rc=$?
    s=$(grep "^summary $m " "$LOGS/model-kv16-$m.log" | cut -d' ' -f3-)
    [ $rc = 0 ] && st=ok || { st=FAIL; fail=1; }
    row "$m (f16 KV)" "$st" "${s:-no summary (see $LOGS/model-kv16-$m.log)}" >> "$summary"
done

# the fast path on a few families, with its own tolerances (test_models.c)
for m in qwen3-s llama3-s gemma3-s qwen3_5-s; do
    [ -d "tests/data/$m" ] || [ -d "$B/data/$m" ] || continue
    CK_TEST_FAST=1 CK_TEST_BACKEND=cuda CK_TEST_DEVICE=$DEV "$B/test_models" "$m" > "$LOGS/model-fast-$m.log" 2>&1
    rc=$?
    s=$(grep "^summary $m " "$LOGS/model-fast-$m.log" | cut -d' ' -f3-)
    [ $rc = 0 ] && st=ok || { st=FAIL; fail=1; }
    row "$m (fast)" "$st" "${s:-no summary (see $LOGS/model-fast-$m.log)}" >> "$summary"
done

# cluster: CUDA worker (layers 0-1) + CPU master (embedding, layers 2-3, head) against single-node runs
M=$B/data-gpu-tiny
mkdir -p "$M" && cp "$B"/data/qwen3-tiny/*.json "$B"/data/qwen3-tiny/*.safetensors "$M/"
PORT=$((21000 + $$ % 20000))
"$B/cake" run "$M" "Hello" --temperature 0 -n 24 --cpu > "$LOGS/single-cpu.txt" 2> "$LOGS/single-cpu.err"
"$B/cake" run "$M" "Hello" --temperature 0 -n 24 --device "$DEV" > "$LOGS/single-cuda.txt" 2> "$LOGS/single-cuda.err"

# cluster_text NAME WORKER_FLAGS...: a worker holding layers 0-1 (started with WORKER_FLAGS) and a master for
# the rest (on the CPU, or with $MASTER's flags); the master's greedy text goes to $LOGS/cluster-NAME.txt;
# returns the master's exit status
cluster_text() {
    name=$1; shift
    PORT=$((PORT + 1))
    printf 'w1:\n  host: "127.0.0.1:%s"\n  layers:\n    - "model.layers.0-1"\n' $PORT > "$B/topo-gpu.yml"
    "$B/cake" run "$M" --name w1 --topology "$B/topo-gpu.yml" --address "127.0.0.1:$PORT" "$@" \
        2> "$LOGS/worker-$name.log" &
    wpid=$!
    i=0; while ! grep -q "listening on" "$LOGS/worker-$name.log" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    "$B/cake" run "$M" "Hello" --temperature 0 -n 24 ${MASTER:---cpu} --topology "$B/topo-gpu.yml" > "$LOGS/cluster-$name.txt" \
        2> "$LOGS/cluster-$name.err"
    rc=$?
    kill $wpid 2>/dev/null; wait $wpid 2>/dev/null
    return $rc
}

cluster_text cuda --device "$DEV"
rc=$?
if [ $rc = 0 ] && [ -s "$LOGS/cluster-cuda.txt" ] && cmp -s "$LOGS/cluster-cuda.txt" "$LOGS/single-cpu.txt" &&
    cmp -s "$LOGS/cluster-cuda.txt" "$LOGS/single-cuda.txt"; then
    row "cluster cuda+cpu" ok "greedy text of the CUDA-worker + CPU-master cluster = single-node CPU = single-node CUDA" >> "$summary"
else
    fail=1
    row "cluster cuda+cpu" FAIL "rc $rc; see $LOGS/cluster-cuda.txt, single-cpu.txt, single-cuda.txt, worker-cuda.log" >> "$summary"
fi

# the reverse: a CPU worker (layers 0-1) serving a CUDA master (embedding, layers 2-3, head)
MASTER="--device $DEV" cluster_text cpu-worker --cpu
rc=$?
if [ $rc = 0 ] && [ -s "$LOGS/cluster-cpu-worker.txt" ] && cmp -s "$LOGS/cluster-cpu-worker.txt" "$LOGS/single-cpu.txt" &&
    grep -q "embedding, head on cuda" "$LOGS/cluster-cpu-worker.err" && grep -q " on cpu, listening" "$LOGS/worker-cpu-worker.log"; then
    row "cluster cpu+cuda" ok "greedy text of the CPU-worker + CUDA-master cluster = single-node" >> "$summary"
else
    fail=1
    row "cluster cpu+cuda" FAIL "rc $rc; see $LOGS/cluster-cpu-worker.txt, cluster-cpu-worker.err, worker-cpu-worker.log" >> "$summary"
fi

# a worker spanning devices (--devices): layers 0-1 split over the GPU and the CPU, over two instances on
# the GPU, and over two GPUs when the machine has them; the same greedy text
lists="$DEV,cpu $DEV,$DEV"
[ "$(nvidia-smi -L 2>/dev/null | wc -l)" -ge 2 ] && lists="$lists 0,1"
for devs in $lists; do
    cluster_text "$devs" --devices "$devs"
    rc=$?
    on=$(grep -o "on [^ ]*, listening" "$LOGS/worker-$devs.log" | cut -d' ' -f2 | tr -d ,)
    if [ $rc = 0 ] && [ -s "$LOGS/cluster-$devs.txt" ] && cmp -s "$LOGS/cluster-$devs.txt" "$LOGS/single-cpu.txt"; then
        row "worker --devices $devs" ok "layers 0-1 on $on: greedy text = single-node" >> "$summary"
    else
        fail=1
        row "worker --devices $devs" FAIL "rc $rc; see $LOGS/cluster-$devs.txt, worker-$devs.log" >> "$summary"
    fi
done

# zero-config: a worker without a model on the GPU (then on the GPU and the CPU) announces its devices and
# their memory, and a CPU master that discovers it gives it every layer (the GPU's peak against the CPU's
# measured speed), pushes them and gets the single-node text
for devs in "" "$DEV,cpu"; do
    name=zero${devs:+-$devs}
    PORT=$((PORT + 2))
    rm -rf "$B/zcache" && mkdir -p "$B/zcache"
    CAKE_CACHE="$B/zcache" "$B/cake" run --cluster-key "gpu key" --name zg --address "127.0.0.1:$PORT" \
        --discovery-address "127.0.0.1:$((PORT + 1))" ${devs:+--devices "$devs"} 2> "$LOGS/worker-$name.log" &
    wpid=$!
    i=0; while ! grep -q "listening on" "$LOGS/worker-$name.log" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    want="cuda NVIDIA"; [ -n "$devs" ] && want="cuda:$DEV+cpu NVIDIA"
    "$B/cake" run "$M" "Hello" --temperature 0 -n 24 --cpu --cluster-key "gpu key" --discovery-address \
        "127.0.0.1:$((PORT + 1))" --min-workers 1 --discovery-timeout 10 > "$LOGS/cluster-$name.txt" 2> "$LOGS/cluster-$name.err"
    rc=$?
    kill $wpid 2>/dev/null; wait $wpid 2>/dev/null
    said=$(grep -o "(udp): .*" "$LOGS/worker-$name.log" | head -n 1)
    if [ $rc = 0 ] && cmp -s "$LOGS/cluster-$name.txt" "$LOGS/single-cpu.txt" && grep -q "(udp): $want" "$LOGS/worker-$name.log" &&
        grep -q "serving layers 0-3 .* on ${want% *}" "$LOGS/worker-$name.log"; then
        row "zero-config ${devs:-gpu}" ok "worker announced ${said#(udp): }; greedy text = single-node" >> "$summary"
    else
        fail=1
        row "zero-config ${devs:-gpu}" FAIL "rc $rc; see $LOGS/worker-$name.log, cluster-$name.err" >> "$summary"
    fi
done

# the whole model in one process over devices: the GPU twice (two instances, the rows passed device to
# device, then through the host), the GPU and the CPU (through the host)
for devs in "$DEV,$DEV" "$DEV,$DEV host" "$DEV,cpu"; do
    via=0; [ "${devs#* }" = host ] && via=1
    CK_PARTS_VIA_HOST=$via "$B/cake" run "$M" "Hello" --temperature 0 -n 24 --devices "${devs% *}" \
        > "$LOGS/single-$devs.txt" 2> "$LOGS/single-$devs.err"
    if [ $? = 0 ] && [ -s "$LOGS/single-$devs.txt" ] && cmp -s "$LOGS/single-$devs.txt" "$LOGS/single-cpu.txt"; then
        row "run --devices $devs" ok "greedy text = single-node" >> "$summary"
    else
        fail=1
        row "run --devices $devs" FAIL "see $LOGS/single-$devs.txt, single-$devs.err" >> "$summary"
    fi
done

# a long prompt (over a CUDA chunk of 512 rows, so the parts pass several pieces): perplexity over two
# instances of the GPU, device to device and through the host, equals one instance's
for i in $(seq 1 120); do echo "In the beginning the parts of the model passed their rows from one device to the next."; done \
    > "$B/long.txt"
ppl_one=$("$B/cake" perplexity "$M" "$B/long.txt" --device "$DEV" 2> "$LOGS/ppl-one.err" | tail -n 1)
for via in 0 1; do
    got=$(CK_PARTS_VIA_HOST=$via "$B/cake" perplexity "$M" "$B/long.txt" --devices "$DEV,$DEV" 2> "$LOGS/ppl-$via.err" | tail -n 1)
    how="device to device"; [ $via = 1 ] && how="through the host"
    if [ -n "$ppl_one" ] && [ "$got" = "$ppl_one" ]; then
        row "perplexity $DEV,$DEV" ok "rows $how: $got = one instance" >> "$summary"
    else
        fail=1
        row "perplexity $DEV,$DEV" FAIL "rows $how: '$got' against one instance's '$ppl_one'" >> "$summary"
    fi
done

echo "== GPU suite summary (device $DEV) =="
cat "$summary"
if [ $fail = 0 ]; then
    echo "GPU suite: all passed"
else # the failed rows again, last, where a truncated log still shows them
    echo "GPU suite: FAILURES (logs in $LOGS):"
    awk 'match($0, / (ok|FAIL) /) && substr($0, RSTART + 1, 4) == "FAIL"' "$summary"
fi
rm -f "$summary"
exit $fail
