/**
 * Attacks on approval found in review: a held request the condition should
 * name but misses (case), a preview that hides what the approver judges or
 * leaks the end of a token, and agent-chosen text that repaints the
 * approver's terminal.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import macaroon from 'macaroon';
import { createHash } from 'node:crypto';
import {
  checkDischarge,
  mintDischarge,
  type ApprovedRequest,
} from '../../src/approval/discharge.js';
import { bodyPreview } from '../../src/approval/service.js';
import { bodyTypeOf } from '../../src/gateway/approval-gate.js';
import { formatPending } from '../../src/cli/commands/approvals.js';
import {
  ApprovalConditionSchema,
  dischargeRootKey,
  openTicket,
  sealTicket,
} from '../../src/token/approval-ticket.js';
import { RootKey } from '../../src/token/root-key.js';
import {
  chainWithThirdParty,
  deriveMacaroonKey,
  derivedKeyOf,
  encodeMacaroonV2,
  type PlacedThirdParty,
} from '../../src/token/macaroon-codec.js';
import {
  MAX_CAVEAT_ID_BYTES,
  MacaroonDecodeError,
  decodeMacaroonV2,
} from '../../src/token/macaroon-decode.js';
import { mintToken, type TokenGrant } from '../../src/token/mint.js';
import { openVerificationId, sameBytes } from '../../src/token/third-party.js';
import { authenticateToken, verifyToken } from '../../src/token/verify.js';
import { GRANT, NOW, keyLookup, newKey } from '../helpers/tokens.js';

const WIDE: TokenGrant = {
  ...GRANT,
  methods: ['GET', 'PUT', 'DELETE'],
  paths: ['/repos/**'],
  approval: { methods: ['PUT', 'DELETE'], paths: ['/repos/acme/widgets/**'] },
};

function mint(grant: TokenGrant) {
  const key = newKey();
  return {
    key,
    token: mintToken(grant, { key, now: NOW, tokenId: 'AAAAAAAAAAAAAAAAAAAAAA' }).token,
  };
}

describe('approval conditions fail closed on case', () => {
  it('a path in another case (GitHub owners and repositories ignore case) still waits', () => {
    const { key, token } = mint(WIDE);
    const context = { keyById: keyLookup(key), now: NOW };
    for (const rawPath of [
      '/repos/acme/widgets/git/refs/heads/main',
      '/repos/ACME/widgets/git/refs/heads/main',
      '/repos/Acme/Widgets/git/refs/heads/main',
      '/repos/acme/WIDGETS/contents/README.md',
    ]) {
      const verdict = verifyToken(
        token,
        { service: 'github', host: 'api.github.com', method: 'DELETE', rawPath },
        context,
      );
      assert.equal(!verdict.allowed && verdict.code, 'ERR_APPROVAL_REQUIRED', rawPath);
    }
    // Paths outside the condition still go at once.
    const other = verifyToken(
      token,
      {
        service: 'github',
        host: 'api.github.com',
        method: 'DELETE',
        rawPath: '/repos/acme/gadgets/x',
      },
      context,
    );
    assert.equal(other.allowed, true);
  });
});

describe('what a decision binds', () => {
  it('how the body is read: the same bytes under another Content-Type or Content-Encoding are another request', () => {
    const { key, token } = mint(WIDE);
    const auth = authenticateToken(token, keyLookup(key));
    assert.ok(!('allowed' in auth));
    const caveat = auth.approvals[0];
    assert.ok(caveat !== undefined);
    const body = Buffer.from('{"message":"x","content":"aGk="}');
    const held: ApprovedRequest = {
      method: 'PUT',
      host: 'api.github.com',
      target: '/repos/acme/widgets/contents/x',
      bodySha256: createHash('sha256').update(body).digest('hex'),
      bodyType: bodyTypeOf(['Content-Type', 'application/json']),
    };
    const terms = {
      decisionId: 'dec_0123456789',
      expiresAt: new Date(NOW.getTime() + 60_000),
      uses: 3,
    };
    const discharge = mintDischarge(
      caveat.caveatId,
      dischargeRootKey(key, caveat.caveatId),
      auth.signature,
      held,
      terms,
    );
    assert.equal(checkDischarge(caveat, auth.signature, discharge, held, NOW).ok, true);
    for (const raw of [
      ['Content-Type', 'application/x-www-form-urlencoded'],
      ['Content-Type', 'application/json', 'Content-Encoding', 'gzip'],
      // Node keeps the first Content-Type; the upstream gets both and may read the last.
      ['Content-Type', 'application/json', 'content-type', 'text/plain'],
      [],
    ]) {
      const other = checkDischarge(
        caveat,
        auth.signature,
        discharge,
        { ...held, bodyType: bodyTypeOf(raw) },
        NOW,
      );
      assert.equal(other.ok, false, JSON.stringify(raw));
    }
  });
});

describe('long approval conditions', () => {
  it('a condition the profile accepts mints a ticket whose discharge decodes and checks', () => {
    const grant: TokenGrant = {
      ...WIDE,
      approval: {
        methods: ['POST', 'PUT', 'PATCH', 'DELETE'],
        paths: [
          '/repos/acme/widgets/pulls/*/merge',
          '/repos/acme/widgets/git/refs/heads/**',
          '/repos/acme/widgets/contents/.github/workflows/**',
          '/repos/acme/widgets/branches/*/protection/**',
        ],
      },
    };
    assert.equal(ApprovalConditionSchema.safeParse(grant.approval).success, true);
    const { key, token } = mint(grant);
    const auth = authenticateToken(token, keyLookup(key));
    assert.ok(!('allowed' in auth), JSON.stringify(auth));
    const caveat = auth.approvals[0];
    assert.ok(caveat !== undefined);
    const held: ApprovedRequest = {
      method: 'PUT',
      host: 'api.github.com',
      target: '/repos/acme/widgets/pulls/7/merge',
      bodySha256: createHash('sha256').digest('hex'),
      bodyType: '\n',
    };
    const terms = {
      decisionId: 'dec_0123456789',
      expiresAt: new Date(NOW.getTime() + 60_000),
      uses: 1,
    };
    const discharge = mintDischarge(
      caveat.caveatId,
      dischargeRootKey(key, caveat.caveatId),
      auth.signature,
      held,
      terms,
    );
    const checked = checkDischarge(caveat, auth.signature, discharge, held, NOW);
    assert.ok(checked.ok, JSON.stringify(checked));
  });
});

