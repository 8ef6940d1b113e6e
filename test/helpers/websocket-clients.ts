/**
 * WebSocket clients for gateway tests: Node's own (undici's, global in Node
 * 22+; the undici package's with a ProxyAgent for CONNECT tunnels), Python's
 * `websockets` in a child process, and a raw socket for what no library
 * would send.
 */
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { ProxyAgent, WebSocket as UndiciWebSocket } from 'undici';
import { FIXTURES } from './paths.js';
import { pollUntil } from './poll.js';
import type { Teardown } from './temp.js';

export interface NodeClient {
  readonly messages: Array<string | Buffer>;
  /** The close event's code and reason, once it came. */
  readonly closed: Promise<{ code: number; reason: string }>;
  send(data: string | Buffer): void;
  close(): void;
  /** The next message after the `count` already received. */
  message(index: number, timeoutMs?: number): Promise<string | Buffer>;
}

interface MinimalSocket {
  binaryType: string;
  send(data: string | Buffer): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: never) => void): void;
}

/** Opens a socket with Node's WebSocket; rejects if the handshake fails. */
export async function openNodeSocket(
  teardown: Teardown,
  url: string,
  token: string,
  proxy?: { readonly uri: string; readonly ca: string },
): Promise<NodeClient> {
  const headers = { authorization: `Bearer ${token}` };
  const ws: MinimalSocket =
    proxy === undefined
      ? (new WebSocket(url, { headers }) as unknown as MinimalSocket)
      : (new UndiciWebSocket(url, {
          headers,
          dispatcher: new ProxyAgent({ uri: proxy.uri, requestTls: { ca: proxy.ca } }),
        }) as unknown as MinimalSocket);
  ws.binaryType = 'arraybuffer';
  const messages: Array<string | Buffer> = [];
  ws.addEventListener('message', (event: { data: string | ArrayBuffer }) =>
    messages.push(typeof event.data === 'string' ? event.data : Buffer.from(event.data)),
  );
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.addEventListener('close', (event: { code: number; reason: string }) =>
      resolve({ code: event.code, reason: event.reason }),
    ),
  );
  teardown.add(() => ws.close());
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve());
    ws.addEventListener('error', () => reject(new Error(`WebSocket to ${url} failed`)));
  });
  return {
    messages,
    closed,
    send: (data) => ws.send(data),
    close: () => ws.close(1000, 'done'),
    message: (index, timeoutMs = 10_000) =>
      pollUntil(`message ${index}`, () => messages[index], timeoutMs),
  };
}

export interface PythonClient {
  /** JSON lines it printed so far. */
  readonly lines: Array<Record<string, unknown>>;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
  line(index: number, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export function runPythonClient(teardown: Teardown, args: Record<string, unknown>): PythonClient {
  const child = spawn(
    // Debian's Python, where python3-websockets is installed (not a pyenv shim's).
    '/usr/bin/python3',
    [join(FIXTURES, 'websocket', 'python-client.py'), JSON.stringify(args)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  teardown.add(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines: Array<Record<string, unknown>> = [];
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    let cut;
    while ((cut = stdout.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(stdout.slice(0, cut)) as Record<string, unknown>);
      stdout = stdout.slice(cut + 1);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return {
    lines,
    stderr: () => stderr,
    exited,
    line: (index, timeoutMs = 20_000) =>
      pollUntil(
        `line ${index} from the Python client`,
        () => {
          if (lines[index] !== undefined) return lines[index];
          if (child.exitCode !== null)
            throw new Error(`python client exited ${child.exitCode}: ${stderr}`);
          return undefined;
        },
        timeoutMs,
      ),
  };
}

export interface RawAnswer {
  readonly status: number;
  readonly head: string;
  /** Everything after the head that arrived before the connection closed (or until `whole`). */
  readonly rest: Buffer;
  readonly socket: Socket;
}

/**
 * Sends `request` (a whole handshake, and anything after it) on a plain
 * connection and reads the answer's head, then what follows until the
 * connection closes or `until` says enough (by default: its Content-Length).
 */
export async function rawExchange(
  teardown: Teardown,
  port: number,
  request: Buffer | string,
  until?: (rest: Buffer) => boolean,
): Promise<RawAnswer> {
  const socket = connect(port, '127.0.0.1');
  teardown.add(() => socket.destroy());
  socket.on('error', () => socket.destroy());
  let data = Buffer.alloc(0);
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('data', (chunk: Buffer) => (data = Buffer.concat([data, chunk])));
  socket.write(request);
  await pollUntil('an answer head', () => data.includes('\r\n\r\n'));
  const cut = data.indexOf('\r\n\r\n');
  const head = data.subarray(0, cut).toString('latin1');
  // By default: the whole body its Content-Length announces (a refusal may keep the connection).
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  const enough = until ?? ((rest: Buffer) => length !== null && rest.length >= Number(length[1]));
  await Promise.race([ended, pollUntil('the answer', () => enough(data.subarray(cut + 4)))]);
  return {
    status: Number(head.split(' ')[1]),
    head,
    rest: data.subarray(cut + 4),
    socket,
  };
}

/** A WebSocket handshake as text, with extra header lines. */
export function handshakeText(
  path: string,
  token: string | undefined,
  extra: string[] = [],
): string {
  return [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ...(token === undefined ? [] : [`Authorization: Bearer ${token}`]),
    ...extra,
    '',
    '',
  ].join('\r\n');
}
