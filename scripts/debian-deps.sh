#!/usr/bin/env bash
# Installs the Debian packages wellmon needs when they are missing.
# Usage: scripts/debian-deps.sh PACKAGE...   (apt-get as root; a clear message otherwise)
set -euo pipefail
missing=()
for pkg in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "wellmon: missing system packages: ${missing[*]} (install them with your package manager)" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    exec sudo -n "$0" "$@"
  fi
  echo "wellmon: missing Debian packages: ${missing[*]}" >&2
  echo "wellmon: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "wellmon: installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
