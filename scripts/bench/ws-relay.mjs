// The WebSocket bench's baseline: a bare relay with `ws`, no token, no
// checks, no redaction. Each connection opens one to the upstream and
// messages go across both ways; what the client sends before the upstream
// is open waits.
//   node ws-relay.mjs PORT UPSTREAM_URL
import WebSocket, { WebSocketServer } from 'ws';

const [port, upstreamUrl] = process.argv.slice(2);
const server = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(port),
  perMessageDeflate: false,
});
server.on('connection', (client, req) => {
  const upstream = new WebSocket(`${upstreamUrl}${req.url}`, { perMessageDeflate: false });
  const early = [];
  client.on('message', (data, binary) => {
    if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary });
    else early.push([data, binary]);
  });
  upstream.on('open', () => {
    for (const [data, binary] of early.splice(0)) upstream.send(data, { binary });
  });
  upstream.on('message', (data, binary) => client.send(data, { binary }));
  client.on('close', () => upstream.close());
  upstream.on('close', () => client.close());
  client.on('error', () => upstream.terminate());
  upstream.on('error', () => client.terminate());
});
