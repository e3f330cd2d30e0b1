import {
  type Applicability,
  type Connection,
  type Counters,
  DialError,
  hostPort,
  type Identity,
  isDpcError,
  type NetworkState,
  raceStaggered,
  type SignedRecord,
  type Strategy,
  type TierName,
  TierNotApplicableError,
  tierPriority,
  timeoutSignal,
  toAbortError,
} from '@dpc/core';
import {
  type Candidate,
  ipv4Candidates,
  ipv6Candidates,
  isGlobalIPv6,
  isLoopback,
  type LocalAddresses,
  localAddresses,
} from './address.js';
import { DEFAULT_IPV4_TIMEOUT_MS, DEFAULT_IPV6_TIMEOUT_MS, DEFAULT_STAGGER_MS } from './constants.js';
import { dialCandidate } from './dial.js';

export interface DirectStrategyOptions {
  identity: Identity;
  /** Deadline of the whole tier attempt, ms. Default 10 000 (spec: ipv6_timeout / ipv4_timeout). */
  timeoutMs?: number;
  /** Delay before the next candidate starts while earlier ones are still pending. Default 250 ms. */
  staggerMs?: number;
  /** Handshake deadline per candidate, ms. Default: the tier deadline. */
  handshakeTimeoutMs?: number;
  /** Dial loopback addresses (tests only). Default false. */
  allowLoopback?: boolean;
  /**
   * This node's external IPv4 addresses, when the network state passed to connect() carries
   * none. Tier 2 dials a peer's local address only when one of them equals the peer's external
   * address (same NAT). Default: unknown, so only external (and, in tests, loopback) addresses.
   */
  externalIPv4?: () => string[] | undefined;
  /** This node's addresses; default read from the interfaces at each attempt. */
  localAddresses?: () => LocalAddresses;
  counters?: Counters;
}

class DirectStrategy implements Strategy {
  readonly name: TierName;
  readonly priority: number;
  readonly #opts: DirectStrategyOptions;

  constructor(name: 'ipv6_direct' | 'ipv4_direct', opts: DirectStrategyOptions) {
    this.name = name;
    this.priority = tierPriority(name);
    this.#opts = opts;
  }

  candidates(peer: SignedRecord<'endpoint'>, network?: NetworkState): Candidate[] {
    const allowLoopback = this.#opts.allowLoopback ?? false;
    if (this.name === 'ipv6_direct') return ipv6Candidates(peer.body, { allowLoopback });
    const ownExternalIPv4 = network?.externalIPv4 ?? this.#opts.externalIPv4?.();
    return ipv4Candidates(peer.body, this.#local(network), { allowLoopback, ownExternalIPv4 });
  }

  #local(network?: NetworkState): LocalAddresses {
    if (network?.localIPv4 || network?.localIPv6) return { ipv4: network.localIPv4 ?? [], ipv6: network.localIPv6 ?? [] };
    return (this.#opts.localAddresses ?? localAddresses)();
  }

  isApplicable(peer: SignedRecord<'endpoint'>, network: NetworkState): Applicability {
    if (this.candidates(peer, network).length > 0) {
      if (this.name === 'ipv6_direct') {
        const mine = this.#local(network).ipv6;
        const ok = mine.some((ip) => isGlobalIPv6(ip) || (this.#opts.allowLoopback && isLoopback(ip)));
        if (!ok) return { applicable: false, reason: 'this node has no global IPv6 address' };
      }
      return { applicable: true };
    }
    return {
      applicable: false,
      reason:
        this.name === 'ipv6_direct'
          ? 'peer announces no global IPv6 address (2000::/3)'
          : 'peer has no external IPv4 address, and no local one behind our NAT (same external IPv4) on a shared subnet',
    };
  }

  async connect(peer: SignedRecord<'endpoint'>, opts: { signal: AbortSignal; network?: NetworkState }): Promise<Connection> {
    const verdict = this.isApplicable(peer, opts.network ?? { hubConnected: false });
    if (!verdict.applicable) throw new TierNotApplicableError(this.name, verdict.reason);
    const candidates = this.candidates(peer, opts.network);
    const timeoutMs = this.#opts.timeoutMs ?? (this.name === 'ipv6_direct' ? DEFAULT_IPV6_TIMEOUT_MS : DEFAULT_IPV4_TIMEOUT_MS);
    const deadline = timeoutSignal(timeoutMs, this.name, opts.signal);
    const counters = this.#opts.counters;
    try {
      return await raceStaggered(
        candidates.map(
          (c) => (signal: AbortSignal) =>
            dialCandidate(c, {
              identity: this.#opts.identity,
              tier: this.name,
              expectedNodeId: peer.nodeId,
              signal,
              handshakeTimeoutMs: this.#opts.handshakeTimeoutMs ?? timeoutMs,
              ...(counters && { counters }),
            }),
        ),
        { staggerMs: this.#opts.staggerMs ?? DEFAULT_STAGGER_MS, signal: deadline.signal, onLoser: (conn) => void conn.close() },
      );
    } catch (err) {
      if (deadline.signal.aborted) throw toAbortError(deadline.signal);
      if (err instanceof AggregateError) {
        const reasons = candidates.map((c, i) => `${hostPort(c.ip, c.port)} (${c.kind}): ${describe(err.errors[i])}`);
        throw new DialError(`${this.name}: every candidate failed: ${reasons.join('; ')}`, err.errors);
      }
      throw err;
    } finally {
      deadline.clear();
    }
  }
}

function describe(err: unknown): string {
  if (isDpcError(err)) return `${err.code}: ${err.message}`;
  const e = err as { code?: string; message?: string };
  return e?.code ?? e?.message ?? String(err);
}

/** Tier 1: direct TLS over TCP to the peer's global IPv6 addresses. */
export function ipv6DirectStrategy(
  opts: DirectStrategyOptions,
): Strategy & { candidates(peer: SignedRecord<'endpoint'>, network?: NetworkState): Candidate[] } {
  return new DirectStrategy('ipv6_direct', opts);
}

/** Tier 2: direct TLS over TCP to the peer's local IPv4 address (same NAT, shared subnet) or external one. */
export function ipv4DirectStrategy(
  opts: DirectStrategyOptions,
): Strategy & { candidates(peer: SignedRecord<'endpoint'>, network?: NetworkState): Candidate[] } {
  return new DirectStrategy('ipv4_direct', opts);
}
