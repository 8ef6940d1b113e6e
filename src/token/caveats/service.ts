/** `service github [gitlab ...]`: the gateway upstream the request goes to. */
import { SERVICE_NAME } from '../vocabulary.js';
import type { CaveatKind } from './kind.js';
import { listCaveat } from './list.js';

export const service: CaveatKind = {
  name: 'service',
  parse: (values, text, malformed) =>
    listCaveat('service', text, values, SERVICE_NAME, malformed, (r) => r.service),
  fromGrant: (grant) => `service ${grant.service}`,
};
