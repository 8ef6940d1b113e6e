/**
 * The approval service: holds requests a token reserves for a person until
 * an approver decides, and turns an approval into discharges (discharge.ts).
 *
 * It lives in the gateway process (the only place with the root keys that
 * open tickets). A held request is a Promise the proxy awaits; an approver's
 * decision, the timeout, the client going away, or the gateway stopping
 * settles it exactly once. Approvers reach it through the local socket
 * (socket.ts) and never from an agent's network. An approval with uses > 1
 * is remembered for the token and the exact request (method, host, target,
 * body digest) until its discharge expires; each use is counted.
 */
import { createHash, randomBytes } from 'node:crypto';
import { MintfsError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { dischargeRootKey } from '../token/approval-ticket.js';
import { TOKEN_LIMITS } from '../token/limits.js';
import { decodeToken } from '../token/token-text.js';
import type { RootKey } from '../token/root-key.js';
import type { ApprovalCaveat } from '../token/verify.js';
import {
  MAX_DISCHARGE_USES,
  mintDischarge,
  requestDigest,
  type ApprovedRequest,
  type DecisionTerms,
} from './discharge.js';

export interface ApprovalSettings {
  /** How long a request waits for a decision (ms). */
  readonly timeoutMs: number;
  /** Requests one agent may have waiting at once. */
  readonly maxHeldPerAgent: number;
  /** Requests waiting at once in this gateway, all agents together (memory: x maxBodyBytes). */
  readonly maxHeld?: number;
  /** How long an approval's discharge lives unless the approver says otherwise (ms). */
  readonly decisionTtlMs: number;
}

/** What an approver sees of a held request (never the token, never the credential). */
export interface PendingView {
  readonly id: string;
  readonly agent: string;
  readonly reader?: string | undefined;
  readonly tokenId: string;
  readonly service: string;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly query: string;
  readonly bodyBytes: number;
  /** The body's Content-Type and Content-Encoding values as sent, on two lines (bound into the decision). */
  readonly bodyType: string;
  /** The start of the body as text, tokens masked; '' for none. */
  readonly bodyPreview: string;
  readonly heldAt: string;
  readonly timesOutAt: string;
}

export interface HeldRequest {
  readonly view: Omit<PendingView, 'id' | 'heldAt' | 'timesOutAt'>;
  readonly request: ApprovedRequest;
  readonly approvals: readonly ApprovalCaveat[];
  readonly keyId: string;
  readonly tokenSignature: Buffer;
}

export type Decision =
  | {
      readonly kind: 'approved';
      readonly id: string;
      readonly approver: string;
      readonly discharges: readonly Buffer[];
      readonly terms: DecisionTerms;
    }
  | {
      readonly kind: 'denied';
      readonly id: string;
      readonly approver: string;
      readonly reason: string;
    }
  | { readonly kind: 'timeout'; readonly id: string }
  | { readonly kind: 'stopped'; readonly id: string }
  | { readonly kind: 'cancelled'; readonly id: string };

export interface ApproveOptions {
  /** Requests the approval releases: this one and identical ones after it (default 1). */
  readonly uses?: number;
  /** How long it lasts (ms; default decisionTtl). */
  readonly ttlMs?: number;
}

interface Pending {
  readonly id: string;
  readonly held: HeldRequest;
  readonly heldAt: Date;
  readonly timesOutAt: Date;
  readonly settle: (decision: Decision) => void;
}

/** Remembered approvals with uses left: per token id and request digest. */
interface Standing {
  readonly discharges: readonly Buffer[];
  readonly terms: DecisionTerms;
}

const MAX_REASON = 500;
const MAX_APPROVER = 128;

export class ApprovalService {
  readonly #pending = new Map<string, Pending>();
  readonly #standing = new Map<string, Standing>();
  readonly #listeners = new Set<() => void>();
  #stopped = false;

  constructor(
    private readonly settings: ApprovalSettings,
    private readonly keyById: (keyId: string) => RootKey | undefined,
    private readonly logger: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Hears every change of the held list (a request held or settled); returns how to stop. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }

  /** Held requests, oldest first. */
  list(): PendingView[] {
    return [...this.#pending.values()].map((p) => ({
      id: p.id,
      ...p.held.view,
      heldAt: p.heldAt.toISOString(),
      timesOutAt: p.timesOutAt.toISOString(),
    }));
  }

  /**
   * An approval given earlier for this token and this exact request, with
   * uses that may be left (the caller checks the discharges and counts).
   */
  standing(tokenId: string, request: ApprovedRequest): Standing | undefined {
    const key = `${tokenId}\u0000${requestDigest(request)}`;
    const found = this.#standing.get(key);
    if (found !== undefined && this.clock() >= found.terms.expiresAt) {
      this.#standing.delete(key);
      return undefined;
    }
    return found;
  }

  /**
   * Holds a request until a decision. `signal` aborts when the client goes
   * away. Refuses at once (throws) when the agent already has its maximum waiting.
   */
  hold(held: HeldRequest, signal: AbortSignal): Promise<Decision> {
    if (this.#stopped)
      throw new MintfsError('ERR_APPROVAL_UNAVAILABLE', 'the gateway is stopping; try again');
    const waiting = [...this.#pending.values()].filter(
      (p) => p.held.view.agent === held.view.agent,
    ).length;
    if (this.#pending.size >= (this.settings.maxHeld ?? 256))
      throw new MintfsError(
        'ERR_TOO_MANY_REQUESTS',
        `${this.#pending.size} requests already wait for an approver in this gateway (approval.maxHeld)`,
      );
    if (waiting >= this.settings.maxHeldPerAgent)
      throw new MintfsError(
        'ERR_TOO_MANY_REQUESTS',
        `agent ${held.view.agent} already has ${waiting} requests waiting for an approver (approval.maxHeldPerAgent)`,
      );
    const id = `apr_${randomBytes(12).toString('base64url')}`;
    const heldAt = this.clock();
    const timesOutAt = new Date(heldAt.getTime() + this.settings.timeoutMs);
    return new Promise<Decision>((resolve) => {
      let done = false;
      const timer = setTimeout(() => settle({ kind: 'timeout', id }), this.settings.timeoutMs);
      const onAbort = () => settle({ kind: 'cancelled', id });
      const settle = (decision: Decision) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#pending.delete(id);
        this.#log(decision, held);
        resolve(decision);
        this.#changed();
      };
      this.#pending.set(id, { id, held, heldAt, timesOutAt, settle });
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
      this.#changed();
      this.logger.info(
        {
          event: 'approval-held',
          approvalId: id,
          agent: held.view.agent,
          tokenId: held.view.tokenId,
          service: held.view.service,
          method: held.view.method,
          path: held.view.path,
          timesOutAt: timesOutAt.toISOString(),
        },
        'a request waits for an approver',
      );
    });
  }

  /** An approver's yes: discharges for every approval caveat the request needs. */
  approve(id: string, approver: string, options: ApproveOptions = {}): void {
    const pending = this.#take(id);
    const uses = options.uses ?? 1;
    if (!Number.isInteger(uses) || uses < 1 || uses > MAX_DISCHARGE_USES)
      throw new MintfsError('ERR_INPUT_INVALID', `uses must be 1 to ${MAX_DISCHARGE_USES}`);
    const ttlMs = options.ttlMs ?? this.settings.decisionTtlMs;
    if (!Number.isInteger(ttlMs) || ttlMs < 1000 || ttlMs > 24 * 3_600_000)
      throw new MintfsError('ERR_INPUT_INVALID', 'ttl must be 1 s to 24 h');
    const key = this.keyById(pending.held.keyId);
    if (key === undefined) {
      // The key was retired while the request waited: nothing can be discharged.
      pending.settle({
        kind: 'denied',
        id,
        approver,
        reason: `key ${pending.held.keyId} is no longer in the keyring`,
      });
      return;
    }
    const terms: DecisionTerms = {
      decisionId: id,
      // Whole seconds, as time-before caveats carry them, rounded down.
      expiresAt: new Date(Math.floor((this.clock().getTime() + ttlMs) / 1000) * 1000),
      uses,
    };
    const discharges = pending.held.approvals.map((caveat) =>
      mintDischarge(
        caveat.caveatId,
        dischargeRootKey(key, caveat.caveatId),
        pending.held.tokenSignature,
        pending.held.request,
        terms,
      ),
    );
    if (uses > 1)
      this.#standing.set(
        `${pending.held.view.tokenId}\u0000${requestDigest(pending.held.request)}`,
        { discharges, terms },
      );
    pending.settle({ kind: 'approved', id, approver: cleanApprover(approver), discharges, terms });
  }

  deny(id: string, approver: string, reason: string): void {
    const text = reason
      .replace(/[\u0000-\u001f\u007f]/g, ' ')
      .trim()
      .slice(0, MAX_REASON);
    this.#take(id).settle({
      kind: 'denied',
      id,
      approver: cleanApprover(approver),
      reason: text === '' ? 'denied by an approver' : text,
    });
  }

  /** Every held request is answered 503 (retryable); no new ones are taken. */
  stop(): void {
    this.#stopped = true;
    for (const pending of [...this.#pending.values()])
      pending.settle({ kind: 'stopped', id: pending.id });
  }

  #take(id: string): Pending {
    const pending = this.#pending.get(id);
    if (pending === undefined)
      throw new MintfsError(
        'ERR_APPROVAL_UNKNOWN',
        `no request waits under ${id.slice(0, 40)} (decided, timed out, or never held)`,
      );
    return pending;
  }

  #log(decision: Decision, held: HeldRequest): void {
    this.logger.info(
      {
        event: 'approval-decided',
        approvalId: decision.id,
        decision: decision.kind,
        ...('approver' in decision ? { approver: decision.approver } : {}),
        ...(decision.kind === 'denied' ? { reason: decision.reason } : {}),
        ...(decision.kind === 'approved'
          ? { uses: decision.terms.uses, until: decision.terms.expiresAt.toISOString() }
          : {}),
        agent: held.view.agent,
        tokenId: held.view.tokenId,
        service: held.view.service,
        method: held.view.method,
        path: held.view.path,
      },
      'an approval was decided',
    );
  }
}

