import { nodeIdFromPublicKey, nodeIdOfKademliaId, verifySignature } from '@dpc/core';
import { subnetKey } from './address.js';
import * as C from './constants.js';
import { fitAnswer, type Request, type ResponseBody } from './messages.js';
import type { NodeContext } from './node-context.js';
import { RateLimiter } from './rate-limit.js';
import { ReplayGuard } from './replay-guard.js';
import type { Peer } from './rpc.js';
import { openSignalEnvelope, registerPayload } from './signalling.js';
import type { WriteTokens } from './write-tokens.js';

/** The requests a DHT node answers: PING, DISCOVER, FIND_NODE/FIND_VALUE, STORE, REGISTER, SIGNAL. */
export class RequestHandler {
  readonly #c: NodeContext;
  readonly #tokens: WriteTokens;
  readonly #learn: (id: Uint8Array, from: Peer) => void;
  readonly #replay: ReplayGuard;
  readonly #forwardLimiter = new RateLimiter({ perSecond: C.DEFAULT_SIGNAL_FORWARD_PER_SEC, burst: C.DEFAULT_SIGNAL_FORWARD_PER_SEC });

  /** `learn` is told of every requester (it may enter the routing table once it answers a PING). */
  constructor(ctx: NodeContext, tokens: WriteTokens, learn: (id: Uint8Array, from: Peer) => void) {
    this.#c = ctx;
    this.#tokens = tokens;
    this.#learn = learn;
    this.#replay = new ReplayGuard({ maxBytes: ctx.o.signalReplayCacheBytes ?? C.DEFAULT_SIGNAL_REPLAY_CACHE_BYTES });
  }

  handle(msg: Request, from: Peer): ResponseBody | null | Promise<ResponseBody | null> {
    const c = this.#c;
    this.#learn(msg.id, from);
    switch (msg.t) {
      case 'ping':
        return { t: 'pong' };
      case 'discover':
        return { t: 'addr', ip: from.host, port: from.port };
      case 'find_node':
      case 'find_value': {
        const contacts = c.table.closest(msg.k, c.k + 1).filter((x) => !Buffer.from(x.id).equals(msg.id));
        const all = msg.t === 'find_value' ? c.store.get(msg.k).map((r) => r.encoded) : [];
        const offset = msg.t === 'find_value' ? (msg.o ?? 0) : 0;
        // 70 bytes of header (t, x, id, tk, nx) stay free under the datagram limit.
        const fit = fitAnswer(all.slice(offset), contacts.slice(0, c.k), C.MAX_DATAGRAM_BYTES - 90);
        return {
          t: 'nodes',
          n: fit.contacts,
          tk: this.#tokens.token(from.host),
          ...(fit.records.length > 0 ? { r: fit.records } : {}),
          ...(fit.recordsLeft > 0 ? { nx: offset + fit.records.length } : {}),
        };
      }
      case 'store': {
        if (!this.#tokens.valid(msg.tk, from.host)) return this.#refuse('bad_token');
        const r = c.store.put(msg.k, msg.r, subnetKey(from.host, from.port, c.policy));
        if (!r.ok) return this.#refuse(r.reason); // rejects.host_quota, rejects.source_key_quota, rejects.key_full, …
        if (r.capped) c.counters.inc('store.expiry_capped');
        if (r.evicted) c.counters.inc(`store.evicted_${r.evicted}`); // store.evicted_key, store.evicted_storage
        return { t: 'ok' };
      }
      case 'register': {
        if (!this.#tokens.valid(msg.tk, from.host)) return this.#refuse('bad_token');
        const now = Date.now();
        if (Math.abs(now - msg.ts) > C.REGISTER_MAX_SKEW_MS) return this.#refuse('stale');
        if (!verifySignature(msg.pk, registerPayload(c.kademliaId, msg.ts), msg.sig)) return this.#refuse('bad_signature');
        const ttl = c.o.registrationTtlMs ?? C.DEFAULT_REGISTRATION_TTL_MS;
        const r = c.registrations.put({ nodeId: nodeIdFromPublicKey(msg.pk), peer: from, ts: msg.ts, expiresAt: now + ttl }, now);
        return r === 'ok' ? { t: 'ok', tk: this.#tokens.token(from.host) } : this.#refuse(r === 'full' ? 'storage_full' : 'replay');
      }
      case 'signal':
        return this.#onSignal(msg, from);
    }
  }

  /** A signal for us is delivered (once); one for a node registered with us is forwarded one hop. */
  async #onSignal(msg: Extract<Request, { t: 'signal' }>, from: Peer): Promise<ResponseBody> {
    const c = this.#c;
    const opened = openSignalEnvelope(msg.e);
    if (typeof opened === 'string') return this.#refuse(opened === 'malformed' ? 'bad_record' : 'bad_signature', `signal_${opened}`);
    if (!opened.to.equals(msg.to)) return this.#refuse('bad_signature', 'signal_wrong_target');
    if (opened.to.equals(c.kademliaId)) {
      const bad = this.#replay.check(opened, subnetKey(from.host, from.port, c.policy));
      // A retransmission of a signal we delivered (its answer was lost or late): ack it again, once delivered is enough.
      if (bad === 'replay') {
        c.counters.inc('signals.duplicate');
        return { t: 'ok' };
      }
      // rejects.signal_stale, rejects.signal_rate_limited, rejects.signal_source_rate_limited
      if (bad) return this.#refuse(bad === 'source_rate_limited' ? 'rate_limited' : bad, `signal_${bad}`);
      c.counters.inc('signals.received');
      c.emitSignal({ from: opened.from, publicKey: opened.publicKey, payload: opened.payload, via: from });
      return { t: 'ok' };
    }
    const target = nodeIdOfKademliaId(msg.to);
    const reg = c.registrations.get(target);
    if (msg.h !== 0 || !reg) return this.#refuse('not_registered');
    if (!this.#forwardLimiter.take(target)) return this.#refuse('rate_limited', 'signal_forward_rate_limited');
    try {
      await c.request(reg.peer, { t: 'signal', to: msg.to, h: 1, e: msg.e }, { signal: c.shutdown, retries: 0 });
      c.counters.inc('signals.forwarded');
      return { t: 'ok' };
    } catch {
      return this.#refuse('undeliverable');
    }
  }

  #refuse(code: string, counter = code): ResponseBody {
    this.#c.counters.inc(`rejects.${counter}`);
    return { t: 'err', c: code };
  }
}
