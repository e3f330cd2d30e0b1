import { createHmac, timingSafeEqual } from 'node:crypto';

// Authentication of what Hub instances tell each other through Redis (`[hub] cluster_secret`).
// Every bus message is `v1.<tag>.<json>`, where tag = HMAC-SHA256(secret, context | channel | json)
// (base64url), and the JSON carries the sender's clock (`ts`, ms). The channel is in the tag, so a
// message cannot be re-published to another instance; `ts` and a bounded memory of recent tags
// refuse replays. Presence values (`<instance id>.<tag>`) are tagged over the key too, so a value
// written by someone without the secret is not followed. Pure functions plus one bounded cache.

/** Domain separation of bus message tags. */
export const HUB_BUS_CONTEXT = 'dpc-hub-bus-v1';
/** Domain separation of presence value tags. */
export const HUB_PRESENCE_CONTEXT = 'dpc-hub-presence-v1';
/** Shortest `[hub] cluster_secret` accepted (characters). */
export const MIN_CLUSTER_SECRET_LENGTH = 16;

function tag(secret: string, parts: readonly string[]): string {
  const h = createHmac('sha256', secret);
  for (const p of parts) h.update(`${Buffer.byteLength(p)}:`).update(p);
  return h.digest('base64url');
}

function sameTag(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The wire form of one bus message for `channel`. */
export function sealBusMessage(secret: string, channel: string, json: string): string {
  return `v1.${tag(secret, [HUB_BUS_CONTEXT, channel, json])}.${json}`;
}

export type OpenedBusMessage =
  | { ok: true; json: string; tag: string }
  /** `forged`: no or wrong tag (counted `hub_bus_forged`). */
  | { ok: false; reason: 'forged' };

/** Checks the tag of a message read on `channel`; the JSON is returned unparsed. */
export function openBusMessage(secret: string, channel: string, raw: string): OpenedBusMessage {
  if (!raw.startsWith('v1.')) return { ok: false, reason: 'forged' };
  const dot = raw.indexOf('.', 3);
  if (dot < 0) return { ok: false, reason: 'forged' };
  const got = raw.slice(3, dot);
  const json = raw.slice(dot + 1);
  if (!sameTag(got, tag(secret, [HUB_BUS_CONTEXT, channel, json]))) return { ok: false, reason: 'forged' };
  return { ok: true, json, tag: got };
}

/** The presence value naming `instanceId` for the presence key `key`. */
export function presenceValue(secret: string, key: string, instanceId: string): string {
  return `${instanceId}.${tag(secret, [HUB_PRESENCE_CONTEXT, key, instanceId])}`;
}

/** The instance a presence value names, or undefined when its tag is wrong. */
export function presenceInstance(secret: string, key: string, value: string): string | undefined {
  const dot = value.indexOf('.');
  if (dot <= 0) return undefined;
  const id = value.slice(0, dot);
  return sameTag(value.slice(dot + 1), tag(secret, [HUB_PRESENCE_CONTEXT, key, id])) ? id : undefined;
}

/**
 * Tags seen within the acceptance window: a second message with the same tag is a replay. Bounded:
 * past `max` entries the oldest are forgotten (counted by the caller through the return value).
 */
export class ReplayGuard {
  readonly #seen = new Map<string, number>();
  readonly #windowMs: number;
  readonly #max: number;

  constructor(windowMs: number, max: number) {
    this.#windowMs = windowMs;
    this.#max = max;
  }

  /**
   * 'ok' for a fresh message sent at `ts`, 'stale' when `ts` is outside now ± window, 'replayed'
   * for a tag already seen.
   */
  check(tagValue: string, ts: number, now: number): 'ok' | 'stale' | 'replayed' {
    if (!Number.isFinite(ts) || Math.abs(now - ts) > this.#windowMs) return 'stale';
    for (const [k, expires] of this.#seen) {
      if (expires > now && this.#seen.size < this.#max) break;
      this.#seen.delete(k);
    }
    if (this.#seen.has(tagValue)) return 'replayed';
    // Remembered until the message would be stale anyway.
    this.#seen.set(tagValue, ts + this.#windowMs);
    return 'ok';
  }

  get size(): number {
    return this.#seen.size;
  }
}
