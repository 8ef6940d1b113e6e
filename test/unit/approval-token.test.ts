/**
 * Approval caveats in tokens: a standard third-party caveat (location, a
 * ticket only the gateway's keys open, a verification id), discharges bound
 * to one token and one request, checked against the `macaroon` package and
 * pymacaroons, independent implementations of the same format.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import macaroon from 'macaroon';
import { dischargeRootKey, openTicket, sealTicket } from '../../src/token/approval-ticket.js';
import {
  bindDischargeTo,
  checkDischarge,
  mintDischarge,
  mintUnboundDischarge,
  type ApprovedRequest,
} from '../../src/approval/discharge.js';
import { openRecord, sealRecord } from '../../src/approval/sealed-record.js';
import { RootKey } from '../../src/token/root-key.js';
import { attenuateToken } from '../../src/token/attenuate.js';
import { inspectToken } from '../../src/token/inspect.js';
import {
  chainSignature,
  deriveMacaroonKey,
  encodeMacaroonV2,
} from '../../src/token/macaroon-codec.js';
import { sealVerificationId, signThirdParty } from '../../src/token/third-party.js';
import { mintToken, type TokenGrant } from '../../src/token/mint.js';
import { decodeToken, encodeTokenText } from '../../src/token/token-text.js';
import {
  authenticateToken,
  authorizeRequest,
  verifyToken,
  type ApprovalCaveat,
} from '../../src/token/verify.js';
import { runSync } from '../helpers/spawn.js';
import { ApprovalService } from '../../src/approval/service.js';
import { createLogger } from '../../src/log/logger.js';
import { GRANT, NOW, appendRawCaveats, keyLookup, newKey } from '../helpers/tokens.js';

const APPROVING: TokenGrant = {
  ...GRANT,
  methods: ['GET', 'POST', 'PUT'],
  paths: ['/repos/acme/widgets/**'],
  approval: { methods: ['POST', 'PUT'], paths: ['/repos/acme/widgets/pulls/*/merge'] },
};
const MERGE = {
  service: 'github',
  host: 'api.github.com',
  method: 'PUT',
  rawPath: '/repos/acme/widgets/pulls/7/merge',
};
const EMPTY_SHA = createHash('sha256').digest('hex');
const HELD: ApprovedRequest = {
  method: 'PUT',
  host: 'api.github.com',
  target: '/repos/acme/widgets/pulls/7/merge',
  bodySha256: EMPTY_SHA,
  bodyType: '\n',
};
const TERMS = {
  decisionId: 'dec_0123456789',
  expiresAt: new Date(NOW.getTime() + 60_000),
  uses: 1,
};

function mintApproving(key = newKey(), tokenId = 'AAAAAAAAAAAAAAAAAAAAAA') {
  return { key, token: mintToken(APPROVING, { key, now: NOW, tokenId }).token };
}

function approvalOf(
  token: string,
  key: ReturnType<typeof newKey>,
): { caveat: ApprovalCaveat; signature: Buffer } {
  const auth = authenticateToken(token, keyLookup(key));
  assert.ok(!('allowed' in auth), JSON.stringify(auth));
  assert.equal(auth.approvals.length, 1);
  return { caveat: auth.approvals[0] as ApprovalCaveat, signature: auth.signature };
}

