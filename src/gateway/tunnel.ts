/**
 * HTTPS interception: `CONNECT host:443` for a name some upstream lists is
 * answered with a TLS server of our own for that name (a leaf from the
 * deployment's CA), and the decrypted requests go to the gateway's one
 * request handler, which routes them by the tunnel's host. Never a blind
 * tunnel: anything not listed is refused (403) before a byte is relayed.
 *
 * Inside the tunnel the client must have sent SNI = the CONNECT host, and
 * every request must carry Host (or :authority) = that name (route.ts); ALPN
 * offers h2 and http/1.1, and each HTTP/2 stream is a request (http2.ts).
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { describeError, type MintfsErrorCode } from '../errors.js';
import type { LeafIssuer } from '../intercept/leaf-certs.js';
import type { Logger } from '../log/logger.js';
import type { GatewayConfig } from './config.js';
import type { TunnelHttp2 } from './http2.js';
import { rawErrorResponse, statusFor } from './http-errors.js';

/** The only port tunnels are accepted for: the agents' HTTPS. */
export const TUNNEL_PORT = 443;

const tunnelHosts = new WeakMap<Socket, string>();

/** The CONNECT host of the tunnel a request arrived through, or undefined for plain requests. */
export function tunnelHostOf(socket: Socket): string | undefined {
  return tunnelHosts.get(socket);
}

export interface TunnelDeps {
  /**
   * Undefined when interception is off (no `intercept` in the config);
   * 'nested' for requests inside a tunnel, where CONNECT is always refused.
   */
  readonly interception:
    | 'nested'
    | {
        readonly issuer: LeafIssuer;
        /** The HTTP server (not listening) that parses requests inside tunnels. */
        readonly inner: Server;
        /** Serves tunnels whose client chose h2 (http2.ts). */
        readonly http2: TunnelHttp2;
        readonly handshakeTimeoutMs: number;
      }
    | undefined;
  readonly upstreams: () => GatewayConfig['upstreams'];
  readonly logger: Logger;
}

export function createConnectHandler(
  deps: TunnelDeps,
): (req: IncomingMessage, socket: Socket, head: Buffer) => void {
  return (req, socket, head) => {
    const target = req.url ?? '';
    const audit = (status: number, code?: MintfsErrorCode, host?: string) =>
      deps.logger.info(
        {
          event: 'tunnel',
          host: host ?? target.slice(0, 300),
          status,
          ...(code === undefined ? {} : { error: code }),
        },
        'gateway tunnel',
      );
    const refuse = (code: MintfsErrorCode, message: string, host?: string) => {
      const status = statusFor(code);
      audit(status, code, host);
      socket.end(rawErrorResponse(status, code, message));
    };
    const interception = deps.interception;
    if (interception === 'nested')
      return refuse(
        'ERR_TUNNEL_REFUSED',
        'CONNECT inside a tunnel is refused: one tunnel per connection, never a tunnel within a tunnel',
      );
    if (interception === undefined)
      return refuse(
        'ERR_METHOD_NOT_ALLOWED',
        'HTTPS interception is off (intercept.ca in the gateway config); send http:// URLs, the gateway speaks HTTPS upstream',
      );
    const authority = /^([a-z0-9.-]{1,253}):(\d{1,5})$/i.exec(target);
    if (!authority)
      return refuse('ERR_REQUEST_INVALID', 'CONNECT needs host:port, such as api.github.com:443');
    const host = (authority[1] as string).toLowerCase();
    if (Number(authority[2]) !== TUNNEL_PORT)
      return refuse('ERR_TUNNEL_REFUSED', `tunnels are only for port ${TUNNEL_PORT}`, host);
    const listed = Object.values(deps.upstreams()).some((u) => u.hosts.includes(host));
    if (!listed)
      return refuse('ERR_TUNNEL_REFUSED', `no upstream lists host ${host}: no tunnel`, host);

    socket.pause();
    interception.issuer.contextFor(host).then(
      (context) => {
        if (socket.destroyed) return;
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) socket.unshift(head);
        const tls = new TLSSocket(socket, {
          isServer: true,
          secureContext: context,
          // h2 first: a client that speaks both gets HTTP/2 (http2.ts), others HTTP/1.1.
          ALPNProtocols: ['h2', 'http/1.1'],
          SNICallback: (servername, done) => {
            if (servername.toLowerCase() === host) done(null, context);
            else done(new Error(`SNI ${servername.slice(0, 253)} is not the CONNECT host ${host}`));
          },
        });
        tls.on('error', (err) => {
          deps.logger.info(
            { event: 'tunnel-closed', host, reason: describeError(err).slice(0, 200) },
            'tunnel closed on a TLS error',
          );
          tls.destroy();
        });
        const timer = setTimeout(() => tls.destroy(), interception.handshakeTimeoutMs);
        tls.once('close', () => clearTimeout(timer));
        tls.once('secure', () => {
          clearTimeout(timer);
          // No SNI at all never reaches SNICallback: refuse it here.
          const sni = typeof tls.servername === 'string' ? tls.servername.toLowerCase() : '';
          if (sni !== host) {
            audit(0, 'ERR_HOST_MISMATCH', host);
            tls.destroy();
            return;
          }
          audit(200, undefined, host);
          if (tls.alpnProtocol === 'h2') return interception.http2.accept(tls, host);
          tunnelHosts.set(tls, host);
          interception.inner.emit('connection', tls);
        });
        socket.resume();
      },
      (err: unknown) => {
        deps.logger.error(
          { event: 'tunnel-failed', host, reason: describeError(err) },
          'no certificate for an intercepted host',
        );
        refuse('ERR_UPSTREAM_UNREACHABLE', `no certificate could be made for ${host}`, host);
      },
    );
  };
}
