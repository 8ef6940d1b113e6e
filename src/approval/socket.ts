/**
 * The approvers' local socket: `mintfs approvals list|approve|deny --socket`
 * talk to the gateway here, one JSON request and one JSON answer per line.
 *
 * Only root (and the gateway's own user) may connect: the socket is made
 * 0600 in a directory no one else can write (checked like a keyring path),
 * and it is never a `listen:` address, so no agent's network reaches it. The
 * approver is named by the peer's uid (SO_PEERCRED), never by anything the
 * client says.
 */
import { chmodSync } from 'node:fs';
import { createServer, Socket, type Server } from 'node:net';
import { dirname } from 'node:path';
import * as z from 'zod';
import { isMintfsError, MintfsError } from '../errors.js';
import { loadNativeAddon } from '../fuse/native-addon.js';
import type { Logger } from '../log/logger.js';
import { assertTrustedPath } from '../util/trusted-path.js';
import type { Approvers } from './approvers.js';
import type { ApprovalService } from './service.js';

const MAX_LINE = 4096;

export const SocketRequestSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('list') }),
  z.strictObject({ op: z.literal('show'), id: z.string().min(1).max(64) }),
  z.strictObject({
    op: z.literal('approve'),
    id: z.string().min(1).max(64),
    uses: z.number().int().min(1).max(100).optional(),
    ttlMs: z.number().int().min(1000).max(86_400_000).optional(),
  }),
  z.strictObject({ op: z.literal('enrol'), approver: z.string().min(1).max(64) }),
  z.strictObject({ op: z.literal('remove-approver'), approver: z.string().min(1).max(64) }),
  z.strictObject({
    op: z.literal('deny'),
    id: z.string().min(1).max(64),
    reason: z.string().max(500),
  }),
]);
export type SocketRequest = z.infer<typeof SocketRequestSchema>;

/** Listens on `path`; returns the server (closed by the caller at stop). */
/** The approvers' page, when approval.listen is set: where enrolment links point. */
export interface PageEnrolment {
  readonly approvers: Approvers;
  readonly origin: () => string;
}

export async function serveApprovalSocket(
  path: string,
  service: ApprovalService,
  logger: Logger,
  removeStale: (path: string) => Promise<void>,
  page?: PageEnrolment,
): Promise<Server> {
  assertTrustedPath(dirname(path), 'approval.socket directory');
  await removeStale(path);
  const server = createServer((socket) => serveClient(socket, service, logger, page));
  server.maxConnections = 16;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new MintfsError('ERR_LISTEN_FAILED', `approval.socket ${path}: ${err.code ?? err.message}`),
      ),
    );
    // Exclusive: a gateway worker binds it itself, never through the cluster primary.
    server.listen({ path, exclusive: true }, () => resolve());
  });
  chmodSync(path, 0o600);
  return server;
}

function approverOf(socket: Socket): string {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  try {
    const peer = typeof fd === 'number' ? loadNativeAddon().peerCredentials(fd) : null;
    if (peer != null) return `uid:${peer.uid}`;
  } catch {
    // Without the addon the socket's mode still limits who connects.
  }
  return 'local-socket';
}

function serveClient(
  socket: Socket,
  service: ApprovalService,
  logger: Logger,
  page: PageEnrolment | undefined,
): void {
  const approver = approverOf(socket);
  let buffered = '';
  let queue = Promise.resolve();
  socket.setEncoding('utf8');
  socket.setTimeout(30_000, () => socket.destroy());
  socket.on('error', () => undefined);
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    if (buffered.length > MAX_LINE) {
      answer(socket, { ok: false, error: 'ERR_INPUT_INVALID', message: 'request line too long' });
      socket.end();
      return;
    }
    let newline;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      // Answers go in the order asked, whatever each waits for.
      queue = queue.then(async () =>
        answer(socket, await handle(line, approver, service, logger, page)),
      );
    }
  });
}

async function handle(
  line: string,
  approver: string,
  service: ApprovalService,
  logger: Logger,
  page: PageEnrolment | undefined,
): Promise<Record<string, unknown>> {
  let parsed;
  try {
    parsed = SocketRequestSchema.safeParse(JSON.parse(line));
  } catch {
    return {
      ok: false,
      error: 'ERR_INPUT_INVALID',
      message: 'a request is one JSON object a line',
    };
  }
  if (!parsed.success)
    return {
      ok: false,
      error: 'ERR_INPUT_INVALID',
      message: parsed.error.issues[0]?.message ?? 'not a request',
    };
  const request = parsed.data;
  try {
    switch (request.op) {
      case 'list':
        return { ok: true, pending: await service.list() };
      case 'show':
        return { ok: true, pending: await service.show(request.id) };
      case 'approve':
        await service.approve(request.id, approver, {
          ...(request.uses === undefined ? {} : { uses: request.uses }),
          ...(request.ttlMs === undefined ? {} : { ttlMs: request.ttlMs }),
        });
        return { ok: true, id: request.id, decision: 'approved', approver };
      case 'deny':
        await service.deny(request.id, approver, request.reason);
        return { ok: true, id: request.id, decision: 'denied', approver };
      case 'enrol': {
        if (page === undefined)
          return {
            ok: false,
            error: 'ERR_INPUT_INVALID',
            message: 'this gateway serves no approvers page (approval.listen)',
          };
        const { code, expiresAt } = page.approvers.enrol(request.approver);
        logger.info(
          { event: 'approver-invited', approver: request.approver, by: approver },
          'an enrolment link was made',
        );
        // The code rides in the fragment: never sent in a request line, a log or a Referer.
        return {
          ok: true,
          approver: request.approver,
          link: `${page.origin()}/enrol#${code}`,
          expiresAt: expiresAt.toISOString(),
        };
      }
      case 'remove-approver': {
        const ended = page?.approvers.remove(request.approver) ?? 0;
        logger.info(
          { event: 'approver-removed', approver: request.approver, sessions: ended, by: approver },
          'an approver was removed',
        );
        return { ok: true, approver: request.approver, sessionsEnded: ended };
      }
    }
  } catch (err) {
    if (isMintfsError(err)) return { ok: false, error: err.code, message: err.message };
    logger.error({ event: 'approval-socket-failed' }, 'an approval request failed');
    return { ok: false, error: 'ERR_INPUT_INVALID', message: 'the request failed' };
  }
}

function answer(socket: Socket, body: Record<string, unknown>): void {
  if (!socket.destroyed) socket.write(`${JSON.stringify(body)}\n`);
}

/** The client side, for the CLI: one request, one answer. */
export function askApprovalSocket(
  path: string,
  request: SocketRequest,
  timeoutMs = 10_000,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let buffered = '';
    const fail = (message: string) => {
      socket.destroy();
      reject(new MintfsError('ERR_APPROVAL_UNAVAILABLE', message));
    };
    socket.setTimeout(timeoutMs, () => fail(`no answer from ${path} within ${timeoutMs / 1000} s`));
    socket.setEncoding('utf8');
    socket.on('error', (err: NodeJS.ErrnoException) =>
      fail(`cannot reach the approval socket ${path}: ${err.code ?? err.message}`),
    );
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      socket.end();
      try {
        resolve(JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>);
      } catch {
        fail('the approval socket answered something that is not JSON');
      }
    });
    socket.connect(path, () => socket.write(`${JSON.stringify(request)}\n`));
  });
}
