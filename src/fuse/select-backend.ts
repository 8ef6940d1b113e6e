/**
 * Which FUSE backend serves a mount: the native one where it is built and
 * loads, else fuse-native with a warning saying why. Asking for `native`
 * explicitly never falls back: it fails with the reason.
 */
import type { Logger } from '../log/logger.js';
import type { BackendName, FuseBackend } from './backend.js';
import { fuseNativeBackend } from './fuse-native-backend.js';
import { loadNativeAddon } from './native-addon.js';
import { nativeBackend } from './native-backend.js';
import { describeError } from '../errors.js';

export const BACKEND_NAMES: readonly BackendName[] = ['native', 'fuse-native'];

export function selectBackend(requested: BackendName | undefined, logger: Logger): FuseBackend {
  if (requested === 'fuse-native') return fuseNativeBackend;
  try {
    loadNativeAddon();
    return nativeBackend;
  } catch (err) {
    if (requested === 'native') throw err;
    logger.warn(
      { event: 'backend-fallback', backend: 'fuse-native', reason: describeError(err) },
      'native backend unavailable; falling back to fuse-native (no reader identity, shared page cache for sendfile readers)',
    );
    return fuseNativeBackend;
  }
}
