/**
 * A real HTTPS upstream for gateway tests: it records every request it gets
 * and can echo what it received (to prove redaction), stream large bodies,
 * compress, or stall.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
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
  /** Request targets in the order their heads arrived (before any body). */
  readonly started: string[];
}

export async function startUpstream(
  pki: TestPki,
  teardown: Teardown,
  gitRoot?: string,
): Promise<TestUpstream> {
  const requests: Recorded[] = [];
  const started: string[] = [];
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
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  teardown.add(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const port = (server.address() as AddressInfo).port;
  return { port, url: `https://localhost:${port}`, requests, started };
}

/** Smart-HTTP requests: under /git/, or any repository path as github.com has them. */
function isGitRequest(url: string): boolean {
  return (
    url.startsWith('/git/') ||
    /\.git\/(info\/refs|git-upload-pack|git-receive-pack)(\?|$)/.test(url)
  );
}
