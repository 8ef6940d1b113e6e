/**
 * HTTPS interception as the gateway holds it: the loaded CA and the leaf
 * issuer, checked to cover every host an upstream lists. The gateway imports
 * this module only when its config has `intercept`: X.509 (@peculiar/x509
 * and its ASN.1 schemas) is about half of a gateway's start-up, and a
 * gateway that does not intercept never needs it.
 */
import { dirname } from 'node:path';
import { MintfsError } from '../errors.js';
import { caPermits, loadCa, type LoadedCa } from './ca.js';
import { LeafIssuer } from './leaf-certs.js';

export interface Interception {
  readonly ca: LoadedCa;
  readonly issuer: LeafIssuer;
}

/** The hosts each upstream (by name) lists: what agents may tunnel to. */
export type UpstreamHosts = Readonly<Record<string, { readonly hosts: readonly string[] }>>;

export async function loadInterception(
  caDir: string,
  upstreams: UpstreamHosts,
  clock: () => Date,
): Promise<Interception> {
  const ca = await loadCa(caDir, clock());
  assertCaCovers(ca, upstreams);
  return { ca, issuer: new LeafIssuer(ca, clock) };
}

/** A name-constrained CA must cover every host agents may tunnel to, or their clients would refuse our leaf. */
export function assertCaCovers(ca: LoadedCa, upstreams: UpstreamHosts): void {
  for (const [name, upstream] of Object.entries(upstreams))
    for (const host of upstream.hosts)
      if (!caPermits(ca.permittedHosts, host))
        throw new MintfsError(
          'ERR_CONFIG_INVALID',
          `upstreams.${name}.hosts: ${host} is outside the names the CA in ${dirname(ca.certPath)} may issue for (${(ca.permittedHosts ?? []).join(', ')}); make a new CA that lists it (mintfs ca init --host ...)`,
        );
}
