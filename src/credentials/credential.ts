/**
 * An upstream credential as the gateway holds it: its value, and the values a
 * response carrying it back must be searched for. Its loggable forms name its
 * service and source, never its value.
 */
import { inspect } from 'node:util';

/** An AWS key pair (and session token), for upstreams the gateway signs for (src/aws/). */
export interface AwsKeys {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
}

export class Credential {
  readonly service: string;
  readonly version: number;
  readonly #value: string;
  readonly #aws: AwsKeys | undefined;
  /** What a response must never carry back: this value and the one it replaced. */
  readonly secrets: readonly string[];
  readonly secretBytes: readonly Buffer[];

  /**
   * `aws`: the key pair a signing upstream signs with; `value` is then its
   * secret key, and the key id and session token are masked in responses too.
   */
  constructor(service: string, value: string, version: number, previous?: string, aws?: AwsKeys) {
    this.service = service;
    this.version = version;
    this.#value = value;
    this.#aws = aws;
    const secrets = new Set(previous === undefined ? [value] : [value, previous]);
    if (aws !== undefined) {
      secrets.add(aws.accessKeyId);
      if (aws.sessionToken !== undefined) secrets.add(aws.sessionToken);
    }
    this.secrets = [...secrets];
    this.secretBytes = this.secrets.map((secret) => Buffer.from(secret));
  }

  get value(): string {
    return this.#value;
  }

  /** The key pair, for an upstream with `sign: sigv4`. */
  get aws(): AwsKeys | undefined {
    return this.#aws;
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
