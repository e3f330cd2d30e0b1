// The Hub and the orchestrator through dpc-node processes over real NAT (two cone NATs per pair,
// a dpc-node serving the Hub on the lab internet, a real coturn for STUN, DHT peers to measure
// NAT types with; sequential mode, the spec's hybrid rules):
// - the Hub process dies: the nodes notice within seconds (hubConnected false) and the next send
//   goes to tier 4 without one tier-3 attempt; the Hub comes back: every node logs in again;
// - the Hub's host goes silent (every packet to it dropped): the heartbeat notices within seconds;
// - a session that starts on tier 3 (Hub up: tiers 4–5 skipped on the first connect) moves to
//   tier 4 in the background while messages stream, and every message arrives once, in order.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab, DPC_NODE, type Lab, LabNode, labIni, startCoturn, type Topology, workdir } from '@dpc/netlab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, labAvailability, leftoverNamespaces } from './support.js';

const canRunLab = labAvailability(['ip', 'nft', 'conntrack', 'turnserver']);
const API = fileURLToPath(new URL('./api-fixture.mjs', import.meta.url));
const HUB_PORT = 8890;

const TOPOLOGY: Topology = {
  publicHosts: [
    { name: 'boot', ipv6: false },
    { name: 'p1', ipv6: false },
    { name: 'p2', ipv6: false },
    { name: 'hub', ipv6: false },
    { name: 'turn', ipv6: false },
  ],
  routers: [
    { name: 'conea', kind: 'cone', lan: [{ name: 'ca' }] },
    { name: 'coneb', kind: 'cone', lan: [{ name: 'cb' }] },
    { name: 'conec', kind: 'cone', lan: [{ name: 'cc' }] },
    { name: 'coned', kind: 'cone', lan: [{ name: 'cd' }] },
  ],
};

type Ev = Record<string, unknown>;
const count = (n: LabNode, event: string, pred: (e: Ev) => boolean) => n.events.filter((e) => e.event === event && pred(e)).length;
const hubUp = (e: Ev) => e.kind === 'hub-up';
const hubDown = (e: Ev) => e.kind === 'hub-down';

