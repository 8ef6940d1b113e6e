/**
 * The per-deployment interception CA: `ca.crt` (public, handed to sandboxes
 * as their only trust bundle) and `ca.key` (0600, read by the gateway only).
 *
 * ECDSA P-256: small certificates, fast signatures for leaf certificates
 * made on demand, and every client we support verifies it. X.509 comes from
 * @peculiar/x509 (on node's WebCrypto), never hand-written ASN.1.
 *
 * Name constraints (chosen by default): the CA is made for a list of hosts
 * (`--host`, each covering its subdomains, RFC 5280 dNSName subtrees), and
 * every IP address is excluded. A leaked CA key then impersonates only those
 * names to clients that trust it, not the whole web; adding a host means a
 * new CA (rotate). `--any-host` makes an unconstrained CA for those who
 * accept that risk.
 */
import { CA_KEY_FILE, caFiles, type CaFiles } from './ca-files.js';
import { x509 } from './x509.js';
// webcrypto through the module object, a getter (x509.ts says why).
import nodeCrypto, { createHash, type webcrypto } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  GeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  NameConstraints,
  id_ce_nameConstraints,
} from '@peculiar/asn1-x509';
import { MintfsError, describeError } from '../errors.js';
import { writeFileAtomic } from '../keys/atomic-write.js';
import { assertTrustedPath } from '../util/trusted-path.js';

export { CA_CERT_FILE, CA_KEY_FILE, caFiles, type CaFiles } from './ca-files.js';
export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface LoadedCa extends CaFiles {
  readonly certificate: x509.X509Certificate;
  readonly certPem: string;
  readonly privateKey: webcrypto.CryptoKey;
  /** dNSName subtrees the CA may issue for; undefined when unconstrained. */
  readonly permittedHosts: readonly string[] | undefined;
  /** SHA-256 of the certificate's DER, as `AB:CD:...` (what `openssl x509 -fingerprint -sha256` prints). */
  readonly fingerprint: string;
}

export interface CaInitOptions {
  /** Hosts the CA may issue for (with their subdomains); undefined for an unconstrained CA. */
  readonly hosts: readonly string[] | undefined;
  readonly now: Date;
  readonly validDays: number;
}

