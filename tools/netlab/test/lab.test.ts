import type { ChildProcess } from 'node:child_process';
import { collectGarbage, createLab, type Lab, PROBE_SCRIPT, udpMapping } from '@dpc/netlab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, labAvailability, leftoverNamespaces, median } from './support.js';

const canRunLab = labAvailability(['ip', 'nft', 'conntrack', 'ethtool']);

interface SendResult {
  target: string;
  sent: number;
  received: number;
  rttsMs: number[];
  mapped: string[];
}

async function echoOn(lab: Lab, host: string, ports: number[], addresses: string[] = []): Promise<ChildProcess> {
  const child = lab.spawn(host, process.execPath, [PROBE_SCRIPT, 'echo', ports.join(','), ...addresses]);
  await new Promise((resolve, reject) => {
    child.stdout?.once('data', resolve);
    child.once('exit', reject);
  });
  return child;
}

async function send(lab: Lab, host: string, targets: string[], count: number, intervalMs = 10, localPort = 0): Promise<SendResult[]> {
  const r = await lab.exec(host, process.execPath, [
    PROBE_SCRIPT,
    'send',
    String(localPort),
    String(count),
    String(intervalMs),
    '600',
    ...targets,
  ]);
  expect(r.code, r.stderr).toBe(0);
  return jsonLines<SendResult>(r.stdout);
}

describe.skipIf(!canRunLab)('lab topology', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await createLab({
      publicHosts: [
        { name: 'server', ipv4Addresses: 2 },
        { name: 'far', link: { delayMs: 25, jitterMs: 2 } },
        { name: 'lossy', link: { lossPercent: 30 } },
      ],
      routers: [
        {
          name: 'home',
          kind: 'cone',
          ipv6: true,
          lan: [{ name: 'alice' }, { name: 'bob' }],
          portForwards: [{ protocol: 'udp', port: 4000, host: 'alice', hostPort: 7000 }],
        },
        { name: 'office', kind: 'symmetric', lan: [{ name: 'carol' }] },
        { name: 'mobile', kind: 'double-nat', lan: [{ name: 'dave' }] },
        { name: 'v6only', kind: 'ipv6-only', ipv6: true, lan: [{ name: 'erin' }] },
      ],
    });
    await echoOn(lab, 'server', [7000, 7001], lab.hosts.server!.ipv4);
    await echoOn(lab, 'server', [7000], lab.hosts.server!.ipv6);
    for (const h of ['far', 'lossy', 'alice', 'bob', 'erin']) await echoOn(lab, h, [7000]);
  });
  afterAll(() => lab?.destroy());

  it('names every namespace dl<runid>-<host>', () => {
    expect(lab.id).toMatch(/^[a-z0-9]{6}$/);
    expect(lab.hosts.alice!.namespace).toBe(`dl${lab.id}-alice`);
    expect(leftoverNamespaces(lab.id)).toContain(`dl${lab.id}-inet`);
  });

  it('exec collects output and the exit code inside a host namespace', async () => {
    const r = await lab.exec('alice', 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('10.1.0.2/24');
    const failed = await lab.exec('alice', 'sh', ['-c', 'echo oops >&2; exit 3']);
    expect(failed).toMatchObject({ code: 3, stderr: 'oops\n', timedOut: false });
    const slow = await lab.exec('alice', 'sleep', ['5'], { timeoutMs: 200 });
    expect(slow.timedOut).toBe(true);
  });

  it('LAN hosts reach each other directly and the internet through NAT', async () => {
    const [lan] = await send(lab, 'alice', [`${lab.hosts.bob!.ipv4[0]}:7000`], 2);
    expect(lan!.received).toBe(2);
    expect(lan!.mapped[0]).toMatch(/^10\.1\.0\.2:/);
    const [out] = await send(lab, 'alice', [`${lab.hosts.server!.ipv4[0]}:7000`], 2);
    expect(out!.mapped[0]).toMatch(new RegExp(`^${lab.routers.home!.externalIpv4.replaceAll('.', '\\.')}:`));
  });

  it('cone keeps the external port across destinations; symmetric does not', async () => {
    const [a, b] = lab.hosts.server!.ipv4 as [string, string];
    const cone = await udpMapping(lab, 'alice', [`${a}:7000`, `${b}:7001`], 41_000);
    expect(cone.mapped).toEqual([`${lab.routers.home!.externalIpv4}:41000`]);
    const sym = await udpMapping(lab, 'carol', [`${a}:7000`, `${b}:7001`], 41_000);
    expect(sym.mapped).toHaveLength(2);
    const dbl = await udpMapping(lab, 'dave', [`${a}:7000`, `${b}:7001`], 41_000);
    expect(dbl.mapped).toHaveLength(1);
    expect(dbl.mapped[0]).toMatch(new RegExp(`^${lab.routers.mobile!.externalIpv4.replaceAll('.', '\\.')}:`));
  });

  it('an unsolicited inbound packet does not turn the cone into a symmetric NAT', async () => {
    await lab.flushConntrack();
    const [a, b] = lab.hosts.server!.ipv4 as [string, string];
    const ext = lab.routers.home!.externalIpv4;
    // The server knocks on the port alice is about to use, from the port she will talk to.
    const knock = await send(lab, 'server', [`${ext}:42000`], 2, 10, 7100);
    expect(knock[0]!.received).toBe(0);
    const cone = await udpMapping(lab, 'alice', [`${a}:7000`, `${b}:7001`], 42_000);
    expect(cone.mapped).toEqual([`${ext}:42000`]);
    const conntrack = await lab.exec('home', 'conntrack', ['-L']);
    expect(conntrack.stdout).not.toContain('sport=7100');
  });

  it('a port forward reaches the LAN host; other inbound is dropped', async () => {
    const ext = lab.routers.home!.externalIpv4;
    const [fwd] = await send(lab, 'server', [`${ext}:4000`], 2);
    expect(fwd!.received).toBe(2);
    const [closed] = await send(lab, 'server', [`${ext}:4001`], 2);
    expect(closed!.received).toBe(0);
    const [priv] = await send(lab, 'server', [`${lab.hosts.alice!.ipv4[0]}:7000`], 1);
    expect(priv!.received).toBe(0);
  });

  it('global IPv6 is routed both ways without NAT; ipv6-only LANs have no IPv4', async () => {
    const [out] = await send(lab, 'alice', [`[${lab.hosts.server!.ipv6[0]}]:7000`], 2);
    expect(out!.mapped[0]).toMatch(/^\[2001:db8:1::2\]:/);
    const [inbound] = await send(lab, 'server', [`[${lab.hosts.erin!.ipv6[0]}]:7000`], 2);
    expect(inbound!.received).toBe(2);
    expect(lab.hosts.erin!.ipv4).toEqual([]);
  });

  it('a link with 25 ms delay each way shows an RTT of about 50 ms', async () => {
    const target = `${lab.hosts.far!.ipv4[0]}:7000`;
    await send(lab, 'server', [target], 2); // warm up ARP and neighbour caches
    const [r] = await send(lab, 'server', [target], 40, 20);
    expect(r!.received).toBeGreaterThanOrEqual(38);
    const m = median(r!.rttsMs);
    console.log(`netlab: delay 25 ms each way: median RTT ${m} ms over ${r!.received} probes`);
    expect(m).toBeGreaterThanOrEqual(45);
    expect(m).toBeLessThanOrEqual(150);
  });

  it('30% loss per direction drops a plausible share of one-way probes', async () => {
    // Count what the lossy host receives: the echo replies cross the link once more, so the
    // fraction answered is (1-p)²; the one-way loss is 1 - sqrt(answered).
    const [r] = await send(lab, 'server', [`${lab.hosts.lossy!.ipv4[0]}:7000`], 200, 2);
    const oneWayLoss = 1 - Math.sqrt(r!.received / r!.sent);
    console.log(`netlab: 30% loss: ${r!.received}/${r!.sent} answered, one-way loss ≈ ${(oneWayLoss * 100).toFixed(1)}%`);
    expect(oneWayLoss).toBeGreaterThan(0.1);
    expect(oneWayLoss).toBeLessThan(0.5);
  });

  it('destroy removes every namespace and process of the run', async () => {
    const id = lab.id;
    await lab.destroy();
    expect(leftoverNamespaces(id)).toEqual([]);
  });
});

