/**
 * gRPC through HTTPS interception, with @grpc/grpc-js on both sides: the
 * client sends its mintfs token as `authorization` metadata through
 * grpc_proxy, the gateway judges each call (an HTTP/2 stream: POST to
 * /package.Service/Method), puts the real credential in the metadata,
 * speaks HTTP/2 to the gRPC server and relays messages, trailers and
 * status; deadlines reach the server and end the call.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  CREDENTIAL,
  startGatewayFixture,
  type GatewayFixture,
} from '../helpers/gateway-fixture.js';
import { makeTestPki } from '../helpers/tls.js';
import { pollUntil } from '../helpers/poll.js';
import { tempDir, teardownOf } from '../helpers/temp.js';

const GRPC_HOST = 'grpc.mintfs.test';
const SERVICE = '/mintfs.test.Echo';

type Json = Record<string, unknown>;
const serialize = (value: Json): Buffer => Buffer.from(JSON.stringify(value));
const deserialize = (data: Buffer): Json => JSON.parse(data.toString()) as Json;

function method(name: string, requestStream: boolean, responseStream: boolean) {
  return {
    path: `${SERVICE}/${name}`,
    requestStream,
    responseStream,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  };
}

interface Seen {
  calls: Array<{ method: string; metadata: Json }>;
  /** The deadline the Slow call had at the server, and whether it was cancelled there. */
  slow?: { deadline: number; cancelled: boolean };
}

