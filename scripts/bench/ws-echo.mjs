// The WebSocket bench's upstream: a `ws` server that echoes every message.
//   node ws-echo.mjs PORT
import { WebSocketServer } from 'ws';

const server = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(process.argv[2]),
  perMessageDeflate: false,
});
server.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
