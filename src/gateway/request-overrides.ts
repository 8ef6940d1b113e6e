/**
 * Requests that ask the upstream to act on another method, path or host than
 * the one the caveats judged. Common servers and frameworks honour these
 * (Rails, Laravel, Symfony, Express's method-override, ASP.NET, Spring, IIS
 * URL Rewrite, Envoy, most reverse-proxy-aware frameworks), so a token
 * allowing `GET /a` could otherwise run `DELETE /b` on another virtual host.
 *
 * They are refused (400), not stripped: a client that sends one means it, and
 * a silent strip would run a request it did not ask for. The table is the
 * single list; docs/security.md quotes it.
 */

/** Header names (lower case, dashes) and what an upstream would do with them. */
export const OVERRIDE_HEADERS: ReadonlyMap<string, string> = new Map([
  // method
  ['x-http-method-override', 'changes the method'],
  ['x-http-method', 'changes the method'],
  ['x-method-override', 'changes the method'],
  ['x-original-method', 'changes the method'],
  // path
  ['x-original-url', 'changes the path'],
  ['x-rewrite-url', 'changes the path'],
  ['x-override-url', 'changes the path'],
  ['x-original-uri', 'changes the path'],
  ['x-original-path', 'changes the path'],
  ['x-forwarded-uri', 'changes the path'],
  ['x-forwarded-path', 'changes the path'],
  ['x-forwarded-prefix', 'changes the path'],
  ['x-envoy-original-path', 'changes the path'],
  // host and scheme
  ['forwarded', 'changes the host, scheme or client address'],
  ['x-forwarded-host', 'changes the host'],
  ['x-forwarded-server', 'changes the host'],
  ['x-host', 'changes the host'],
  ['x-original-host', 'changes the host'],
  ['x-forwarded-proto', 'changes the scheme'],
  ['x-forwarded-scheme', 'changes the scheme'],
  ['x-forwarded-port', 'changes the port'],
  ['x-forwarded-ssl', 'changes the scheme'],
  ['x-url-scheme', 'changes the scheme'],
  ['front-end-https', 'changes the scheme'],
  // client address: upstreams allow-list by it
  ['x-forwarded-for', 'claims a client address'],
  ['x-real-ip', 'claims a client address'],
  ['x-client-ip', 'claims a client address'],
  ['true-client-ip', 'claims a client address'],
  ['x-cluster-client-ip', 'claims a client address'],
]);

/** Query parameters frameworks read as the method (Rails, Laravel, Symfony, method-override). */
export const OVERRIDE_QUERY_KEYS: ReadonlySet<string> = new Set([
  '_method',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
]);

/** Why this request must not be forwarded, or undefined. */
export function overrideProblem(rawHeaders: readonly string[], query: string): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    // CGI, WSGI, PHP and Rack read `X_Foo` and `X-Foo` as one HTTP_X_FOO:
    // an underscore name can stand in for any header, this table's included.
    if (name.includes('_'))
      return `header ${name} has an underscore (servers read it as ${name.replaceAll('_', '-')})`;
    const effect = OVERRIDE_HEADERS.get(name);
    if (effect !== undefined)
      return `header ${name} is refused: it ${effect} the upstream acts on, past the caveats`;
  }
  if (query.length > 1) {
    // `;` separates pairs too for some frameworks (and older Python and Perl).
    for (const pair of query.slice(1).split(/[&;]/)) {
      const key = decodeQueryKey(pair.split('=', 1)[0] ?? '');
      if (key === undefined || OVERRIDE_QUERY_KEYS.has(key.toLowerCase()))
        return `query parameter ${key === undefined ? '(undecodable)' : key} is refused: it changes the method`;
    }
  }
  return undefined;
}

function decodeQueryKey(key: string): string | undefined {
  try {
    return decodeURIComponent(key.replaceAll('+', ' ')).trim();
  } catch {
    return undefined;
  }
}