/** A gRPC server over TLS (the test PKI's localhost certificate). */
async function startGrpcServer(t: TestContext): Promise<{ port: number; seen: Seen }> {
  const pki = makeTestPki(tempDir(t));
  const seen: Seen = { calls: [] };
  const server = new grpc.Server();
  const record = (name: string, metadata: grpc.Metadata) =>
    seen.calls.push({ method: name, metadata: metadata.getMap() });
  server.addService(
    {
      Unary: method('Unary', false, false),
      Slow: method('Slow', false, false),
      Denied: method('Denied', false, false),
      List: method('List', false, true),
      Chat: method('Chat', true, true),
    },
    {
      Unary: (call: grpc.ServerUnaryCall<Json, Json>, done: grpc.sendUnaryData<Json>) => {
        record('Unary', call.metadata);
        // A careless service that echoes what it was sent, credential included.
        done(null, { got: call.request, authorization: call.metadata.get('authorization')[0] });
      },
      Slow: (call: grpc.ServerUnaryCall<Json, Json>, done: grpc.sendUnaryData<Json>) => {
        record('Slow', call.metadata);
        const deadline = call.getDeadline();
        const slow = {
          deadline: deadline instanceof Date ? deadline.getTime() : Number(deadline),
          cancelled: false,
        };
        seen.slow = slow;
        const timer = setTimeout(() => done(null, { late: true }), 5_000);
        call.on('cancelled', () => {
          slow.cancelled = true;
          clearTimeout(timer);
        });
      },
      Denied: (call: grpc.ServerUnaryCall<Json, Json>, done: grpc.sendUnaryData<Json>) => {
        record('Denied', call.metadata);
        done({ code: grpc.status.PERMISSION_DENIED, details: 'the server says no' });
      },
      List: (call: grpc.ServerWritableStream<Json, Json>) => {
        record('List', call.metadata);
        const count = Number(call.request.count ?? 3);
        for (let i = 0; i < count; i++) call.write({ i });
        const trailer = new grpc.Metadata();
        trailer.set('x-listed', String(count));
        call.end(trailer);
      },
      Chat: (call: grpc.ServerDuplexStream<Json, Json>) => {
        record('Chat', call.metadata);
        call.on('data', (message: Json) => call.write({ echo: message }));
        call.on('end', () => call.end());
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      '127.0.0.1:0',
      grpc.ServerCredentials.createSsl(null, [
        { private_key: Buffer.from(pki.key), cert_chain: Buffer.from(pki.cert) },
      ]),
      (err, bound) => (err ? reject(err) : resolve(bound)),
    ),
  );
  teardownOf(t).add(() => server.forceShutdown());
  return { port, seen };
}

/** Where the client puts its token: authorization metadata by default, or a key of the upstream's choosing (tokenHeader). */
interface TokenPlace {
  readonly tokenHeader: string;
  readonly inject: string;
}

async function setUp(
  t: TestContext,
  place?: TokenPlace,
): Promise<{
  gw: GatewayFixture;
  client: grpc.Client;
  seen: Seen;
  metadata: (token?: string) => grpc.Metadata;
  token: string;
}> {
  const { port, seen } = await startGrpcServer(t);
  const gw = await startGatewayFixture(t, {
    intercept: { hosts: ['api.github.com'], caHosts: [GRPC_HOST] },
    extraUpstreams: [
      '  grpc:',
      `    url: https://localhost:${port}`,
      `    hosts: [${GRPC_HOST}]`,
      '    credential: { file: ./github.credential }',
      `    inject: "${place?.inject ?? 'Authorization: Bearer {credential}'}"`,
      ...(place === undefined ? [] : [`    tokenHeader: ${place.tokenHeader}`]),
      '    ca: ./ca.pem',
      '    http2: true',
    ].join('\n'),
  });
  // grpc-js finds its proxy in the environment, as an agent's would.
  const saved = process.env.grpc_proxy;
  process.env.grpc_proxy = gw.base;
  teardownOf(t).add(() => {
    if (saved === undefined) delete process.env.grpc_proxy;
    else process.env.grpc_proxy = saved;
  });
  const client = new grpc.Client(
    `${GRPC_HOST}:443`,
    grpc.credentials.createSsl(readFileSync(gw.interceptCa as string)),
  );
  teardownOf(t).add(() => client.close());
  const token = gw.token({
    service: 'grpc',
    hosts: [GRPC_HOST],
    methods: ['POST'],
    paths: [`${SERVICE}/*`],
  });
  const metadata = (value = token) => {
    const m = new grpc.Metadata();
    if (place === undefined) m.set('authorization', `Bearer ${value}`);
    else m.set(place.tokenHeader, value);
    return m;
  };
  return { gw, client, seen, metadata, token };
}

function unary(
  client: grpc.Client,
  name: string,
  request: Json,
  metadata: grpc.Metadata,
  options: grpc.CallOptions = {},
): Promise<{ response?: Json; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      `${SERVICE}/${name}`,
      serialize,
      deserialize,
      request,
      metadata,
      options,
      (error, response) => resolve(error ? { error } : response === undefined ? {} : { response }),
    );
  });
}