function cleanApprover(name: string): string {
  return name.replace(/[^\w.@:=/-]/g, '_').slice(0, MAX_APPROVER);
}

/**
 * The start of a body as an approver may read it: text, mintfs tokens masked,
 * characters that rewrite a terminal (escapes, carriage returns, bidi
 * overrides) shown as \u{..}, capped at `max` characters.
 *
 * Only a run that decodes as a mintfs token is masked: masking every long
 * base64url run would hide what the approver is asked to judge (a commit
 * SHA a ref is forced to, a file's content), and the agent chooses its body.
 * Runs are found before the cut, so a token straddling it is masked whole
 * rather than shown up to its last characters (its signature), and blank
 * padding cannot push the rest of the body past it.
 */
export function bodyPreview(body: Buffer, max = 2048): string {
  if (body.length === 0) return '';
  const windowBytes = max + TOKEN_LIMITS.maxTokenChars;
  const window = body.subarray(0, windowBytes).toString('utf8');
  const masked = window
    .replace(TOKEN_RUN, (run) =>
      isMintfsToken(run) ? `[a mintfs token, ${run.length} characters, masked]` : run,
    )
    // Blank padding would push what follows it (a second "title" a JSON
    // parser reads last) past the cut, unseen: it is counted, not shown.
    .replace(BLANK_RUN, (run) => `[${run.length} blank characters]`);
  const cut = masked.length > max;
  const shown = (cut ? masked.slice(0, max) : masked).replace(
    UNSAFE_ON_SCREEN,
    (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`,
  );
  return cut || body.length > windowBytes ? `${shown}… (${body.length} bytes)` : shown;
}

const TOKEN_RUN = /[A-Za-z0-9_-]{40,}/g;
const BLANK_RUN = /[ \t\r\n]{64,}/g;
// C0 controls but tab and newline, DEL, C1 controls, and Unicode's invisible
// direction and format characters (Trojan Source): what an approver's
// terminal would act on or reorder instead of showing.
const UNSAFE_ON_SCREEN =
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/gu;

function isMintfsToken(run: string): boolean {
  try {
    decodeToken(run);
    return true;
  } catch {
    return false;
  }
}

export function sha256Hex(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}
