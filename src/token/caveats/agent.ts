/**
 * `agent demo-agent`: whom the token was minted for. It declares, it does
 * not restrict: the verifier reports the first one (the minter's) for audit,
 * per-agent limits and revocation.
 */
import { AGENT_NAME } from '../vocabulary.js';
import type { Caveat, CaveatKind } from './kind.js';

export interface AgentCaveat extends Caveat {
  readonly kind: 'agent';
  readonly agent: string;
}

export const agent: CaveatKind = {
  name: 'agent',
  parse(values, text, malformed) {
    if (values.length !== 1 || !AGENT_NAME.test(values[0] as string))
      return malformed('expects one agent name');
    const caveat: AgentCaveat = {
      kind: 'agent',
      text,
      agent: values[0] as string,
      check: () => undefined,
    };
    return { ok: true, caveat };
  },
  fromGrant: (grant) => `agent ${grant.agent}`,
};
