/**
 * How many connections the gateway holds, in all and per client, so no one
 * client, with or without a token, can take the descriptors and memory that
 * other agents and the gateway's own state files need. A CONNECT tunnel is
 * its client's connection for its whole life, so tunnels count here too.
 *
 * - Per client (`limits.clientConnections`): a client is a TCP source address
 *   (an IPv6 client by its /64, the smallest block a host is handed) or a
 *   unix-socket peer's uid as the kernel records it (SO_PEERCRED), which the
 *   peer cannot choose. One over the limit is answered 429 and closed.
 * - In all (`limits.maxConnections`): by default what the open-file limit
 *   leaves once descriptors are reserved for the upstream pools and for state
 *   files (keys, revocations, credentials, Redis, logs), so those stay
 *   readable however many clients connect. Node drops connections beyond it
 *   at accept.
 *
 * Both events are logged once a minute at most (with the count in between):
 * a flood must not become a flood of log lines.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { MintfsError } from '../errors.js';
import { loadNativeAddon, type NativeAddon } from '../fuse/native-addon.js';
import type { Logger } from '../log/logger.js';
import { RateLimitedLog } from '../log/rate-limited.js';
import type { GatewayConfig } from './config.js';
import { rawErrorResponse } from './http-errors.js';

/** Descriptors kept free of client connections: state files, logs, Redis, metrics, epoll, stdio. */
export const RESERVED_DESCRIPTORS = 128;

/** The most connections one process holds by default, whatever the open-file limit. */
const DEFAULT_MAX_CONNECTIONS = 4_096;

/**
 * The connection budget for this config under an open-file limit: the
 * explicit `limits.maxConnections`, checked to fit, or what fits.
 * Throws ERR_CONFIG_INVALID when the limit leaves no room (a gateway that
 * starts can keep its state files readable under any load).
 */
export function connectionBudget(config: GatewayConfig, openFileLimit: number): number {
  const upstreams = Object.keys(config.upstreams).length;
  const reserved = RESERVED_DESCRIPTORS + upstreams * config.limits.upstreamConnections;
  const room = openFileLimit - reserved;
  const asked = config.limits.maxConnections;
  const detail = `the open-file limit (ulimit -n) is ${openFileLimit}, and ${reserved} descriptors are kept for ${upstreams} upstream pools of limits.upstreamConnections = ${config.limits.upstreamConnections} and for state files`;
  if (asked === 'auto') {
    if (room < config.limits.clientConnections)
      throw new MintfsError(
        'ERR_CONFIG_INVALID',
        `limits.maxConnections: ${detail}, which leaves ${Math.max(room, 0)} connections, fewer than limits.clientConnections (${config.limits.clientConnections}); raise the limit or lower those`,
      );
    return Math.min(DEFAULT_MAX_CONNECTIONS, room);
  }
  if (asked > room)
    throw new MintfsError(
      'ERR_CONFIG_INVALID',
      `limits.maxConnections: ${asked} does not fit: ${detail}, which leaves ${Math.max(room, 0)}`,
    );
  return asked;
}

/** This process's soft open-file limit (Node raises it to the hard limit when it starts). */
export function openFileLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    if (soft === 'unlimited') return Number.MAX_SAFE_INTEGER;
    const value = Number(soft);
    if (Number.isSafeInteger(value) && value > 0) return value;
  } catch {
    // Not Linux, or /proc not mounted: the conservative default below.
  }
  return 1024;
}

export interface ConnectionLimiter {
  /** Counts this server's connections per client and caps them; logs drops and accept failures. */
  watch(server: Server, maxConnections: number): void;
  /** Connections open per client now (for tests and metrics). */
  readonly perClient: ReadonlyMap<string, number>;
}

