#!/usr/bin/env bash
# Install the Debian packages named on the command line, unless their commands already exist.
set -euo pipefail
missing=()
for package in "$@"; do
  command="$package"
  [ "$package" = "nginx" ] && command="nginx" && package="nginx-light"
  if ! command -v "$command" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$command" ]; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing with apt-get: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
