#!/usr/bin/env bash
# Runs the README's block of examples (between <!-- examples:start --> and <!-- examples:end -->),
# line by line, as written, from the repository root; fails on the first command that fails.
# /tmp/ex is cleared first (the examples write there without --overwrite).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rm -rf /tmp/ex
mapfile -t lines < <(sed -n '/<!-- examples:start -->/,/<!-- examples:end -->/p' README.md | grep '^\./llmc ')
[ "${#lines[@]}" -ge 10 ] || { echo "readme-examples: expected the README's examples, found ${#lines[@]}" >&2; exit 1; }
for line in "${lines[@]}"; do
  echo "== $line" >&2
  start=$SECONDS
  if ! bash -c "$line" >/tmp/readme-example.out 2>/tmp/readme-example.err; then
    tail -5 /tmp/readme-example.err >&2
    echo "readme-examples: FAILED: $line" >&2
    exit 1
  fi
  echo "   ok ($((SECONDS - start)) s): $(tail -1 /tmp/readme-example.out | cut -c1-120)" >&2
done
echo "readme-examples: all ${#lines[@]} examples ran" >&2
