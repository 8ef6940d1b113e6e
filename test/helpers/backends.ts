/** The backends the conformance suite (test/conformance/) holds to the same behaviour. */
import type { BackendName } from '../../src/fuse/backend.js';

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
