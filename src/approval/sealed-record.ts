/**
 * Records gateways share about held requests through Redis (shared.ts),
 * sealed with AES-256-GCM under a key derived from the root key of the held
 * request's token: `KEYID.BASE64URL(nonce | ciphertext | tag)`, with the
 * record's kind and id as associated data.
 *
 * Why sealed: Redis is reachable by more than the gateways (operators,
 * backups, a host that holds only the Redis password). Sealed, a record is
 * something only a holder of the keyring made (so a Redis writer cannot show
 * approvers a request that is not held, relabel the agent of one that is,
 * or answer one with a forged denial), it cannot be moved to another id or
 * kind, and a held body (what the agent sends upstream, perhaps a file's
 * content) is not readable in Redis or its backups. An approval is more than
 * sealed: it carries discharges, which the holding gateway verifies as any
 * verifier would (discharge.ts).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { hmacSha256 } from '../token/hmac-chain.js';
import { KEY_ID } from '../token/identifier.js';
import type { RootKey } from '../token/root-key.js';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const LABEL = Buffer.from('mintfs approval shared record seal v1');
const NAME_LABEL = Buffer.from('mintfs approval shared record name v1');

export type RecordKind = 'held' | 'decision' | 'standing';

const sealKeys = new WeakMap<Uint8Array, Buffer>();

function sealKeyOf(rootKey: RootKey): Buffer {
  let key = sealKeys.get(rootKey.secret);
  if (key === undefined) {
    key = hmacSha256(rootKey.secret, LABEL);
    sealKeys.set(rootKey.secret, key);
  }
  return key;
}

const nameKeys = new WeakMap<Uint8Array, Buffer>();

/**
 * A name as it may be shown in Redis: an HMAC under the root key, so a
 * key name says nothing a reader could confirm a guess against (a standing
 * approval's name holds a token id and a digest of the request and body).
 */
export function opaqueName(rootKey: RootKey, name: string): string {
  let key = nameKeys.get(rootKey.secret);
  if (key === undefined) {
    key = hmacSha256(rootKey.secret, NAME_LABEL);
    nameKeys.set(rootKey.secret, key);
  }
  return hmacSha256(key, Buffer.from(name)).toString('base64url');
}

function aad(kind: RecordKind, keyId: string, name: string): Buffer {
  return Buffer.from(`mintfs-approval-${kind}/v1/${keyId}/${name}`);
}

/** `value` (JSON) sealed as a record of `kind` named `name` (an approval id, a standing key). */
export function sealRecord(
  rootKey: RootKey,
  kind: RecordKind,
  name: string,
  value: unknown,
): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', sealKeyOf(rootKey), nonce);
  cipher.setAAD(aad(kind, rootKey.id, name));
  const sealed = Buffer.concat([
    nonce,
    cipher.update(JSON.stringify(value), 'utf8'),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  return `${rootKey.id}.${sealed.toString('base64url')}`;
}

/** The key id a sealed record names (not yet trusted), or undefined. */
export function recordKeyId(text: string): string | undefined {
  // Key ids may hold dots; base64url never does.
  const dot = text.lastIndexOf('.');
  const keyId = dot < 0 ? '' : text.slice(0, dot);
  return KEY_ID.test(keyId) ? keyId : undefined;
}

/**
 * The JSON a record holds, or undefined when it does not open: another
 * kind or name, a key this gateway does not hold, tampered with. Never throws.
 */
export function openRecord(
  keyById: (keyId: string) => RootKey | undefined,
  kind: RecordKind,
  name: string,
  text: string,
): unknown {
  const keyId = recordKeyId(text);
  const rootKey = keyId === undefined ? undefined : keyById(keyId);
  if (keyId === undefined || rootKey === undefined) return undefined;
  const sealed = Buffer.from(text.slice(keyId.length + 1), 'base64url');
  if (sealed.length < NONCE_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      sealKeyOf(rootKey),
      sealed.subarray(0, NONCE_BYTES),
    );
    decipher.setAAD(aad(kind, keyId, name));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const plain = Buffer.concat([
      decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)),
      decipher.final(),
    ]);
    return JSON.parse(plain.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
