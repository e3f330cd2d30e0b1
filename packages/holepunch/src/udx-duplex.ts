import { Duplex } from 'node:stream';
import type { UdxStream } from 'udx-native';

/**
 * A node:stream Duplex over a UDX stream. UDX streams are streamx streams: `tls.connect({ socket })`
 * on one handshakes and then never delivers data (node's TLS wraps a non-net stream through a
 * JSStreamSocket that relies on node:stream internals). This adapter moves bytes both ways with
 * backpressure: a full readable side pauses the UDX stream, a full UDX write buffer holds the
 * write callback until 'drain'.
 */
export class UdxDuplex extends Duplex {
  readonly #s: UdxStream;
  #onDrain: (() => void) | undefined;

  constructor(stream: UdxStream) {
    super({ allowHalfOpen: false });
    this.#s = stream;
    stream.on('data', (d: Buffer) => {
      if (!this.push(d)) stream.pause();
    });
    stream.on('end', () => this.push(null));
    stream.on('drain', () => {
      const cb = this.#onDrain;
      this.#onDrain = undefined;
      cb?.();
    });
    stream.on('error', (err: Error) => this.destroy(err));
    stream.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
  }

  override _read(): void {
    this.#s.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#s.write(chunk)) cb();
    else this.#onDrain = () => cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#s.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#onDrain = undefined;
    this.#s.destroy();
    cb(err);
  }
}
