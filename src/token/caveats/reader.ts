/**
 * `reader uid=1000 gid=1000 pid=4242 start=99 exe=/usr/bin/cat cgroup=/ctr`:
 * who read the token from the mount (native backend, `readerCaveat: true`).
 * It restricts nothing; the gateway logs it. Only the mount writes one, as
 * the second caveat (verify.ts refuses one anywhere else).
 */
import type { Caveat, CaveatKind } from './kind.js';
import { printable } from './list.js';

export interface ReaderCaveat extends Caveat {
  readonly kind: 'reader';
  /** The caveat's key=value words, as minted (values percent-encoded). */
  readonly reader: string;
}

// key=value, the value printable ASCII without spaces (the minter percent-encodes the rest).
const READER_FIELD = /^[a-z]+=[\x21-\x7e]*$/;

export const reader: CaveatKind = {
  name: 'reader',
  parse(values, text, malformed) {
    const bad = values.find((v) => !READER_FIELD.test(v));
    if (bad !== undefined) return malformed(`"${printable(bad)}" is not a key=value field`);
    const caveat: ReaderCaveat = {
      kind: 'reader',
      text,
      reader: values.join(' '),
      check: () => undefined,
    };
    return { ok: true, caveat };
  },
};
