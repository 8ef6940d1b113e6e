/**
 * The gateway server: HTTP on TCP and unix sockets, with limits on header
 * size, body size and time so slow or half-open clients cannot pin it, and
 * a graceful stop that lets in-flight requests finish.
 */
import type { Server as NetServer } from 'node:net';
import { readFileSync, chmodSync, lstatSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
// rootCertificates through the module object: it is a getter, and a named import is read
// when the bundle's chunk loads (scripts/bundle-cli.mjs, builtinsAsObjects), not when used.
import tls, { createSecureContext } from 'node:tls';
import { Pool } from '../util/undici-dispatchers.js';
import { MintfsError } from '../errors.js';
import { Reloadable, fileFingerprint } from '../util/reloadable.js';
import { reloadIfKeyAppeared, watchKeyring } from '../keys/watch-keyring.js';
import { revocationsDir } from '../revocation/revocations.js';
import { watchRevocations } from '../revocation/watch-revocations.js';
import type { Logger } from '../log/logger.js';
import { loadGatewayConfig, type GatewayConfig, type ListenAddress } from './config.js';
import { CredentialStore, type CredentialCount } from './credentials.js';
import type { Approvers } from '../approval/approvers.js';
import { ApprovalService } from '../approval/service.js';
import { revokeMintedOnAgentRevocation } from './agent-revocations.js';
import { rawErrorResponse } from './http-errors.js';
import { createProxyHandler, type GatewayRuntime } from './proxy.js';
import { createVerifier } from '../verifier/verifier.js';
import { installNativeHmacChain } from '../verifier/native-hmac.js';
import { VerificationCache } from './verify-cache.js';
import { workerCount } from './workers.js';
import { openGatewayState } from '../state/gateway-state.js';
import { createConnectHandler } from './tunnel.js';
import { createUpgradeHandler } from './upgrade.js';
import { createTunnelHttp2 } from './http2.js';
import { Http2Upstream } from './http2-upstream.js';
import { LiveSockets } from '../websocket/live-sockets.js';
import {
  connectionBudget,
  createConnectionLimiter,
  isRefused,
  openFileLimit,
} from './connection-limits.js';
import type { Interception } from '../intercept/interception.js';

export interface GatewayOptions {
  readonly configFile: string;
  readonly keysDir: string;
  readonly logger: Logger;
  readonly clock?: () => Date;
  /** Listen here instead of the config's `listen` (mintfs run: a private unix socket). */
  readonly listen?: ListenAddress[];
  /**
   * A worker of a multi-process gateway: the primary holds the listeners, so
   * this one neither clears nor removes unix socket paths (workers.ts).
   */
  readonly sharedListeners?: boolean;
  /**
   * Serve the approvers' socket and page (default true). Of several workers
   * only the first does: its page sessions are in its memory, and held
   * requests of every worker reach it through Redis.
   */
  readonly approvalListeners?: boolean;
}

export interface RunningGateway {
  readonly config: GatewayConfig;
  /** Where it listens: `host:port` (with the real port when 0 was asked) or `unix:/path`. */
  readonly addresses: readonly string[];
  /** Stops accepting, lets in-flight requests finish (up to the grace), then closes. */
  close(): Promise<void>;
  /** Re-reads the config, keyring, revocations and credentials now (SIGHUP). */
  reload(reason: string): void;
}

export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const { logger } = options;
  // Start-up checks everything, so a gateway that starts is correctly configured.
  const loadConfig = (): GatewayConfig => {
    const loaded = loadGatewayConfig(options.configFile);
    return options.listen ? { ...loaded, listen: [...options.listen] } : loaded;
  };
  const firstConfig = loadConfig();
  // Checked before anything opens: a limit that leaves no room for state files stops the start.
  const maxConnections = connectionBudget(firstConfig, openFileLimit());
  const clock = options.clock ?? (() => new Date());
  // Before anything that needs closing: a bad CA stops the start cleanly.
  const interception = await loadInterception(firstConfig, clock);
  // Credential sources count into the metrics made below (no event comes before a request).
  const countCredential: CredentialCount = (service, source, event) =>
    metrics?.credential(service, source, event);
  const initial = buildRuntime(firstConfig, logger, countCredential);
  const config = initial.config;
  // The runtime a reload replaces is closed once its in-flight requests are done.
  let previous = initial;
  const runtime = new Reloadable(initial, {
    name: 'gateway-config',
    load: () => {
      const next = loadConfig();
      interception?.assertCovers(next);
      return buildRuntime(next, logger, countCredential);
    },
    fingerprint: () =>
      [options.configFile, ...caFiles(previous.config)].map(fileFingerprint).join('/'),
    describe: (next) => ({ upstreams: Object.keys(next.config.upstreams) }),
    logger,
  });
  runtime.onReload((next) => {
    const old = previous;
    previous = next;
    if (next.config.intercept?.ca !== config.intercept?.ca)
      logger.warn(
        { event: 'gateway-restart-needed', intercept: next.config.intercept?.ca ?? null },
        config.intercept === undefined
          ? 'intercept changes only with a restart; HTTPS interception stays off until then'
          : 'intercept changes only with a restart; still intercepting with the CA it started with',
      );
    if (JSON.stringify(next.config.redis) !== JSON.stringify(config.redis))
      logger.warn(
        { event: 'gateway-restart-needed', setting: 'redis' },
        'redis changes only with a restart; still using the Redis it started with',
      );
    if (listenText(next.config) !== listenText(config))
      logger.warn(
        { event: 'gateway-restart-needed', listen: next.config.listen.map((a) => a.text) },
        'listen addresses and server limits (head size, timeouts, connection counts) change only with a restart; still listening where it was',
      );
    void closeRuntime(old);
  });
  const keyring = watchKeyring(options.keysDir, logger, 'verify');
  const revocations = watchRevocations(revocationsDir(options.keysDir), logger);
  revokeMintedOnAgentRevocation(revocations, () => runtime.current.credentials);
  const state = await openGatewayState(
    { redis: config.redis, workers: workerCount(config) },
    logger,
    clock,
  );
  if (state.shared !== undefined)
    revokeMintedOnAgentRevocation(state.shared, () => runtime.current.credentials);

  const limits = config.limits;
  const hmacChain = installNativeHmacChain();
  const cache = new VerificationCache();
  // prom-client is loaded only when metrics are asked for.
  const metrics =
    config.metrics === undefined
      ? undefined
      : (await import('../metrics/gateway-metrics.js')).createGatewayMetrics({
          cacheStats: () => cache.stats,
          redisUp: () => state.redisUp(),
          revocationsStale: () => state.revocationsStale(),
          revocationsInForce: () => state.revocations(revocations.current).records.length,
        });
  // Held requests and decisions go through Redis when the gateways share one.
  const sharedApprovals =
    config.approval === undefined || state.redis === undefined
      ? undefined
      : await (
          await import('../approval/shared.js')
        ).SharedApprovals.start(state.redis, (keyId) => keyring.current.keyById(keyId), logger);
  // The approval service lives here: only this process holds the keys that open tickets.
  const approvalService =
    config.approval === undefined
      ? undefined
      : new ApprovalService(
          {
            timeoutMs: config.approval.timeout,
            maxHeldPerAgent: config.approval.maxHeldPerAgent,
            maxHeld: config.approval.maxHeld,
            decisionTtlMs: config.approval.decisionTtl,
          },
          (keyId) => keyring.current.keyById(keyId),
          logger,
          clock,
          sharedApprovals,
        );
  const proxyDeps = {
    runtime: () => runtime.current,
    verifier: createVerifier({
      keyring: () => keyring.current,
      reloadKeyringFor: (keyId) => reloadIfKeyAppeared(keyring, keyId),
      revocations: () => state.revocations(revocations.current),
      cache,
    }),
    logger,
    clock,
    inFlight: new Map(),
    useCounter: state.useCounter,
    stateProblem: (now: Date) => state.problem(now),
    metrics,
    approval:
      approvalService === undefined || config.approval === undefined
        ? undefined
        : {
            service: approvalService,
            settings: {
              timeoutMs: config.approval.timeout,
              maxHeldPerAgent: config.approval.maxHeldPerAgent,
              maxHeld: config.approval.maxHeld,
              decisionTtlMs: config.approval.decisionTtl,
              maxBodyBytes: config.approval.maxBodyBytes,
            },
          },
  };
  const handler = createProxyHandler(proxyDeps);
  // Open WebSockets, judged again as revocations and keys change (and twice a second).
  const live = new LiveSockets(clock);
  revocations.onReload(() => live.sweep());
  keyring.onReload(() => live.sweep());
  const onUpgrade = createUpgradeHandler({ ...proxyDeps, live });
  // Requests inside intercepted tunnels: the same handler and limits, on a
  // server that is handed each tunnel's TLS socket instead of listening.
  const inner = createGatewayServer(
    config,
    handler,
    onUpgrade,
    // CONNECT inside a tunnel: refused, never a tunnel within a tunnel.
    createConnectHandler({ interception: 'nested', upstreams: () => ({}), logger }),
  );
  // Node checks headersTimeout and requestTimeout from a timer that a
  // server starts on 'listening' (setupConnectionsTracking in _http_server;
  // Node's own tests start it this way). This server never listens, so
  // without this a tunnel that sends nothing, or trickles its head, would be
  // held for good: every limit of the listener must hold inside a tunnel.
  inner.emit('listening');
  // HTTP/2 inside tunnels: each stream to the same handler.
  const http2 = interception === undefined ? undefined : createTunnelHttp2(limits, handler, logger);
  const onConnect = createConnectHandler({
    interception:
      interception === undefined || http2 === undefined
        ? undefined
        : { issuer: interception.issuer, inner, http2, handshakeTimeoutMs: limits.headersTimeout },
    upstreams: () => runtime.current.config.upstreams,
    logger,
  });
  const connections = createConnectionLimiter({
    perClient: () => runtime.current.config.limits.clientConnections,
    logger,
  });

  const servers: Server[] = [];
  const addresses: string[] = [];
  let metricsServer: { close(): Promise<void> } | undefined;
  let approvalSocket: NetServer | undefined;
  let approvalPage: Server | undefined;
  try {
    if (
      approvalService !== undefined &&
      config.approval !== undefined &&
      options.approvalListeners !== false
    ) {
      const listen = config.approval.listen;
      let page: { approvers: Approvers; origin: () => string } | undefined;
      if (listen?.kind === 'tcp') {
        const [{ Approvers: Registry }, { readPageTls, serveApprovalPage }] = await Promise.all([
          import('../approval/approvers.js'),
          import('../approval/page.js'),
        ]);
        const approvers = new Registry(clock);
        const tls = config.approval.tls;
        const served = await serveApprovalPage(
          listen,
          approvalService,
          approvers,
          logger,
          tls === undefined ? undefined : readPageTls(tls),
        );
        approvalPage = served.server;
        page = { approvers, origin: () => served.origin };
      }
      approvalSocket = await (
        await import('../approval/socket.js')
      ).serveApprovalSocket(
        config.approval.socket,
        approvalService,
        logger,
        removeStaleSocket,
        page,
      );
    }
    // A worker's registry answers the primary, which serves them all (cluster-metrics.ts).
    if (metrics !== undefined && options.sharedListeners === true)
      (await import('../metrics/gateway-metrics.js')).shareWithPrimary(metrics);
    else if (metrics !== undefined && config.metrics !== undefined)
      metricsServer = await (
        await import('../metrics/registry.js')
      ).serveMetrics(config.metrics, metrics.metrics.registry, logger);
    for (const address of config.listen) {
      const server = createGatewayServer(config, handler, onUpgrade, onConnect);
      servers.push(server);
      addresses.push(await listen(server, address, options.sharedListeners === true));
      // After listen, so a listen error is still the start's to report.
      connections.watch(server, maxConnections);
    }
  } catch (err) {
    approvalSocket?.close();
    approvalPage?.closeAllConnections();
    approvalPage?.close();
    await approvalService?.stop();
    await sharedApprovals?.close();
    for (const server of servers) server.close();
    inner.close();
    await metricsServer?.close();
    runtime.close();
    keyring.close();
    revocations.close();
    await state.close();
    await closeRuntime(runtime.current, true);
    throw err;
  }
  logger.info(
    {
      event: 'gateway-listening',
      addresses,
      upstreams: Object.keys(config.upstreams),
      keyId: keyring.current.current.id,
      revocations: revocations.current.records.length,
      maxConnections,
      hmacChain,
      ...(interception === undefined
        ? {}
        : {
            intercept: { ca: interception.ca.certPath, fingerprint: interception.ca.fingerprint },
          }),
    },
    'gateway is serving',
  );
  // Written now, not with the next batch of buffered lines (up to LOG_FLUSH_MS
  // later): supervisors and scripts wait for this line to send traffic.
  logger.flush();

  let closing: Promise<void> | undefined;
  return {
    get config() {
      return runtime.current.config;
    },
    addresses,
    reload: (reason) => {
      runtime.reload(reason);
      keyring.reload(reason);
      revocations.reload(reason);
      runtime.current.credentials.reloadAll();
    },
    close: () =>
      (closing ??= (async () => {
        // Held requests are answered 503 (retryable) now, not when their wait ends.
        await approvalService?.stop();
        await sharedApprovals?.close();
        approvalSocket?.close();
        approvalPage?.closeAllConnections();
        approvalPage?.close();
        if (approvalSocket !== undefined && config.approval !== undefined)
          rmSync(config.approval.socket, { force: true });
        const closed = servers.map(
          (server) => new Promise<void>((resolve) => server.close(() => resolve())),
        );
        for (const server of servers) server.closeIdleConnections();
        http2?.close();
        // Live WebSockets are told why (1001) rather than cut: their clients may reconnect elsewhere.
        live.closeAll({ code: 1001, reason: 'the gateway is stopping' });
        inner.closeIdleConnections();
        const timer = setTimeout(() => {
          for (const server of servers) server.closeAllConnections();
          inner.closeAllConnections();
        }, limits.shutdownGrace);
        await Promise.all(closed);
        clearTimeout(timer);
        inner.close();
        await metricsServer?.close();
        runtime.close();
        keyring.close();
        revocations.close();
        await state.close();
        await closeRuntime(runtime.current);
        if (options.sharedListeners !== true)
          for (const address of config.listen)
            if (address.kind === 'unix') rmSync(address.path, { force: true });
        logger.info({ event: 'gateway-stopped' }, 'gateway stopped');
        logger.flush();
      })()),
  };
}

