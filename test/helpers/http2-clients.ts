/**
 * HTTP/2 clients inside CONNECT tunnels for gateway tests: the raw Python
 * client (test/fixtures/http2/raw-client.py) and a local forwarder that
 * opens a tunnel per connection, for clients without proxy support (nghttp).
 */
import { spawn } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { FIXTURES } from './paths.js';
import type { Teardown } from './temp.js';

export interface RawH2Result {
  readonly streams: Record<
    string,
    { status?: number; body?: string; ended?: boolean; reset?: number }
  >;
  readonly goaway: number | null;
  readonly closed: boolean;
  readonly order?: number[];
}

/** Runs the raw client to its end (asynchronously: the test's own upstream must keep serving). */
export function rawH2(args: Record<string, unknown>): Promise<RawH2Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      '/usr/bin/python3',
      [join(FIXTURES, 'http2', 'raw-client.py'), JSON.stringify(args)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`raw HTTP/2 client exited ${code}: ${stderr}`));
      resolve(JSON.parse(stdout) as RawH2Result);
    });
  });
}

/**
 * A local port whose every connection is a CONNECT tunnel to `host`:443
 * through the gateway (what an HTTPS_PROXY client does itself).
 */
export async function tunnelForwarder(
  teardown: Teardown,
  gatewayPort: number,
  host: string,
): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.on('error', () => client.destroy());
    client.pause();
    const upstream = connect(gatewayPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    upstream.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      upstream.off('data', onData);
      if (!head.subarray(0, 12).toString().startsWith('HTTP/1.1 200')) return void client.destroy();
      if (head.length > end + 4) client.write(head.subarray(end + 4));
      upstream.pipe(client);
      client.pipe(upstream);
      client.resume();
    };
    upstream.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  teardown.add(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

/** Runs a command to its end without blocking the test's event loop. */
export function runAsync(
  command: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
