#!/usr/bin/env bash
# The C side of `npm run lint`: every tracked C file formatted as .clang-format
# says (clang-format --dry-run fails on the first difference, naming the file
# and line), then gcc's static analyzer (-fanalyzer) over native/ with every
# warning an error. `scripts/lint-c.sh --fix` rewrites the formatting instead.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "${1:-}" = --fix ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
clang-format --dry-run -Werror "${files[@]}"

# The analyzer follows paths through each file (leaks, use after free, NULL
# dereferences, double close); it compiles, so it needs the same headers.
headers=(-Inode_modules/node-api-headers/include $(pkg-config --cflags fuse3))
for file in native/addon/*.c native/helpers/*.c; do
  gcc -std=gnu11 -O1 -fanalyzer -Wall -Wextra -Werror "${headers[@]}" -c "$file" -o /dev/null
done
