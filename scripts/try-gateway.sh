#!/usr/bin/env bash
# The gateway, tried offline: a local stand-in for api.github.com
# (scripts/try-gateway-stand-in.mjs), a gateway in front of it, and a token
# minted from the shipped profile; then a request the gateway lets through
# with the real credential injected, two it refuses, and one whose echo of
# the credential it masks. Needs a build (npm run build), no root and no
# network; everything lives in one temporary directory, and every process
# it starts is stopped and the directory removed on exit, however it exits.
#   scripts/try-gateway.sh     (scripts/demo.sh --gateway sets up first)
set -euo pipefail
cd "$(dirname "$0")/.."

cli=dist/src/bundle/mintfs.js
[ -f "$cli" ] || { echo "try-gateway: no $cli; run npm run build first" >&2; exit 1; }
# Node.js 22 from the npm registry unless given: daemons are then direct children, stopped by pid.
node=${MINTFS_NODE:-$(scripts/with-node.sh 22 node -e 'process.stdout.write(process.execPath)' 2>/dev/null)}
mintfs() { MINTFS_LOG_LEVEL=warn "$node" "$cli" "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mintfs-try-gateway.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Polls until FILE has a line matching PATTERN, while process PID lives.
wait_for() {
  local file=$1 pattern=$2 pid=$3
  for _ in $(seq 400); do
    grep -q "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.025
  done
  echo "try-gateway: gave up waiting for $pattern in $file:" >&2
  cat "$file" >&2
  return 1
}
step() { printf '\n== %s\n' "$*"; }
# The agent's side: curl with its token; what it sees is kept, to check for the credential.
agent() {
  curl -sS -w '(HTTP %{http_code})\n' -H "Authorization: Bearer $token" "$@" | tee -a "$work/agent-saw"
}

# A made-up credential (MINTFS_TRY_CREDENTIAL to choose one), in a file only its owner reads.
credential=${MINTFS_TRY_CREDENTIAL:-demo_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')}
(umask 077 && printf '%s\n' "$credential" >"$work/credential")

"$node" scripts/try-gateway-stand-in.mjs "$work/credential" "$work/stand-in.log" >"$work/stand-in.port" 2>&1 &
pids+=($!)
touch "$work/stand-in.log"
wait_for "$work/stand-in.port" '^[0-9]' "$!"
upstream_port=$(grep -m 1 "^[0-9]" "$work/stand-in.port")

cat >"$work/gateway.yaml" <<EOF
listen: [127.0.0.1:0]
upstreams:
  github:
    url: http://127.0.0.1:$upstream_port # the stand-in, not https://api.github.com
    hosts: [api.github.com] # the name agents use: what the token's host caveat judges
    credential: { file: ./credential }
    inject: 'Authorization: token {credential}'
EOF
step "a stand-in for api.github.com on 127.0.0.1:$upstream_port, and a gateway config for it"
cat "$work/gateway.yaml"

mintfs keys init --keys "$work/keys" >/dev/null
"$node" "$cli" gateway "$work/gateway.yaml" --keys "$work/keys" >/dev/null 2>"$work/gateway.log" &
pids+=($!)
wait_for "$work/gateway.log" '"event":"gateway-listening"' "$!"
gateway=$(sed -n 's/.*"addresses":\["\([^"]*\)".*/\1/p' "$work/gateway.log" | head -n 1)

step "the agent's token: what reading /secrets/github/token gives (mintfs mint, no mount needed)"
echo "\$ mintfs mint mount-profiles/github-readonly.yaml github/token"
token=$(mintfs mint mount-profiles/github-readonly.yaml github/token --keys "$work/keys")
echo "${token:0:40}...  (GET and HEAD on /repos/acme/widgets/**, for 2 minutes)"

step "1. injection: the gateway checks the token, then sends the real credential upstream"
echo "\$ curl -H \"Authorization: Bearer \$TOKEN\" http://$gateway/github/repos/acme/widgets"
agent "http://$gateway/github/repos/acme/widgets"
tail -n 1 "$work/stand-in.log"

step "2. refusals: a method and a path the token does not allow"
echo "\$ curl -X DELETE -H \"Authorization: Bearer \$TOKEN\" http://$gateway/github/repos/acme/widgets"
agent -X DELETE "http://$gateway/github/repos/acme/widgets"
echo "\$ curl -H \"Authorization: Bearer \$TOKEN\" http://$gateway/github/repos/acme/secrets"
agent "http://$gateway/github/repos/acme/secrets"
if [ "$(wc -l <"$work/stand-in.log")" -ne 1 ]; then
  echo "try-gateway: a refused request reached the stand-in" >&2
  exit 1
fi
echo "stand-in: (nothing: neither request left the gateway)"

step "3. redaction: the stand-in echoes the Authorization it received; the agent sees it masked"
echo "\$ curl -H \"Authorization: Bearer \$TOKEN\" http://$gateway/github/repos/acme/widgets/echo"
agent "http://$gateway/github/repos/acme/widgets/echo"
tail -n 1 "$work/stand-in.log"

step "the real credential in anything the agent saw"
if grep -qF "$credential" "$work/agent-saw"; then
  echo "yes: it leaked" >&2
  exit 1
fi
echo "no"

step "the gateway's audit lines (ids and outcomes, never a token or the credential)"
# Written asynchronously: wait for all four.
for _ in $(seq 200); do
  [ "$(grep -c '"event":"request"' "$work/gateway.log")" -ge 4 ] && break
  sleep 0.025
done
grep '"event":"request"' "$work/gateway.log" |
  "$node" -e 'for (const line of require("fs").readFileSync(0, "utf8").trim().split("\n")) {
    const e = JSON.parse(line);
    console.log(`${e.agent} ${e.tokenId} ${e.method} ${e.path} -> ${e.status}${e.error ? ` ${e.error}` : ""}`);
  }'
