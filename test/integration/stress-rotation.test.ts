/**
 * Everything changes while agents keep working: under a loop of readers (one
 * in a slave mount namespace, as in a container) and a loop of gateway
 * requests that each read a fresh token, we rotate the root key, edit the
 * profile, rotate the upstream credential, revoke the agent, restart the
 * mount daemon (takeover) and retire the old key. Not one read or request
 * may fail, except the requests the revocation is meant to stop, and no
 * loop may stall: the longest gap between two reads, or two answers from the
 * gateway, stays under a budget (ten times what a loaded CI machine shows, so
 * it fails on an outage, such as a restart without takeover, not on noise).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { readdirSync, renameSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeFileAtomic } from '../../src/keys/atomic-write.js';
import { inspectToken } from '../../src/token/inspect.js';
import { runCli } from '../helpers/cli.js';
import {
  CREDENTIAL,
  bearerGet,
  startGatewayFixture,
  upstreamProfile,
} from '../helpers/gateway-fixture.js';
import { startMountFixture } from '../helpers/mount-fixture.js';
import { pollUntil } from '../helpers/poll.js';
import { longestGap, startReadLoop, type ReadSample } from '../helpers/read-loop.js';
import { teardownOf } from '../helpers/temp.js';

const PROFILE = upstreamProfile('test-agent', 'ttl: 5m\n');
/** Longest a reader may go without a read (seen: under 100 ms). */
const READ_GAP_BUDGET_MS = 1_000;
/** Longest the request loop may go without an answer, allowed or refused (seen: under 300 ms). */
const ANSWER_GAP_BUDGET_MS = 3_000;

interface Call {
  readonly at: number;
  readonly status: number;
  readonly error?: string;
  readonly issuedAt: number;
  readonly keyId: string;
}

const get = bearerGet;

