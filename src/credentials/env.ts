/** `{ env: NAME }`: a static credential in the gateway's environment. */
import * as z from 'zod';
import type { SourceKind } from './source.js';
import { checkCredentialValue, refusalFor } from './value.js';

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const EnvSourceSchema = z.strictObject({
  env: z
    .string()
    .regex(ENV_NAME, 'must be an environment variable name')
    .describe('Environment variable holding the credential (read once, at start)'),
});
type EnvSource = z.output<typeof EnvSourceSchema>;

export const envSource: SourceKind<EnvSource> = {
  key: 'env',
  schema: EnvSourceSchema,
  resolvePaths: (config) => config,
  open: (config, { service, env }) => {
    const fail = refusalFor(service, `$${config.env}`);
    const value = env[config.env];
    if (value === undefined) throw fail('is not set');
    const checked = checkCredentialValue(value, fail);
    return { kind: 'static', read: () => checked };
  },
};