describe('the size of a condition', () => {
  it('the profile refuses a condition whose ticket would be over the caveat id limit; the longest it accepts fits', () => {
    const glob = (i: number) => `/repos/acme/widgets-${String(i).padStart(2, '0')}/pulls/*/merge`;
    const longest = (n: number) => ({
      methods: ['PUT'],
      paths: Array.from({ length: n }, (_, i) => glob(i)),
    });
    let n = 1;
    while (ApprovalConditionSchema.safeParse(longest(n + 1)).success) n++;
    const refused = ApprovalConditionSchema.safeParse(longest(n + 1));
    assert.equal(refused.success, false);
    assert.match(refused.error?.issues[0]?.message ?? '', /fewer or shorter paths/);
    // With the longest key id a keyring may use.
    const key = new RootKey('k'.repeat(64), Buffer.alloc(32, 7));
    const ticket = sealTicket(key, longest(n));
    assert.ok(ticket.length <= MAX_CAVEAT_ID_BYTES, `${ticket.length} bytes`);
    assert.equal(openTicket(key, ticket).ok, true);
  });
});

describe('the preview an approver judges', () => {
  it('shows a commit SHA and other long words: only a mintfs token is masked', () => {
    const sha = 'b3f1c0de9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d';
    const content = 'QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ';
    const preview = bodyPreview(Buffer.from(JSON.stringify({ sha, force: true, content })));
    assert.ok(preview.includes(sha), preview);
    assert.ok(preview.includes(content), preview);

    const { token } = mint(WIDE);
    const withToken = bodyPreview(Buffer.from(`{"note":"${token}"}`));
    assert.ok(!withToken.includes(token.slice(-40)), withToken);
    assert.match(withToken, /a mintfs token, \d+ characters, masked/);
  });

  it('never shows the end of a token the cut falls inside (its signature)', () => {
    const { token } = mint(WIDE);
    const body = Buffer.from(`${'x '.repeat(1000)}${token} tail`);
    // The cut falls a few characters before the token's end.
    const preview = bodyPreview(body, 2000 + token.length - 3);
    assert.ok(!preview.includes(token.slice(-46, -3)), preview);
    assert.ok(!preview.includes(token.slice(0, 60)), preview);
  });

  it('blank padding cannot push the rest of the body past the cut', () => {
    const body = Buffer.from(`{"title":"fix typo",${' '.repeat(5000)}"title":"rm -rf"}`);
    const preview = bodyPreview(body);
    assert.match(preview, /\[5000 blank characters\]"title":"rm -rf"/);
  });

  it('escapes what would repaint the terminal: ESC, CR, bidi overrides', () => {
    const body = Buffer.from('{"title":"ok"}\r\u001b[2K{"title":"harmless"}\u202edelete\u202c');
    const preview = bodyPreview(body);
    assert.ok(!/[\u0000-\u0008\u000b-\u001f\u202e\u202c]/.test(preview), JSON.stringify(preview));
    assert.match(preview, /\\u\{1b\}/);
    assert.match(preview, /\\u\{202e\}/);
  });

  it('the terminal listing shows each held body, and no agent-chosen field carries a control character', () => {
    const text = formatPending([
      {
        id: 'apr_0123456789ab',
        agent: 'coder',
        method: 'POST',
        host: 'api.github.com',
        path: '/repos/acme/widgets/pulls/7/merge',
        query: '?x=\u001b[1A',
        bodyBytes: 40,
        bodyPreview: '{"merge_method":"squash"}\r\u001b[2Kfine',
        timesOutAt: '2026-12-07T06:00:00.000Z',
      },
    ]);
    assert.match(text, /squash/);
    assert.ok(!/[\u0000-\u0009\u000b-\u001f]/.test(text), JSON.stringify(text));
  });
});

