// The WebSocket bench's client, the same for every target:
//   node ws-load.mjs throughput URL CONNECTIONS WINDOW SECONDS SIZE [TOKEN]
//     -> {"messages","perSecond","errors"}: each connection keeps WINDOW
//        messages of SIZE bytes in flight to an echo server; a message
//        counts when its echo is back
//   node ws-load.mjs latency URL SECONDS SIZE [TOKEN]
//     -> {"roundTrips","p50Ms","p99Ms"}: one connection, one message at a time
import WebSocket from 'ws';

const [mode, url, ...args] = process.argv.slice(2);

function open(token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`handshake answered ${res.statusCode}`)),
    );
  });
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

if (mode === 'throughput') {
  const [connections, window, seconds, size, token] = args;
  const payload = 'x'.repeat(Number(size));
  const sockets = await Promise.all(Array.from({ length: Number(connections) }, () => open(token)));
  let counting = false;
  let messages = 0;
  let errors = 0;
  for (const ws of sockets) {
    ws.on('message', (data) => {
      if (data.length !== payload.length) errors++;
      if (counting) messages++;
      ws.send(payload);
    });
    ws.on('error', () => errors++);
  }
  for (const ws of sockets) for (let i = 0; i < Number(window); i++) ws.send(payload);
  // Half a second of warm-up, then the count.
  await new Promise((resolve) => setTimeout(resolve, 500));
  counting = true;
  const started = process.hrtime.bigint();
  await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1000));
  counting = false;
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  for (const ws of sockets) ws.terminate();
  console.log(JSON.stringify({ messages, perSecond: messages / elapsed, errors }));
} else if (mode === 'latency') {
  const [seconds, size, token] = args;
  const payload = 'x'.repeat(Number(size));
  const ws = await open(token);
  const times = [];
  const deadline = Date.now() + Number(seconds) * 1000;
  while (Date.now() < deadline) {
    const started = process.hrtime.bigint();
    await new Promise((resolve) => {
      ws.once('message', resolve);
      ws.send(payload);
    });
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  ws.terminate();
  // The first 100 round trips warm up.
  const sorted = times.slice(100).sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      roundTrips: sorted.length,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
    }),
  );
} else {
  console.error('usage: ws-load.mjs throughput|latency ...');
  process.exit(2);
}
