#!/usr/bin/env node
/**
 * Bundles the compiled command line (dist/src/cli/bin.js and what it
 * imports) into dist/src/bundle/: one module per command plus shared chunks,
 * instead of the ~300 files of our code, yargs, zod and yaml that Node would
 * otherwise resolve, read and compile on every start. `mintfs inspect` runs
 * from git credential helpers and agent scripts, so start-up is a target
 * (npm run bench:cli).
 *
 * Bundled: our code and every package but those in LEFT_TO_NODE: packages
 * with native code or files they load at run time (fuse-native; pino, whose
 * transports start workers from its own files; proto-loader, which reads
 * the CSI .proto). undici and @peculiar/* are bundled too: left to Node,
 * undici alone was ~130 CommonJS files to resolve, read and scan for
 * exports on every gateway start (about 30 ms of a ~350 ms start); code
 * splitting keeps them out of the one-shot commands. yargs' locale
 * files are not bundled: main.ts fixes the locale to English, whose texts
 * are built in.
 *
 * The bundle sits at dist/src/bundle/ so paths our modules build from
 * import.meta.url ('../../native/...', '../../../package.json') resolve as
 * they do from dist/src/<dir>/.
 */
import { build } from 'esbuild';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..');
const LEFT_TO_NODE = new Set([
  'fuse-native',
  'pino',
  // Only `mintfs csi` loads them; proto-loader reads dist/src/csi/csi.proto at run time.
  '@grpc/grpc-js',
  '@grpc/proto-loader',
]);

/** The package a bare specifier names ("@scope/name/sub" -> "@scope/name"). */
function packageOf(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const leaveSomeToNode = {
  name: 'leave-some-to-node',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (isBuiltin(args.path)) return { path: args.path, external: true };
      return LEFT_TO_NODE.has(packageOf(args.path))
        ? { path: args.path, external: true }
        : undefined;
    });
  },
};

/**
 * string-width (yargs' help layout, three copies in the tree) builds an
 * Intl.Segmenter when it is imported: the first one loads ICU's break
 * iterator data, ~15 ms, a tenth of every `mintfs inspect`, for help text
 * the one-shot commands never render. Here it is built on first use instead.
 * If a new string-width is written differently the build fails, so the
 * start-up cost cannot come back unnoticed.
 */
const lazySegmenter = {
  name: 'lazy-segmenter',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]string-width[\\/]index\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const eager = 'const segmenter = new Intl.Segmenter();';
      if (source.split(eager).length !== 2)
        throw new Error(`${args.path}: expected one "${eager}" to make lazy`);
      const lazy =
        'let eagerSegmenter; const segmenter = { segment: (text) => (eagerSegmenter ??= new Intl.Segmenter()).segment(text) };';
      return { contents: source.replace(eager, lazy), loader: 'js' };
    });
  },
};

/** What our compiled code imports by name from each built-in ("fs" -> {readFileSync, ...}). */
let importedNames;
function importedBuiltinNames() {
  if (importedNames !== undefined) return importedNames;
  importedNames = new Map();
  const statement =
    /\b(?:import|export)\s*(?:[\w$]+\s*,\s*)?\{([^}]*)\}\s*from\s*['"]([^'"]+)['"]/g;
  for (const file of readdirSync(join(ROOT, 'dist', 'src'), { recursive: true })) {
    if (!String(file).endsWith('.js') || String(file).startsWith('bundle')) continue;
    const source = readFileSync(join(ROOT, 'dist', 'src', String(file)), 'utf8');
    for (const [, list, specifier] of source.matchAll(statement)) {
      if (!isBuiltin(specifier)) continue;
      const names = importedNames.get(specifier.replace(/^node:/, '')) ?? new Set();
      for (const entry of list.split(',')) {
        const name = entry.trim().split(/\s+as\s+/)[0];
        if (name !== '' && !name.startsWith('type ') && name !== 'default') names.add(name);
      }
      importedNames.set(specifier.replace(/^node:/, ''), names);
    }
  }
  return importedNames;
}

