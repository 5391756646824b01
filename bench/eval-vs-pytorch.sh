#!/usr/bin/env bash
# Eval throughput of llmc against the same forward in PyTorch, side by side on this machine.
# Model: a random-weight model of the SmolLM2-135M shape (made once by `llmc random-model`), or with
# --stories the bundled stories260K on all of TinyStories valid (236 windows; PyTorch reads the same
# token ids, tokenized by SentencePiece with bench/sp_tokenize.py).
# Protocol P1 windows of L = 512; each round runs llmc, then PyTorch, with the same thread count,
# each after one untimed warm-up window; prints every round and the median ratio.
#   bench/eval-vs-pytorch.sh [--threads 2] [--windows 8] [--rounds 5] [--stories]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
threads=2 windows=8 rounds=5 stories=0
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --windows) windows=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --stories) stories=1; shift ;;
    *) echo "usage: $0 [--threads N] [--windows W] [--rounds R] [--stories]" >&2; exit 2 ;;
  esac
done
shared="${LLMC_SHARED:-$root/../shared}"
model="${LLMC_BENCH_MODEL:-${TMPDIR:-/tmp}/llmc-bench/smollm2-135m-random}"

# PyTorch baseline: Debian's python3-torch with OpenBLAS (OpenMP build), see bench/README.md.
if ! /usr/bin/python3 -c "import torch" 2>/dev/null || [ ! -d /usr/lib/x86_64-linux-gnu/openblas-openmp ]; then
  echo "installing python3-torch and libopenblas0-openmp (apt)" >&2
  apt-get update -qq && apt-get install -y -qq python3-torch libopenblas0-openmp >/dev/null
fi
llmc_windows=(--max-windows "$windows")
torch_windows=(--windows "$windows")
shape="SmolLM2-135M shape, $windows windows a round"
if [ "$stories" = 1 ]; then
  model="$root/samples/models/stories260K"
  /usr/bin/python3 -c "import sentencepiece" 2>/dev/null || apt-get install -y -qq python3-sentencepiece >/dev/null
  tokens=$(mktemp)
  /usr/bin/python3 "$root/bench/sp_tokenize.py" "$model/tokenizer.model" \
      "$root/samples/data/tinystories/valid.jsonl" "$tokens" >/dev/null
  llmc_windows=()
  torch_windows=(--tokens "$tokens")
  shape="stories260K, all 236 windows of TinyStories valid a round"
elif [ ! -d "$model" ]; then
  mkdir -p "$(dirname "$model")"
  "$root/llmc" random-model --config "$shared/models/smollm2-135m-shape" --out "$model" --dtype bf16 --seed 0 >/dev/null
fi

results=$(mktemp)
for round in $(seq 1 "$rounds"); do
  llmc_tps=$("$root/llmc" eval "$model" --data "$root/samples/data/tinystories/valid.jsonl" --seq-len 512 \
      "${llmc_windows[@]}" --warmup 1 --threads "$threads" --json 2>/dev/null \
      | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_second"])')
  torch_tps=$(LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 "$root/bench/torch_llama_eval.py" \
      "$model" --seq-len 512 "${torch_windows[@]}" --threads "$threads" --warmup 1 --repeats 1 --json 2>/dev/null \
      | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_second"])')
  echo "$llmc_tps $torch_tps" >> "$results"
  printf 'round %d: llmc %.1f tokens/s, pytorch %.1f tokens/s, ratio %.3f\n' "$round" "$llmc_tps" "$torch_tps" \
      "$(/usr/bin/python3 -c "print($llmc_tps / $torch_tps)")"
done
/usr/bin/python3 - "$results" "$threads" "$shape" <<'PY'
import statistics, sys, os
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
llmc = [r[0] for r in rows]; torch = [r[1] for r in rows]; ratio = [a / b for a, b in rows]
print(f"machine: {os.cpu_count()} cores; threads {sys.argv[2]}; {sys.argv[3]}, L = 512, {len(rows)} rounds")
print(f"llmc    median {statistics.median(llmc):.1f} tokens/s (min {min(llmc):.1f}, max {max(llmc):.1f})")
print(f"pytorch median {statistics.median(torch):.1f} tokens/s (min {min(torch):.1f}, max {max(torch):.1f})")
print(f"ratio llmc/pytorch: median {statistics.median(ratio):.3f} (min {min(ratio):.3f}, max {max(ratio):.3f})")
PY
rm -f "$results" "${tokens:-}"
