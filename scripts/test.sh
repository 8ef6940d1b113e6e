#!/usr/bin/env bash
# Sets everything up, then runs lint and the whole test suite (unit and
# integration, on real FUSE mounts) on each supported Node.js LTS.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
npm run lint --silent
# The native addon under ASan and UBSan: its unit tests and the conformance suite.
scripts/with-node.sh 22 scripts/test-native-sanitizers.sh
# setup.sh built everything once; the build (TypeScript output, the bundle, a
# Node-API addon) is the same for every Node.js version, so it is not redone.
for version in ${MINTFS_TEST_NODE_VERSIONS:-22 24}; do
  echo "== tests on Node.js ${version} ==" >&2
  scripts/with-node.sh "$version" node scripts/run-tests.mjs
done
