#!/usr/bin/env bash
# GPTQ speed, llmc vs PyTorch (the IST-DASLab fasterquant in bench/gptq_reference.py), same shapes,
# same thread count. Usage: bench/gptq-vs-pytorch.sh [THREADS] [RUNS] [SHAPES]
# SHAPES: comma-separated ROWSxCOLS (out x in), default 1536x576,4096x4096,11008x4096,4096x11008.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
runs=${2:-3}
shapes=${3:-1536x576,4096x4096,11008x4096,4096x11008}
. scripts/jdk25.sh
out=$(mktemp -d)

# One reactor build: the classpath names the modules' target/classes, never an installed llmc jar.
mvn -B -q -o -pl quantize -am test-compile dependency:build-classpath -Dspotless.check.skip=true \
  -Dmdep.outputFile="$out/classpath" >/dev/null

echo "PyTorch ($threads threads)..." >&2
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_WAIT_POLICY=PASSIVE \
  /usr/bin/python3 bench/gptq_reference.py --threads "$threads" --runs "$runs" --shapes "$shapes" > "$out/torch.json"

# The heap is touched once at start-up (not timed): on these virtual machines the first touch of
# memory the guest never used costs a host fault, which made every later run of the 11008-wide
# shape twice as slow as the first (a 485 MB Hessian per array); PyTorch's caching allocator
# reuses its memory the same way.
echo "llmc ($threads threads)..." >&2
"$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Dai.djl.offline=true \
  -Xms12g -Xmx12g -XX:+AlwaysPreTouch -Dllmc.threads="$threads" \
  -cp "quantize/target/test-classes:quantize/target/classes:$(cat "$out/classpath")" \
  llmc.quantize.GptqBenchmark --runs "$runs" --shapes "$shapes" --reference "$out/torch.json"
