#!/usr/bin/env bash
# Issue 11's setup S1 (and S2 with --s2): teacher stories260K, student = its layers 0,2,4 (S2: the
# 25%-channel Lp-2 pruned teacher), 8 windows of 256 tokens per step, AdamW (0.9, 0.95, 1e-8,
# weight decay 0.01 on 2-D weights), 10% warm-up, cosine to 10%, clip 1.0; P1 (L = 512) on
# valid.jsonl. Prints one line per run: name, P1 perplexity after, seconds.
# Usage: bench/distill-s1.sh [RUN_NAME...]   (default: b c d; also b1000 c1000 b_lr1e-3 c_lr1e-3
#        d_lr1e-3 kl_t1 kl_t2 c_cache s2_b s2_c s2_lora)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
m="$root/samples/models/stories260K"
train="$root/samples/data/tinystories/train.jsonl"
valid="$root/samples/data/tinystories/valid.jsonl"
common=(--teacher "$m" --data "$train" --eval "$valid" --threads 2 --json --overwrite)
cut=(--keep-layers 0,2,4)
run() {
  local name="$1"; shift
  local t0=$SECONDS
  "$root/llmc" distill "${common[@]}" --out "$out/$name" "$@" > "$out/$name.json"
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('%-28s teacher %.4f  before %s  after %.4f' % (sys.argv[2], r['teacher_eval']['perplexity'], ('%.4f' % r['student_before']['perplexity']) if r.get('student_before') else '-', r['student_after']['perplexity']))" "$out/$name.json" "$name" | tr -d '\n'
  echo "  ($((SECONDS - t0)) s)"
}
runs=("${@:-b c d}")
for r in ${runs[@]}; do
  case "$r" in
    b) run "b-hard-labels" "${cut[@]}" --alpha 0 ;;
    c) run "c-distilled" "${cut[@]}" --alpha 0.5 --temperature 2 ;;
    d) run "d-hidden" "${cut[@]}" --alpha 0.5 --temperature 2 --beta 1 --hidden-pairs 0:0,1:2,2:4 ;;
    b1000) run "b-1000-steps" "${cut[@]}" --alpha 0 --steps 1000 ;;
    c1000) run "c-1000-steps" "${cut[@]}" --alpha 0.5 --steps 1000 ;;
    b_lr1e-3) run "b-lr1e-3" "${cut[@]}" --alpha 0 --lr 1e-3 ;;
    c_lr1e-3) run "c-lr1e-3" "${cut[@]}" --alpha 0.5 --lr 1e-3 ;;
    d_lr1e-3) run "d-lr1e-3" "${cut[@]}" --alpha 0.5 --lr 1e-3 --beta 1 --hidden-pairs 0:0,1:2,2:4 ;;
    kl_t1) run "kl-T1-lr1e-3" "${cut[@]}" --alpha 1 --temperature 1 --lr 1e-3 ;;
    kl_t2) run "kl-T2-lr1e-3" "${cut[@]}" --alpha 1 --temperature 2 --lr 1e-3 ;;
    c_cache) run "c-teacher-cache" "${cut[@]}" --alpha 0.5 --temperature 2 --teacher-cache "$out/teacher-cache" ;;
    s2_b|s2_c|s2_lora)
      if [ ! -d "$out/s2-pruned" ]; then
        "$root/llmc" prune "$m" --out "$out/s2-pruned" --method lp --p 2 --structure channels \
          --sparsity 0.25 --threads 2 >/dev/null
      fi
      case "$r" in
        s2_b) run "s2-healed-hard-labels" --student "$out/s2-pruned" --alpha 0 ;;
        s2_c) run "s2-healed-distilled" --student "$out/s2-pruned" --alpha 0.5 --temperature 2 ;;
        s2_lora) run "s2-healed-lora8" --student "$out/s2-pruned" --alpha 0.5 --temperature 2 --lora-rank 8 ;;
      esac ;;
    *) echo "unknown run $r" >&2; exit 2 ;;
  esac
done
