/** Schema pieces the credential source kinds share. */
import * as z from 'zod';
import { parseDuration } from '../util/duration.js';

/** A duration such as 30s or 5m, as milliseconds, within bounds. */
export function durationMs(minMs: number, maxMs: number, range: string) {
  return z.string().transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration such as 30s or 5m` });
      return z.NEVER;
    }
    if (ms < minMs || ms > maxMs) {
      ctx.addIssue({ code: 'custom', message: `${text} is outside ${range}` });
      return z.NEVER;
    }
    return ms;
  });
}

/** An https:// URL (a secret or a token is sent to it), without credentials, query or fragment. */
export const HttpsUrl = z.string().transform((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a URL` });
    return z.NEVER;
  }
  // Secrets travel to it: never in clear text.
  if (url.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: 'must be an https:// URL' });
    return z.NEVER;
  }
  if (url.username || url.password || url.search || url.hash) {
    ctx.addIssue({ code: 'custom', message: 'must not carry credentials, a query or a fragment' });
    return z.NEVER;
  }
  return url.href;
});
