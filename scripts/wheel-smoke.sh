#!/usr/bin/env bash
# Build ovmeet's wheel, install it in a fresh venv (no repository on the path), smoke-test it.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m pip wheel -v --no-deps --wheel-dir "$work/dist" . >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; exit 1; }
# The package's metadata must not use forms setuptools has deprecated (the license table).
if grep -i "deprecat" "$work/build.log"; then
  echo "wheel-smoke: the build warns of deprecated metadata (above)" >&2
  exit 1
fi
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$work"/dist/ovmeet-*.whl
"$work/venv/bin/python" scripts/wheel_smoke.py
