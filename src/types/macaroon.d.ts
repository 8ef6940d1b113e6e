// The `macaroon` package ships no types; this declares the part mintfs uses.
declare module 'macaroon' {
  export interface MacaroonCaveat {
    readonly identifier: Uint8Array;
    readonly location?: string;
    readonly vid?: Uint8Array;
  }
  export interface Macaroon {
    readonly caveats: MacaroonCaveat[];
    readonly location: string;
    readonly identifier: Uint8Array;
    readonly signature: Uint8Array;
    addFirstPartyCaveat(caveat: Uint8Array | string): void;
    addThirdPartyCaveat(
      rootKey: Uint8Array,
      caveatId: Uint8Array | string,
      location?: string,
    ): void;
    bindToRoot(rootSignature: Uint8Array): void;
    verify(
      rootKey: Uint8Array,
      check: (condition: string) => string | null,
      discharges?: readonly Macaroon[],
    ): void;
    exportBinary(): Uint8Array;
  }
  export function newMacaroon(params: {
    identifier: Uint8Array | string;
    location?: string;
    rootKey: Uint8Array | string;
    version?: 1 | 2;
  }): Macaroon;
  export function importMacaroon(data: Uint8Array | string): Macaroon;
  const macaroon: {
    newMacaroon: typeof newMacaroon;
    importMacaroon: typeof importMacaroon;
  };
  export default macaroon;
}