/** One caveat in order, as either decoder reads it. */
interface Step {
  id: string;
  vid?: string;
  location?: string;
}

function oursInOrder(decoded: ReturnType<typeof decodeMacaroonV2>): Step[] {
  const steps: Step[] = [];
  let next = 0;
  for (let i = 0; i <= decoded.caveats.length; i++) {
    for (; next < decoded.thirdParty.length && decoded.thirdParty[next]?.after === i; next++) {
      const { caveat } = decoded.thirdParty[next] as PlacedThirdParty;
      steps.push({
        id: caveat.caveatId.toString('hex'),
        vid: caveat.verificationId.toString('hex'),
        location: caveat.location,
      });
    }
    if (i < decoded.caveats.length)
      steps.push({ id: (decoded.caveats[i] as Buffer).toString('hex') });
  }
  return steps;
}

function theirsInOrder(mac: ReturnType<typeof macaroon.importMacaroon>): Step[] {
  return mac.caveats.map((c) =>
    c.vid === undefined || c.vid === null
      ? { id: Buffer.from(c.identifier).toString('hex') }
      : {
          id: Buffer.from(c.identifier).toString('hex'),
          vid: Buffer.from(c.vid).toString('hex'),
          location: c.location ?? '',
        },
  );
}

/**
 * The package's macaroon (caveats and signature as the package computed them)
 * in V2 bytes: its own exportBinary() fails past about six caveats
 * (test/unit/macaroon-package-bug.test.ts).
 */
function encodedByUs(mac: ReturnType<typeof macaroon.importMacaroon>): Buffer {
  const caveats: Buffer[] = [];
  const thirdParty: PlacedThirdParty[] = [];
  for (const c of mac.caveats) {
    if (c.vid === undefined || c.vid === null) caveats.push(Buffer.from(c.identifier));
    else
      thirdParty.push({
        after: caveats.length,
        caveat: {
          location: c.location ?? '',
          caveatId: Buffer.from(c.identifier),
          verificationId: Buffer.from(c.vid),
        },
      });
  }
  return encodeMacaroonV2({
    location: mac.location,
    identifier: mac.identifier,
    caveats,
    thirdParty,
    signature: mac.signature,
  });
}

