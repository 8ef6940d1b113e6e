/**
 * Writes an OCI config.json for an agent container to stdout.
 *
 *   node dist/scripts/runc/make-config.js --rootfs DIR --mintfs-dir DIR --netns PATH \
 *     [--uid 1000] [--gid 1000] [--memory 512M] [--pids 256] [--cpus 1] \
 *     [--ro-bind HOST:CONTAINER ...] [--ca-cert FILE] -- CMD [ARGS...]
 *
 * Every value is checked by src/contain/oci-config.ts; a bad one is one line
 * on stderr naming the option, and exit 2.
 */
import { parseArgs } from 'node:util';
import { ociConfig } from '../../src/contain/oci-config.js';

const SIZE = /^(\d+)([KMG]?)$/;
const UNITS = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 } as const;

function bytes(text: string): number {
  const match = SIZE.exec(text);
  if (!match) return NaN;
  return Number(match[1]) * UNITS[(match[2] ?? '') as keyof typeof UNITS];
}

try {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      rootfs: { type: 'string' },
      'mintfs-dir': { type: 'string' },
      netns: { type: 'string' },
      uid: { type: 'string', default: '1000' },
      gid: { type: 'string' },
      memory: { type: 'string', default: '512M' },
      pids: { type: 'string', default: '256' },
      cpus: { type: 'string', default: '1' },
      'ro-bind': { type: 'string', multiple: true, default: [] },
      'ca-cert': { type: 'string' },
    },
  });
  const config = ociConfig({
    rootfs: values.rootfs ?? '',
    mintfsDir: values['mintfs-dir'] ?? '',
    netns: values.netns ?? '',
    uid: Number(values.uid),
    gid: Number(values.gid ?? values.uid),
    memoryBytes: bytes(values.memory),
    pids: Number(values.pids),
    cpus: Number(values.cpus),
    ...(values['ca-cert'] === undefined ? {} : { caCert: values['ca-cert'] }),
    readOnlyBinds: values['ro-bind'].map((pair) => pair.split(':') as [string, string]),
    args: positionals,
  });
  process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
} catch (err) {
  const issues = (err as { issues?: Array<{ path: PropertyKey[]; message: string }> }).issues;
  const message = issues
    ? issues.map((i) => `--${i.path.map(String).join('.')}: ${i.message}`).join('; ')
    : err instanceof Error
      ? err.message
      : String(err);
  process.stderr.write(`make-config: ${message}\n`);
  process.exitCode = 2;
}
