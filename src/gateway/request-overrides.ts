/**
 * Requests that ask the upstream to act on another method, path or host than
 * the one the caveats judged. Common servers and frameworks honour these
 * (Rails, Laravel, Symfony, Express's method-override, ASP.NET, Spring, IIS
 * URL Rewrite, Envoy, most reverse-proxy-aware frameworks), so a token
 * allowing `GET /a` could otherwise run `DELETE /b` on another virtual host.
 *
 * They are refused (400), not stripped: a client that sends one means it, and
 * a silent strip would run a request it did not ask for.
 *
 * Names alone do not close the class: every CDN, load balancer, mesh and
 * framework coins its own (`CF-Connecting-IP`, `Fastly-Client-IP`,
 * `X-ProxyUser-Ip`, `X-Envoy-External-Address`, ...). So a header is refused
 * when it is in OVERRIDE_HEADERS (the well-known names, with what each does),
 * or when its name falls in one of OVERRIDE_FAMILIES: the words such headers
 * are built from (ip, addr, forwarded, host, proto, scheme, port, method,
 * url, path, ...) and the namespaces intermediaries set for the servers
 * behind them (cf-, fastly-, x-envoy-, x-original-, ...), which no client has
 * a reason to send. docs/security.md gives the reasoning.
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

/**
 * Header families: a name is split into words at dashes, and refused when a
 * word is one of `words`, or the name starts with one of `prefixes`.
 * Compound words (`clientip`, `xhost`) count as their last word when the
 * first part is one of COMPOUND_LEADS.
 */
export const OVERRIDE_FAMILIES: ReadonlyArray<{
  readonly effect: string;
  readonly words: readonly string[];
  readonly prefixes?: readonly string[];
}> = [
  {
    effect: 'claims a client address',
    words: [
      'ip',
      'ips',
      'ipv4',
      'ipv6',
      'addr',
      'address',
      'addresses',
      'forwarded',
      'forward',
      'for',
    ],
  },
  { effect: 'changes the host', words: ['host', 'hostname', 'authority', 'vhost'] },
  {
    effect: 'changes the scheme or port',
    words: ['proto', 'scheme', 'https', 'ssl', 'tls', 'port'],
  },
  { effect: 'changes the method', words: ['method', 'override'] },
  // `script`: WSGI and CGI reverse-proxy recipes move X-Script-Name into
  // SCRIPT_NAME and strip it from PATH_INFO, so it moves the path routed.
  { effect: 'changes the path', words: ['url', 'uri', 'path', 'rewrite', 'prefix', 'script'] },
  {
    effect: 'claims a client certificate',
    words: ['cert', 'certificate', 'clientcert'],
  },
  {
    // Who the caller is, as an authenticating proxy in front of the upstream
    // tells it (Kong, oauth2-proxy, IAP, ALB, Azure App Service, Grafana's
    // auth proxy); and Kubernetes impersonation, which makes the credential's
    // owner act as another user or group, past what the caveats judged.
    effect: 'claims who the caller is',
    words: [],
    prefixes: [
      'x-consumer-',
      'x-auth-request-',
      'x-goog-authenticated-',
      'x-amzn-oidc-',
      'x-ms-client-principal',
      'x-webauth-',
      'x-authenticated-',
      'x-forwarded-user',
      'x-remote-user',
      'impersonate-',
      'x-apigw-',
    ],
  },
  {
    // Set by an intermediary for the servers behind it, and trusted by them.
    effect: 'is set by a CDN, load balancer or mesh, whose servers trust it',
    words: [],
    prefixes: [
      'cf-',
      'fastly-',
      'akamai-',
      'x-akamai-',
      'cloudfront-',
      'x-amz-cf-',
      'x-azure-',
      'x-appengine-',
      'x-vercel-',
      'x-nf-',
      'x-envoy-',
      'x-istio-',
      'x-original-',
      'x-real-',
      'x-remote-',
      'remote-',
      'x-arr-',
      'x-waws-',
      'x-proxyuser-',
      'proxy-',
      'true-client-',
      'x-true-client-',
      'x-cluster-client-',
      'x-sucuri-',
      'x-iis-',
    ],
  },
];

/** First parts of compound words that name the same thing (`clientip`, `realip`, `xhost`). */
const COMPOUND_LEADS = [
  'client',
  'real',
  'user',
  'true',
  'remote',
  'socket',
  'source',
  'src',
  'origin',
  'originating',
  'peer',
  'connecting',
  'viewer',
  'end',
  'proxy',
  'forwarded',
  'original',
  'x',
  'backend',
  'upstream',
  'target',
  'http',
  'virtual',
];

/**
 * Headers that match a family but are safe and common, each with why:
 * metadata an object store keeps as data; the Stainless-built SDKs'
 * telemetry (Anthropic, OpenAI and others: Claude Code sends
 * X-Stainless-Helper-Method on every streamed call), which names the SDK
 * helper that made the call and which no server reads as an override; and a
 * browser's CORS preflight, which asks leave for a method and changes nothing.
 */
