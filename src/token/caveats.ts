/**
 * First-party caveats: parsed once from their string form into small values,
 * each with one `check(request)` that returns why the request is refused.
 *
 *   time-before 2026-11-22T01:20:00Z   service github     agent demo-agent
 *   host api.github.com                method GET HEAD    path /repos/acme/**
 *   reader uid=1000 gid=1000 pid=4242 start=99 exe=/usr/bin/curl cgroup=/ctr
 *
 * A `reader` caveat restricts nothing: the mount stamps who read the token
 * (native backend, `readerCaveat: true`) so the gateway can log it.
 * Lists are space-separated alternatives. Anything else is refused when
 * parsed: a verifier that skipped a caveat it did not understand would grant
 * more than the token's holder was given.
 */
import type { MintfsErrorCode } from '../errors.js';
import { formatInstant } from '../util/instant.js';
import { TOKEN_LIMITS } from './limits.js';
import { matchPathGlob, parsePathGlob, pathGlobProblem, type PathGlob } from './path-glob.js';
import { AGENT_NAME, HOST_NAME, SERVICE_NAME, isHttpMethod } from './vocabulary.js';

/** What a caveat is checked against: the request as the upstream will see it. */
export interface CaveatRequest {
  readonly service: string;
  readonly host: string;
  readonly method: string;
  /** Decoded segments of the normalised request path (see request-path.ts). */
  readonly pathSegments: readonly string[];
  readonly now: Date;
}

export type CaveatKind =
  'time-before' | 'service' | 'agent' | 'host' | 'method' | 'path' | 'reader';

export interface Caveat {
  readonly kind: CaveatKind;
  readonly text: string;
  /** Why the request is refused, or undefined when this caveat allows it. */
  check(request: CaveatRequest): string | undefined;
}

export interface TimeBeforeCaveat extends Caveat {
  readonly kind: 'time-before';
  readonly at: Date;
}

export interface ReaderCaveat extends Caveat {
  readonly kind: 'reader';
  /** The caveat's key=value words, as minted (values percent-encoded). */
  readonly reader: string;
}

// key=value, the value printable ASCII without spaces (the minter percent-encodes the rest).
const READER_FIELD = /^[a-z]+=[\x21-\x7e]*$/;

export interface AgentCaveat extends Caveat {
  readonly kind: 'agent';
  readonly agent: string;
}

export type ParsedCaveat =
  | { readonly ok: true; readonly caveat: Caveat }
  | { readonly ok: false; readonly code: MintfsErrorCode; readonly reason: string };

const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

export function formatTimeBefore(at: Date): string {
  // Whole seconds keep every token of one file the same length (see fs/).
  return `time-before ${formatInstant(at)}`;
}

/**
 * Why a caveat is over TOKEN_LIMITS, or undefined. Cheap (one scan, no
 * parsing), so the verifier runs it on every caveat before any HMAC work.
 */
export function caveatLimitProblem(text: string): string | undefined {
  if (Buffer.byteLength(text) > TOKEN_LIMITS.maxCaveatBytes)
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
  if (limit !== undefined)
    return {
      ok: false,
      code: 'ERR_CAVEAT_MALFORMED',
      reason: `caveat "${printable(text)}": ${limit}`,
    };
  const words = text.split(' ');
  const [kind, ...values] = words;
  const malformed = (reason: string): ParsedCaveat => ({
    ok: false,
    code: 'ERR_CAVEAT_MALFORMED',
    reason: `caveat "${printable(text)}": ${reason}`,
  });
  if (values.length === 0 || values.some((v) => v === ''))
    return isKnownKind(kind) ? malformed('needs values separated by single spaces') : unknown(text);

  switch (kind) {
    case 'time-before': {
      const stamp = values[0] as string;
      const at = new Date(stamp);
      if (values.length !== 1 || !RFC3339_UTC.test(stamp) || Number.isNaN(at.getTime()))
        return malformed('expects one RFC 3339 UTC time such as 2026-11-22T01:20:00Z');
      const caveat: TimeBeforeCaveat = {
        kind,
        text,
        at,
        check: (request) =>
          request.now.getTime() < at.getTime() ? undefined : `token expired at ${stamp}`,
      };
      return { ok: true, caveat };
    }
    case 'service':
      return listCaveat(kind, text, values, SERVICE_NAME, malformed, (r) => r.service);
    case 'host':
      return listCaveat(kind, text, values, HOST_NAME, malformed, (r) => r.host.toLowerCase());
    case 'method':
      if (!values.every(isHttpMethod)) return malformed('expects HTTP methods such as GET HEAD');
      return listCaveat(kind, text, values, /^[A-Z]+$/, malformed, (r) => r.method);
    case 'agent': {
      if (values.length !== 1 || !AGENT_NAME.test(values[0] as string))
        return malformed('expects one agent name');
      // `agent` declares whom the token was minted for; the verifier reports
      // it for audit and revocation instead of restricting by it.
      const caveat: AgentCaveat = {
        kind,
        text,
        agent: values[0] as string,
        check: () => undefined,
      };
      return { ok: true, caveat };
    }
    case 'path': {
      const globs: PathGlob[] = [];
      for (const value of values) {
        const problem = pathGlobProblem(value);
        if (problem) return malformed(`glob ${value} ${problem}`);
        globs.push(parsePathGlob(value));
      }
      const caveat: Caveat = {
        kind,
        text,
        check: (request) =>
          globs.some((glob) => matchPathGlob(glob, request.pathSegments))
            ? undefined
            : `path /${request.pathSegments.join('/')} is not allowed`,
      };
      return { ok: true, caveat };
    }
    case 'reader': {
      const bad = values.find((v) => !READER_FIELD.test(v));
      if (bad !== undefined) return malformed(`"${printable(bad)}" is not a key=value field`);
      const caveat: ReaderCaveat = {
        kind,
        text,
        reader: values.join(' '),
        check: () => undefined,
      };
      return { ok: true, caveat };
    }
    default:
      return unknown(text);
  }
}

function listCaveat(
  kind: CaveatKind,
  text: string,
  values: string[],
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

const KINDS: readonly string[] = [
  'time-before',
  'service',
  'agent',
  'host',
  'method',
  'path',
  'reader',
];

function isKnownKind(kind: string | undefined): boolean {
  return kind !== undefined && KINDS.includes(kind);
}

function unknown(text: string): ParsedCaveat {
  return { ok: false, code: 'ERR_CAVEAT_UNKNOWN', reason: `unknown caveat "${printable(text)}"` };
}

/** Caveat text comes from tokens anyone can craft: keep it one short printable line. */
function printable(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > 120 ? `${clean.slice(0, 117)}...` : clean;
}
