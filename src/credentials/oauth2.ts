/**
 * `{ oauth2: { tokenUrl, clientId, grant, clientSecret | refreshToken, ... } }`:
 * access tokens from an OAuth2 token endpoint (RFC 6749).
 *
 * - client_credentials (4.4): the client authenticates with its secret
 *   (HTTP Basic, 2.3.1, or in the body with `clientAuth: body`).
 * - refresh_token (6): the refresh token is read from its file for each mint,
 *   and a rotated one the endpoint returns is written back atomically before
 *   the new access token is used, so a crash never leaves only a spent token
 *   on disk. Mints are serialised: two at once would both spend one token.
 *
 * Secret files are trusted paths of mode 0600, like credential files. The
 * endpoint's answer is never logged or shown; a refusal names its status and
 * its RFC 6749 `error` code only.
 */
import { resolve } from 'node:path';
import * as z from 'zod';
import { writeFileAtomic } from '../keys/atomic-write.js';
import { readSecretFile } from './file.js';
import { HttpsUrl, durationMs } from './schema-parts.js';
import type { Minted, SourceKind } from './source.js';
import { tokenService } from './token-service.js';
import { checkCredentialValue, refusalFor } from './value.js';

const NO_CONTROL = /^[^\u0000-\u001f\u007f]+$/;

const OAuth2Schema = z
  .strictObject({
    tokenUrl: HttpsUrl.describe('The token endpoint (https://)'),
    clientId: z
      .string()
      .min(1)
      .max(256)
      .regex(NO_CONTROL, 'must not contain control characters')
      .describe('The client id'),
    grant: z
      .enum(['client_credentials', 'refresh_token'])
      .describe(
        'client_credentials (the client acts for itself) or refresh_token (for a user who authorized it once)',
      ),
    clientSecret: z
      .string()
      .min(1)
      .optional()
      .describe(
        'File holding the client secret (mode 0600, trusted path); required for client_credentials, optional for refresh_token (a public client)',
      ),
    refreshToken: z
      .string()
      .min(1)
      .optional()
      .describe(
        'File holding the refresh token (mode 0600, trusted path; refresh_token grant): a rotated one is written back to it',
      ),
    scope: z
      .string()
      .max(1024)
      .regex(
        /^[\u0021\u0023-\u005b\u005d-\u007e]+( [\u0021\u0023-\u005b\u005d-\u007e]+)*$/,
        'must be space-separated scope tokens',
      )
      .optional()
      .describe('The scope asked for (space-separated)'),
    clientAuth: z
      .enum(['basic', 'body'])
      .default('basic')
      .describe(
        'How the client authenticates: HTTP Basic (client_secret_basic) or client_id and client_secret in the body (client_secret_post)',
      ),
    ca: z
      .string()
      .min(1)
      .optional()
      .describe('Extra CA certificates (PEM) to trust for the endpoint'),
    timeout: durationMs(100, 60_000, '100ms..1m')
      .prefault('10s')
      .describe('Time the endpoint has to answer'),
  })
  .superRefine((config, ctx) => {
    if (config.grant === 'client_credentials') {
      if (config.clientSecret === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['clientSecret'],
          message: 'required for client_credentials',
        });
      if (config.refreshToken !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['refreshToken'],
          message: 'only for the refresh_token grant',
        });
    } else if (config.refreshToken === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['refreshToken'],
        message: 'required for refresh_token',
      });
  });

const OAuth2SourceSchema = z.strictObject({
  oauth2: OAuth2Schema.describe('Access tokens from an OAuth2 token endpoint'),
});
type OAuth2Source = z.output<typeof OAuth2SourceSchema>;

/** An answer without expires_in is used this long. */
const DEFAULT_LIFE_MS = 5 * 60_000;

const TokenAnswer = z.looseObject({
  access_token: z.string().min(1),
  token_type: z.string().optional(),
  expires_in: z.number().positive().optional(),
  refresh_token: z.string().min(1).optional(),
});

