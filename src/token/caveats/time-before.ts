/** `time-before 2026-11-22T01:20:00Z`: the request must come strictly earlier. Every token has one. */
import { formatInstant } from '../../util/instant.js';
import type { Caveat, CaveatKind } from './kind.js';

export interface TimeBeforeCaveat extends Caveat {
  readonly kind: 'time-before';
  readonly at: Date;
}

const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

export function formatTimeBefore(at: Date): string {
  // Whole seconds keep every token of one file the same length (see fs/).
  return `time-before ${formatInstant(at)}`;
}

export const timeBefore: CaveatKind = {
  name: 'time-before',
  refusalCode: 'ERR_TOKEN_EXPIRED',
  parse(values, text, malformed) {
    const stamp = values[0] as string;
    const at = new Date(stamp);
    if (values.length !== 1 || !RFC3339_UTC.test(stamp) || Number.isNaN(at.getTime()))
      return malformed('expects one RFC 3339 UTC time such as 2026-11-22T01:20:00Z');
    const caveat: TimeBeforeCaveat = {
      kind: 'time-before',
      text,
      at,
      check: (request) =>
        request.now.getTime() < at.getTime() ? undefined : `token expired at ${stamp}`,
    };
    return { ok: true, caveat };
  },
  fromGrant: (_grant, expiresAt) => formatTimeBefore(expiresAt),
};
