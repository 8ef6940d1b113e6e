#!/usr/bin/env bash
# The native addon under AddressSanitizer and UndefinedBehaviorSanitizer: it
# is built with both into a copy of the build (build/sanitize/), and the
# native unit tests and the whole conformance suite (every reader,
# concurrency, read-only, permission and life-cycle test) run against it on
# the native backend. Any report from either sanitizer aborts the process
# that made it, which fails its test. Run by scripts/test.sh; needs a build.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
root=$repo/build/sanitize

rm -rf "$root"
mkdir -p "$root"
cp -a dist "$root/dist"
# Everything else the tests read from the repository, as it is.
for shared in node_modules mount-profiles native test docs scripts package.json README.md; do
  ln -s "$repo/$shared" "$root/$shared"
done

echo "native addon: building with -fsanitize=address,undefined" >&2
MINTFS_ADDON_OUT="$root/dist/native" \
  CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g" \
  LDFLAGS="-fsanitize=address,undefined" \
  scripts/build-native-addon.sh
# node-gyp built in native/build; dist/native keeps the plain addon, and the
# next build rebuilds native/build from scratch (node-gyp rebuild).

# Node.js is not built with ASan, so its runtime must be loaded first.
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
cd "$root"
tests=(dist/test/unit/native-mint.test.js dist/test/conformance/*.test.js)
# Leaks are Node's own at exit, not the addon's: not reported.
LD_PRELOAD="$asan $ubsan" \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  MINTFS_TEST_BACKENDS=native \
  node --test --test-concurrency=2 --test-reporter=spec "${tests[@]}"
