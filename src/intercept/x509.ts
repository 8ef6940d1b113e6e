/**
 * @peculiar/x509, ready to use: its dependency injection (tsyringe) needs
 * the Reflect metadata polyfill loaded first, and it signs with node's
 * WebCrypto. Import x509 from here, never from the package directly.
 */
import 'reflect-metadata';
// webcrypto through the module object: it is a getter that loads WebCrypto, and a named import
// is read when the bundle's chunk loads (scripts/bundle-cli.mjs, builtinsAsObjects), not when used.
import nodeCrypto from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(
  nodeCrypto.webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0],
);

export { x509 };
