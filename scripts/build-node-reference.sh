#!/usr/bin/env bash
# Build the Node.js backend that ovmeet replaces (OpenVidu Meet at its commit, for the benchmarks)
# from a git clone of github.com/OpenVidu/openvidu-meet into .cache/node-reference/<commit>/.
# Usage: scripts/build-node-reference.sh GIT_DIR   (or NODE_REFERENCE_GIT=GIT_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
commit=fb0bf4b1
source_git="${1:-${NODE_REFERENCE_GIT:-}}"
target=".cache/node-reference/$commit"
[ -f "$target/backend/dist/src/server.js" ] && exit 0
if [ -z "$source_git" ] || ! git -C "$source_git" cat-file -e "$commit^{commit}" 2>/dev/null; then
  echo "build-node-reference: give a git clone of github.com/OpenVidu/openvidu-meet that has" \
    "commit $commit (argument or NODE_REFERENCE_GIT)" >&2
  exit 1
fi
command -v npm >/dev/null 2>&1 || { echo "build-node-reference: npm is not installed" >&2; exit 1; }
rm -rf "$target" && mkdir -p "$target"
git -C "$source_git" archive "$commit" typings backend | tar -x -C "$target"
(cd "$target/typings" && sh ./sync-types.sh ce >/dev/null)
# Its redlock comes from a GitHub tarball, which only the npm registry can replace here: the
# same release (5.0.0-beta.2) from the registry.
(cd "$target/backend" && node -e '
  const fs = require("fs");
  const pkg = JSON.parse(fs.readFileSync("package.json"));
  pkg.dependencies.redlock = "5.0.0-beta.2";
  fs.writeFileSync("package.json", JSON.stringify(pkg, null, 2));
  const lock = JSON.parse(fs.readFileSync("package-lock.json"));
  delete lock.packages["node_modules/redlock"];
  fs.writeFileSync("package-lock.json", JSON.stringify(lock, null, 2));
')
echo "build-node-reference: npm install and tsc of the backend at $commit (a few minutes, once)" >&2
(cd "$target/backend" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
# tsc reports two type errors in redlock's package typings and emits the JavaScript all the same.
(cd "$target/backend" && npx tsc >/dev/null) || true
if [ ! -f "$target/backend/dist/src/server.js" ]; then
  echo "build-node-reference: tsc wrote no dist/src/server.js" >&2
  exit 1
fi
echo "build-node-reference: $target/backend/dist/src/server.js" >&2
