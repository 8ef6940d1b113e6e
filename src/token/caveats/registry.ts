/**
 * The caveat kinds mintfs understands, in the order the minter writes them.
 * Parsing, minting and the docs read this list; nothing else names kinds.
 *
 * Anything else is refused when parsed: a verifier that skipped a caveat it
 * did not understand would grant more than the token's holder was given.
 */
import { TOKEN_LIMITS } from '../limits.js';
import type { TokenGrant } from '../mint.js';
import { agent } from './agent.js';
import { awsPolicy } from './aws-policy.js';
import { githubPerms, githubRepos } from './github.js';
import { host } from './host.js';
import type { CaveatKind, ParsedCaveat } from './kind.js';
import { printable } from './list.js';
import { method } from './method.js';
import { path } from './path.js';
import { reader } from './reader.js';
import { service } from './service.js';
import { timeBefore } from './time-before.js';
import { uses } from './uses.js';

export const CAVEAT_KINDS: readonly CaveatKind[] = [
  timeBefore,
  service,
  agent,
  host,
  method,
  path,
  uses,
  reader,
  githubRepos,
  githubPerms,
  awsPolicy,
];

const BY_NAME = new Map(CAVEAT_KINDS.map((kind) => [kind.name, kind]));

/** The caveats a grant mints, in order (the reader caveat, when any, is added by the mount). */
export function grantCaveats(grant: TokenGrant, expiresAt: Date): string[] {
  return CAVEAT_KINDS.flatMap((kind) => kind.fromGrant?.(grant, expiresAt) ?? []);
}

/**
 * Why a caveat is over TOKEN_LIMITS, or undefined. Cheap (one scan, no
 * parsing), so the verifier runs it on every caveat before any HMAC work.
 */
export function caveatLimitProblem(text: string): string | undefined {
  // A UTF-16 unit is at most 3 UTF-8 bytes: short text needs no byte count.
  if (
    text.length * 3 > TOKEN_LIMITS.maxCaveatBytes &&
    Buffer.byteLength(text) > TOKEN_LIMITS.maxCaveatBytes
  )
    return `a caveat is over ${TOKEN_LIMITS.maxCaveatBytes} bytes`;
  let values = 0;
  for (let at = text.indexOf(' '); at >= 0; at = text.indexOf(' ', at + 1)) values++;
  // A reader caveat is one record of key=value fields, not a list of alternatives.
  if (values > TOKEN_LIMITS.maxListValues && !text.startsWith('reader '))
    return `a caveat lists more than ${TOKEN_LIMITS.maxListValues} values`;
  if (text.startsWith('path ')) {
    for (const glob of text.slice(5).split(' ')) {
      if (glob.split('/').length - 1 > TOKEN_LIMITS.maxGlobSegments)
        return `a path glob has more than ${TOKEN_LIMITS.maxGlobSegments} segments`;
      if (glob.split('**').length - 1 > TOKEN_LIMITS.maxDoubleStars)
        return `a path glob has more than ${TOKEN_LIMITS.maxDoubleStars} ** segments`;
    }
  }
  return undefined;
}

export function parseCaveat(text: string): ParsedCaveat {
  const limit = caveatLimitProblem(text);
  if (limit !== undefined) return malformedCaveat(text, limit);
  return parseCaveatWithinLimits(text);
}

function malformedCaveat(text: string, reason: string): ParsedCaveat {
  return {
    ok: false,
    code: 'ERR_CAVEAT_MALFORMED',
    reason: `caveat "${printable(text)}": ${reason}`,
  };
}

/**
 * Parsed caveats by text. Fresh tokens from one profile share every caveat
 * but time-before and reader, so most parses are repeats; a parsed caveat
 * is an immutable value that depends on its text alone. Bounded: when full
 * it starts over, so hostile variety costs a re-parse, never memory.
 */
const parsedByText = new Map<string, ParsedCaveat>();
const PARSED_CACHE_ENTRIES = 4096;

/** parseCaveat for text caveatLimitProblem has already passed (the verifier checks every caveat before any HMAC). */
export function parseCaveatWithinLimits(text: string): ParsedCaveat {
  const known = parsedByText.get(text);
  if (known !== undefined) return known;
  const parsed = parseUncached(text);
  if (parsed.ok) {
    if (parsedByText.size >= PARSED_CACHE_ENTRIES) parsedByText.clear();
    parsedByText.set(text, parsed);
  }
  return parsed;
}

function parseUncached(text: string): ParsedCaveat {
  const malformed = (reason: string): ParsedCaveat => malformedCaveat(text, reason);
  const [name, ...values] = text.split(' ');
  const kind = name === undefined ? undefined : BY_NAME.get(name);
  if (kind === undefined)
    return { ok: false, code: 'ERR_CAVEAT_UNKNOWN', reason: `unknown caveat "${printable(text)}"` };
  if (values.length === 0 || values.some((v) => v === ''))
    return malformed('needs values separated by single spaces');
  return kind.parse(values, text, malformed);
}

/** The code a failed check of this kind of caveat is refused with. */
export function refusalCodeOf(kind: string): 'ERR_TOKEN_EXPIRED' | 'ERR_CAVEAT_UNSATISFIED' {
  return BY_NAME.get(kind)?.refusalCode === 'ERR_TOKEN_EXPIRED'
    ? 'ERR_TOKEN_EXPIRED'
    : 'ERR_CAVEAT_UNSATISFIED';
}
