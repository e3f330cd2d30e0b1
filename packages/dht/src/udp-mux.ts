import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import type { Counters } from '@dpc/core';
import { normalizeIp } from './address.js';
import { MAX_PROTOCOL_PREFIX_BYTES } from './constants.js';
import { AddressFamilyError, DhtNotRunningError, ProtocolPrefixError } from './errors.js';
import type { DhtPeer, UdpProtocol, UdpProtocolOptions } from './types.js';

// One UDP socket, many protocols (as hyperdht shares its socket with UDX streams and hole
// punching, so they use the NAT mapping the DHT measured). A DHT datagram is one MessagePack map,
// so its first byte is a map header: 0x80–0x8f (fixmap; every DHT message has fewer than 16
// keys), 0xde (map16) or 0xdf (map32). Every other first byte is free for the protocols that
// share the socket; each registers a prefix of 1–8 bytes starting with a free byte.

/** True for the first bytes the DHT owns (MessagePack map headers). */
export const isDhtFirstByte = (b: number): boolean => (b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf;

const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const NO_IPV6 = new Set(['EAFNOSUPPORT', 'EPROTONOSUPPORT', 'EADDRNOTAVAIL', 'EINVAL']);

interface Registered {
  name: string;
  prefix: Buffer;
  onMessage: UdpProtocolOptions['onMessage'];
}

/** Which address families the bound socket sends to and receives from. */
export interface Families {
  ipv4: boolean;
  ipv6: boolean;
}

/**
 * The DHT's UDP socket and its demultiplexer: datagrams whose first byte is a MessagePack map
 * header go to the DHT, the others to the protocol whose prefix they start with; the rest are
 * counted (`rejects.unmatched`) and dropped. A protocol handler that throws (or rejects) is counted
 * (`udp.handler_errors.<name>`) and never reaches the socket. `bind('dual')` opens one udp6
 * socket with IPV6_V6ONLY off, so both families share one port and one demultiplexer; a host
 * without IPv6 gets a udp4 socket instead.
 */
export class UdpMux {
  readonly #counters: Counters;
  readonly #onDht: (buf: Buffer, from: DhtPeer) => void;
  readonly #byFirst = new Map<number, Registered[]>();
  #socket: Socket | undefined;
  #families: Families = { ipv4: false, ipv6: false };
  #mapV4 = false;
  #closed = false;

  constructor(counters: Counters, onDht: (buf: Buffer, from: DhtPeer) => void) {
    this.#counters = counters;
    this.#onDht = onDht;
  }

  /** Binds `host`: 'dual' (IPv6 and IPv4, one socket), an IPv4 address (udp4) or an IPv6 address (udp6, IPv6 only). */
  async bind(port: number, host: string): Promise<DhtPeer> {
    if (host === 'dual') {
      try {
        return await this.#open('udp6', port, '::', false);
      } catch (err) {
        if (!NO_IPV6.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
        this.#counters.inc('udp.no_ipv6');
        return this.#open('udp4', port, '0.0.0.0', false);
      }
    }
    const family = isIP(host);
    if (family === 0) throw new TypeError(`DHT host must be 'dual' or an IP address, got ${JSON.stringify(host)}`);
    return this.#open(family === 6 ? 'udp6' : 'udp4', port, host, true);
  }

  async #open(type: 'udp4' | 'udp6', port: number, host: string, ipv6Only: boolean): Promise<DhtPeer> {
    const socket = createSocket(type === 'udp6' ? { type, ipv6Only } : { type });
    socket.on('message', (buf, rinfo) => this.#onMessage(buf, rinfo));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(port, host, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      throw err;
    }
    socket.on('error', () => this.#counters.inc('socket_errors'));
    this.#socket = socket;
    this.#mapV4 = type === 'udp6' && !ipv6Only;
    this.#families = type === 'udp4' ? { ipv4: true, ipv6: false } : { ipv4: !ipv6Only, ipv6: true };
    return this.address();
  }

  /** The bound address ('::' for a dual-stack socket). */
  address(): DhtPeer {
    if (!this.#socket || this.#closed) throw new DhtNotRunningError('address');
    const a = this.#socket.address();
    return { host: a.address, port: a.port };
  }

  get families(): Families {
    return { ...this.#families };
  }

  /** True when the socket can send to `host` (its family is bound). */
  canReach(host: string): boolean {
    const f = isIP(normalizeIp(host));
    return (f === 4 && this.#families.ipv4) || (f === 6 && this.#families.ipv6);
  }

  /** Sends one datagram from the socket; resolves once the kernel took it. */
  send(bytes: Uint8Array, to: DhtPeer): Promise<void> {
    const socket = this.#socket;
    if (!socket || this.#closed) return Promise.reject(new DhtNotRunningError('send'));
    const host = normalizeIp(to.host);
    if (!this.canReach(host)) return Promise.reject(new AddressFamilyError(host, this.#families));
    const target = this.#mapV4 && isIP(host) === 4 ? `::ffff:${host}` : host;
    return new Promise((resolve, reject) => {
      socket.send(bytes, to.port, target, (err) => {
        if (err) {
          this.#counters.inc('socket_errors');
          reject(err);
        } else resolve();
      });
    });
  }

  /** Registers a protocol; throws ProtocolPrefixError for a DHT byte, a bad length or an overlapping prefix. */
  register(opts: UdpProtocolOptions): UdpProtocol {
    if (this.#closed) throw new DhtNotRunningError('registerProtocol');
    if (!NAME.test(opts.name)) throw new ProtocolPrefixError(`protocol name ${JSON.stringify(opts.name)} must match ${NAME}`);
    const prefix = typeof opts.prefix === 'number' ? Buffer.from([opts.prefix]) : Buffer.from(opts.prefix);
    if (typeof opts.prefix === 'number' && (!Number.isInteger(opts.prefix) || opts.prefix < 0 || opts.prefix > 255)) {
      throw new ProtocolPrefixError(`prefix byte ${opts.prefix} is not a byte`);
    }
    if (prefix.length < 1 || prefix.length > MAX_PROTOCOL_PREFIX_BYTES) {
      throw new ProtocolPrefixError(`a prefix has 1 to ${MAX_PROTOCOL_PREFIX_BYTES} bytes, got ${prefix.length}`);
    }
    const first = prefix[0] as number;
    if (isDhtFirstByte(first)) {
      throw new ProtocolPrefixError(`first byte 0x${first.toString(16)} is the DHT's (0x80-0x8f, 0xde, 0xdf are MessagePack map headers)`);
    }
    const list = this.#byFirst.get(first) ?? [];
    for (const r of list) {
      const n = Math.min(r.prefix.length, prefix.length);
      if (r.prefix.subarray(0, n).equals(prefix.subarray(0, n))) {
        throw new ProtocolPrefixError(`prefix ${prefix.toString('hex')} overlaps ${r.prefix.toString('hex')} of protocol ${r.name}`);
      }
    }
    const entry: Registered = { name: opts.name, prefix, onMessage: opts.onMessage };
    list.push(entry);
    this.#byFirst.set(first, list);
    let open = true;
    return {
      name: opts.name,
      prefix: Buffer.from(prefix),
      send: (bytes, to) => {
        if (!open) return Promise.reject(new DhtNotRunningError(`send (protocol ${opts.name} closed)`));
        const b = bytes[0];
        if (b === undefined || isDhtFirstByte(b))
          return Promise.reject(new ProtocolPrefixError(`protocol ${opts.name} may not send a datagram starting with a DHT byte`));
        this.#counters.inc(`udp.out.${opts.name}`);
        return this.send(bytes, to);
      },
      close: () => {
        if (!open) return;
        open = false;
        const now = (this.#byFirst.get(first) ?? []).filter((r) => r !== entry);
        if (now.length > 0) this.#byFirst.set(first, now);
        else this.#byFirst.delete(first);
      },
    };
  }

  /** Registered protocols (name and prefix), for stats. */
  get protocols(): Array<{ name: string; prefix: string }> {
    return [...this.#byFirst.values()].flat().map((r) => ({ name: r.name, prefix: r.prefix.toString('hex') }));
  }

  #onMessage(buf: Buffer, rinfo: RemoteInfo): void {
    const c = this.#counters;
    try {
      const from: DhtPeer = { host: normalizeIp(rinfo.address), port: rinfo.port };
      const first = buf[0];
      if (first === undefined) {
        c.inc('rejects.unmatched');
        return;
      }
      if (isDhtFirstByte(first)) {
        this.#onDht(buf, from);
        return;
      }
      const p = this.#byFirst.get(first)?.find((r) => buf.length >= r.prefix.length && buf.subarray(0, r.prefix.length).equals(r.prefix));
      if (!p) {
        c.inc('rejects.unmatched');
        return;
      }
      c.inc(`udp.in.${p.name}`);
      try {
        const out = p.onMessage(buf, from);
        if (out instanceof Promise) out.catch(() => c.inc(`udp.handler_errors.${p.name}`));
      } catch {
        c.inc(`udp.handler_errors.${p.name}`);
      }
    } catch {
      c.inc('errors.handler');
    }
  }

  /** Closes the socket; registered protocols stop receiving and their `send` rejects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#byFirst.clear();
    const socket = this.#socket;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
