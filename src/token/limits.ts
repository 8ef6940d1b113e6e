/**
 * Bounds on everything a token holder controls, so the cost of judging any
 * token or request is small and known in advance. Attenuation needs no key:
 * whoever holds a token can append caveats, so these are checked on every
 * token before any HMAC work, and on every request path before any caveat.
 *
 * The minter stays far inside them (profiles are checked against the same
 * numbers), so only hand-made or hostile tokens ever meet them.
 */
/** The longest a token lives: revocation records and every TTL are bounded by it. */
export const MAX_TTL_MS = 3_600_000;

export const TOKEN_LIMITS = {
  /** Characters of token text (base64url). A minted token is well under 1 KiB. */
  maxTokenChars: 8192,
  /** Caveats in one token: the minter writes at most seven. */
  maxCaveats: 32,
  /** Bytes of one caveat (a reader caveat with a long executable path is the largest). */
  maxCaveatBytes: 2048,
  /** Alternatives in one list caveat (`path`, `host`, `method`, `service`). */
  maxListValues: 16,
  /** Segments of one path glob. */
  maxGlobSegments: 32,
  /** `**` segments in one path glob. */
  maxDoubleStars: 4,
} as const;

export const REQUEST_LIMITS = {
  /** Segments of a request path the gateway will judge (longer paths are refused). */
  maxPathSegments: 128,
} as const;
