/**
 * A throwaway CA and a localhost certificate it signs, made with openssl once
 * per test process (four processes each time was a tenth of every gateway
 * test) and written into each directory that asks for one.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSync } from './spawn.js';

export interface TestPki {
  readonly caFile: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

let made: Omit<TestPki, 'caFile'> | undefined;

/** The process's test PKI, its CA certificate written to `dir`/ca.pem. */
export function makeTestPki(dir: string): TestPki {
  made ??= generatePki();
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, made.ca);
  return { caFile, ...made };
}

function generatePki(): Omit<TestPki, 'caFile'> {
  const dir = mkdtempSync(join(tmpdir(), 'mintfs-test-pki-'));
  try {
    return generatePkiIn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function generatePkiIn(dir: string): Omit<TestPki, 'caFile'> {
  const run = (args: string[]) => runSync('openssl', args, `openssl ${args[0]}`, { cwd: dir });
  run([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=mintfs test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
  ]);
  run([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    'leaf.key',
    '-out',
    'leaf.csr',
  ]);
  runSync(
    'bash',
    [
      '-c',
      'printf "subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n" > leaf.ext',
    ],
    'the leaf certificate extensions',
    { cwd: dir },
  );
  run([
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'leaf.ext',
    '-out',
    'leaf.pem',
  ]);
  return {
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    cert: readFileSync(join(dir, 'leaf.pem'), 'utf8'),
    key: readFileSync(join(dir, 'leaf.key'), 'utf8'),
  };
}
