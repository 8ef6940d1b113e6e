/**
 * `uses 1`: how many requests the token may make, counted per token id by
 * the gateway (in Redis when configured, so across every gateway; in memory
 * otherwise). The caveat itself allows every request: counting needs state a
 * token cannot carry, so the verdict reports the budget (the smallest of the
 * token's `uses` caveats: attenuation can only lower it) and the gateway, or
 * a service using mintfs/verify, spends it. An attenuated token has the same
 * id, so it spends the same budget, and the count lasts until the expiry the
 * minter wrote (AuthenticatedToken.mintedExpiresAt), so a copy given an
 * earlier time-before cannot take the count with it when it expires.
 */
import type { Caveat, CaveatKind } from './kind.js';

export const MAX_USES = 1_000_000;

export interface UsesCaveat extends Caveat {
  readonly kind: 'uses';
  readonly uses: number;
}

const COUNT = /^[1-9][0-9]{0,6}$/;

export const uses: CaveatKind = {
  name: 'uses',
  parse(values, text, malformed) {
    const count = Number(values[0]);
    if (values.length !== 1 || !COUNT.test(values[0] as string) || count > MAX_USES)
      return malformed(`expects one whole number of uses from 1 to ${MAX_USES}`);
    const caveat: UsesCaveat = { kind: 'uses', text, uses: count, check: () => undefined };
    return { ok: true, caveat };
  },
  fromGrant: (grant) => (grant.uses === undefined ? undefined : `uses ${grant.uses}`),
};
