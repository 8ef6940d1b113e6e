/**
 * Where a CA directory keeps its certificate and key. Apart from ca.ts so
 * that what only needs the paths (`mintfs run` mounting the certificate
 * into the sandbox) does not load the X.509 library at start-up: that was
 * ~130 ms of CPU of every `mintfs run` (a --cpu-prof of the command).
 */
import { join } from 'node:path';

export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';

export interface CaFiles {
  readonly certPath: string;
  readonly keyPath: string;
}

export function caFiles(dir: string): CaFiles {
  return { certPath: join(dir, CA_CERT_FILE), keyPath: join(dir, CA_KEY_FILE) };
}
