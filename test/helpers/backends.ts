/** The backends the conformance suite (test/conformance/) holds to the same behaviour. */
import { after, before } from 'node:test';
import type { BackendName } from '../../src/fuse/backend.js';
import { holdKernelUring, type UringHold } from './kernel-uring.js';

const ALL: readonly BackendName[] = ['native', 'fuse-native'];

/**
 * Every backend; MINTFS_TEST_BACKENDS=native narrows a run to some (the
 * sanitizer run tests only the native addon). An unknown name fails at once.
 */
export const BACKENDS: readonly BackendName[] = (() => {
  const wanted = process.env.MINTFS_TEST_BACKENDS?.split(',').filter((b) => b !== '');
  if (wanted === undefined || wanted.length === 0) return ALL;
  const unknown = wanted.filter((b) => !(ALL as readonly string[]).includes(b));
  if (unknown.length > 0)
    throw new Error(`MINTFS_TEST_BACKENDS: unknown backend ${unknown.join(', ')}`);
  return wanted as BackendName[];
})();

/**
 * What the conformance suite runs on: every backend, and the native backend
 * twice, once per transport (the classic /dev/fuse loop and FUSE over
 * io_uring), so both transports are held to the same behaviour.
 */
export interface ConformanceTarget {
  /** For test names: `native`, `native, io_uring`, `fuse-native`. */
  readonly label: string;
  readonly backend: BackendName;
  /** `--fuse-transport`; the fixture refuses a mount that fell back from `uring`. */
  readonly transport?: 'uring' | undefined;
}

export const CONFORMANCE_TARGETS: readonly ConformanceTarget[] = BACKENDS.flatMap(
  (backend): ConformanceTarget[] =>
    backend === 'native'
      ? [
          { label: backend, backend },
          { label: `${backend}, io_uring`, backend, transport: 'uring' },
        ]
      : [{ label: backend, backend }],
);

/**
 * Call inside a target's describe(): for the io_uring target, the fuse
 * module's enable_uring is held on for the describe's tests and restored
 * after (test/helpers/kernel-uring.ts; the operator's setting in production).
 */
export function useTransport(target: ConformanceTarget): void {
  if (target.transport !== 'uring') return;
  let hold: UringHold | undefined;
  before(() => {
    hold = holdKernelUring('Y');
  });
  after(() => hold?.release());
}
