import { once } from 'node:events';
import { cp, mkdir, mkdtemp, readFile, realpath, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { baseIni, bootstrapNode, config, run, seedFrom, startNode } from './harness.js';

describe('dpc-node', () => {
  it('id creates the identity once and prints the same node id afterwards', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dpc-cli-'));
    const a = await run(['id', '--data-dir', dir]);
    const b = await run(['id', '--data-dir', dir, '--json']);
    expect(a.code).toBe(0);
    expect(a.stdout.trim()).toMatch(/^dpc-node-[0-9a-f]{32}$/);
    expect(JSON.parse(b.stdout).nodeId).toBe(a.stdout.trim());
    expect((await stat(join(dir, 'identity.key'))).mode & 0o777).toBe(0o600);
  });

  it('--help works on every subcommand', async () => {
    for (const cmd of ['id', 'start', 'send', 'doctor', 'demo']) {
      const r = await run([cmd, '--help']);
      expect(r.code, cmd).toBe(0);
      expect(r.stdout).toContain(`dpc-node ${cmd}`);
    }
  });

  it('a bad or missing config is a clear error naming file, section and key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dpc-cli-'));
    const file = await config(dir, '[connection]\nrelay_timeout = forever\n');
    const r = await run(['start', '--config', file, '--data-dir', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain('[connection] relay_timeout');
    expect(r.stderr).toContain('"forever"');
    const missing = await run(['start', '--config', join(dir, 'nope.ini'), '--data-dir', dir]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no such file');
    const none = await run(['send', '--data-dir', dir, 'hi']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--config FILE is required');
  });

  it('two processes exchange messages through send/start, and start shuts down cleanly on SIGTERM', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-cli-'));
    const dirs = { boot: join(root, 'boot'), bob: join(root, 'bob'), alice: join(root, 'alice') };
    const boot = startNode(['--config', await config(root, baseIni()), '--data-dir', dirs.boot]);
    const bootEv = await boot.next('listening');
    const seed = seedFrom(bootEv.dht);
    const bobIni = join(root, 'bob.ini');
    await writeFile(bobIni, baseIni(seed));
    const bob = startNode(['--config', bobIni, '--data-dir', dirs.bob]);
    const bobEv = await bob.next('listening');
    const aliceIni = join(root, 'alice.ini');
    await writeFile(aliceIni, baseIni(seed));
    const sent = await run([
      'send',
      '--config',
      aliceIni,
      '--data-dir',
      dirs.alice,
      '--allow-loopback',
      '--json',
      '--to',
      String(bobEv.nodeId),
      'hello',
      'bob',
    ]);
    expect(sent.stderr).not.toContain('Error:');
    expect(sent.code).toBe(0);
    const result = JSON.parse(sent.stdout.trim().split('\n').pop() as string);
    expect(result).toMatchObject({ event: 'delivered', to: bobEv.nodeId, tier: 'ipv4_direct' });
    const msg = await bob.next('message');
    expect(msg).toMatchObject({ text: 'hello bob', tier: 'ipv4_direct' });
    expect(String(msg.from)).toMatch(/^dpc-node-/);
    bob.p.kill('SIGTERM');
    const [code] = await once(bob.p, 'exit');
    expect(code).toBe(0);
    expect(bob.events.at(-1)).toMatchObject({ event: 'stopped' });
  });

  it('send exits non-zero: an unknown peer is a lookup failure, an unreachable one lists every tier', async () => {
    const { root, seed } = await bootstrapNode();
    const ini = join(root, 'a.ini');
    // Live tiers only: with tier 6 (gossip) on, an offline peer whose key is known is queued instead (gossip.test.ts).
    await writeFile(ini, baseIni(seed, 'enable_gossip = false'));
    const sendFromA = (to: string, text: string) =>
      run(['send', '--config', ini, '--data-dir', join(root, 'a'), '--allow-loopback', '--json', '--timeout', '15', '--to', to, text]);
    const r = await sendFromA('dpc-node-00000000000000000000000000000000', 'anyone?');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout.trim().split('\n').pop() as string)).toMatchObject({
      event: 'failed',
      error: { code: 'DPC_PEER_LOOKUP_FAILED' },
    });
    // bob announces himself, then goes away: his signed record is still in the DHT
    const bob = startNode(['--config', ini, '--data-dir', join(root, 'bob')]);
    const bobId = String((await bob.next('listening')).nodeId);
    bob.p.kill('SIGTERM');
    await once(bob.p, 'exit');
    const r2 = await sendFromA(bobId, 'hello?');
    expect(r2.code).toBe(1);
    const failed = JSON.parse(r2.stdout.trim().split('\n').pop() as string);
    expect(failed.error.code).toBe('DPC_CONNECT_FAILED');
    expect(failed.error.tiers.map((t: { tier: string }) => t.tier)).toEqual([
      'ipv6_direct',
      'ipv4_direct',
      'hub_webrtc',
      'udp_hole_punch',
      'volunteer_relay',
      'gossip',
    ]);
    expect(failed.error.tiers.find((t: { tier: string }) => t.tier === 'ipv4_direct')).toMatchObject({ result: 'failed' });
  });

  it('a volunteer relay with a private public_ip does not volunteer, says why, and the node runs', async () => {
    const { root, seed } = await bootstrapNode();
    const ini = await config(root, baseIni(seed, '[relay]\nvolunteer = true\nport = 0\npublic_ip = 192.168.1.10'));
    const node = startNode(['--config', ini, '--data-dir', join(root, 'v')]);
    await node.next('listening');
    expect(node.stderr()).toContain('relay offer withheld: no public address to announce');
    expect(node.stderr()).toContain('192.168.1.10 is private');
    expect(node.stderr()).not.toMatch(/volunteering as a relay/); // what the lab waits for
    expect(node.stderr()).toMatch(/tier volunteer_relay ready .*client=true server=false/);
  });

  it('doctor reports what the node can do, as a table or JSON', async () => {
    const { root, seed } = await bootstrapNode();
    const ini = join(root, 'd.ini');
    await writeFile(ini, baseIni(seed));
    const r = await run(['doctor', '--config', ini, '--data-dir', join(root, 'd'), '--allow-loopback', '--json']);
    expect(r.code).toBe(0);
    const checks = JSON.parse(r.stdout).checks as Array<{ name: string; value: string; ok: boolean | null }>;
    expect(checks.find((c) => c.name === 'DHT')).toMatchObject({ ok: true, value: expect.stringContaining('reachable') });
    expect(checks.find((c) => c.name === 'tier 2 ipv4_direct')).toMatchObject({ ok: true });
    // Tier 4 measured the NAT of the DHT socket: on loopback the peer saw our own address.
    expect(checks.find((c) => c.name === 'NAT type')).toMatchObject({
      ok: true,
      value: expect.stringMatching(/^none \(seen as: [\w-]{8}→127\.0\.0\.1:\d+/),
    });
    const text = await run(['doctor', '--config', ini, '--data-dir', join(root, 'd'), '--allow-loopback']);
    expect(text.stdout).toMatch(/✓ DHT\s+reachable/);
  });

  it('the WebSocket API needs the token and answers stats, sessions, send and events', async () => {
    const { root, seed } = await bootstrapNode();
    const ini = (name: string, api: boolean) => {
      const f = join(root, `${name}.ini`);
      return writeFile(
        f,
        baseIni(seed).replace('[api]\nenabled = false', api ? '[api]\nenabled = true\nport = 0' : '[api]\nenabled = false'),
      ).then(() => f);
    };
    const alice = startNode(['--config', await ini('alice', true), '--data-dir', join(root, 'alice')]);
    const bob = startNode(['--config', await ini('bob', false), '--data-dir', join(root, 'bob')]);
    const bobId = String((await bob.next('listening')).nodeId);
    const url = String((await alice.next('api')).url);
    const token = (await readFile(join(root, 'alice', 'api-token'), 'utf8')).trim();
    expect((await stat(join(root, 'alice', 'api-token'))).mode & 0o777).toBe(0o600);

    const denied = new WebSocket(`${url}?token=${'0'.repeat(64)}`);
    const [err] = await once(denied, 'error');
    expect(String((err as Error).message)).toContain('401');

    const ws = new WebSocket(`${url}?token=${token}`);
    await once(ws, 'open');
    const replies = new Map<number, Record<string, unknown>>();
    const evs: Array<Record<string, unknown>> = [];
    ws.on('message', (d) => {
      const m = JSON.parse(String(d));
      if ('event' in m) evs.push(m);
      else replies.set(m.id, m);
    });
    let n = 0;
    const call = async (method: string, params?: Record<string, unknown>) => {
      const id = ++n;
      ws.send(JSON.stringify({ id, method, params }));
      for (let i = 0; i < 300 && !replies.has(id); i++) await new Promise((r) => setTimeout(r, 100));
      return replies.get(id) as Record<string, unknown>;
    };
    expect(await call('subscribe', { events: ['connected', 'message'] })).toMatchObject({
      result: { subscribed: ['connected', 'message'] },
    });
    const stats = (await call('stats')) as { result: { orchestrator: Record<string, unknown>; dht: { routingTableSize: number } } };
    expect(stats.result.orchestrator).toMatchObject({ total_attempts: 0, successful_connections: 0, failed_connections: 0 });
    expect(stats.result.dht.routingTableSize).toBeGreaterThan(0);
    expect(await call('send', { to: bobId, text: 'via the API' })).toMatchObject({ result: { delivered: true, tier: 'ipv4_direct' } });
    expect(await bob.next('message')).toMatchObject({ text: 'via the API' });
    expect(await call('sessions')).toMatchObject({ result: [{ peerId: bobId, tier: 'ipv4_direct', connected: true, unacked: 0 }] });
    expect(evs.some((e) => e.event === 'connected' && (e.data as { peerId: string }).peerId === bobId)).toBe(true);
    expect(await call('nonsense')).toMatchObject({ error: { code: 'DPC_API_UNKNOWN_METHOD' } });
    expect(await call('send', { to: 'not-a-node', text: 'x' })).toMatchObject({ error: { code: 'DPC_API_BAD_REQUEST' } });
    ws.send('{not json');
    await new Promise((r) => setTimeout(r, 200));
    expect(replies.get(null as unknown as number)).toMatchObject({ error: { code: 'DPC_API_BAD_REQUEST' } });
    ws.close();
  });

  it('demo exits 0 after every exchange was delivered', async () => {
    const r = await run(['demo', '--json'], 90_000);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop() as string);
    expect(summary.ok).toBe(true);
    expect(summary.exchanges.length).toBeGreaterThanOrEqual(2);
    expect(summary.exchanges.every((e: { delivered: boolean }) => e.delivered)).toBe(true);
    const tiers = summary.exchanges.map((e: { tier: string }) => e.tier);
    expect(tiers).toContain('ipv4_direct');
    expect(tiers).toContain('volunteer_relay');
  });
});

