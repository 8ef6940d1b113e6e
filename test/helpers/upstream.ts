/**
 * A real HTTPS upstream for gateway tests: it records every request it gets
 * and can echo what it received (to prove redaction), stream large bodies,
 * compress, or stall.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import zlib, { gzipSync } from 'node:zlib';
import { serveGit } from './git-http-backend.js';
import type { Teardown } from './temp.js';
import type { TestPki } from './tls.js';

export interface Recorded {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface TestUpstream {
  readonly port: number;
  readonly url: string;
  readonly requests: Recorded[];
  /** WebSocket handshakes it received (any path), and what it saw on each. */
  readonly websockets: UpstreamWebSocket[];
  /** Request targets in the order their heads arrived (before any body). */
  readonly started: string[];
}

export interface UpstreamWebSocket {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** Messages it received, in order. */
  readonly messages: Array<{ readonly binary: boolean; readonly data: Buffer }>;
  /** Raw bytes received after a fake 101 (/ws/bad-accept): must stay empty. */
  readonly smuggled: Buffer[];
  closeCode?: number;
  closed: boolean;
}

/**
 * WebSockets (the `ws` library, as a real server would use it) under any
 * path ending in:
 *   /ws/echo        echoes every message, text or binary;
 *   /ws/echo-auth   first sends the Authorization it received, as a careless API might;
 *   /ws/refuse      answers 401 with the credential in the body and a header;
 *   /ws/bad-accept  answers 101 with a wrong Sec-WebSocket-Accept, then records what arrives.
 */
function serveWebSockets(server: Server, websockets: UpstreamWebSocket[]): void {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 * 1024 });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'https://localhost').pathname;
    const record: UpstreamWebSocket = {
      url: req.url ?? '',
      headers: req.headers,
      messages: [],
      smuggled: [],
      closed: false,
    };
    websockets.push(record);
    if (path.endsWith('/ws/refuse')) {
      const body = JSON.stringify({ error: 'no', saw: req.headers.authorization });
      socket.end(
        `HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\nx-echo-authorization: ${req.headers.authorization ?? ''}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    if (path.endsWith('/ws/bad-accept')) {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n',
      );
      if (head.length > 0) record.smuggled.push(Buffer.from(head));
      socket.on('data', (chunk: Buffer) => record.smuggled.push(Buffer.from(chunk)));
      socket.on('close', () => (record.closed = true));
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('close', (code) => {
        record.closeCode = code;
        record.closed = true;
      });
      ws.on('message', (data: Buffer, binary: boolean) => {
        record.messages.push({ binary, data: Buffer.from(data) });
        ws.send(data, { binary });
      });
      if (path.endsWith('/ws/echo-auth')) ws.send(`you sent ${req.headers.authorization ?? ''}`);
    });
  });
}

export async function startUpstream(
  pki: TestPki,
  teardown: Teardown,
  gitRoot?: string,
): Promise<TestUpstream> {
  const requests: Recorded[] = [];
  const started: string[] = [];
  const websockets: UpstreamWebSocket[] = [];
  const server: Server = createServer({ cert: pki.cert, key: pki.key }, (req, res) => {
    started.push(req.url ?? '');
    if (gitRoot !== undefined && isGitRequest(req.url ?? '')) {
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.alloc(0),
      });
      const path = new URL(req.url ?? '/', 'https://localhost').pathname;
      serveGit(gitRoot, path.startsWith('/git/') ? path.slice('/git'.length) : path, req, res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const url = new URL(req.url ?? '/', 'https://localhost');
      const echoed = JSON.stringify({
        method: req.method,
        url: req.url,
        headers: req.headers,
        bodyBytes: body.length,
      });
      if (url.pathname.endsWith('/echo')) {
        // Echo the received headers in a header and in the body, as a careless API might.
        res.writeHead(200, {
          'content-type': 'application/json',
          'x-echo-authorization': String(req.headers.authorization ?? ''),
        });
        res.end(echoed);
      } else if (url.pathname.endsWith('/echo-gzip')) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(gzipSync(echoed));
      } else if (url.pathname.endsWith('/echo-zstd')) {
        // zstd (Node 22.15+ and 24 compress it; older types do not know it).
        const zstd = (zlib as unknown as Record<string, ((b: string) => Buffer) | undefined>)
          .zstdCompressSync;
        if (zstd === undefined) throw new Error('this Node has no zstd to answer /echo-zstd');
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'zstd' });
        res.end(zstd(echoed));
      } else if (url.pathname.endsWith('/echo-gzip-gzip')) {
        // Two content codings, as `content-encoding: gzip, gzip`.
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-encoding': 'gzip, gzip',
        });
        res.end(gzipSync(gzipSync(echoed)));
      } else if (url.pathname.endsWith('/echo-compress')) {
        // A coding the gateway cannot decode, with the credential in plain sight.
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'compress' });
        res.end(echoed);
      } else if (url.pathname.endsWith('/echo-te-gzip')) {
        // A gzip *transfer* coding under the chunked framing: written raw, as
        // Node's server would never produce it.
        const gz = gzipSync(echoed);
        req.socket.end(
          Buffer.concat([
            Buffer.from(
              'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: gzip, chunked\r\nconnection: close\r\n\r\n' +
                `${gz.length.toString(16)}\r\n`,
            ),
            gz,
            Buffer.from('\r\n0\r\n\r\n'),
          ]),
        );
      } else if (url.pathname.endsWith('/big')) {
        const total = Number(url.searchParams.get('bytes') ?? 1 << 20);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
        const block = Buffer.alloc(64 * 1024, 0x61);
        let sent = 0;
        const write = () => {
          while (sent < total) {
            const n = Math.min(block.length, total - sent);
            sent += n;
            if (!res.write(block.subarray(0, n))) return void res.once('drain', write);
          }
          res.end();
        };
        write();
      } else if (url.pathname.endsWith('/delay')) {
        setTimeout(
          () => {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ ok: true, delayed: true }));
          },
          Number(url.searchParams.get('ms') ?? 500),
        );
      } else if (url.pathname.endsWith('/stall')) {
        // Never answers: the gateway's upstream timeout must.
      } else if (url.pathname.endsWith('/stall-body')) {
        // Sends its head and part of a body, then nothing more.
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
        res.write('x'.repeat(100));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            ok: true,
            method: req.method,
            path: url.pathname,
            bodyBytes: body.length,
          }),
        );
      }
    });
  });
  serveWebSockets(server, websockets);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  teardown.add(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const port = (server.address() as AddressInfo).port;
  return { port, url: `https://localhost:${port}`, requests, started, websockets };
}

/** Smart-HTTP requests: under /git/, or any repository path as github.com has them. */
function isGitRequest(url: string): boolean {
  return (
    url.startsWith('/git/') ||
    /\.git\/(info\/refs|git-upload-pack|git-receive-pack)(\?|$)/.test(url)
  );
}
