/**
 * The verifier's fast path: the native addon's HMAC chain (SHA extensions,
 * one call a token) in place of node:crypto's, for processes that verify
 * on a hot path (the gateway, the `mintfs/verify` library). Where the addon
 * is not built or does not load, or fails the self-test, node:crypto stays:
 * slower, never wrong. `mintfs verify` (one token) does not pay the load.
 */
import { loadNativeAddon } from '../fuse/native-addon.js';
import { hmacChainName, useHmacChain } from '../token/hmac-chain.js';

/** Installs the native chain if it can; the name of the chain in use afterwards. */
export function installNativeHmacChain(): string {
  if (hmacChainName() !== 'node:crypto') return hmacChainName();
  try {
    const addon = loadNativeAddon();
    useHmacChain('native', (key, identifier, caveats) => {
      const signature = Buffer.allocUnsafe(32);
      addon.hmacChain(
        toBuffer(key),
        toBuffer(identifier),
        // The decoder hands out Buffers already: no copy of the list on the hot path.
        caveats.every((c) => Buffer.isBuffer(c)) ? caveats : caveats.map(toBuffer),
        signature,
      );
      return signature;
    });
  } catch {
    // ERR_NATIVE_UNAVAILABLE: the portable chain is the fallback by design.
  }
  return hmacChainName();
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
