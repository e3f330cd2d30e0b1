import { createSocket, type Socket } from 'node:dgram';
import { sleep } from '@dpc/core';
import * as C from './constants.js';
import { encodeProbe, PROBE } from './messages.js';

type Addr = { host: string; port: number };

/** Bounds of one birthday punch (defaults: hyperdht's figures). */
export interface BirthdayLimits {
  /** Sockets the symmetric side opens. Default 256. */
  sockets?: number;
  /** TTL of the symmetric side's mapping-opening packets. Default 5. */
  ttl?: number;
  /** Probes the cone side sends to random ports. Default 1,750. */
  probes?: number;
  /** Spacing of the cone side's probes, ms (paced by the clock, bursts of at most 5 when late). Default 10. */
  probeIntervalMs?: number;
}

/**
 * The symmetric side of a birthday punch: opens `sockets` UDP sockets, each sends a low-TTL probe
 * to the cone side's endpoint (opening a mapping towards it that dies before the peer's NAT), and
 * listens. `onDatagram` gets every datagram any of them receives, with the socket it came on.
 * `keep(socket)` keeps the winner and closes the others.
 */
export class BirthdaySockets {
  readonly #sockets: Socket[] = [];
  #closed = false;

  static async open(n: number, onDatagram: (msg: Buffer, from: Addr, socket: Socket) => void): Promise<BirthdaySockets> {
    const b = new BirthdaySockets();
    try {
      for (let i = 0; i < n; i++) {
        const s = createSocket('udp4');
        s.on('error', () => {});
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.bind(0, () => {
            s.off('error', reject);
            resolve();
          });
        });
        s.on('message', (msg, rinfo) => onDatagram(msg, { host: rinfo.address, port: rinfo.port }, s));
        b.#sockets.push(s);
      }
    } catch (err) {
      b.close();
      throw err;
    }
    return b;
  }

  get size(): number {
    return this.#sockets.length;
  }

  /** Sends one low-TTL probe from every socket to `to` (opens the mappings). */
  async openMappings(to: Addr, probe: Buffer, ttl: number, signal: AbortSignal): Promise<void> {
    for (const s of this.#sockets) {
      if (signal.aborted || this.#closed) return;
      try {
        s.setTTL(ttl);
        await new Promise<void>((resolve) => s.send(probe, to.port, to.host, () => resolve()));
        s.setTTL(64);
      } catch {
        // a socket closed under us
      }
    }
  }

  /** Keeps `winner` open and closes every other socket. */
  keep(winner: Socket): void {
    for (const s of this.#sockets) if (s !== winner) closeQuietly(s);
    this.#sockets.length = 0;
    this.#sockets.push(winner);
  }

  close(): void {
    this.#closed = true;
    for (const s of this.#sockets) closeQuietly(s);
    this.#sockets.length = 0;
  }
}

function closeQuietly(s: Socket): void {
  try {
    s.close();
  } catch {
    // already closed
  }
}

/**
 * The cone side of a birthday punch: probes random ports of the symmetric side's address at a
 * bounded rate (one probe per `probeIntervalMs`, at most `probes`) until `done()` or the signal.
 * Returns the number of probes sent.
 */
export async function probeRandomPorts(
  send: (msg: Buffer, to: Addr) => void,
  host: string,
  sid: string,
  tok: string,
  limits: BirthdayLimits,
  done: () => boolean,
  signal: AbortSignal,
): Promise<number> {
  const probe = encodeProbe(PROBE, sid, tok);
  const max = limits.probes ?? C.BIRTHDAY_PROBES;
  const interval = limits.probeIntervalMs ?? C.BIRTHDAY_PROBE_INTERVAL_MS;
  const t0 = performance.now();
  let sent = 0;
  while (sent < max && !done() && !signal.aborted) {
    // Paced by the clock, not by the timer: on a busy machine a 10 ms timer fires late, and
    // sending one probe per firing would lower the rate (and the odds within the deadline).
    // At most BIRTHDAY_PROBE_BURST probes at once when behind, so the rate stays bounded.
    const due = Math.min(max, Math.floor((performance.now() - t0) / interval) + 1);
    for (let n = 0; sent < due && n < C.BIRTHDAY_PROBE_BURST && !done(); n++) {
      const port = 1024 + Math.floor(Math.random() * (65536 - 1024));
      send(probe, { host, port });
      sent++;
    }
    await sleep(interval, signal).catch(() => {});
  }
  return sent;
}
