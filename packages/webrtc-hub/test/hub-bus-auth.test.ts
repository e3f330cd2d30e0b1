import { openBusMessage, presenceInstance, presenceValue, ReplayGuard, sealBusMessage } from '@dpc/webrtc-hub';
import { describe, expect, it } from 'vitest';

const SECRET = 'test-cluster-secret-0123456789';

describe('authentication of messages between Hubs (pure)', () => {
  it('a sealed message opens on its own channel only, with the same secret, untouched', () => {
    const json = JSON.stringify({ k: 'kick', node_id: 'n', ts: 1 });
    const sealed = sealBusMessage(SECRET, 'dpc-hub:inst:a', json);
    expect(sealed).toMatch(/^v1\.[\w-]{43}\./);
    expect(openBusMessage(SECRET, 'dpc-hub:inst:a', sealed)).toMatchObject({ ok: true, json });
    expect(openBusMessage(SECRET, 'dpc-hub:inst:b', sealed)).toEqual({ ok: false, reason: 'forged' });
    expect(openBusMessage('another-secret-0123456789', 'dpc-hub:inst:a', sealed)).toEqual({ ok: false, reason: 'forged' });
    expect(openBusMessage(SECRET, 'dpc-hub:inst:a', sealed.replace('"n"', '"m"'))).toEqual({ ok: false, reason: 'forged' });
    for (const raw of [json, 'v1.', 'v1.abc', `v1..${json}`, `v2${sealed.slice(2)}`, ''])
      expect(openBusMessage(SECRET, 'dpc-hub:inst:a', raw)).toEqual({ ok: false, reason: 'forged' });
  });

  it('a presence value names its instance for its own key only', () => {
    const v = presenceValue(SECRET, 'dpc-hub:node:x', '0123456789abcdef');
    expect(presenceInstance(SECRET, 'dpc-hub:node:x', v)).toBe('0123456789abcdef');
    expect(presenceInstance(SECRET, 'dpc-hub:node:y', v)).toBeUndefined();
    expect(presenceInstance('another-secret-0123456789', 'dpc-hub:node:x', v)).toBeUndefined();
    expect(presenceInstance(SECRET, 'dpc-hub:node:x', '0123456789abcdef')).toBeUndefined();
    expect(presenceInstance(SECRET, 'dpc-hub:node:x', `fedcba9876543210${v.slice(16)}`)).toBeUndefined();
  });

  it('the replay guard: a tag once, a clock outside the window never, bounded memory', () => {
    const g = new ReplayGuard(1_000, 3);
    expect(g.check('a', 10_000, 10_000)).toBe('ok');
    expect(g.check('a', 10_000, 10_001)).toBe('replayed');
    expect(g.check('b', 8_999, 10_000)).toBe('stale');
    expect(g.check('c', 11_001, 10_000)).toBe('stale');
    expect(g.check('d', Number.NaN, 10_000)).toBe('stale');
    for (const t of ['e', 'f', 'g', 'h']) expect(g.check(t, 10_000, 10_000)).toBe('ok');
    expect(g.size).toBeLessThanOrEqual(3);
    // Expired entries are dropped as time passes.
    expect(g.check('i', 12_000, 12_000)).toBe('ok');
    expect(g.size).toBe(1);
  });
});