const FAMILY_EXEMPT_PREFIXES = ['x-amz-meta-', 'x-goog-meta-', 'x-stainless-'];
const FAMILY_EXEMPT_NAMES = new Set([
  'access-control-request-method',
  'access-control-request-headers',
]);

/** Headers the gateway drops or replaces itself, whatever their name says (upstreamHeaders). */
const NEVER_FORWARDED = new Set(['proxy-authorization', 'proxy-connection', 'host']);

/** What a header of this name (lower case) would make the upstream do, or undefined. */
export function overrideEffect(name: string): string | undefined {
  // Every request asks about the same few names: the rule runs once per name.
  const remembered = VERDICTS.get(name);
  if (remembered !== undefined) return remembered === '' ? undefined : remembered;
  const effect = judgeHeader(name);
  // Bounded: a client sending ever new names only empties the memo.
  if (VERDICTS.size >= MAX_REMEMBERED) VERDICTS.clear();
  VERDICTS.set(name, effect ?? '');
  return effect;
}

/** Header names judged so far ('' for allowed). */
const VERDICTS = new Map<string, string>();
const MAX_REMEMBERED = 4096;

function judgeHeader(name: string): string | undefined {
  const known = OVERRIDE_HEADERS.get(name);
  if (known !== undefined) return known;
  if (NEVER_FORWARDED.has(name) || FAMILY_EXEMPT_NAMES.has(name)) return undefined;
  if (FAMILY_EXEMPT_PREFIXES.some((prefix) => name.startsWith(prefix))) return undefined;
  const words = name.split('-').filter(Boolean);
  for (const family of OVERRIDE_FAMILIES) {
    if (family.prefixes?.some((prefix) => name.startsWith(prefix))) return family.effect;
    if (words.some((word) => isFamilyWord(word, family.words))) return family.effect;
  }
  return undefined;
}

function isFamilyWord(word: string, familyWords: readonly string[]): boolean {
  if (familyWords.includes(word)) return true;
  return COMPOUND_LEADS.some(
    (lead) => word.startsWith(lead) && familyWords.includes(word.slice(lead.length)),
  );
}

/** Query parameters frameworks read as the method (Rails, Laravel, Symfony, method-override). */
export const OVERRIDE_QUERY_KEYS: ReadonlySet<string> = new Set([
  '_method',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
]);

/** A header name as servers compare them: letters, digits and dashes only. */
const PLAIN_HEADER_NAME = /^[a-z0-9-]+$/;

/**
 * Why this request must not be forwarded, or undefined. `notForwarded`: the
 * names the gateway drops or replaces for this upstream (its tokenHeader and
 * inject header), which reach no upstream whatever they are called.
 */
export function overrideProblem(
  rawHeaders: readonly string[],
  query: string,
  notForwarded: readonly (string | undefined)[] = [],
): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    if (notForwarded.includes(name)) continue;
    // CGI, WSGI, PHP and Rack read `X_Foo` and `X-Foo` as one HTTP_X_FOO, and
    // some servers fold other punctuation the same way: a name with anything
    // but letters, digits and dashes could stand in for any header.
    if (!PLAIN_HEADER_NAME.test(name))
      return `header ${name.slice(0, 64)} has characters other than letters, digits and dashes (servers may read it as ${name.replace(/[^a-z0-9]/g, '-').slice(0, 64)})`;
    const effect = overrideEffect(name);
    if (effect !== undefined)
      return `header ${name.slice(0, 64)} is refused: it ${effect} the upstream acts on, past the caveats`;
  }
  if (query.length > 1) {
    // `;` separates pairs too for some frameworks (and older Python and Perl).
    for (const pair of query.slice(1).split(/[&;]/)) {
      const problem = formKeyProblem(pair.split('=', 1)[0] ?? '');
      if (problem !== undefined) return `query parameter ${problem}`;
    }
  }
  return undefined;
}

/**
 * Why a form key (raw, as in a query string or a form-encoded body) must not
 * reach the upstream: it is, once decoded as frameworks decode it, a key they
 * read as the method. Undefined for any other key.
 */
export function formKeyProblem(rawKey: string): string | undefined {
  const key = decodeQueryKey(rawKey);
  if (key === undefined) return '(undecodable) is refused: it could name the method';
  return fieldNameProblem(key);
}

/** The same for a field name already decoded (a multipart part's name, a JSON key). */
export function fieldNameProblem(name: string): string | undefined {
  if (OVERRIDE_QUERY_KEYS.has(phpVariableName(name.trim()).toLowerCase()))
    return `${name.slice(0, 64)} is refused: it changes the method`;
  return undefined;
}

/**
 * The name PHP registers a query key under: leading spaces dropped, and
 * spaces, dots and an unclosed `[` made `_`, so `.method` and `[method` are
 * Symfony's and Laravel's `_method`. A stricter fold (every `[` too) only
 * refuses more.
 */
function phpVariableName(key: string): string {
  return key.replace(/[ .[]/g, '_');
}

function decodeQueryKey(key: string): string | undefined {
  try {
    return decodeURIComponent(key.replaceAll('+', ' ')).trim();
  } catch {
    return undefined;
  }
}