const appended = fc.array(
  fc.oneof(
    fc.record({
      kind: fc.constant('first' as const),
      text: fc.stringMatching(/^[a-z]{1,8} [ -~]{1,30}$/),
    }),
    fc.record({
      kind: fc.constant('third' as const),
      rootKey: fc.uint8Array({ minLength: 1, maxLength: 40 }),
      copyTicket: fc.boolean(),
      id: fc.uint8Array({ minLength: 1, maxLength: 80 }),
    }),
  ),
  { maxLength: 4 },
);

describe('approval tokens against the macaroon package (third-party caveats)', () => {
  it('holder-appended first- and third-party caveats: both read the same caveats and agree on the signature', () => {
    fc.assert(
      fc.property(
        appended,
        fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), {
          maxLength: 3,
        }),
        (steps, flips) => {
          const { key, token } = mint(WIDE);
          const mac = macaroon.importMacaroon(Uint8Array.from(Buffer.from(token, 'base64url')));
          const ticket = Buffer.from(mac.caveats.at(-1)?.identifier ?? []);
          // Each third-party caveat's root key, to discharge it with.
          const rootKeys = [dischargeRootKey(key, ticket)];
          const ids = [ticket];
          for (const step of steps) {
            if (step.kind === 'first') mac.addFirstPartyCaveat(step.text);
            else {
              const id = step.copyTicket ? ticket : Buffer.from(step.id);
              mac.addThirdPartyCaveat(step.rootKey, id, 'mintfs-approval');
              rootKeys.push(Buffer.from(step.rootKey));
              ids.push(id);
            }
          }
          const bytes = encodedByUs(mac);
          for (const flip of flips) bytes[flip.at % bytes.length] = flip.value;
          let theirs;
          try {
            theirs = macaroon.importMacaroon(Uint8Array.from(bytes));
          } catch {
            theirs = undefined;
          }
          let mine;
          try {
            mine = decodeMacaroonV2(bytes);
          } catch (err) {
            assert.ok(err instanceof MacaroonDecodeError, String(err));
            mine = undefined;
          }
          if (mine === undefined) return;
          assert.ok(theirs !== undefined, 'we decoded what the reference could not');
          assert.deepEqual(oursInOrder(mine), theirsInOrder(theirs));
          // Signatures: ours (chain, then each vid opens to its caveat's key) and
          // theirs (verify with a bound discharge for each third-party caveat).
          const chain = chainWithThirdParty(
            derivedKeyOf(key.secret),
            mine.identifier,
            mine.caveats,
            mine.thirdParty,
          );
          const oursOk =
            sameBytes(chain.signature, mine.signature) &&
            mine.thirdParty.length === rootKeys.length &&
            mine.thirdParty.every((t, i) => {
              const opened = openVerificationId(chain.before[i] as Buffer, t.caveat.verificationId);
              return (
                opened !== undefined &&
                sameBytes(opened, deriveMacaroonKey(rootKeys[i] as Buffer)) &&
                sameBytes(t.caveat.caveatId, ids[i] as Buffer)
              );
            });
          let theirsOk = true;
          try {
            const discharges = mine.thirdParty.map((t, i) => {
              const d = macaroon.newMacaroon({
                identifier: Uint8Array.from(t.caveat.caveatId),
                location: 'mintfs-approval',
                rootKey: Uint8Array.from(rootKeys[i] ?? Buffer.alloc(1)),
                version: 2,
              });
              d.bindToRoot(theirs.signature);
              return d;
            });
            theirs.verify(key.secret, () => null, discharges);
          } catch {
            theirsOk = false;
          }
          // The package finds a discharge by caveat id: two caveats with one id
          // (a holder's copy of the ticket) it cannot tell apart, so it judges
          // only tokens whose ids differ.
          const distinct = new Set(mine.thirdParty.map((t) => t.caveat.caveatId.toString('hex')));
          if (distinct.size === mine.thirdParty.length) assert.equal(oursOk, theirsOk);
        },
      ),
      { numRuns: 400 },
    );
  });
});
