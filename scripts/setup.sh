#!/usr/bin/env bash
# Sets up mintfs on a fresh Debian/Ubuntu machine: system packages, npm
# dependencies (from package-lock.json), and the TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-system-packages.sh
if [ ! -c /dev/fuse ]; then
  echo "setup: /dev/fuse is missing; mintfs needs FUSE (modprobe fuse, or run the container with --device /dev/fuse)" >&2
  exit 1
fi
# npm ci wipes and reinstalls node_modules (half a minute): skip it when the
# installed tree came from this very lock file.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.mintfs-lock-sha256
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ]; then
  echo "npm dependencies: up to date with package-lock.json" >&2
else
  echo "npm dependencies: installing from package-lock.json (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" >"$stamp"
fi
# --deps-only: the packages, not the build (test.sh lints beside the build).
if [ "${1:-}" = --deps-only ]; then
  exit 0
fi
echo "building (TypeScript, the native addon and helpers)" >&2
npm run build --silent
