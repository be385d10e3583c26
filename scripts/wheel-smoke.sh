#!/usr/bin/env bash
# Build ovmeet's wheel, install it in a fresh venv (no repository on the path), smoke-test it.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" .
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$work"/dist/ovmeet-*.whl
"$work/venv/bin/python" scripts/wheel_smoke.py