describe('approval caveats in tokens', () => {
  it('a request the condition names needs approval; others of the token do not', () => {
    const { key, token } = mintApproving();
    const context = { keyById: keyLookup(key), now: NOW };
    const merge = verifyToken(token, MERGE, context);
    assert.equal(merge.allowed, false);
    assert.equal(!merge.allowed && merge.code, 'ERR_APPROVAL_REQUIRED');
    assert.equal(!merge.allowed && merge.approvals?.length, 1);
    assert.equal(verifyToken(token, { ...MERGE, method: 'GET' }, context).allowed, true);
    assert.equal(
      verifyToken(
        token,
        { ...MERGE, method: 'POST', rawPath: '/repos/acme/widgets/issues' },
        context,
      ).allowed,
      true,
    );
    // Other caveats still judge first: a path outside the token is a plain refusal.
    const outside = verifyToken(
      token,
      { ...MERGE, rawPath: '/repos/acme/other/pulls/7/merge' },
      context,
    );
    assert.equal(!outside.allowed && outside.code, 'ERR_CAVEAT_UNSATISFIED');
  });

  it('the ticket opens only under the key that signed the token, and is deterministic', () => {
    const key = newKey();
    const ticket = sealTicket(key, APPROVING.approval!);
    assert.deepEqual(sealTicket(key, APPROVING.approval!), ticket);
    assert.deepEqual(openTicket(key, ticket), {
      ok: true,
      keyId: key.id,
      condition: APPROVING.approval,
    });
    assert.equal(openTicket(newKey(key.id), ticket).ok, false, 'same id, other secret');
    const flipped = Buffer.from(ticket);
    flipped[flipped.length - 3] = flipped[flipped.length - 3] === 0x41 ? 0x42 : 0x41;
    assert.equal(openTicket(key, flipped).ok, false);
    assert.ok(!ticket.toString().includes('merge'), 'the condition is sealed');
  });

  it('the macaroon package and pymacaroons verify the token with a discharge mintfs binds, and not without', () => {
    const { key, token } = mintApproving();
    const { caveat, signature } = approvalOf(token, key);
    const ticket = caveat.caveatId;
    const discharge = mintDischarge(ticket, dischargeRootKey(key, ticket), signature, HELD, TERMS);
    // The reference package: a standard third-party caveat and a bound discharge.
    const primary = macaroon.importMacaroon(Uint8Array.from(Buffer.from(token, 'base64url')));
    const bound = macaroon.importMacaroon(Uint8Array.from(discharge));
    assert.equal(primary.caveats.at(-1)?.location, 'mintfs-approval');
    const anything = () => null;
    assert.doesNotThrow(() => primary.verify(key.secret, anything, [bound]));
    assert.throws(() => primary.verify(key.secret, anything, []), /cannot find discharge/);
    // pymacaroons: ours verifies, and a discharge pymacaroons makes and binds
    // (prepare_for_request) from the ticket and its root key is one we accept.
    const py = runSync(
      '/usr/bin/python3',
      ['-c', PY_DISCHARGE],
      'pymacaroons to verify and discharge',
      {
        input: JSON.stringify({
          token,
          key: key.secret.toString('hex'),
          discharge: discharge.toString('base64url'),
          ticket: ticket.toString('latin1'),
          rk: dischargeRootKey(key, ticket).toString('hex'),
          caveats: [
            `time-before 2026-11-22T01:19:00Z`,
            `request ${requestDigestOf(HELD)}`,
            'uses 1',
            'decision dec_pymacaroons',
          ],
        }),
      },
    );
    const result = JSON.parse(py) as { ours: boolean; none: boolean; theirs: string };
    assert.equal(result.ours, true, 'pymacaroons verifies a discharge mintfs bound');
    assert.equal(result.none, false, 'pymacaroons refuses the token without a discharge');
    const theirs = Buffer.from(result.theirs.replace(/=+$/, ''), 'base64url');
    const checked = checkDischarge(caveat, signature, theirs, HELD, NOW);
    assert.ok(checked.ok, JSON.stringify(checked));
  });

  it('refuses a discharge for another request, for another token, unbound, expired, or for another ticket', () => {
    const { key, token } = mintApproving();
    const { caveat, signature } = approvalOf(token, key);
    const rk = dischargeRootKey(key, caveat.caveatId);
    const good = mintDischarge(caveat.caveatId, rk, signature, HELD, TERMS);
    assert.ok(checkDischarge(caveat, signature, good, HELD, NOW).ok);
    const reason = (d: Buffer, request = HELD, now = NOW) => {
      const checked = checkDischarge(caveat, signature, d, request, now);
      assert.equal(checked.ok, false);
      return checked.ok ? '' : checked.reason;
    };
    assert.match(
      reason(good, { ...HELD, target: '/repos/acme/widgets/pulls/8/merge' }),
      /another request/,
    );
    assert.match(reason(good, { ...HELD, bodySha256: '0'.repeat(64) }), /another request/);
    assert.match(reason(good, HELD, TERMS.expiresAt), /expired/);
    // Bound to another token of the same file (same ticket, same caveat key).
    const other = mintApproving(key, 'BBBBBBBBBBBBBBBBBBBBBB');
    const otherSig = approvalOf(other.token, key).signature;
    assert.match(reason(mintDischarge(caveat.caveatId, rk, otherSig, HELD, TERMS)), /not bound/);
    // Not bound at all: the discharge's own signature.
    const unbound = decodeDischargeUnbound(caveat.caveatId, rk);
    assert.match(reason(unbound), /not bound/);
    // Signed with a key that is not the ticket's.
    assert.match(
      reason(mintDischarge(caveat.caveatId, Buffer.alloc(32, 7), signature, HELD, TERMS)),
      /not bound/,
    );
    // For a ticket of another condition.
    const ticket2 = sealTicket(key, { methods: ['DELETE'] });
    assert.match(
      reason(mintDischarge(ticket2, dischargeRootKey(key, ticket2), signature, HELD, TERMS)),
      /another approval caveat/,
    );
  });

  it('attenuation keeps the approval caveat; a holder cannot drop it, swap it, or add one that opens', () => {
    const { key, token } = mintApproving();
    const context = { keyById: keyLookup(key), now: NOW };
    const narrowed = attenuateToken(token, ['method PUT']);
    assert.equal(inspectToken(narrowed).thirdPartyCaveats?.length, 1);
    const verdict = verifyToken(narrowed, MERGE, context);
    assert.equal(!verdict.allowed && verdict.code, 'ERR_APPROVAL_REQUIRED');
    // Dropping the third-party caveat breaks the chain.
    const decoded = decodeToken(token);
    const dropped = encodeTokenText(
      encodeMacaroonV2({
        location: decoded.location,
        identifier: decoded.identifier,
        caveats: decoded.caveatBytes,
        signature: decoded.signature,
      }),
    );
    assert.equal(
      (verifyToken(dropped, MERGE, context) as { code?: string }).code,
      'ERR_TOKEN_SIGNATURE',
    );
    // A caveat appended with a ticket sealed under another key is refused outright.
    const foreign = sealTicket(newKey(key.id), { methods: ['GET'] });
    const appended = appendThirdParty(token, foreign);
    const refused = verifyToken(appended, { ...MERGE, method: 'GET' }, context);
    assert.equal(!refused.allowed && refused.code, 'ERR_CAVEAT_MALFORMED');
    // First-party caveats appended after it still narrow.
    const after = appendRawCaveats(token, ['method GET']);
    assert.equal(verifyToken(after, { ...MERGE, method: 'GET' }, context).allowed, true);
    assert.equal(authorizeRequest(approvalAuth(after, key), MERGE, NOW).allowed, false);
  });

  it('a third-party caveat for another location is refused when the token is decoded', () => {
    const { token } = mintApproving();
    const decoded = decodeToken(token);
    const [placed] = decoded.thirdParty;
    const moved = encodeTokenText(
      encodeMacaroonV2({
        location: decoded.location,
        identifier: decoded.identifier,
        caveats: decoded.caveatBytes,
        thirdParty: [{ ...placed!, caveat: { ...placed!.caveat, location: 'https://elsewhere' } }],
        signature: decoded.signature,
      }),
    );
    assert.throws(() => decodeToken(moved), /third-party caveat for "https:\/\/elsewhere"/);
  });
});

