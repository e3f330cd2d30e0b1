import {
  type Applicability,
  type Connection,
  type NetworkState,
  type SignedRecord,
  type Strategy,
  TierNotApplicableError,
  throwIfAborted,
  tierPriority,
} from '@dpc/core';
import { type HolePuncher, pairVerdict } from './hole-puncher.js';

class HolePunchStrategy implements Strategy {
  readonly name = 'udp_hole_punch' as const;
  readonly priority = tierPriority('udp_hole_punch');
  readonly #hp: HolePuncher;

  constructor(hp: HolePuncher) {
    this.#hp = hp;
  }

  isApplicable(peer: SignedRecord<'endpoint'>, network: NetworkState): Applicability {
    if (!this.#hp.enabled) return { applicable: false, reason: 'enable_hole_punching is off' };
    const b = peer.body;
    if (!b.accepts_punch) return { applicable: false, reason: 'the peer does not accept hole punching' };
    if (b.punch.length === 0) return { applicable: false, reason: 'the peer published no punch endpoint' };
    const mine = network.natType ?? this.#hp.nat?.type;
    // Our own NAT not measured yet (a node that just started): connect measures it first and
    // then decides; only what the peer's record rules out is decided here.
    const why = mine === undefined ? pairVerdict('none', b.nat_type) : pairVerdict(mine, b.nat_type);
    return why ? { applicable: false, reason: why } : { applicable: true };
  }

  async connect(peer: SignedRecord<'endpoint'>, opts: { signal: AbortSignal; network?: NetworkState }): Promise<Connection> {
    throwIfAborted(opts.signal);
    const verdict = this.isApplicable(peer, opts.network ?? { hubConnected: false });
    if (!verdict.applicable) throw new TierNotApplicableError(this.name, verdict.reason);
    return this.#hp.connect(peer, { signal: opts.signal });
  }
}

/**
 * Tier 4 for the orchestrator: not applicable at once when UDP is blocked on either side, both
 * sides are symmetric, or the peer does not accept punching; otherwise a DHT-signalled punch with
 * TLS 1.3 over UDX on the punched path.
 */
export function holePunchStrategy(hp: HolePuncher): Strategy {
  return new HolePunchStrategy(hp);
}
