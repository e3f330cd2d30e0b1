import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { abortable, sleep, type TierDht, timeoutSignal } from '@dpc/core';
import { NAT_CACHE_MS, NAT_DISCOVERY_ROUNDS, NAT_SAMPLE_PEERS } from './constants.js';
import { NatDiscoveryError } from './errors.js';
import { classifyNat, distinctSamples, type NatSample, type NatVerdict } from './nat-type.js';

/** This host's IP addresses (every interface, loopback included). */
export function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .flatMap((a) => (a ? [a.address.replace(/^::ffff:/, '')] : []));
}

export interface NatMonitorOptions {
  dht: Pick<TierDht, 'discoverEndpoint' | 'closestPeers'>;
  /** Classify the NAT (`nat_detection_enabled`); when false only the reflexive endpoint is learnt and the type stays unknown. */
  detect: boolean;
  /** Deadline of one discovery round (`stun_timeout`), ms. */
  roundTimeoutMs: number;
  rounds?: number;
  cacheMs?: number;
  localAddresses?: () => string[];
  /** Pause between rounds, ms. Default 250. */
  roundPauseMs?: number;
  /**
   * Ends a running measurement (the owner stopping). A caller's own signal only ends its wait: the
   * measurement is shared, and one caller giving up (a punch abandoned for a crossing one) must not
   * fail the others waiting for it.
   */
  signal?: AbortSignal;
}

/**
 * Measures the NAT in front of the DHT socket from DISCOVER_ENDPOINT answers of distinct DHT peers
 * (up to `NAT_SAMPLE_PEERS`), asking again while the verdict is unsure (up to `rounds`), and keeps
 * the verdict for `cacheMs`. Concurrent callers share one measurement.
 */
export class NatMonitor {
  readonly #o: NatMonitorOptions;
  #verdict: { at: number; v: NatVerdict } | undefined;
  #running: Promise<NatVerdict> | undefined;

  constructor(o: NatMonitorOptions) {
    this.#o = o;
  }

  /** The last verdict, if any (possibly stale). */
  get last(): NatVerdict | undefined {
    return this.#verdict?.v;
  }

  /** A fresh verdict (cached for `cacheMs`), measuring when needed. */
  async get(opts: { signal?: AbortSignal; force?: boolean } = {}): Promise<NatVerdict> {
    const c = this.#verdict;
    if (!opts.force && c && performance.now() - c.at < (this.#o.cacheMs ?? NAT_CACHE_MS)) return c.v;
    this.#running ??= this.#measure(this.#o.signal).finally(() => {
      this.#running = undefined;
    });
    return abortable(this.#running, opts.signal);
  }

  async #morePeers(samples: readonly NatSample[], signal: AbortSignal): Promise<Array<{ host: string; port: number }> | undefined> {
    const lookup = this.#o.dht.closestPeers;
    if (!lookup || samples.length >= NAT_SAMPLE_PEERS) return undefined;
    const asked = new Set(samples.map((s) => s.responder));
    const found = await lookup.call(this.#o.dht, randomBytes(16), { signal }).catch(() => []);
    return found
      .filter((p) => !asked.has(p.nodeId))
      .slice(0, NAT_SAMPLE_PEERS - samples.length)
      .map((p) => ({ host: p.host, port: p.port }));
  }

  async #measure(signal?: AbortSignal): Promise<NatVerdict> {
    const rounds = this.#o.rounds ?? NAT_DISCOVERY_ROUNDS;
    const local = (this.#o.localAddresses ?? hostAddresses)();
    let samples: NatSample[] = [];
    let verdict: NatVerdict | undefined;
    let lastError: unknown;
    for (let r = 0; r < rounds; r++) {
      const t = timeoutSignal(this.#o.roundTimeoutMs, 'endpoint discovery', signal);
      try {
        // Fewer distinct answers than wanted (a small routing table, e.g. one subnet limit): ask
        // nodes a lookup finds that have not answered yet.
        const peers = samples.length > 0 ? await this.#morePeers(samples, t.signal) : undefined;
        const res = await this.#o.dht.discoverEndpoint({ signal: t.signal, ...(peers && peers.length > 0 && { peers }) });
        const got = res.samples?.map((s) => ({ ip: s.ip, port: s.port, responder: s.responder.nodeId })) ?? [
          { ip: res.ip, port: res.port, responder: `vote-${r}` },
        ];
        samples = distinctSamples([...samples, ...got.map((s) => ({ ...s, ip: s.ip.replace(/^::ffff:/, '') }))], NAT_SAMPLE_PEERS);
      } catch (err) {
        if (signal?.aborted) throw err;
        lastError = err;
      } finally {
        t.clear();
      }
      const final = r === rounds - 1;
      verdict = classifyNat(samples, local, final);
      if (!this.#o.detect && verdict.endpoint) {
        verdict = { ...verdict, type: 'unknown', unsure: false };
        break;
      }
      if (verdict.type === 'none' || (!verdict.unsure && samples.length >= 3)) break;
      if (!verdict.unsure && final) break;
      if (!final) await sleep(this.#o.roundPauseMs ?? 250, signal);
    }
    const v = verdict as NatVerdict;
    if (v.samples.length === 0 && lastError !== undefined && !isUdpSilence(lastError)) {
      // The DHT itself could not ask (no peer known): not evidence of blocked UDP.
      throw new NatDiscoveryError('no DHT peer to measure the NAT with', { cause: lastError });
    }
    this.#verdict = { at: performance.now(), v };
    return v;
  }
}

/** True when the error means peers were asked and none answered (UDP may be blocked). */
function isUdpSilence(err: unknown): boolean {
  const m = (err as Error)?.message ?? '';
  return /none of \d+ peers answered/.test(m) || (err as { code?: string })?.code === 'DPC_TIMEOUT';
}