function approvalAuth(token: string, key: ReturnType<typeof newKey>) {
  const auth = authenticateToken(token, keyLookup(key));
  assert.ok(!('allowed' in auth));
  return auth;
}

function requestDigestOf(request: ApprovedRequest): string {
  return createHash('sha256')
    .update(
      [request.method, request.host, request.target, request.bodySha256, request.bodyType].join(
        '\n',
      ),
    )
    .digest('hex');
}

/** A discharge with its own (unbound) signature, as its third party signs it. */
function decodeDischargeUnbound(ticket: Buffer, rk: Buffer): Buffer {
  const caveats = [
    'time-before 2026-11-22T01:19:00Z',
    `request ${requestDigestOf(HELD)}`,
    'uses 1',
    'decision dec_unbound0',
  ].map((c) => Buffer.from(c));
  const signature = chainSignature(deriveMacaroonKey(rk), ticket, caveats);
  return encodeMacaroonV2({ location: 'mintfs-approval', identifier: ticket, caveats, signature });
}

/** A holder's third-party caveat appended (no key needed), with a caveat key of its choosing. */
function appendThirdParty(token: string, ticket: Buffer): string {
  const decoded = decodeToken(token);
  const caveat = {
    location: 'mintfs-approval',
    caveatId: ticket,
    verificationId: sealVerificationId(decoded.signature, Buffer.alloc(32, 1)),
  };
  return encodeTokenText(
    encodeMacaroonV2({
      location: decoded.location,
      identifier: decoded.identifier,
      caveats: decoded.caveatBytes,
      thirdParty: [...decoded.thirdParty, { after: decoded.caveatBytes.length, caveat }],
      signature: signThirdParty(decoded.signature, caveat),
    }),
  );
}

