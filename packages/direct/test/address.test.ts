import { emptyEndpointBody } from '@dpc/core';
import {
  acceptsExternal,
  type BoundSocket,
  ipv4Candidates,
  ipv6Candidates,
  isGlobalIPv6,
  isLoopback,
  listenedAddresses,
  listensOn,
  localEndpointBody,
  sameExternalIPv4,
  sameSubnet,
} from '@dpc/direct';
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

  it('tier 2 dials the local address on a shared subnet behind the same NAT, then the external one', () => {
    const sameLan = { ipv4: [{ ip: '192.168.1.5', prefix: 24 }], ipv6: [] };
    expect(ipv4Candidates(peer, sameLan, { ownExternalIPv4: ['203.0.113.9'] }).map((c) => `${c.kind} ${c.ip}:${c.port}`)).toEqual([
      'local 192.168.1.20:8888',
      'external 203.0.113.9:40000',
    ]);
    const otherLan = { ipv4: [{ ip: '192.168.7.5', prefix: 24 }], ipv6: [] };
    expect(ipv4Candidates(peer, otherLan, { ownExternalIPv4: ['203.0.113.9'] }).map((c) => c.kind)).toEqual(['external']);
    expect(ipv4Candidates(peer, otherLan, { allowLoopback: true }).map((c) => c.kind)).toEqual(['loopback', 'external']);
  });

  // Real cases: who is behind which NAT, as DISCOVER_ENDPOINT or `external_address` reports it.
  const home = (local: string, prefix: number, external: string | undefined, port = 8888) => ({
    ...emptyEndpointBody(),
    ipv4_local: [{ ip: local, port, prefix }],
    ipv4_external: external ? [{ ip: external, port }] : [],
  });
  it.each([
    // [case, our interface, our external, peer record, candidate kinds]
    [
      'two flats behind one home router',
      '192.168.1.5/24',
      ['198.51.100.7'],
      home('192.168.1.20', 24, '198.51.100.7'),
      ['local', 'external'],
    ],
    [
      'two homes on 192.168.1.0/24 behind different routers',
      '192.168.1.5/24',
      ['198.51.100.7'],
      home('192.168.1.20', 24, '203.0.113.50'),
      ['external'],
    ],
    [
      'two homes with the same 192.168.0.1 on one subnet',
      '192.168.0.2/24',
      ['198.51.100.7'],
      home('192.168.0.2', 24, '203.0.113.50'),
      ['external'],
    ],
    [
      'our external address unknown (no DHT peer answered)',
      '192.168.1.5/24',
      undefined,
      home('192.168.1.20', 24, '203.0.113.50'),
      ['external'],
    ],
    [
      'our external address unknown, even behind what may be one router',
      '10.0.0.5/24',
      [],
      home('10.0.0.6', 24, '198.51.100.7'),
      ['external'],
    ],
    ['peer announces no external address', '192.168.1.5/24', ['198.51.100.7'], home('192.168.1.20', 24, undefined), []],
    [
      'same NAT but no shared subnet (a guest network)',
      '192.168.2.5/24',
      ['198.51.100.7'],
      home('192.168.1.20', 24, '198.51.100.7'),
      ['external'],
    ],
    [
      'same NAT, office /16 against a /24',
      '172.16.4.9/16',
      ['198.51.100.7'],
      home('172.16.200.1', 24, '198.51.100.7'),
      ['local', 'external'],
    ],
    [
      'public hosts in one data centre (local is external)',
      '198.51.100.10/24',
      ['198.51.100.10'],
      home('198.51.100.11', 24, '198.51.100.11'),
      ['external'],
    ],
    [
      'LAN-only network: the DHT reports LAN addresses as external',
      '10.1.0.5/16',
      ['10.1.0.5'],
      home('10.1.0.9', 16, '10.1.0.9'),
      ['external'],
    ],
  ] as const)('tier 2: %s', (_case, iface, ownExternal, record, kinds) => {
    const [ip, prefix] = iface.split('/') as [string, string];
    const local = { ipv4: [{ ip, prefix: Number(prefix) }], ipv6: [] };
    const opts = ownExternal ? { ownExternalIPv4: [...ownExternal] } : {};
    expect(ipv4Candidates(record, local, opts).map((c) => c.kind)).toEqual(kinds);
  });

  it.each([
    [['198.51.100.7'], ['198.51.100.7'], true],
    [['198.51.100.7'], ['198.51.100.8'], false],
    [['198.51.100.7', '203.0.113.1'], ['203.0.113.1'], true],
    [undefined, ['198.51.100.7'], false],
    [[], ['198.51.100.7'], false],
    [['198.51.100.7'], [], false],
  ])('sameExternalIPv4(%j, %j) = %s', (ours, theirs, want) => {
    expect(sameExternalIPv4(ours, { ipv4_external: theirs.map((ip) => ({ ip, port: 1 })) })).toBe(want);
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

  // Sockets as the listener binds them for each `[p2p] listen_host`.
  const v4any: BoundSocket = { address: '0.0.0.0', family: 'IPv4' };
  const v6any: BoundSocket = { address: '::', family: 'IPv6', ipv6Only: true };
  const BIND: Record<string, BoundSocket[]> = {
    dual: [v4any, v6any],
    '0.0.0.0': [v4any],
    '127.0.0.1': [{ address: '127.0.0.1', family: 'IPv4' }],
    '192.168.1.5': [{ address: '192.168.1.5', family: 'IPv4' }],
    '::': [{ address: '::', family: 'IPv6', ipv6Only: false }],
    '::1': [{ address: '::1', family: 'IPv6', ipv6Only: false }],
    '2001:db8::5': [{ address: '2001:db8::5', family: 'IPv6', ipv6Only: false }],
    none: [],
  };
  it.each([
    // [listen_host, address, reached]
    ['dual', '192.168.1.5', true],
    ['dual', '2001:db8::5', true],
    ['0.0.0.0', '192.168.1.5', true],
    ['0.0.0.0', '2001:db8::5', false],
    ['127.0.0.1', '127.0.0.1', true],
    ['127.0.0.1', '192.168.1.5', false],
    ['192.168.1.5', '192.168.1.5', true],
    ['192.168.1.5', '10.0.0.2', false],
    ['::', '192.168.1.5', true],
    ['::', '2001:db8::5', true],
    ['::1', '::1', true],
    ['::1', '2001:db8::5', false],
    ['::1', '127.0.0.1', false],
    ['2001:db8::5', '2001:0db8:0:0:0:0:0:5', true],
    ['2001:db8::5', '2001:db8::6', false],
    ['none', '127.0.0.1', false],
  ])('listen_host %s listens on %s: %s', (host, ip, want) => {
    expect(listensOn(ip, BIND[host] as BoundSocket[])).toBe(want);
  });

  it.each([
    // [listen_host, external IPv4 learned or configured, announce it]
    ['dual', '198.51.100.7', true],
    ['0.0.0.0', '198.51.100.7', true],
    ['192.168.1.5', '198.51.100.7', true], // a port forward to the LAN address we bind
    ['127.0.0.1', '198.51.100.7', false], // nothing outside this machine reaches a loopback bind
    ['127.0.0.1', '127.0.0.1', true],
    ['::', '198.51.100.7', true],
    ['::1', '198.51.100.7', false],
    ['2001:db8::5', '198.51.100.7', false],
    ['dual', '2001:db8::7', false],
  ])('listen_host %s accepts the external address %s: %s', (host, ip, want) => {
    expect(acceptsExternal(ip, BIND[host] as BoundSocket[])).toBe(want);
  });

  it('announces only the addresses the sockets listen on', () => {
    const addresses = {
      ipv6: ['::1', 'fe80::2', '2001:db8::2'],
      ipv4: [
        { ip: '127.0.0.1', prefix: 8 },
        { ip: '10.0.0.2', prefix: 24 },
      ],
    };
    const body = (host: string, allowLoopback = false) =>
      localEndpointBody(9000, { allowLoopback, addresses: listenedAddresses(addresses, BIND[host] as BoundSocket[]) });
    expect(body('dual')).toEqual({ ipv6: [{ ip: '2001:db8::2', port: 9000 }], ipv4_local: [{ ip: '10.0.0.2', port: 9000, prefix: 24 }] });
    expect(body('0.0.0.0')).toEqual({ ipv6: [], ipv4_local: [{ ip: '10.0.0.2', port: 9000, prefix: 24 }] });
    expect(body('127.0.0.1')).toEqual({ ipv6: [], ipv4_local: [] });
    expect(body('127.0.0.1', true)).toEqual({ ipv6: [], ipv4_local: [{ ip: '127.0.0.1', port: 9000, prefix: 8 }] });
    expect(body('::1', true)).toEqual({ ipv6: [{ ip: '::1', port: 9000 }], ipv4_local: [] });
  });
});
