#!/usr/bin/env bash
# GGUF interop: llmc writes GGUF files of the sample model (export and GPTQ quantize), and a REAL
# llama.cpp runs them: the prebuilt CPU binary of node-llama-cpp, pinned in interop/package.json
# (the llama.cpp release it was built from is printed and is in every result line). For every file:
# it loads, greedy decoding gives text, and llama.cpp's own perplexity (llama-perplexity's protocol,
# see llama-check.mjs) meets the figures below. F32 and Q8_0 must also decode greedily exactly the
# tokens `llmc generate` decodes.
#
#   bash interop/run.sh            (from anywhere; CI runs it from .ci/run)
#
# Needs node >= 20 and npm (registry access for `npm ci`); everything else is offline.
# Env: LLMC_INTEROP_JOBS=N  checks run in parallel (default: number of cores, at most 6)
#      LLMC_INTEROP_KEEP=1  keep the GGUF files and logs (the directory is printed)
#      LLMC_INTEROP_GGUF_DIR=DIR  take the GGUF files (names as in `specs` below) from DIR instead of
#                           making them with llmc (to recheck files, or files of another writer)
#      LLMC=COMMAND         how to run llmc (default: the repository's ./llmc launcher)
# Output (stdout): a markdown table, then one JSON line per file. Exit status 1 on any failure, with
# a line on stderr naming the file and the check.
set -euo pipefail

