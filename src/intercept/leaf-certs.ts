/**
 * Leaf certificates for intercepted hosts, made on demand and cached.
 *
 * One P-256 key per gateway process, in memory only; a certificate per host
 * name, valid for LEAF_LIFETIME_MS (backdated a minute for clock skew) and
 * replaced once half of that has passed, so a leaked leaf is short-lived and
 * a busy host costs one signature per half hour. Concurrent first requests
 * for one host share one issuance.
 */
import { x509 } from './x509.js';
import { createSecureContext, type SecureContext } from 'node:tls';
// webcrypto through the module object, a getter (x509.ts says why).
import nodeCrypto, { type webcrypto } from 'node:crypto';
import { EC_P256, randomSerial, toPem, type LoadedCa } from './ca.js';

export const LEAF_LIFETIME_MS = 60 * 60 * 1000;

export interface Leaf {
  readonly context: SecureContext;
  /** The leaf certificate alone, PEM. */
  readonly certPem: string;
  readonly renewAt: number;
}

export interface LeafIssuerStats {
  readonly issued: number;
  readonly cached: number;
}

export class LeafIssuer {
  readonly #ca: LoadedCa;
  readonly #clock: () => Date;
  readonly #cache = new Map<string, Promise<Leaf>>();
  #keys: Promise<{ pair: webcrypto.CryptoKeyPair; pem: string }> | undefined;
  #issued = 0;

  constructor(ca: LoadedCa, clock: () => Date = () => new Date()) {
    this.#ca = ca;
    this.#clock = clock;
  }

  get stats(): LeafIssuerStats {
    return { issued: this.#issued, cached: this.#cache.size };
  }

  /** A TLS context presenting a certificate for `host` (lower-case, already checked against the config). */
  async contextFor(host: string): Promise<SecureContext> {
    return (await this.leafFor(host)).context;
  }

  /** The cached leaf for `host`, made (or renewed) when needed. */
  async leafFor(host: string): Promise<Leaf> {
    const now = this.#clock().getTime();
    const pending = this.#cache.get(host);
    if (pending !== undefined) {
      const leaf = await pending;
      if (now < leaf.renewAt) return leaf;
      if (this.#cache.get(host) === pending) this.#cache.delete(host);
    }
    let fresh = this.#cache.get(host);
    if (fresh === undefined) {
      fresh = this.#issue(host);
      this.#cache.set(host, fresh);
      // A failed issuance is not remembered: the next tunnel tries again.
      fresh.catch(() => {
        if (this.#cache.get(host) === fresh) this.#cache.delete(host);
      });
    }
    return fresh;
  }

  async #issue(host: string): Promise<Leaf> {
    const keys = await (this.#keys ??= this.#leafKeys());
    const now = this.#clock();
    const notAfter = Math.min(
      now.getTime() + LEAF_LIFETIME_MS,
      this.#ca.certificate.notAfter.getTime(),
    );
    const certificate = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: `CN=${host}`,
      issuer: this.#ca.certificate.subject,
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(notAfter),
      signingAlgorithm: EC_P256,
      publicKey: keys.pair.publicKey,
      signingKey: this.#ca.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: host }], false),
        await x509.AuthorityKeyIdentifierExtension.create(this.#ca.certificate, false),
        await x509.SubjectKeyIdentifierExtension.create(keys.pair.publicKey),
      ],
    });
    this.#issued++;
    const context = createSecureContext({
      key: keys.pem,
      // The chain: the leaf, then the CA (clients have it; some want it sent).
      cert: `${certificate.toString('pem')}\n${this.#ca.certPem}`,
      minVersion: 'TLSv1.2',
    });
    return {
      context,
      certPem: certificate.toString('pem'),
      renewAt: now.getTime() + (notAfter - now.getTime()) / 2,
    };
  }

  async #leafKeys(): Promise<{ pair: webcrypto.CryptoKeyPair; pem: string }> {
    const pair = await nodeCrypto.webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
    const der = Buffer.from(await nodeCrypto.webcrypto.subtle.exportKey('pkcs8', pair.privateKey));
    const pem = toPem('PRIVATE KEY', der);
    der.fill(0);
    return { pair, pem };
  }
}
