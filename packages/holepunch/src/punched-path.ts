import { createSocket, type Socket } from 'node:dgram';
import type { Counters } from '@dpc/core';
import UDX, { type UdxSocket, type UdxStream } from 'udx-native';
import { PathLostError } from './errors.js';
import { encodeProbe, KEEPALIVE } from './messages.js';
import { UdxDuplex } from './udx-duplex.js';

/** Where punched datagrams leave from: the DHT socket (through its demultiplexer) or a birthday socket. */
export interface Carrier {
  send(msg: Uint8Array, to: { host: string; port: number }): Promise<void>;
}

/**
 * The UDX engine of a node: one UDX socket on loopback that every punched path's streams use.
 * udx-native binds sockets of its own and cannot send from the DHT's node:dgram socket, whose
 * NAT mapping is the one discovery measured and the punch opened. So each path has a loopback
 * "shim" socket standing for the remote peer: UDX sends to the shim, the shim's datagrams leave
 * through the carrier (the punched socket) unchanged, and what the carrier receives from the peer
 * is handed to UDX from the shim. UDX datagrams start with 0xff 0x01, a prefix the DHT socket's
 * demultiplexer routes to this package.
 */
export class UdxEngine {
  readonly udx = new UDX();
  readonly socket: UdxSocket;
  readonly #ids = new Set<number>();

  constructor() {
    this.socket = this.udx.createSocket();
    this.socket.bind(0, '127.0.0.1');
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** A stream id not in use on this engine. */
  allocateStreamId(): number {
    for (;;) {
      const id = 1 + Math.floor(Math.random() * 0xffff_fffe);
      if (!this.#ids.has(id)) {
        this.#ids.add(id);
        return id;
      }
    }
  }

  releaseStreamId(id: number): void {
    this.#ids.delete(id);
  }

  async close(): Promise<void> {
    await this.socket.close();
  }
}

export interface PunchedPathOptions {
  engine: UdxEngine;
  carrier: Carrier;
  /** The peer's address the punch found (its NAT mapping). */
  remote: { host: string; port: number };
  sessionId: string;
  token: string;
  localStreamId: number;
  remoteStreamId: number;
  keepaliveMs: number;
  pathLostMs: number;
  counters?: Counters;
  /** Called once when the path closes (lost or closed). */
  onClose?: () => void;
}

/** A punched UDP path carrying one UDX stream, with keepalives; `duplex` is what TLS runs over. */
export class PunchedPath {
  /** The peer's address (its NAT mapping); see `retarget`. */
  readonly remote: { host: string; port: number };
  readonly sessionId: string;
  readonly token: string;
  readonly #o: PunchedPathOptions;
  readonly #shim: Socket;
  readonly #stream: UdxStream;
  readonly duplex: UdxDuplex;
  readonly #timer: NodeJS.Timeout;
  #lastHeard = performance.now();
  #closed = false;
  #udxHeard = false;

  static async open(o: PunchedPathOptions): Promise<PunchedPath> {
    const shim = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      shim.once('error', reject);
      shim.bind(0, '127.0.0.1', () => {
        shim.off('error', reject);
        resolve();
      });
    });
    return new PunchedPath(o, shim);
  }

  private constructor(o: PunchedPathOptions, shim: Socket) {
    this.#o = o;
    this.remote = { ...o.remote };
    this.sessionId = o.sessionId;
    this.token = o.token;
    this.#shim = shim;
    const enginePort = o.engine.port;
    shim.on('error', () => o.counters?.inc('holepunch.shim_errors'));
    shim.on('message', (buf, rinfo) => {
      // Only the engine's datagrams leave through the carrier.
      if (rinfo.port !== enginePort || rinfo.address !== '127.0.0.1') return;
      o.carrier.send(buf, this.remote).catch(() => o.counters?.inc('holepunch.send_errors'));
    });
    this.#stream = o.engine.udx.createStream(o.localStreamId);
    this.#stream.connect(o.engine.socket, o.remoteStreamId, shim.address().port, '127.0.0.1');
    this.duplex = new UdxDuplex(this.#stream);
    this.duplex.on('close', () => this.close());
    this.#timer = setInterval(() => this.#tick(), o.keepaliveMs);
    this.#timer.unref();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True once a UDX datagram came from the peer (its side of the path is open too). */
  get udxHeard(): boolean {
    return this.#udxHeard;
  }

  /** A UDX datagram from the peer, received on the carrier. */
  deliver(buf: Buffer): void {
    if (this.#closed) return;
    this.#lastHeard = performance.now();
    this.#udxHeard = true;
    this.#shim.send(buf, this.#o.engine.port, '127.0.0.1');
  }

  /**
   * The peer's session token came from another address before any UDX datagram did: its side of
   * the path is there (a birthday punch can win on two different sockets of the symmetric side,
   * and the one the peer kept is where it sends from). Datagrams go there from now on.
   */
  retarget(to: { host: string; port: number }): void {
    this.remote.host = to.host;
    this.remote.port = to.port;
  }

  /** Something else (a keepalive, a probe) was heard from the peer. */
  heard(): void {
    this.#lastHeard = performance.now();
  }

  #tick(): void {
    const silent = performance.now() - this.#lastHeard;
    if (silent > this.#o.pathLostMs) {
      this.#o.counters?.inc('holepunch.paths_lost');
      this.duplex.destroy(new PathLostError(Math.round(silent)));
      this.close();
      return;
    }
    this.#o.carrier.send(encodeProbe(KEEPALIVE, this.#o.sessionId, this.#o.token), this.remote).catch(() => {});
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    if (!this.duplex.destroyed) this.duplex.destroy();
    this.#o.engine.releaseStreamId(this.#o.localStreamId);
    try {
      this.#shim.close();
    } catch {
      // already closed
    }
    this.#o.onClose?.();
  }
}
