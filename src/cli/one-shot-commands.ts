/**
 * The commands the fast path runs (fast-path.ts), in one module: bundled
 * (scripts/bundle-cli.mjs) they are one file with what they import, not the
 * dozen shared chunks the full command line splits them into, and each file
 * Node opens costs start-up.
 */
export { attenuateCommand } from './commands/attenuate.js';
export { inspectCommand } from './commands/inspect.js';
export { verifyCommand } from './commands/verify.js';
