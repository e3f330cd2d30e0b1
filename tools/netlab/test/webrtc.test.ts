// Tier 3 in the lab: werift peers (through @dpc/webrtc-hub) behind real NAT routers, signalled
// through a WebSocket relay on the lab "internet", with a real coturn (use-auth-secret, TURN
// REST credentials) as STUN and TURN server. Cone ↔ cone: server-reflexive candidates;
// symmetric ↔ symmetric: a TURN relay candidate; UDP blocked: TURN over TCP.
import type { ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { generateIdentity, type Identity } from '@dpc/core';
import { createLab, type Lab, LabNode, labIni, labSend, startCoturn, type Topology, workdir } from '@dpc/netlab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, labAvailability, leftoverNamespaces } from './support.js';

const canRunLab = labAvailability(['ip', 'nft', 'conntrack', 'turnserver']);
const FIXTURE = fileURLToPath(new URL('./rtc-fixture.mjs', import.meta.url));
const SECRET = 'dpc-lab-turn-secret';

const TOPOLOGY: Topology = {
  publicHosts: [
    { name: 'hub', ipv6: false },
    { name: 'turn', ipv6: false },
  ],
  routers: [
    { name: 'conea', kind: 'cone', lan: [{ name: 'ca' }] },
    { name: 'coneb', kind: 'cone', lan: [{ name: 'cb' }] },
    { name: 'syma', kind: 'symmetric', lan: [{ name: 'sa' }] },
    { name: 'symb', kind: 'symmetric', lan: [{ name: 'sb' }] },
    { name: 'udpa', kind: 'udp-blocked', lan: [{ name: 'ua' }] },
    { name: 'udpb', kind: 'udp-blocked', lan: [{ name: 'ub' }] },
  ],
};

/** coturn's REST credentials (`use-auth-secret`): `<expiry>:<name>`, base64 HMAC-SHA1. */
function turnCredentials(name: string, secret = SECRET): { username: string; credential: string } {
  const username = `${Math.floor(Date.now() / 1000) + 3600}:${name}`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') };
}

function lines(child: ChildProcess): {
  events: Array<Record<string, unknown>>;
  wait(event: string, ms?: number): Promise<Record<string, unknown>>;
} {
  const events: Array<Record<string, unknown>> = [];
  let buf = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    events.push(...jsonLines(parts.join('\n')));
  });
  return {
    events,
    async wait(event, ms = 20_000) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const e = events.find((x) => x.event === event);
        if (e) return e;
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`no '${event}' from the fixture: ${JSON.stringify(events)} ${err}`);
    },
  };
}

