#!/usr/bin/env bash
# The quantization issue's quality table on stories260K, measured by llmc next to the figures of
# the independent PyTorch implementation: C1 with the first 128 windows of 512 tokens of
# train.jsonl, P1 on valid.jsonl, written as compressed-tensors (which holds every matrix).
#   bench/quality-table.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
model="$root/samples/models/stories260K"
train="$root/samples/data/tinystories/train.jsonl"
valid="$root/samples/data/tinystories/valid.jsonl"
printf '| method | bits | group | sym | act-order | reference ppl | llmc ppl | llmc / reference |\n|---|---|---|---|---|---|---|---|\n'
# method bits group sym act-order reference
while read -r method bits group sym ao reference; do
  args=(--method "$method" --bits "$bits" --group-size "$group" "--$sym" --format compressed-tensors --eval "$valid" --json)
  [ "$method" = gptq ] && args+=(--calib "$train")
  [ "$ao" = yes ] && args+=(--act-order)
  out="$work/$method-$bits-$group-$sym-$ao"
  ppl=$("$root/llmc" quantize "$model" --out "$out" "${args[@]}" 2>/dev/null \
      | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["eval"]["perplexity_after"])')
  rm -rf "$out"
  label=$([ "$group" = -1 ] && echo per-channel || echo "$group")
  printf '| %s | %s | %s | %s | %s | %s | %.4f | %.4f |\n' "$method" "$bits" "$label" "$sym" \
      "$([ "$method" = gptq ] && echo "$ao" || echo -)" "$reference" "$ppl" \
      "$(/usr/bin/python3 -c "print($ppl / $reference)")"
done <<'TABLE'
rtn 8 32 asym no 4.8425
rtn 4 32 asym no 5.2444
rtn 3 32 asym no 8.6768
rtn 4 32 sym no 5.4618
rtn 4 -1 asym no 5.3955
gptq 8 32 asym no 4.8430
gptq 4 32 asym no 5.1025
gptq 4 32 asym yes 5.0987
gptq 3 32 asym no 6.7956
gptq 3 32 asym yes 6.6072
gptq 4 32 sym no 5.2034
gptq 4 -1 asym no 5.2082
TABLE
