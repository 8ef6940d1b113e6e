/**
 * The approvers' page: a small HTTP listener of its own (approval.listen, a
 * loopback address, never one of the agents' listen addresses) serving one
 * page, its script and style, and a JSON API behind an approver's session:
 *
 *   POST /api/enrol    { code }                  spends an enrolment code, sets the session cookie
 *   GET  /api/session                            { approver, csrf }
 *   GET  /api/events                             server-sent events: the waiting list on each change
 *   POST /api/decide   { id, decision, reason? } with X-Mintfs-CSRF and a same-origin Origin
 *
 * The cookie is HttpOnly and SameSite=Strict; decisions need the session's
 * CSRF token in a header (a cross-site form cannot set one) and JSON (a
 * cross-site request with it needs a preflight this server never answers).
 * Every answer forbids framing, sniffing, caching and referrers; the
 * content security policy allows only this origin's script and style.
 * With `tls` the page is HTTPS only: the cookie is Secure and answers
 * carry Strict-Transport-Security.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import * as z from 'zod';
import { readFileSync } from 'node:fs';
import { describeError, isMintfsError, MintfsError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { csrfMatches, type Approvers, type Session } from './approvers.js';
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from './page-assets.js';
import type { ApprovalService } from './service.js';

const COOKIE = 'mintfs_approver';
const MAX_BODY = 4096;
const MAX_STREAMS = 32;

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const DecideSchema = z.strictObject({
  id: z.string().min(1).max(64),
  decision: z.enum(['approve', 'deny']),
  reason: z.string().max(500).optional(),
});
const EnrolSchema = z.strictObject({ code: z.string().min(20).max(64) });

/** The page's certificate and key (PEM), and the origin approvers open when not https://HOST:PORT. */
export interface PageTls {
  readonly cert: string;
  readonly key: string;
  readonly origin?: string | undefined;
}

/** approval.tls as configured (paths), read at start: one clear error naming the field. */
export function readPageTls(tls: {
  cert: string;
  key: string;
  origin?: string | undefined;
}): PageTls {
  const read = (field: 'cert' | 'key') => {
    try {
      return readFileSync(tls[field], 'utf8');
    } catch (err) {
      throw new MintfsError(
        'ERR_CONFIG_INVALID',
        `approval.tls.${field}: ${tls[field]} cannot be read (${describeError(err)})`,
        { cause: err },
      );
    }
  };
  return { cert: read('cert'), key: read('key'), origin: tls.origin };
}

