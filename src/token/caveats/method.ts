/** `method GET HEAD`: the request's HTTP method. */
import { isHttpMethod } from '../vocabulary.js';
import type { CaveatKind } from './kind.js';
import { listCaveat } from './list.js';

export const method: CaveatKind = {
  name: 'method',
  parse(values, text, malformed) {
    if (!values.every(isHttpMethod)) return malformed('expects HTTP methods such as GET HEAD');
    return listCaveat('method', text, values, /^[A-Z]+$/, malformed, (r) => r.method);
  },
  fromGrant: (grant) => `method ${grant.methods.join(' ')}`,
};
