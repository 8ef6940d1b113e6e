#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages mintfs and its tests need. Idempotent:
# runs apt-get only when something is missing. Needs root.
#   install-system-packages.sh          what the tests need
#   install-system-packages.sh bench    also what the benchmarks compare against
set -euo pipefail

packages=(
  fuse3          # /dev/fuse tooling: fusermount3 (unmount, stale-mount recovery)
  libfuse2       # fuse-native's prebuilt addon links libfuse.so.2
  libfuse3-dev   # the native backend (native/addon) and the benchmark's C floors
  liburing-dev   # the native backend's FUSE-over-io_uring transport (native/addon/uring.c); libfuse 3.14 has none
  libsodium-dev  # the native minter seals approval caveats' verification ids (NaCl secretbox)
  pkg-config
  gcc
  g++            # node-gyp links addons with $(CXX)
  make           # node-gyp's build
  libc6-dev
  busybox-static # the sendfile reader Alpine-based agent images use; static, for the Docker test image
  python3        # /usr/bin/python3 for reader tests
  python3-pymacaroons  # independent macaroon implementation for interop tests
  golang-go      # builds the go-macaroon interop helper (test/fixtures/go-interop)
  golang-gopkg-macaroon.v2-dev  # go-macaroon: a third implementation, for interop tests and benches
  util-linux     # setpriv, unshare
  coreutils
  curl           # gateway tests drive it with real curl
  git            # ... and real git (smart HTTP through git http-backend)
  gh             # GitHub's CLI, through HTTPS interception (test/integration/gateway-intercept)
  python3-requests  # Python's requests, the same
  python3-boto3  # boto3 (with python3-botocore) inside mintfs run's sandbox, where pyenv's aws-cli is out of reach
  openssl        # test CA and certificates for the HTTPS test upstream
  ca-certificates
  libseccomp-dev # the seccomp filter helper for mintfs run (native/helpers/seccomp-bpf.c)
  bubblewrap     # mintfs run's sandbox
  runc           # mintfs run --runtime runc, tested for real
  runsc          # gVisor: mintfs run --runtime runsc, tested for real (its gofer reads the token mount)
  docker.io      # mintfs run --runtime docker, tested against a private dockerd
  docker-compose # runs the compose example (mount-profiles/compose) against that dockerd
  redis-server   # shared state for many gateways (use budgets, revocations), tested with a real one
  socat          # the loopback-to-gateway bridge inside a sandbox's network namespace
  apparmor       # apparmor_parser, to check the shipped profile parses
  iproute2       # ip: loopback up in the runc container's network namespace
  clang-format   # the C formatter, checked by npm run lint
  chromium       # headless, drives the approvers page in its tests (playwright-core)
  python3-websockets  # a real WebSocket client through the gateway (test/integration/gateway-websocket)
  python3-h2     # a raw HTTP/2 client for the HTTP/2 attack tests (rapid reset, CONTINUATION floods)
  nghttp2-client # nghttp and h2load: HTTP/2 clients inside intercepted tunnels, and the HTTP/2 bench
)

# kubectl renders deploy/kubernetes (`kubectl kustomize`) in the manifest test.
# Debian's kubernetes-client ships /usr/bin/kubectl, as does Google Cloud's
# kubectl package some images carry: install Debian's only when no kubectl is there.
if ! command -v kubectl >/dev/null 2>&1; then
  packages+=(kubernetes-client)
fi

if [ "${1:-}" = bench ]; then
  packages+=(
    nginx-light  # the static upstream, and the C reverse-proxy reference
    wrk          # the load generator
    mitmproxy    # the header-injecting proxy many deployment guides recommend
  )
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "system packages: all present" >&2
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-packages: need root to install: ${missing[*]}" >&2
  exit 1
fi

echo "system packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
