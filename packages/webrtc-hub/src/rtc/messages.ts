import { type Infer, s } from '@dpc/core';
import { MAX_CANDIDATE_CHARS, MAX_SDP_CHARS } from './constants.js';

/** A session id: 16 random bytes, hex. Chosen by the offerer. */
const sid = s.string({ pattern: /^[0-9a-f]{32}$/ });
/** Raw Ed25519 public key, base64url (no padding). */
const pk = s.string({ pattern: /^[A-Za-z0-9_-]{43}$/ });
/** Ed25519 signature, base64url (no padding). */
const sig = s.string({ pattern: /^[A-Za-z0-9_-]{86}$/ });
const exp = s.int({ min: 0, max: 2 ** 52 });
/** The signer's DTLS fingerprint as signed: `sha-256 AB:CD:…`. */
const fp = s.string({ pattern: /^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$/ });

/**
 * What runs over the data channel: `dpc-tls/1` — the @dpc/core TLS 1.3 channel (node ↔ node);
 * `dpc-msg/1` — JSON messages authenticated by the signed DTLS fingerprints only (a browser).
 */
export const RTC_PROTOCOLS = ['dpc-tls/1', 'dpc-msg/1'] as const;
export type RtcProtocol = (typeof RTC_PROTOCOLS)[number];

/** Offer: the offerer's SDP and its binding (signed over its DTLS fingerprint). */
export const rtcOfferSchema = s.object({
  t: s.literal('rtc-offer'),
  sid,
  proto: s.oneOf(RTC_PROTOCOLS),
  sdp: s.string({ max: MAX_SDP_CHARS }),
  fp,
  pk,
  exp,
  sig,
});
/** Answer: the answerer's SDP and its binding. */
export const rtcAnswerSchema = s.object({
  t: s.literal('rtc-answer'),
  sid,
  sdp: s.string({ max: MAX_SDP_CHARS }),
  fp,
  pk,
  exp,
  sig,
});
/** One trickled ICE candidate (`c` empty: end of candidates). Unsigned: ICE cannot break DTLS. */
export const rtcIceSchema = s.object({
  t: s.literal('rtc-ice'),
  sid,
  c: s.string({ max: MAX_CANDIDATE_CHARS }),
  mid: s.optional(s.string({ max: 16 })),
});
/** Ends a session being set up (refusal, failure, abort). */
export const rtcEndSchema = s.object({ t: s.literal('rtc-end'), sid, reason: s.string({ max: 200 }) });

export const rtcSignalSchema = s.union('t', {
  'rtc-offer': rtcOfferSchema,
  'rtc-answer': rtcAnswerSchema,
  'rtc-ice': rtcIceSchema,
  'rtc-end': rtcEndSchema,
});
export type RtcOffer = Infer<typeof rtcOfferSchema>;
export type RtcAnswer = Infer<typeof rtcAnswerSchema>;
export type RtcIce = Infer<typeof rtcIceSchema>;
export type RtcEnd = Infer<typeof rtcEndSchema>;
export type RtcSignal = Infer<typeof rtcSignalSchema>;

/** True for a signalling payload that belongs to tier 3 (so other users of the Hub are left alone). */
export function isRtcSignal(payload: unknown): boolean {
  const t = (payload as { t?: unknown } | null)?.t;
  return typeof t === 'string' && t.startsWith('rtc-');
}
