/**
 * Who may decide on the approvers' page: enrolment codes (one use, 15
 * minutes, made only through the root-only socket by `mintfs approvers add
 * NAME`) and the sessions they open (12 hours, or until the gateway
 * restarts). Codes and session ids are 32 random bytes, kept only as their
 * SHA-256: a memory dump or a log line of this state opens nothing.
 * Each session has its own CSRF token, which the page sends in a header on
 * every decision.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { MintfsError } from '../errors.js';

export const APPROVER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const CODE_LIFE_MS = 15 * 60_000;
const SESSION_LIFE_MS = 12 * 3_600_000;
const MAX_CODES = 64;
const MAX_SESSIONS = 256;

export interface Session {
  readonly approver: string;
  readonly csrf: string;
  readonly expiresAt: number;
}

const digest = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export class Approvers {
  readonly #codes = new Map<string, { approver: string; expiresAt: number }>();
  readonly #sessions = new Map<string, Session>();

  constructor(private readonly clock: () => Date = () => new Date()) {}

  /** A one-time enrolment code for NAME. */
  enrol(approver: string): { code: string; expiresAt: Date } {
    if (!APPROVER_NAME.test(approver))
      throw new MintfsError('ERR_INPUT_INVALID', 'an approver name is 1-64 of A-Z a-z 0-9 . _ @ -');
    this.#sweep();
    if (this.#codes.size >= MAX_CODES)
      throw new MintfsError(
        'ERR_INPUT_INVALID',
        `at most ${MAX_CODES} enrolment codes may be open`,
      );
    const code = randomBytes(32).toString('base64url');
    const expiresAt = this.clock().getTime() + CODE_LIFE_MS;
    this.#codes.set(digest(code), { approver, expiresAt });
    return { code, expiresAt: new Date(expiresAt) };
  }

  /** Spends a code; the session id (for the cookie) and the session, or undefined. */
  redeem(code: string): { id: string; session: Session } | undefined {
    this.#sweep();
    const key = digest(code);
    const found = this.#codes.get(key);
    if (found === undefined) return undefined;
    this.#codes.delete(key);
    if (this.#sessions.size >= MAX_SESSIONS) {
      // The oldest session gives way: enrolment is root's to hand out.
      const oldest = this.#sessions.keys().next().value;
      if (oldest !== undefined) this.#sessions.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    const session: Session = {
      approver: found.approver,
      csrf: randomBytes(24).toString('base64url'),
      expiresAt: this.clock().getTime() + SESSION_LIFE_MS,
    };
    this.#sessions.set(digest(id), session);
    return { id, session };
  }

  /** The session a cookie value opens, or undefined. */
  session(id: string | undefined): Session | undefined {
    if (id === undefined || id.length > 64) return undefined;
    const found = this.#sessions.get(digest(id));
    if (found === undefined) return undefined;
    if (this.clock().getTime() >= found.expiresAt) {
      this.#sessions.delete(digest(id));
      return undefined;
    }
    return found;
  }

  /** Ends every session and code of an approver; how many sessions ended. */
  remove(approver: string): number {
    let ended = 0;
    for (const [key, session] of this.#sessions)
      if (session.approver === approver) {
        this.#sessions.delete(key);
        ended++;
      }
    for (const [key, code] of this.#codes) if (code.approver === approver) this.#codes.delete(key);
    return ended;
  }

  #sweep(): void {
    const now = this.clock().getTime();
    for (const [key, code] of this.#codes) if (now >= code.expiresAt) this.#codes.delete(key);
    for (const [key, session] of this.#sessions)
      if (now >= session.expiresAt) this.#sessions.delete(key);
  }
}

/** Whether a presented CSRF token is the session's, in constant time. */
export function csrfMatches(session: Session, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}
