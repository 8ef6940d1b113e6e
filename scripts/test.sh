#!/usr/bin/env bash
# Sets everything up, then runs lint and the whole test suite (unit and
# integration, on real FUSE mounts) on each supported Node.js LTS.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
npm run lint --silent
for version in ${MINTFS_TEST_NODE_VERSIONS:-22 24}; do
  echo "== tests on Node.js ${version} ==" >&2
  scripts/with-node.sh "$version" npm test --silent
done
