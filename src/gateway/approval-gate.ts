/**
 * The pipeline step for requests a token reserves for an approver
 * (ERR_APPROVAL_REQUIRED from verification): read the body whole (a
 * decision binds its digest), use a standing approval for this exact
 * request if one has uses left, or hold the request until an approver
 * decides. Every discharge is checked as any verifier would check it
 * (bound to this token, this request, in time) and its use counted before
 * the request goes on.
 */
import type { IncomingMessage } from 'node:http';
import { checkDischarge, type ApprovedRequest } from '../approval/discharge.js';
import {
  bodyPreview,
  sha256Hex,
  type ApprovalService,
  type ApprovalSettings,
} from '../approval/service.js';
import { isMintfsError, type MintfsErrorCode } from '../errors.js';
import type { UseCounter } from '../state/use-counter.js';
import type { ApprovalCaveat, AuthenticatedToken } from '../token/verify.js';

export interface ApprovalGate {
  readonly service: ApprovalService;
  readonly settings: ApprovalSettings & { readonly maxBodyBytes: number };
}

export type GateOutcome =
  | { readonly ok: true; readonly body: Buffer | undefined }
  | { readonly ok: false; readonly code: MintfsErrorCode; readonly message: string }
  /** The client went away while it waited: nobody to answer. */
  | { readonly ok: false; readonly code: undefined };

export interface GateRequest {
  readonly req: IncomingMessage;
  readonly hasBody: boolean;
  readonly token: AuthenticatedToken;
  readonly approvals: readonly ApprovalCaveat[];
  readonly service: string;
  readonly host: string;
  readonly path: string;
  readonly query: string;
  readonly bodyIdleTimeoutMs: number;
  readonly maxBodyBytes: number;
  readonly useCounter: UseCounter;
  readonly now: () => Date;
  readonly signal: AbortSignal;
}

export async function passApprovalGate(gate: ApprovalGate, r: GateRequest): Promise<GateOutcome> {
  const limit = Math.min(gate.settings.maxBodyBytes, r.maxBodyBytes);
  const read = r.hasBody ? await readWhole(r.req, limit, r.bodyIdleTimeoutMs) : Buffer.alloc(0);
  if (!Buffer.isBuffer(read)) return read;
  const request: ApprovedRequest = {
    method: r.req.method ?? 'GET',
    host: r.host,
    target: `${r.path}${r.query}`,
    bodySha256: sha256Hex(read),
    bodyType: bodyTypeOf(r.req.rawHeaders),
  };
  const body = r.hasBody ? read : undefined;
  const standing = await gate.service.standing(r.token, request);
  if (standing !== undefined) {
    const used = await releaseWith(standing.discharges, r, request);
    // A standing approval spent or expired: ask again, as for a first request.
    if (used.ok) return { ok: true, body };
  }
  let decision;
  try {
    decision = await gate.service.hold(
      {
        view: {
          agent: r.token.agent ?? `token:${r.token.tokenId}`,
          reader: r.token.reader,
          tokenId: r.token.tokenId,
          service: r.service,
          method: request.method,
          host: r.host,
          path: r.path,
          query: r.query,
          bodyBytes: read.length,
          bodyType: request.bodyType,
          bodyPreview: bodyPreview(read),
        },
        // Whole, for `mintfs approvals show` (read whole already: at most approval.maxBodyBytes).
        body: bodyPreview(read, Number.MAX_SAFE_INTEGER),
        request,
        approvals: r.approvals,
        keyId: r.token.keyId,
        tokenSignature: r.token.signature,
      },
      r.signal,
    );
  } catch (err) {
    if (isMintfsError(err)) return { ok: false, code: err.code, message: err.message };
    throw err;
  }
  switch (decision.kind) {
    case 'cancelled':
      return { ok: false, code: undefined };
    case 'timeout':
      return {
        ok: false,
        code: 'ERR_APPROVAL_TIMEOUT',
        message: `no approver decided within ${Math.round(gate.settings.timeoutMs / 1000)} s (approval ${decision.id})`,
      };
    case 'stopped':
      return {
        ok: false,
        code: 'ERR_APPROVAL_UNAVAILABLE',
        message: `the gateway stopped while the request waited for an approver (approval ${decision.id}); retry`,
      };
    case 'denied':
      return {
        ok: false,
        code: 'ERR_APPROVAL_DENIED',
        message: `${decision.approver} denied this request (approval ${decision.id}): ${decision.reason}. Do not retry it unchanged`,
      };
    case 'approved': {
      const used = await releaseWith(decision.discharges, r, request);
      return used.ok ? { ok: true, body } : used;
    }
  }
}

