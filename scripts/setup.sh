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
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
