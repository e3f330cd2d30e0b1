// Tier 6 over real NAT: alice and bob sit behind different NATs and are never online together;
// their only common peer is the public bootstrap node "boot" (their DHT seed and gossip peer).
// A packet capture in boot's namespace (AF_PACKET, every interface) never shows the plaintext.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLab, type Lab, LabNode, labIni, type Topology, workdir } from '@dpc/netlab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, labAvailability } from './support.js';

const canRunLab = labAvailability(['ip', 'nft', 'conntrack']);
const MARKER = 'lab-plaintext-marker-5d0e77';
const GOSSIP = '[connection]\ngossip_timeout = 1\ntotal_timeout = 20\n[gossip]\nsync_interval = 3\n[api]\nenabled = true\nport = 0';

const TOPOLOGY: Topology = {
  publicHosts: [{ name: 'boot', ipv6: false }],
  routers: [
    { name: 'homea', kind: 'cone', lan: [{ name: 'alice' }] },
    { name: 'homeb', kind: 'symmetric', lan: [{ name: 'bob' }] },
  ],
};

/** Captures every frame on every interface of the host's namespace into `file` until killed. */
const SNIFFER = `
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
with open(sys.argv[1], 'wb', buffering=0) as f:
    print('ready', flush=True)
    while True:
        f.write(s.recv(65535))
`;

describe.skipIf(!canRunLab)('gossip (tier 6) through dpc-node over real NAT', () => {
  let lab: Lab;
  let work: Awaited<ReturnType<typeof workdir>>;
  const nodes: LabNode[] = [];

  beforeAll(async () => {
    lab = await createLab(TOPOLOGY);
    work = await workdir();
  });
  afterAll(async () => {
    for (const n of nodes) n.kill('SIGKILL');
    await lab?.destroy();
    await work?.cleanup();
  });

  const cli = async (host: string, args: string[]) => {
    const name = `${host}-start`;
    const r = await lab.exec(host, process.execPath, [
      new URL('../../../apps/node/dist/bin.js', import.meta.url).pathname,
      ...args,
      '--json',
      '--config',
      join(work.dir, `${name}.ini`),
      '--data-dir',
      join(work.dir, name),
    ]);
    return { ...r, lines: jsonLines(r.stdout) };
  };

  it('alice sends while bob is offline, boot restarts holding it, bob delivers it, alice sees it delivered; a capture at boot never shows the plaintext', async () => {
    const capture = join(work.dir, 'boot.cap');
    const sniffer = lab.spawn('boot', 'python3', ['-c', SNIFFER, capture], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve) => sniffer.stdout?.once('data', () => resolve()));
    const seed = `${lab.hosts.boot?.ipv4[0]}:8889`;
    let boot = await LabNode.start(lab, 'boot', work.dir, labIni({ extra: GOSSIP }));
    nodes.push(boot);
    // bob is online once (its record is announced at boot), then gone before alice starts
    const bob1 = await LabNode.start(lab, 'bob', work.dir, labIni({ seed, extra: GOSSIP }));
    const bobId = bob1.nodeId;
    await bob1.logged(/announced endpoint record.*stored_at=[1-9]/, 15_000); // alice finds bob's key at boot later
    bob1.kill();
    await new Promise((r) => bob1.child.once('exit', r));

    const alice = await LabNode.start(lab, 'alice', work.dir, labIni({ seed, extra: GOSSIP }));
    nodes.push(alice);
    const sent = await cli('alice', ['send', '--to', bobId, MARKER]);
    expect(sent.code, sent.stderr).toBe(75); // queued: tier 6 holds it
    alice.kill();
    await new Promise((r) => alice.child.once('exit', r));
    const held = await cli('boot', ['status']);
    expect(held.lines.at(-1)?.counters).toMatchObject({ gossip_stored: 1 });

    boot.kill('SIGKILL'); // restarted while holding the message
    await new Promise((r) => boot.child.once('exit', r));
    boot = await LabNode.start(lab, 'boot', work.dir, labIni({ extra: GOSSIP }));
    nodes.push(boot);

    const bob = await LabNode.start(lab, 'bob', work.dir, labIni({ seed, extra: GOSSIP }));
    nodes.push(bob);
    const m = await bob.next('message', (e) => e.text === MARKER, 60_000);
    expect(m.tier).toBe('gossip');
    // boot drops its copy once bob holds it (bob's durable hop ack with keyspace-scoped copies,
    // the node's default, or bob's signed receipt), and keeps bob's receipt for alice
    const until = Date.now() + 30_000;
    let dropped = 0;
    while (dropped < 1 && Date.now() < until) {
      const s = await cli('boot', ['status']);
      const k = (s.lines.at(-1)?.counters as Record<string, number> | undefined) ?? {};
      dropped = (k.gossip_dropped_at_destination ?? 0) + (k.gossip_dropped_by_receipt ?? 0);
      if (dropped < 1) await new Promise((res) => setTimeout(res, 500));
    }
    // at least the message (alice's session may have handed tier 6 more than one item)
    expect(dropped).toBeGreaterThanOrEqual(1);
    bob.kill();
    await new Promise((r) => bob.child.once('exit', r));

    const alice2 = await LabNode.start(lab, 'alice', work.dir, labIni({ seed, extra: GOSSIP }));
    nodes.push(alice2);
    const deadline = Date.now() + 60_000;
    let peer: Record<string, unknown> | undefined;
    while (Date.now() < deadline) {
      const r = await cli('alice', ['peers']);
      peer = r.lines.find((l) => l.peerId === bobId);
      if (peer && peer.unacked === 0) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    expect(peer).toMatchObject({ peerId: bobId, unacked: 0 });
    const st = await cli('alice', ['status']);
    expect((st.lines.at(-1)?.counters as Record<string, number> | undefined)?.gossip_receipts_received).toBeGreaterThanOrEqual(1);

    sniffer.kill('SIGKILL');
    const cap = await readFile(capture);
    expect(cap.includes(Buffer.from('DPCG1 '))).toBe(true); // the capture sees the gossip links' bytes
    expect(cap.includes(Buffer.from(MARKER))).toBe(false);
  });
});
