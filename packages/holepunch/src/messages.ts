import { isIP } from 'node:net';
import { type Infer, type Schema, s } from '@dpc/core';
import { PUNCH_PREFIX } from './constants.js';
import { PunchMessageError } from './errors.js';

// Wire messages of tier 4. Signalling goes through the DHT's SIGNAL (signed by the sender, at most
// 600 bytes of payload); probes are small datagrams on the punching socket.

const ip: Schema<string> = (v, p = '') => {
  if (typeof v !== 'string' || v.length > 64 || isIP(v) === 0) throw new PunchMessageError(`${p}: not an IP address`);
  return v;
};
const endpoint = s.object({ ip, port: s.int({ min: 1, max: 65535 }) });
const sid = s.string({ min: 16, max: 16, pattern: /^[0-9a-f]{16}$/ });
const nat = s.oneOf(['none', 'cone', 'symmetric', 'blocked', 'unknown'] as const);
const streamId = s.int({ min: 1, max: 0xffff_ffff });

/**
 * Signal payloads: offer (initiator → target), answer, go (start now), refuse. `hp: 1` tags them
 * among other tiers' signals. Unknown fields are ignored (not refused), so that a later version
 * may add optional ones without its signals being dropped here; 0.1.0 refused them, which is why
 * the initiator sends copies of an unanswered offer without `via`.
 */
const open = { allowUnknown: true } as const;
export const punchSignalSchema = s.union('k', {
  offer: s.object(
    {
      hp: s.literal(1),
      k: s.literal('offer'),
      sid,
      /** Secret echoed in every probe of this punch (probes from others are ignored). */
      tok: sid,
      nat,
      eps: s.array(endpoint, { max: 4 }),
      /** The initiator's UDX stream id. */
      stream: streamId,
      /**
       * Where signals reach the initiator (its `signal_via` forwarders, or its own address when it
       * is not behind NAT): the answer goes there without a DHT lookup.
       */
      via: s.optional(s.array(endpoint, { max: 4 })),
    },
    open,
  ),
  answer: s.object(
    {
      hp: s.literal(1),
      k: s.literal('answer'),
      sid,
      nat,
      eps: s.array(endpoint, { max: 4 }),
      stream: streamId,
    },
    open,
  ),
  go: s.object(
    {
      hp: s.literal(1),
      k: s.literal('go'),
      sid,
      /** The initiator starts this long after sending go (half the measured signalling round trip), ms. */
      offset: s.int({ min: 0, max: 60_000 }),
    },
    open,
  ),
  refuse: s.object({ hp: s.literal(1), k: s.literal('refuse'), sid, reason: s.string({ max: 200 }) }, open),
});
export type PunchSignal = Infer<typeof punchSignalSchema>;

/** True for a payload of this protocol (other tiers' signals are left alone). */
export function isPunchSignal(payload: unknown): boolean {
  return typeof payload === 'object' && payload !== null && (payload as { hp?: unknown }).hp === 1;
}

/** Probe datagram kinds. */
export const PROBE = 1;
export const PROBE_ACK = 2;
export const KEEPALIVE = 3;
export const CLOSE = 4;
export type ProbeKind = typeof PROBE | typeof PROBE_ACK | typeof KEEPALIVE | typeof CLOSE;

/** Probe datagram: prefix (2) | kind (1) | session id (8) | token (8). */
export const PROBE_BYTES = PUNCH_PREFIX.length + 1 + 8 + 8;

export function encodeProbe(kind: ProbeKind, sessionId: string, token: string): Buffer {
  const b = Buffer.alloc(PROBE_BYTES);
  PUNCH_PREFIX.copy(b, 0);
  b[PUNCH_PREFIX.length] = kind;
  b.write(sessionId, PUNCH_PREFIX.length + 1, 8, 'hex');
  b.write(token, PUNCH_PREFIX.length + 9, 8, 'hex');
  return b;
}

/** Parses a probe datagram; null when it is not one. */
export function decodeProbe(b: Buffer): { kind: ProbeKind; sid: string; tok: string } | null {
  if (b.length !== PROBE_BYTES || !b.subarray(0, PUNCH_PREFIX.length).equals(PUNCH_PREFIX)) return null;
  const kind = b[PUNCH_PREFIX.length] as number;
  if (kind < PROBE || kind > CLOSE) return null;
  const o = PUNCH_PREFIX.length + 1;
  return { kind: kind as ProbeKind, sid: b.toString('hex', o, o + 8), tok: b.toString('hex', o + 8, o + 16) };
}
