/**
 * What a credential source kind is: the config object that names it
 * (`{ file }`, `{ command }`, ...), and what it yields for a request. A static
 * source has one value for everyone (re-read when it changes); a minting
 * source makes a credential for one (agent, scope) that expires, which the
 * gateway caches (minted-cache.ts).
 */
import type * as z from 'zod';
import type { Logger } from '../log/logger.js';
import type { GitHubGrant, GitHubLevel } from '../token/caveats.js';
import type { AwsKeys } from './credential.js';

/** What a minted credential is for: the agent, and what its token lets it ask of the upstream. */
export interface MintRequest {
  readonly agent: string;
  readonly scope: CredentialScope;
}

/** The narrowing a token asks of the upstream; `key` is the same for equal scopes. */
export interface CredentialScope {
  readonly key: string;
  /** For a GitHub App: the body of the token request (never more than the ceiling). */
  readonly github?: {
    readonly repositories?: readonly string[];
    readonly permissions: Readonly<Record<string, GitHubLevel>>;
  };
  /** For an assumed AWS role: the session policy's name, when the session has one. */
  readonly awsPolicy?: string;
}

/** What a verified token says about the credential it may get (its github caveats). */
export interface TokenScope {
  readonly github?: GitHubGrant | undefined;
  /** The AWS session policies its aws-policy caveats name. */
  readonly awsPolicies?: readonly string[] | undefined;
}

export const UNSCOPED: CredentialScope = { key: '' };

export interface Minted {
  readonly value: string;
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
  /** For AWS temporary keys: the key pair (value is then their secret key). */
  readonly aws?: AwsKeys;
  /** What revoke() needs to revoke it upstream, when the source can. */
  readonly handle?: unknown;
}

export interface Minter {
  /**
   * The scope a token gets, or why it gets none (a refusal before any mint).
   * Absent: the source cannot narrow, and a token asking it to is refused.
   */
  scope?(token: TokenScope): CredentialScope | string;
  /** Refuses with ERR_CREDENTIAL_UNAVAILABLE and a reason that never holds a secret or output. */
  mint(request: MintRequest): Promise<Minted>;
  /** Ends the credential upstream, when the source can. */
  revoke?(minted: Minted): Promise<void>;
  close?(): void;
}

export type OpenedSource =
  | {
      readonly kind: 'static';
      /** The value now (throws ERR_CREDENTIAL_UNAVAILABLE naming the source). */
      readonly read: () => string;
      /** A file to watch: a change re-reads the value. */
      readonly watch?: string;
    }
  | { readonly kind: 'minted'; readonly minter: Minter };

export interface SourceContext {
  readonly service: string;
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly clock: () => number;
}

export interface SourceKind<Config> {
  /** The one key of the config object that names this kind: `{ command: [...] }`. */
  readonly key: string;
  /** Strict, every field described: the config reference is generated from it. */
  readonly schema: z.ZodType<Config>;
  /** Relative paths in the config made absolute against the config file's directory. */
  resolvePaths(config: Config, base: string): Config;
  /** Checks what can be checked at start (files, executables) and makes the source. */
  open(config: Config, context: SourceContext): OpenedSource;
}
