import { SourceCounts, sourceKey } from '@dpc/core';
import { describe, expect, it } from 'vitest';

describe('sourceKey: the unit per-address caps count by', () => {
  it.each([
    ['203.0.113.7', 1, {}, '203.0.113.0/24'],
    ['203.0.113.200', 2, {}, '203.0.113.0/24'],
    ['::ffff:198.51.100.9', 3, {}, '198.51.100.0/24'],
    ['2001:db8:1:2:aaaa::1', 4, {}, '2001:db8:1:2::/64'],
    ['2001:db8:1:2:bbbb:cccc:dddd:eeee', 5, {}, '2001:db8:1:2::/64'],
    ['2001:db8::1', 5, {}, '2001:db8:0:0::/64'],
    ['127.0.0.2', 6, {}, '127.0.0.2'],
    ['127.0.0.3', 6, {}, '127.0.0.3'],
    ['127.0.0.1', 7, { loopbackPerPort: true }, '127.0.0.1:7'],
    ['::1', 8, {}, '::1'],
    ['::1', 8, { loopbackPerPort: true }, '[::1]:8'],
    ['10.0.0.1', 9, { loopbackPerPort: true }, '10.0.0.0/24'],
    ['not-an-ip', 1, {}, 'not-an-ip'],
  ] as const)('%s port %s %o → %s', (ip, port, policy, key) => {
    expect(sourceKey(ip, port, policy)).toBe(key);
  });

  it('counts per key and forgets a key at zero', () => {
    const c = new SourceCounts();
    expect(c.inc('a')).toBe(1);
    expect(c.inc('a')).toBe(2);
    c.dec('a');
    c.dec('a');
    expect(c.get('a')).toBe(0);
    expect(c.size).toBe(0);
  });
});