const PY_DISCHARGE = `
import sys, json, base64
from pymacaroons import Macaroon, Verifier
from pymacaroons.serializers import BinarySerializer
req = json.load(sys.stdin)
b = BinarySerializer()
def load(text):
    return Macaroon.deserialize(text + '=' * (-len(text) % 4), serializer=b)
m = load(req["token"])
key = bytes.fromhex(req["key"])
def verify(discharges):
    v = Verifier()
    v.satisfy_general(lambda caveat: True)
    try:
        return v.verify(m, key, discharge_macaroons=discharges)
    except Exception:
        return False
ours = verify([load(req["discharge"])])
none = verify([])
d = Macaroon(location="mintfs-approval", identifier=req["ticket"].encode("latin1"), key=bytes.fromhex(req["rk"]), version=2)
for c in req["caveats"]:
    d.add_first_party_caveat(c)
theirs = m.prepare_for_request(d)
print(json.dumps({"ours": ours, "none": none, "theirs": theirs.serialize(serializer=b)}))
`;

describe('approval limits and methods', () => {
  it('a condition naming GET holds HEAD too (GET without its body)', () => {
    const key = newKey();
    const grant: TokenGrant = { ...GRANT, approval: { methods: ['GET'] } };
    const token = mintToken(grant, { key, now: NOW, tokenId: 'CCCCCCCCCCCCCCCCCCCCCC' }).token;
    const context = { keyById: keyLookup(key), now: NOW };
    for (const method of ['GET', 'HEAD']) {
      const verdict = verifyToken(
        token,
        { ...MERGE, method, rawPath: '/repos/acme/widgets/pulls' },
        context,
      );
      assert.equal(!verdict.allowed && verdict.code, 'ERR_APPROVAL_REQUIRED', method);
    }
  });

  it('the gateway holds at most approval.maxHeld requests, all agents together', async () => {
    const service = new ApprovalService(
      { timeoutMs: 60_000, maxHeldPerAgent: 8, decisionTtlMs: 60_000, maxHeld: 2 },
      () => undefined,
      createLogger({ level: 'silent' }),
    );
    const { key, token } = mintApproving();
    const { caveat, signature } = approvalOf(token, key);
    const held = (agent: string) => ({
      view: {
        agent,
        tokenId: 't',
        service: 'github',
        method: 'PUT',
        host: 'api.github.com',
        path: '/x',
        query: '',
        bodyBytes: 0,
        bodyPreview: '',
        bodyType: '',
        reader: undefined,
      },
      request: HELD,
      approvals: [caveat],
      keyId: key.id,
      tokenSignature: signature,
      body: '',
    });
    const gone = new AbortController();
    const waits = [service.hold(held('a'), gone.signal), service.hold(held('b'), gone.signal)];
    await assert.rejects(() => service.hold(held('c'), gone.signal), /approval\.maxHeld/);
    gone.abort();
    assert.deepEqual(
      (await Promise.all(waits)).map((d) => d.kind),
      ['cancelled', 'cancelled'],
    );
  });
});