describe('rotation and revocation under load', () => {
  it('rotate keys, edit the profile, rotate the credential, revoke the agent, restart the daemon: nothing else fails', async (t) => {
    const teardown = teardownOf(t);
    const gw = await startGatewayFixture(t);
    const mount = await startMountFixture(t, PROFILE, { keysDir: gw.keysDir, sharedParent: true });
    const tokenFile = join(mount.mountpoint, 'github/token');

    const inNamespace = await startReadLoop(tokenFile, teardown, { namespace: true });
    const onHost = await startReadLoop(tokenFile, teardown);
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    t.after(() => agent.destroy());
    const calls: Call[] = [];
    let running = true;
    const requestLoop = (async () => {
      while (running) {
        // Every request reads a fresh token, as an agent running `$(cat ...)` would.
        const token = await readFile(tokenFile, 'utf8');
        const facts = inspectToken(token);
        const res = await get(agent, `${gw.base}/github/repos/acme/widgets/pulls`, token);
        calls.push({
          at: Date.now(),
          status: res.status,
          issuedAt: Date.parse(facts.issuedAt),
          keyId: facts.keyId,
          ...(res.status === 200
            ? {}
            : { error: (JSON.parse(res.body) as { error: string }).error }),
        });
      }
    })();
    // An agent that holds one token for minutes: the revocation is meant to stop it.
    const held = await readFile(tokenFile, 'utf8');
    const heldCalls: Call[] = [];
    let holding = true;
    const holderLoop = (async () => {
      while (holding) {
        const res = await get(agent, `${gw.base}/github/repos/acme/widgets/pulls`, held);
        heldCalls.push({
          at: Date.now(),
          status: res.status,
          issuedAt: Date.parse(inspectToken(held).issuedAt),
          keyId: inspectToken(held).keyId,
          ...(res.status === 200
            ? {}
            : { error: (JSON.parse(res.body) as { error: string }).error }),
        });
      }
    })();
    const okCallsAfter = (at: number, more = 10) =>
      calls.filter((c) => c.status === 200 && c.at > at).length >= more;
    const from = Date.now();
    await pollUntil('the loops to run', () => okCallsAfter(from));

    // 1. Root key rotation.
    const oldKey = gw.keyring().current.id;
    const { keyId: newKey } = JSON.parse(
      runCli(['keys', 'rotate', '--keys', gw.keysDir]).stdout,
    ) as {
      keyId: string;
    };
    await pollUntil('requests with the new key', () =>
      calls.some((c) => c.status === 200 && c.keyId === newKey),
    );

    // 2. Profile edit: a new file, and wider methods on the token.
    const aside = `${mount.profileFile}.new`;
    writeFileSync(
      aside,
      PROFILE.replace('methods: [GET]', 'methods: [GET, HEAD]').concat(
        '  github/token.line:\n    service: github\n    hosts: [localhost]\n    methods: [GET]\n    paths: ["/repos/**"]\n    format: line\n',
      ),
    );
    renameSync(aside, mount.profileFile);
    await pollUntil('the new file', () =>
      readdirSync(join(mount.mountpoint, 'github')).includes('token.line'),
    );

    // 3. Upstream credential rotation.
    const rotated = `${CREDENTIAL}-rotated`;
    const seenBefore = gw.upstream.requests.length;
    writeFileAtomic(gw.credentialFile, `${rotated}\n`, { mode: 0o600 });
    await pollUntil('the new credential upstream', () =>
      gw.upstream.requests
        .slice(seenBefore)
        .some((r) => r.headers.authorization === `token ${rotated}`),
    );

    // 4. Revoke the agent: the tokens it holds now stop working; the next ones work.
    const revoke = runCli(['revoke', '--agent', 'test-agent', '--keys', gw.keysDir]);
    assert.equal(revoke.code, 0, revoke.stderr);
    const revokeReturned = Date.now();
    // The cut-off the CLI recorded: tokens issued (in whole seconds) before it are revoked.
    const revokedAt = Date.parse(
      (JSON.parse(revoke.stdout) as { revoked: { before: string } }).revoked.before,
    );
    await pollUntil('requests with tokens minted after the revocation', () =>
      calls.some((c) => c.status === 200 && c.issuedAt >= revokedAt),
    );
    const stopped = await pollUntil(
      'the held token to be refused',
      () => heldCalls.find((c) => c.error === 'ERR_TOKEN_REVOKED'),
      2_000 + 1_000,
    );
    assert.ok(
      stopped.at - revokedAt < 2_000,
      `revocation honoured after ${stopped.at - revokedAt} ms`,
    );
    holding = false;
    await holderLoop;
    // Before the revocation the held token worked; from its first refusal on, never again.
    const firstRefusal = heldCalls.indexOf(stopped);
    assert.ok(
      heldCalls.slice(0, firstRefusal).every((c) => c.status === 200 && c.at < revokedAt + 2_000),
    );
    assert.ok(heldCalls.slice(firstRefusal).every((c) => c.error === 'ERR_TOKEN_REVOKED'));

    // 5. Restart the mount daemon without a gap.
    const old = mount.child;
    const oldExit = new Promise<number | null>((resolve) => old.once('exit', resolve));
    await mount.restart(['--takeover']);
    assert.equal(await oldExit, 0);
    const restarted = Date.now();
    await pollUntil('requests after the restart', () => okCallsAfter(restarted));

    // 6. Retire the old key.
    assert.equal(runCli(['keys', 'retire', oldKey, '--keys', gw.keysDir]).code, 0);
    const retired = Date.now();
    await pollUntil('requests after the retirement', () => okCallsAfter(retired));

    running = false;
    await requestLoop;
    const to = Date.now();
    const reads: Array<[string, readonly ReadSample[]]> = [
      ['reader in a slave namespace', await inNamespace.stop()],
      ['reader on the host', await onHost.stop()],
    ];

    for (const [name, samples] of reads) {
      assert.deepEqual(
        samples.filter((s) => !s.ok),
        [],
        `${name}: no failed reads`,
      );
      const gap = longestGap(samples, from, to);
      t.diagnostic(`${name}: ${samples.length} reads, longest gap ${gap.toFixed(1)} ms`);
      assert.ok(gap < READ_GAP_BUDGET_MS, `${name}: no read for ${gap.toFixed(0)} ms`);
    }
    // Only the revocation may refuse a request, and only for tokens minted before it
    // (issue times are whole seconds, so tokens of the revocation's own second count).
    const unexpected = calls.filter(
      (c) => c.status !== 200 && !(c.error === 'ERR_TOKEN_REVOKED' && c.issuedAt < revokedAt),
    );
    assert.deepEqual(unexpected, [], 'no request failed except revoked ones');
    const refused = calls.filter((c) => c.status !== 200).length;
    const ok = calls.filter((c) => c.status === 200).map((c) => ({ at: c.at, ok: true, text: '' }));
    const answers = calls.map((c) => ({ at: c.at, ok: true, text: '' }));
    const answerGap = longestGap(answers, from, to);
    assert.ok(
      answerGap < ANSWER_GAP_BUDGET_MS,
      `the gateway answered nothing for ${answerGap.toFixed(0)} ms`,
    );
    t.diagnostic(
      `held token: refused ${stopped.at - revokeReturned} ms after mintfs revoke returned`,
    );
    t.diagnostic(
      `gateway: ${calls.length} requests, ${refused} refused by the revocation, longest gap between answers ${answerGap.toFixed(1)} ms, between successes ${longestGap(ok, from, to).toFixed(1)} ms (the revocation refuses held tokens until the loop reads a fresh one)`,
    );
    const afterRotation = gw.upstream.requests.slice(
      gw.upstream.requests.findIndex((r) => r.headers.authorization === `token ${rotated}`),
    );
    assert.ok(afterRotation.every((r) => r.headers.authorization === `token ${rotated}`));
  });
});
