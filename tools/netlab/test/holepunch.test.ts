// Tier 4 in the lab, through dpc-node processes: NAT types measured from DHT peers' answers (and
// cross-checked against coturn's turnutils_natdiscovery behind every router kind), cone ↔ cone
// punched through real NAT (nftables masquerade) with TLS 1.3 on the punched path (a capture at the
// router never sees the plaintext), symmetric ↔ symmetric answered "not applicable" at once so that
// the orchestrator goes on to the relay; cone ↔ symmetric crossed by a birthday punch (256 sockets
// on the symmetric side, random-port probes from the cone side); double NAT ↔ cone punched; each
// also over delayed links with 1 % loss; behind a UDP-blocked router (plain or lossy) the node
// cannot join the DHT and says so at once, and a send fails fast with a typed error.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import {
  createLab,
  DPC_NODE,
  type Lab,
  LabNode,
  labIni,
  labSend,
  natDiscovery,
  natDiscoveryVerdict,
  startStunServer,
  type Topology,
  workdir,
} from '@dpc/netlab';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { jsonLines, labAvailability, leftoverNamespaces } from './support.js';

const canRunLab = labAvailability(['ip', 'nft', 'conntrack', 'turnserver', 'turnutils_natdiscovery']);
const CAPTURE = new URL('./fixtures/capture.py', import.meta.url).pathname;
const PYTHON = process.env.PYTHON ?? 'python3';

const TOPOLOGY: Topology = {
  publicHosts: [
    { name: 'boot', ipv6: false },
    { name: 'p1', ipv6: false },
    { name: 'p2', ipv6: false },
    { name: 'p3', ipv6: false },
    { name: 'r1', ipv6: false },
    // coturn (RFC 5780 needs two addresses) for turnutils_natdiscovery
    { name: 'stun', ipv6: false, ipv4Addresses: 2 },
  ],
  routers: [
    { name: 'conea', kind: 'cone', lan: [{ name: 'ca' }] },
    { name: 'coneb', kind: 'cone', lan: [{ name: 'cb' }] },
    { name: 'syma', kind: 'symmetric', lan: [{ name: 'sa' }] },
    { name: 'symb', kind: 'symmetric', lan: [{ name: 'sb' }] },
    // a carrier-grade cone NAT in front of a home cone NAT
    { name: 'dbl', kind: 'double-nat', lan: [{ name: 'da' }] },
    // 25 ms each way on each router's uplink and 1 % loss each way: 100 ms RTT between the two (each
    // delayed link adds 50 ms RTT, measured with a UDP echo), about 2 % loss each way end to end
    { name: 'lossya', kind: 'cone', link: { delayMs: 25, lossPercent: 1 }, lan: [{ name: 'la' }] },
    { name: 'lossyb', kind: 'cone', link: { delayMs: 25, lossPercent: 1 }, lan: [{ name: 'lb' }] },
    // a symmetric NAT on a delayed, lossy uplink (with lossya: 100 ms RTT, 1 % loss each way on both)
    { name: 'lossysym', kind: 'symmetric', link: { delayMs: 25, lossPercent: 1 }, lan: [{ name: 'ls' }] },
    // TCP only: every UDP packet dropped (the DHT, and so tier 4, cannot work from here)
    { name: 'noudp', kind: 'udp-blocked', lan: [{ name: 'ua' }] },
    // One delayed, lossy uplink each (50 ms RTT, 1 % loss each way towards any public host or
    // plain NAT): a double NAT, and a UDP-blocked router
    { name: 'lossydbl', kind: 'double-nat', link: { delayMs: 25, lossPercent: 1 }, lan: [{ name: 'ld' }] },
    { name: 'lossynoudp', kind: 'udp-blocked', link: { delayMs: 25, lossPercent: 1 }, lan: [{ name: 'lu' }] },
    // a symmetric carrier-grade NAT in front of a home cone NAT (for the coturn cross-check)
    { name: 'dblsym', kind: 'double-nat', cgnat: 'symmetric', lan: [{ name: 'ds' }] },
  ],
};

/** Tier 4 only (tiers 1–2 cannot cross these NATs; no Hub, no relay, no gossip). */
const PUNCH_ONLY = '[connection]\nenable_relays = false\nenable_gossip = false\nenable_hub_webrtc = false';

