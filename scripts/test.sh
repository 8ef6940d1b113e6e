#!/usr/bin/env bash
# Sets everything up, then runs lint and the whole test suite (unit and
# integration, on real FUSE mounts) on each supported Node.js LTS.
set -euo pipefail
cd "$(dirname "$0")/.."

versions=${MINTFS_TEST_NODE_VERSIONS:-22 24}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# The Node.js versions the tests run on come from the npm registry
# (with-node.sh); fetched while the machine is set up, not after.
prefetch=()
for version in $versions; do
  scripts/with-node.sh "$version" node --version >"$logs/node-$version" 2>&1 &
  prefetch+=("$!")
done
scripts/setup.sh --deps-only
# Lint needs the sources and packages, not the build: it runs beside the
# build (which leaves a core idle part of the time), then beside the native
# addon under ASan and UBSan (its unit tests and the conformance suite);
# lint's output follows.
npm run lint --silent >"$logs/lint" 2>&1 &
lint=$!
echo "building (TypeScript, the native addon and helpers)" >&2
npm run build --silent
for pid in "${prefetch[@]}"; do
  wait "$pid" || {
    cat "$logs"/node-* >&2
    echo "test: could not fetch a Node.js version from the npm registry" >&2
    exit 1
  }
done

sanitizers=0
scripts/with-node.sh 22 scripts/test-native-sanitizers.sh || sanitizers=$?
lint_status=0
wait "$lint" || lint_status=$?
cat "$logs/lint"
if [ "$lint_status" -ne 0 ] || [ "$sanitizers" -ne 0 ]; then
  echo "test: lint exited $lint_status, the sanitizer run $sanitizers" >&2
  exit 1
fi

# setup.sh built everything once; the build (TypeScript output, the bundle, a
# Node-API addon) is the same for every Node.js version, so it is not redone.
# The first version runs every test; the others leave out the few that hold a
# container runtime or the image to its promises rather than mintfs's Node.js
# code (test/helpers/node-passes.ts), which the first pass has covered.
pass=first
for version in $versions; do
  echo "== tests on Node.js ${version} (${pass} pass) ==" >&2
  MINTFS_TEST_PASS=$pass scripts/with-node.sh "$version" node scripts/run-tests.mjs
  pass=repeat
done
