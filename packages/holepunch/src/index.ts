/**
 * @dpc/holepunch — tier 4: UDP hole punching coordinated through the DHT (no Hub), with a
 * reliable UDX stream and TLS 1.3 on the punched path.
 *
 * @example
 * ```ts
 * import { createDht } from '@dpc/dht';
 * import { createHolePuncher, holePunchStrategy } from '@dpc/holepunch';
 *
 * const hp = createHolePuncher({ identity, dht, onIncoming: (conn) => conn.on('message', console.log) });
 * hp.start();
 * console.log(await hp.measureNat()); // { type: 'cone', endpoint: { ip, port }, evidence: '…' }
 * const conn = await holePunchStrategy(hp).connect(await dht.findPeer(peerId), { signal: AbortSignal.timeout(15_000) });
 * await conn.send({ hello: 'over a punched path' });
 * ```
 */
import { HolePuncher, type HolePuncherOptions } from './hole-puncher.js';

export { candidateProblem } from './address-policy.js';
export type { BirthdayLimits } from './birthday.js';
export * as constants from './constants.js';
export { NatDiscoveryError, PathLostError, PunchFailedError, PunchMessageError, PunchRefusedError } from './errors.js';
export type { HolePuncher, HolePuncherOptions } from './hole-puncher.js';
export { isYoungRecord, pairVerdict, punchMode } from './hole-puncher.js';
export { decodeProbe, encodeProbe, isPunchSignal, type PunchSignal, punchSignalSchema } from './messages.js';
export { classifyNat, distinctSamples, type NatSample, type NatType, type NatVerdict } from './nat-type.js';
export { holePunchTier, tierPlugin } from './plugin.js';
export { type Candidate, punchPlan } from './punch-plan.js';
export { holePunchStrategy } from './strategy.js';
export { UdxDuplex } from './udx-duplex.js';

/** Creates tier 4's engine; call `start()` to register on the DHT socket, `stop()` to end everything. */
export function createHolePuncher(opts: HolePuncherOptions): HolePuncher {
  return new HolePuncher(opts);
}
