// Tier 5 in the lab, through dpc-node processes: peers behind symmetric NAT and carrier-grade
// NAT reach each other through volunteer relays on the "internet" found in the DHT.
import { createLab, type Lab, LabNode, labIni, labSend, type Topology, workdir } from '@dpc/netlab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labAvailability, leftoverNamespaces } from './support.js';

const canRunLab = labAvailability(['ip', 'nft', 'conntrack']);

const TOPOLOGY: Topology = {
  publicHosts: [
    { name: 'boot', ipv6: false },
    { name: 'relay1', ipv6: false },
    { name: 'relay2', ipv6: false },
    { name: 'relay3', ipv6: false },
  ],
  routers: [
    { name: 'syma', kind: 'symmetric', lan: [{ name: 'sa' }] },
    { name: 'symb', kind: 'symmetric', lan: [{ name: 'sb' }] },
    { name: 'carrier', kind: 'double-nat', cgnat: 'symmetric', lan: [{ name: 'sc' }] },
    { name: 'symx', kind: 'symmetric', lan: [{ name: 'x' }] },
    { name: 'symy', kind: 'symmetric', lan: [{ name: 'y' }] },
    { name: 'symd', kind: 'symmetric', lan: [{ name: 'sd' }] },
  ],
};

const RESERVE = '[relay]\nreserve = always\nport = 9100';
const volunteer = (maxPeers: number) => `[relay]\nvolunteer = true\nmax_peers = ${maxPeers}\nregion = lab\nport = 9100`;
const relaysOnly = (peer: string) => (e: Record<string, unknown>) => e.kind === 'session' && (e.peers as string[]).includes(peer);

describe.skipIf(!canRunLab)('tier 5 through volunteer relays over real NAT (dpc-node)', () => {
  let lab: Lab;
  let work: Awaited<ReturnType<typeof workdir>>;
  let seed: string;
  const nodes: LabNode[] = [];
  const start = async (host: string, extra = '') => {
    const n = await LabNode.start(lab, host, work.dir, labIni({ seed, extra }));
    nodes.push(n);
    return n;
  };
  const peers: Record<string, LabNode> = {};

  beforeAll(async () => {
    lab = await createLab(TOPOLOGY);
    work = await workdir();
    nodes.push(await LabNode.start(lab, 'boot', work.dir, labIni({})));
    seed = `${lab.hosts.boot!.ipv4[0]}:8889`;
  });
  afterAll(async () => {
    for (const n of nodes) n.kill('SIGKILL');
    await lab?.destroy();
    await work?.cleanup();
  });

  it('a relay that is full makes the client use the next one; peers behind symmetric NAT connect via tier 5', async () => {
    // relay1 takes one session, which x and y fill.
    peers.relay1 = await start('relay1', volunteer(1));
    await peers.relay1.logged(/volunteering as a relay/);
    peers.y = await start('y', RESERVE);
    await peers.y.logged(/relay reservations/);
    const x = await LabNode.spawn(lab, 'x', work.dir, labIni({ seed, extra: RESERVE }), [
      'send',
      '--to',
      peers.y.nodeId,
      '--linger',
      '120',
      'filling relay1',
    ]);
    nodes.push(x);
    expect(await x.next('delivered', () => true, 45_000)).toMatchObject({ tier: 'volunteer_relay' });
    await peers.relay1.next('relay', relaysOnly(peers.y.nodeId));

    // relay2 has room; sb reserves where it can and sa reaches it.
    peers.relay2 = await start('relay2', volunteer(20));
    await peers.relay2.logged(/volunteering as a relay/);
    peers.sb = await start('sb', RESERVE);
    await peers.sb.logged(/relay reservations/);
    const r = await labSend(lab, 'sa', work.dir, labIni({ seed, extra: RESERVE }), peers.sb.nodeId, 'hello through a volunteer');
    expect(r.result, r.stderr.slice(-3000)).toMatchObject({ event: 'delivered', tier: 'volunteer_relay' });
    expect(await peers.sb.next('message', (e) => e.text === 'hello through a volunteer')).toMatchObject({ tier: 'volunteer_relay' });
    await peers.relay2.next('relay', relaysOnly(peers.sb.nodeId));
    expect(peers.relay1.events.some((e) => e.event === 'relay' && relaysOnly(peers.sb!.nodeId)(e))).toBe(false);
  });

  it('a peer behind carrier-grade NAT reaches one behind symmetric NAT via tier 5; killing the relay surfaces a path failure', async () => {
    const sc = await LabNode.spawn(lab, 'sc', work.dir, labIni({ seed, extra: RESERVE }), [
      'send',
      '--to',
      peers.sb!.nodeId,
      '--linger',
      '120',
      'hello from behind CGNAT',
    ]);
    nodes.push(sc);
    expect(await sc.next('delivered', () => true, 45_000)).toMatchObject({ tier: 'volunteer_relay' });
    const msg = await peers.sb!.next('message', (e) => e.text === 'hello from behind CGNAT');
    expect(msg).toMatchObject({ tier: 'volunteer_relay' });
    await peers.relay2!.next('relay', relaysOnly(String(msg.from)));
    peers.relay2!.kill('SIGKILL');
    expect(await sc.next('path-lost', () => true, 30_000)).toMatchObject({ tier: 'volunteer_relay' });
    expect(await peers.sb!.next('path-lost', (e) => e.tier === 'volunteer_relay', 30_000)).toBeDefined();
  });

  it('a NAT that forgets its mappings (conntrack flushed) does not strand a reservation: keepalives take it again', async () => {
    // relay1 is full and relay2 is gone: a fresh volunteer takes the reservation
    peers.relay3 = await start('relay3', volunteer(20));
    await peers.relay3.logged(/volunteering as a relay/);
    const sd = await start('sd', `${RESERVE}\nkeepalive = 1`);
    await sd.logged(/relay reservations .*relays=\["/);
    await lab.flushConntrack(); // every router forgets every mapping, as after a reboot
    // sd's reserved links die silently; its pings notice and reserve again
    // sd's reserved link dies silently; its pings notice (reservation lost), and it reserves again
    await expect
      .poll(() => (sd.stderr.match(/relay reservations .*relays=\["/g) ?? []).length, {
        timeout: 30_000,
        message: `sd log: ${sd.stderr.slice(-4000)}`,
      })
      .toBeGreaterThanOrEqual(2);
    expect(sd.stderr).toMatch(/relay reservations .*relays=\[\]/);
    const r = await labSend(lab, 'sa', work.dir, labIni({ seed, extra: RESERVE }), sd.nodeId, 'after the NAT reboot');
    expect(r.result, r.stderr.slice(-3000)).toMatchObject({ event: 'delivered', tier: 'volunteer_relay' });
  });

  it('leaves no namespace behind', async () => {
    for (const n of nodes.splice(0)) n.kill('SIGKILL');
    const id = lab.id;
    await lab.destroy();
    expect(leftoverNamespaces(id)).toEqual([]);
  });
});
