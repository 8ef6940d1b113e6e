import type { Keyring } from '../../src/keys/keyring.js';
import { randomBytes } from 'node:crypto';
import { encodeMacaroonV2, signCaveat } from '../../src/token/macaroon-codec.js';
import { decodeToken, encodeTokenText } from '../../src/token/token-text.js';
import { RootKey } from '../../src/token/root-key.js';
import type { TokenGrant } from '../../src/token/mint.js';
import type { VerifyRequest } from '../../src/token/verify.js';

export const GRANT: TokenGrant = {
  agent: 'demo-agent',
  service: 'github',
  hosts: ['api.github.com'],
  methods: ['GET', 'HEAD'],
  paths: ['/repos/acme/widgets/**'],
  ttlMs: 120_000,
};

export const ALLOWED: VerifyRequest = {
  service: 'github',
  host: 'api.github.com',
  method: 'GET',
  rawPath: '/repos/acme/widgets/pulls',
};

export const NOW = new Date('2026-11-22T01:18:00.500Z');

export function newKey(id = '20261122T010000Z-00000001'): RootKey {
  return new RootKey(id, randomBytes(32));
}

export function keyLookup(...keys: RootKey[]): (keyId: string) => RootKey | undefined {
  return (keyId) => keys.find((key) => key.id === keyId);
}

/** A keyring of one key, which signs and verifies (no directory behind it). */
export function singleKeyKeyring(key: RootKey, dir = '/x'): Keyring {
  return { dir, keys: [key], current: key, keyById: keyLookup(key), retired: [] };
}

/**
 * Appends caveats with a valid signature chain, as any holder can without a
 * key, bypassing every check `mintfs attenuate` makes (the hostile agent's way).
 */
export function appendRawCaveats(token: string, caveats: readonly string[]): string {
  const decoded = decodeToken(token);
  const added = caveats.map((c) => Buffer.from(c));
  let signature: Uint8Array = decoded.signature;
  for (const caveat of added) signature = signCaveat(signature, caveat);
  return encodeTokenText(
    encodeMacaroonV2({
      location: decoded.location,
      identifier: decoded.identifier,
      caveats: [...decoded.caveatBytes, ...added],
      thirdParty: decoded.thirdParty,
      signature,
    }),
  );
}
