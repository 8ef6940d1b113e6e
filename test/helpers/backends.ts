/** The backends the conformance suite (test/conformance/) holds to the same behaviour. */
import type { BackendName } from '../../src/fuse/backend.js';

export const BACKENDS: readonly BackendName[] = ['native', 'fuse-native'];
