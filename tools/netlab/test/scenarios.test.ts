// The lab's first scenarios, end to end through dpc-node processes in real namespaces: a
// bootstrap node on the "internet", peers behind real NAT, `dpc-node send` from another host.
import { createLab, type Lab, LabNode, labIni, labSend, type Topology, workdir } from '@dpc/netlab';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { labAvailability, leftoverNamespaces } from './support.js';

const canRunLab = labAvailability(['ip', 'nft', 'conntrack']);
const PORT = 9000;
const TIERS_1_2_ONLY = 'enable_hub_webrtc = false\nenable_hole_punching = false\nenable_relays = false\nenable_gossip = false';

const TOPOLOGY: Topology = {
  publicHosts: [{ name: 'boot' }, { name: 'server', ipv6: false }],
  routers: [
    { name: 'v6a', kind: 'cone', ipv6: true, lan: [{ name: 'alice6' }] },
    { name: 'v6b', kind: 'cone', ipv6: true, lan: [{ name: 'bob6' }] },
    { name: 'home', kind: 'cone', lan: [{ name: 'alice' }, { name: 'bob' }] },
    { name: 'fwd', kind: 'cone', lan: [{ name: 'carol' }], portForwards: [{ protocol: 'tcp', port: PORT, host: 'carol' }] },
    { name: 'sym', kind: 'symmetric', lan: [{ name: 'dave' }] },
  ],
};

describe.skipIf(!canRunLab)('first scenarios through dpc-node (tiers 1–2 over real NAT)', () => {
  let lab: Lab;
  let work: Awaited<ReturnType<typeof workdir>>;
  let seed: string;
  const nodes: LabNode[] = [];

  beforeAll(async () => {
    lab = await createLab(TOPOLOGY);
    work = await workdir();
    const boot = await LabNode.start(lab, 'boot', work.dir, labIni({}));
    nodes.push(boot);
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

  const peer = async (host: string) => {
    const n = await LabNode.start(lab, host, work.dir, labIni({ seed }));
    nodes.push(n);
    return n;
  };

  it('both peers have global IPv6 → connected on tier 1', async () => {
    const bob = await peer('bob6');
    const r = await labSend(lab, 'alice6', work.dir, labIni({ seed }), bob.nodeId, 'hello over v6');
    expect(r.result, r.stderr).toMatchObject({ event: 'delivered', tier: 'ipv6_direct', remote_address: lab.hosts.bob6!.ipv6[0] });
    expect(r.code).toBe(0);
    expect(await bob.next('message', (e) => e.text === 'hello over v6')).toMatchObject({ tier: 'ipv6_direct' });
  });

  it('both peers on one LAN behind one NAT → tier 2 over the local address', async () => {
    const bob = await peer('bob');
    const r = await labSend(lab, 'alice', work.dir, labIni({ seed }), bob.nodeId, 'hello neighbour');
    expect(r.result, r.stderr).toMatchObject({ event: 'delivered', tier: 'ipv4_direct', remote_address: lab.hosts.bob!.ipv4[0] });
    expect(await bob.next('message', (e) => e.text === 'hello neighbour')).toMatchObject({ tier: 'ipv4_direct' });
  });

  it('peer with a public IPv4 address → tier 2 over the external address', async () => {
    const server = await peer('server');
    const r = await labSend(lab, 'dave', work.dir, labIni({ seed }), server.nodeId, 'hello server');
    expect(r.result, r.stderr).toMatchObject({ event: 'delivered', tier: 'ipv4_direct', remote_address: lab.hosts.server!.ipv4[0] });
  });

  it('peer behind a port forward on its router → tier 2 over the external address', async () => {
    const carol = await peer('carol');
    const r = await labSend(lab, 'dave', work.dir, labIni({ seed }), carol.nodeId, 'hello through the forward');
    expect(r.result, r.stderr).toMatchObject({ event: 'delivered', tier: 'ipv4_direct', remote_address: lab.routers.fwd!.externalIpv4 });
    expect(await carol.next('message', (e) => e.text === 'hello through the forward')).toBeDefined();
  });

  it('both peers behind NAT with only tiers 1–2 enabled → fails after the timeouts with every tier and why', async () => {
    const dave = await peer('dave');
    const r = await labSend(lab, 'alice', work.dir, labIni({ seed, extra: TIERS_1_2_ONLY }), dave.nodeId, 'anyone?');
    expect(r.code).toBe(1);
    const err = r.result?.error as { code: string; tiers: Array<{ tier: string; result: string; reason?: string; detail?: string }> };
    expect(err.code, r.stderr).toBe('DPC_CONNECT_FAILED');
    expect(err.tiers.map((t) => t.tier)).toEqual([
      'ipv6_direct',
      'ipv4_direct',
      'hub_webrtc',
      'udp_hole_punch',
      'volunteer_relay',
      'gossip',
    ]);
    expect(err.tiers[0]).toMatchObject({ result: 'skipped', reason: 'not applicable' });
    expect(err.tiers[1]).toMatchObject({ result: 'timed out' });
    for (const t of err.tiers.slice(2)) expect(t).toMatchObject({ result: 'skipped', reason: 'disabled' });
  });

  it('leaves no namespace behind', async () => {
    for (const n of nodes.splice(0)) n.kill();
    const id = lab.id;
    await lab.destroy();
    expect(leftoverNamespaces(id)).toEqual([]);
  });
});
