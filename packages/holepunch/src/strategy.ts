import { defineStrategy, type Strategy } from '@dpc/core';
import { type HolePuncher, isYoungRecord, pairVerdict } from './hole-puncher.js';

/**
 * Tier 4 for the orchestrator: not applicable at once when UDP is blocked on either side, both
 * sides are symmetric, or the peer does not accept punching (unless its record is young: see
 * `HolePuncher.connect`); otherwise a DHT-signalled punch with
 * TLS 1.3 over UDX on the punched path.
 */
export function holePunchStrategy(hp: HolePuncher): Strategy {
  return defineStrategy({
    name: 'udp_hole_punch',
    isApplicable(peer, network) {
      if (!hp.enabled) return { applicable: false, reason: 'enable_hole_punching is off' };
      const b = peer.body;
      if (!b.accepts_punch) {
        // A record issued moments ago may be the one from before the peer's NAT verdict: connect
        // looks the peer up once more (and gives up at once if the newer record says no too).
        if (isYoungRecord(peer)) return { applicable: true };
        return { applicable: false, reason: 'the peer does not accept hole punching' };
      }
      if (b.punch.length === 0) return { applicable: false, reason: 'the peer published no punch endpoint' };
      const mine = network.natType ?? hp.nat?.type;
      // Our own NAT not measured yet (a node that just started): connect measures it first and
      // then decides; only what the peer's record rules out is decided here.
      const why = mine === undefined ? pairVerdict('none', b.nat_type) : pairVerdict(mine, b.nat_type);
      return why ? { applicable: false, reason: why } : { applicable: true };
    },
    // A birthday punch (cone ↔ symmetric) gets `[hole_punch] birthday_timeout` when longer.
    deadlineMs: (peer, network) => hp.birthdayDeadlineMs(peer.body.nat_type, network.natType ?? hp.nat?.type),
    connect: (peer, { signal }) => hp.connect(peer, { signal }),
  });
}
