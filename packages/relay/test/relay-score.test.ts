import { encode, generateIdentity } from '@dpc/core';
import { rankRelays, relayMessageSchema, scoreRelay, TokenBucket } from '@dpc/relay';
import { describe, expect, it } from 'vitest';

describe('scoreRelay (spec: uptime 50 %, free capacity 30 %, latency 20 % over 0–500 ms)', () => {
  const cases: Array<[string, { uptime: number; current_peers: number; max_peers: number; latency_ms: number }, number]> = [
    ['the spec example relay', { uptime: 0.98, current_peers: 3, max_peers: 10, latency_ms: 50 }, 0.49 + 0.21 + 0.18],
    ['perfect relay', { uptime: 1, current_peers: 0, max_peers: 20, latency_ms: 0 }, 1],
    ['full relay', { uptime: 1, current_peers: 20, max_peers: 20, latency_ms: 0 }, 0.7],
    ['latency at the 500 ms ceiling', { uptime: 1, current_peers: 0, max_peers: 1, latency_ms: 500 }, 0.8],
    ['latency beyond the ceiling is clamped', { uptime: 1, current_peers: 0, max_peers: 1, latency_ms: 5000 }, 0.8],
    ['negative latency is clamped to 0', { uptime: 0, current_peers: 0, max_peers: 1, latency_ms: -3 }, 0.5],
    ['max_peers 0 means no capacity', { uptime: 0.5, current_peers: 0, max_peers: 0, latency_ms: 250 }, 0.25 + 0 + 0.1],
    ['over-full relay counts as full', { uptime: 0, current_peers: 30, max_peers: 20, latency_ms: 0 }, 0.2],
    ['fresh relay, half loaded, 100 ms', { uptime: 0, current_peers: 5, max_peers: 10, latency_ms: 100 }, 0.15 + 0.16],
  ];
  for (const [name, input, want] of cases) {
    it(name, () => expect(scoreRelay(input)).toBeCloseTo(want, 10));
  }
});

describe('rankRelays', () => {
  const ids = Array.from({ length: 4 }, () => generateIdentity().nodeId);
  const offer = (
    i: number,
    o: Partial<{ region: string; uptime: number; latency_ms: number; current_peers: number; available: boolean }>,
  ) => ({
    id: i,
    body: {
      node_id: ids[i] as string,
      ip: '127.0.0.1',
      port: 9000 + i,
      available: o.available ?? true,
      max_peers: 10,
      current_peers: o.current_peers ?? 0,
      region: o.region ?? 'eu',
      uptime: o.uptime ?? 0.9,
      latency_ms: o.latency_ms ?? 100,
      bandwidth_mbps: 50,
    },
  });
  const order = (xs: Array<{ id: number }>) => xs.map((x) => x.id);

  it('orders by score, best first, ties in input order', () => {
    const offers = [offer(0, { uptime: 0.5 }), offer(1, { uptime: 0.9 }), offer(2, { uptime: 0.9 }), offer(3, { uptime: 1 })];
    expect(order(rankRelays(offers))).toEqual([3, 1, 2, 0]);
  });
  it('drops unavailable and full relays', () => {
    const offers = [offer(0, { available: false }), offer(1, { current_peers: 10 }), offer(2, {})];
    expect(order(rankRelays(offers))).toEqual([2]);
  });
  it('keeps only the preferred region when it has relays, else falls back to every region', () => {
    const offers = [offer(0, { region: 'us-west', uptime: 0.1 }), offer(1, { region: 'eu', uptime: 1 })];
    expect(order(rankRelays(offers, { preferRegion: 'us-west' }))).toEqual([0]);
    expect(order(rankRelays(offers, { preferRegion: 'ap-south' }))).toEqual([1, 0]);
  });
  it("uses the client's own latency measurement instead of the relay's claim", () => {
    // relay 0 claims 0 ms but we measured 480 ms; relay 1 claims 400 ms but we measured 5 ms
    const offers = [offer(0, { latency_ms: 0 }), offer(1, { latency_ms: 400 })];
    expect(order(rankRelays(offers))).toEqual([0, 1]);
    const measured = new Map([
      [ids[0] as string, 480],
      [ids[1] as string, 5],
    ]);
    expect(order(rankRelays(offers, { measuredLatencyMs: measured }))).toEqual([1, 0]);
  });
  it('leaves out excluded relays (this node, relays that failed)', () => {
    expect(order(rankRelays([offer(0, {}), offer(1, {})], { exclude: new Set([ids[0] as string]) }))).toEqual([1]);
  });
});

describe('TokenBucket (injected clock)', () => {
  it('allows a burst, then the rate', () => {
    let now = 0;
    const b = new TokenBucket({ ratePerSec: 100, burst: 100, now: () => now });
    let ok = 0;
    for (let i = 0; i < 150; i++) if (b.tryTake()) ok++;
    expect(ok).toBe(100);
    expect(b.waitMs(1)).toBe(10);
    now += 500;
    ok = 0;
    for (let i = 0; i < 150; i++) if (b.tryTake()) ok++;
    expect(ok).toBe(50);
    now += 10_000;
    expect(b.tokens).toBe(100); // never above the burst
  });
  it('goes into debt for bytes and says how long to wait', () => {
    let now = 0;
    const b = new TokenBucket({ ratePerSec: 1000, burst: 1000, now: () => now });
    expect(b.takeDebt(600)).toBe(0);
    expect(b.takeDebt(900)).toBe(500);
    expect(b.tokens).toBe(-500);
    now += 500;
    expect(b.tokens).toBe(0);
  });
});

describe('wire messages', () => {
  const a = generateIdentity().nodeId;
  it('accept the documented messages and reject unknown fields, bad ids and codes', () => {
    expect(relayMessageSchema({ type: 'RELAY_REGISTER', id: 1, target: a })).toEqual({ type: 'RELAY_REGISTER', id: 1, target: a });
    expect(() => relayMessageSchema({ type: 'RELAY_REGISTER', id: 1, target: 'bob' })).toThrow(/node id/);
    expect(() => relayMessageSchema({ type: 'RELAY_REFUSED', code: 'nope', reason: '' })).toThrow();
    expect(() => relayMessageSchema({ type: 'RELAY_MESSAGE', session_id: 's', data: new Uint8Array(1), extra: 1 })).toThrow(
      /unknown field/,
    );
    expect(() => relayMessageSchema({ type: 'RELAY_HELLO' })).toThrow(/unknown type/);
  });
  it('golden bytes: RELAY_DISCONNECT and RELAY_MESSAGE encode as plain MessagePack maps (msgpackr writes map16)', () => {
    expect(encode({ type: 'RELAY_DISCONNECT', session_id: 's1', reason: 'idle' }).toString('hex')).toBe(
      'de0003a474797065b052454c41595f444953434f4e4e454354aa73657373696f6e5f6964a27331a6726561736f6ea469646c65',
    );
    expect(encode({ type: 'RELAY_MESSAGE', session_id: 's1', data: new Uint8Array([1, 2]) }).toString('hex')).toBe(
      'de0003a474797065ad52454c41595f4d455353414745aa73657373696f6e5f6964a27331a464617461c4020102',
    );
  });
});
