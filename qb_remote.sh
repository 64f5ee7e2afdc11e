set -e
CF="-O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -fopenmp"
mkdir -p /tmp/bq && cd /tmp/bq
S=$OLDPWD
for f in src/tensor/dtype.c src/base/err.c src/backend/backend.c src/backend/cpu/cpu.c src/backend/cpu/kernels.c src/backend/cpu/ref.c src/backend/cpu/attention.c; do gcc $CF -c $S/$f -I$S/include -I$S/src -o $(basename $f).o; done
gcc $CF -ffp-contract=off -c $S/src/tensor/quant.c -I$S/src -o quant.o
gcc $CF -ffp-contract=off -c $S/src/backend/cpu/quant_ref.c -I$S/include -I$S/src -o quant_ref.o
gcc $CF -mavx2 -mfma -mf16c -c $S/src/backend/cpu/dot_avx2.c -I$S/include -I$S/src -o dot_avx2.o
gcc $CF -mavx512f -mfma -mf16c -c $S/src/backend/cpu/dot_avx512.c -I$S/include -I$S/src -o dot_avx512.o
gcc $CF -mavx2 -mf16c -ffp-contract=off -c $S/src/backend/cpu/quant_avx2.c -I$S/include -I$S/src -o quant_avx2.o
gcc $CF -mavx2 -mf16c -mavx512f -mavx512vl -mavx512bw -mavx512vnni -ffp-contract=off -c $S/src/backend/cpu/quant_avx512.c -I$S/include -I$S/src -o quant_avx512.o
gcc $CF $S/bench/bench_quant.c -I$S/include -I$S/src *.o -o bench_quant -lm
cd /tmp/bq
lscpu | grep -E "Model name|^CPU\(s\)|L3" | cut -c1-120
grep -o 'avx512_vnni\|avx_vnni\|avx512bw' /proc/cpuinfo | sort -u | tr '\n' ' '; echo
for t in 1 4 16; do OMP_PROC_BIND=close ./bench_quant 3072 1024 $t | grep -v " ref \| avx512  "; done
for t in 1 16; do OMP_PROC_BIND=close ./bench_quant 16384 4096 $t | grep -v " ref \| avx512  "; done
