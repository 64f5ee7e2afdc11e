#!/bin/sh
# test_files.sh — what cake does when a file it reads is not an ordinary file of a sane size: a FIFO
# (must not hang), a device such as /dev/zero (must not read until memory runs out), a directory or a
# broken symbolic link (must be named as such, not reported as missing), a file over its size limit, and
# a --tokens file with a NUL byte inside. Every command runs under `timeout`, so a hang is a failure.
# usage: test_files.sh CAKE TESTDATA UNPACKED
CAKE=$1 DATA=$2 UNPACKED=$3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0

# A memory limit makes an unbounded read fail fast instead of exhausting the machine; sanitizer builds
# reserve terabytes of address space and cannot run under one, so it is only set when cake starts with it.
# One compute thread keeps per-thread reservations small.
export OMP_NUM_THREADS=1
LIMIT=""
sh -c 'ulimit -v 8000000 && "$0" --help' "$CAKE" > /dev/null 2>&1 && LIMIT="ulimit -v 8000000;"

# expect_fail NAME PATTERN cmd...: exits within 20 s, non-zero (not a signal, not the timeout), with
# PATTERN (grep -E) on stderr
expect_fail() {
    name=$1 pat=$2
    shift 2
    sh -c "$LIMIT"' exec timeout 20 "$@"' sh "$@" > "$T/out" 2> "$T/err"
    rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -lt 128 ] && grep -Eq -- "$pat" "$T/err"; then
        echo "ok   $name"
    else
        echo "FAIL $name (rc=$rc)"; head -c 2000 "$T/err"; fail=1
    fi
}

printf '1 2 3 4 5 6' > "$T/ids.txt"
# mk SRC: a fresh writable copy of a fixture in $T/m
mk() { src=$DATA/$1; [ -d "$src" ] || src=$UNPACKED/$1; rm -rf "$T/m"; cp -r "$src" "$T/m"; chmod -R u+w "$T/m"; }

mk qwen3-s; timeout 20 "$CAKE" perplexity "$T/m" "$T/ids.txt" --tokens > /dev/null 2>&1
[ $? = 0 ] && echo "ok   intact copy scores" || { echo "FAIL intact copy scores"; fail=1; }

# config.json
mk qwen3-s; rm "$T/m/config.json"; mkfifo "$T/m/config.json"
expect_fail "config.json FIFO" "config.json is a FIFO, not a regular file" \
    "$CAKE" perplexity "$T/m" "$T/ids.txt" --tokens
mk qwen3-s; ln -sf /dev/zero "$T/m/config.json"
expect_fail "config.json -> /dev/zero" "config.json is a character device, not a regular file" \
    "$CAKE" perplexity "$T/m" "$T/ids.txt" --tokens
mk qwen3-s; rm "$T/m/config.json"; mkdir "$T/m/config.json"
expect_fail "config.json directory" "config.json is a directory" "$CAKE" perplexity "$T/m" "$T/ids.txt" --tokens
mk qwen3-s; ln -sf "$T/m/gone.json" "$T/m/config.json"
expect_fail "config.json broken symlink" "config.json is a broken symbolic link" \
    "$CAKE" perplexity "$T/m" "$T/ids.txt" --tokens
mk qwen3-s; python3 - "$T/m/config.json" <<'PY'
# valid JSON padded past the 4 MiB limit
import sys
t = open(sys.argv[1]).read().rstrip()
open(sys.argv[1], "w").write(t[:-1] + " " * (5 << 20) + "}")
PY
expect_fail "config.json over its limit" "config.json is larger than the 4.0 MiB limit for this file" \
    "$CAKE" perplexity "$T/m" "$T/ids.txt" --tokens

# generation_config.json is optional: absent is fine, present but not a regular file is an error
mk qwen3-s; rm -f "$T/m/generation_config.json"
timeout 20 "$CAKE" perplexity "$T/m" "$T/ids.txt" --tokens > /dev/null 2>&1
[ $? = 0 ] && echo "ok   no generation_config.json" || { echo "FAIL no generation_config.json"; fail=1; }
mk qwen3-s; rm -f "$T/m/generation_config.json"; mkfifo "$T/m/generation_config.json"
expect_fail "generation_config.json FIFO" "generation_config.json is a FIFO, not a regular file" \
    "$CAKE" perplexity "$T/m" "$T/ids.txt" --tokens
