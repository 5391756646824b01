#!/usr/bin/env bash
# End-to-end `llmc quantize` (GPTQ, 4 bits, group 128, symmetric) of a random-weight model of the
# SmolLM2-135M shape with 128 calibration windows of 512 tokens: wall time by phase and peak RSS,
# as ratios against the reference figures of the quantization issue (217 s, 2.0 GB on 2 threads).
# With --side-by-side it also runs bench/gptq_pipeline_reference.py (PyTorch, the GPTQ repository's
# true-sequential walk) on the same model and machine: that takes 10+ minutes.
#   bench/quantize-e2e.sh [--side-by-side]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${LLMC_SHARED:-$root/../shared}"
model="${LLMC_BENCH_MODEL:-${TMPDIR:-/tmp}/llmc-bench/smollm2-135m-random}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ ! -d "$model" ]; then
  mkdir -p "$(dirname "$model")"
  "$root/llmc" random-model --config "$shared/models/smollm2-135m-shape" --out "$model" --dtype bf16 --seed 0 >/dev/null
fi
/usr/bin/time -v "$root/llmc" quantize "$model" --out "$work/out" --calib "$root/samples/data/tinystories/train.jsonl" \
    --seq-len 512 --nsamples 128 --threads 2 --json > "$work/report.json" 2> "$work/time.txt"
rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
/usr/bin/python3 - "$work/report.json" "$rss_kb" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1])); s = r["seconds"]; rss = int(sys.argv[2]) * 1024
print(f"machine: {os.cpu_count()} cores; 2 threads; SmolLM2-135M shape, 128 windows x 512 tokens, GPTQ 4-bit g128 sym")
print(f"llmc      total {s['total']:.1f} s (forward {s['forward']:.1f}, statistics {s['statistics']:.1f}, gptq {s['quantize']:.1f}); peak RSS {rss/1e9:.2f} GB")
print(f"reference total 217 s (forward 131, Hessians 71, GPTQ 14); peak RSS 2.0 GB  [figures quoted by the issue]")
print(f"ratio     {217 / s['total']:.2f}x faster; RSS {rss / 2.0e9:.2f} of the reference's")
PY
if [ "${1:-}" = --side-by-side ]; then
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_WAIT_POLICY=PASSIVE /usr/bin/time -v \
      /usr/bin/python3 "$root/bench/gptq_pipeline_reference.py" "$model" --threads 2 --windows 128 --seq-len 512 \
      > "$work/torch.json" 2> "$work/torch-time.txt"
  echo "pytorch (same machine): $(cat "$work/torch.json")"
  echo "pytorch peak RSS kB: $(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/torch-time.txt")"
fi