/**
 * Node's built-in modules taken as objects rather than imported. Importing
 * a built-in from an ES module makes Node build it an ES facade, which reads
 * every export once: node:fs's lazy ReadStream/WriteStream getters then load
 * the streams machinery (~5 ms of a ~75 ms `mintfs verify`, in a --cpu-prof
 * of getESMFacade/syncExports), whether or not the command streams anything.
 * process.getBuiltinModule hands the module object over as it is (no
 * facade, and unlike require() no CommonJS loader to set up: that was
 * slower than the facade). Measured A/B with 40 alternating runs:
 * inspect 84.8 -> 77.0 ms, verify 91.9 -> 90.1 ms. For the gateway the
 * facade was worse: node:http's getters load Node's own undici (~35 ms of
 * every `mintfs run`, in its profile). Used for every build.
 *
 * To our own modules the object is handed as an ES module whose named
 * exports are the names our code imports from it (read from the compiled
 * sources, below), each read once. Given a CommonJS module instead, esbuild
 * wraps it in __toESM, which defines a getter on a copy for every property
 * (fs has ~100): ~3 ms of every one-shot command in a --cpu-prof. Reading
 * only what is imported, and not every property the building Node has,
 * matters: a property may be plain in one Node and a getter in another
 * (fs.F_OK is a deprecation warning on Node 24), and some getters load what
 * they return (webcrypto, tls.rootCertificates, fs.promises). A name our
 * code imports that the scan missed fails the build (import-is-undefined is
 * an error below). Packages keep the CommonJS form (their imports of
 * accessors, e.g. @smithy's ReadStream, stay lazy getters).
 */
const builtinsAsObjects = {
  name: 'builtins-as-objects',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (!isBuiltin(args.path)) return undefined;
      if (args.kind === 'require-call') return { path: args.path, external: true };
      const fromPackage = /[\\/]node_modules[\\/]/.test(args.importer);
      return { path: args.path, namespace: fromPackage ? 'builtin-object' : 'builtin-module' };
    });
    // getBuiltinModule (Node 22.3+) skips the CommonJS loader too; require() where it is missing.
    const take = (path) => `(process.getBuiltinModule ?? require)(${JSON.stringify(path)})`;
    b.onLoad({ filter: /.*/, namespace: 'builtin-object' }, (args) => ({
      contents: `module.exports = ${take(args.path)};`,
      loader: 'js',
    }));
    b.onLoad({ filter: /.*/, namespace: 'builtin-module' }, (args) => {
      const names = [...(importedBuiltinNames().get(args.path.replace(/^node:/, '')) ?? [])];
      return {
        contents: [
          `const m = ${take(args.path)};`,
          'export default m;',
          names.length === 0 ? '' : `export const { ${names.join(', ')} } = m;`,
        ].join('\n'),
        loader: 'js',
      };
    });
  },
};

/**
 * The executable and the one-shot commands are CommonJS; the full command
 * line is ES modules (.mjs). Node sets up its ES module loader the first time
 * an ES module loads, ~5 ms before any of ours runs; `node -e 0` never does.
 * A CommonJS executable that requires CommonJS one-shot files never sets it
 * up: 40 alternating runs, inspect -14%, verify -10%, attenuate -6% against
 * the same code as ES modules. bundle/package.json says "commonjs" for the
 * .js files (the executable keeps its name, dist/src/bundle/mintfs.js).
 *
 * Each file is built alone and loads the next by name, through a stub that
 * requires it: the executable (compile cache on, then the fast path), the
 * fast path (one-shot.cjs: parses the words; declined, the executable
 * imports main.mjs), the commands it runs (one-shot-commands.cjs: zod, the
 * token code) and what verify --redis alone loads (one-shot-redis.cjs: the
 * Redis client, pino). So `mintfs mount` opens one small file before main.mjs,
 * and `mintfs inspect` never reads the Redis client. Each file has its own
 * copy of the few modules they share (errors.ts: MintfsError's instanceof
 * goes by a mark, not the prototype, for that reason).
 */