describe.skipIf(!canRunLab)('tier 4: UDP hole punching over real NAT (dpc-node)', () => {
  let lab: Lab;
  let work: Awaited<ReturnType<typeof workdir>>;
  let seed: string;
  const publics: LabNode[] = [];
  const nodes: LabNode[] = [];
  const start = async (host: string, extra = '') => {
    const n = await LabNode.start(lab, host, work.dir, labIni({ seed, extra }));
    nodes.push(n);
    return n;
  };

  /**
   * Waits for the node's NAT verdict, then for the endpoint record carrying it to be re-signed and
   * stored in the DHT: an "announced endpoint record" log line whose record was issued after the
   * "NAT type measured" line (the verdict is in the record's parts before that line is logged, and
   * the record is signed after a 200 ms debounce). A fixed 3 s wait was too short on lossy, delayed
   * links under CI load (the store took 4.5 s once).
   */
  const natPublished = async (n: LabNode, pred: (e: Record<string, unknown>) => boolean) => {
    const e = await n.next('nat', pred, 45_000);
    const DAY = 86_400_000;
    // The log line may come a moment after the event (stderr and stdout are separate pipes).
    const verdictOfDay = () => {
      const last = [...n.stderr.matchAll(/^(\d\d):(\d\d):(\d\d)\.(\d{3}) INFO +NAT type measured/gm)].at(-1);
      if (!last) return undefined;
      const [, h, m, sec, ms] = last.map(Number) as [number, number, number, number, number];
      return ((h * 60 + m) * 60 + sec) * 1000 + ms;
    };
    const stored = () => {
      const v = verdictOfDay();
      return (
        v !== undefined &&
        [...n.stderr.matchAll(/announced endpoint record .*stored_at=(\d+) .*issued_at=(\d+)/g)].some(
          ([, at, issued]) => Number(at) > 0 && ((Number(issued) % DAY) - v + DAY) % DAY < DAY / 2,
        )
      );
    };
    const until = Date.now() + 45_000;
    while (!stored()) {
      if (Date.now() > until)
        throw new Error(`${n.host}: the record with the NAT verdict was never stored; stderr tail: ${n.stderr.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return e;
  };

  beforeAll(async () => {
    lab = await createLab(TOPOLOGY);
    work = await workdir();
    publics.push(await LabNode.start(lab, 'boot', work.dir, labIni({})));
    seed = `${lab.hosts.boot!.ipv4[0]}:8889`;
    // Distinct DHT peers on the internet to measure NAT mappings with.
    for (const h of ['p1', 'p2', 'p3']) publics.push(await LabNode.start(lab, h, work.dir, labIni({ seed })));
  });
  beforeEach(async () => {
    for (const n of nodes.splice(0)) n.kill('SIGKILL');
    await lab.flushConntrack();
  });
  afterAll(async () => {
    for (const n of [...nodes, ...publics]) n.kill('SIGKILL');
    await lab?.destroy();
    await work?.cleanup();
  });

  it('measures the NAT type of every kind of host from distinct DHT peers: public none, cone, symmetric', async () => {
    // A verdict from at least three distinct peers (the first, right after joining, may have fewer).
    const nat = async (n: LabNode) =>
      (await n.next('nat', (e) => e.type !== 'unknown' && String(e.evidence).split(', ').length >= 3, 60_000)) as Record<string, unknown>;
    // A public host: the peers saw its own address (one answer decides that).
    expect(await (publics[1] as LabNode).next('nat', (e) => e.type !== 'unknown', 45_000)).toMatchObject({
      tier: 'udp_hole_punch',
      type: 'none',
      evidence: expect.stringContaining(`→${lab.hosts.p1!.ipv4[0]}:8889`),
    });
    const cb = await start('cb');
    const sb = await start('sb');
    const coneNat = await nat(cb);
    expect(coneNat, cb.stderr.slice(-2000)).toMatchObject({ type: 'cone' });
    // three or more distinct peers saw one mapping, on the router's external address
    expect(String(coneNat.evidence).split(', ').length).toBeGreaterThanOrEqual(3);
    expect(String(coneNat.evidence)).toContain(lab.routers.coneb!.externalIpv4);
    const symNat = await nat(sb);
    expect(symNat, sb.stderr.slice(-2000)).toMatchObject({ type: 'symmetric' });
    const ports = String(symNat.evidence)
      .split(', ')
      .map((e) => e.split(':').pop());
    expect(new Set(ports).size).toBe(ports.length);
  });

  it("agrees with coturn's turnutils_natdiscovery (RFC 5780) on the mapping behaviour behind every router kind", async () => {
    // Ours: the type a dpc-node measures from its DHT peers' answers. coturn's: endpoint-independent
    // mapping is our cone or none (one mapped port for every destination; coturn says "NAT with
    // Endpoint Independent Mapping" on a public host too), address(-and-port)-dependent our
    // symmetric; no answer at all is UDP blocked (there our node cannot even join the DHT).
    const hosts: Record<string, string> = {
      p1: 'public',
      ca: 'cone',
      sa: 'symmetric',
      da: 'double-nat',
      ds: 'double-nat, symmetric carrier',
      ua: 'udp-blocked',
    };
    const theirs = (verdict: string) =>
      /Endpoint Independent Mapping/i.test(verdict)
        ? 'endpoint-independent'
        : /Address( and Port)? Dependent Mapping/i.test(verdict)
          ? 'address-dependent'
          : 'no answer';
    // Our types by mapping behaviour: none (no NAT: its own address for everyone) and cone keep
    // one mapping for every destination; symmetric does not.
    const behaviour: Record<string, string> = {
      none: 'endpoint-independent',
      cone: 'endpoint-independent',
      symmetric: 'address-dependent',
    };
    const ours = async (host: string): Promise<string> => {
      if (host === 'p1') return String((await (publics[1] as LabNode).next('nat', (e) => e.type !== 'unknown', 45_000)).type);
      const n = await LabNode.spawn(lab, host, work.dir, labIni({ seed }), ['start']);
      nodes.push(n);
      if (host === 'ua') {
        const retry = await n.next('retrying', () => true, 20_000);
        return (retry.error as { code?: string } | undefined)?.code === 'DPC_DHT_BOOTSTRAP' ? 'no answer' : JSON.stringify(retry);
      }
      // a verdict from at least three distinct peers
      const e = await n.next('nat', (x) => x.type !== 'unknown' && String(x.evidence).split(', ').length >= 3, 60_000);
      return String(e.type);
    };
    const measured = await Promise.all(Object.keys(hosts).map(ours));
    const stun = await startStunServer(lab, 'stun');
    const server = lab.hosts.stun!.ipv4[0] as string;
    const verdicts: Record<string, string> = {};
    try {
      for (const host of Object.keys(hosts)) verdicts[host] = natDiscoveryVerdict(await natDiscovery(lab, host, server, '-m'));
    } finally {
      stun.kill('SIGTERM');
    }
    const table = (f: (host: string, i: number) => string) =>
      Object.fromEntries(Object.keys(hosts).map((h, i) => [`${h} (${hosts[h]})`, f(h, i)]));
    // Both tables side by side in the failure message, with coturn's own words.
    const detail = JSON.stringify({ ours: table((_, i) => measured[i] as string), coturn: verdicts }, null, 1);
    expect(
      table((_, i) => behaviour[measured[i] as string] ?? (measured[i] as string)),
      detail,
    ).toEqual(table((h) => theirs(verdicts[h] as string)));
    // and what each side says is what the router kind is meant to do
    expect(
      table((_, i) => measured[i] as string),
      detail,
    ).toEqual({
      'p1 (public)': 'none',
      'ca (cone)': 'cone',
      'sa (symmetric)': 'symmetric',
      'da (double-nat)': 'cone',
      'ds (double-nat, symmetric carrier)': 'symmetric',
      'ua (udp-blocked)': 'no answer',
    });
  });

  it('cone ↔ cone: connected on tier 4, and a capture at the router never shows the plaintext', async () => {
    const cb = await start('cb', PUNCH_ONLY);
    await natPublished(cb, (e) => e.type === 'cone');
    const marker = `MARKER-${randomBytes(6).toString('hex')}`;
    const capture = lab.spawn('conea', PYTHON, [CAPTURE, marker, '40'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    capture.stdout?.on('data', (d) => {
      out += d;
    });
    await expect.poll(() => out.includes('"ready"'), { timeout: 10_000 }).toBe(true);
    const r = await labSend(lab, 'ca', work.dir, labIni({ seed, extra: PUNCH_ONLY }), cb.nodeId, `secret ${marker} text`);
    expect(r.result, `${JSON.stringify(r.result)}\n${r.stderr.slice(-3000)}`).toMatchObject({ event: 'delivered', tier: 'udp_hole_punch' });
    expect(await cb.next('message', (e) => String(e.text).includes(marker))).toMatchObject({ tier: 'udp_hole_punch' });
    capture.kill('SIGTERM');
    await once(capture, 'exit');
    const summary = jsonLines<{ frames?: number; udp?: number; hits?: number }>(out).find((l) => l.frames !== undefined);
    expect(summary, `capture output: ${out}`).toBeDefined();
    // The punched stream crossed this router, and the marker never appeared in any frame.
    expect(summary?.udp).toBeGreaterThan(0);
    expect(summary?.hits).toBe(0);
  });

  it('cone ↔ cone over lossy, delayed links (100 ms RTT, 1 % loss per link): the message is delivered on tier 4', async () => {
    const lb = await start('lb', PUNCH_ONLY);
    await natPublished(lb, (e) => e.type === 'cone');
    const r = await labSend(lab, 'la', work.dir, labIni({ seed, extra: PUNCH_ONLY }), lb.nodeId, 'over a lossy path');
    expect(r.result, `exit ${r.code} after ${r.elapsedMs} ms: ${JSON.stringify(r.result)}\n${r.stderr.slice(-3000)}`).toMatchObject({
      event: 'delivered',
      tier: 'udp_hole_punch',
    });
    expect(await lb.next('message', (e) => e.text === 'over a lossy path')).toMatchObject({ tier: 'udp_hole_punch' });
  });

  it('cone ↔ cone, both users sending to each other at the same moment: the crossed punches give one tier-4 path, both messages delivered', async () => {
    // The running nodes send (dpc-node send through their local API), so both connect at once.
    const withApi = `${PUNCH_ONLY}\n[api]\nenabled = true`;
    const ca = await start('ca', withApi);
    const cb = await start('cb', withApi);
    await Promise.all([natPublished(ca, (e) => e.type === 'cone'), natPublished(cb, (e) => e.type === 'cone')]);
    const send = async (from: LabNode, to: LabNode, text: string) => {
      const r = await lab.exec(
        from.host,
        process.execPath,
        [
          DPC_NODE,
          'send',
          '--json',
          '--config',
          join(work.dir, `${from.host}-start.ini`),
          '--data-dir',
          join(work.dir, `${from.host}-start`),
          '--to',
          to.nodeId,
          text,
        ],
        { timeoutMs: 90_000 },
      );
      const last = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('{') && !l.startsWith('{"event":"progress"'))
        .at(-1);
      return {
        result: last ? (JSON.parse(last) as Record<string, unknown>) : undefined,
        out: `${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`,
      };
    };
    const [ab, ba] = await Promise.all([send(ca, cb, 'crossed a→b'), send(cb, ca, 'crossed b→a')]);
    expect(ab.result, ab.out).toMatchObject({ event: 'delivered', tier: 'udp_hole_punch' });
    expect(ba.result, ba.out).toMatchObject({ event: 'delivered', tier: 'udp_hole_punch' });
    expect(await cb.next('message', (e) => e.text === 'crossed a→b')).toMatchObject({ tier: 'udp_hole_punch' });
    expect(await ca.next('message', (e) => e.text === 'crossed b→a')).toMatchObject({ tier: 'udp_hole_punch' });
  });

  it('double NAT (cone behind cone) ↔ cone: measured as cone and connected on tier 4', async () => {
    const da = await start('da', PUNCH_ONLY);
    const nat = await natPublished(da, (e) => e.type !== 'unknown' && String(e.evidence).split(', ').length >= 3);
    expect(nat).toMatchObject({ type: 'cone' });
    const r = await labSend(lab, 'ca', work.dir, labIni({ seed, extra: PUNCH_ONLY }), da.nodeId, 'through two NATs');
    expect(r.result, `${JSON.stringify(r.result)}\n${r.stderr.slice(-3000)}`).toMatchObject({ event: 'delivered', tier: 'udp_hole_punch' });
    expect(await da.next('message', (e) => e.text === 'through two NATs')).toMatchObject({ tier: 'udp_hole_punch' });
  });

  it('cone ↔ symmetric and symmetric ↔ cone (birthday punch): connected on tier 4', async () => {
    const extra = `${PUNCH_ONLY}\nhole_punch_timeout = 45\ntotal_timeout = 60`;
    const measured = (type: string) => (e: Record<string, unknown>) => e.type === type && String(e.evidence).split(', ').length >= 3;
    const sb = await start('sb', extra);
    await natPublished(sb, measured('symmetric'));
    const r = await labSend(lab, 'ca', work.dir, labIni({ seed, extra }), sb.nodeId, 'cone to symmetric');
    expect(r.result, `${JSON.stringify(r.result)}\n${r.stderr.slice(-3000)}`).toMatchObject({ event: 'delivered', tier: 'udp_hole_punch' });
    expect(await sb.next('message', (e) => e.text === 'cone to symmetric')).toMatchObject({ tier: 'udp_hole_punch' });
    const cb = await start('cb', extra);
    await natPublished(cb, measured('cone'));
    const r2 = await labSend(lab, 'sa', work.dir, labIni({ seed, extra }), cb.nodeId, 'symmetric to cone');
    expect(r2.result, r2.stderr.slice(-3000)).toMatchObject({ event: 'delivered', tier: 'udp_hole_punch' });
    expect(await cb.next('message', (e) => e.text === 'symmetric to cone')).toMatchObject({ tier: 'udp_hole_punch' });
  });

  it('cone ↔ symmetric and symmetric ↔ cone (birthday) over lossy, delayed links (100 ms RTT, 1 % loss per link): connected on tier 4', async () => {
    const extra = `${PUNCH_ONLY}\nhole_punch_timeout = 45\ntotal_timeout = 60`;
    const measured = (type: string) => (e: Record<string, unknown>) => e.type === type && String(e.evidence).split(', ').length >= 3;
    const ls = await start('ls', extra);
    await natPublished(ls, measured('symmetric'));
    const r = await labSend(lab, 'la', work.dir, labIni({ seed, extra }), ls.nodeId, 'lossy cone to symmetric');
    expect(r.result, `${JSON.stringify(r.result)}\n${r.stderr.slice(-3000)}\nresponder: ${ls.stderr.slice(-3000)}`).toMatchObject({
      event: 'delivered',
      tier: 'udp_hole_punch',
    });
    expect(await ls.next('message', (e) => e.text === 'lossy cone to symmetric')).toMatchObject({ tier: 'udp_hole_punch' });
    // The send below runs on ls's host (its own DHT port): stop the responder there first.
    ls.kill('SIGKILL');
    if (ls.child.exitCode === null) await once(ls.child, 'exit');
    const la = await start('la', extra);
    await natPublished(la, measured('cone'));
    const r2 = await labSend(lab, 'ls', work.dir, labIni({ seed, extra }), la.nodeId, 'lossy symmetric to cone');
    expect(r2.result, `${JSON.stringify(r2.result)}\n${r2.stderr.slice(-3000)}\nresponder: ${la.stderr.slice(-3000)}`).toMatchObject({
      event: 'delivered',
      tier: 'udp_hole_punch',
    });
    expect(await la.next('message', (e) => e.text === 'lossy symmetric to cone')).toMatchObject({ tier: 'udp_hole_punch' });
  });

  it('double NAT (cone behind cone) ↔ cone over a lossy, delayed uplink (50 ms RTT, 1 % loss): measured as cone, connected on tier 4', async () => {
    const ld = await start('ld', PUNCH_ONLY);
    const nat = await natPublished(ld, (e) => e.type !== 'unknown' && String(e.evidence).split(', ').length >= 3);
    expect(nat).toMatchObject({ type: 'cone' });
    const r = await labSend(lab, 'ca', work.dir, labIni({ seed, extra: PUNCH_ONLY }), ld.nodeId, 'through two NATs, lossy');
    expect(r.result, `${JSON.stringify(r.result)}\n${r.stderr.slice(-3000)}\nresponder: ${ld.stderr.slice(-3000)}`).toMatchObject({
      event: 'delivered',
      tier: 'udp_hole_punch',
    });
    expect(await ld.next('message', (e) => e.text === 'through two NATs, lossy')).toMatchObject({ tier: 'udp_hole_punch' });
  });

  it('symmetric ↔ symmetric: tier 4 is not applicable at once (sequential mode), the relay carries the message', async () => {
    const relay = await start('r1', '[relay]\nvolunteer = true\nregion = lab\nport = 9100');
    await relay.logged(/volunteering as a relay/);
    const extra = '[relay]\nreserve = always\nport = 9100\n[connection]\nmode = sequential\nhole_punch_timeout = 60\nenable_gossip = false';
    const sb = await start('sb', extra);
    await natPublished(sb, (e) => e.type === 'symmetric');
    await sb.logged(/relay reservations/);
    const r = await labSend(lab, 'sa', work.dir, labIni({ seed, extra }), sb.nodeId, 'sym to sym');
    expect(r.result, r.stderr.slice(-3000)).toMatchObject({ event: 'delivered', tier: 'volunteer_relay' });
    // Sequential: tier 4 ran before tier 5; had it tried to punch, it would have waited its 60 s deadline.
    expect(Number(r.result?.connect_ms)).toBeLessThan(30_000);
  });

  it('symmetric ↔ symmetric over a lossy, delayed uplink (50 ms RTT, 1 % loss): tier 4 not applicable at once, the relay carries the message', async () => {
    const relay = await start('r1', '[relay]\nvolunteer = true\nregion = lab\nport = 9100');
    await relay.logged(/volunteering as a relay/);
    const extra = '[relay]\nreserve = always\nport = 9100\n[connection]\nmode = sequential\nhole_punch_timeout = 60\nenable_gossip = false';
    const ls = await start('ls', extra);
    await natPublished(ls, (e) => e.type === 'symmetric');
    await ls.logged(/relay reservations/, 60_000);
    const r = await labSend(lab, 'sa', work.dir, labIni({ seed, extra }), ls.nodeId, 'sym to lossy sym');
    expect(r.result, `${JSON.stringify(r.result)}\n${r.stderr.slice(-3000)}`).toMatchObject({
      event: 'delivered',
      tier: 'volunteer_relay',
    });
    const punch = (r.result?.tiers as Array<Record<string, unknown>> | undefined)?.find((t) => t.tier === 'udp_hole_punch');
    if (punch) expect(punch).toMatchObject({ result: 'skipped', reason: 'not applicable' });
    // Sequential: tier 4 ran before tier 5; had it tried to punch, it would have waited its 60 s deadline.
    expect(Number(r.result?.connect_ms)).toBeLessThan(30_000);
    expect(await ls.next('message', (e) => e.text === 'sym to lossy sym')).toMatchObject({ tier: 'volunteer_relay' });
  });

  it('UDP blocked, plain and over a lossy, delayed uplink (50 ms RTT, 1 % loss): the node says at once that no seed answers and keeps retrying; a send from there fails fast with DPC_DHT_BOOTSTRAP', async () => {
    // The DHT is UDP, so with every UDP packet dropped the node cannot join it: no endpoint record,
    // no relay offers and no tier 4 (which would otherwise report NAT type `blocked`). What a user
    // relies on: it says so within [dht] bootstrap_timeout instead of hanging, keeps trying, and a
    // send fails with a typed error rather than waiting for a path that cannot exist.
    const cb = await start('cb', PUNCH_ONLY);
    const blocked = async (host: string) => {
      const n = await LabNode.spawn(lab, host, work.dir, labIni({ seed }), ['start']);
      nodes.push(n);
      const retry = await n.next('retrying', () => true, 20_000);
      expect(retry).toMatchObject({ reason: 'seeds-unreachable', seeds: [seed], error: { code: 'DPC_DHT_BOOTSTRAP' } });
      expect(n.child.exitCode).toBeNull();
      expect(n.events.some((e) => e.event === 'listening')).toBe(false);
      // Its own ports: the node started above on this host may hold 9000 and 8889 by now.
      const ini = labIni({ seed, listenPort: 9001, extra: '[dht]\nport = 8890' });
      const r = await labSend(lab, host, work.dir, ini, cb.nodeId, `through a UDP-blocked router (${host})`);
      expect(r.code, r.stderr.slice(-3000)).not.toBe(0);
      expect(r.result, `${JSON.stringify(r.result)}\n${r.stderr.slice(-3000)}`).toMatchObject({
        event: 'failed',
        error: { code: 'DPC_DHT_BOOTSTRAP' },
      });
      // Not a hang: the send gave up after its bootstrap_timeout (5 s), far inside its 90 s limit.
      expect(r.elapsedMs).toBeLessThan(60_000);
    };
    await Promise.all([blocked('ua'), blocked('lu')]);
    expect(cb.events.some((e) => e.event === 'message')).toBe(false);
  });

  it('leaves no namespace behind', async () => {
    for (const n of [...nodes.splice(0), ...publics.splice(0)]) n.kill('SIGKILL');
    const id = lab.id;
    await lab.destroy();
    expect(leftoverNamespaces(id)).toEqual([]);
  });
});