export const oauth2Source: SourceKind<OAuth2Source> = {
  key: 'oauth2',
  schema: OAuth2SourceSchema,
  resolvePaths: ({ oauth2 }, base) => ({
    oauth2: {
      ...oauth2,
      ...(oauth2.clientSecret === undefined
        ? {}
        : { clientSecret: resolve(base, oauth2.clientSecret) }),
      ...(oauth2.refreshToken === undefined
        ? {}
        : { refreshToken: resolve(base, oauth2.refreshToken) }),
      ...(oauth2.ca === undefined ? {} : { ca: resolve(base, oauth2.ca) }),
    },
  }),
  open: ({ oauth2: config }, { service, clock }) => {
    const endpoint = refusalFor(service, `oauth2 token endpoint ${config.tokenUrl}`);
    const secretOf = (file: string) =>
      checkCredentialValue(
        readSecretFile(file, refusalFor(service, `oauth2 ${file}`)),
        refusalFor(service, `oauth2 ${file}`),
      );
    // Checked at start: a gateway that starts can authenticate.
    if (config.clientSecret !== undefined) secretOf(config.clientSecret);
    if (config.refreshToken !== undefined) secretOf(config.refreshToken);
    const client = tokenService(config.timeout, config.ca, endpoint);

    const mintOnce = async (): Promise<Minted> => {
      const form = new URLSearchParams({ grant_type: config.grant });
      const headers: Record<string, string> = {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      };
      const secret = config.clientSecret === undefined ? undefined : secretOf(config.clientSecret);
      if (secret !== undefined && config.clientAuth === 'basic')
        headers.authorization = `Basic ${Buffer.from(`${formEncode(config.clientId)}:${formEncode(secret)}`).toString('base64')}`;
      else {
        form.set('client_id', config.clientId);
        if (secret !== undefined) form.set('client_secret', secret);
      }
      if (config.refreshToken !== undefined)
        form.set('refresh_token', secretOf(config.refreshToken));
      if (config.scope !== undefined) form.set('scope', config.scope);
      const answer = await client.request(
        config.tokenUrl,
        { method: 'POST', headers, body: form.toString() },
        endpoint,
      );
      if (answer.status !== 200)
        throw endpoint(`answered ${answer.status}${errorCodeOf(answer.body)}`);
      let parsed: z.output<typeof TokenAnswer>;
      try {
        parsed = TokenAnswer.parse(JSON.parse(answer.body));
      } catch {
        throw endpoint('answered 200 without an access_token');
      }
      if (parsed.token_type !== undefined && parsed.token_type.toLowerCase() !== 'bearer')
        throw endpoint('answered a token type other than Bearer');
      const value = checkCredentialValue(parsed.access_token, (reason) =>
        endpoint(`answered an access token that ${reason}`),
      );
      if (config.refreshToken !== undefined && parsed.refresh_token !== undefined) {
        const rotated = checkCredentialValue(parsed.refresh_token, (reason) =>
          endpoint(`answered a refresh token that ${reason}`),
        );
        // Before the access token is used: the old refresh token may be spent already.
        try {
          writeFileAtomic(config.refreshToken, `${rotated}\n`, { mode: 0o600 });
        } catch (err) {
          throw refusalFor(
            service,
            `oauth2 ${config.refreshToken}`,
          )(
            `could not be rewritten with the rotated refresh token (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
          );
        }
      }
      const life = parsed.expires_in === undefined ? DEFAULT_LIFE_MS : parsed.expires_in * 1000;
      return { value, expiresAt: clock() + life };
    };

    // Serialised: with a refresh token, two concurrent mints would spend one token twice.
    let queue: Promise<unknown> = Promise.resolve();
    return {
      kind: 'minted',
      minter: {
        mint: () => {
          const next = queue.then(mintOnce, mintOnce);
          queue = next.catch(() => undefined);
          return next;
        },
        close: () => client.close(),
      },
    };
  },
};

/** RFC 6749 2.3.1: id and secret are form-encoded before Basic. */
function formEncode(text: string): string {
  return new URLSearchParams({ x: text }).toString().slice(2);
}

/** The RFC 6749 5.2 `error` code of an error answer, when it is one (never its description). */
function errorCodeOf(body: string): string {
  try {
    const error = (JSON.parse(body) as { error?: unknown }).error;
    return typeof error === 'string' && /^[a-z_]{1,40}$/.test(error) ? ` (${error})` : '';
  } catch {
    return '';
  }
}
