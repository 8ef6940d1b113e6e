/**
 * An upstream credential as the gateway holds it: its value, and the values a
 * response carrying it back must be searched for. Its loggable forms name its
 * service and source, never its value.
 */
import { inspect } from 'node:util';

export class Credential {
  readonly service: string;
  readonly version: number;
  readonly #value: string;
  /** What a response must never carry back: this value and the one it replaced. */
  readonly secrets: readonly string[];
  readonly secretBytes: readonly Buffer[];

  constructor(service: string, value: string, version: number, previous?: string) {
    this.service = service;
    this.version = version;
    this.#value = value;
    this.secrets = previous === undefined || previous === value ? [value] : [value, previous];
    this.secretBytes = this.secrets.map((secret) => Buffer.from(secret));
  }

  get value(): string {
    return this.#value;
  }

  toJSON(): { service: string; version: number } {
    return { service: this.service, version: this.version };
  }

  toString(): string {
    return `Credential(${this.service} v${this.version})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
