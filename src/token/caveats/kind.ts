/**
 * What every caveat kind provides (the registry in registry.ts lists them):
 * how to parse its values into a small value with one `check(request)`, and
 * what the minter writes for a grant. Adding a kind is one new file here and
 * one line in the registry (plus the C minter when it is minted per open).
 */
import type { MintfsErrorCode } from '../../errors.js';
import type { TokenGrant } from '../mint.js';

/** What a caveat is checked against: the request as the upstream will see it. */
export interface CaveatRequest {
  readonly service: string;
  readonly host: string;
  readonly method: string;
  /** Decoded segments of the normalised request path (see request-path.ts). */
  readonly pathSegments: readonly string[];
  readonly now: Date;
}

export interface Caveat {
  readonly kind: string;
  readonly text: string;
  /** Why the request is refused, or undefined when this caveat allows it. */
  check(request: CaveatRequest): string | undefined;
}

export type ParsedCaveat =
  | { readonly ok: true; readonly caveat: Caveat }
  | { readonly ok: false; readonly code: MintfsErrorCode; readonly reason: string };

export interface CaveatKind {
  readonly name: string;
  /** `values` are the words after the name, none empty; `malformed` builds the refusal. */
  parse(
    values: readonly string[],
    text: string,
    malformed: (reason: string) => ParsedCaveat,
  ): ParsedCaveat;
  /** The caveat the minter writes for a grant, or undefined when this kind is not minted from one. */
  fromGrant?(grant: TokenGrant, expiresAt: Date): string | undefined;
  /** The refusal code when this caveat fails a request. */
  readonly refusalCode?: MintfsErrorCode;
}
