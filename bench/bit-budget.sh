#!/usr/bin/env bash
# The automatic bit budget on stories260K against the same budget filled in random order, the
# issue's acceptance rows (independent PyTorch implementation: automatic RTN {3,4} at 3.5 bits per
# weight 6.0503; random fills 6.36-6.58). C1 = the first 128 windows of 512 tokens of
# train.jsonl, P1 on valid.jsonl, RTN, groups of 32, asymmetric, compressed-tensors.
#   bench/bit-budget.sh [SEEDS]     (default 3 random fills)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
model="$root/samples/models/stories260K"
train="$root/samples/data/tinystories/train.jsonl"
valid="$root/samples/data/tinystories/valid.jsonl"
seeds="${1:-3}"
common=(--method rtn --group-size 32 --asym --format compressed-tensors --eval "$valid" --json)
ppl() { /usr/bin/python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["eval"]["perplexity_after"])'; }

start=$(date +%s)
"$root/llmc" quantize "$model" --out "$work/auto" "${common[@]}" --bits 4 --target-bpw 3.5 \
    --bits-choices 3,4 --calib "$train" 2>/dev/null > "$work/auto.json"
seconds=$(( $(date +%s) - start ))
auto=$(ppl < "$work/auto.json")
/usr/bin/python3 - "$work/auto.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))["bit_budget"]
print(f"automatic allocation: {b['bits_per_weight']:.4f} bits per weight; calibration loss"
      f" {b['baseline_loss']:.4f} + predicted {b['predicted_loss_increase']:.4f},"
      f" measured {b['measured_loss_increase']:.4f}")
PY
printf '| allocation | bits per weight | reference ppl | llmc ppl |\n|---|---|---|---|\n'
printf '| automatic, RTN {3,4} at 3.5 (%d s) | %s | 6.0503 | %s |\n' "$seconds" \
    "$(/usr/bin/python3 -c "import json; print('%.4f' % json.load(open('$work/auto.json'))['bit_budget']['bits_per_weight'])")" "$auto"
for seed in $(seq 1 "$seeds"); do
  # The same budget filled in random order: every matrix at 3 bits, then matrices in a random
  # order raised to 4 bits while the budget allows.
  mapfile -t overrides < <(/usr/bin/python3 - "$work/auto.json" "$seed" "$work/bpw-$seed" <<'PY'
import json, random, sys
b = json.load(open(sys.argv[1]))["bit_budget"]
rows = b["allocation"]
total = sum(a["weights"] for a in rows)
room = 3.5 * total - 3 * total
order = list(range(len(rows)))
random.Random(int(sys.argv[2])).shuffle(order)
used = 0
for i in order:
    if used + rows[i]["weights"] <= room:
        used += rows[i]["weights"]
        print("--bits-for")
        print("^" + rows[i]["module"].replace(".", "\\.") + "$=4")
open(sys.argv[3], "w").write("%.4f" % (3 + used / total))
PY
  )
  "$root/llmc" quantize "$model" --out "$work/random-$seed" "${common[@]}" --bits 3 \
      "${overrides[@]}" 2>/dev/null > "$work/random-$seed.json"
  printf '| random fill, seed %s | %s | 6.36-6.58 | %s |\n' "$seed" "$(cat "$work/bpw-$seed")" \
      "$(ppl < "$work/random-$seed.json")"
done
