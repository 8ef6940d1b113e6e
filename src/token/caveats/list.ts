/** Caveats whose values are space-separated alternatives: one must equal the request's field. */
import type { Caveat, CaveatRequest, ParsedCaveat } from './kind.js';

export function listCaveat(
  kind: string,
  text: string,
  values: readonly string[],
  valid: RegExp,
  malformed: (reason: string) => ParsedCaveat,
  field: (request: CaveatRequest) => string,
): ParsedCaveat {
  const bad = values.find((v) => !valid.test(v));
  if (bad !== undefined) return malformed(`"${printable(bad)}" is not a valid ${kind}`);
  const allowed = new Set(values);
  const caveat: Caveat = {
    kind,
    text,
    check: (request) =>
      allowed.has(field(request)) ? undefined : `${kind} ${field(request)} is not allowed`,
  };
  return { ok: true, caveat };
}

/** Caveat text comes from tokens anyone can craft: keep it one short printable line. */
export function printable(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > 120 ? `${clean.slice(0, 117)}...` : clean;
}
