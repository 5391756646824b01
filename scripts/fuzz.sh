#!/usr/bin/env bash
# Coverage-guided fuzzing of llmc's parsers with Jazzer: runs every @FuzzTest for SECONDS each
# (default 60), one JVM at a time, and prints per target the executions run and the crashes found.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     TARGET: e.g. SafetensorsFuzzTest#header (default: all)
# A crash stops its target (libFuzzer stops at the first finding); the crashing input is written to
# the target's corpus folder (src/test/resources/<package>/<Class>Inputs/<method>/crash-<sha1>), so
# that `mvn verify` replays it from then on: fix the parser, keep the file. Inputs that reached new
# code are kept in <module>/.cifuzz-corpus/ (ignored by git) and reused by the next run. Logs: target/fuzz/.
# Without JAZZER_FUZZ (./run-tests, mvn verify) the same methods only replay their corpus.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/jdk25.sh"
cd "$root"
seconds="${1:-60}"
shift || true
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2; }

# module:Class#method
all=(
  formats:SafetensorsFuzzTest#header
  formats:SafetensorsFuzzTest#index
  formats:GgufFuzzTest#open
  formats:ModelConfigFuzzTest#read
  formats:QuantizedCheckpointFuzzTest#open
  formats:SentencePieceModelFuzzTest#read
  formats:GgufTokenizerFuzzTest#fromJson
  model:TextDatasetFuzzTest#jsonl
  model:TextDatasetFuzzTest#txt
  model:LlamaGgufFuzzTest#family
  model:TokenizerFuzzTest#open
)
targets=()
if [ "$#" -eq 0 ]; then
  targets=("${all[@]}")
else
  for want in "$@"; do
    found=""
    for t in "${all[@]}"; do [ "${t#*:}" = "$want" ] && found="$t"; done
    [ -n "$found" ] || { echo "fuzz: unknown target '$want' (known: ${all[*]#*:})" >&2; exit 2; }
    targets+=("$found")
  done
fi

mkdir -p target/fuzz
echo "fuzz: compiling" >&2
mvn -B -q -o test-compile -pl formats,model -am >target/fuzz/compile.log 2>&1 \
  || { tail -30 target/fuzz/compile.log >&2; exit 1; }

start=$SECONDS
failed=0
printf '%-42s %12s %8s  %s\n' target executions crashes finding
for t in "${targets[@]}"; do
  module="${t%%:*}"
  test="${t#*:}"
  log="target/fuzz/${test/\#/.}.log"
  # -max_total_time overrides @FuzzTest(maxDuration). Each class's @Timeout(10) becomes libFuzzer's
  # -timeout (an input running longer is a finding); JUnit's own timeouts are switched off, since
  # for JUnit the whole fuzzing run is one invocation.
  JAZZER_FUZZ=1 mvn -B -o test -pl "$module" -am -Dtest="$test" -Dsurefire.failIfNoSpecifiedTests=false \
    -Djunit.jupiter.execution.timeout.mode=disabled \
    -Djazzer.internal.arg.0=fuzz -Djazzer.internal.arg.1=-max_total_time="$seconds" >"$log" 2>&1 || true
  runs="$(sed -n 's/^Done \([0-9]*\) runs in.*/\1/p' "$log" | tail -1 || true)"
  crashes=0
  finding=""
  if [ -z "$runs" ]; then
    # stopped by a finding: the last status line has the count
    runs="$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)"
  fi
  if grep -q 'Test unit written to' "$log"; then
    crashes=1
    finding="$(grep -aoE 'FuzzTestFindingException: [^ ]+' "$log" | head -1 | sed 's/^FuzzTestFindingException: //; s/:$//' || true)"
    finding="$finding -> $(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | head -1 || true)"
    failed=1
  elif ! grep -q 'BUILD SUCCESS' "$log"; then
    finding="build failed, see $log"
    failed=1
  fi
  printf '%-42s %12s %8s  %s\n' "$test" "${runs:-?}" "$crashes" "$finding"
done
echo "fuzz: ${#targets[@]} targets, $((SECONDS - start)) s; logs in target/fuzz/" >&2
exit "$failed"
