// The floor for a gateway on Node.js: a pass-through reverse proxy that only
// sets one header. No routing, no verification, no redaction, no logging.
//   node bare-proxy.mjs LISTEN_PORT UPSTREAM_PORT
import { Agent, createServer, request } from 'node:http';

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
createServer((req, res) => {
  const headers = { ...req.headers, authorization: 'token bench-credential' };
  const upstream = request(
    { host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers, agent },
    (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    },
  );
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
}).listen(listenPort, '127.0.0.1');
