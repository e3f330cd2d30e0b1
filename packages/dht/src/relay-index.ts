import { createHash } from 'node:crypto';
import { GLOBAL_RELAY_REGION, RELAY_INDEX_PREFIX } from './constants.js';

// Relays must be findable without knowing their ids. Each relay offer is stored under two
// well-known Kademlia keys: the global key, SHA-256("dpc-relay:*")[0..16], and its region's
// key, SHA-256("dpc-relay:" + region)[0..16]. Each key holds a bounded set of offers, one per
// relay node id (a newer seq replaces an older one).

/** The 16-byte Kademlia key of a relay region (`*` is the global index). */
export function relayIndexKey(region: string = GLOBAL_RELAY_REGION): Buffer {
  const name = region.trim().toLowerCase() || GLOBAL_RELAY_REGION;
  return createHash('sha256')
    .update(RELAY_INDEX_PREFIX + name)
    .digest()
    .subarray(0, 16);
}

/** The keys a relay offer for `region` is published under: global first, then its region. */
export function relayIndexKeys(region: string): Buffer[] {
  const global = relayIndexKey(GLOBAL_RELAY_REGION);
  const own = relayIndexKey(region);
  return own.equals(global) ? [global] : [global, own];
}
