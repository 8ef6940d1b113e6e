/**
 * An OAuth2 token endpoint stand-in over TLS that checks what a real one
 * checks (RFC 6749): a form-encoded POST, the client authenticated by HTTP
 * Basic (form-encoded id and secret) or in the body, the grant's own
 * parameters, and for refresh_token a token it issued and has not seen spent
 * (each refresh rotates it). Records every request.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Teardown } from './temp.js';
import type { TestPki } from './tls.js';

export interface TokenEndpoint {
  readonly url: string;
  /** Every request's form, and how the client authenticated. */
  readonly requests: Array<{ form: URLSearchParams; auth: 'basic' | 'body' | 'none' }>;
  /** Access tokens issued, in order. */
  readonly issued: string[];
  /** The refresh token the next refresh must present. */
  refreshToken: string;
  /** Seconds an access token lives. */
  expiresIn: number;
}

export async function startTokenEndpoint(
  pki: TestPki,
  teardown: Teardown,
  client: { id: string; secret?: string },
): Promise<TokenEndpoint> {
  const state: TokenEndpoint = {
    url: '',
    requests: [],
    issued: [],
    refreshToken: `rt_${randomBytes(12).toString('hex')}`,
    expiresIn: 3600,
  };
  const server: Server = createServer({ cert: pki.cert, key: pki.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (status: number, body: object) => {
        res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== '/oauth/token')
        return answer(404, { error: 'not_found' });
      if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded'))
        return answer(400, { error: 'invalid_request' });
      const form = new URLSearchParams(Buffer.concat(chunks).toString());
      const basic = /^Basic (.+)$/.exec(String(req.headers.authorization ?? ''));
      let id: string | undefined;
      let secret: string | undefined;
      let auth: 'basic' | 'body' | 'none' = 'none';
      if (basic) {
        const [rawId, rawSecret] = Buffer.from(basic[1] as string, 'base64')
          .toString()
          .split(':');
        id = decodeURIComponent((rawId ?? '').replace(/\+/g, ' '));
        secret = decodeURIComponent((rawSecret ?? '').replace(/\+/g, ' '));
        auth = 'basic';
        // RFC 6749 2.3: one authentication method per request.
        if (form.has('client_secret')) return answer(400, { error: 'invalid_request' });
      } else if (form.has('client_id')) {
        id = form.get('client_id') ?? undefined;
        secret = form.get('client_secret') ?? undefined;
        auth = 'body';
      }
      state.requests.push({ form, auth });
      if (id !== client.id || secret !== client.secret)
        return answer(401, { error: 'invalid_client', error_description: `bad secret ${secret}` });
      const grant = form.get('grant_type');
      const accessToken = `at_${randomBytes(16).toString('hex')}`;
      if (grant === 'client_credentials') {
        if (client.secret === undefined) return answer(400, { error: 'unauthorized_client' });
        state.issued.push(accessToken);
        return answer(200, {
          access_token: accessToken,
          token_type: 'Bearer',
          expires_in: state.expiresIn,
          ...(form.has('scope') ? { scope: form.get('scope') } : {}),
        });
      }
      if (grant === 'refresh_token') {
        if (form.get('refresh_token') !== state.refreshToken)
          return answer(400, {
            error: 'invalid_grant',
            error_description: `spent ${form.get('refresh_token')}`,
          });
        state.refreshToken = `rt_${randomBytes(12).toString('hex')}`;
        state.issued.push(accessToken);
        return answer(200, {
          access_token: accessToken,
          token_type: 'bearer',
          expires_in: state.expiresIn,
          refresh_token: state.refreshToken,
        });
      }
      return answer(400, { error: 'unsupported_grant_type' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  teardown.add(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, { url: `https://localhost:${port}/oauth/token` });
}
