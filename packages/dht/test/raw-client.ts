import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { decode, encode } from '@dpc/core';

/** A bare UDP socket speaking the DHT wire format by hand, to play an attacker in tests. */
export class RawClient {
  readonly socket: Socket;
  readonly id = randomBytes(16);
  readonly #waiters = new Map<string, (m: Record<string, unknown>) => void>();
  received = 0;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (buf) => {
      this.received++;
      try {
        const m = decode(buf) as Record<string, unknown>;
        const x = Buffer.from(m.x as Uint8Array).toString('hex');
        this.#waiters.get(x)?.(m);
      } catch {
        // not for us
      }
    });
  }

  static async open(): Promise<RawClient> {
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    return new RawClient(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(port: number, bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(bytes, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  }

  /** Sends a request (x and id added) and waits for the answer. */
  async request(port: number, body: Record<string, unknown>, timeoutMs = 1000): Promise<Record<string, unknown>> {
    const x = randomBytes(4);
    const hex = x.toString('hex');
    const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
      const t = setTimeout(() => {
        this.#waiters.delete(hex);
        reject(new Error(`no answer to ${String(body.t)}`));
      }, timeoutMs);
      this.#waiters.set(hex, (m) => {
        clearTimeout(t);
        this.#waiters.delete(hex);
        resolve(m);
      });
    });
    await this.send(port, encode({ ...body, x, id: this.id }));
    return answer;
  }

  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }
}
