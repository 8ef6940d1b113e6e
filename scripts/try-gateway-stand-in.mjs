#!/usr/bin/env node
// A stand-in for api.github.com, for scripts/try-gateway.sh: plain HTTP on
// 127.0.0.1, so the gateway can be tried with no network and no account.
// It compares the Authorization it receives with the credential file and
// logs whether it got the real credential (never the credential itself),
// and on .../echo sends back the Authorization it received, as a careless
// API might, so the walkthrough can show redaction.
//   node scripts/try-gateway-stand-in.mjs CREDENTIAL_FILE LOG_FILE
// Prints the port it listens on; SIGTERM stops it.
import { appendFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [credentialFile, logFile] = process.argv.slice(2);
if (credentialFile === undefined || logFile === undefined) {
  console.error('usage: try-gateway-stand-in.mjs CREDENTIAL_FILE LOG_FILE');
  process.exit(2);
}
const credential = readFileSync(credentialFile, 'utf8').trim();

const server = createServer((req, res) => {
  const real = req.headers.authorization === `token ${credential}`;
  const path = new URL(req.url ?? '/', 'http://stand-in').pathname;
  appendFileSync(
    logFile,
    `stand-in: ${req.method} ${path} ${real ? 'with the real credential' : 'without the real credential'}\n`,
  );
  const answer = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(body)}\n`);
  };
  if (!real) return answer(401, { message: 'Bad credentials' });
  if (path.endsWith('/echo')) return answer(200, { 'you sent': req.headers.authorization });
  return answer(200, {
    full_name: 'acme/widgets',
    served_by: 'the stand-in, with the real credential',
  });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
