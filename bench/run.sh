#!/usr/bin/env bash
# The benchmarks' one entry point: llmc's kernels against the machine's own limits (an FMA peak and
# a copy bandwidth measured here) and against PyTorch on the same problems, side by side, as a
# table of ratios; with --e2e, also the end-to-end comparisons (bench/gptq-vs-pytorch.sh,
# bench/quantize-e2e.sh, bench/eval-vs-pytorch.sh). Usage: bench/run.sh [--threads T] [--runs R] [--e2e]
#
# Ratios mean something only when both sides get the same cores and the baseline runs at its best:
# - nothing else may hold a core: the script measures the machine's busy time for 2 s first and
#   refuses to report ratios above 10% of one core (OpenMP with 2 threads stalls then);
# - Debian's OpenBLAS 0.3.21 falls back to a generic kernel on processors it does not know (seen on
#   an Intel processor with AMX: about 25 GFLOPS for a 2048² product instead of about 120); the
#   script reads the kernel OpenBLAS chose, sets OPENBLAS_CORETYPE to SkylakeX (AVX-512) or Haswell
#   (AVX2) when it chose something older, and prints the kernel and a matmul probe.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2
runs=5
e2e=0
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --e2e) e2e=1; shift ;;
    *) echo "usage: bench/run.sh [--threads T] [--runs R] [--e2e]" >&2; exit 2 ;;
  esac
done
. scripts/jdk25.sh
out=$(mktemp -d)

# Busy time of the whole machine over 2 s, in cores (from /proc/stat: all but idle and iowait).
busy_cores() {
  read -r _ u1 n1 s1 i1 w1 q1 sq1 st1 _ < /proc/stat
  sleep 2
  read -r _ u2 n2 s2 i2 w2 q2 sq2 st2 _ < /proc/stat
  local busy=$(( (u2 + n2 + s2 + q2 + sq2 + st2) - (u1 + n1 + s1 + q1 + sq1 + st1) ))
  local all=$(( busy + (i2 + w2) - (i1 + w1) ))
  awk -v b="$busy" -v a="$all" -v c="$(nproc)" 'BEGIN { printf "%.2f", a ? b / a * c : 0 }'
}
busy=$(busy_cores)
quiet=$(awk -v b="$busy" 'BEGIN { print (b <= 0.10) ? 1 : 0 }')
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); busy before the run: $busy cores"

# The baseline at its best: the OpenBLAS kernel for this processor.
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_WAIT_POLICY=PASSIVE
if grep -q avx512f /proc/cpuinfo; then best=SkylakeX; elif grep -q avx2 /proc/cpuinfo; then best=Haswell; else best=""; fi
/usr/bin/python3 bench/kernels_torch.py --threads "$threads" --runs 1 --warmup 0 > "$out/probe.json"
core=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["openblas_core"] or "")' "$out/probe.json")
case "$core" in
  SkylakeX|Cooperlake|SapphireRapids|Haswell|Zen) ;;  # a kernel of this generation
  *) if [ -n "$best" ] && [ -z "${OPENBLAS_CORETYPE:-}" ]; then
       echo "OpenBLAS chose the '$core' kernel; setting OPENBLAS_CORETYPE=$best" >&2
       export OPENBLAS_CORETYPE=$best
     fi ;;
esac

echo "== PyTorch baselines ($threads threads) ..." >&2
/usr/bin/python3 bench/kernels_torch.py --threads "$threads" --runs "$runs" > "$out/torch.json"

echo "== llmc kernels ($threads threads) ..." >&2
# One reactor build: the classpath names the modules' target/classes, never an installed llmc jar.
mvn -B -q -o -pl quantize -am test-compile dependency:build-classpath -Dspotless.check.skip=true \
  -Dmdep.outputFile="$out/classpath" > "$out/mvn.log" 2>&1 || { cat "$out/mvn.log"; exit 1; }
"$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  -Xms4g -Xmx4g -XX:+AlwaysPreTouch -Dllmc.threads="$threads" \
  -cp "quantize/target/test-classes:quantize/target/classes:$(cat "$out/classpath")" \
  llmc.quantize.KernelBenchmark --runs "$runs" --reference "$out/torch.json" --seconds "$out/seconds.json" \
  2>/dev/null | tee "$out/kernels.txt"

# The same kernels on one thread: the speed-up each gets from the threads above.
if [ "$threads" -gt 1 ]; then
  echo "== llmc kernels (1 thread) ..." >&2
  "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
    -Xms4g -Xmx4g -XX:+AlwaysPreTouch -Dllmc.threads=1 \
    -cp "quantize/target/test-classes:quantize/target/classes:$(cat "$out/classpath")" \
    llmc.quantize.KernelBenchmark --runs "$runs" --seconds "$out/seconds1.json" > /dev/null 2>&1
  /usr/bin/python3 - "$out/seconds1.json" "$out/seconds.json" "$threads" <<'EOF'
import json, sys
one, many, threads = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
print(f"{'kernel':34} {'1 thread s':>10} {threads + ' threads s':>12} {'speed-up':>9}")
for name, seconds in many.items():
    print(f"{name:34} {one[name]:10.4f} {seconds:12.4f} {one[name] / seconds:8.2f}x")
EOF
fi

if [ "$quiet" != 1 ]; then
  echo "!! another process held $busy cores before the run: the ratios above are not comparable" \
    "(rerun on an idle machine)"
  exit 3
fi

if [ "$e2e" = 1 ]; then
  echo "== end to end: GPTQ per matrix vs PyTorch (bench/gptq-vs-pytorch.sh)"
  bash bench/gptq-vs-pytorch.sh "$threads" 3
  echo "== end to end: quantize SmolLM2-135M shape (bench/quantize-e2e.sh)"
  bash bench/quantize-e2e.sh
  echo "== end to end: eval vs PyTorch (bench/eval-vs-pytorch.sh)"
  bash bench/eval-vs-pytorch.sh
fi
