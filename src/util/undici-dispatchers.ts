/**
 * The two undici dispatchers mintfs uses, Pool (the gateway's upstreams)
 * and Agent (credential sources' token endpoints), loaded from their own
 * modules. undici's main entry also builds fetch, WebSocket, EventSource,
 * its caches and mock agents: ~65 ms of every gateway start in a profile of
 * `mintfs run`, where these two with what they need take about a quarter
 * of that. The types are the main entry's (src/types/undici-dispatchers.d.ts);
 * credential-oauth2.test.ts and the gateway tests fail if a method is missing.
 */
import api from 'undici/lib/api/index.js';
import AgentClass from 'undici/lib/dispatcher/agent.js';
import Dispatcher from 'undici/lib/dispatcher/dispatcher.js';
import PoolClass from 'undici/lib/dispatcher/pool.js';

// request(), stream() and the rest: undici's main entry attaches them to every
// dispatcher exactly so (its index.js); without it an Agent has dispatch() alone.
Object.assign(Dispatcher.prototype, api);

export const Pool = PoolClass;
export type Pool = PoolClass;
export const Agent = AgentClass;
export type Agent = AgentClass;
