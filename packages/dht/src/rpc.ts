import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { type Counters, isDpcError, throwIfAborted, toAbortError } from '@dpc/core';
import { onAbort, sleepUnless } from './abort-fanout.js';
import { type AddressPolicy, hostKey, normalizeIp } from './address.js';
import { DEFAULT_RETRY_BACKOFF_MS, DEFAULT_RPC_RETRIES, DEFAULT_RPC_TIMEOUT_MS, MAX_DATAGRAM_BYTES } from './constants.js';
import { DhtNotRunningError, RpcRemoteError, RpcTimeoutError } from './errors.js';
import { decodeDatagram, encodeDatagram, type Request, type RequestBody, type Response, type ResponseBody } from './messages.js';
import type { RateLimiter } from './rate-limit.js';

/** A UDP address. */
export interface Peer {
  host: string;
  port: number;
}

/** A matched response and the address it came from. */
export interface Reply {
  msg: Response;
  from: Peer;
}

export interface RequestOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  retries?: number;
}

export interface RpcOptions {
  localId: Buffer;
  counters: Counters;
  policy: AddressPolicy;
  limiter: RateLimiter;
  rpcTimeoutMs?: number;
  rpcRetries?: number;
  retryBackoffMs?: number;
  maxPending?: number;
  /** Sends one datagram (the DHT's shared UDP socket). */
  send: (bytes: Uint8Array, to: Peer) => Promise<void>;
  /** Answers a request; null sends nothing. Must not throw (errors are counted anyway). */
  onRequest: (msg: Request, from: Peer) => ResponseBody | null | Promise<ResponseBody | null>;
}

const peerString = (p: Peer): string => (isIP(p.host) === 6 ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`);

/**
 * The request/response layer over the DHT's UDP socket (`udp-mux.ts` hands it the DHT's
 * datagrams): transaction ids, matching of responses by (txid, address), timeouts, retries with
 * backoff, per-host rate limit, and counting of every datagram dropped. `onDatagram` never throws.
 */
export class Rpc {
  readonly #o: RpcOptions;
  readonly #pending = new Map<string, { type: string; done: (r: Reply | Error) => void }>();
  /** Requests awaiting an answer per address (`host|port`). */
  readonly #pendingTo = new Map<string, number>();
  #closed = false;

  constructor(opts: RpcOptions) {
    this.#o = opts;
  }

  /** Whether a request to `to` awaits its answer (which will put the responder in the routing table). */
  awaiting(to: Peer): boolean {
    return this.#pendingTo.has(`${normalizeIp(to.host)}|${to.port}`);
  }

  /** Sends a request and waits for its matched response; remote `err` answers reject. */
  async request(to: Peer, body: RequestBody, opts: RequestOptions = {}): Promise<Reply> {
    const retries = opts.retries ?? this.#o.rpcRetries ?? DEFAULT_RPC_RETRIES;
    const backoff = this.#o.retryBackoffMs ?? DEFAULT_RETRY_BACKOFF_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#once(to, body, opts.timeoutMs ?? this.#o.rpcTimeoutMs ?? DEFAULT_RPC_TIMEOUT_MS, opts.signal);
      } catch (err) {
        if ((err as { code?: string }).code !== 'DPC_DHT_RPC_TIMEOUT' || attempt >= retries) throw err;
        await sleepUnless(backoff * 2 ** attempt, opts.signal, toAbortError);
      }
    }
  }

  #once(to: Peer, body: RequestBody, timeoutMs: number, signal: AbortSignal | undefined): Promise<Reply> {
    throwIfAborted(signal);
    if (this.#closed) throw new DhtNotRunningError(body.t);
    if (this.#pending.size >= (this.#o.maxPending ?? 8192)) throw new RpcTimeoutError(body.t, peerString(to), 0);
    const host = normalizeIp(to.host);
    let x: Buffer;
    let key: string;
    do {
      x = randomBytes(4);
      key = `${x.toString('hex')}|${host}|${to.port}`;
    } while (this.#pending.has(key));
    const bytes = encodeDatagram({ ...body, x, id: this.#o.localId } as Request);
    const where = `${host}|${to.port}`;
    return new Promise<Reply>((resolve, reject) => {
      let off = () => {};
      const timer = setTimeout(() => {
        this.#o.counters.inc('timeouts');
        done(new RpcTimeoutError(body.t, peerString(to), timeoutMs));
      }, timeoutMs);
      const done = (r: Reply | Error) => {
        clearTimeout(timer);
        off();
        if (!this.#pending.delete(key)) return;
        const n = this.#pendingTo.get(where) ?? 1;
        if (n <= 1) this.#pendingTo.delete(where);
        else this.#pendingTo.set(where, n - 1);
        if (r instanceof Error) reject(r);
        else if (r.msg.t === 'err') reject(new RpcRemoteError(body.t, peerString(to), r.msg.c));
        else resolve(r);
      };
      this.#pending.set(key, { type: body.t, done });
      this.#pendingTo.set(where, (this.#pendingTo.get(where) ?? 0) + 1);
      if (signal) off = onAbort(signal, () => done(toAbortError(signal)));
      this.#o.counters.inc(`rpc_out.${body.t}`);
      this.#o.send(bytes, to).catch((err: Error) => done(err));
    });
  }

  /** Sends a datagram that expects no answer (responses). */
  #send(to: Peer, msg: ResponseBody & { x: Uint8Array; id: Uint8Array }): void {
    if (this.#closed) return;
    let bytes: Buffer;
    try {
      bytes = encodeDatagram(msg);
    } catch {
      this.#o.counters.inc('errors.oversized_response');
      return;
    }
    this.#o.send(bytes, to).catch(() => undefined);
  }

  /** One datagram for the DHT (its first byte is a MessagePack map header), from `from` (normalized). */
  onDatagram(buf: Buffer, from: Peer): undefined {
    const c = this.#o.counters;
    try {
      if (!this.#o.limiter.take(hostKey(from.host, from.port, this.#o.policy))) {
        c.inc('rejects.rate_limited');
        return;
      }
      if (buf.length > MAX_DATAGRAM_BYTES) {
        c.inc('rejects.oversized');
        return;
      }
      let d: ReturnType<typeof decodeDatagram>;
      try {
        d = decodeDatagram(buf);
      } catch (err) {
        // rejects.decode_limit: refused by the bounded pre-decode (a MessagePack bomb); rejects.malformed: anything else
        c.inc(isDpcError(err, 'DPC_DECODE_LIMIT') ? 'rejects.decode_limit' : 'rejects.malformed');
        return;
      }
      if (d.kind === 'response') {
        const p = this.#pending.get(`${Buffer.from(d.msg.x).toString('hex')}|${from.host}|${from.port}`);
        if (!p) {
          c.inc('rejects.unknown_response');
          return;
        }
        p.done({ msg: d.msg, from });
        return;
      }
      const req = d.msg;
      c.inc(`rpc_in.${req.t}`);
      const answer = (body: ResponseBody | null) => {
        if (body) this.#send(from, { ...body, x: req.x, id: this.#o.localId });
      };
      const out = this.#o.onRequest(req, from);
      if (out instanceof Promise) out.then(answer, () => c.inc('errors.handler'));
      else answer(out);
    } catch {
      c.inc('errors.handler');
    }
  }

  /** Stops: every pending request rejects with DhtNotRunningError, nothing more is sent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of [...this.#pending.values()]) p.done(new DhtNotRunningError(p.type));
  }
}