describe.skipIf(!canRunLab)('tier 3 over real NAT with a real coturn (werift peers, WebSocket signalling)', () => {
  let lab: Lab;
  let relayUrl: string;
  let turnIp: string;
  const procs: ChildProcess[] = [];

  beforeAll(async () => {
    lab = await createLab(TOPOLOGY);
    const hubIp = lab.hosts.hub?.ipv4[0] as string;
    turnIp = lab.hosts.turn?.ipv4[0] as string;
    const relay = lab.spawn('hub', process.execPath, [FIXTURE, 'relay', hubIp, '8886'], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(relay);
    await lines(relay).wait('listening');
    relayUrl = `ws://${hubIp}:8886`;
    procs.push((await startCoturn(lab, 'turn', { authSecret: SECRET })).process);
  });
  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    const id = lab?.id;
    await lab?.destroy();
    if (id) expect(leftoverNamespaces(id)).toEqual([]);
  });

  async function pair(callerHost: string, answerHost: string, ice: (who: Identity) => unknown[], stepMs?: number) {
    const a = generateIdentity();
    const b = generateIdentity();
    const answerer = lab.spawn(answerHost, process.execPath, [FIXTURE, 'answer', relayUrl, JSON.stringify(ice(b))], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DPC_IDENTITY_PEM: b.privateKeyPem },
    });
    procs.push(answerer);
    const ans = lines(answerer);
    await ans.wait('ready');
    const r = await lab.exec(
      callerHost,
      process.execPath,
      [FIXTURE, 'call', relayUrl, JSON.stringify(ice(a)), b.nodeId, ...(stepMs ? [String(stepMs)] : [])],
      {
        timeoutMs: 60_000,
        env: { DPC_IDENTITY_PEM: a.privateKeyPem },
      },
    );
    answerer.kill('SIGKILL');
    const result = jsonLines(r.stdout).find((e) => e.event === 'connected' || e.event === 'failed');
    console.info(`tier 3 ${callerHost} → ${answerHost}: ${JSON.stringify(result)}`);
    return { result, stderr: r.stderr, answered: ans.events, a, b };
  }

  it('both peers behind cone NAT: connected over server-reflexive candidates (STUN from coturn), no relay', async () => {
    const r = await pair('ca', 'cb', () => [{ urls: `stun:${turnIp}:3478` }]);
    expect(r.result, r.stderr.slice(-3000)).toMatchObject({
      event: 'connected',
      remote: r.b.nodeId,
      reply: { echo: { text: 'hello over tier 3' } },
    });
    const p = r.result?.pair as { local: string; remote: string };
    expect(['srflx', 'prflx']).toContain(p.remote);
    expect(p.local).not.toBe('relay');
    expect(p.remote).not.toBe('relay');
  });

  it('both peers behind symmetric NAT: STUN candidates fail, a TURN relay candidate is selected', async () => {
    const r = await pair('sa', 'sb', (who) => [
      { urls: `stun:${turnIp}:3478` },
      { urls: `turn:${turnIp}:3478`, ...turnCredentials(who.nodeId) },
    ]);
    expect(r.result, r.stderr.slice(-3000)).toMatchObject({
      event: 'connected',
      remote: r.b.nodeId,
      reply: { echo: { text: 'hello over tier 3' } },
    });
    const p = r.result?.pair as { local: string; remote: string };
    expect([p.local, p.remote]).toContain('relay');
  });

  it('UDP blocked on both sides: TURN over TCP carries the session', async () => {
    const r = await pair('ua', 'ub', (who) => [{ urls: `turn:${turnIp}:3478?transport=tcp`, ...turnCredentials(who.nodeId) }]);
    expect(r.result, r.stderr.slice(-3000)).toMatchObject({
      event: 'connected',
      remote: r.b.nodeId,
      reply: { echo: { text: 'hello over tier 3' } },
    });
    const p = r.result?.pair as { local: string; remote: string };
    expect(p.local).toBe('relay');
  });

  it('wrong TURN credentials: werift stalls gathering, the step deadline ends the attempt, and the retry without TURN connects over STUN', async () => {
    const bad = (who: Identity) => [
      { urls: `stun:${turnIp}:3478` },
      { urls: `turn:${turnIp}:3478`, ...turnCredentials(who.nodeId, 'not-the-secret') },
    ];
    // A step deadline that ICE + DTLS meet on a loaded 2-core CI machine (3 s did not, once; 5 s
    // did not in a CI run with the whole suite, stop 10).
    const step = 10_000;
    const r = await pair('ca', 'cb', bad, step);
    expect(r.result, r.stderr.slice(-3000)).toMatchObject({
      event: 'connected',
      remote: r.b.nodeId,
      reply: { echo: { text: 'hello over tier 3' } },
    });
    const p = r.result?.pair as { local: string; remote: string };
    expect([p.local, p.remote]).not.toContain('relay');
    // werift 0.24 does not return from setLocalDescription while the TURN allocation is refused:
    // the first attempt ends at the gather deadline, the second leaves TURN out.
    expect(r.result?.ms as number).toBeGreaterThan(step);
    expect(r.result?.ms as number).toBeLessThan(2 * step + 5000);
  });

  describe('through dpc-node processes: a node serving the Hub ([hub] serve, turn_secret), nodes with [hub] url', () => {
    let work: Awaited<ReturnType<typeof workdir>>;
    let hubUrl: string;
    let seed: string;
    const nodes: LabNode[] = [];
    beforeAll(async () => {
      work = await workdir();
      const hubIp = lab.hosts.hub?.ipv4[0] as string;
      hubUrl = `ws://${hubIp}:8890`;
      const hubIni = `[hub]\nserve = true\nport = 8890\nurl = ${hubUrl}\nturn_secret = ${SECRET}\nturn_servers = turn:${turnIp}:3478\n[webrtc]\nstun_servers = stun:${turnIp}:3478`;
      nodes.push(await LabNode.start(lab, 'hub', work.dir, labIni({ extra: hubIni })));
      seed = `${hubIp}:8889`;
    });
    afterAll(async () => {
      for (const n of nodes) n.kill('SIGKILL');
      await work?.cleanup();
    });
    // STUN from coturn; TURN only as the Hub hands it out (REST credentials from [hub] turn_secret).
    const peerIni = () =>
      labIni({
        seed,
        extra: `[hub]\nurl = ${hubUrl}\n[webrtc]\nstun_servers = stun:${turnIp}:3478\n[connection]\nwebrtc_timeout = 20\ntotal_timeout = 45`,
      });

    async function sendVia(from: string, to: string, text: string) {
      const target = await LabNode.start(lab, to, work.dir, peerIni());
      nodes.push(target);
      await target.next('webrtc', (e) => e.kind === 'hub-up');
      await new Promise((r) => setTimeout(r, 1500)); // the endpoint record with `hub` is re-announced
      const r = await labSend(lab, from, work.dir, peerIni(), target.nodeId, text);
      console.info(`dpc-node ${from} → ${to}: ${JSON.stringify(r.result)} in ${r.elapsedMs} ms`);
      expect(r.result, r.stderr.slice(-3000)).toMatchObject({ event: 'delivered', tier: 'hub_webrtc' });
      expect(await target.next('message', (e) => e.text === text)).toMatchObject({ tier: 'hub_webrtc' });
      const session = await target.next('webrtc', (e) => e.kind === 'session');
      console.info(`dpc-node ${to} accepted: ${JSON.stringify(session)}`);
      return session;
    }

    it('cone ↔ cone: dpc-node send reaches the peer over tier 3 without a relay', async () => {
      const s = await sendVia('ca', 'cb', 'hello through the Hub, cone');
      expect([s.local, s.remote]).not.toContain('relay');
    });

    it('symmetric ↔ symmetric: tier 3 over coturn with the Hub-issued TURN credentials (a relay candidate)', async () => {
      const s = await sendVia('sa', 'sb', 'hello through the Hub, symmetric');
      expect([s.local, s.remote]).toContain('relay');
    });
  });
});