mk qwen3-s; rm -f "$T/m/generation_config.json"; mkdir "$T/m/generation_config.json"
expect_fail "generation_config.json directory" "generation_config.json is a directory" \
    "$CAKE" perplexity "$T/m" "$T/ids.txt" --tokens
mk qwen3-s; rm -f "$T/m/generation_config.json"; ln -s gone.json "$T/m/generation_config.json"
expect_fail "generation_config.json broken symlink" "generation_config.json is a broken symbolic link" \
    "$CAKE" perplexity "$T/m" "$T/ids.txt" --tokens

# tokenizer_config.json (read when the tokenizer loads: perplexity of text)
printf 'In the beginning' > "$T/text.txt"
mk qwen3-tiny; rm "$T/m/tokenizer_config.json"; mkfifo "$T/m/tokenizer_config.json"
expect_fail "tokenizer_config.json FIFO" "tokenizer_config.json is a FIFO, not a regular file" \
    "$CAKE" perplexity "$T/m" "$T/text.txt"
mk qwen3-tiny; rm "$T/m/tokenizer_config.json"; mkdir "$T/m/tokenizer_config.json"
expect_fail "tokenizer_config.json directory" "tokenizer_config.json is a directory" \
    "$CAKE" perplexity "$T/m" "$T/text.txt"
mk qwen3-tiny; rm "$T/m/tokenizer_config.json"; ln -s nowhere "$T/m/tokenizer_config.json"
expect_fail "tokenizer_config.json broken symlink" "tokenizer_config.json is a broken symbolic link" \
    "$CAKE" perplexity "$T/m" "$T/text.txt"

# model.safetensors or tokenizer.json present but not a regular file: said so, not "missing"
# broken KIND PATH: PATH made a FIFO, a directory or a broken link; sets $want
broken() {
    rm -rf "$2"
    case $1 in
    fifo) mkfifo "$2"; want="is a FIFO, not a regular file" ;;
    dir) mkdir "$2"; want="is a directory" ;;
    link) ln -s gone "$2"; want="is a broken symbolic link" ;;
    esac
}
for kind in fifo dir link; do
    mk qwen3-tiny; broken $kind "$T/m/model.safetensors"
    expect_fail "model.safetensors $kind" "model.safetensors $want" "$CAKE" run "$T/m" hi -n 1
    cp "$UNPACKED/qwen3-tiny/model.safetensors" "$T/m/model.safetensors.real"
    rm -rf "$T/m/model.safetensors"; mv "$T/m/model.safetensors.real" "$T/m/model.safetensors"
    broken $kind "$T/m/tokenizer.json"
    expect_fail "tokenizer.json $kind" "tokenizer.json $want" "$CAKE" run "$T/m" hi -n 1
done
# a shard named by model.safetensors.index.json that is a FIFO
mk qwen3moe-s; rm "$T/m/model-00002-of-00003.safetensors"; mkfifo "$T/m/model-00002-of-00003.safetensors"
expect_fail "shard FIFO" "model-00002-of-00003.safetensors is a FIFO, not a regular file" \
    "$CAKE" perplexity "$T/m" "$T/ids.txt" --tokens

# the perplexity input
expect_fail "perplexity /dev/zero" "/dev/zero is a character device, not a regular file" \
    "$CAKE" perplexity "$DATA/qwen3-s" /dev/zero --tokens
expect_fail "perplexity text /dev/zero" "/dev/zero is a character device, not a regular file" \
    "$CAKE" perplexity "$UNPACKED/qwen3-tiny" /dev/zero
mkfifo "$T/fifo.txt"
expect_fail "perplexity FIFO input" "fifo.txt is a FIFO, not a regular file" \
    "$CAKE" perplexity "$DATA/qwen3-s" "$T/fifo.txt" --tokens
expect_fail "perplexity directory input" "is a directory" "$CAKE" perplexity "$DATA/qwen3-s" "$T" --tokens
printf '1 2\0003 4' > "$T/nul.txt"
expect_fail "perplexity --tokens NUL byte" "nul.txt: NUL byte at offset 3" \
    "$CAKE" perplexity "$DATA/qwen3-s" "$T/nul.txt" --tokens

exit $fail
