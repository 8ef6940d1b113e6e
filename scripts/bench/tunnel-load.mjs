// A minimal HTTPS-through-CONNECT load client, the same for every proxy it
// measures: N keep-alive tunnels, each sending one request after another,
// every request with the next unused token from a file.
//
//   node tunnel-load.mjs load PROXY_PORT HOST CONNECTIONS SECONDS CA_FILE TOKENS_FILE
//     -> {"requests","rps","p50Ms","p99Ms","errors","tokensLeft"}
//   node tunnel-load.mjs handshake PROXY_PORT CA_FILE TOKENS_FILE HOST...
//     -> {"ms":[...]} one new tunnel (CONNECT, TLS, one request) per host, in order
import { readFileSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { connect as connectTls } from 'node:tls';

const [mode, ...args] = process.argv.slice(2);

function openTunnel(port, host, ca) {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, '127.0.0.1', () =>
      socket.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`),
    );
    let head = '';
    const onData = (chunk) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      if (!head.startsWith('HTTP/1.1 200') && !head.startsWith('HTTP/1.0 200'))
        return reject(new Error(`CONNECT answered ${head.slice(0, 40)}`));
      const tls = connectTls({ socket, servername: host, ca, ALPNProtocols: ['http/1.1'] });
      tls.once('secureConnect', () => resolve(tls));
      tls.once('error', reject);
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

/** Sends one GET and resolves with its status when the whole response has arrived. */
function request(tls, host, token) {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffered.subarray(0, end).toString('latin1');
      const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buffered.length - end - 4 < length) return;
      tls.off('data', onData);
      tls.off('error', reject);
      resolve(Number(head.slice(9, 12)));
    };
    tls.on('data', onData);
    tls.once('error', reject);
    tls.write(
      `GET /repos/acme/widgets HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\n\r\n`,
    );
  });
}

if (mode === 'load') {
  const [port, host, connections, seconds, caFile, tokensFile] = args;
  const ca = readFileSync(caFile, 'utf8');
  const tokens = readFileSync(tokensFile, 'utf8').trim().split('\n');
  let next = 0;
  let errors = 0;
  const latencies = [];
  const tunnels = await Promise.all(
    Array.from({ length: Number(connections) }, () => openTunnel(Number(port), host, ca)),
  );
  const started = performance.now();
  const deadline = started + Number(seconds) * 1000;
  await Promise.all(
    tunnels.map(async (tls) => {
      while (performance.now() < deadline && next < tokens.length) {
        const token = tokens[next++];
        const t0 = performance.now();
        const status = await request(tls, host, token);
        latencies.push(performance.now() - t0);
        if (status !== 200) errors++;
      }
      tls.destroy();
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  process.stdout.write(
    `${JSON.stringify({
      requests: latencies.length,
      rps: latencies.length / elapsed,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      errors,
      tokensLeft: tokens.length - next,
    })}\n`,
  );
} else if (mode === 'handshake') {
  const [port, caFile, tokensFile, ...hosts] = args;
  const ca = readFileSync(caFile, 'utf8');
  const tokens = readFileSync(tokensFile, 'utf8').trim().split('\n');
  const ms = [];
  for (const [i, host] of hosts.entries()) {
    const t0 = performance.now();
    const tls = await openTunnel(Number(port), host, ca);
    const status = await request(tls, host, tokens[i % tokens.length]);
    ms.push(performance.now() - t0);
    tls.destroy();
    if (status !== 200) throw new Error(`${host}: status ${status}`);
  }
  process.stdout.write(`${JSON.stringify({ ms })}\n`);
} else {
  process.stderr.write('usage: tunnel-load.mjs load|handshake ...\n');
  process.exitCode = 2;
}
