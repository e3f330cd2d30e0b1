import { emptyEndpointBody } from '@dpc/core';
import { ipv4Candidates, ipv6Candidates, isGlobalIPv6, isLoopback, localEndpointBody, sameSubnet } from '@dpc/direct';
import { describe, expect, it } from 'vitest';

describe('address selection (pure)', () => {
  it.each([
    ['2001:db8::1', true],
    ['2a00:1450:4001:82b::200e', true],
    ['3fff:ffff::1', true],
    ['2000::', true],
    ['fe80::1', false],
    ['fd00::1', false],
    ['::1', false],
    ['::ffff:198.51.100.1', false],
    ['4000::1', false],
    ['ff02::1', false],
    ['198.51.100.1', false],
    ['not-an-ip', false],
  ])('isGlobalIPv6(%s) = %s', (ip, want) => {
    expect(isGlobalIPv6(ip)).toBe(want);
  });

  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['10.0.0.1', false],
    ['2001:db8::1', false],
  ])('isLoopback(%s) = %s', (ip, want) => {
    expect(isLoopback(ip)).toBe(want);
  });

  it.each([
    ['192.168.1.10', '192.168.1.20', 24, true],
    ['192.168.1.10', '192.168.2.20', 24, false],
    ['192.168.1.10', '192.168.2.20', 16, true],
    ['10.1.2.3', '10.200.0.1', 8, true],
    ['10.1.2.3', '10.1.2.3', 32, true],
    ['10.1.2.3', '10.1.2.4', 32, false],
    ['100.64.0.5', '100.127.255.1', 10, true],
  ])('sameSubnet(%s, %s, /%d) = %s', (a, b, p, want) => {
    expect(sameSubnet(a, b, p)).toBe(want);
  });

  const peer = {
    ...emptyEndpointBody(),
    ipv6: [
      { ip: 'fe80::1', port: 1 },
      { ip: '2001:db8::7', port: 8888 },
      { ip: '::1', port: 8888 },
    ],
    ipv4_local: [
      { ip: '192.168.1.20', port: 8888, prefix: 24 },
      { ip: '127.0.0.1', port: 8888, prefix: 8 },
    ],
    ipv4_external: [{ ip: '203.0.113.9', port: 40000 }],
  };

  it('tier 1 dials only global IPv6 (loopback only when allowed)', () => {
    expect(ipv6Candidates(peer).map((c) => c.ip)).toEqual(['2001:db8::7']);
    expect(ipv6Candidates(peer, { allowLoopback: true }).map((c) => c.ip)).toEqual(['2001:db8::7', '::1']);
  });

  it('tier 2 dials the local address on a shared subnet, then the external one', () => {
    const sameLan = { ipv4: [{ ip: '192.168.1.5', prefix: 24 }], ipv6: [] };
    expect(ipv4Candidates(peer, sameLan).map((c) => `${c.kind} ${c.ip}:${c.port}`)).toEqual([
      'local 192.168.1.20:8888',
      'external 203.0.113.9:40000',
    ]);
    const otherLan = { ipv4: [{ ip: '192.168.7.5', prefix: 24 }], ipv6: [] };
    expect(ipv4Candidates(peer, otherLan).map((c) => c.kind)).toEqual(['external']);
    expect(ipv4Candidates(peer, otherLan, { allowLoopback: true }).map((c) => c.kind)).toEqual(['loopback', 'external']);
  });

  it('describes this node’s own addresses without loopback unless allowed', () => {
    const addresses = {
      ipv6: ['::1', 'fe80::2', '2001:db8::2'],
      ipv4: [
        { ip: '127.0.0.1', prefix: 8 },
        { ip: '10.0.0.2', prefix: 24 },
      ],
    };
    expect(localEndpointBody(9000, { addresses })).toEqual({
      ipv6: [{ ip: '2001:db8::2', port: 9000 }],
      ipv4_local: [{ ip: '10.0.0.2', port: 9000, prefix: 24 }],
    });
    expect(localEndpointBody(9000, { addresses, allowLoopback: true }).ipv4_local).toHaveLength(2);
  });
});
