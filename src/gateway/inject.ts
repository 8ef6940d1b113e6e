/**
 * How an upstream's credential is put on a request: a header template with
 * `{credential}` in it, or HTTP Basic (RFC 7617) with the credential as the
 * password, which is what git over HTTPS to GitHub needs for an installation
 * token (`x-access-token:TOKEN`, base64-encoded) and a template cannot say.
 *
 * What is injected is also what a response must not carry back: for Basic,
 * the encoded user:credential is masked as well as the credential itself,
 * since an upstream echoing its Authorization header echoes the encoded form.
 */
import * as z from 'zod';
import { formatPath, textOf } from '../config/yaml-config.js';
import type { Credential } from '../credentials/credential.js';

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

export interface Injection {
  /** Lower-case header name. */
  readonly header: string;
  readonly before: string;
  readonly after: string;
  /** Set for HTTP Basic: the user name the credential is the password of. */
  readonly basicUser?: string;
}

const TemplateSchema = z
  .string(textOf('a header such as "Authorization: token {credential}"'))
  .describe('The header to set upstream, with {credential} where the credential goes')
  .transform((text, ctx): Injection => {
    const colon = text.indexOf(':');
    const name = text.slice(0, colon).trim();
    const template = text.slice(colon + 1).trim();
    if (colon < 0 || !HEADER_NAME.test(name)) {
      ctx.addIssue({
        code: 'custom',
        message: 'must look like "Header-Name: value with {credential}"',
      });
      return z.NEVER;
    }
    if (template.split('{credential}').length !== 2) {
      ctx.addIssue({ code: 'custom', message: 'must contain {credential} exactly once' });
      return z.NEVER;
    }

    if (/[\u0000-\u001f\u007f]/.test(template)) {
      ctx.addIssue({ code: 'custom', message: 'must not contain control characters' });
      return z.NEVER;
    }
    const [before, after] = template.split('{credential}') as [string, string];
    // Concatenated, never String.replace: a credential holding `$&` or `$'`
    // would be rewritten by replacement patterns (test: a '$' credential).
    return { header: name.toLowerCase(), before, after };
  });

const BasicSchema = z
  .strictObject({
    basic: z
      .strictObject({
        username: z
          .string(textOf('a user name such as x-access-token'))
          .min(1, 'must not be empty')
          .max(256, 'must be at most 256 characters')
          // RFC 7617 2: the user-id cannot hold a colon (it ends the user-id) or control characters.
          .regex(/^[^:\u0000-\u001f\u007f]+$/, 'must not contain a colon or control characters')
          .describe('The user name; the credential is the password'),
      })
      .describe(
        'Authorization: Basic base64(username:credential), as git over HTTPS to GitHub needs for an installation token (username x-access-token)',
      ),
  })
  .transform(({ basic }): Injection => ({
    header: 'authorization',
    before: 'Basic ',
    after: '',
    basicUser: basic.username,
  }));

const SHAPES = '"Header-Name: value with {credential}" or { basic: { username } }';

export const InjectSchema = z
  .union([TemplateSchema, BasicSchema], {
    // The problem inside the form written (`must contain {credential} exactly once`), not "no branch matched".
    error: (issue) => {
      const input = issue.input;
      const branch =
        typeof input === 'string' ? 0 : typeof input === 'object' && input !== null ? 1 : -1;
      const inner = (issue as { errors?: z.core.$ZodIssue[][] }).errors?.[branch]?.[0];
      if (inner === undefined) return `must be ${SHAPES}`;
      if (inner.code === 'unrecognized_keys')
        return `${formatPath([...inner.path, inner.keys[0] ?? ''])}: unknown field`;
      const message =
        inner.code === 'invalid_type' && inner.input === undefined ? 'required' : inner.message;
      return inner.path.length === 0 ? message : `${formatPath(inner.path)}: ${message}`;
    },
  })
  .describe(
    'How the credential goes upstream: a header template "Header-Name: value with {credential}", or { basic: { username } } for HTTP Basic with the credential as the password',
  );

/** The header value a request carries upstream. */
export function injectedValue(inject: Injection, credential: string): string {
  return inject.before + encoded(inject, credential) + inject.after;
}

function encoded(inject: Injection, credential: string): string {
  if (inject.basicUser === undefined) return credential;
  return Buffer.from(`${inject.basicUser}:${credential}`).toString('base64');
}

export interface Masked {
  readonly secrets: readonly string[];
  readonly secretBytes: readonly Buffer[];
}

// Per credential value and injection: computed once, not per request.
const maskedCache = new WeakMap<Credential, WeakMap<Injection, Masked>>();

/**
 * What a response to a request carrying `credential` must never hold: the
 * credential's own secrets, and for Basic each one's encoded form, also as
 * a JSON string escapes it (`\/`) and as a URL carries it (%2B %2F %3D, or in lower case).
 */
export function maskedFor(inject: Injection, credential: Credential): Masked {
  if (inject.basicUser === undefined) return credential;
  let byInjection = maskedCache.get(credential);
  if (byInjection === undefined) {
    byInjection = new WeakMap();
    maskedCache.set(credential, byInjection);
  }
  const known = byInjection.get(inject);
  if (known !== undefined) return known;
  const secrets = new Set(credential.secrets);
  for (const secret of credential.secrets) {
    const base64 = encoded(inject, secret);
    secrets.add(base64);
    secrets.add(base64.replaceAll('/', '\\/'));
    const escaped = encodeURIComponent(base64);
    secrets.add(escaped);
    secrets.add(escaped.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()));
  }
  const list = [...secrets];
  const masked = { secrets: list, secretBytes: list.map((secret) => Buffer.from(secret)) };
  byInjection.set(inject, masked);
  return masked;
}
