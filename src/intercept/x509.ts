/**
 * @peculiar/x509, ready to use: its dependency injection (tsyringe) needs
 * the Reflect metadata polyfill loaded first, and it signs with node's
 * WebCrypto. Import x509 from here, never from the package directly.
 */
import 'reflect-metadata';
// The default export: webcrypto is a lazy getter the bundle leaves out of named imports
// (scripts/bundle-cli.mjs, builtinsAsObjects).
import nodeCrypto from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(
  nodeCrypto.webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0],
);

export { x509 };
