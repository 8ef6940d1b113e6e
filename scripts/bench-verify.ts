/**
 * npm run bench:verify: one token's full check (decode, signature, caveats;
 * no cache) in µs, mintfs's verifier against go-macaroon (Debian's
 * golang-gopkg-macaroon.v2-dev) on the same token and request, in one run.
 * Target: mintfs at least as fast (ratio >= 1).
 */
import { spawnSync } from 'node:child_process';
import { buildGoBaseline, median } from './bench-common.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initKeyring } from '../src/keys/keyring.js';
import { newTokenId } from '../src/token/identifier.js';
import { mintToken } from '../src/token/mint.js';
import { authenticateToken, authorizeRequest } from '../src/token/verify.js';
import { useNodeCryptoChain } from '../src/token/hmac-chain.js';
import { installNativeHmacChain } from '../src/verifier/native-hmac.js';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const work = mkdtempSync(join(tmpdir(), 'mintfs-bench-verify-'));
try {
  const keyring = initKeyring(join(work, 'keys'), new Date());
  const key = keyring.current;
  const token = mintToken(
    {
      agent: 'bench',
      service: 'github',
      hosts: ['api.github.com'],
      methods: ['GET', 'HEAD'],
      paths: ['/repos/acme/widgets/**'],
      ttlMs: 3_600_000,
    },
    { key, now: new Date(), tokenId: newTokenId() },
  ).token;
  const request = {
    service: 'github',
    host: 'api.github.com',
    method: 'GET',
    rawPath: '/repos/acme/widgets/pulls',
  };
  const ours = (): number => {
    const deadline = process.hrtime.bigint() + BigInt(SECONDS * 1e9);
    let n = 0;
    const start = process.hrtime.bigint();
    let now = start;
    while (now < deadline) {
      for (let i = 0; i < 100; i++) {
        const authenticated = authenticateToken(token, (id) => (id === key.id ? key : undefined));
        if ('allowed' in authenticated) throw new Error(authenticated.reason);
        const verdict = authorizeRequest(authenticated, request, new Date());
        if (!verdict.allowed) throw new Error(verdict.reason);
      }
      n += 100;
      now = process.hrtime.bigint();
    }
    return Number(now - start) / 1e3 / n;
  };
  const binary = join(work, 'go-verify');
  const built = buildGoBaseline(
    join(ROOT, 'scripts', 'bench', 'go-verify', 'main.go'),
    binary,
    work,
  );
  if (built.status !== 0)
    throw new Error(
      `go-verify did not build (scripts/install-system-packages.sh bench installs go-macaroon): ${built.stderr}`,
    );
  const go = (): number => {
    const out = spawnSync(binary, [String(SECONDS), key.secret.toString('hex'), token], {
      encoding: 'utf8',
    });
    if (out.status !== 0) throw new Error(`go-verify: ${out.stderr}`);
    return 1e6 / (JSON.parse(out.stdout) as { verifiesPerSecond: number }).verifiesPerSecond;
  };
  // Paired rounds (ours, then go-macaroon, then the portable chain), ratios
  // taken per round: a noisy neighbour slows a round's pair, not one side.
  const rounds: { ours: number; go: number; portable: number }[] = [];
  ours(); // warm up
  for (let round = 0; round < ROUNDS; round++) {
    installNativeHmacChain();
    const oursUs = ours();
    const goUs = go();
    useNodeCryptoChain();
    rounds.push({ ours: oursUs, go: goUs, portable: ours() });
  }
  const chain = installNativeHmacChain();
  useNodeCryptoChain();
  const mintfsUs = median(rounds.map((r) => r.ours));
  const portableUs = median(rounds.map((r) => r.portable));
  const goUs = median(rounds.map((r) => r.go));
  const ratio = median(rounds.map((r) => r.go / r.ours));
  const portableRatio = median(rounds.map((r) => r.go / r.portable));
  console.log(
    `node ${process.version}, ${ROUNDS} rounds of ${SECONDS}s, median µs per token (decode + signature + caveats, no cache)`,
  );
  console.log(`mintfs, ${chain} chain ${mintfsUs.toFixed(2)} µs (as the gateway runs it)`);
  console.log(`mintfs, node:crypto  ${portableUs.toFixed(2)} µs (without the native addon)`);
  console.log(`go-macaroon (Debian) ${goUs.toFixed(2)} µs`);
  console.log(
    `verdict: mintfs is ${ratio.toFixed(2)}x go-macaroon's speed (median of paired rounds; target >= 1x); ${portableRatio.toFixed(2)}x on node:crypto alone`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
