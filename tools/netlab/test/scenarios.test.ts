// TODO(direct): switch to @dpc/direct strategies when it lands. Until then the fixtures dial
// with @dpc/core's secure channel over plain TCP, the tier decided by the address family.
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { generateIdentity, type Identity } from '@dpc/core';
import { createLab, type Lab, type Topology } from '@dpc/netlab';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { jsonLines, labAvailability, leftoverNamespaces } from './support.js';

const canRunLab = labAvailability(['ip', 'nft', 'conntrack']);

const PEER = fileURLToPath(new URL('./fixtures/peer.mjs', import.meta.url));
const DIALER = fileURLToPath(new URL('./fixtures/dialer.mjs', import.meta.url));
const PORT = 9000;
const DIAL_TIMEOUT_MS = 1_500;
const TIERS_1_2 = 'ipv6_direct,ipv4_direct';

/** One lab for all first scenarios; each scenario uses its own hosts. */
const TOPOLOGY: Topology = {
  publicHosts: [{ name: 'server', ipv6: false }],
  routers: [
    { name: 'v6a', kind: 'cone', ipv6: true, lan: [{ name: 'alice6' }] },
    { name: 'v6b', kind: 'cone', ipv6: true, lan: [{ name: 'bob6' }] },
    { name: 'home', kind: 'cone', lan: [{ name: 'alice' }, { name: 'bob' }] },
    { name: 'fwd', kind: 'cone', lan: [{ name: 'carol' }], portForwards: [{ protocol: 'tcp', port: PORT, host: 'carol' }] },
    { name: 'sym', kind: 'symmetric', lan: [{ name: 'dave' }] },
  ],
};

interface DialOutcome {
  ok: boolean;
  tier?: string;
  address?: string;
  remoteNodeId?: string;
  echo?: { tier: string; seenFrom: string };
  elapsedMs: number;
  error?: { name: string; code: string; tiers: Array<{ tier: string; status: string; code?: string; reason: string }> };
}

describe.skipIf(!canRunLab)('first scenarios (tiers 1–2 over real NAT)', () => {
  let lab: Lab;
  const peers: ChildProcess[] = [];

  beforeAll(async () => {
    lab = await createLab(TOPOLOGY);
  });
  beforeEach(async () => {
    for (const p of peers.splice(0)) p.kill();
    await lab.flushConntrack();
  });
  afterAll(() => lab?.destroy());

  async function startPeer(host: string): Promise<Identity> {
    const identity = generateIdentity();
    const child = lab.spawn(host, process.execPath, [PEER, String(PORT)], {
      env: { ...process.env, DPC_IDENTITY_PEM: identity.privateKeyPem },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    peers.push(child);
    const lines = createInterface({ input: child.stdout! });
    await new Promise<void>((resolve, reject) => {
      lines.on('line', (l) => {
        if (l.includes('"listening"')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`peer on ${host} exited with ${code}`)));
    });
    return identity;
  }

  async function dial(host: string, peer: Identity, candidates: string[], tiers = TIERS_1_2): Promise<DialOutcome> {
    const r = await lab.exec(host, process.execPath, [DIALER, peer.nodeId, String(DIAL_TIMEOUT_MS), tiers, ...candidates], {
      env: { DPC_IDENTITY_PEM: generateIdentity().privateKeyPem },
      timeoutMs: 60_000,
    });
    const [outcome] = jsonLines<DialOutcome>(r.stdout);
    expect(outcome, `dialer said nothing: ${r.stderr}`).toBeDefined();
    return outcome!;
  }

  const at = (ip: string | undefined) => (ip?.includes(':') ? `[${ip}]:${PORT}` : `${ip}:${PORT}`);

  it('both peers have global IPv6 → connected on tier 1', async () => {
    const bob = await startPeer('bob6');
    const b = lab.hosts.bob6!;
    const out = await dial('alice6', bob, [at(b.ipv6[0]), at(b.ipv4[0]), at(lab.routers.v6b!.externalIpv4)]);
    expect(out).toMatchObject({ ok: true, tier: 'ipv6_direct', address: at(b.ipv6[0]), remoteNodeId: bob.nodeId });
    // No NAT on IPv6: bob sees alice's own global address.
    expect(out.echo?.seenFrom).toBe(lab.hosts.alice6!.ipv6[0]);
  });

  it('both peers on one LAN behind one NAT → tier 2 over the local address', async () => {
    const bob = await startPeer('bob');
    const b = lab.hosts.bob!;
    const out = await dial('alice', bob, [at(b.ipv4[0]), at(lab.routers.home!.externalIpv4)]);
    expect(out).toMatchObject({ ok: true, tier: 'ipv4_direct', address: at(b.ipv4[0]), remoteNodeId: bob.nodeId });
    expect(out.echo?.seenFrom).toContain(lab.hosts.alice!.ipv4[0]);
  });

  it('peer with a public IPv4 address → tier 2 over the external address', async () => {
    const server = await startPeer('server');
    const out = await dial('alice', server, [at(lab.hosts.server!.ipv4[0])]);
    expect(out).toMatchObject({ ok: true, tier: 'ipv4_direct', address: at(lab.hosts.server!.ipv4[0]) });
    // The server sees alice from her router's external address (NAT).
    expect(out.echo?.seenFrom).toContain(lab.routers.home!.externalIpv4);
  });

  it('peer behind a port forward → tier 2 over the external address after the local one fails', async () => {
    const carol = await startPeer('carol');
    const ext = at(lab.routers.fwd!.externalIpv4);
    const out = await dial('alice', carol, [at(lab.hosts.carol!.ipv4[0]), ext]);
    expect(out).toMatchObject({ ok: true, tier: 'ipv4_direct', address: ext, remoteNodeId: carol.nodeId });
  });

  it('both peers behind NAT with only tiers 1–2 → fails after the timeouts with every tier and why', async () => {
    const dave = await startPeer('dave');
    const candidates = [at(lab.hosts.dave!.ipv4[0]), at(lab.routers.sym!.externalIpv4)];
    const out = await dial('alice', dave, candidates);
    expect(out.ok).toBe(false);
    expect(out.error).toMatchObject({ name: 'AllTiersFailedError', code: 'DPC_ALL_TIERS_FAILED' });
    const tiers = out.error!.tiers;
    expect(tiers.map((t) => t.tier)).toEqual(['ipv6_direct', 'ipv4_direct', 'hub_webrtc', 'udp_hole_punch', 'volunteer_relay', 'gossip']);
    expect(tiers[0]).toMatchObject({ status: 'not_applicable', code: 'DPC_TIER_NOT_APPLICABLE' });
    expect(tiers[1]).toMatchObject({ status: 'failed', code: 'DPC_DIAL_FAILED' });
    for (const c of candidates) expect(tiers[1]!.reason).toContain(`${c}: no answer within ${DIAL_TIMEOUT_MS} ms`);
    for (const t of tiers.slice(2)) expect(t).toMatchObject({ status: 'skipped', reason: 'disabled by configuration' });
    // Both candidates waited out their timeout (the NAT and the internet drop silently).
    expect(out.elapsedMs).toBeGreaterThanOrEqual(2 * DIAL_TIMEOUT_MS - 50);
    expect(out.elapsedMs).toBeLessThan(2 * DIAL_TIMEOUT_MS + 3_000);
  });

  it('leaves no namespace behind', async () => {
    const id = lab.id;
    await lab.destroy();
    expect(leftoverNamespaces(id)).toEqual([]);
  });
});
