import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import {
  type Connection,
  type Counters,
  type Identity,
  isNodeId,
  type SecureConnection,
  secureAccept,
  secureConnect,
  sleep,
  type TierLogger,
  timeoutSignal,
} from '@dpc/core';
import { dialProblem } from './address.js';
import {
  DEFAULT_LINK_RETRY_MAX_MS,
  DEFAULT_LINK_RETRY_MS,
  DEFAULT_MAX_INBOUND_PER_IP,
  DEFAULT_MAX_LINKS,
  DEFAULT_MAX_PENDING_PER_IP,
  DEFAULT_NEIGHBOUR_LINKS,
  DEFAULT_RESERVED_OUTBOUND,
  MAX_LINK_FRAME_BYTES,
} from './constants.js';
import type { Gossip, GossipLink } from './gossip.js';
import { type LinkFrame, linkFrameSchema } from './messages.js';

/**
 * Gossip links: TLS 1.3 over TCP with the @dpc/core secure channel (mutual authentication by
 * node id), on the TCP port with the same number as the node's DHT UDP port. The listener first
 * sends a 48-byte banner naming its node id (`DPCG1 <node id>\n`), which the dialer then requires
 * the TLS handshake to prove: dialers know a seed by address only. Nodes behind NAT dial their
 * public peers (the DHT seeds) and keep the link; public nodes take links inbound.
 */
const BANNER_PREFIX = 'DPCG1 ';
const BANNER_BYTES = BANNER_PREFIX.length + 41 + 1;

