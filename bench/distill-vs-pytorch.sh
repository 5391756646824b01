#!/usr/bin/env bash
# Training throughput of `llmc distill` against the same knowledge-distillation step in PyTorch
# (bench/kd_step_torch.py), side by side on this machine (issue 11's setup):
#   teacher: a random-weight model of the SmolLM2-135M shape (F32, all 30 layers);
#   student: its layers 0,2,...,28 (15), every parameter trainable; batch 4 x 256 tokens;
#   loss alpha 0.5, T 2 (forward KL + CE); AdamW (0.9, 0.95, 1e-8), weight decay 0.01 on 2-D
#   parameters, gradient clipping 1.0; float32; the same thread count on both sides.
# Each round runs llmc, then PyTorch, each as a fresh process of W + K optimizer steps; the first W
# (warm-up) are dropped and tokens/s = K x batch x seq_len / (wall time of the K timed steps).
# llmc's step times come from its --json report (seconds.step_seconds); PyTorch's from the script.
# Peak RSS is /usr/bin/time -v's "Maximum resident set size" of each whole process (loading
# included). Prints every round, then medians, spread (min..max), the llmc/PyTorch ratio and the
# machine. Both sides run with the same OMP_WAIT_POLICY (default PASSIVE, llmc's launcher default:
# on a busy machine OpenMP threads that spin while their partner is descheduled cost PyTorch 5x).
#   bench/distill-vs-pytorch.sh [--rounds 3] [--warmup 1] [--steps 3] [--threads 2]
#                               [--omp-wait-policy PASSIVE|ACTIVE]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/jdk25.sh"
rounds=3 warmup=1 steps=3 threads=2 policy=PASSIVE
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --omp-wait-policy) policy=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds R] [--warmup W] [--steps K] [--threads T] [--omp-wait-policy P]" >&2; exit 2 ;;
  esac
done
shared="${LLMC_SHARED:-$root/../shared}"
model="${LLMC_BENCH_MODEL_F32:-${TMPDIR:-/tmp}/llmc-bench/smollm2-135m-random-f32}"
keep=0,2,4,6,8,10,12,14,16,18,20,22,24,26,28
batch=4 seqlen=256
openblas=/usr/lib/x86_64-linux-gnu/openblas-openmp

# PyTorch baseline: Debian's python3-torch with OpenBLAS (OpenMP build), see bench/README.md.
if ! /usr/bin/python3 -c "import torch" 2>/dev/null || [ ! -d "$openblas" ]; then
  echo "installing python3-torch, libopenblas0-openmp and python3-threadpoolctl (apt)" >&2
  apt-get update -qq && apt-get install -y -qq python3-torch libopenblas0-openmp python3-threadpoolctl >/dev/null
fi
if [ ! -d "$model" ]; then
  mkdir -p "$(dirname "$model")"
  "$root/llmc" random-model --config "$shared/models/smollm2-135m-shape" --out "$model" --dtype f32 --seed 0 >/dev/null
