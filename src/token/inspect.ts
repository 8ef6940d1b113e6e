/** What a token says about itself, read without any key (nothing is verified). */
import { parseCaveat, type AgentCaveat, type TimeBeforeCaveat } from './caveats.js';
import { decodeToken } from './token-text.js';
import { formatInstant } from '../util/instant.js';

export interface TokenSummary {
  readonly id: string;
  readonly keyId: string;
  readonly location: string;
  /** When it was minted (whole seconds), from the signed identifier. */
  readonly issuedAt: string;
  readonly caveats: readonly string[];
  /** The earliest `time-before`, or null when the token has none. */
  readonly expiresAt: string | null;
  /** The first `agent` caveat: the one the minter wrote. */
  readonly agent: string | null;
  /** Third-party caveats (approval): their location; what they hold only the gateway can open. */
  readonly thirdPartyCaveats?: ReadonlyArray<{ readonly location: string }>;
}

export function inspectToken(token: string): TokenSummary {
  const decoded = decodeToken(token);
  const parsed = decoded.caveats.map(parseCaveat).flatMap((p) => (p.ok ? [p.caveat] : []));
  const expiries = parsed
    .filter((c): c is TimeBeforeCaveat => c.kind === 'time-before')
    .map((c) => c.at.getTime());
  const agent = parsed.find((c): c is AgentCaveat => c.kind === 'agent');
  return {
    id: decoded.tokenId,
    keyId: decoded.keyId,
    location: decoded.location,
    issuedAt: formatInstant(decoded.issuedAt),
    caveats: decoded.caveats,
    expiresAt: expiries.length > 0 ? formatInstant(new Date(Math.min(...expiries))) : null,
    agent: agent?.agent ?? null,
    ...(decoded.thirdParty.length === 0
      ? {}
      : {
          thirdPartyCaveats: decoded.thirdParty.map(({ caveat }) => ({
            location: caveat.location,
          })),
        }),
  };
}