describe.skipIf(!canRunLab)('lab lifecycle', () => {
  it('removes what it built when building fails half-way', async () => {
    // The delay forwarder cannot start, after the namespaces and the first links exist.
    process.env.DPC_NETLAB_PYTHON = '/bin/false';
    try {
      await expect(
        createLab({ publicHosts: [{ name: 'a' }, { name: 'b', link: { delayMs: 5 } }] }, { id: 'zzfail' }),
      ).rejects.toMatchObject({
        code: 'NETLAB_UNAVAILABLE',
      });
    } finally {
      delete process.env.DPC_NETLAB_PYTHON;
    }
    expect(leftoverNamespaces('zzfail')).toEqual([]);
  });

  it('gc removes namespaces left by a dead run and spares live ones', async () => {
    const live = await createLab({ publicHosts: [{ name: 'a' }] });
    const { execFileSync } = await import('node:child_process');
    execFileSync('ip', ['netns', 'add', 'dlzzdead-a']);
    const removed = collectGarbage();
    expect(removed).toContain('zzdead');
    expect(removed).not.toContain(live.id);
    expect(leftoverNamespaces('zzdead')).toEqual([]);
    expect(leftoverNamespaces(live.id).length).toBeGreaterThan(0);
    await live.destroy();
    expect(leftoverNamespaces(live.id)).toEqual([]);
  });
});
