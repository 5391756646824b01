#!/usr/bin/env bash
# Time per decoder layer of the calibration-based methods side by side, on a SmolLM2-135M-shape
# random model (30 layers, BF16): GPTQ, AWQ (scales; scales and clipping; scales then GPTQ) and the
# automatic bit budget's sensitivity pass, all with 4-bit groups of 128 on the same calibration
# windows. Each row is one llmc quantize run (a fresh JVM); the table gives the run's phases from
# its report and the quantization phase per layer. The budget's pass runs fewer windows (its
# trials each run the layers after their matrix and the 49152-token vocabulary projection).
#   bench/quantize-methods.sh [NSAMPLES] [BUDGET_NSAMPLES]    (default 8 and 2 windows of 512)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
n="${1:-8}"
nb="${2:-2}"
train="$root/samples/data/tinystories/train.jsonl"
config="$root/../shared/models/smollm2-135m-shape"
"$root/llmc" random-model --config "$config" --out "$work/model" --dtype bf16 --seed 1 >/dev/null 2>&1
layers=30
printf 'SmolLM2-135M shape, %d layers; calibration %d x 512 tokens (the budget: %d x 512)\n' "$layers" "$n" "$nb"
printf '| method | total s | forward s | statistics s | quantize s | quantize s per layer |\n|---|---|---|---|---|---|\n'
run() {
  local label="$1"; shift
  "$root/llmc" quantize "$work/model" --out "$work/out" --overwrite --format compressed-tensors \
      --bits 4 --group-size 128 --calib "$train" --seq-len 512 --json "$@" 2>/dev/null > "$work/r.json"
  /usr/bin/python3 - "$work/r.json" "$label" "$layers" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["seconds"]
layers = int(sys.argv[3])
print(f"| {sys.argv[2]} | {s['total']:.1f} | {s['forward']:.1f} | {s['statistics']:.1f} |"
      f" {s['quantize']:.1f} | {s['quantize'] / layers:.2f} |")
PY
}
run "GPTQ" --method gptq --nsamples "$n"
run "AWQ scales, RTN" --method awq --nsamples "$n"
run "AWQ scales and clipping, RTN" --method awq --clip mse --nsamples "$n"
run "AWQ scales, then GPTQ" --method awq-gptq --nsamples "$n"
start=$(date +%s)
run "RTN with the bit budget {3,4} at 3.5 (sensitivity pass in total, not in quantize)" \
    --method rtn --target-bpw 3.5 --bits-choices 3,4 --nsamples "$nb"
printf 'bit budget run: %d s wall, %d trials (30 layers x 7 matrices x 2 choices): %.2f s a trial, %.1f s a layer\n' \
    "$(( $(date +%s) - start ))" 420 "$(/usr/bin/python3 -c "print(($(date +%s) - $start) / 420)")" \
    "$(/usr/bin/python3 -c "print(($(date +%s) - $start) / 30)")"