fi
"$root/llmc" --version >/dev/null 2>&1 # builds the launcher's jar now, not inside the first round

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rss_kb() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }
cpu_wait() { sed -n 's/^some .*total=//p' /proc/pressure/cpu 2>/dev/null || echo 0; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
wait_start=$(cpu_wait) t_start=$(date +%s.%N)
for round in $(seq 1 "$rounds"); do
  OMP_WAIT_POLICY=$policy /usr/bin/time -v "$root/llmc" distill --teacher "$model" --keep-layers "$keep" \
      --data "$root/samples/data/tinystories/train.jsonl" --out "$work/student" --overwrite \
      --steps $((warmup + steps)) --batch-size $batch --seq-len $seqlen --threads "$threads" \
      --alpha 0.5 --temperature 2 --divergence forward-kl --weight-decay 0.01 --grad-clip 1.0 --json \
      > "$work/llmc-$round.json" 2> "$work/llmc-$round.time" \
      || { echo "llmc distill failed:" >&2; tail -20 "$work/llmc-$round.time" >&2; exit 1; }
  # OpenBLAS at its best: without the OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE overrides that some
  # machines set (the JSON's blas_kernel shows the kernel threadpoolctl sees).
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH="$openblas" OMP_WAIT_POLICY=$policy \
      /usr/bin/time -v /usr/bin/python3 "$root/bench/kd_step_torch.py" "$model" --keep-layers "$keep" \
      --batch-size $batch --seq-len $seqlen --threads "$threads" --warmup "$warmup" --steps "$steps" \
      --alpha 0.5 --temperature 2 --weight-decay 0.01 --grad-clip 1.0 \
      > "$work/torch-$round.json" 2> "$work/torch-$round.time" \
      || { echo "kd_step_torch.py failed:" >&2; tail -20 "$work/torch-$round.time" >&2; exit 1; }
  /usr/bin/python3 - "$work" "$round" "$warmup" "$(rss_kb "$work/llmc-$round.time")" \
      "$(rss_kb "$work/torch-$round.time")" <<'PY'
import json, sys
work, rnd, warmup, llmc_rss, torch_rss = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
l = json.load(open(f"{work}/llmc-{rnd}.json")); t = json.load(open(f"{work}/torch-{rnd}.json"))
tr = l["training"]; tokens = tr["batch_size"] * tr["seq_len"] * tr["grad_accum"]
ls = l["seconds"]["step_seconds"][warmup:]; ts = t["step_seconds"][warmup:]
ltps = tokens * len(ls) / sum(ls); ttps = t["tokens_per_second"]
with open(f"{work}/rounds.txt", "a") as f:
    f.write(f"{ltps} {ttps} {llmc_rss} {torch_rss} {l['seconds']['tokens_per_second']}\n")
fmt = lambda xs: "/".join("%.1f" % x for x in xs)
print(f"round {rnd}: llmc {ltps:.1f} tokens/s (steps {fmt(l['seconds']['step_seconds'])} s, peak RSS {llmc_rss / 1048576:.2f} GiB), "
      f"pytorch {ttps:.1f} tokens/s (steps {fmt(t['step_seconds'])} s, peak RSS {torch_rss / 1048576:.2f} GiB), ratio {ltps / ttps:.3f}")
PY
done
t_end=$(date +%s.%N) wait_end=$(cpu_wait)
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

/usr/bin/python3 - "$work" "$threads" "$warmup" "$steps" "$policy" "$load_start" "$load_end" \
    "$(/usr/bin/python3 -c "print(($wait_end - $wait_start) / 1e6 / ($t_end - $t_start) * 100)")" \
    "$(lscpu | sed -n 's/^Model name: *//p')" "$("$JAVA_HOME/bin/java" -version 2>&1 | head -1)" <<'PY'
import json, statistics, sys, os
work, threads, warmup, steps, policy, load0, load1, wait, cpu, jdk = sys.argv[1:11]
rows = [tuple(map(float, l.split())) for l in open(f"{work}/rounds.txt")]
t = json.load(open(f"{work}/torch-1.json"))
llmc = [r[0] for r in rows]; torch = [r[1] for r in rows]; ratio = [r[0] / r[1] for r in rows]
lrss = [r[2] / 1048576 for r in rows]; trss = [r[3] / 1048576 for r in rows]; lall = [r[4] for r in rows]
kern = t.get("blas_kernel") or [{}]
print(f"machine: {cpu}, {os.cpu_count()} cores; {jdk}; llmc: DJL PyTorch 2.7.1 CPU; "
      f"pytorch {t['torch_version']} + {os.path.basename((t['blas'] or ['?'])[-1])} "
      f"(kernel {kern[0].get('architecture')}, {kern[0].get('num_threads')} threads)")
print(f"setup: threads {threads}, OMP_WAIT_POLICY={policy}; teacher 30 layers, student 15 layers "
      f"({t['trainable_parameters']:,} trainable); batch 4 x 256; {len(rows)} rounds of {warmup} warm-up + {steps} timed steps")
print(f"busy machine check: load average {load0} at the start, {load1} at the end; "
      f"some task waited for a CPU {float(wait):.0f}% of the time (/proc/pressure/cpu)")
s = lambda xs, f="%.1f": f"median {f % statistics.median(xs)} (min {f % min(xs)}, max {f % max(xs)})"
print(f"llmc    tokens/s {s(llmc)}; peak RSS GiB {s(lrss, '%.2f')}")
print(f"        (its own seconds.tokens_per_second, warm-up step included: {s(lall)})")
print(f"pytorch tokens/s {s(torch)}; peak RSS GiB {s(trss, '%.2f')}")
print(f"ratio llmc/pytorch tokens/s: {s(ratio, '%.3f')}; peak RSS llmc/pytorch {statistics.median(lrss) / statistics.median(trss):.2f}")
ok_speed = statistics.median(llmc) >= statistics.median(torch); ok_rss = max(lrss) <= max(trss)
print(f"target (throughput >= PyTorch's, peak RSS no higher): throughput {'met' if ok_speed else 'NOT met'}, "
      f"peak RSS {'met' if ok_rss else 'NOT met'}")
PY
