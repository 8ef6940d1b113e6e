/**
 * The real upstream credentials, held only by the gateway.
 *
 * Read at start-up (a gateway that starts has every credential) and re-read
 * when a credential file changes, so rotating one needs no restart of the
 * gateway or of any agent. A bad new file keeps the last good credential in
 * use and logs why. The previous credential is remembered, so a response
 * echoing it during rotation is still redacted.
 */
import { lstatSync, readFileSync, unwatchFile, watchFile } from 'node:fs';
import { inspect } from 'node:util';
import { MintfsError } from '../errors.js';
import { untrustedPathProblem } from '../util/trusted-path.js';
import type { Logger } from '../log/logger.js';
import type { UpstreamConfig } from './config.js';

/** A credential's loggable forms name its service, never its value. */
export class Credential {
  readonly service: string;
  readonly version: number;
  readonly #value: string;

  constructor(service: string, value: string, version: number) {
    this.service = service;
    this.version = version;
    this.#value = value;
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

interface Slot {
  current: Credential;
  previous?: Credential;
  /** The values responses are searched for, kept ready for the hot path. */
  secrets: string[];
  secretBytes: Buffer[];
}

function slotFor(current: Credential, previous?: Credential): Slot {
  const secrets = previous ? [current.value, previous.value] : [current.value];
  return {
    current,
    ...(previous ? { previous } : {}),
    secrets,
    secretBytes: secrets.map((secret) => Buffer.from(secret)),
  };
}

export class CredentialStore {
  readonly #slots = new Map<string, Slot>();
  readonly #watched: string[] = [];
  readonly #files = new Map<string, string>();
  readonly #logger: Logger;

  constructor(
    upstreams: Readonly<Record<string, UpstreamConfig>>,
    logger: Logger,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.#logger = logger;
    for (const [service, upstream] of Object.entries(upstreams)) {
      const source = upstream.credential;
      const value =
        'file' in source
          ? readCredentialFile(service, source.file)
          : readEnv(service, source.env, env);
      this.#slots.set(service, slotFor(new Credential(service, value, 1)));
    }
    for (const [service, upstream] of Object.entries(upstreams)) {
      if ('file' in upstream.credential) {
        this.#files.set(service, upstream.credential.file);
        this.#watch(service, upstream.credential.file);
      }
    }
  }

  current(service: string): Credential {
    const slot = this.#slots.get(service);
    if (!slot) throw new MintfsError('ERR_SERVICE_UNKNOWN', `no credential for service ${service}`);
    return slot.current;
  }

  /** Values a response must never carry back: the current and the previous credential. */
  secretsFor(service: string): readonly string[] {
    return this.#slots.get(service)?.secrets ?? [];
  }

  /** The same, as bytes, for searching bodies. */
  secretBytesFor(service: string): readonly Buffer[] {
    return this.#slots.get(service)?.secretBytes ?? [];
  }

  /** Re-reads one service's credential file now (the watcher calls this on change). */
  reload(service: string, file: string): void {
    const slot = this.#slots.get(service);
    if (!slot) return;
    let value: string;
    try {
      value = readCredentialFile(service, file);
    } catch (err) {
      this.#logger.error(
        {
          event: 'credential-reload-failed',
          service,
          reason: err instanceof Error ? err.message : String(err),
        },
        'keeping the last good credential',
      );
      return;
    }
    if (value === slot.current.value) return;
    slot.previous = slot.current;
    slot.current = new Credential(service, value, slot.current.version + 1);
    this.#logger.info(
      { event: 'credential-reloaded', service, version: slot.current.version },
      'credential rotated',
    );
  }

  /** Re-reads every credential file now (SIGHUP). */
  reloadAll(): void {
    for (const [service, file] of this.#files) this.reload(service, file);
  }

  close(): void {
    for (const file of this.#watched) unwatchFile(file);
    this.#watched.length = 0;
  }

  #watch(service: string, file: string): void {
    // Stat polling, not inotify: it sees atomic replacement (rename over the
    // file), edits in place, and files on any file system alike.
    watchFile(file, { interval: 250, persistent: false }, (now, before) => {
      if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size)
        this.reload(service, file);
    });
    this.#watched.push(file);
  }
}

function readCredentialFile(service: string, file: string): string {
  const fail = (reason: string) =>
    new MintfsError(
      'ERR_CREDENTIAL_UNAVAILABLE',
      `upstreams.${service}.credential: ${file} ${reason}`,
    );
  let info;
  try {
    info = lstatSync(file);
  } catch {
    throw fail('does not exist');
  }
  if (!info.isFile()) throw fail('is not a regular file');
  const untrusted = untrustedPathProblem(file);
  if (untrusted !== undefined) throw fail(untrusted.replace(/^it /, ''));
  if ((info.mode & 0o077) !== 0)
    throw fail(
      `is accessible by group or others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`,
    );
  return checkValue(readFileSync(file, 'utf8'), fail);
}

function readEnv(service: string, name: string, env: NodeJS.ProcessEnv): string {
  const fail = (reason: string) =>
    new MintfsError(
      'ERR_CREDENTIAL_UNAVAILABLE',
      `upstreams.${service}.credential: $${name} ${reason}`,
    );
  const value = env[name];
  if (value === undefined) throw fail('is not set');
  return checkValue(value, fail);
}

function checkValue(raw: string, fail: (reason: string) => MintfsError): string {
  const value = raw.replace(/\r?\n$/, '');
  if (value === '') throw fail('is empty');
  // A newline inside a header value would let the credential file inject headers.

  if (/[\u0000-\u001f\u007f]/.test(value)) throw fail('contains a control character or newline');
  return value;
}