export interface GossipLinksOptions {
  gossip: Gossip;
  identity: Identity;
  /** TCP port to listen on (0: any; undefined: no listener). */
  port?: number;
  /** Bind address ('::' dual stack by default). */
  host?: string;
  /** `host:port` of public peers to keep links to (the DHT seeds). */
  seeds?: readonly string[];
  counters?: Counters;
  log?: TierLogger;
  maxLinks?: number;
  /**
   * Inbound connections still in their handshake from one remote address at most (an IPv4
   * address, or an IPv6 /64): one host cannot hold the slots of everyone else for the handshake
   * timeout. Default 4.
   */
  maxPendingPerIp?: number;
  /** Established inbound links from one remote address (IPv4, or IPv6 /64) at most. Default 8. */
  maxInboundPerIp?: number;
  /**
   * Link slots kept for links this node dials (its seeds, DHT neighbours, destinations'
   * neighbourhoods): inbound links and handshakes take at most `maxLinks - reservedOutbound`, so
   * throwaway identities dialling in cannot starve the node's own neighbour dials. Default
   * min(16, maxLinks / 4).
   */
  reservedOutbound?: number;
  /** Dials by `dial()` under way at most (default 8). */
  maxDialing?: number;
  /**
   * `dial()` may reach loopback and private addresses (a testnet on one machine or one LAN).
   * Default false: those addresses come from DHT lookups, named by other nodes (see dialProblem).
   */
  allowLocal?: boolean;
  retryMs?: number;
  retryMaxMs?: number;
  handshakeTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface GossipLinks {
  /** Port the listener is bound to, if any. */
  readonly port: number | undefined;
  /** Node ids of the linked peers. */
  peers(): string[];
  /**
   * Links to one more peer by address (a DHT neighbour), once: no retry; it stays linked until
   * the connection closes. Skipped (false) when that node is linked or being dialled, when the
   * links are full, or when `maxDialed` dials are under way. Resolves once linked (true) or failed.
   * Only `neighbour` dials (the node's own keyspace neighbours) may take the last
   * `min(8, reservedOutbound)` slots: other dials (destinations' neighbourhoods, which remote
   * input such as a message from a throwaway identity triggers) cannot starve them.
   */
  dial(target: { host: string; port: number; nodeId?: string }, opts?: { neighbour?: boolean }): Promise<boolean>;
  stop(): Promise<void>;
}

export function parseHostPort(s: string): { host: string; port: number } | undefined {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(s.trim());
  const port = Number(m?.[2]);
  if (!m?.[1] || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host: m[1], port };
}

function readBanner(socket: Socket, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const finish = (err: Error | undefined, id?: string) => {
      socket.off('data', onData);
      socket.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(id as string);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < BANNER_BYTES) return;
      socket.pause();
      if (buf.length > BANNER_BYTES) socket.unshift(buf.subarray(BANNER_BYTES));
      const text = buf.subarray(0, BANNER_BYTES).toString('latin1');
      const id = text.slice(BANNER_PREFIX.length, BANNER_BYTES - 1);
      if (!text.startsWith(BANNER_PREFIX) || !text.endsWith('\n') || !isNodeId(id)) finish(new Error('not a gossip banner'));
      else finish(undefined, id);
    };
    const onClose = () => finish(new Error('closed before the banner'));
    const onAbort = () => finish(new Error('no banner in time'));
    socket.on('data', onData);
    socket.once('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The remote address a per-address limit counts against: an IPv4 address (also IPv4-mapped), or
 * the /64 prefix of an IPv6 address (one host or LAN usually holds a whole /64).
 */
export function remoteAddressKey(address: string | undefined): string {
  if (!address) return '?';
  const a = address.toLowerCase();
  if (a.startsWith('::ffff:') && a.includes('.')) return a.slice(7);
  if (!a.includes(':')) return a;
  const [head = '', tail] = a.split('::');
  const front = head === '' ? [] : head.split(':');
  const back = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? front : [...front, ...new Array(Math.max(0, 8 - front.length - back.length)).fill('0'), ...back];
  return `${groups
    .slice(0, 4)
    .map((g) => (Number.parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}

export async function startGossipLinks(o: GossipLinksOptions): Promise<GossipLinks> {
  const ctrl = new AbortController();
  const signal = o.signal ? AbortSignal.any([ctrl.signal, o.signal]) : ctrl.signal;
  const current = new Map<string, { conn: Connection; initiator: string; inboundFrom?: string }>();
  const sockets = new Set<Socket>();
  const maxLinks = o.maxLinks ?? DEFAULT_MAX_LINKS;
  const reserved = Math.min(maxLinks, Math.max(0, o.reservedOutbound ?? Math.min(DEFAULT_RESERVED_OUTBOUND, Math.floor(maxLinks / 4))));
  const maxInbound = maxLinks - reserved;
  /** Links other dials than neighbour ones may fill up to (the rest is for the keyspace neighbours). */
  const maxOtherDialled = maxLinks - Math.min(DEFAULT_NEIGHBOUR_LINKS, reserved);
  const maxPendingPerIp = o.maxPendingPerIp ?? DEFAULT_MAX_PENDING_PER_IP;
  const maxInboundPerIp = o.maxInboundPerIp ?? DEFAULT_MAX_INBOUND_PER_IP;
  /** Established inbound links by remote address key (see remoteAddressKey), and their total. */
  const inboundByIp = new Map<string, number>();
  let inbound = 0;
  const countInbound = (ip: string, d: 1 | -1) => {
    inbound += d;
    const n = (inboundByIp.get(ip) ?? 0) + d;
    if (n > 0) inboundByIp.set(ip, n);
    else inboundByIp.delete(ip);
  };
  const common = {
    identity: o.identity,
    tier: 'gossip' as const,
    maxFrameBytes: MAX_LINK_FRAME_BYTES,
    messageSchema: linkFrameSchema,
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? 10_000,
    signal,
    ...(o.counters && { counters: o.counters }),
  };

  /**
   * Takes a new link. When both sides dial each other at once (DHT neighbours find each other),
   * both keep the connection dialled by the smaller node id, instead of each closing the one the
   * other kept; a new connection from the same dialler replaces the old one (a reconnect).
   */
  const adopt = (conn: SecureConnection, outbound: boolean, inboundFrom?: string): Promise<void> => {
    const nodeId = conn.remoteNodeId;
    const initiator = outbound ? o.identity.nodeId : nodeId;
    const previous = current.get(nodeId);
    if (previous && !previous.conn.closed && previous.initiator !== initiator && previous.initiator < initiator) {
      o.counters?.inc('gossip_links_duplicate');
      void conn.close('duplicate link');
      return Promise.resolve();
    }
    current.set(nodeId, { conn, initiator, ...(inboundFrom !== undefined && { inboundFrom }) });
    if (inboundFrom !== undefined) countInbound(inboundFrom, 1);
    if (previous) void previous.conn.close('replaced');
    const link: GossipLink = { nodeId, send: (f: LinkFrame) => conn.send(f, { signal }) };
    conn.on('message', (f: unknown) => {
      o.gossip.onFrame(link, f as LinkFrame).catch(() => o.counters?.inc('gossip_frame_errors'));
    });
    conn.on('error', () => {});
    o.gossip.addLink(link);
    o.log?.debug('gossip link up', { peer: nodeId });
    return new Promise((resolve) => {
      conn.once('close', () => {
        if (inboundFrom !== undefined) countInbound(inboundFrom, -1);
        if (current.get(nodeId)?.conn === conn) {
          current.delete(nodeId);
          o.gossip.removeLink(nodeId);
        }
        resolve();
      });
    });
  };

  let server: Server | undefined;
  if (o.port !== undefined) {
    // Connections still in their handshake count against maxLinks too: a peer opening many that
    // never finish would otherwise hold a socket each for handshakeTimeoutMs, without bound. Per
    // remote address, handshakes and inbound links are capped, and inbound ones together leave
    // `reservedOutbound` slots free for this node's own dials.
    let handshaking = 0;
    const pendingByIp = new Map<string, number>();
    const refuse = (socket: Socket, reason: string) => {
      o.counters?.inc('gossip_links_refused');
      o.counters?.inc(`gossip_links_refused_${reason}`);
      socket.destroy();
    };
    server = createServer((socket) => {
      const ip = remoteAddressKey(socket.remoteAddress);
      const pendingHere = pendingByIp.get(ip) ?? 0;
      if (signal.aborted || current.size + handshaking >= maxLinks) return refuse(socket, 'full');
      if (inbound + handshaking >= maxInbound) return refuse(socket, 'inbound_full');
      if (pendingHere >= maxPendingPerIp) return refuse(socket, 'ip_pending');
      if ((inboundByIp.get(ip) ?? 0) + pendingHere >= maxInboundPerIp) return refuse(socket, 'ip_links');
      handshaking++;
      pendingByIp.set(ip, pendingHere + 1);
      let pending = true;
      const settled = () => {
        if (pending) {
          handshaking--;
          const n = (pendingByIp.get(ip) ?? 1) - 1;
          if (n > 0) pendingByIp.set(ip, n);
          else pendingByIp.delete(ip);
        }
        pending = false;
      };
      sockets.add(socket);
      socket.once('close', () => {
        settled();
        sockets.delete(socket);
      });
      socket.on('error', () => {});
      socket.write(`${BANNER_PREFIX}${o.identity.nodeId}\n`);
      secureAccept(socket, common).then(
        (conn) => {
          settled();
          void adopt(conn, false, ip);
        },
        () => {
          settled();
          o.counters?.inc('gossip_link_handshake_errors');
          socket.destroy();
        },
      );
    });
    server.listen({ port: o.port, host: o.host ?? '::', ipv6Only: false });
    try {
      await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e))]);
      server.on('error', (err) => o.log?.warn('gossip listener error', { error: err }));
    } catch (err) {
      // Without a listener this node still dials its seeds; it only takes no inbound links.
      o.log?.warn('gossip: cannot listen for links; dialling out only', { port: o.port, error: err });
      o.counters?.inc('gossip_listen_errors');
      server = undefined;
    }
  }

  /**
   * Connects to `to` and reads its banner (the node id it claims), within the handshake
   * deadline; the socket is tracked for stop() and destroyed if this fails.
   */
  const dialBanner = async (to: { host: string; port: number }): Promise<{ socket: Socket; id: string }> => {
    const socket = connect({ host: to.host, port: to.port });
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    // A timer-held deadline (on Node 20 an AbortSignal.timeout inside AbortSignal.any can be
    // garbage-collected before it fires).
    const deadline = timeoutSignal(common.handshakeTimeoutMs, 'gossip link handshake', signal);
    const d = deadline.signal;
    try {
      await Promise.race([once(socket, 'connect', { signal: d }), once(socket, 'error', { signal: d }).then(([e]) => Promise.reject(e))]);
      return { socket, id: await readBanner(socket, d) };
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      deadline.clear();
    }
  };

  const dialOnce = async (seed: { host: string; port: number }): Promise<'self' | 'done'> => {
    const { socket, id } = await dialBanner(seed);
    try {
      if (id === o.identity.nodeId) {
        socket.destroy();
        return 'self';
      }
      const existing = current.get(id);
      if (existing && !existing.conn.closed) {
        // Already linked (it dialled us, or a neighbour dial): dial again when that link ends.
        socket.destroy();
        await once(existing.conn, 'close', { signal }).catch(() => {});
        return 'done';
      }
      const conn = await secureConnect(socket, { ...common, expectedNodeId: id });
      await adopt(conn, true); // until the link closes
      return 'done';
    } catch (err) {
      socket.destroy();
      throw err;
    }
  };

  const keepDialing = async (seed: { host: string; port: number }) => {
    let delay = o.retryMs ?? DEFAULT_LINK_RETRY_MS;
    while (!signal.aborted) {
      try {
        const r = await dialOnce(seed);
        if (r === 'self') return;
        delay = o.retryMs ?? DEFAULT_LINK_RETRY_MS;
      } catch {
        o.counters?.inc('gossip_link_dial_errors');
        delay = Math.min(delay * 2, o.retryMaxMs ?? DEFAULT_LINK_RETRY_MAX_MS);
      }
      await sleep(delay * (0.75 + Math.random() / 2), signal).catch(() => {});
    }
  };
  for (const s of o.seeds ?? []) {
    const seed = parseHostPort(s);
    if (seed) void keepDialing(seed);
    else o.log?.warn('gossip: seed is not host:port', { seed: s });
  }

  const dialing = new Set<string>();
  const dial = async (t: { host: string; port: number; nodeId?: string }, opts: { neighbour?: boolean } = {}): Promise<boolean> => {
    const key = t.nodeId ?? `${t.host}:${t.port}`;
    if (signal.aborted || t.nodeId === o.identity.nodeId || (t.nodeId && current.has(t.nodeId)) || dialing.has(key)) return false;
    const problem = dialProblem(t.host, { allowLocal: o.allowLocal ?? false });
    if (problem !== undefined) {
      o.counters?.inc('gossip_link_dials_refused');
      o.log?.debug('gossip: not dialling a DHT neighbour', { host: t.host, port: t.port, reason: problem });
      return false;
    }
    if (current.size >= (opts.neighbour ? maxLinks : maxOtherDialled) || dialing.size >= (o.maxDialing ?? 8)) {
      o.counters?.inc('gossip_link_dials_skipped');
      return false;
    }
    dialing.add(key);
    o.counters?.inc('gossip_link_dials');
    let linked = false;
    let socket: Socket | undefined;
    try {
      const dialled = await dialBanner(t);
      socket = dialled.socket;
      const id = dialled.id;
      if (id === o.identity.nodeId || (t.nodeId !== undefined && id !== t.nodeId) || current.has(id)) {
        socket.destroy();
        return false;
      }
      const conn = await secureConnect(socket, { ...common, expectedNodeId: id });
      linked = true;
      void adopt(conn, true);
      return true;
    } catch {
      o.counters?.inc('gossip_link_dial_errors');
      return false;
    } finally {
      dialing.delete(key);
      if (!linked) socket?.destroy();
    }
  };

  const port = server ? (server.address() as { port: number }).port : undefined;
  return {
    port,
    peers: () => [...current.keys()],
    dial,
    async stop() {
      ctrl.abort();
      await Promise.all([...current.values()].map((c) => c.conn.close('stopping').catch(() => {})));
      for (const s of sockets) s.destroy();
      if (server) await new Promise((r) => server.close(r));
    },
  };
}
