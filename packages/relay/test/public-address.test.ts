import { generateIdentity } from '@dpc/core';
import { createRelayServer, isPublicAddress, publicAddressProblem } from '@dpc/relay';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanups, MemoryDirectory, relay, runCleanups } from './helpers.js';

afterEach(runCleanups);

describe('which address a volunteer relay may announce (pure)', () => {
  it.each([
    // public, and the lab's "internet" (documentation ranges) stays allowed
    ['198.51.100.7', undefined],
    ['203.0.113.10', undefined],
    ['192.0.2.1', undefined],
    ['8.8.8.8', undefined],
    ['1.1.1.1', undefined],
    ['100.63.255.255', undefined],
    ['100.128.0.1', undefined],
    ['172.15.255.255', undefined],
    ['172.32.0.1', undefined],
    ['192.169.0.1', undefined],
    ['223.255.255.254', undefined],
    ['2001:db8::1', undefined],
    ['2a00:1450:4001:82b::200e', undefined],
    ['::ffff:198.51.100.7', undefined],
    // private, CGNAT, loopback, link-local, and the rest of the bogons
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.254', 'private'],
    ['192.168.1.10', 'private'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['100.127.255.254', 'carrier-grade NAT'],
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['169.254.10.20', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['192.0.0.8', 'IETF'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['224.0.0.251', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fd00::1', 'unique-local'],
    ['fc12:3456::1', 'unique-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:192.168.1.1', 'private'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['4000::1', 'not global unicast'],
    ['relay.example.org', 'not an IP address'],
    ['', 'not an IP address'],
  ])('publicAddressProblem(%j) mentions %j', (ip, why) => {
    const problem = publicAddressProblem(ip);
    if (why === undefined) expect(problem).toBeUndefined();
    else expect(problem).toContain(why);
    expect(isPublicAddress(ip)).toBe(why === undefined);
  });

  it.each([
    ['127.0.0.1', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['10.0.0.1', false],
    ['169.254.1.1', false],
  ])('with allowLoopback, %s is allowed: %s', (ip, ok) => {
    expect(isPublicAddress(ip, { allowLoopback: true })).toBe(ok);
  });
});

describe('a volunteer relay never announces a bogon address', () => {
  it.each(['192.168.1.10', '100.64.3.4', '169.254.0.9', 'fd00::5', '127.0.0.1'])(
    'refuses to start with publicIp %s and announces nothing',
    async (publicIp) => {
      const dir = new MemoryDirectory();
      const rid = generateIdentity();
      const server = createRelayServer({ identity: rid, host: '127.0.0.1', port: 0, publicIp, directory: dir.forNode(rid) });
      cleanups.push(() => server.stop());
      await expect(server.start()).rejects.toMatchObject({
        code: 'DPC_RELAY_PUBLIC_ADDRESS',
        name: 'RelayPublicAddressError',
        ip: publicIp,
      });
      await new Promise((r) => setTimeout(r, 50));
      expect(dir.announces).toBe(0);
      expect(dir.get(rid.nodeId)).toBeUndefined();
    },
  );

  it('refuses a private listen address when no publicIp is given', async () => {
    const dir = new MemoryDirectory();
    const rid = generateIdentity();
    const server = createRelayServer({ identity: rid, host: '10.1.2.3', port: 0, directory: dir.forNode(rid) });
    cleanups.push(() => server.stop());
    await expect(server.start()).rejects.toMatchObject({ code: 'DPC_RELAY_PUBLIC_ADDRESS', ip: '10.1.2.3' });
    expect(dir.announces).toBe(0);
  });

  it('announces a public (TEST-NET) address, and loopback only with allowLoopback', async () => {
    const dir = new MemoryDirectory();
    const rid = generateIdentity();
    const { server } = await relay({ identity: rid, publicIp: '203.0.113.10', directory: dir.forNode(rid), allowLoopback: false });
    expect(dir.get(rid.nodeId)).toMatchObject({ ip: '203.0.113.10', port: server.port });
    const lid = generateIdentity();
    await relay({ identity: lid, directory: dir.forNode(lid), allowLoopback: true });
    expect(dir.get(lid.nodeId)).toMatchObject({ ip: '127.0.0.1' });
  });
});