/** Credentials and pools for a config; a failure closes what it made and throws. */
function buildRuntime(
  config: GatewayConfig,
  logger: Logger,
  count: CredentialCount,
): GatewayRuntime {
  const credentials = new CredentialStore(config.upstreams, logger, { count });
  try {
    const pools = new Map(
      Object.entries(config.upstreams).map(([service, upstream]) => {
        const ca =
          upstream.ca === undefined
            ? undefined
            : [...tls.rootCertificates, readCa(service, upstream.ca)];
        return [
          service,
          upstream.http2
            ? (new Http2Upstream(upstream.url.origin, { ca }) as unknown as Pool)
            : new Pool(upstream.url.origin, {
                connections: config.limits.upstreamConnections,
                // One context for every connection: given only `ca`, each TLS connect would
                // parse the whole root store again (a profile of the AWS bench: ~10 ms a connection).
                ...(ca === undefined
                  ? {}
                  : { connect: { secureContext: createSecureContext({ ca }) } }),
              }),
        ] as const;
      }),
    );
    return { config, credentials, pools };
  } catch (err) {
    void credentials.close();
    throw err;
  }
}

/** Stops watching credentials and closes the pools (after their in-flight requests, unless `now`). */
async function closeRuntime(runtime: GatewayRuntime, now = false): Promise<void> {
  await Promise.all(
    [...runtime.pools.values()].map((pool) => (now ? pool.destroy() : pool.close())),
  );
  // After the pools: a request still streaming keeps its credential until it ends. Then
  // minted credentials are revoked upstream (GitHub installation tokens).
  await runtime.credentials.close();
}