# ---- Figures (stories260K, valid.jsonl, llama-perplexity protocol: n_ctx 512, 237 windows, 255
# scored tokens each). From the GGUF issue's table of llama.cpp perplexities. Cross-checked with
# this llama.cpp on GGUF files written by llama.cpp's own gguf-py (its converter's conventions and
# quantizers; embedding and ffn_down left F32): F32 4.982368, Q8_0 4.986849, Q4_0 5.336932,
# Q4_1 5.255253.
PPL_F32=4.9823          # F32 export: within PPL_TOL of this
PPL_Q8_0=4.9874         # RTN Q8_0 export: within PPL_TOL
PPL_Q5_1=5.0227         # RTN Q5_1 export: within PPL_TOL
PPL_Q4_0=5.3396         # RTN Q4_0 export: within PPL_TOL
PPL_Q4_1=5.2555         # RTN Q4_1 export: within PPL_TOL
PPL_GPTQ_Q4_0_MAX=5.2858  # GPTQ -> Q4_0 must beat this (strictly below)
PPL_GPTQ_Q4_1_MAX=5.2166  # GPTQ -> Q4_1 must beat this (strictly below)
PPL_TOL=0.005           # relative tolerance of the "within" checks (0.5%)
GREEDY_N=30
PROMPT="Once upon a time"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
here="$root/interop"
model="samples/models/stories260K"
valid="samples/data/tinystories/valid.jsonl"
train="samples/data/tinystories/train.jsonl"
cd "$root"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/llmc-interop.XXXXXX")"
cleanup() {
  if [ "${LLMC_INTEROP_KEEP:-0}" = 1 ]; then echo "interop: files kept in $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
fail() { echo "interop: FAIL: $* ($((SECONDS - start)) s)" >&2; exit 1; }
start=$SECONDS
phase() { echo "== interop [$((SECONDS - start)) s]: $*" >&2; }

# ---- node and the pinned llama.cpp
command -v node >/dev/null || fail "node not found (node >= 20 is needed for node-llama-cpp)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || fail "node $(node -v) is too old (node-llama-cpp needs >= 20)"
phase "npm ci (node $(node -v), npm $(npm -v 2>/dev/null))"
# The prebuilt CPU binary comes in the @node-llama-cpp/linux-x64 package: no download from GitHub,
# no build (node-llama-cpp's postinstall would only do those, so scripts are off).
export NODE_LLAMA_CPP_SKIP_DOWNLOAD=true
(cd "$here" && npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error >&2) \
  || fail "npm ci in interop/ failed"

# ---- the files, made by llmc
# name | how llmc makes it | check: "rel TARGET" (within PPL_TOL) or "lt MAX" | greedy must match llmc
specs=(
  "stories-f32.gguf|export --type f32|rel $PPL_F32|yes"
  "stories-q8_0.gguf|export --type q8_0|rel $PPL_Q8_0|yes"
  "stories-q5_1.gguf|export --type q5_1|rel $PPL_Q5_1|no"
  "stories-q4_0.gguf|export --type q4_0|rel $PPL_Q4_0|no"
  "stories-q4_1.gguf|export --type q4_1|rel $PPL_Q4_1|no"
  "stories-gptq-q4_0.gguf|quantize --gguf-type q4_0|lt $PPL_GPTQ_Q4_0_MAX|no"
  "stories-gptq-q4_1.gguf|quantize --gguf-type q4_1|lt $PPL_GPTQ_Q4_1_MAX|no"
  # AWQ's scales folded into the norms and v_proj/up_proj rows: must beat RTN Q4_0 (5.2729 when
  # added; GPTQ 5.2572), which shows llama.cpp computes the folded model.
  "stories-awq-q4_0.gguf|quantize --gguf-type q4_0 --method awq|lt $PPL_Q4_0|no"
  # The recipe's end product: 25% of the MLP channels pruned, healed by distillation, GPTQ Q4_1.
  # It must beat the pruned model before healing (20.46, issue 11's setup S2).
  "stories-minitron.gguf|run samples/recipes/minitron.yaml|lt 20.46|no"
)
llmc="${LLMC:-./llmc}"
for spec in "${specs[@]}"; do
  IFS='|' read -r name how _ _ <<<"$spec"
  read -r cmd opt typ rest <<<"$how"
  if [ -n "${LLMC_INTEROP_GGUF_DIR:-}" ]; then
    cp "$LLMC_INTEROP_GGUF_DIR/$name" "$tmp/$name" || fail "$name: not in LLMC_INTEROP_GGUF_DIR=$LLMC_INTEROP_GGUF_DIR"
    continue
  fi
  phase "llmc $cmd $opt $typ -> $name"
  if [ "$cmd" = export ]; then
    args=(export "$model" --format gguf "$opt" "$typ" --out "$tmp/$name")
  elif [ "$cmd" = run ]; then
    args=(run "$opt" --out "$tmp/$name.run")
  else
    args=(quantize "$model" --format gguf "$opt" "$typ" --calib "$train" --out "$tmp/$name")
    # shellcheck disable=SC2206 # extra options of the spec, split on spaces
    [ -z "$rest" ] || args+=($rest)
  fi
  rc=0; $llmc "${args[@]}" >"$tmp/$name.llmc.log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -n 20 "$tmp/$name.llmc.log" >&2
    fail "$name: llmc ${args[*]} failed (exit $rc)"
  fi
  if [ "$cmd" = run ]; then cp "$tmp/$name.run/model.gguf" "$tmp/$name" || fail "$name: the recipe wrote no model.gguf"; fi
  [ -s "$tmp/$name" ] || fail "$name: llmc ${args[*]} wrote no file"
done

phase "llmc generate (greedy reference)"
rc=0; $llmc generate "$model" --prompt "$PROMPT" --max-tokens "$GREEDY_N" --json >"$tmp/generate.json" 2>"$tmp/generate.log" || rc=$?
if [ "$rc" -ne 0 ]; then tail -n 20 "$tmp/generate.log" >&2; fail "llmc generate failed (exit $rc)"; fi

# ---- llama.cpp on every file, in parallel
jobs="${LLMC_INTEROP_JOBS:-$(nproc)}"
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
[ "$jobs" -le 6 ] || jobs=6
# Cores left over go to llama.cpp threads (at most 4 a file; results do not depend on the count).
threads=$(( $(nproc) / jobs )); [ "$threads" -ge 1 ] || threads=1; [ "$threads" -le 4 ] || threads=4
phase "llama.cpp on ${#specs[@]} files, $jobs at a time, $threads thread(s) each"
pids=()
for spec in "${specs[@]}"; do
  IFS='|' read -r name _ _ _ <<<"$spec"
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  ( node "$here/llama-check.mjs" --model "$tmp/$name" --greedy "$GREEDY_N" --prompt "$PROMPT" --ppl "$valid" --threads "$threads" \
      >"$tmp/$name.json" 2>"$tmp/$name.err" && echo 0 >"$tmp/$name.rc" || echo $? >"$tmp/$name.rc" ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done

# ---- verdicts
phase "verdicts"
printf '%s\n' "${specs[@]}" >"$tmp/specs.txt"
TMPD="$tmp" PPL_TOL="$PPL_TOL" GREEDY_N="$GREEDY_N" node --input-type=module - <<'EOF'
import fs from "node:fs";
const dir = process.env.TMPD, tol = Number(process.env.PPL_TOL), n = Number(process.env.GREEDY_N);
const gen = JSON.parse(fs.readFileSync(`${dir}/generate.json`, "utf8"));
if (!Array.isArray(gen.tokens)) { console.error("interop: FAIL: llmc generate --json has no tokens array"); process.exit(1); }
const ref = gen.tokens.slice(0, n);
const failures = [], rows = [], lines = [];
let version = null;
for (const spec of fs.readFileSync(`${dir}/specs.txt`, "utf8").trim().split("\n")) {
  const [name, how, check, greedy] = spec.split("|");
  const [rule, target] = [check.split(" ")[0], Number(check.split(" ")[1])];
  const bad = (what) => failures.push(`${name}: ${what}`);
  const size = fs.statSync(`${dir}/${name}`).size;
  const rc = Number(fs.readFileSync(`${dir}/${name}.rc`, "utf8").trim());
  const row = {file: name, made_by: `llmc ${how}`, bytes: size, perplexity: null, check: null, greedy_match: null, ok: false};
  if (rc !== 0) {
    const err = fs.readFileSync(`${dir}/${name}.err`, "utf8").trim().split("\n").slice(-15).join("\n    ");
    bad(`llama.cpp run failed (exit ${rc}):\n    ${err}`);
  } else {
    const r = JSON.parse(fs.readFileSync(`${dir}/${name}.json`, "utf8"));
    version ??= r.llama_cpp_version;
    row.llama_cpp_version = r.llama_cpp_version;
    row.perplexity = r.perplexity; row.windows = r.windows; row.scored = r.scored;
    row.greedy_tokens = r.greedy_tokens; row.greedy_text = r.greedy_text;
    const nBad = failures.length;
    if (!(r.greedy_tokens?.length >= 1) || !(r.greedy_text ?? "").trim()) bad(`load/generate: no generated text (tokens ${JSON.stringify(r.greedy_tokens)})`);
    row.greedy_match = JSON.stringify(r.greedy_tokens) === JSON.stringify(ref);
    if (greedy === "yes" && !row.greedy_match)
      bad(`greedy tokens differ from llmc generate:\n    llama.cpp ${JSON.stringify(r.greedy_tokens)}\n    llmc      ${JSON.stringify(ref)}`);
    if (!Number.isFinite(r.perplexity)) bad(`perplexity is ${r.perplexity}`);
    else if (rule === "rel") {
      const rel = r.perplexity / target - 1;
      row.check = `within ${(tol * 100).toFixed(1)}% of ${target} (${rel >= 0 ? "+" : ""}${(rel * 100).toFixed(3)}%)`;
      if (Math.abs(rel) > tol) bad(`perplexity ${r.perplexity.toFixed(4)} not within ${(tol * 100).toFixed(1)}% of ${target} (${(rel * 100).toFixed(3)}%)`);
    } else {
      row.check = `< ${target}`;
      if (!(r.perplexity < target)) bad(`perplexity ${r.perplexity.toFixed(4)} not below ${target}`);
    }
    row.ok = failures.length === nBad;
  }
  rows.push(row);
}
console.log(`llama.cpp: ${version ?? "(no file ran)"}; llmc generate greedy reference: ${JSON.stringify(ref)}\n`);
console.log("| file | made by | size | llama.cpp ppl | check | greedy = llmc | ok |");
console.log("|---|---|---:|---:|---|---|---|");
for (const r of rows) {
  console.log(`| ${r.file} | ${r.made_by} | ${(r.bytes / 1024).toFixed(1)} KiB | ${r.perplexity == null ? "-" : r.perplexity.toFixed(4)} | ${r.check ?? "-"} | ${r.greedy_match == null ? "-" : r.greedy_match ? "yes" : "no"} | ${r.ok ? "ok" : "FAIL"} |`);
}
console.log("");
for (const r of rows) console.log(JSON.stringify(r));
for (const f of failures) console.error(`interop: FAIL: ${f}`);
process.exit(failures.length ? 1 : 0);
EOF
phase "all checks passed"
