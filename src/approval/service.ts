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
  bindDischargeTo,
  MAX_DISCHARGE_USES,
  mintDischarge,
  mintUnboundDischarge,
  requestDigest,
  type ApprovedRequest,
  type DecisionTerms,
} from './discharge.js';
import { RENEW_MS } from './lease.js';
import type { DecisionRecord, HeldRecord, SharedApprovals } from './shared.js';

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
  /** The whole body as an approver may read it (redacted as the preview is): `approvals show`. */
  readonly body: string;
}

/** A held request as `mintfs approvals show` gives it: the view and the whole (redacted) body. */
export type PendingDetail = PendingView & { readonly body: string };

export type Decision =
  | {
      readonly kind: 'approved';
      readonly id: string;
      readonly approver: string;
      /** Discharges bound to the held token, not yet checked (the gate checks them). */
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

/** The token a standing approval is looked up for. */
export interface StandingToken {
  readonly tokenId: string;
  readonly keyId: string;
  readonly signature: Buffer;
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

  /**
   * With `shared`, held requests and decisions go through Redis
   * (shared.ts): every gateway's approvers see and decide every held request.
   */
  constructor(
    private readonly settings: ApprovalSettings,
    private readonly keyById: (keyId: string) => RootKey | undefined,
    private readonly logger: Logger,
    private readonly clock: () => Date = () => new Date(),
    private readonly shared?: SharedApprovals,
  ) {
    shared?.onEvent((event) => {
      const pending = this.#pending.get(event.id);
      if (event.kind === 'decided' && pending !== undefined) void this.#fetchDecision(pending);
      this.#changed();
    });
  }

  /** Hears every change of the held list (a request held or settled); returns how to stop. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }

  /** Held requests (of every gateway sharing Redis), oldest first. */
  async list(): Promise<PendingView[]> {
    if (this.shared !== undefined) return (await this.shared.list()).map((record) => record.view);
    return [...this.#pending.values()].map((p) => this.#viewOf(p));
  }

  /** One held request with its whole (redacted) body. */
  async show(id: string): Promise<PendingDetail> {
    if (this.shared !== undefined) {
      const record = await this.shared.held(id);
      if (record === undefined) throw unknown(id);
      return { ...record.view, body: record.body };
    }
    const pending = this.#take(id);
    return { ...this.#viewOf(pending), body: pending.held.body };
  }

  #viewOf(p: Pending): PendingView {
    return {
      id: p.id,
      ...p.held.view,
      heldAt: p.heldAt.toISOString(),
      timesOutAt: p.timesOutAt.toISOString(),
    };
  }

  /**
   * An approval given earlier for this token and this exact request, with
   * uses that may be left (the caller checks the discharges and counts).
   */
  async standing(token: StandingToken, request: ApprovedRequest): Promise<Standing | undefined> {
    const name = `${token.tokenId}:${requestDigest(request)}`;
    if (this.shared !== undefined) {
      const record = await this.shared.standing(name, token.keyId).catch(() => undefined);
      if (record === undefined) return undefined;
      return {
        discharges: bindAll(record.discharges, token.signature),
        terms: termsOf(record.terms),
      };
    }
    const found = this.#standing.get(name);
    if (found !== undefined && this.clock() >= found.terms.expiresAt) {
      this.#standing.delete(name);
      return undefined;
    }
    return found;
  }

  /**
   * Holds a request until a decision. `signal` aborts when the client goes
   * away. Refuses at once (throws) when the agent already has its maximum
   * waiting, or when the request cannot be shared (Redis away).
   */
  async hold(held: HeldRequest, signal: AbortSignal): Promise<Decision> {
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
    let resolve: (decision: Decision) => void = () => undefined;
    const decided = new Promise<Decision>((r) => (resolve = r));
    let done = false;
    let renewal: NodeJS.Timeout | undefined;
    const timer = setTimeout(
      () => void this.#conclude(pending, 'timeout'),
      this.settings.timeoutMs,
    );
    const onAbort = () => void this.#conclude(pending, 'cancelled');
    const pending: Pending = {
      id,
      held,
      heldAt,
      timesOutAt,
      settle: (decision) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(renewal);
        signal.removeEventListener('abort', onAbort);
        this.#pending.delete(id);
        this.#log(decision, held);
        resolve(decision);
        this.#changed();
      },
    };
    // Counted from now, so a burst cannot pass the limits while Redis answers.
    this.#pending.set(id, pending);
    if (this.shared !== undefined) {
      const key = this.keyById(held.keyId);
      try {
        if (key === undefined)
          throw new MintfsError(
            'ERR_APPROVAL_UNAVAILABLE',
            `key ${held.keyId} is not in the keyring`,
          );
        if (!this.shared.up())
          throw new MintfsError(
            'ERR_STATE_UNAVAILABLE',
            'Redis is unreachable: a held request could not be shown to approvers; retry',
          );
        // The agent's limit counts what it has waiting on every gateway sharing Redis.
        const elsewhere = (await this.shared.list()).filter(
          (r) => r.view.agent === held.view.agent && !this.#pending.has(r.view.id),
        ).length;
        if (waiting + elsewhere >= this.settings.maxHeldPerAgent)
          throw new MintfsError(
            'ERR_TOO_MANY_REQUESTS',
            `agent ${held.view.agent} already has ${waiting + elsewhere} requests waiting for an approver on the gateways sharing Redis (approval.maxHeldPerAgent)`,
          );
        await this.shared.hold(key, this.#recordOf(pending));
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(id);
        throw err;
      }
      renewal = setInterval(() => void this.#renew(pending), RENEW_MS);
    }
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
    return decided;
  }

  #recordOf(p: Pending): HeldRecord {
    return {
      view: this.#viewOf(p),
      request: { ...p.held.request },
      tickets: p.held.approvals.map((a) => Buffer.from(a.caveatId).toString('base64')),
      keyId: p.held.keyId,
      body: p.held.body,
    };
  }

  /** An approver's yes: discharges for every approval caveat the request needs. */
  async approve(id: string, approver: string, options: ApproveOptions = {}): Promise<void> {
    const uses = options.uses ?? 1;
    if (!Number.isInteger(uses) || uses < 1 || uses > MAX_DISCHARGE_USES)
      throw new MintfsError('ERR_INPUT_INVALID', `uses must be 1 to ${MAX_DISCHARGE_USES}`);
    const ttlMs = options.ttlMs ?? this.settings.decisionTtlMs;
    if (!Number.isInteger(ttlMs) || ttlMs < 1000 || ttlMs > 24 * 3_600_000)
      throw new MintfsError('ERR_INPUT_INVALID', 'ttl must be 1 s to 24 h');
    const terms: DecisionTerms = {
      decisionId: id,
      // Whole seconds, as time-before caveats carry them, rounded down.
      expiresAt: new Date(Math.floor((this.clock().getTime() + ttlMs) / 1000) * 1000),
      uses,
    };
    if (this.shared !== undefined) return this.#approveShared(id, cleanApprover(approver), terms);
    const pending = this.#take(id);
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
      this.#standing.set(`${pending.held.view.tokenId}:${requestDigest(pending.held.request)}`, {
        discharges,
        terms,
      });
    pending.settle({ kind: 'approved', id, approver: cleanApprover(approver), discharges, terms });
  }

  /**
   * Approves a request held on any gateway: unbound discharges made from
   * the sealed record, stored as the decision only if no other came first.
   */
  async #approveShared(id: string, approver: string, terms: DecisionTerms): Promise<void> {
    const shared = this.shared as SharedApprovals;
    const record = await shared.held(id);
    // A record past its own time-out is one whose holder stopped renewing it.
    if (record === undefined || Date.parse(record.view.timesOutAt) <= this.clock().getTime())
      throw unknown(id);
    const key = this.keyById(record.keyId);
    if (key === undefined) throw unknown(id);
    const discharges = record.tickets.map((text) => {
      const ticket = Buffer.from(text, 'base64');
      return mintUnboundDischarge(ticket, dischargeRootKey(key, ticket), record.request, terms);
    });
    const sharedTerms = { ...terms, expiresAt: terms.expiresAt.toISOString() };
    const encoded = discharges.map((d) => d.toString('base64'));
    const won = await shared.decide(id, key, {
      kind: 'approved',
      approver,
      discharges: encoded,
      terms: sharedTerms,
    });
    if (!won) throw unknown(id);
    if (terms.uses > 1)
      await shared.putStanding(
        `${record.view.tokenId}:${requestDigest(record.request)}`,
        key,
        { discharges: encoded, terms: sharedTerms },
        terms.expiresAt.getTime() - this.clock().getTime(),
      );
    const pending = this.#pending.get(id);
    if (pending !== undefined)
      pending.settle({
        kind: 'approved',
        id,
        approver,
        discharges: bindAll(encoded, pending.held.tokenSignature),
        terms,
      });
  }

  async deny(id: string, approver: string, reason: string): Promise<void> {
    const text = reason
      .replace(/[\u0000-\u001f\u007f]/g, ' ')
      .trim()
      .slice(0, MAX_REASON);
    const decision = {
      kind: 'denied' as const,
      id,
      approver: cleanApprover(approver),
      reason: text === '' ? 'denied by an approver' : text,
    };
    if (this.shared !== undefined) {
      const record = await this.shared.held(id);
      const key = record === undefined ? undefined : this.keyById(record.keyId);
      if (key === undefined) throw unknown(id);
      const { kind, approver: by, reason: why } = decision;
      if (!(await this.shared.decide(id, key, { kind, approver: by, reason: why })))
        throw unknown(id);
      this.#pending.get(id)?.settle(decision);
      return;
    }
    this.#take(id).settle(decision);
  }

  /** Every held request is answered 503 (retryable); no new ones are taken. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(
      [...this.#pending.values()].map((pending) => this.#conclude(pending, 'stopped')),
    );
  }

  /**
   * The holder's own end of a wait (time-out, client gone, stopping). Shared,
   * it is decided like an approver's decision, so that exactly one wins: an
   * approval that came first is applied instead.
   */
  async #conclude(pending: Pending, kind: 'timeout' | 'cancelled' | 'stopped'): Promise<void> {
    const key = this.keyById(pending.held.keyId);
    if (this.shared !== undefined && key !== undefined && this.shared.up())
      try {
        if (!(await this.shared.decide(pending.id, key, { kind }))) {
          const decision = await this.shared.decision(pending.id);
          if (decision !== undefined) return this.#apply(pending, decision);
        }
      } catch {
        // Redis away: the record expires with its lease; nothing is released.
      }
    pending.settle({ kind, id: pending.id });
  }

  /** Keeps a shared record alive while it is held; notices a decision whose message was missed. */
  async #renew(pending: Pending): Promise<void> {
    const shared = this.shared as SharedApprovals;
    try {
      if (await shared.renew(pending.id)) return;
      const decision = await shared.decision(pending.id);
      if (decision !== undefined) return this.#apply(pending, decision);
      // Lost (Redis restarted, or away longer than a lease): shown again.
      const key = this.keyById(pending.held.keyId);
      if (key !== undefined && this.#pending.has(pending.id))
        await shared.hold(key, this.#recordOf(pending));
    } catch {
      // Redis away: tried again at the next renewal.
    }
  }

  async #fetchDecision(pending: Pending): Promise<void> {
    try {
      const decision = await (this.shared as SharedApprovals).decision(pending.id);
      if (decision !== undefined) this.#apply(pending, decision);
    } catch {
      // Redis away: the next renewal looks again.
    }
  }

  #apply(pending: Pending, decision: DecisionRecord): void {
    const id = pending.id;
    switch (decision.kind) {
      case 'approved':
        return pending.settle({
          kind: 'approved',
          id,
          approver: cleanApprover(decision.approver),
          discharges: bindAll(decision.discharges, pending.held.tokenSignature),
          terms: termsOf(decision.terms),
        });
      case 'denied':
        return pending.settle({
          kind: 'denied',
          id,
          approver: cleanApprover(decision.approver),
          reason: decision.reason,
        });
      default:
        return pending.settle({ kind: decision.kind, id });
    }
  }

  #take(id: string): Pending {
    const pending = this.#pending.get(id);
    if (pending === undefined) throw unknown(id);
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

function unknown(id: string): MintfsError {
  return new MintfsError(
    'ERR_APPROVAL_UNKNOWN',
    `no request waits under ${id.slice(0, 40)} (decided, timed out, or never held)`,
  );
}

/** Unbound discharges (base64) bound to a token; any that does not decode is dropped (and so refused). */
function bindAll(encoded: readonly string[], tokenSignature: Buffer): Buffer[] {
  return encoded.flatMap(
    (text) => bindDischargeTo(Buffer.from(text, 'base64'), tokenSignature) ?? [],
  );
}

function termsOf(terms: { decisionId: string; expiresAt: string; uses: number }): DecisionTerms {
  return { decisionId: terms.decisionId, expiresAt: new Date(terms.expiresAt), uses: terms.uses };
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
