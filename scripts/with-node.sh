#!/usr/bin/env bash
# Runs a command under a given Node.js major version, installed from the npm
# registry (the `node` package), so nothing depends on the machine's own Node.
#   scripts/with-node.sh 22 npm test
set -euo pipefail
version="$1"
shift
exec npx --yes --package "node@${version}" -- "$@"