/** Checks every needed caveat's discharge and counts one use of the decision. */
async function releaseWith(
  discharges: readonly Buffer[],
  r: GateRequest,
  request: ApprovedRequest,
): Promise<{ ok: true } | { ok: false; code: MintfsErrorCode; message: string }> {
  const now = r.now();
  let terms;
  for (const approval of r.approvals) {
    const checks = discharges.map((d) =>
      checkDischarge(approval, r.token.signature, d, request, now),
    );
    const good = checks.find((c) => c.ok);
    if (good === undefined || !good.ok) {
      const reason = checks.find((c) => !c.ok);
      return {
        ok: false,
        code: 'ERR_APPROVAL_REQUIRED',
        message:
          reason !== undefined && !reason.ok
            ? reason.reason
            : 'no discharge for an approval caveat',
      };
    }
    terms = good.terms;
  }
  if (terms === undefined) return { ok: true };
  const spent = await r.useCounter.spend(
    `approval:${terms.decisionId}`,
    terms.uses,
    terms.expiresAt,
    now,
  );
  if (spent.ok) return { ok: true };
  return {
    ok: false,
    code: spent.reason === 'spent' ? 'ERR_APPROVAL_REQUIRED' : 'ERR_STATE_UNAVAILABLE',
    message:
      spent.reason === 'spent'
        ? `approval ${terms.decisionId} has released its ${terms.uses} ${terms.uses === 1 ? 'request' : 'requests'}`
        : `the uses of approval ${terms.decisionId} cannot be counted (${spent.detail})`,
  };
}

/** The body whole, up to `limit` bytes, each chunk within `idleMs` of the last. */
function readWhole(
  req: IncomingMessage,
  limit: number,
  idleMs: number,
): Promise<Buffer | { ok: false; code: MintfsErrorCode; message: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (value: Buffer | { ok: false; code: MintfsErrorCode; message: string }) => {
      if (done) return;
      done = true;
      clearTimeout(idle);
      req.off('data', onData);
      resolve(value);
    };
    const idle = setTimeout(
      () =>
        finish({
          ok: false,
          code: 'ERR_REQUEST_TIMEOUT',
          message: `the request body sent nothing for ${idleMs} ms`,
        }),
      idleMs,
    );
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        finish({
          ok: false,
          code: 'ERR_BODY_TOO_LARGE',
          message: `a request held for approval carries at most ${limit} bytes of body (approval.maxBodyBytes)`,
        });
        req.resume();
        return;
      }
      chunks.push(chunk);
      idle.refresh();
    };
    req.on('data', onData);
    req.once('end', () => finish(Buffer.concat(chunks)));
    req.once('error', () =>
      finish({ ok: false, code: 'ERR_REQUEST_INVALID', message: 'the request body was cut short' }),
    );
  });
}

/**
 * Every Content-Type and Content-Encoding value as sent, in order: the
 * upstream gets all of them (upstreamHeaders forwards each), and may read the
 * last where Node's req.headers keeps only the first.
 */
export function bodyTypeOf(rawHeaders: readonly string[]): string {
  const values = { 'content-type': [] as string[], 'content-encoding': [] as string[] };
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    if (name === 'content-type' || name === 'content-encoding')
      values[name].push(rawHeaders[i + 1] as string);
  }
  return `${values['content-type'].join(', ')}\n${values['content-encoding'].join(', ')}`;
}
