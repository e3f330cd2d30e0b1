// What breaks on the real internet (issue 9 §6), through dpc-node processes in real namespaces:
// a host that moves to another router, an IPv6-only host, and a node whose clock is an hour
// behind. Tiers 1–2 only, so "reached" means a direct path, not a relay.
import { createLab, type Lab, LabNode, labIni, labSend, type Topology, workdir } from '@dpc/netlab';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { labAvailability, leftoverNamespaces } from './support.js';

const canRunLab = labAvailability(['ip', 'nft', 'conntrack']);
const DIRECT_ONLY = 'enable_hub_webrtc = false\nenable_hole_punching = false\nenable_relays = false\nenable_gossip = false';
const HOUR_MS = 3_600_000;

const TOPOLOGY: Topology = {
  publicHosts: [{ name: 'boot' }],
  routers: [
    { name: 'cafe', kind: 'cone', ipv6: true, lan: [{ name: 'laptop' }] },
    { name: 'office', kind: 'cone', ipv6: true, lan: [{ name: 'printer' }] },
    { name: 'home', kind: 'cone', ipv6: true, lan: [{ name: 'alice' }] },
    { name: 'v6only', kind: 'ipv6-only', ipv6: true, lan: [{ name: 'only6' }] },
    { name: 'late', kind: 'cone', ipv6: true, lan: [{ name: 'slow' }] },
  ],
};

describe.skipIf(!canRunLab)('the real internet: network change, IPv6-only, a clock an hour behind', () => {
  let lab: Lab;
  let work: Awaited<ReturnType<typeof workdir>>;
  let seed: string;
  const nodes: LabNode[] = [];

  beforeAll(async () => {
    lab = await createLab(TOPOLOGY);
    work = await workdir();
    nodes.push(await LabNode.start(lab, 'boot', work.dir, labIni({})));
    seed = `${lab.hosts.boot!.ipv4[0]}:8889`;
  });
  beforeEach(async () => {
    for (const n of nodes.splice(1)) n.kill();
    await lab.flushConntrack();
  });
  afterAll(async () => {
    for (const n of nodes) n.kill();
    await lab?.destroy();
    await work?.cleanup();
  });

  const send = (from: string, to: LabNode, text: string) =>
    labSend(lab, from, work.dir, labIni({ seed, extra: DIRECT_ONLY }), to.nodeId, text);

  it('a host moved to another router re-announces within 10 s and is reached at its new address without a restart', async () => {
    const laptop = await LabNode.start(lab, 'laptop', work.dir, labIni({ seed, extra: DIRECT_ONLY }));
    nodes.push(laptop);
    await laptop.logged(/announced endpoint record/);
    await laptop.logged(new RegExp(`behind NAT.*${lab.routers.cafe!.externalIpv4.replaceAll('.', '\\.')}`));
    const before = await send('alice', laptop, 'at the cafe');
    expect(before.result, before.stderr).toMatchObject({
      event: 'delivered',
      tier: 'ipv6_direct',
      remote_address: lab.hosts.laptop!.ipv6[0],
    });

    const oldIpv6 = lab.hosts.laptop!.ipv6[0];
    const t0 = Date.now();
    const moved = await lab.moveHost('laptop', 'office');
    expect(moved.ipv6[0]).not.toBe(oldIpv6);
    await laptop.logged(/endpoint record re-announced after the address change/, 10_000);
    const reannounceMs = Date.now() - t0;
    // The external IPv4 is learnt again: the office's NAT, not the cafe's.
    await laptop.logged(new RegExp(`behind NAT.*${lab.routers.office!.externalIpv4.replaceAll('.', '\\.')}`), 1_000);
    console.log(`network change: record re-announced ${reannounceMs} ms after the move (poll 2 s)`);
    expect(reannounceMs).toBeLessThan(10_000);

    const after = await send('alice', laptop, 'at the office');
    expect(after.result, after.stderr).toMatchObject({ event: 'delivered', tier: 'ipv6_direct', remote_address: moved.ipv6[0] });
    expect(await laptop.next('message', (e) => e.text === 'at the office')).toMatchObject({ tier: 'ipv6_direct' });
    expect(laptop.child.exitCode).toBeNull(); // the same process throughout
  });

  it('an IPv6-only host (external_address = [IPv6]:port) joins through an IPv6 seed, is found and reached over tier 1', async () => {
    const addr = lab.hosts.only6!.ipv6[0]!;
    expect(lab.hosts.only6!.ipv4).toEqual([]);
    const seed6 = `[${lab.hosts.boot!.ipv6[0]}]:8889`;
    const only6 = await LabNode.start(
      lab,
      'only6',
      work.dir,
      labIni({ seed: seed6, extra: `${DIRECT_ONLY}\n[p2p]\nexternal_address = [${addr}]:9000` }),
    );
    nodes.push(only6);
    await only6.logged(/joined the DHT/);
    await only6.logged(/announced endpoint record/);
    const r = await send('alice', only6, 'hello v6-only');
    expect(r.result, r.stderr).toMatchObject({ event: 'delivered', tier: 'ipv6_direct', remote_address: addr });
    expect(await only6.next('message', (e) => e.text === 'hello v6-only')).toMatchObject({ tier: 'ipv6_direct' });
  });

  it('a node whose clock is an hour behind publishes, is found and receives a message', async () => {
    const slow = await LabNode.spawn(lab, 'slow', work.dir, labIni({ seed, extra: DIRECT_ONLY }), [
      'start',
      `--clock-offset-ms=${-HOUR_MS}`,
    ]);
    nodes.push(slow);
    await slow.next('listening');
    await slow.logged(/announced endpoint record/);
    // Its record is signed an hour in the past (seq from its sequence store, by the same clock).
    const m = /announced endpoint record .*seq=(\d+) issued_at=(\d+)/.exec(slow.stderr);
    const hourAgo = Date.now() - HOUR_MS;
    expect(Number(m?.[2]), slow.stderr.slice(-2000)).toBeGreaterThan(hourAgo - 60_000);
    expect(Number(m?.[2])).toBeLessThan(hourAgo + 1_000);
    expect(Number(m?.[1])).toBeLessThan(hourAgo + 1_000);
    const r = await send('alice', slow, 'you are late');
    expect(r.result, r.stderr).toMatchObject({ event: 'delivered', tier: 'ipv6_direct', remote_address: lab.hosts.slow!.ipv6[0] });
    expect(await slow.next('message', (e) => e.text === 'you are late')).toMatchObject({ tier: 'ipv6_direct' });
  });

  it('leaves no namespace behind', async () => {
    for (const n of nodes.splice(0)) n.kill();
    const id = lab.id;
    await lab.destroy();
    expect(leftoverNamespaces(id)).toEqual([]);
  });
});
