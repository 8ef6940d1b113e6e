#!/usr/bin/env bash
# Sets everything up and runs the main job on the demo profile: a keyring
# under .state/, a mount, a token read with cat, inspected and verified.
# With --gateway: the same setup, then the gateway tried offline against a
# local stand-in upstream (scripts/try-gateway.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
if [ "${1:-}" = --gateway ]; then exec scripts/try-gateway.sh; fi
export MINTFS_KEYS="$PWD/.state/keys"
mountpoint="$PWD/.state/mnt"
profile=mount-profiles/github-readonly.yaml
# Node.js 22 from the npm registry, resolved once: the daemon is then a direct child
# of this script (no npm wrapper in between), so stopping it is a plain signal.
node=$(scripts/with-node.sh 22 node -e 'process.stdout.write(process.execPath)' 2>/dev/null)
mintfs() { "$node" dist/src/bundle/mintfs.js "$@"; }

[ -d "$MINTFS_KEYS" ] || mintfs keys init >/dev/null
mkdir -p .state
echo "== mintfs profile check $profile" >&2
mintfs profile check "$profile"

# Started directly (not through the mintfs function) so $! is the daemon itself.
"$node" dist/src/bundle/mintfs.js mount "$profile" "$mountpoint" 2>.state/mount.log &
daemon=$!
cleanup() { kill -TERM "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 200); do
  ls "$mountpoint/github" >/dev/null 2>&1 && break
  kill -0 "$daemon" 2>/dev/null || { cat .state/mount.log >&2; exit 1; }
  sleep 0.05
done

echo "== ls -l $mountpoint/github" >&2
ls -l "$mountpoint/github"
token=$(cat "$mountpoint/github/token")
echo "== cat $mountpoint/github/token | mintfs inspect" >&2
mintfs inspect "$token"
echo "== mintfs verify (GET /repos/acme/widgets/pulls: allowed)" >&2
mintfs verify "$token" --service github --method GET --url https://api.github.com/repos/acme/widgets/pulls >/dev/null && echo "allowed"
echo "== mintfs verify (DELETE: refused, naming the caveat)" >&2
mintfs verify "$token" --service github --method DELETE --url https://api.github.com/repos/acme/widgets >/dev/null || true
echo "== two reads, two different tokens" >&2
a=$(cat "$mountpoint/github/token"); b=$(cat "$mountpoint/github/token")
[ "$a" != "$b" ] && echo "distinct: yes"
echo "== audit log (.state/mount.log)" >&2
# Audit lines are written within tens of milliseconds of each read: wait for all three.
for _ in $(seq 100); do
  [ "$(grep -c '"event":"mint"' .state/mount.log)" -ge 3 ] && break
  sleep 0.02
done
grep '"event":"mint"' .state/mount.log | tail -n 2