describe('what gateways share about held requests', () => {
  it('an unbound discharge (what travels between gateways) checks only once bound to its own token', () => {
    const { key, token } = mintApproving();
    const { caveat, signature } = approvalOf(token, key);
    const other = approvalOf(mintApproving(key, 'BBBBBBBBBBBBBBBBBBBBBB').token, key);
    const unbound = mintUnboundDischarge(
      caveat.caveatId,
      dischargeRootKey(key, caveat.caveatId),
      HELD,
      TERMS,
    );
    const at = new Date(NOW.getTime() + 1000);
    assert.equal(checkDischarge(caveat, signature, unbound, HELD, at).ok, false, 'unbound');
    const bound = bindDischargeTo(unbound, signature);
    assert.ok(bound !== undefined);
    assert.equal(checkDischarge(caveat, signature, bound, HELD, at).ok, true);
    assert.deepEqual(
      bound,
      mintDischarge(
        caveat.caveatId,
        dischargeRootKey(key, caveat.caveatId),
        signature,
        HELD,
        TERMS,
      ),
      'binding later is the same as minting bound',
    );
    const elsewhere = bindDischargeTo(unbound, other.signature);
    assert.ok(elsewhere !== undefined);
    assert.equal(checkDischarge(caveat, signature, elsewhere, HELD, at).ok, false);
    assert.equal(bindDischargeTo(Buffer.from('not a macaroon'), signature), undefined);
  });

  it('a sealed record opens only under its key, as its kind and name, untampered', () => {
    const key = newKey();
    const byId = (id: string) => (id === key.id ? key : undefined);
    const value = { view: { id: 'apr_AAAAAAAAAAAAAAAA' }, body: 'secret body' };
    const sealed = sealRecord(key, 'held', 'apr_AAAAAAAAAAAAAAAA', value);
    assert.ok(!sealed.includes('secret body'), 'the body is not readable in Redis');
    assert.ok(sealed.startsWith(`${key.id}.`));
    assert.deepEqual(openRecord(byId, 'held', 'apr_AAAAAAAAAAAAAAAA', sealed), value);
    // Moved to another id, read as another kind, under other key bytes, or altered: nothing.
    assert.equal(openRecord(byId, 'held', 'apr_BBBBBBBBBBBBBBBB', sealed), undefined);
    assert.equal(openRecord(byId, 'decision', 'apr_AAAAAAAAAAAAAAAA', sealed), undefined);
    const impostor = new RootKey(key.id, Buffer.alloc(32, 9));
    assert.equal(
      openRecord(() => impostor, 'held', 'apr_AAAAAAAAAAAAAAAA', sealed),
      undefined,
    );
    // A character of the sealed text changed for another (tested: the one it replaces, not the last).
    const at = sealed.length - 3;
    const flipped = `${sealed.slice(0, at)}${sealed[at] === 'A' ? 'B' : 'A'}${sealed.slice(at + 1)}`;
    assert.notEqual(flipped, sealed);
    assert.equal(openRecord(byId, 'held', 'apr_AAAAAAAAAAAAAAAA', flipped), undefined);
    assert.equal(
      openRecord(byId, 'held', 'apr_AAAAAAAAAAAAAAAA', '{"kind":"approved"}'),
      undefined,
    );
    assert.equal(openRecord(byId, 'held', 'apr_AAAAAAAAAAAAAAAA', ''), undefined);
  });
});
