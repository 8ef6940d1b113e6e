/**
 * The `command` credential source through a real gateway: a script standing
 * in for `gh auth token` (it counts its runs, records the environment it got,
 * and fails, hangs or prints nothing when told to).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { bearerGet, startGatewayFixture, type GatewayFixture } from '../helpers/gateway-fixture.js';
import { pollUntil } from '../helpers/poll.js';
import { tempDir } from '../helpers/temp.js';

const ECHO = '/github/repos/acme/widgets/echo';

interface CommandStandIn {
  readonly dir: string;
  readonly script: string;
  runs(): number;
  mode(mode: 'ok' | 'fail' | 'empty' | 'slow' | 'leak'): void;
  value(value: string): void;
}

/** A script as `gh auth token` would be: prints the token held in `value`, as `mode` says. */
function commandStandIn(t: TestContext): CommandStandIn {
  const dir = tempDir(t);
  const script = join(dir, 'gh-auth-token');
  writeFileSync(
    script,
    `#!/bin/sh
dir='${dir}'
echo run >> "$dir/runs"
env | cut -d= -f1 | sort > "$dir/env-seen"
case "$(cat "$dir/mode")" in
  ok) printf '  %s\\n' "$(cat "$dir/value")" ;;
  fail) echo "OUTPUT-OF-A-FAILING-COMMAND"; echo "STDERR-OF-A-FAILING-COMMAND" >&2; exit 3 ;;
  empty) printf '\\n   \\n' ;;
  slow) sleep 30 & echo $! > "$dir/sleeper"; wait ;;
  leak) printf 'two\\nlines\\n' ;;
esac
`,
  );
  chmodSync(script, 0o700);
  const stand: CommandStandIn = {
    dir,
    script,
    runs: () =>
      existsSync(join(dir, 'runs'))
        ? readFileSync(join(dir, 'runs'), 'utf8').split('\n').length - 1
        : 0,
    mode: (mode) => writeFileSync(join(dir, 'mode'), mode),
    value: (value) => writeFileSync(join(dir, 'value'), value),
  };
  stand.mode('ok');
  stand.value(`gho_${randomBytes(18).toString('hex')}`);
  return stand;
}

/** A stateless-style GitHub token: ghs_ and ~520 characters. */
function longGhsToken(): string {
  return `ghs_${randomBytes(390).toString('base64url').slice(0, 516)}`;
}

async function gatewayWith(
  t: TestContext,
  stand: CommandStandIn,
  extra = '',
  env: NodeJS.ProcessEnv = {},
): Promise<GatewayFixture> {
  return startGatewayFixture(t, {
    credential: `{ command: [${stand.script}], ttl: 1h${extra} }`,
    limits: 'agentConcurrency: 64',
    env,
  });
}

