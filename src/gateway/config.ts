/**
 * The gateway's configuration: where it listens, and for each upstream
 * service its URL, where its real credential lives, and how to inject it.
 * Relative paths (credential files, CA bundles) are relative to the config file.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import * as z from 'zod';
import {
  formatPath,
  parseYamlConfig,
  readConfigFile,
  textOf,
  type ConfigKind,
} from '../config/yaml-config.js';
import {
  HOST_NAME,
  HTTP_METHODS,
  SERVICE_NAME,
  TOKEN_PREFIX,
  TOKEN_PREFIX_RULE,
} from '../token/vocabulary.js';
import { parseDuration } from '../util/duration.js';
import { MetricsAddress } from '../metrics/address.js';
import { PARTIAL_RESPONSE_POLICIES } from './partial-responses.js';
import { CredentialSourceSchema, resolveSourcePaths } from '../credentials/registry.js';
import { InjectSchema } from './inject.js';
import {
  AwsCredentialSchema,
  isAwsCredential,
  resolveAwsPaths,
  scopeFor,
  SignSchema,
} from '../aws/index.js';

// `{ aws: ... }` for a signing upstream, any credential source otherwise.
const UpstreamCredentialSchema = z
  .union([AwsCredentialSchema, CredentialSourceSchema], {
    // The problem inside the form written, not "no branch matched".
    error: (issue) => {
      const branch = isAwsCredential(issue.input) ? 0 : 1;
      const inner = (issue as { errors?: z.core.$ZodIssue[][] }).errors?.[branch]?.[0];
      if (inner === undefined) return 'must be a credential source or { aws: ... }';
      if (inner.code === 'unrecognized_keys')
        return `${formatPath([...inner.path, inner.keys[0] ?? ''])}: unknown field`;
      const message =
        inner.code === 'invalid_type' && inner.input === undefined ? 'required' : inner.message;
      return inner.path.length === 0 ? message : `${formatPath(inner.path)}: ${message}`;
    },
  })
  .describe(
    'Where the real upstream credential comes from (docs/credentials.md), or { aws } keys for `sign: sigv4` (docs/aws.md); it never reaches the agent',
  );

const GATEWAY_CONFIG: ConfigKind = {
  noun: 'gateway config',
  invalidCode: 'ERR_CONFIG_INVALID',
  unreadableCode: 'ERR_CONFIG_UNREADABLE',
};

export type ListenAddress =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly text: string }
  | { readonly kind: 'unix'; readonly path: string; readonly text: string };

const ListenSchema = z
  .string(textOf('an address such as 127.0.0.1:8787 or unix:/run/mintfs/gateway.sock'))
  .describe(
    'host:port (such as 127.0.0.1:8787 or [::1]:8787; port 0 picks a free one) or unix:/absolute/path',
  )
  .transform((text, ctx): ListenAddress => {
    if (text.startsWith('unix:')) {
      const path = text.slice('unix:'.length);
      if (!isAbsolute(path)) {
        ctx.addIssue({ code: 'custom', message: 'a unix socket path must be absolute' });
        return z.NEVER;
      }
      return { kind: 'unix', path, text };
    }
    const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
    const port = Number(match?.[2]);
    if (!match || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not host:port or unix:/path` });
      return z.NEVER;
    }
    return { kind: 'tcp', host: (match[1] as string).replace(/^\[|\]$/g, ''), port, text };
  });

const UpstreamUrlSchema = z
  .string(textOf('a URL such as https://api.github.com'))
  .describe('Base URL of the upstream, http:// or https://, optionally with a path prefix')
  .transform((text, ctx) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a URL` });
      return z.NEVER;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      ctx.addIssue({ code: 'custom', message: 'must be an http:// or https:// URL' });
      return z.NEVER;
    }
    if (url.username || url.password || url.search || url.hash) {
      ctx.addIssue({
        code: 'custom',
        message: 'must not carry credentials, a query or a fragment',
      });
      return z.NEVER;
    }
    return url;
  });

const WebSocketSchema = z.strictObject({
  enabled: z
    .boolean()
    .default(true)
    .describe(
      'Whether agents may open WebSockets to this upstream (false: every handshake is refused, 400)',
    ),
  maxLifetime: z
    .string()
    .default('1h')
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined || ms <= 0) {
        ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration such as 30s or 1h` });
        return z.NEVER;
      }
      return ms;
    })
    .describe(
      'A WebSocket open this long is closed (1008), whatever its token says: bounds what one handshake may carry',
    ),
  maxMessageBytes: z
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024)
    .describe(
      'Largest message either side may send (closed with 1009 beyond). Messages from the upstream are held whole to redact an echo of the credential, so this bounds memory per socket',
    ),
});

const UpstreamSchema = z
  .strictObject({
    url: UpstreamUrlSchema,
    hosts: z
      .array(
        z
          .string(textOf('a hostname such as api.github.com'))
          .regex(HOST_NAME, 'must be a lower-case hostname without port'),
      )
      .min(1, 'must list at least one host')
      .optional()
      .describe(
        "The names agents use for this upstream (default: the url's host): forward-proxy requests for them come here, and the `host` caveat is checked against the name used. The url may then point elsewhere (a mirror, a test server)",
      ),
    credential: UpstreamCredentialSchema,
    inject: InjectSchema.optional(),
    sign: SignSchema.optional(),
    ca: z
      .string()
      .min(1)
      .optional()
      .describe('Extra CA certificates (PEM) to trust for this upstream'),
    tokenHeader: z
      .string(textOf('a header name such as x-api-key'))
      .regex(/^[a-z0-9-]{1,64}$/, 'must be a lower-case header name such as x-api-key')
      .refine(
        (name) =>
          ![
            'host',
            'authorization',
            'proxy-authorization',
            'connection',
            'content-length',
            'transfer-encoding',
          ].includes(name),
        'must not be a header the gateway reads for routing or framing (Authorization is always read)',
      )
      .optional()
      .describe(
        "Another request header an agent's client puts its key in (e.g. x-api-key for Anthropic's SDK): its value is taken as the token, and the header is never sent upstream",
      ),
    tokenPrefix: z
      .string(textOf('a prefix such as ghp_'))
      .regex(TOKEN_PREFIX, TOKEN_PREFIX_RULE)
      .optional()
      .describe(
        "A fixed prefix the profile's `prefix` puts before the token text, for clients that check a key's shape (ghp_ for gh): stripped before verification",
      ),
    bodyMethods: z
      .array(z.enum(HTTP_METHODS))
      .default(['POST', 'PUT', 'PATCH', 'DELETE'])
      .describe(
        'Methods whose requests may carry a body; a body on any other method is refused (400), so a GET-only token cannot stream data or hold a connection with one',
      ),
    partialResponses: z
      .enum(PARTIAL_RESPONSE_POLICIES)
      .default('refuse')
      .describe(
        'Byte ranges. refuse: a request asking for part of a response (Range, If-Range, any header named ...-range but Content-Range) is refused (400) and a partial response (206, Content-Range, multipart/byteranges) is a 502 with nothing of its body, because parts shorter than the credential would carry an echo of it past redaction. allow: both pass, for an upstream that never echoes its credential (an object store; aws-cli downloads big objects in ranged parts)',
      ),
    http2: z
      .boolean()
      .default(false)
      .describe(
        'Speak HTTP/2 to this upstream when it offers it (ALPN, https:// only): needed for gRPC, whose status comes in trailers',
      ),
    websocket: WebSocketSchema.prefault({}).describe(
      'WebSockets to this upstream: the handshake (a GET) is judged like any request, then frames are relayed; live sockets are closed (1008) when their token expires or is revoked',
    ),
  })
  .superRefine((upstream, ctx) => {
    const aws = isAwsCredential(upstream.credential);
    if (upstream.sign === undefined) {
      if (aws)
        ctx.addIssue({
          code: 'custom',
          path: ['sign'],
          message: 'an { aws } credential signs requests: add sign: sigv4',
        });
      else if (upstream.inject === undefined)
        ctx.addIssue({ code: 'custom', path: ['inject'], message: 'required' });
      return;
    }
    if (upstream.inject !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['inject'],
        message: 'a signing upstream injects nothing: drop inject or sign',
      });
    if (!aws)
      ctx.addIssue({
        code: 'custom',
        path: ['credential'],
        message:
          'sign: sigv4 signs with AWS keys: credential: { aws: { accessKeyId, secretAccessKey } }',
      });
    // Every name an agent may use must say what it is signed for, or the config must.
    // `instanceof`: an upstream whose url failed its own check reaches here untransformed.
    const hosts = upstream.hosts ?? (upstream.url instanceof URL ? [upstream.url.hostname] : []);
    for (const host of hosts) {
      if (scopeFor(upstream.sign, host) === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['sign'],
          message: `host ${host} does not name an AWS service and region: use { sigv4: { service, region } }`,
        });
    }
  })
  .transform((upstream) => ({ ...upstream, hosts: upstream.hosts ?? [upstream.url.hostname] }));

const Bytes = z.number().int().positive();
const Duration = z.string(textOf('a duration such as 30s or 5m')).transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration such as 30s or 5m` });
    return z.NEVER;
  }
  return ms;
});

export const LimitsSchema = z
  .strictObject({
    maxHeaderBytes: Bytes.default(16 * 1024).describe('Largest request head accepted (431 beyond)'),
    maxBodyBytes: Bytes.default(100 * 1024 * 1024).describe(
      'Largest request body accepted (413 beyond)',
    ),
    headersTimeout: Duration.prefault('10s').describe('Time a client has to send its request head'),
    requestTimeout: Duration.prefault('5m').describe('Time a client has to send its whole request'),
    idleTimeout: Duration.prefault('30s').describe(
      'A keep-alive connection idle this long is closed',
    ),
    upstreamTimeout: Duration.prefault('60s').describe(
      'Time the upstream has to start answering (504 beyond), and may go silent mid-body (the response is cut); also the time a client may leave a response unread (the response is cut)',
    ),
    shutdownGrace: Duration.prefault('30s').describe(
      'On SIGTERM, time in-flight requests get to finish',
    ),
    bodyIdleTimeout: Duration.prefault('10s').describe(
      'A request body that sends nothing for this long is cut (408), and its upstream request aborted',
    ),
    agentConcurrency: z
      .number()
      .int()
      .positive()
      .default(32)
      .describe(
        "Requests one agent (the token's agent caveat) may have in flight; more get 429, so one agent cannot take every upstream connection",
      ),
    http2Streams: z
      .number()
      .int()
      .positive()
      .max(1000)
      .default(100)
      .describe(
        'Streams one HTTP/2 connection (inside an intercepted tunnel) may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); each is also a request in flight for its agent (agentConcurrency)',
      ),
    upstreamConnections: z
      .number()
      .int()
      .positive()
      .default(128)
      .describe('Connections the gateway opens to each upstream at most'),
    clientConnections: z
      .number()
      .int()
      .positive()
      .default(256)
      .describe(
        "Connections (CONNECT tunnels included) one client may hold open at once: a TCP source address (127.0.0.0/8 as one, an IPv6 one by its /64) or a unix-socket peer's uid and network namespace (each run's bridge has its own). More are answered 429 and closed, token or not",
      ),
    maxConnections: z
      .union([z.number().int().positive(), z.literal('auto')])
      .default('auto')
      .describe(
        "Connections the gateway holds at once; more are dropped at accept. 'auto': what the open-file limit leaves after descriptors kept for upstream pools and state files (at most 4096, about 200 MiB of TLS tunnels). A number that does not fit under the open-file limit stops the start",
      ),
  })
  .superRefine((limits, ctx) => {
    // Node refuses a head timeout longer than the whole request's (it would never fire).
    if (limits.headersTimeout > limits.requestTimeout)
      ctx.addIssue({
        code: 'custom',
        path: ['headersTimeout'],
        message: `must not be longer than requestTimeout (${limits.requestTimeout / 1000} s)`,
      });
  })
  .describe('Limits that keep slow or hostile clients from pinning the gateway');

const RedisUrl = z.string(textOf('a URL such as redis://127.0.0.1:6379')).refine((text) => {
  try {
    const url = new URL(text);
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '';
  } catch {
    return false;
  }
}, 'is not a redis:// or rediss:// URL');

// A bare URL is shorthand for { url }: one object schema, so errors name the field.
// mintfs/verify takes the same setting (its `redis` option).
export const RedisSchema = z.preprocess(
  (value) => (typeof value === 'string' ? { url: value } : value),
  z.strictObject({
    url: RedisUrl.describe('redis:// or rediss:// (TLS); user and password in the URL are used'),
    staleAfter: Duration.prefault('30s').describe(
      'While Redis is unreachable, revocations keep their last known set; once that set is older than this, every token is refused (503 ERR_STATE_UNAVAILABLE)',
    ),
  }),
);

export const GatewayConfigSchema = z
  .strictObject({
    listen: z
      .array(ListenSchema)
      .min(1, 'must list at least one address')
      .describe('Addresses to accept agents on'),
    upstreams: z
      .record(
        z.string().regex(SERVICE_NAME, 'service names are lower-case, such as github'),
        UpstreamSchema,
      )
      .describe('Upstream services by name; the `service` caveat names one'),
    limits: LimitsSchema.prefault({}),
    intercept: z
      .strictObject({
        ca: z
          .string(textOf('a directory made by mintfs ca init'))
          .min(1)
          .describe('Directory holding ca.crt and ca.key (mintfs ca init); read at start'),
      })
      .optional()
      .describe(
        'HTTPS interception: CONNECT to a name some upstream lists is answered with a certificate from this CA, and each request inside goes through the same checks. Without it CONNECT is refused',
      ),
    approval: z
      .strictObject({
        socket: z
          .string(textOf('a path such as /run/mintfs/approvals.sock'))
          .min(1)
          .describe(
            'Unix socket approvers use (mintfs approvals ... --socket PATH): made 0600, in a directory only root may write; never one of the listen addresses',
          ),
        listen: ListenSchema.refine(
          (address) => address.kind === 'tcp',
          'the approvers page listens on HOST:PORT, not a unix socket',
        )
          .optional()
          .describe(
            "The approvers page (http://HOST:PORT/, https:// with approval.tls): a loopback address unless approval.tls is set, never one of the agents' listen addresses; enrol approvers with mintfs approvers add",
          ),
        tls: z
          .strictObject({
            cert: z
              .string(textOf('a path to a PEM certificate chain'))
              .min(1)
              .describe('PEM certificate (chain) the page presents; read at start'),
            key: z
              .string(textOf('a path to a PEM private key'))
              .min(1)
              .describe('PEM private key of that certificate; read at start (keep it 0600)'),
            origin: z
              .string(textOf('an origin such as https://approvals.example.com:8790'))
              .refine(
                (text) => httpsOriginOf(text) !== undefined,
                'must be an https:// origin (scheme, host, optional port; no path, user, query)',
              )
              .transform((text) => httpsOriginOf(text) as string)
              .optional()
              .describe(
                "The https:// origin approvers open (what enrolment links point to and what a decision's Origin must be); default https://HOST:PORT of approval.listen",
              ),
          })
          .optional()
          .describe(
            'Serve the approvers page over HTTPS: its cookie is then Secure and the page may listen beyond loopback (an address agents cannot reach)',
          ),
        timeout: Duration.prefault('180s').describe(
          'How long a request waits for a decision (403 ERR_APPROVAL_TIMEOUT after)',
        ),
        decisionTtl: Duration.prefault('60s').describe(
          "How long an approval's discharge lives unless the approver chooses longer",
        ),
        maxHeld: z
          .number()
          .int()
          .min(1)
          .max(4096)
          .default(256)
          .describe(
            'Requests waiting at once in this gateway, all agents together (429 beyond): with maxBodyBytes, what held bodies may take of memory',
          ),
        maxHeldPerAgent: z
          .number()
          .int()
          .min(1)
          .max(256)
          .default(8)
          .describe('Requests one agent may have waiting at once (429 beyond)'),
        maxBodyBytes: Bytes.max(16 * 1024 * 1024)
          .default(1024 * 1024)
          .describe(
            'Largest body of a request held for approval: it is read whole, so the decision binds its digest (413 beyond)',
          ),
      })
      .optional()
      .describe(
        "The approval service: requests a token's approval caveat names wait here until an approver decides (docs/approval.md). Without it such requests are refused (403 ERR_APPROVAL_REQUIRED). A restart is needed to change it",
      ),
    redis: RedisSchema.optional().describe(
      'Shared state for many gateways: use budgets and revocations in Redis (a URL such as redis://127.0.0.1:6379 or rediss://user:pass@host:6380/0, or { url, staleAfter }). A restart is needed to change it',
    ),
    metrics: MetricsAddress.optional().describe(
      "Serve Prometheus metrics at http://HOST:PORT/metrics on a listener of their own (keep it off the agents' network). A restart is needed to change it",
    ),
    workers: z
      .union([z.number().int().min(1).max(64), z.literal('auto')])
      .default(1)
      .describe(
        "Processes serving requests, sharing the listen addresses ('auto': one per CPU). Default 1: limits.agentConcurrency and in-memory counters are per process, so N workers allow an agent N times as much; each worker writes its audit lines synchronously so lines from several processes never interleave. A restart is needed to change it",
      ),
  })
  .superRefine((config, ctx) => {
    const page = config.approval?.listen;
    if (
      page?.kind === 'tcp' &&
      page.port !== 0 &&
      config.listen.some((a) => a.kind === 'tcp' && a.port === page.port)
    )
      ctx.addIssue({
        code: 'custom',
        path: ['approval', 'listen'],
        message: "must not share a port with the agents' listen addresses",
      });
    if (page?.kind === 'tcp' && config.approval?.tls === undefined && !isLoopback(page.host))
      ctx.addIssue({
        code: 'custom',
        path: ['approval', 'listen'],
        message:
          'without approval.tls the approvers page listens on a loopback address only (127.0.0.1:PORT or [::1]:PORT); reach it with ssh -L, or set approval.tls',
      });
    if (config.approval?.tls !== undefined && page === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['approval', 'tls'],
        message: 'needs approval.listen (the page it serves)',
      });
    if (
      page?.kind === 'tcp' &&
      config.approval?.tls !== undefined &&
      config.approval.tls.origin === undefined &&
      (page.host === '0.0.0.0' || page.host === '::')
    )
      ctx.addIssue({
        code: 'custom',
        path: ['approval', 'tls', 'origin'],
        message: 'is needed when approval.listen is a wildcard address (the URL approvers open)',
      });
    if (config.approval !== undefined && config.workers !== 1 && config.redis === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['approval'],
        message:
          'with workers other than 1 needs redis: held requests of every worker reach the approvers (served by the first worker) through it',
      });
    if (Object.keys(config.upstreams).length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['upstreams'],
        message: 'must declare at least one upstream',
      });
    const byHost = new Map<string, string>();
    for (const [name, upstream] of Object.entries(config.upstreams)) {
      // Forward-proxy requests pick their upstream by host: two upstreams on one host are ambiguous.
      // `?? []`: an upstream that failed its own checks reaches here untransformed.
      for (const host of upstream.hosts ?? []) {
        const other = byHost.get(host);
        if (other)
          ctx.addIssue({
            code: 'custom',
            path: ['upstreams', name, 'hosts'],
            message: `host ${host} is also upstream "${other}"'s`,
          });
        byHost.set(host, name);
      }
    }
  })
  .describe('mintfs gateway configuration');

/** `https://host[:port]` as the browser sends it in Origin, or undefined for anything else. */
function httpsOriginOf(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  const bare =
    url.protocol === 'https:' &&
    url.username === '' &&
    url.password === '' &&
    url.pathname === '/' &&
    !/[?#]/.test(text);
  return bare ? url.origin : undefined;
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost';
}

export type GatewayConfig = z.output<typeof GatewayConfigSchema>;
export type UpstreamConfig = GatewayConfig['upstreams'][string];
export type Limits = GatewayConfig['limits'];

export function loadGatewayConfig(file: string): GatewayConfig {
  return parseGatewayConfig(readConfigFile(file, GATEWAY_CONFIG), file);
}

export function parseGatewayConfig(text: string, source: string): GatewayConfig {
  const config = parseYamlConfig(text, source, GatewayConfigSchema, GATEWAY_CONFIG);
  const base = dirname(resolve(source));
  const upstreams = Object.fromEntries(
    Object.entries(config.upstreams).map(([name, upstream]) => [
      name,
      {
        ...upstream,
        credential: isAwsCredential(upstream.credential)
          ? resolveAwsPaths(upstream.credential, base)
          : resolveSourcePaths(upstream.credential, base),
        ...(upstream.ca === undefined ? {} : { ca: resolve(base, upstream.ca) }),
      },
    ]),
  );
  const intercept =
    config.intercept === undefined ? undefined : { ca: resolve(base, config.intercept.ca) };
  const approval =
    config.approval === undefined
      ? undefined
      : {
          ...config.approval,
          socket: resolve(base, config.approval.socket),
          ...(config.approval.tls === undefined
            ? {}
            : {
                tls: {
                  ...config.approval.tls,
                  cert: resolve(base, config.approval.tls.cert),
                  key: resolve(base, config.approval.tls.key),
                },
              }),
        };
  return {
    ...config,
    upstreams,
    ...(intercept === undefined ? {} : { intercept }),
    ...(approval === undefined ? {} : { approval }),
  };
}
