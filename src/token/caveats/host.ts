/** `host api.github.com [...]`: the name the agent used for the upstream. */
import { HOST_NAME } from '../vocabulary.js';
import type { CaveatKind } from './kind.js';
import { listCaveat } from './list.js';

export const host: CaveatKind = {
  name: 'host',
  parse: (values, text, malformed) =>
    listCaveat('host', text, values, HOST_NAME, malformed, (r) => r.host.toLowerCase()),
  fromGrant: (grant) => `host ${grant.hosts.join(' ')}`,
};