/**
 * dpc-node installed without @dpc/relay: a copy of the built app in a temp folder whose
 * node_modules holds every dependency except the tier 5 package. Returns the copy's bin.
 */
async function installWithoutRelay(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'dpc-norelay-'));
  const app = new URL('..', import.meta.url).pathname;
  const modules = join(app, '..', '..', 'node_modules');
  await mkdir(join(root, 'node_modules', '@dpc'), { recursive: true });
  for (const dep of [
    '@dpc/core',
    '@dpc/dht',
    '@dpc/direct',
    '@dpc/holepunch',
    '@dpc/orchestrator',
    '@dpc/store',
    '@dpc/webrtc-hub',
    'prom-client',
    'ws',
  ]) {
    await symlink(await realpath(join(modules, dep)), join(root, 'node_modules', dep), 'dir');
  }
  await cp(join(app, 'dist'), join(root, 'app', 'dist'), { recursive: true });
  await cp(join(app, 'package.json'), join(root, 'app', 'package.json'));
  return join(root, 'app', 'dist', 'bin.js');
}

describe('dpc-node without an optional tier package', () => {
  it('runs, says tier 5 is not installed (log, --json event, doctor), and sends over direct', async () => {
    const bin = await installWithoutRelay();
    const { root, seed } = await bootstrapNode();
    const ini = await config(root, baseIni(seed));
    const bob = startNode(['--config', ini, '--data-dir', join(root, 'bob')], { bin });
    expect(await bob.next('tier-not-installed')).toMatchObject({ tier: 'volunteer_relay', package: '@dpc/relay' });
    const bobId = String((await bob.next('listening')).nodeId);
    const sent = await run(
      ['send', '--config', ini, '--data-dir', join(root, 'alice'), '--allow-loopback', '--json', '--to', bobId, 'no relay here'],
      60_000,
      bin,
    );
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stderr).toContain('tier volunteer_relay not installed (@dpc/relay)');
    expect(JSON.parse(sent.stdout.trim().split('\n').pop() as string)).toMatchObject({ event: 'delivered', tier: 'ipv4_direct' });
    expect(await bob.next('message')).toMatchObject({ text: 'no relay here', tier: 'ipv4_direct' });
    const doctor = await run(['doctor', '--config', ini, '--data-dir', join(root, 'd'), '--allow-loopback', '--json'], 60_000, bin);
    expect(doctor.code).toBe(0);
    const checks = JSON.parse(doctor.stdout).checks as Array<{ name: string; value: string; ok: boolean | null }>;
    expect(checks.find((c) => c.name === 'tier 5 volunteer_relay')).toMatchObject({
      ok: false,
      value: expect.stringContaining('not installed (@dpc/relay)'),
    });
    expect(checks.find((c) => c.name === 'tier 2 ipv4_direct')).toMatchObject({ ok: true });
  });
});

describe('dpc-node start failures', () => {
  it('with --no-retry, exits with a clear error (and does not hang) when no seed answers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dpc-cli-'));
    const file = await config(dir, baseIni('127.0.0.1:9').replace('bootstrap_timeout = 5', 'bootstrap_timeout = 1'));
    const r = await run(['start', '--no-retry', '--config', file, '--data-dir', dir, '--allow-loopback'], 30_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no DHT seed answered within 1000 ms (seeds: 127.0.0.1:9) (DPC_DHT_BOOTSTRAP)');
    expect(r.stderr).not.toContain('    at ');
  });
});