function caFiles(config: GatewayConfig): string[] {
  return Object.values(config.upstreams).flatMap((upstream) =>
    upstream.ca === undefined ? [] : [upstream.ca],
  );
}

function listenText(config: GatewayConfig): string {
  return config.listen.map((address) => address.text).join(' ');
}

function createGatewayServer(
  config: GatewayConfig,
  handler: ReturnType<typeof createProxyHandler>,
  onUpgrade: (req: IncomingMessage, socket: Socket, head: Buffer) => void,
  onConnect: (req: IncomingMessage, socket: Socket, head: Buffer) => void,
): Server {
  const limits = config.limits;
  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeout,
      requestTimeout: limits.requestTimeout,
      keepAliveTimeout: limits.idleTimeout,
      // How often Node checks headersTimeout/requestTimeout (default 30 s): a
      // slowloris client is cut within a second of its limit.
      connectionsCheckingInterval: Math.min(1_000, limits.headersTimeout),
    },
    // A connection refused for its client's count is still read (so its 429
    // is not lost to a reset), but nothing it sends is acted on.
    (req, res) => (isRefused(req.socket) ? req.socket.destroy() : handler(req, res)),
  );
  // Every accepted socket has an error listener from its first moment: a
  // client that resets at any stage (mid-head, after a refusal, inside a
  // CONNECT handed to us) costs it its own connection, never the process.
  server.on('connection', (socket: Socket) => socket.on('error', ignoreSocketError));
  // A client that never finishes its head is cut by headersTimeout, one that
  // stops mid-body by requestTimeout; both are answered here.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const [status, code, message] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? ([431, 'ERR_REQUEST_INVALID', 'request head is too large'] as const)
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? ([408, 'ERR_REQUEST_TIMEOUT', 'request took too long'] as const)
          : ([400, 'ERR_REQUEST_INVALID', 'malformed request'] as const);
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(rawErrorResponse(status, code, message));
  });
  // WebSocket handshakes (Connection: Upgrade): judged like requests, then relayed (upgrade.ts).
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
    isRefused(socket) ? socket.destroy() : onUpgrade(req, socket, head),
  );
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) =>
    isRefused(socket) ? socket.destroy() : onConnect(req, socket, head),
  );
  return server;
}