function loadsBuilt(importer, specifiers) {
  return {
    name: `loads-built-files-from-${importer}`,
    setup(b) {
      // Only the named module's own imports, word for word: nothing else is redirected.
      b.onResolve({ filter: /^\.\.?\// }, (args) => {
        if (args.namespace === 'built-file') return { path: args.path, external: true };
        if (!args.importer.endsWith(`/dist/src/${importer}`)) return undefined;
        const file = specifiers[args.path];
        return file === undefined ? undefined : { path: file, namespace: 'built-file' };
      });
      b.onLoad({ filter: /.*/, namespace: 'built-file' }, (args) => ({
        contents: `module.exports = require(${JSON.stringify(args.path)});`,
        loader: 'js',
      }));
    },
  };
}

// Chunk names carry content hashes: stale ones from the last build would pile up.
rmSync(join(ROOT, 'dist', 'src', 'bundle'), { recursive: true, force: true });
const common = {
  absWorkingDir: ROOT,
  outdir: 'dist/src/bundle',
  bundle: true,
  platform: 'node',
  // No syntax lowering: tsc has compiled our code and the packages target
  // Node 20+. esbuild's Node table lacks the /v regex flag, so a Node target
  // turns string-width's /^\p{RGI_Emoji}$/v literal (compiled on first use)
  // into new RegExp(...) (compiled at import: ~25 ms of start-up).
  target: 'esnext',
  legalComments: 'linked',
  logLevel: 'warning',
  logOverride: {
    // A named import a module lacks (an accessor of a built-in, above) is an error, not undefined.
    'import-is-undefined': 'error',
    // import.meta is empty in CommonJS: a module that needs it must not be in those files.
    'empty-import-meta': 'error',
  },
};
const commonJs = { ...common, format: 'cjs', splitting: false, outExtension: { '.js': '.cjs' } };
// The executable: the compile cache, then the fast path, else main.mjs (a
// real import(): it is an ES module).
await build({
  ...commonJs,
  entryPoints: { mintfs: 'dist/src/cli/bin.js' },
  outExtension: { '.js': '.js' },
  plugins: [
    loadsBuilt('cli/bin.js', { './fast-path.js': './one-shot.cjs' }),
    {
      name: 'main-as-es-module',
      setup(b) {
        b.onResolve({ filter: /^\.\/main\.js$/ }, () => ({ path: './main.mjs', external: true }));
      },
    },
    builtinsAsObjects,
    leaveSomeToNode,
  ],
});
await build({
  ...commonJs,
  entryPoints: { 'one-shot': 'dist/src/cli/fast-path.js' },
  plugins: [
    loadsBuilt('cli/fast-path.js', { './one-shot-commands.js': './one-shot-commands.cjs' }),
    builtinsAsObjects,
    leaveSomeToNode,
  ],
});
await build({
  ...commonJs,
  entryPoints: { 'one-shot-commands': 'dist/src/cli/one-shot-commands.js' },
  plugins: [
    loadsBuilt('cli/commands/verify.js', {
      '../../state/shared-revocations.js': './one-shot-redis.cjs',
      '../logging.js': './one-shot-redis.cjs',
    }),
    builtinsAsObjects,
    leaveSomeToNode,
  ],
});
await build({
  ...commonJs,
  stdin: {
    contents: [
      "export { readSharedState } from './dist/src/state/shared-revocations.js';",
      "export { commandLogger } from './dist/src/cli/logging.js';",
    ].join('\n'),
    resolveDir: ROOT,
    sourcefile: 'one-shot-redis.js',
  },
  outfile: 'dist/src/bundle/one-shot-redis.cjs',
  outdir: undefined,
  plugins: [builtinsAsObjects, leaveSomeToNode],
});
// The full command line: every command, yargs, help; ES modules split into chunks.
await build({
  ...common,
  format: 'esm',
  splitting: true,
  outExtension: { '.js': '.mjs' },
  entryPoints: { main: 'dist/src/cli/main.js' },
  chunkNames: 'chunk-[hash]',
  // The bundled packages are ESM, but a CommonJS module among them would
  // call require(): give the bundle one.
  banner: {
    js: "import { createRequire as __mintfsCreateRequire } from 'node:module'; const require = __mintfsCreateRequire(import.meta.url);",
  },
  plugins: [builtinsAsObjects, leaveSomeToNode, lazySegmenter],
});
writeFileSync(
  join(ROOT, 'dist', 'src', 'bundle', 'package.json'),
  `${JSON.stringify({ type: 'commonjs' })}\n`,
);