export async function serveApprovalPage(
  address: { host: string; port: number },
  service: ApprovalService,
  approvers: Approvers,
  logger: Logger,
  tls?: PageTls,
): Promise<{ server: Server; origin: string }> {
  let origin = '';
  const secure = tls === undefined ? '' : ' Secure;';
  const streams = new Set<ServerResponse>();
  const snapshot = async (): Promise<string> => {
    try {
      return `data: ${JSON.stringify({ pending: await service.list() })}\n\n`;
    } catch (err) {
      // Redis away: the page says so rather than show an empty list.
      const message = isMintfsError(err) ? err.message : 'the held requests cannot be listed';
      return `data: ${JSON.stringify({ pending: [], error: message })}\n\n`;
    }
  };
  // One listing at a time, and one more after it when changes came meanwhile.
  let listing: Promise<void> | undefined;
  let again = false;
  const broadcast = () => {
    if (listing !== undefined) {
      again = true;
      return;
    }
    listing = (async () => {
      do {
        again = false;
        const event = await snapshot();
        for (const stream of streams) stream.write(event);
      } while (again);
      listing = undefined;
    })();
  };
  service.onChange(broadcast);
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    // Merged into every answer's head (writeHead keeps headers set before it).
    if (tls !== undefined) res.setHeader('strict-transport-security', 'max-age=31536000');
    try {
      route(req, res);
    } catch (err) {
      if (!res.headersSent)
        json(res, 500, { error: isMintfsError(err) ? err.code : 'ERR_INPUT_INVALID' });
    }
  };
  // An HTTPS server is an HTTP server over TLS (node:https): the same routes and limits.
  let server: Server;
  try {
    server =
      tls === undefined
        ? createServer(onRequest)
        : createHttpsServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, onRequest);
  } catch (err) {
    // Never the key's bytes: the reason OpenSSL gives (no PEM, key and certificate differ).
    throw new MintfsError(
      'ERR_CONFIG_INVALID',
      `approval.tls: the certificate and key do not load (${describeError(err)})`,
      { cause: err },
    );
  }
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.maxConnections = 64;

  const route = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const method = req.method ?? 'GET';
    if (method === 'GET' && (path === '/' || path === '/enrol'))
      return asset(res, 'text/html; charset=utf-8', PAGE_HTML);
    if (method === 'GET' && path === '/app.js')
      return asset(res, 'text/javascript; charset=utf-8', PAGE_JS);
    if (method === 'GET' && path === '/app.css')
      return asset(res, 'text/css; charset=utf-8', PAGE_CSS);
    if (method === 'POST' && path === '/api/enrol')
      return readJson(req, res, EnrolSchema, (body) => {
        if (!sameOrigin(req))
          return json(res, 403, { error: 'ERR_INPUT_INVALID', message: 'cross-origin' });
        const opened = approvers.redeem(body.code);
        if (opened === undefined)
          return json(res, 401, {
            error: 'ERR_INPUT_INVALID',
            message:
              'this enrolment link is spent, expired or wrong: ask for a new one (mintfs approvers add)',
          });
        logger.info(
          { event: 'approver-enrolled', approver: opened.session.approver },
          'an approver enrolled',
        );
        res.setHeader(
          'set-cookie',
          `${COOKIE}=${opened.id}; HttpOnly;${secure} SameSite=Strict; Path=/; Max-Age=43200`,
        );
        return json(res, 200, { approver: opened.session.approver, csrf: opened.session.csrf });
      });
    const session = approvers.session(cookieOf(req));
    if (path.startsWith('/api/') && session === undefined)
      return json(res, 401, {
        error: 'ERR_INPUT_INVALID',
        message: 'not enrolled: open an enrolment link (mintfs approvers add NAME)',
      });
    if (session === undefined) return json(res, 404, { error: 'ERR_NOT_FOUND' });
    if (method === 'GET' && path === '/api/session')
      return json(res, 200, { approver: session.approver, csrf: session.csrf });
    if (method === 'GET' && path === '/api/events') return events(res);
    if (method === 'POST' && path === '/api/decide') return decide(req, res, session);
    return json(res, 404, { error: 'ERR_NOT_FOUND' });
  };

  const events = (res: ServerResponse) => {
    if (streams.size >= MAX_STREAMS) return json(res, 429, { error: 'ERR_TOO_MANY_REQUESTS' });
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream',
      connection: 'keep-alive',
    });
    streams.add(res);
    void snapshot().then((event) => {
      if (streams.has(res)) res.write(event);
    });
    const beat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    res.on('close', () => {
      clearInterval(beat);
      streams.delete(res);
    });
  };

  const decide = (req: IncomingMessage, res: ServerResponse, session: Session) => {
    if (!sameOrigin(req) || !csrfMatches(session, headerOf(req, 'x-mintfs-csrf')))
      return json(res, 403, {
        error: 'ERR_INPUT_INVALID',
        message: 'a decision needs this page: same origin and its CSRF token',
      });
    readJson(req, res, DecideSchema, (body) => {
      const approver = `web:${session.approver}`;
      void (async () => {
        try {
          if (body.decision === 'approve') await service.approve(body.id, approver);
          else await service.deny(body.id, approver, body.reason ?? '');
          json(res, 200, { ok: true, id: body.id, decision: body.decision, approver });
        } catch (err) {
          if (!isMintfsError(err)) {
            logger.error({ event: 'approval-page-failed' }, 'a decision failed');
            return json(res, 500, { error: 'ERR_INPUT_INVALID', message: 'the decision failed' });
          }
          json(res, httpStatusOfDecision(err.code), { error: err.code, message: err.message });
        }
      })();
    });
  };

  const sameOrigin = (req: IncomingMessage): boolean => {
    // Browsers send Origin on every POST; one from elsewhere is a forged decision.
    const from = headerOf(req, 'origin');
    return from === origin && (headerOf(req, 'content-type') ?? '').startsWith('application/json');
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // Exclusive: a gateway worker binds it itself, never through the cluster primary.
    server.listen({ port: address.port, host: address.host, exclusive: true }, () => resolve());
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : address.port;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  origin = tls?.origin ?? `${tls === undefined ? 'http' : 'https'}://${host}:${port}`;
  logger.info({ event: 'approval-page-listening', origin }, 'the approvers page is serving');
  return { server, origin };
}

function httpStatusOfDecision(code: string): number {
  if (code === 'ERR_APPROVAL_UNKNOWN') return 404;
  if (code === 'ERR_STATE_UNAVAILABLE') return 503;
  return 400;
}

function asset(res: ServerResponse, type: string, body: string): void {
  res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': type });
  res.end(body);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function cookieOf(req: IncomingMessage): string | undefined {
  const header = headerOf(req, 'cookie') ?? '';
  for (const part of header.split(';')) {
    const [name, value] = part.trim().split('=');
    if (name === COOKIE) return value;
  }
  return undefined;
}

function readJson<S extends z.ZodType>(
  req: IncomingMessage,
  res: ServerResponse,
  schema: S,
  then: (body: z.output<S>) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      json(res, 413, { error: 'ERR_BODY_TOO_LARGE' });
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (res.headersSent) return;
    let parsed;
    try {
      parsed = schema.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    } catch {
      return json(res, 400, { error: 'ERR_INPUT_INVALID', message: 'a JSON body' });
    }
    if (!parsed.success)
      return json(res, 400, {
        error: 'ERR_INPUT_INVALID',
        message: parsed.error.issues[0]?.message ?? 'not what this takes',
      });
    then(parsed.data);
  });
}
