/**
 * @dpc/webrtc-hub — tier 3: WebRTC data channels (werift) over STUN and TURN, signalled through
 * a Hub that cannot forge who is at the other end: every offer and answer carries the sender's
 * Ed25519 signature over its DTLS fingerprint and the session, checked against the node wanted.
 *
 * @example
 * ```ts
 * import { generateIdentity } from '@dpc/core';
 * import { createRtcPeer } from '@dpc/webrtc-hub';
 *
 * // `hubA` / `hubB`: anything with send(to, payload) and on/off('signal') — a HubClient.
 * const alice = createRtcPeer({ identity: generateIdentity(), signaller: hubA, iceServers: [{ urls: 'stun:stun.example.org:3478' }] });
 * const bob = createRtcPeer({ identity: generateIdentity(), signaller: hubB });
 * bob.on('connection', (conn) => conn.on('message', (m) => console.log('bob got', m)));
 * const conn = await alice.connect(bob.nodeId, { signal: AbortSignal.timeout(30_000) });
 * await conn.send({ text: 'hello over WebRTC' });
 * ```
 */
import { RtcPeer, type RtcPeerOptions } from './rtc/rtc-peer.js';

export * from './hub/index.js';

export { BINDING_TAG, type BindingFields, bindingText, sdpFingerprint, signBinding, verifyBinding } from './rtc/binding.js';
export * from './rtc/constants.js';
export { DataChannelStream, type DataChannelStreamOptions } from './rtc/datachannel-stream.js';
export * from './rtc/errors.js';
export { iceServersFromConfig } from './rtc/ice-servers.js';
export { MessageConnection } from './rtc/message-connection.js';
export {
  isRtcSignal,
  RTC_PROTOCOLS,
  type RtcAnswer,
  type RtcEnd,
  type RtcIce,
  type RtcOffer,
  type RtcProtocol,
  type RtcSignal,
  rtcSignalSchema,
} from './rtc/messages.js';
export type { RtcConnectionInfo, RtcConnectOptions, RtcPeer, RtcPeerOptions, SelectedPair } from './rtc/rtc-peer.js';
export { hubWebRtcStrategy, type WebRtcStrategyOptions } from './rtc/strategy.js';

/** Creates tier 3's WebRTC engine for one node (see `RtcPeer`). Call `stop()` when done. */
export function createRtcPeer(o: RtcPeerOptions): RtcPeer {
  return new RtcPeer(o);
}
export { tierPlugin, type WebRtcTierOptions, webRtcTier } from './rtc/plugin.js';
