#!/usr/bin/env bash
# Behaviour check for refactors: a fixed set of runs on stories260K, then the SHA-256 of every file
# they wrote (sorted by path). Run it before and after a change and diff the two listings: the same
# lines mean the same bytes. Usage: bench/golden-outputs.sh [OUT_DIR] > hashes.txt
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$(mktemp -d)}"
rm -rf "$out" && mkdir -p "$out"
m="$root/samples/models/stories260K"
train="$root/samples/data/tinystories/train.jsonl"
valid="$root/samples/data/tinystories/valid.jsonl"
llmc() { "$root/llmc" "$@" --threads 2 >/dev/null; }
cal=(--calib "$train" --nsamples 32)
llmc quantize "$m" --out "$out/gptq-ct" --bits 4 --group-size 32 --asym --format compressed-tensors "${cal[@]}" \
  --eval "$valid" --eval-max-windows 4
llmc quantize "$m" --out "$out/gptq-q4_0.gguf" --format gguf --gguf-type q4_0 "${cal[@]}"
llmc quantize "$m" --out "$out/rtn-dense" --method rtn --bits 4 --group-size 32 --format dense --clip mse
llmc quantize "$m" --out "$out/gptq-v1" --bits 4 --group-size 32 --act-order --format gptq --ignore mlp \
  --bits-for 'v_proj=8' "${cal[@]}" --save-stats "$out/stats"
llmc quantize "$m" --out "$out/gptq-stats" --bits 3 --group-size -1 --format compressed-tensors --stats "$out/stats"
llmc prune "$m" --out "$out/wanda50" --method wanda --sparsity 0.5 "${cal[@]}"
llmc prune "$m" --out "$out/sparsegpt24" --method sparsegpt --pattern 2:4 --format sparse-24-bitmask "${cal[@]}"
llmc prune "$m" --out "$out/taylor-channels25" --method taylor --structure channels --sparsity 0.25 "${cal[@]}"
llmc prune "$m" --out "$out/magnitude-row" --method magnitude --sparsity 0.3 --compare row --ignore 'layers\.0\.'
llmc export "$m" --format gguf --type q8_0 --out "$out/q8_0.gguf"
llmc quantize "$out/wanda50" --out "$out/wanda50-gptq" --bits 4 --group-size 32 --format compressed-tensors "${cal[@]}"
(cd "$out" && find . -type f | LC_ALL=C sort | xargs sha256sum)