/** Writes a new CA into `dir`; refuses (ERR_CA_EXISTS) if either file is there. */
export async function initCa(dir: string, options: CaInitOptions): Promise<LoadedCa> {
  const files = caFiles(dir);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  assertTrustedPath(dir, 'the CA directory');
  const keys = await nodeCrypto.webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(true, 0, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  if (options.hosts !== undefined) extensions.push(nameConstraints(options.hosts));
  const notBefore = new Date(options.now.getTime() - 60_000);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=mintfs interception CA ${options.now.toISOString().slice(0, 10)}, O=mintfs`,
    notBefore,
    notAfter: new Date(options.now.getTime() + options.validDays * 86_400_000),
    signingAlgorithm: EC_P256,
    keys,
    extensions,
  });
  const keyDer = Buffer.from(await nodeCrypto.webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = toPem('PRIVATE KEY', keyDer);
  keyDer.fill(0);
  const certPem = certificate.toString('pem') + '\n';
  try {
    // The key first and exclusively: a second init fails before touching anything.
    writeFileAtomic(files.keyPath, keyPem, { mode: 0o600, exclusive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new MintfsError('ERR_CA_EXISTS', `${files.keyPath} exists: a CA is never overwritten`);
    throw err;
  }
  try {
    writeFileAtomic(files.certPath, certPem, { mode: 0o644, exclusive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new MintfsError(
        'ERR_CA_EXISTS',
        `${files.certPath} exists: a CA is never overwritten (remove the new ${CA_KEY_FILE} too)`,
      );
    throw err;
  }
  return loadCa(dir);
}

/** Reads and checks a CA directory (trusted paths, a key that matches the certificate, a CA that has not expired). */
export async function loadCa(dir: string, now = new Date()): Promise<LoadedCa> {
  const files = caFiles(dir);
  assertTrustedPath(files.keyPath, 'the CA key');
  let certPem: string;
  let keyPem: string;
  try {
    certPem = readFileSync(files.certPath, 'utf8');
    keyPem = readFileSync(files.keyPath, 'utf8');
  } catch (err) {
    throw new MintfsError('ERR_CA_INVALID', `cannot read the CA in ${dir}: ${describeError(err)}`);
  }
  let certificate: x509.X509Certificate;
  let privateKey: webcrypto.CryptoKey;
  try {
    certificate = new x509.X509Certificate(certPem);
    privateKey = await nodeCrypto.webcrypto.subtle.importKey(
      'pkcs8',
      fromPem(keyPem),
      EC_P256,
      false,
      ['sign'],
    );
  } catch (err) {
    throw new MintfsError(
      'ERR_CA_INVALID',
      `the CA in ${dir} is not readable: ${describeError(err)}`,
    );
  }
  const probe = Buffer.from('mintfs ca key check');
  const signature = await nodeCrypto.webcrypto.subtle.sign(EC_P256, privateKey, probe);
  // The package types its keys with the DOM's CryptoKey, which this build has no lib for.
  const publicKey = (await certificate.publicKey.export(EC_P256, [
    'verify',
  ])) as unknown as webcrypto.CryptoKey;
  if (!(await nodeCrypto.webcrypto.subtle.verify(EC_P256, publicKey, signature, probe)))
    throw new MintfsError('ERR_CA_INVALID', `${files.keyPath} is not the key of ${files.certPath}`);
  if (now.getTime() >= certificate.notAfter.getTime())
    throw new MintfsError(
      'ERR_CA_INVALID',
      `the CA in ${dir} expired at ${certificate.notAfter.toISOString()}: make a new one (mintfs ca init)`,
    );
  return {
    ...files,
    certificate,
    certPem,
    privateKey,
    permittedHosts: permittedHostsOf(certificate),
    fingerprint: fingerprintOf(certificate),
  };
}

/** Whether a constrained CA may issue for `host` (RFC 5280: the name or a subdomain of it). */
export function caPermits(permitted: readonly string[] | undefined, host: string): boolean {
  if (permitted === undefined) return true;
  const name = host.toLowerCase();
  return permitted.some((base) => name === base || name.endsWith(`.${base}`));
}

export function fingerprintOf(certificate: x509.X509Certificate): string {
  const digest = createHash('sha256').update(Buffer.from(certificate.rawData)).digest('hex');
  return digest.toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

export function randomSerial(): string {
  // 16 random bytes, the top bit clear so the DER integer stays positive.
  const bytes = nodeCrypto.webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] as number) & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

function nameConstraints(hosts: readonly string[]): x509.Extension {
  const value = new NameConstraints({
    permittedSubtrees: new GeneralSubtrees(
      hosts.map((host) => new GeneralSubtree({ base: new GeneralName({ dNSName: host }) })),
    ),
    // No IP address certificates at all (IPv4 and IPv6, every address).
    excludedSubtrees: new GeneralSubtrees([
      new GeneralSubtree({ base: new GeneralName({ iPAddress: ipRange(4) }) }),
      new GeneralSubtree({ base: new GeneralName({ iPAddress: ipRange(16) }) }),
    ]),
  });
  return new x509.Extension(id_ce_nameConstraints, true, AsnConvert.serialize(value));
}

/** An address and mask of zeros: every address of that length (GeneralName iPAddress takes the bytes as text). */
function ipRange(bytes: 4 | 16): string {
  return bytes === 4 ? '0.0.0.0/0' : '::/0';
}

function permittedHostsOf(certificate: x509.X509Certificate): readonly string[] | undefined {
  const extension = certificate.getExtension(id_ce_nameConstraints);
  if (!extension) return undefined;
  const parsed = AsnConvert.parse(extension.value, NameConstraints);
  // A plain array (the ASN.1 list class would carry over through map).
  return Array.from(parsed.permittedSubtrees ?? [])
    .map((subtree) => subtree.base.dNSName)
    .filter((name): name is string => name !== undefined)
    .map((name) => name.toLowerCase());
}

export function toPem(label: string, der: Uint8Array): string {
  const body = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

function fromPem(pem: string): Buffer {
  const match = /-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\s]+)-----END PRIVATE KEY-----/.exec(pem);
  if (!match) throw new Error('not a PEM PKCS#8 private key');
  return Buffer.from((match[1] as string).replace(/\s+/g, ''), 'base64');
}