export function createConnectionLimiter(deps: {
  readonly perClient: () => number;
  readonly logger: Logger;
}): ConnectionLimiter {
  const counts = new Map<string, number>();
  const log = new RateLimitedLog(deps.logger);
  // One budget for every listener (TCP and unix alike): they share the descriptors.
  let total = 0;
  const dropped = (limit: number) =>
    log.warn(
      'drop',
      { event: 'connections-dropped', limit },
      'the gateway holds limits.maxConnections connections; new ones are dropped',
    );
  /** Refused sockets still being answered, per client: a few linger, the rest are cut. */
  const answering = new Map<string, number>();
  const refuseOverLimit = (socket: Socket, client: string, limit: number) => {
    const lingering = answering.get(client) ?? 0;
    if (lingering >= LINGERING_REFUSALS) {
      socket.destroy();
      return;
    }
    answering.set(client, lingering + 1);
    refused.add(socket);
    socket.once('close', () => {
      const left = (answering.get(client) ?? 1) - 1;
      if (left <= 0) answering.delete(client);
      else answering.set(client, left);
    });
    // Said before any request is parsed. What the client sends meanwhile is
    // read and dropped, so the close that follows is not a reset that could
    // destroy the answer before the client reads it; cut after LINGER_MS.
    socket.resume();
    socket.end(
      rawErrorResponse(
        429,
        'ERR_TOO_MANY_CONNECTIONS',
        `this client already holds ${limit} connections (limits.clientConnections)`,
      ),
    );
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  };
  return {
    perClient: counts,
    watch(server, maxConnections) {
      server.maxConnections = maxConnections;
      server.on('connection', (socket: Socket) => {
        if (total >= maxConnections) {
          socket.destroy();
          dropped(maxConnections);
          return;
        }
        total += 1;
        socket.once('close', () => (total -= 1));
        const client = clientOf(socket);
        const open = (counts.get(client) ?? 0) + 1;
        counts.set(client, open);
        socket.once('close', () => {
          const left = (counts.get(client) ?? 1) - 1;
          if (left <= 0) counts.delete(client);
          else counts.set(client, left);
        });
        const limit = deps.perClient();
        if (open <= limit) return;
        log.warn(
          `client:${client}`,
          { event: 'connections-limited', client, limit },
          'a client is over limits.clientConnections; its new connections are refused',
        );
        refuseOverLimit(socket, client, limit);
      });
      server.on('drop', () => dropped(maxConnections));
      // After listen, an accept can still fail (EMFILE, ENFILE, ENOMEM): logged, never a crash.
      server.on('error', (err: NodeJS.ErrnoException) =>
        log.warn(
          `accept:${err.code ?? 'error'}`,
          { event: 'accept-failed', code: err.code ?? 'unknown' },
          'the gateway could not accept a connection',
        ),
      );
    },
  };
}

/** Connections refused for their client's count: read and dropped, never served. */
const refused = new WeakSet<Socket>();

export function isRefused(socket: Socket): boolean {
  return refused.has(socket);
}

/** How long a refused connection is kept to deliver its 429, and how many per client at once. */
const LINGER_MS = 500;
const LINGERING_REFUSALS = 8;

let addon: NativeAddon | null | undefined;

/**
 * Who a connection is from: `ip:ADDRESS`, `ip6:PREFIX/64`, `uid:N` (with
 * `/net:INODE` where the peer's network namespace can be read), or `unix`
 * where the uid cannot be read.
 */
export function clientOf(socket: Socket): string {
  const address = socket.remoteAddress;
  if (address !== undefined) return clientAddressKey(address);
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return 'unix';
  if (addon === undefined) {
    try {
      addon = loadNativeAddon();
    } catch {
      // Without the addon every unix peer shares one count: stricter, never looser.
      addon = null;
    }
  }
  const peer = addon?.peerCredentials(fd);
  if (peer == null) return 'unix';
  return `uid:${peer.uid}${networkNamespaceOf(peer.pid)}`;
}

/**
 * `/net:INODE` for the network namespace a unix peer connected from, or ''.
 * runc and Docker runs reach a shared gateway through socat bridges that all
 * run as root, each in its run's network namespace: by uid alone every run
 * would be one client, and one run could lock the others out. The sandboxes'
 * seccomp filter refuses unshare and setns, so an agent cannot make more
 * namespaces to multiply its count. Unreadable (the peer gone, or another
 * user's process and no privilege): the uid alone, stricter, never looser.
 */
function networkNamespaceOf(pid: number): string {
  if (!Number.isSafeInteger(pid) || pid <= 0) return '';
  try {
    const link = readlinkSync(`/proc/${pid}/ns/net`);
    const inode = /^net:\[(\d+)\]$/.exec(link)?.[1];
    return inode === undefined ? '' : `/net:${inode}`;
  } catch {
    return '';
  }
}

/**
 * The key an address is counted under: an IPv4 address, or the /64 of an
 * IPv6 one. All of 127.0.0.0/8 is one client: a local process can connect
 * from any of its sixteen million addresses, and would otherwise hold the
 * whole budget alone.
 */
export function clientAddressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const v4 = mapped?.[1] ?? (address.includes(':') ? undefined : address);
  if (v4 !== undefined) return v4.startsWith('127.') ? 'ip:127.0.0.0/8' : `ip:${v4}`;
  const groups = expandIpv6(address.split('%')[0] as string);
  return groups === undefined ? `ip6:${address}` : `ip6:${groups.slice(0, 4).join(':')}::/64`;
}

function expandIpv6(address: string): string[] | undefined {
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const part = (text: string | undefined) => (text ? text.split(':') : []);
  const head = part(halves[0]);
  const tail = part(halves[1]);
  const missing = 8 - head.length - tail.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return undefined;
  const groups = [...head, ...Array<string>(missing).fill('0'), ...tail];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  return groups.map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
}
