/**
 * scripts/try-gateway.sh, the offline walkthrough of the gateway that the
 * README and docs/gateway.md point a new user to, run as they would run it:
 * what it shows must be what happened, and it must leave nothing behind
 * (no process listening, no temporary directory), also when interrupted.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';
import { pollUntil } from '../helpers/poll.js';
import { tempDir, teardownOf } from '../helpers/temp.js';

const SCRIPT = join(REPO_ROOT, 'scripts', 'try-gateway.sh');
const CREDENTIAL = 'demo_TRYGATEWAYcredential0123456789';

interface Walkthrough {
  readonly output: () => string;
  /** The script's exit code (128 + n for a signal), once its output has closed too. */
  readonly finished: () => Promise<number | null>;
  readonly interrupt: () => void;
}

/**
 * Starts the script with its own TMPDIR. At teardown a script still running
 * is stopped, and any process left holding a path under TMPDIR is killed
 * (the test has failed by then; it must not leave daemons behind either).
 */
function start(t: TestContext, tmp: string): Walkthrough {
  const child = spawn('bash', [SCRIPT], {
    cwd: tmp,
    env: {
      ...process.env,
      TMPDIR: tmp,
      MINTFS_NODE: process.execPath,
      MINTFS_TRY_CREDENTIAL: CREDENTIAL,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let code: number | null | undefined;
  let closed = false;
  child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.on('exit', (exitCode, signal) => (code = exitCode ?? (signal === null ? null : 128)));
  child.on('close', () => (closed = true));
  teardownOf(t).add(async () => {
    if (code === undefined) {
      child.kill('SIGTERM');
      await pollUntil('the script to stop', () => code !== undefined, 10_000).catch(() =>
        child.kill('SIGKILL'),
      );
    }
    for (const line of processesUnder(tmp)) process.kill(Number(line.split(':')[0]), 'SIGKILL');
  });
  return {
    output: () => output,
    finished: async () => {
      await pollUntil(
        'the script to exit',
        () => code !== undefined,
        45_000,
        () => output,
      );
      // A process it started that still holds its output would keep this open.
      await pollUntil(
        "the script's output to close",
        () => closed,
        5_000,
        () => output,
      );
      return code ?? null;
    },
    interrupt: () => child.kill('SIGINT'),
  };
}

/** Whether something accepts connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Processes whose command line names a path under `dir` (the stand-in and the gateway do). */
function processesUnder(dir: string): string[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((pid) => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
        return cmdline.includes(dir) ? [`${pid}: ${cmdline}`] : [];
      } catch {
        return []; // gone meanwhile
      }
    });
}

function ports(output: string): { standIn: number; gateway: number | undefined } {
  const standIn = Number(/stand-in for api\.github\.com on 127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
  const gateway = /http:\/\/127\.0\.0\.1:(\d+)\/github\//.exec(output)?.[1];
  return { standIn, gateway: gateway === undefined ? undefined : Number(gateway) };
}

describe('scripts/try-gateway.sh', () => {
  it(
    'shows injection, two refusals and redaction against a local stand-in, and leaves nothing behind',
    { timeout: 60_000 },
    async (t) => {
      const tmp = tempDir(t);
      const walk = start(t, tmp);
      const code = await walk.finished();
      const output = walk.output();
      assert.equal(code, 0, output);
      // Injection: the stand-in got the real credential; the agent got its answer.
      assert.match(output, /"served_by":"the stand-in, with the real credential"}\n\(HTTP 200\)/);
      assert.match(output, /^stand-in: GET \/repos\/acme\/widgets with the real credential$/m);
      // Refusals: method and path caveats, and neither reached the stand-in.
      assert.match(output, /"error":"ERR_CAVEAT_UNSATISFIED","message":"method DELETE/);
      assert.match(
        output,
        /"error":"ERR_CAVEAT_UNSATISFIED","message":"path \/repos\/acme\/secrets/,
      );
      assert.equal(output.match(/\(HTTP 403\)/g)?.length, 2);
      assert.doesNotMatch(output, /stand-in: (DELETE|GET \/repos\/acme\/secrets)/);
      // Redaction: the echo, masked to the credential's length.
      assert.ok(output.includes(`{"you sent":"token ${'*'.repeat(CREDENTIAL.length)}"}`), output);
      assert.ok(!output.includes(CREDENTIAL), 'the credential appears nowhere in the output');
      assert.match(output, /the real credential in anything the agent saw\nno\n/);
      assert.match(output, /DELETE \/repos\/acme\/widgets -> 403 ERR_CAVEAT_UNSATISFIED/);
      // Nothing left: neither server listens, the temporary directory is gone.
      const { standIn, gateway } = ports(output);
      assert.equal(await listening(standIn), false, 'the stand-in was stopped');
      assert.equal(await listening(gateway ?? 0), false, 'the gateway was stopped');
      assert.deepEqual(processesUnder(tmp), []);
      assert.deepEqual(readdirSync(tmp), []);
    },
  );

  it(
    'interrupted midway, it stops what it started and removes its directory',
    { timeout: 60_000 },
    async (t) => {
      const tmp = tempDir(t);
      const walk = start(t, tmp);
      // Both servers are up from here on; the rest takes a node start or more.
      await pollUntil(
        'the walkthrough to start its servers',
        () => walk.output().includes("== the agent's token"),
        30_000,
        walk.output,
      );
      const { standIn } = ports(walk.output());
      const running = processesUnder(tmp);
      assert.ok(
        running.some((p) => p.includes('try-gateway-stand-in.mjs')),
        'the stand-in runs',
      );
      assert.ok(
        running.some((p) => p.includes('gateway.yaml')),
        'the gateway runs',
      );
      assert.equal(await listening(standIn), true);
      walk.interrupt();
      assert.equal(await walk.finished(), 130, walk.output());
      assert.deepEqual(processesUnder(tmp), []);
      assert.equal(await listening(standIn), false, 'the stand-in was stopped');
      assert.deepEqual(readdirSync(tmp), []);
    },
  );
});