function mintLines(gw: GatewayFixture, event: string): Array<Record<string, unknown>> {
  return gw
    .stderr()
    .split('\n')
    .filter((l) => l.includes(`"event":"${event}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('credential source: command', () => {
  it('a 520-character ghs_ token from a command is injected, minted once for 50 concurrent first requests, and redacted', async (t) => {
    const stand = commandStandIn(t);
    const value = longGhsToken();
    stand.value(value);
    const gw = await gatewayWith(t, stand);
    const agent = new Agent({ keepAlive: true, maxSockets: 50 });
    t.after(() => agent.destroy());
    const token = gw.token();
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => bearerGet(agent, `${gw.base}${ECHO}`, token)),
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      Array(50).fill(200),
    );
    assert.equal(stand.runs(), 1, 'one run for 50 concurrent first requests');
    const sent = gw.upstream.requests.filter((r) => r.url.endsWith('/echo'));
    assert.equal(sent.length, 50);
    for (const r of sent) assert.equal(r.headers.authorization, `token ${value}`);
    for (const a of answers) {
      assert.ok(!a.body.includes(value), 'the echoed credential is redacted');
      assert.ok(!a.body.includes(value.slice(0, 100)));
    }
    // Cached: more requests, no more runs.
    for (let i = 0; i < 5; i++)
      assert.equal((await bearerGet(agent, `${gw.base}${ECHO}`, token)).status, 200);
    assert.equal(stand.runs(), 1);
    assert.ok(!gw.stderr().includes(value.slice(4, 60)), 'the credential is never logged');
    assert.equal(mintLines(gw, 'credential-minted')[0]?.source, 'command');
  });

  it('the command gets a cleared environment holding only the listed variables', async (t) => {
    const stand = commandStandIn(t);
    const gw = await gatewayWith(t, stand, ', passEnv: [GH_CONFIG_DIR]', {
      GH_CONFIG_DIR: '/nonexistent/gh',
      MINTFS_TEST_CANARY: 'must-not-be-passed',
    });
    assert.equal((await bearerGet(new Agent(), `${gw.base}${ECHO}`, gw.token())).status, 200);
    const seen = readFileSync(join(stand.dir, 'env-seen'), 'utf8').split('\n').filter(Boolean);
    assert.ok(seen.includes('GH_CONFIG_DIR'), seen.join(' '));
    assert.ok(!seen.includes('MINTFS_TEST_CANARY'), seen.join(' '));
    assert.ok(!seen.includes('HOME'), seen.join(' '));
    // Nothing but the listed name and what sh sets itself.
    for (const name of seen)
      assert.ok(['GH_CONFIG_DIR', 'PWD', 'OLDPWD', 'SHLVL', '_'].includes(name), name);
  });

  it('a failing command answers 502 ERR_CREDENTIAL_UNAVAILABLE, logs one line naming the source, never its output, and backs off', async (t) => {
    const stand = commandStandIn(t);
    stand.mode('fail');
    const gw = await gatewayWith(t, stand);
    const agent = new Agent({ keepAlive: true });
    t.after(() => agent.destroy());
    const token = gw.token();
    const first = await bearerGet(agent, `${gw.base}${ECHO}`, token);
    assert.equal(first.status, 502);
    const body = JSON.parse(first.body) as { error: string; message: string };
    assert.equal(body.error, 'ERR_CREDENTIAL_UNAVAILABLE');
    assert.match(body.message, /command .*gh-auth-token exited with status 3/);
    // Inside the backoff: refused at once, the command is not run again.
    for (let i = 0; i < 10; i++) {
      const again = await bearerGet(agent, `${gw.base}${ECHO}`, token);
      assert.equal(again.status, 502);
    }
    assert.equal(stand.runs(), 1, 'an outage is not a stampede');
    // Log lines are flushed in batches: wait for all eleven requests' lines.
    await pollUntil('the request log lines', () => gw.requestLogs().length >= 11);
    const failures = mintLines(gw, 'credential-mint-failed');
    assert.equal(failures.length, 1);
    assert.equal(failures[0]?.source, 'command');
    assert.equal(failures[0]?.service, 'github');
    for (const text of [gw.stderr(), first.body]) {
      assert.ok(!text.includes('OUTPUT-OF-A-FAILING-COMMAND'));
      assert.ok(!text.includes('STDERR-OF-A-FAILING-COMMAND'));
    }
    assert.equal(gw.upstream.requests.length, 0, 'nothing reached the upstream');
    // The source recovers: after the backoff the next request runs it again.
    stand.mode('ok');
    await pollUntil('the command source to recover', async () =>
      (await bearerGet(agent, `${gw.base}${ECHO}`, token)).status === 200 ? true : undefined,
    );
    assert.equal(stand.runs(), 2);
  });

  it('a timeout (children killed too), empty output and a multi-line value are each refused clearly', async (t) => {
    const stand = commandStandIn(t);
    const gw = await gatewayWith(t, stand, ', timeout: 500ms');
    const agent = new Agent();
    const refusal = async (mode: 'slow' | 'empty' | 'leak', name: string) => {
      stand.mode(mode);
      // A fresh agent each time: its own cache entry, outside the others' backoff.
      const answer = await bearerGet(agent, `${gw.base}${ECHO}`, gw.token({ agent: name }));
      assert.equal(answer.status, 502);
      const body = JSON.parse(answer.body) as { error: string; message: string };
      assert.equal(body.error, 'ERR_CREDENTIAL_UNAVAILABLE');
      return body.message;
    };
    assert.match(await refusal('slow', 'agent-slow'), /did not finish within 500 ms \(timeout\)/);
    const sleeper = Number(readFileSync(join(stand.dir, 'sleeper'), 'utf8'));
    await pollUntil("the command's child to be killed", () => {
      try {
        process.kill(sleeper, 0);
        return undefined;
      } catch {
        return true;
      }
    });
    assert.match(await refusal('empty', 'agent-empty'), /printed nothing/);
    assert.match(
      await refusal('leak', 'agent-leak'),
      /printed a value that contains a control character or newline/,
    );
    assert.equal(gw.upstream.requests.length, 0);
  });

  it('a printed credential is used for its ttl, then the command runs again', async (t) => {
    const stand = commandStandIn(t);
    const first = 'gho_first_value_0123456789';
    stand.value(first);
    const gw = await startGatewayFixture(t, {
      credential: `{ command: [${stand.script}], ttl: 2s }`,
    });
    const agent = new Agent({ keepAlive: true });
    t.after(() => agent.destroy());
    const token = gw.token();
    assert.equal((await bearerGet(agent, `${gw.base}${ECHO}`, token)).status, 200);
    const second = 'gho_second_value_9876543210';
    stand.value(second);
    await pollUntil('the credential to be minted again', async () => {
      assert.equal((await bearerGet(agent, `${gw.base}${ECHO}`, token)).status, 200);
      return gw.upstream.requests.at(-1)?.headers.authorization === `token ${second}`;
    });
    assert.equal(stand.runs(), 2, 'refreshed once, not per request');
  });

  it('metrics count mints, cache hits and failures per service and source, never an agent', async (t) => {
    const stand = commandStandIn(t);
    const gw = await startGatewayFixture(t, {
      credential: `{ command: [${stand.script}], ttl: 1h }`,
      topLevel: 'metrics: 127.0.0.1:0',
    });
    const agent = new Agent({ keepAlive: true });
    t.after(() => agent.destroy());
    const alice = gw.token({ agent: 'alice' });
    for (let i = 0; i < 3; i++)
      assert.equal((await bearerGet(agent, `${gw.base}${ECHO}`, alice)).status, 200);
    stand.mode('fail');
    assert.equal(
      (await bearerGet(agent, `${gw.base}${ECHO}`, gw.token({ agent: 'bob' }))).status,
      502,
    );
    const line = await pollUntil('the metrics listener', () =>
      gw
        .stderr()
        .split('\n')
        .find((l) => l.includes('"event":"metrics-listening"')),
    );
    const { address } = JSON.parse(line) as { address: string };
    const text = await (await fetch(`http://${address}/metrics`)).text();
    const value = (event: string) =>
      Number(
        new RegExp(
          `^mintfs_gateway_credential_events_total\\{service="github",source="command",event="${event}"\\} (\\d+)$`,
          'm',
        ).exec(text)?.[1],
      );
    assert.equal(value('mint'), 1);
    assert.equal(value('hit'), 2);
    assert.equal(value('failure'), 1);
    assert.ok(!text.includes('alice') && !text.includes('bob'), 'no agent in a label');
  });
});
