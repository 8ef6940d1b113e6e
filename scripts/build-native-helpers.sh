#!/usr/bin/env bash
# Compiles the small C helpers in native/ into dist/native/. Without a C
# compiler the helpers are skipped with a warning: only `mintfs mount
# --takeover` needs one, and it says so when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p dist/native
if ! command -v cc >/dev/null 2>&1; then
  echo "warning: no C compiler; mintfs mount --takeover will be unavailable (scripts/setup.sh installs gcc)" >&2
  exit 0
fi
cc -O2 -Wall -Wextra -Werror -o dist/native/mintfs-move-beneath native/helpers/move-mount-beneath.c
# pid 1 of every `mintfs run` sandbox: static, for images without our libc
# (with the in-sandbox gateway bridge gVisor runs need).
cc -O2 -Wall -Wextra -Werror -static -o dist/native/mintfs-run-init native/helpers/run-init.c native/helpers/run-bridge.c
if [ -e /usr/include/seccomp.h ]; then
  cc -O2 -Wall -Wextra -Werror -o dist/native/mintfs-seccomp-bpf native/helpers/seccomp-bpf.c -lseccomp
else
  echo "warning: no libseccomp headers; mintfs run will refuse to start (scripts/setup.sh installs libseccomp-dev)" >&2
fi
