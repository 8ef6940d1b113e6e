/**
 * The macaroon signature chain, the hot path of every verification:
 * sig = HMAC-SHA256(key, identifier), then sig = HMAC-SHA256(sig, caveat)
 * for each first-party caveat, seven HMACs for a typical mintfs token.
 *
 * The portable chain is node:crypto, built from the one-shot `hash()` as
 * RFC 2104 spells HMAC out, because `createHmac` costs far more a call:
 * measured here ~2.5 µs on Node 22 and ~15 µs on Node 24 (OpenSSL 3.5
 * fetches the MAC per call), against ~1.8 µs for a `hash()` call. Even so a
 * token is ~14 node:crypto calls, more than go-macaroon's whole verify. So
 * a process whose hot path this is (the gateway, the `mintfs/verify`
 * library) installs the native addon's chain (SHA extensions, one call a
 * token) with useHmacChain; it is accepted only if it agrees with
 * node:crypto on a self-test, and both are held to the `macaroon`
 * package by test/unit/macaroon-reference.test.ts.
 */
import { hash, randomBytes } from 'node:crypto';

export type HmacChain = (
  key: Uint8Array,
  identifier: Uint8Array,
  caveats: readonly Uint8Array[],
) => Buffer;

const BLOCK = 64;
const IPAD = 0x36;
const OPAD = 0x5c;

export function hmacSha256(key: Uint8Array, data: Uint8Array): Buffer {
  const k = key.length > BLOCK ? hash('sha256', key, 'buffer') : key;
  const inner = Buffer.allocUnsafe(BLOCK + data.length);
  const outer = Buffer.allocUnsafe(BLOCK + 32);
  for (let i = 0; i < BLOCK; i++) {
    const byte = i < k.length ? (k[i] as number) : 0;
    inner[i] = byte ^ IPAD;
    outer[i] = byte ^ OPAD;
  }
  inner.set(data, BLOCK);
  outer.set(hash('sha256', inner, 'buffer'), BLOCK);
  const mac = hash('sha256', outer, 'buffer');
  // The pads are the key in disguise.
  inner.fill(0, 0, BLOCK);
  outer.fill(0);
  return mac;
}

export const nodeCryptoChain: HmacChain = (key, identifier, caveats) => {
  let signature = hmacSha256(key, identifier);
  for (const caveat of caveats) signature = hmacSha256(signature, caveat);
  return signature;
};

let active: { readonly name: string; readonly chain: HmacChain } = {
  name: 'node:crypto',
  chain: nodeCryptoChain,
};

/** The signature chain in use for verification and minting. */
export function hmacChain(
  key: Uint8Array,
  identifier: Uint8Array,
  caveats: readonly Uint8Array[],
): Buffer {
  return active.chain(key, identifier, caveats);
}

/** Which implementation hmacChain uses: 'node:crypto' or the name given to useHmacChain. */
export function hmacChainName(): string {
  return active.name;
}

/**
 * Installs a faster chain after checking it against node:crypto on random
 * inputs (keys, an empty caveat, a caveat longer than a block); a chain that
 * disagrees or throws is refused and node:crypto stays. Returns whether it was installed.
 */
export function useHmacChain(name: string, chain: HmacChain): boolean {
  const key = randomBytes(32);
  const identifier = randomBytes(24);
  const caveats = [randomBytes(0), randomBytes(17), randomBytes(200), randomBytes(64)];
  try {
    for (let n = 0; n <= caveats.length; n++) {
      const used = caveats.slice(0, n);
      if (!chain(key, identifier, used).equals(nodeCryptoChain(key, identifier, used)))
        return false;
    }
  } catch {
    return false;
  }
  active = { name, chain };
  return true;
}

/** Back to node:crypto (tests). */
export function useNodeCryptoChain(): void {
  active = { name: 'node:crypto', chain: nodeCryptoChain };
}
