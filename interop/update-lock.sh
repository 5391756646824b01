#!/usr/bin/env bash
# Regenerates interop/package-lock.json after a change of package.json (e.g. a new node-llama-cpp).
#
# Why not plain `npm install`: node-llama-cpp lists one optional package per platform, and the
# registry this project uses lacks some of them (e.g. @node-llama-cpp/win-x64@3.22.1 answers 404).
# npm >= 11.16 then leaves them out of the lockfile and `npm ci` rejects its own lockfile
# ("Missing: @node-llama-cpp/win-x64@ from lock file", npm/cli#9846). So every optional platform
# package the lockfile lacks gets an entry with its version, os and cpu only: `npm ci --omit=optional`
# never installs them (nor would any npm on another platform without --omit), and validation passes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export NODE_LLAMA_CPP_SKIP_DOWNLOAD=true
rm -f package-lock.json
npm install --package-lock-only --ignore-scripts --no-audit --no-fund
node --input-type=module - <<'JS'
import fs from "node:fs";
const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
const nlc = lock.packages["node_modules/node-llama-cpp"];
const added = [];
for (const [name, version] of Object.entries(nlc.optionalDependencies ?? {})) {
  const key = `node_modules/${name}`;
  if (lock.packages[key]) continue;
  const plat = name.split("/")[1];                     // linux-x64-cuda, mac-arm64-metal, win-x64, ...
  const os = {linux: "linux", mac: "darwin", win: "win32"}[plat.split("-")[0]];
  lock.packages[key] = {version, optional: true, os: [os], cpu: [plat.split("-")[1]]};
  added.push(`${name}@${version}`);
}
const [root, ...rest] = Object.entries(lock.packages);
lock.packages = Object.fromEntries([root, ...rest.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
fs.writeFileSync("package-lock.json", JSON.stringify(lock, null, 2) + "\n");
console.error(`placeholders for optional packages the registry lacks: ${added.join(", ") || "none"}`);
JS
npm ci --omit=optional --ignore-scripts --no-audit --no-fund
