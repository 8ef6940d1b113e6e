/**
 * `git http-backend` as a CGI program behind a Node HTTPS server: real smart
 * HTTP (clone, fetch, push) for test upstreams. Pushes need the repository's
 * `http.receivepack` set to true.
 */
import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** `git http-backend` as a CGI program: smart HTTP for clone and fetch. */
export function serveGit(
  root: string,
  pathInfo: string,
  req: IncomingMessage,
  res: ServerResponse,
  remoteUser = 'mintfs-test',
): void {
  const url = new URL(req.url ?? '/', 'https://localhost');
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: pathInfo,
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
      HTTP_GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
      REMOTE_ADDR: '127.0.0.1',
      REMOTE_USER: remoteUser,
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  // A CGI run that hangs is killed: the request then ends, and the test with it.
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  child.once('close', () => clearTimeout(timer));
  req.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let started = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (started) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    started = true;
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
      else headers[name] = value;
    }
    res.writeHead(status, headers);
    res.write(head.subarray(end + 4));
  });
  child.stdout.on('end', () => res.end());
}
