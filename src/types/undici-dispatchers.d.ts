// undici's Pool and Agent by their own modules (src/util/undici-dispatchers.ts says why);
// the package types only its main entry, so these take its types.
declare module 'undici/lib/dispatcher/pool.js' {
  import { Pool } from 'undici';
  export = Pool;
}
declare module 'undici/lib/dispatcher/agent.js' {
  import { Agent } from 'undici';
  export = Agent;
}
declare module 'undici/lib/dispatcher/dispatcher.js' {
  const Dispatcher: { readonly prototype: object };
  export = Dispatcher;
}
declare module 'undici/lib/api/index.js' {
  const api: Readonly<Record<string, unknown>>;
  export = api;
}
