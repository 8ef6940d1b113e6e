/**
 * A real HTTPS upstream for gateway tests: it records every request it gets
 * and can echo what it received (to prove redaction), stream large bodies,
 * compress, or stall.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
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
}

export async function startUpstream(pki: TestPki, teardown: Teardown): Promise<TestUpstream> {
  const requests: Recorded[] = [];
  const server: Server = createServer({ cert: pki.cert, key: pki.key }, (req, res) => {
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
  return { port, url: `https://localhost:${port}`, requests };
}
