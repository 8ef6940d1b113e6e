/**
 * pymacaroons (Debian's python3-pymacaroons), an implementation independent of
 * both of ours, checks a token's signature under a root key and reads its fields.
 */
import { runSync } from './spawn.js';

const VERIFY = `
import sys, json
from pymacaroons import Macaroon, Verifier
from pymacaroons.serializers import BinarySerializer
def text(b):
    return b.decode() if isinstance(b, bytes) else b
req = json.load(sys.stdin)
m = Macaroon.deserialize(req["token"], serializer=BinarySerializer())
v = Verifier()
v.satisfy_general(lambda caveat: True)
try:
    ok = v.verify(m, bytes.fromhex(req["key"]))
except Exception as e:
    ok = False
print(json.dumps({"ok": ok, "identifier": text(m.identifier), "location": text(m.location),
                  "caveats": [text(c.caveat_id) for c in m.first_party_caveats()]}))
`;

export interface PyResult {
  ok: boolean;
  identifier: string;
  location: string;
  caveats: string[];
}

export function pymacaroonsVerify(token: string, keyHex: string): PyResult {
  const stdout = runSync('/usr/bin/python3', ['-c', VERIFY], 'pymacaroons to verify a token', {
    input: JSON.stringify({ token, key: keyHex }),
  });
  return JSON.parse(stdout) as PyResult;
}

const ATTENUATE = `
import sys, json
from pymacaroons import Macaroon
from pymacaroons.serializers import BinarySerializer
req = json.load(sys.stdin)
m = Macaroon.deserialize(req["token"], serializer=BinarySerializer())
for caveat in req["caveats"]:
    m.add_first_party_caveat(caveat)
print(m.serialize(serializer=BinarySerializer()))
`;

/** pymacaroons appends first-party caveats (no key needed) and serialises the result. */
export function pymacaroonsAttenuate(token: string, caveats: readonly string[]): string {
  const stdout = runSync('/usr/bin/python3', ['-c', ATTENUATE], 'pymacaroons to attenuate', {
    input: JSON.stringify({ token, caveats }),
  });
  // pymacaroons writes URL-safe base64 with padding; mintfs tokens carry none.
  return stdout.trim().replace(/=+$/, '');
}
