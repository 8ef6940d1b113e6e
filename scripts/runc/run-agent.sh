#!/usr/bin/env bash
# Runs an agent container under runc with no network but the mintfs gateway.
#
#   scripts/runc/run-agent.sh --name NAME --rootfs DIR --mintfs-dir DIR --gateway-socket PATH \
#     [--uid 1000] [--gid 1000] [--memory 512M] [--pids 256] [--cpus 1] \
#     [--ro-bind HOST:CONTAINER ...] [--runtime runc|runsc] -- CMD [ARGS...]
#
# --mintfs-dir is the *parent* of the token mount (mounted with
# `mintfs mount ... DIR/secrets --shared-parent`); the container sees it at
# /run/mintfs as a slave, so it follows daemon restarts. The image needs a
# symlink /secrets -> /run/mintfs/secrets.
#
# The container joins a network namespace with only loopback, where socat
# listens on 127.0.0.1:8787 and forwards to the gateway's unix socket. Every
# capability is dropped, no_new_privileges is set, the mintfs seccomp
# profile applies, and memory, pids and cpu are limited by cgroups. Exits
# with the container's status; cleans up the namespace, bridge and bundle.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
name="" rootfs="" mintfs_dir="" socket="" uid=1000 gid="" memory=512M pids=256 cpus=1 runtime=runc
binds=()
die() { echo "run-agent: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="$2"; shift 2 ;;
    --rootfs) rootfs="$2"; shift 2 ;;
    --mintfs-dir) mintfs_dir="$2"; shift 2 ;;
    --gateway-socket) socket="$2"; shift 2 ;;
    --uid) uid="$2"; shift 2 ;;
    --gid) gid="$2"; shift 2 ;;
    --memory) memory="$2"; shift 2 ;;
    --pids) pids="$2"; shift 2 ;;
    --cpus) cpus="$2"; shift 2 ;;
    --ro-bind) binds+=(--ro-bind "$2"); shift 2 ;;
    --runtime) runtime="$2"; shift 2 ;;
    --) shift; break ;;
    *) die "unknown option $1 (see the header of $0)" ;;
  esac
done
[ $# -gt 0 ] || die "name the command after --"
[[ "$name" =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || die "--name: lower-case letters, digits and -, at most 31"
[ -d "$rootfs" ] || die "--rootfs: $rootfs is not a directory"
[ -d "$mintfs_dir" ] || die "--mintfs-dir: $mintfs_dir is not a directory"
[ -S "$socket" ] || die "--gateway-socket: $socket is not a socket"
[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, runc)"
[ -L "$rootfs/secrets" ] || echo "run-agent: warning: $rootfs/secrets is not a symlink to /run/mintfs/secrets" >&2

netns="mintfs-$name"
bundle="$(mktemp -d /tmp/mintfs-bundle-XXXXXX)"
socat_pid=""
cleanup() {
  "$runtime" delete --force "$name" >/dev/null 2>&1 || true
  [ -n "$socat_pid" ] && kill "$socat_pid" 2>/dev/null || true
  ip netns delete "$netns" 2>/dev/null || true
  rm -rf "$bundle"
}
trap cleanup EXIT

ip netns add "$netns"
ip -n "$netns" link set lo up
# socat runs on the host side of the bridge (as root, in the namespace): the
# container never sees the gateway socket, only 127.0.0.1:8787.
ip netns exec "$netns" socat TCP-LISTEN:8787,bind=127.0.0.1,reuseaddr,fork "UNIX-CONNECT:$socket" &
socat_pid=$!
for _ in $(seq 200); do
  ip netns exec "$netns" bash -c '(exec 3<>/dev/tcp/127.0.0.1/8787)' 2>/dev/null && break
  sleep 0.02
done

node "$root/dist/scripts/runc/make-config.js" --rootfs "$(cd "$rootfs" && pwd)" \
  --mintfs-dir "$(cd "$mintfs_dir" && pwd)" --netns "/run/netns/$netns" \
  --uid "$uid" --gid "${gid:-$uid}" --memory "$memory" --pids "$pids" --cpus "$cpus" \
  "${binds[@]}" -- "$@" > "$bundle/config.json"

status=0
"$runtime" run --bundle "$bundle" "$name" || status=$?
exit "$status"
