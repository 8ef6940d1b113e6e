/**
 * Which upstream a request is for, and the path it will be sent to there.
 *
 *   reverse proxy:  GET /github/repos/acme/widgets       -> upstream "github"
 *   forward proxy:  GET http://api.github.com/repos/...  -> the upstream on that host
 *
 * The whole incoming path is checked for ambiguity (dot segments, encoded
 * slashes, backslashes, //) before anything else: such a request is refused,
 * never rewritten.
 */
import type { MintfsErrorCode } from '../errors.js';
import { hostnameOf, normaliseRequestPath } from '../token/request-path.js';
import type { GatewayConfig, UpstreamConfig } from './config.js';

export interface Route {
  readonly ok: true;
  readonly mode: 'reverse' | 'forward' | 'intercept';
  readonly service: string;
  readonly upstream: UpstreamConfig;
  /** The name the agent used for the upstream (one of its `hosts`): what the `host` caveat judges. */
  readonly host: string;
  /** The raw path as the upstream will see it, base path included, no query. */
  readonly upstreamPath: string;
  /** The raw query with its `?`, or ''. */
  readonly query: string;
  /** upstreamPath's decoded segments: what path caveats judge (normalised once, here). */
  readonly upstreamSegments: readonly string[];
}

export interface RouteError {
  readonly ok: false;
  readonly code: MintfsErrorCode;
  readonly message: string;
}

export function routeRequest(
  rawUrl: string,
  upstreams: GatewayConfig['upstreams'],
): Route | RouteError {
  if (rawUrl.startsWith('/')) return reverse(rawUrl, upstreams);
  const absolute = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(rawUrl);
  if (!absolute)
    return fail(
      'ERR_REQUEST_INVALID',
      'request target is neither a path nor an absolute http:// URL',
    );
  const scheme = (absolute[1] as string).toLowerCase();
  if (scheme !== 'http')
    return fail(
      'ERR_REQUEST_INVALID',
      'send http:// URLs to the gateway; it speaks HTTPS to the upstream itself',
    );
  const host = hostnameOf(
    (absolute[2] as string).slice((absolute[2] as string).lastIndexOf('@') + 1),
  );
  const rest = absolute[3] === '' ? '/' : (absolute[3] as string);
  const entry =
    host === undefined
      ? undefined
      : Object.entries(upstreams).find(([, upstream]) => upstream.hosts.includes(host));
  if (!entry || host === undefined)
    return fail('ERR_SERVICE_UNKNOWN', `no upstream is configured for host ${host ?? '(none)'}`);
  const [path, query] = splitQuery(rest);
  const normalised = normaliseRequestPath(path);
  if (!normalised.ok) return ambiguous(normalised.reason);
  return route('forward', entry[0], entry[1], host, path, query, normalised.segments);
}

/**
 * A request inside an intercepted tunnel: origin-form only, and its Host
 * must be the CONNECT host (with or without :443), so a client cannot open
 * a tunnel for one listed name and address another through it.
 */
export function routeIntercepted(
  tunnelHost: string,
  rawUrl: string,
  hostHeader: string | undefined,
  upstreams: GatewayConfig['upstreams'],
): Route | RouteError {
  if (!rawUrl.startsWith('/'))
    return fail('ERR_REQUEST_INVALID', 'requests inside a tunnel use a path, not an absolute URL');
  const named = (hostHeader ?? '').toLowerCase();
  if (named !== tunnelHost && named !== `${tunnelHost}:443`)
    return fail(
      'ERR_HOST_MISMATCH',
      `Host ${named.slice(0, 253) || '(none)'} is not the tunnel's host ${tunnelHost}`,
    );
  const entry = Object.entries(upstreams).find(([, upstream]) =>
    upstream.hosts.includes(tunnelHost),
  );
  // The config was reloaded without this host since the tunnel opened.
  if (!entry)
    return fail('ERR_SERVICE_UNKNOWN', `no upstream is configured for host ${tunnelHost}`);
  const [path, query] = splitQuery(rawUrl);
  const normalised = normaliseRequestPath(path);
  if (!normalised.ok) return ambiguous(normalised.reason);
  return route('intercept', entry[0], entry[1], tunnelHost, path, query, normalised.segments);
}

function reverse(rawUrl: string, upstreams: GatewayConfig['upstreams']): Route | RouteError {
  const [path, query] = splitQuery(rawUrl);
  const normalised = normaliseRequestPath(path);
  if (!normalised.ok) return ambiguous(normalised.reason);
  const slash = path.indexOf('/', 1);
  const service = slash < 0 ? path.slice(1) : path.slice(1, slash);
  const upstream = Object.hasOwn(upstreams, service) ? upstreams[service] : undefined;
  if (!upstream) return fail('ERR_SERVICE_UNKNOWN', `no upstream named "${service.slice(0, 64)}"`);
  // The service name is the first segment; the rest is the upstream's path.
  const segments = normalised.segments.slice(1);
  // Reverse routes name the service, not a host: the upstream's first name is the one judged.
  const host = upstream.hosts[0] as string;
  return route(
    'reverse',
    service,
    upstream,
    host,
    slash < 0 ? '/' : path.slice(slash),
    query,
    segments,
  );
}

function route(
  mode: Route['mode'],
  service: string,
  upstream: UpstreamConfig,
  host: string,
  path: string,
  query: string,
  pathSegments: readonly string[],
): Route | RouteError {
  const base = upstream.url.pathname.replace(/\/+$/, '');
  const upstreamPath = `${base}${path}`;
  let upstreamSegments = pathSegments;
  if (base !== '') {
    // An upstream with a base path (https://host/api): judge the whole path it will see.
    const normalised = normaliseRequestPath(upstreamPath);
    if (!normalised.ok) return ambiguous(normalised.reason);
    upstreamSegments = normalised.segments;
  }
  return { ok: true, mode, service, upstream, host, upstreamPath, query, upstreamSegments };
}

function splitQuery(target: string): [string, string] {
  const cut = target.search(/[?#]/);
  if (cut < 0) return [target, ''];
  // A fragment never belongs in a request target; drop it with everything after.
  const path = target.slice(0, cut);
  const query = target[cut] === '?' ? target.slice(cut).replace(/#.*$/, '') : '';
  return [path, query];
}

function ambiguous(reason: string): RouteError {
  return fail('ERR_PATH_AMBIGUOUS', `request refused: ${reason}`);
}

function fail(code: MintfsErrorCode, message: string): RouteError {
  return { ok: false, code, message };
}
