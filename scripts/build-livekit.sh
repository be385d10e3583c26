#!/usr/bin/env bash
# Build LiveKit's server at the pinned tag (scripts/livekit-version) from the Go module proxy
# into .cache/livekit/<tag>/livekit-server, once; later runs find it there.
set -euo pipefail
cd "$(dirname "$0")/.."
version="$(cat scripts/livekit-version)"
target=".cache/livekit/$version/livekit-server"
[ -x "$target" ] && exit 0
if ! command -v go >/dev/null 2>&1; then
  echo "build-livekit: Go is not installed (https://go.dev/dl/); it builds LiveKit's server" >&2
  exit 1
fi
folder="$(dirname "$target")"
mkdir -p "$folder"
staging="$(mktemp -d "$folder/build.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
echo "build-livekit: building github.com/livekit/livekit-server $version (a few minutes, once)" >&2
CGO_ENABLED=0 GOBIN="$PWD/$staging" GOFLAGS=-trimpath \
  go install "github.com/livekit/livekit-server/cmd/server@$version"
mv "$staging/server" "$target"
echo "build-livekit: $target" >&2