/** The interception module (X.509) is loaded only by a gateway that intercepts. */
async function loadInterception(
  config: GatewayConfig,
  clock: () => Date,
): Promise<(Interception & { assertCovers(next: GatewayConfig): void }) | undefined> {
  if (config.intercept === undefined) return undefined;
  const { loadInterception: load, assertCaCovers } = await import('../intercept/interception.js');
  const interception = await load(config.intercept.ca, config.upstreams, clock);
  return {
    ...interception,
    assertCovers: (next) => assertCaCovers(interception.ca, next.upstreams),
  };
}

function ignoreSocketError(): void {
  // The socket is closed by Node (or by us) after an error; nothing else to do.
}

function readCa(service: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new MintfsError('ERR_CONFIG_INVALID', `upstreams.${service}.ca: ${file} cannot be read`, {
      cause: err,
    });
  }
}

async function listen(server: Server, address: ListenAddress, shared: boolean): Promise<string> {
  if (address.kind === 'unix' && !shared) await removeStaleSocket(address.path);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new MintfsError('ERR_LISTEN_FAILED', `listen ${address.text}: ${err.code ?? err.message}`, {
          cause: err,
        }),
      );
    };
    server.once('error', onError);
    const done = () => {
      server.off('error', onError);
      resolve();
    };
    if (address.kind === 'unix') server.listen(address.path, done);
    else server.listen(address.port, address.host, done);
  });
  if (address.kind === 'unix') {
    // Whoever can connect can present tokens; tokens are still required.
    chmodSync(address.path, 0o660);
    return address.text;
  }
  const bound = server.address();
  const port =
    typeof bound === 'object' && bound !== null && address.port === 0 ? bound.port : address.port;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${host}:${port}`;
}

/**
 * A socket file left by a gateway that died is replaced. One that something
 * still listens on is another gateway's (or anyone's): refused, never stolen.
 */
export async function removeStaleSocket(path: string): Promise<void> {
  let info;
  try {
    info = lstatSync(path);
  } catch {
    return;
  }
  if (!info.isSocket())
    throw new MintfsError(
      'ERR_CONFIG_INVALID',
      `listen unix:${path}: a file that is not a socket is in the way`,
    );
  const listening = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (listening)
    throw new MintfsError(
      'ERR_LISTEN_FAILED',
      `listen unix:${path}: another process is listening on this socket`,
    );
  rmSync(path);
}
