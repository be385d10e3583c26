#!/usr/bin/env bash
# The front end's web fonts (ovmeet/support/fonts.py names them) from the npm registry, into
# .cache/fonts/node_modules: what MEET_FRONTEND_FONTS_DIR names for an offline front end.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if ! command -v npm >/dev/null 2>&1; then
  echo "install-fonts: npm is needed (Node.js); or copy a node_modules folder with them" >&2
  exit 1
fi
packages=$(PYTHONPATH=. "$python" -c \
  "from ovmeet.support.fonts import FONT_PACKAGES; print(' '.join(f'{n}@{v}' for n, v in FONT_PACKAGES.items()))")
mkdir -p .cache/fonts
npm install --prefix .cache/fonts --no-audit --no-fund --no-package-lock --silent $packages
touch .cache/fonts/node_modules/.installed
