import { candidateProblem } from '@dpc/holepunch';
import { describe, expect, it } from 'vitest';

describe('punch candidates a peer names are probed only when public', () => {
  it('public addresses are probed', () => {
    for (const ip of ['198.51.100.23', '203.0.113.9', '8.8.8.8', '2001:db8::23', '2a00:1450::1'])
      expect(candidateProblem(ip)).toBeUndefined();
  });

  it('loopback, private, CGNAT, link-local and unique-local only with allowLocal', () => {
    for (const ip of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.1',
      '192.168.1.1',
      '169.254.1.1',
      '100.64.0.1',
      '::1',
      'fd00::1',
      'fe80::1',
      '::ffff:127.0.0.1',
    ]) {
      expect(candidateProblem(ip), ip).toMatch(/loopback/);
      expect(candidateProblem(ip, { allowLocal: true }), ip).toBeUndefined();
    }
    expect(candidateProblem('172.32.0.1')).toBeUndefined();
  });

  it('unspecified, multicast, broadcast and non-addresses never', () => {
    for (const ip of ['0.0.0.0', '224.0.0.1', '255.255.255.255', '::', 'ff02::1', 'example.com', '']) {
      expect(candidateProblem(ip, { allowLocal: true }), ip).toBeDefined();
    }
  });
});