describe('gateway: gRPC through interception', () => {
  it('unary: the token from authorization metadata, the credential injected upstream, its echo masked', async (t) => {
    const { client, seen, metadata, token } = await setUp(t);
    const { response, error } = await unary(client, 'Unary', { hello: 'world' }, metadata());
    assert.equal(error, undefined, error?.message);
    assert.deepEqual(response?.got, { hello: 'world' });
    assert.equal(response?.authorization, `Bearer ${'*'.repeat(CREDENTIAL.length)}`);
    assert.equal(seen.calls[0]?.metadata.authorization, `Bearer ${CREDENTIAL}`);
    assert.ok(!JSON.stringify(seen.calls).includes(token));
  });

  it('unary: the token from a metadata key the upstream names (tokenHeader), replaced there by the credential', async (t) => {
    const { client, seen, metadata, token } = await setUp(t, {
      tokenHeader: 'x-goog-api-key',
      inject: 'x-goog-api-key: {credential}',
    });
    const { response, error } = await unary(client, 'Unary', { key: 'place' }, metadata());
    assert.equal(error, undefined, error?.message);
    assert.deepEqual(response?.got, { key: 'place' });
    const upstream = seen.calls[0]?.metadata;
    assert.equal(upstream?.['x-goog-api-key'], CREDENTIAL);
    assert.equal(upstream?.authorization, undefined);
    assert.ok(!JSON.stringify(seen.calls).includes(token));
    const forged = await unary(client, 'Unary', {}, metadata('not-a-token'));
    assert.equal(forged.error?.code, grpc.status.UNAUTHENTICATED);
    assert.match(forged.error?.details ?? '', /^ERR_TOKEN_MALFORMED: /);
    assert.equal(seen.calls.length, 1, 'the refused call never reached the server');
  });

  it('server streaming: every message and the trailers reach the client', async (t) => {
    const { client, metadata } = await setUp(t);
    const call = client.makeServerStreamRequest(
      `${SERVICE}/List`,
      serialize,
      deserialize,
      { count: 5 },
      metadata(),
    );
    const messages: Json[] = [];
    call.on('data', (message: Json) => messages.push(message));
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    assert.equal(status.code, grpc.status.OK, status.details);
    assert.deepEqual(
      messages.map((m) => m.i),
      [0, 1, 2, 3, 4],
    );
    assert.deepEqual(status.metadata.get('x-listed'), ['5']);
  });

  it('bidi streaming: messages both ways on one call', async (t) => {
    const { client, metadata } = await setUp(t);
    const call = client.makeBidiStreamRequest(
      `${SERVICE}/Chat`,
      serialize,
      deserialize,
      metadata(),
    );
    const messages: Json[] = [];
    call.on('data', (message: Json) => {
      messages.push(message);
      if (messages.length < 3) call.write({ n: messages.length });
      else call.end();
    });
    call.write({ n: 0 });
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    assert.equal(status.code, grpc.status.OK, status.details);
    assert.deepEqual(messages, [{ echo: { n: 0 } }, { echo: { n: 1 } }, { echo: { n: 2 } }]);
  });

  it("the server's status and message are relayed intact", async (t) => {
    const { client, metadata } = await setUp(t);
    const { error } = await unary(client, 'Denied', {}, metadata());
    assert.equal(error?.code, grpc.status.PERMISSION_DENIED);
    assert.equal(error?.details, 'the server says no');
  });

  it('a deadline reaches the server (grpc-timeout) and ends the call there', async (t) => {
    const { client, seen, metadata } = await setUp(t);
    const deadline = Date.now() + 500;
    const { error } = await unary(client, 'Slow', {}, metadata(), { deadline: new Date(deadline) });
    assert.equal(error?.code, grpc.status.DEADLINE_EXCEEDED);
    // grpc-timeout crossed the gateway: the server knew the client's deadline (to clock and rounding slack)...
    const slow = seen.slow;
    assert.ok(
      slow !== undefined && Math.abs(slow.deadline - deadline) < 1_000,
      JSON.stringify(slow),
    );
    // ... and the call ended there too, not only at the client.
    await pollUntil('the server to see the call cancelled', () => slow.cancelled);
  });

  it('refusals are gRPC statuses a client shows: UNAUTHENTICATED, PERMISSION_DENIED, with the reason', async (t) => {
    const { gw, client, seen, metadata } = await setUp(t);
    const forged = await unary(client, 'Unary', {}, metadata('not-a-token'));
    assert.equal(forged.error?.code, grpc.status.UNAUTHENTICATED);
    assert.match(forged.error?.details ?? '', /^ERR_TOKEN_MALFORMED: /);
    const narrow = gw.token({
      service: 'grpc',
      hosts: [GRPC_HOST],
      methods: ['POST'],
      paths: [`${SERVICE}/List`],
    });
    const outside = await unary(client, 'Unary', {}, metadata(narrow));
    assert.equal(outside.error?.code, grpc.status.PERMISSION_DENIED);
    assert.match(outside.error?.details ?? '', /ERR_CAVEAT_UNSATISFIED/);
    assert.equal(seen.calls.length, 0);
  });
});
