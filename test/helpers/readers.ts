/** Real programs that read a file, each returning exactly the bytes it got. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ReadResult {
  readonly status: number | null;
  readonly content: string;
  readonly stderr: string;
}

export interface Reader {
  readonly name: string;
  /** Reads `file`; may use `scratch` (an empty directory) for copies. */
  readonly read: (file: string, scratch: string) => ReadResult;
}

/**
 * The readers' environment: ours, less LD_PRELOAD. The sanitizer run
 * (scripts/test-native-sanitizers.sh) preloads ASan for Node.js and the addon;
 * forced into other people's programs it reports their quirks (dd's
 * aligned_alloc sizes), not ours.
 */
const READER_ENV = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => name !== 'LD_PRELOAD'),
);

function run(cmd: string, args: string[]): ReadResult {
  const result = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000, env: READER_ENV });
  return { status: result.status, content: result.stdout, stderr: result.stderr };
}

function copied(cmd: string, args: string[], dest: string): ReadResult {
  const result = run(cmd, args);
  if (result.status !== 0) return result;
  return { ...result, content: readFileSync(dest, 'utf8') };
}

const PY = '/usr/bin/python3';

export const READERS: readonly Reader[] = [
  { name: 'coreutils cat', read: (f) => run('cat', [f]) },
  { name: 'busybox cat (sendfile)', read: (f) => run('busybox', ['cat', f]) },
  { name: 'bash $(<file)', read: (f) => run('bash', ['-c', 'printf %s "$(<"$1")"', 'bash', f]) },
  // `read` returns 1 at an EOF without newline but still fills the variable.
  {
    name: 'bash read',
    read: (f) =>
      run('bash', ['-c', 'read -r t < "$1"; s=$?; printf %s "$t"; [ $s -le 1 ]', 'bash', f]),
  },
  {
    name: 'python open().read()',
    read: (f) => run(PY, ['-c', 'import sys; sys.stdout.write(open(sys.argv[1]).read())', f]),
  },
  {
    name: 'python shutil.copyfile',
    read: (f, s) =>
      copied(
        PY,
        [
          '-c',
          'import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2])',
          f,
          join(s, 'py-copy'),
        ],
        join(s, 'py-copy'),
      ),
  },
  {
    name: 'node fs.readFileSync',
    read: (f) =>
      run(process.execPath, [
        '-e',
        'process.stdout.write(require("fs").readFileSync(process.argv[1]))',
        f,
      ]),
  },
  {
    name: 'node fs.copyFileSync',
    read: (f, s) =>
      copied(
        process.execPath,
        [
          '-e',
          'require("fs").copyFileSync(process.argv[1], process.argv[2])',
          f,
          join(s, 'node-copy'),
        ],
        join(s, 'node-copy'),
      ),
  },
  { name: 'head -c', read: (f) => run('head', ['-c', '65536', f]) },
  { name: 'dd bs=7', read: (f) => run('dd', [`if=${f}`, 'bs=7', 'status=none']) },
  { name: 'dd bs=1', read: (f) => run('dd', [`if=${f}`, 'bs=1', 'status=none']) },
  { name: 'cp', read: (f, s) => copied('cp', [f, join(s, 'cp-copy')], join(s, 'cp-copy')) },
];
