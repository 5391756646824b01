#!/usr/bin/env bash
# GGUF round-to-nearest export, llmc vs llama.cpp's llama-quantize, on the same float32 weights and
# the same thread count: MB/s of float32 input, and whether the two wrote the same blocks.
# Usage: bench/gguf-vs-llama-quantize.sh [THREADS] [RUNS] [TYPES]   (TYPES default: q8_0,q4_0)
#
# - The model: a random-weight Llama of 805M parameters (SmolLM2's tokenizer and vocabulary, hidden
#   2048, intermediate 5632, 16 layers, 32 heads, 4 key/value heads, tied embeddings), F32, 3.2 GB,
#   made once by `llmc random-model` under $LLMC_BENCH (default /tmp/llmc-bench), with its F32 GGUF
#   (`llmc export --type f32`), the input llama-quantize reads.
# - llama-quantize: $LLAMA_QUANTIZE, else built once (cmake, ninja, g++) from the llama.cpp source
#   that interop/'s pinned node-llama-cpp package bundles (llama/gitRelease.bundle; run
#   `bash interop/run.sh` or `npm ci` in interop/ first). Nothing is downloaded.
# - Both sides read from the page cache (the files are read once before timing). llama-quantize runs
#   with --pure, so that every matrix, the embedding included, gets TYPE; llmc keeps the tied
#   embedding at Q8_0 for q4_0 (what llama.cpp's converter does), so its input is the same but a
#   few tensors differ. Times are the median of RUNS whole processes (llmc: with JVM start-up).
# - The blocks of every tensor both wrote in the same type are compared byte for byte: llmc follows
#   llama.cpp's reference quantizers, so they must be equal.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
threads=${1:-2}
runs=${2:-3}
types=${3:-q8_0,q4_0}
work=${LLMC_BENCH:-/tmp/llmc-bench}
mkdir -p "$work"
. scripts/jdk25.sh

quantize=${LLAMA_QUANTIZE:-}
if [ -z "$quantize" ]; then
  quantize="$work/llama.cpp/build/bin/llama-quantize"
  if [ ! -x "$quantize" ]; then
    bundle="$root/interop/node_modules/node-llama-cpp/llama/gitRelease.bundle"
    [ -f "$bundle" ] || { echo "no llama.cpp source: run 'bash interop/run.sh' first, or set LLAMA_QUANTIZE" >&2; exit 2; }
    echo "== building llama-quantize from $bundle (once, a few minutes) ..." >&2
    rm -rf "$work/llama.cpp"
    git clone -q "$bundle" "$work/llama.cpp"
    cmake -S "$work/llama.cpp" -B "$work/llama.cpp/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF > "$work/llama-cmake.log"
    cmake --build "$work/llama.cpp/build" --target llama-quantize -j "$(nproc)" > "$work/llama-build.log"
  fi
fi

model="$work/llama-805m-f32"
if [ ! -f "$model/model.safetensors" ]; then
  echo "== making $model ..." >&2
  config=$(mktemp -d)
  cp "$root/../shared/models/smollm2-135m-shape/tokenizer.json" "$config/"
  /usr/bin/python3 - "$root/../shared/models/smollm2-135m-shape/config.json" "$config/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c.update(hidden_size=2048, intermediate_size=5632, num_hidden_layers=16,
         num_attention_heads=32, num_key_value_heads=4, torch_dtype="float32")
json.dump(c, open(sys.argv[2], "w"), indent=2)
EOF
  ./llmc random-model --config "$config" --out "$model" --dtype f32 --seed 0 -q --overwrite
  rm -rf "$config"
fi
input="$work/llama-805m-f32.gguf"
[ -f "$input" ] || ./llmc export "$model" --type f32 --out "$input" -q
cat "$model/model.safetensors" "$input" > /dev/null # into the page cache
mb=$(stat -c %s "$model/model.safetensors" | awk '{ printf "%.0f", $1 / 1e6 }')

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
seconds() { /usr/bin/time -f %e "$@" 2>&1 >/dev/null | tail -1; }

echo "llama-quantize: $quantize (llama.cpp $(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"tag\"])" "$root/interop/node_modules/node-llama-cpp/llama/llama.cpp.info.json" 2>/dev/null || echo "of unknown version"))"
printf '%-6s %12s %12s %10s %10s %8s  %s\n' type "llmc s" "llama s" "llmc MB/s" "llama MB/s" speed "same blocks"
for type in ${types//,/ }; do
  ours=$(for r in $(seq "$runs"); do
    seconds ./llmc export "$model" --type "$type" --out "$work/llmc-$type.gguf" --overwrite -q --threads "$threads"
  done | median)
  theirs=$(for r in $(seq "$runs"); do
    seconds "$quantize" --pure "$input" "$work/llama-$type.gguf" "${type^^}" "$threads"
  done | median)
  same=$(/usr/bin/python3 - "$work/llmc-$type.gguf" "$work/llama-$type.gguf" "$work/llama.cpp/gguf-py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[3])
from gguf import GGUFReader
ours, theirs = GGUFReader(sys.argv[1]), GGUFReader(sys.argv[2])
theirs_by_name = {t.name: t for t in theirs.tensors}
equal = compared = 0
for t in ours.tensors:
    o = theirs_by_name.get(t.name)
    if o is None or o.tensor_type != t.tensor_type:
        continue
    compared += 1
    equal += bytes(t.data.tobytes()) == bytes(o.data.tobytes())
print(f"{equal}/{compared} tensors")
EOF
)
  awk -v t="$type" -v a="$ours" -v b="$theirs" -v mb="$mb" -v same="$same" 'BEGIN {
    printf "%-6s %12.2f %12.2f %10.0f %10.0f %7.2fx  %s\n", t, a, b, mb / a, mb / b, b / a, same }'
done
echo "MB/s = float32 input ($mb MB) / median seconds of the whole process; speed = llama s / llmc s"
