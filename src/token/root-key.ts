/**
 * A root key: 32 secret bytes and the id that names them. Its loggable forms
 * (toJSON, util.inspect, toString) show only the id, so a key that slips into
 * a log line or an error message leaks nothing.
 */
import { inspect } from 'node:util';

export const ROOT_KEY_BYTES = 32;

export class RootKey {
  readonly id: string;
  readonly #secret: Buffer;

  constructor(id: string, secret: Uint8Array) {
    if (secret.length !== ROOT_KEY_BYTES) throw new RangeError('a root key is 32 bytes');
    this.id = id;
    this.#secret = Buffer.from(secret);
  }

  /** The secret bytes. Only token signing and verification should call this. */
  get secret(): Buffer {
    return this.#secret;
  }

  toJSON(): { keyId: string } {
    return { keyId: this.id };
  }

  toString(): string {
    return `RootKey(${this.id})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
