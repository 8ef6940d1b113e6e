/**
 * Revocation and key rotation at the gateway, driven by the real CLI: every
 * change is honoured within 2 seconds, without restarting the gateway.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { inspectToken } from '../../src/token/inspect.js';
import { diagnostics, runCli } from '../helpers/cli.js';
import { curl, type CurlResult } from '../helpers/curl.js';
import { startGatewayFixture, type GatewayFixture } from '../helpers/gateway-fixture.js';
import { pollUntil } from '../helpers/poll.js';

const DEADLINE_MS = 2_000;
const PATH = '/repos/acme/widgets';

function call(gw: GatewayFixture, token: string): Promise<CurlResult> {
  return curl([`${gw.base}/github${PATH}`, '-H', `Authorization: Bearer ${token}`]);
}

function errorOf(res: CurlResult): string {
  return (JSON.parse(res.body) as { error: string }).error;
}

/** Polls until the gateway answers `status` to `token`, failing after the 2 s promise. */
async function answersWithin(
  gw: GatewayFixture,
  token: string,
  status: number,
): Promise<CurlResult> {
  return pollUntil(
    `the gateway to answer ${status}`,
    async () => {
      const res = await call(gw, token);
      return res.status === status ? res : undefined;
    },
    DEADLINE_MS,
  );
}

describe('gateway: revocation', () => {
  it('revoke --token refuses that token within 2 s, with 401 ERR_TOKEN_REVOKED; others still pass', async (t) => {
    const gw = await startGatewayFixture(t);
    const victim = gw.token();
    const bystander = gw.token();
    assert.equal((await call(gw, victim)).status, 200);
    const id = inspectToken(victim).id;

    // --token=<id>: one id in 64 starts with '-', which `--token <id>` would read as flags.
    const revoked = runCli(['revoke', `--token=${id}`, '--keys', gw.keysDir]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const refusal = await answersWithin(gw, victim, 401);
    assert.equal(errorOf(refusal), 'ERR_TOKEN_REVOKED');
    assert.match(refusal.body, new RegExp(`token ${id} was revoked`));
    assert.equal((await call(gw, bystander)).status, 200);
    await pollUntil('the refusal in the audit log', () =>
      gw.requestLogs().some((l) => l.tokenId === id && l.error === 'ERR_TOKEN_REVOKED'),
    );
    const before = gw.upstream.requests.length;
    await call(gw, victim);
    assert.equal(gw.upstream.requests.length, before, 'a revoked token never reaches the upstream');

    const listed = JSON.parse(runCli(['revoke', '--list', '--keys', gw.keysDir]).stdout) as {
      records: Array<{ kind: string; tokenId?: string }>;
    };
    assert.deepEqual(
      listed.records.map((r) => [r.kind, r.tokenId]),
      [['token', id]],
    );
    // mintfs verify honours the same records.
    const verified = runCli([
      'verify',
      victim,
      '--keys',
      gw.keysDir,
      '--service',
      'github',
      '--method',
      'GET',
      '--url',
      `https://localhost${PATH}`,
    ]);
    assert.equal(verified.code, 1);
    assert.match(verified.stderr, /ERR_TOKEN_REVOKED/);
  });

  it('revoke --agent refuses the tokens it held, not ones minted after, nor other agents', async (t) => {
    const gw = await startGatewayFixture(t);
    const held = gw.token();
    const neighbour = gw.token({ agent: 'other-agent' });
    const revoke = runCli(['revoke', '--agent', 'test-agent', '--keys', gw.keysDir]);
    assert.equal(revoke.code, 0, revoke.stderr);
    const before = Date.parse(
      (JSON.parse(revoke.stdout) as { revoked: { before: string } }).revoked.before,
    );
    assert.equal(errorOf(await answersWithin(gw, held, 401)), 'ERR_TOKEN_REVOKED');
    // Issue times are whole seconds: a token from the second after the cut-off on is new.
    const fresh = gw.token({}, new Date(Math.floor(before / 1000) * 1000 + 1_000));
    assert.equal((await call(gw, fresh)).status, 200);
    assert.equal((await call(gw, neighbour)).status, 200);
  });

  it('refuses bad revoke input with one line naming the problem', () => {
    const cases: Array<[string[], RegExp]> = [
      [['revoke'], /give exactly one of --token, --agent or --list/],
      [['revoke', '--token', 'short'], /--token: not a token id/],
      [
        ['revoke', '--token', 'A'.repeat(22), '--before', '2026-11-22T00:00:00Z'],
        /--before: only applies with --agent/,
      ],
      [
        ['revoke', '--agent', 'x', '--before', 'yesterday'],
        /--before: "yesterday" is not an RFC 3339 time/,
      ],
    ];
    const missing = runCli(['revoke', '--agent', 'x', '--keys', '/nonexistent-mintfs-keys']);
    assert.equal(missing.code, 3, 'a missing keyring is an environment failure');
    assert.match(
      diagnostics(missing.stderr)[0] ?? '',
      /keyring \/nonexistent-mintfs-keys does not exist/,
    );
    assert.equal(existsSync('/nonexistent-mintfs-keys'), false, 'nothing created');
    for (const [args, message] of cases) {
      const result = runCli([...args, '--keys', '/nonexistent']);
      assert.equal(result.code, 2, args.join(' '));
      const lines = diagnostics(result.stderr);
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0] as string, message);
    }
  });
});

describe('gateway: key rotation', () => {
  it('accepts tokens of a rotated-in key within 2 s, and refuses a retired key within 2 s', async (t) => {
    const gw = await startGatewayFixture(t);
    const oldToken = gw.token();
    const oldKey = gw.keyring().current.id;
    assert.equal(runCli(['keys', 'rotate', '--keys', gw.keysDir]).code, 0);
    const newToken = gw.token();
    assert.notEqual(inspectToken(newToken).keyId, oldKey);
    await answersWithin(gw, newToken, 200);
    assert.equal((await call(gw, oldToken)).status, 200, 'the old key still verifies');

    assert.equal(runCli(['keys', 'retire', oldKey, '--keys', gw.keysDir]).code, 0);
    const refusal = await answersWithin(gw, oldToken, 401);
    assert.equal(errorOf(refusal), 'ERR_KEY_RETIRED');
    assert.equal((await call(gw, newToken)).status, 200);
  });

  it('SIGHUP reloads keys, revocations and credentials at once', async (t) => {
    const gw = await startGatewayFixture(t);
    gw.child.kill('SIGHUP');
    await pollUntil('the reload lines', () =>
      ['keyring-reloaded', 'revocations-reloaded'].every((event) =>
        gw.stderr().includes(`"event":"${event}","reason":"SIGHUP"`),
      ),
    );
    assert.equal(gw.child.exitCode, null);
    assert.equal((await call(gw, gw.token())).status, 200);
  });
});
