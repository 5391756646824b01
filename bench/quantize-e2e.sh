#!/usr/bin/env bash
# End-to-end `llmc quantize` (GPTQ, 4 bits, group 128, symmetric) of a random-weight model of the
# SmolLM2-135M shape with 128 calibration windows of 512 tokens: wall time by phase and peak RSS,
# as ratios against the reference figures of the quantization issue (217 s, 2.0 GB on 2 threads).
# With --side-by-side it also runs bench/gptq_pipeline_reference.py (PyTorch, the GPTQ repository's
# true-sequential walk) on the same model and machine: that takes 10+ minutes. With --threads it
# runs llmc again on one thread and prints each phase's speed-up from the second thread.
#   bench/quantize-e2e.sh [--side-by-side | --threads]
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
run() { # threads -> $work/report-T.json, $work/time-T.txt
  /usr/bin/time -v "$root/llmc" quantize "$model" --out "$work/out-$1" --calib "$root/samples/data/tinystories/train.jsonl" \
      --seq-len 512 --nsamples 128 --threads "$1" --json > "$work/report-$1.json" 2> "$work/time-$1.txt"
}
run 2
rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time-2.txt")
/usr/bin/python3 - "$work/report-2.json" "$rss_kb" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1])); s = r["seconds"]; rss = int(sys.argv[2]) * 1024
print(f"machine: {os.cpu_count()} cores; 2 threads; SmolLM2-135M shape, 128 windows x 512 tokens, GPTQ 4-bit g128 sym")
print(f"llmc      total {s['total']:.1f} s (forward {s['forward']:.1f}, statistics {s['statistics']:.1f}, gptq {s['quantize']:.1f}); peak RSS {rss/1e9:.2f} GB")
print(f"reference total 217 s (forward 131, Hessians 71, GPTQ 14); peak RSS 2.0 GB  [figures quoted by the issue]")
print(f"ratio     {217 / s['total']:.2f}x faster; RSS {rss / 2.0e9:.2f} of the reference's")
PY
if [ "${1:-}" = --threads ]; then # the same run on one thread: each phase's speed-up from the second
  rm -rf "$work/out-2"
  run 1
  /usr/bin/python3 - "$work/report-1.json" "$work/report-2.json" <<'PY'
import json, sys
one, two = (json.load(open(f))["seconds"] for f in sys.argv[1:3])
print(f"{'phase':12} {'1 thread s':>10} {'2 threads s':>12} {'speed-up':>9}")
for phase in ("forward", "statistics", "quantize", "total"):
    print(f"{phase:12} {one[phase]:10.1f} {two[phase]:12.1f} {one[phase] / two[phase]:8.2f}x")
PY
fi
if [ "${1:-}" = --side-by-side ]; then
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_WAIT_POLICY=PASSIVE /usr/bin/time -v \
      /usr/bin/python3 "$root/bench/gptq_pipeline_reference.py" "$model" --threads 2 --windows 128 --seq-len 512 \
      > "$work/torch.json" 2> "$work/torch-time.txt"
  echo "pytorch (same machine): $(cat "$work/torch.json")"
  echo "pytorch peak RSS kB: $(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/torch-time.txt")"
fi