async function until(what: string, fn: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!canRunLab)('the Hub and tiers 3–4 through dpc-node processes (cone NATs, sequential mode)', () => {
  let lab: Lab;
  let work: Awaited<ReturnType<typeof workdir>>;
  let seed: string;
  let hubIni: string;
  let peerIni: string;
  const nodes: LabNode[] = [];
  let hub: LabNode;
  let a: LabNode;
  let b: LabNode;
  const turnProcs: Array<{ kill(s: NodeJS.Signals): void }> = [];

  const start = async (host: string, ini: string) => {
    const n = await LabNode.start(lab, host, work.dir, ini);
    nodes.push(n);
    return n;
  };
  /** Calls the node's WebSocket API from inside its host. */
  const api = async (n: LabNode, args: string[], timeoutMs = 60_000) => {
    const r = await lab.exec(n.host, process.execPath, [API, args[0] as string, join(work.dir, `${n.host}-start`), ...args.slice(1)], {
      timeoutMs,
    });
    const lines = jsonLines(r.stdout);
    if (r.code !== 0 || lines.some((l) => l.event === 'error')) throw new Error(`api ${args.join(' ')}: ${r.stdout} ${r.stderr}`);
    return lines;
  };
  const tierStats = async (n: LabNode) => {
    const [r] = await api(n, ['call', 'stats']);
    if (!r) throw new Error('no stats');
    return (
      r.result as { orchestrator: { tiers: Record<string, { attempts: number; successes: number; failures: Record<string, number> }> } }
    ).orchestrator.tiers;
  };
  /** Logged in to the Hub, NAT measured as cone and re-announced (tier 4 applicable both ways). */
  const ready = async (n: LabNode) => {
    await n.next('webrtc', hubUp, 30_000);
    await n.next('nat', (e) => e.type === 'cone', 60_000);
    await new Promise((r) => setTimeout(r, 3_000)); // the re-signed endpoint record is stored
  };

  beforeAll(async () => {
    lab = await createLab(TOPOLOGY);
    work = await workdir();
    const turnIp = lab.hosts.turn?.ipv4[0] as string;
    const hubIp = lab.hosts.hub?.ipv4[0] as string;
    // coturn as the STUN server (no TURN needed between cone NATs).
    turnProcs.push((await startCoturn(lab, 'turn')).process);
    nodes.push(await LabNode.start(lab, 'boot', work.dir, labIni({})));
    seed = `${lab.hosts.boot?.ipv4[0]}:8889`;
    for (const h of ['p1', 'p2']) nodes.push(await LabNode.start(lab, h, work.dir, labIni({ seed })));
    const hubUrl = `ws://${hubIp}:${HUB_PORT}`;
    hubIni = labIni({
      seed,
      extra: `[hub]\nserve = true\nport = ${HUB_PORT}\nurl = ${hubUrl}\n[webrtc]\nstun_servers = stun:${turnIp}:3478`,
    });
    hub = await start('hub', hubIni);
    peerIni = labIni({
      seed,
      extra: [
        `[hub]\nurl = ${hubUrl}`,
        `[webrtc]\nstun_servers = stun:${turnIp}:3478`,
        '[connection]\nmode = sequential\nwebrtc_timeout = 20\ntotal_timeout = 60\nenable_relays = false\nenable_gossip = false',
        '[api]\nenabled = true\nport = 0',
      ].join('\n'),
    });
  });

  /** A short-lived `dpc-node send --json` (its own node, started for the send): every JSON line. */
  const shortLivedSend = async (host: string, to: string, text: string) => {
    const data = join(work.dir, `${host}-send`);
    await mkdir(data, { recursive: true });
    const file = join(work.dir, `${host}-send.ini`);
    await writeFile(file, peerIni.replace('[api]\nenabled = true\nport = 0', ''));
    const t0 = Date.now();
    const r = await lab.exec(
      host,
      process.execPath,
      [DPC_NODE, 'send', '--json', '--log-level', 'debug', '--config', file, '--data-dir', data, '--to', to, text],
      {
        timeoutMs: 90_000,
      },
    );
    return { lines: jsonLines(r.stdout), stderr: r.stderr, ms: Date.now() - t0 };
  };
  afterAll(async () => {
    for (const n of nodes) n.kill('SIGKILL');
    for (const t of turnProcs) t.kill('SIGKILL');
    const id = lab?.id;
    await lab?.destroy();
    await work?.cleanup();
    if (id) expect(leftoverNamespaces(id)).toEqual([]);
  });

  it('the Hub dies: hubConnected turns false within seconds, the next send goes to tier 4 with no tier-3 attempt; the Hub restarts: the nodes log in again', async () => {
    [a, b] = await Promise.all([start('ca', peerIni), start('cb', peerIni)]);
    await Promise.all([ready(a), ready(b)]);
    await a.next('api', () => true);

    const killed = Date.now();
    hub.kill('SIGKILL');
    await Promise.all([a.next('webrtc', hubDown, 30_000), b.next('webrtc', hubDown, 30_000)]);
    const noticedMs = Date.now() - killed;
    console.info(`Hub process killed: both nodes reported hub-down after ${noticedMs} ms`);

    const [sent] = await api(a, ['call', 'send', JSON.stringify({ to: b.nodeId, text: 'with the Hub gone', timeout_ms: 60_000 })]);
    console.info(`send with the Hub down: ${JSON.stringify(sent?.result)}`);
    expect(sent?.result).toMatchObject({ delivered: true, tier: 'udp_hole_punch' });
    expect(await b.next('message', (e) => e.text === 'with the Hub gone')).toMatchObject({ tier: 'udp_hole_punch' });
    const tiers = await tierStats(a);
    // Tier 3 was not tried at all (not even a failing attempt): no time spent on it.
    expect(tiers.hub_webrtc?.attempts).toBe(0);
    expect(tiers.udp_hole_punch?.successes).toBeGreaterThanOrEqual(1);

    // A short-lived `dpc-node send` started while the Hub is down: its progress shows which tiers
    // it tries — not tier 3 — and it is delivered on tier 4.
    const fresh = await shortLivedSend('cc', b.nodeId, 'from a fresh node, Hub down');
    const progress = fresh.lines.filter((l) => l.event === 'progress');
    console.info(
      `short-lived send with the Hub down: ${JSON.stringify(fresh.lines.filter((l) => l.step !== 'outcome'))} in ${fresh.ms} ms`,
    );
    const found = progress.find((l) => l.step === 'found');
    expect(found, fresh.stderr.slice(-12_000)).toBeDefined();
    expect(found?.tiers).toContain('udp_hole_punch');
    expect(found?.tiers).not.toContain('hub_webrtc');
    expect(progress.filter((l) => l.step === 'trying').map((l) => l.tier)).not.toContain('hub_webrtc');
    expect(fresh.lines.filter((l) => l.event !== 'progress').at(-1), fresh.stderr.slice(-3000)).toMatchObject({
      event: 'delivered',
      tier: 'udp_hole_punch',
    });

    // The Hub comes back (same data directory, same identity): every node logs in again by itself.
    const restarted = Date.now();
    hub = await start('hub', hubIni);
    await until('both nodes logged in again', () => count(a, 'webrtc', hubUp) >= 2 && count(b, 'webrtc', hubUp) >= 2, 60_000);
    console.info(`Hub restarted: both nodes logged in again ${Date.now() - restarted} ms after its start began`);
    expect(count(a, 'webrtc', hubDown)).toBe(1);
  }, 240_000);

  it('a Hub cut off the network (silent, no close): the heartbeat notices within seconds; reachable again: the nodes log in again', async () => {
    if (!a || !b) throw new Error('needs the nodes of the previous test');
    await until(
      'both logged in',
      () => count(a, 'webrtc', hubUp) > count(a, 'webrtc', hubDown) && count(b, 'webrtc', hubUp) > count(b, 'webrtc', hubDown),
      60_000,
    );
    const downBefore = count(a, 'webrtc', hubDown);
    const upBefore = count(a, 'webrtc', hubUp);
    // Everything arriving at the Hub's host is dropped: no FIN, no RST, just silence.
    const silenced = await lab.exec('hub', 'sh', [
      '-c',
      "nft add table inet dpc_silence && nft add chain inet dpc_silence in '{ type filter hook input priority 0; policy drop; }'",
    ]);
    expect(silenced.code, silenced.stderr).toBe(0);
    const cut = Date.now();
    try {
      await until('hub-down at the node', () => count(a, 'webrtc', hubDown) > downBefore, 30_000);
      console.info(`Hub silenced: the node reported hub-down after ${Date.now() - cut} ms (heartbeat 2 s, dead after 5 s)`);
    } finally {
      await lab.exec('hub', 'nft', ['delete table inet dpc_silence']);
    }
    const back = Date.now();
    await until('logged in again', () => count(a, 'webrtc', hubUp) > upBefore, 60_000);
    console.info(`Hub reachable again: the node logged in again after ${Date.now() - back} ms`);
  }, 180_000);

  it('a session that starts on tier 3 moves to tier 4 in the background while messages stream: each arrives once, in order', async () => {
    await until('the Hub listening', () => hub.events.some((e) => e.event === 'listening'), 30_000);
    const [c, d] = await Promise.all([start('cc', peerIni), start('cd', peerIni)]);
    await Promise.all([ready(c), ready(d)]);
    await c.next('api', () => true);
    // Upgrades are tried every 30 s (dpc-node's default): the stream runs until one happened.
    const lines = await api(c, ['stream', d.nodeId, '200', '25', '150000'], 200_000);
    const first = lines.find((l) => l.event === 'first');
    const done = lines.find((l) => l.event === 'done');
    console.info(`stream: ${JSON.stringify(lines.filter((l) => l.event !== 'result'))}`);
    const attempts = (t: Awaited<ReturnType<typeof tierStats>>) =>
      Object.fromEntries(Object.entries(t).map(([k, v]) => [k, { attempts: v.attempts, successes: v.successes, failures: v.failures }]));
    console.info(
      `tier stats: sender ${JSON.stringify(attempts(await tierStats(c)))}; receiver ${JSON.stringify(attempts(await tierStats(d)))}`,
    );
    expect(first).toMatchObject({ tier: 'hub_webrtc' });
    expect(done).toMatchObject({ upgraded: true, last_tier: 'udp_hole_punch' });
    const total = done?.sent as number;
    await until('every message at the receiver', () => count(d, 'message', () => true) >= total, 30_000);
    await new Promise((r) => setTimeout(r, 1_000)); // a duplicate would arrive now
    const got = d.events.filter((e) => e.event === 'message').map((e) => ({ text: e.text, tier: e.tier }));
    expect(got.map((m) => m.text)).toEqual(Array.from({ length: total }, (_, i) => `msg-${i}`));
    expect(got[0]?.tier).toBe('hub_webrtc');
    expect(got.at(-1)?.tier).toBe('udp_hole_punch');
    // Either end may have made the punch that moved the session (see the orchestrator's upgrade phase).
    expect(await c.next('upgraded', () => true)).toMatchObject({ peerId: d.nodeId, from: 'hub_webrtc', to: 'udp_hole_punch' });
    expect(await d.next('upgraded', () => true)).toMatchObject({ peerId: c.nodeId, from: 'hub_webrtc', to: 'udp_hole_punch' });
  }, 300_000);
});
