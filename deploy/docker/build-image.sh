#!/usr/bin/env bash
# Builds the mintfs image (Dockerfile) without a registry: its base is
# assembled from this machine's files (Node.js 22 from scripts/with-node.sh,
# Debian's fuse3, util-linux and busybox-static, with the libraries they
# link) and imported with `docker import`; the app (the built dist/, the
# production node_modules, csi.proto) is staged in a small build context.
#   deploy/docker/build-image.sh [TAG]        default tag: mintfs:<package version>
# Uses whatever engine DOCKER_HOST names. Run `npm run build` first.
set -euo pipefail
# npm and npx (11) turn on V8's compile cache in the temporary directory
# unless told not to: nothing of this build is left behind in TMPDIR.
export NODE_DISABLE_COMPILE_CACHE=1
root="$(cd "$(dirname "$0")/../.." && pwd)"
version="$(node -p "require('$root/package.json').version")"
tag="${1:-mintfs:$version}"
base="mintfs-base:$version"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

[ -f "$root/dist/src/bundle/mintfs.js" ] || { echo "build-image: run npm run build first" >&2; exit 1; }

# --- the base: a root file system of the binaries mintfs runs, and what they link
node="$("$root/scripts/with-node.sh" 22 node -p process.execPath)"
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,usr/bin,usr/local/bin,etc/ssl/certs,tmp,run,var/lib,dev,proc,sys}
chmod 1777 "$rootfs/tmp"
copy_with_libraries() { # FILE DEST
  cp -L "$1" "$rootfs$2"
  ldd "$1" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*' | while read -r lib; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -Ln "$lib" "$rootfs$lib"
  done
}
copy_with_libraries "$node" /usr/local/bin/node
for tool in fusermount3 mount umount flock; do
  copy_with_libraries "$(command -v "$tool")" "/usr/bin/$tool"
done
# The native addon links libfuse3; fuse-native's prebuilt (the fallback backend) libfuse2.
for addon in "$root/dist/native/mintfs_native.node" "$root/node_modules/fuse-native/prebuilds/linux-x64/node.napi.node"; do
  ldd "$addon" | grep -oE '/[^ ]+\.so[^ ]*' | while read -r lib; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -Ln "$lib" "$rootfs$lib"
  done
done
chmod u+s "$rootfs/usr/bin/fusermount3"
# A shell and the small tools probes and operators use (sh, test, cat, ls).
cp /usr/bin/busybox "$rootfs/bin/busybox"
for applet in sh test cat ls ps; do ln -s busybox "$rootfs/bin/$applet"; done
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
echo 'user_allow_other' >"$rootfs/etc/fuse.conf"
tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - "$base" >/dev/null

# --- the app: what `npm pack` would ship (csi.proto is in dist/src/csi/), with its production dependencies
context="$work/context"
mkdir -p "$context/dist"
cp "$root/Dockerfile" "$root/package.json" "$root/package-lock.json" "$context/"
cp -a "$root/dist/src" "$root/dist/native" "$context/dist/"
rm -rf "$context/dist/src/docs"
cp -a "$root/mount-profiles" "$context/"
cp -aL "$root/node_modules" "$context/node_modules"
(cd "$context" && npm prune --omit=dev --offline --no-audit --no-fund >/dev/null 2>&1)
DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=$base" -t "$tag" "$context" >/dev/null
echo "$tag"
