#!/usr/bin/env bash
# Builds the native FUSE backend (native/binding.gyp) with node-gyp.
#
# The addon uses Node-API alone, whose ABI every Node.js release keeps, so it
# is compiled against the `node-api-headers` package rather than the headers
# of whichever Node runs the build: node-gyp would otherwise download those
# from nodejs.org, and Debian's nodejs headers describe the machine's Node,
# not the one the user runs. --nodedir points node-gyp at a directory laid out
# like a Node.js header tarball that holds just those headers.
#
# Exits non-zero when it cannot build (no libfuse3-dev, no compiler); mintfs
# then falls back to fuse-native and says so (src/fuse/select-backend.ts).
#
# CFLAGS and LDFLAGS from the environment reach the compiler (the sanitizer
# build uses them); MINTFS_ADDON_OUT puts the addon somewhere other than
# dist/native (scripts/test-native-sanitizers.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

nodedir=build/node-api-dir
mkdir -p "$nodedir/include/node"
cp node_modules/node-api-headers/include/*.h "$nodedir/include/node/"
# node-gyp includes these two; Node-API addons need nothing from them.
echo "{ 'variables': {}, 'target_defaults': { 'default_configuration': 'Release', 'configurations': { 'Release': { 'cflags': ['-O2', '-fPIC'] } } } }" >"$nodedir/include/node/common.gypi"
echo "{ 'variables': { 'node_module_version': 0, 'napi_build_version': 8 } }" >"$nodedir/include/node/config.gypi"

log="$PWD/build/native-addon.log"
cd native
# Quiet unless it fails: then the compiler's own words, and where the whole log is.
if ! node ../node_modules/node-gyp/bin/node-gyp.js rebuild --nodedir="$(cd .. && pwd)/$nodedir" --loglevel=warn >"$log" 2>&1; then
  grep -E 'error|Error|not found|No such' "$log" | head -n 20 >&2
  echo "native backend: build failed (full log: $log)" >&2
  exit 1
fi
out=${MINTFS_ADDON_OUT:-../dist/native}
mkdir -p "$out"
# Replace, never overwrite in place: a running daemon has the old file mapped.
cp build/Release/mintfs_native.node "$out/.mintfs_native.node.tmp"
mv -f "$out/.mintfs_native.node.tmp" "$out/mintfs_native.node"
