import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TIERS, type TierName } from '@dpc/core';
import { describe, expect, it } from 'vitest';
import { verdict } from '../src/doctor.js';
import { BIN, baseIni, bootstrapNode, config, run, sendCli, startNode } from './harness.js';

/** A UDP port on ::1 that nobody answers on (bound, then closed). */
async function deadUdpPort(host: string): Promise<number> {
  const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.bind(0, host);
  await once(s, 'listening');
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('dpc-node as a person meets it', () => {
  it('prints IPv6 endpoints in brackets ([::1]:port), in text and in --json', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dpc-ux-'));
    const port = await deadUdpPort('::1');
    const file = await config(dir, baseIni(`[::1]:${port}`).replace('bootstrap_timeout = 5', 'bootstrap_timeout = 1'));
    const r = await run(['start', '--no-retry', '--config', file, '--data-dir', dir, '--allow-loopback'], 30_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`(seeds: [::1]:${port})`);
    expect(r.stderr).not.toMatch(/[^[]::1:\d/);
    const j = await run(['start', '--no-retry', '--json', '--config', file, '--data-dir', dir, '--allow-loopback'], 30_000);
    const last = JSON.parse(j.stdout.trim().split('\n').pop() as string);
    expect(last).toMatchObject({ event: 'error', error: { code: 'DPC_DHT_BOOTSTRAP' } });
    expect(last.error.message).toContain(`[::1]:${port}`);
  });
});

describe('dpc-node doctor', () => {
  it('counts the configured seeds that answer, learns the external address, publishes nothing, ends with a verdict', async () => {
    const { root, seed } = await bootstrapNode();
    const dead = await deadUdpPort('127.0.0.1');
    const ini = await config(root, baseIni(`${seed}, 127.0.0.1:${dead}`).replace('bootstrap_timeout = 5', 'bootstrap_timeout = 2'));
    const dir = join(root, 'doc');
    const r = await run(['doctor', '--config', ini, '--data-dir', dir, '--allow-loopback', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { checks: Array<{ name: string; value: string; ok: boolean | null }>; verdict: string };
    const check = (name: string) => out.checks.find((c) => c.name === name);
    expect(check('DHT')).toMatchObject({ ok: true, value: expect.stringContaining('1 of 2 seed(s) answer') });
    expect(check('DHT')?.value).toContain(`silent: 127.0.0.1:${dead}`);
    expect(check('external IPv4')).toMatchObject({ ok: true, value: expect.stringMatching(/^127\.0\.0\.1 \(seen by \d DHT node/) });
    expect(out.checks.some((c) => /unknown/.test(c.value))).toBe(false);
    expect(out.verdict).toMatch(/^reachable directly on 127\.0\.0\.1:0 \(no NAT\)/);
    const doctorId = check('node id')?.value as string;
    // No side effect: nothing announced (the id is not in the DHT) and no contacts saved.
    const sent = await run([
      'send',
      '--config',
      await config(join(root), baseIni(seed)),
      '--data-dir',
      join(root, 'alice'),
      '--allow-loopback',
      '--json',
      '--to',
      doctorId,
      'anyone?',
    ]);
    expect(JSON.parse(sent.stdout.trim().split('\n').pop() as string)).toMatchObject({ error: { code: 'DPC_PEER_LOOKUP_FAILED' } });
    await expect(readFile(join(dir, 'dht-contacts.json'))).rejects.toMatchObject({ code: 'ENOENT' });
    const text = await run(['doctor', '--config', ini, '--data-dir', dir, '--allow-loopback']);
    expect(text.stdout.trim().split('\n').pop()).toMatch(/^reachable directly on 127\.0\.0\.1:0/);
  });

  it('says offline when no seed answers, and exits 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dpc-ux-'));
    const dead = await deadUdpPort('127.0.0.1');
    const ini = await config(dir, baseIni(`127.0.0.1:${dead}`).replace('bootstrap_timeout = 5', 'bootstrap_timeout = 1'));
    const r = await run(['doctor', '--config', ini, '--data-dir', dir, '--allow-loopback', '--json']);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as { checks: Array<{ name: string; value: string; ok: boolean | null }>; verdict: string };
    expect(out.checks.find((c) => c.name === 'DHT')).toMatchObject({
      ok: false,
      value: expect.stringContaining('none of 1 seed(s) answered'),
    });
    expect(out.checks.find((c) => c.name === 'external IPv4')).toBeUndefined();
    expect(out.verdict).toMatch(/^offline: none of the 1 configured seed/);
  });

  it('the verdict names the NAT: symmetric, endpoint-independent with and without tier 4, IPv6, external_address', () => {
    const base = {
      seedsConfigured: 1,
      seedsAnswering: 1,
      globalIPv6: [] as string[],
      listenPort: 8888,
      installed: new Set<TierName>(['ipv6_direct', 'ipv4_direct', 'volunteer_relay']),
      enabled: new Set<TierName>(TIERS),
      relaysFound: 2,
    };
    const nat = (mappingVaries: boolean, samples = 3) => ({ ip: '198.51.100.7', local: false, samples, mappingVaries });
    expect(verdict({ ...base, external: nat(true) })).toBe(
      'behind a symmetric NAT (198.51.100.7): peers will use relays (2 relay(s) found)',
    );
    expect(verdict({ ...base, external: nat(false) })).toMatch(
      /keeps one mapping .*@dpc\/holepunch is not installed; peers will use relays/,
    );
    expect(verdict({ ...base, installed: new Set<TierName>([...base.installed, 'udp_hole_punch']), external: nat(false) })).toMatch(
      /peers will punch through it \(tier 4\), else use relays/,
    );
    expect(verdict({ ...base, external: nat(false, 1) })).toMatch(/only one DHT node answered/);
    expect(verdict({ ...base, external: { ip: '203.0.113.9', local: true, samples: 3, mappingVaries: false } })).toBe(
      'reachable directly on 203.0.113.9:8888 (no NAT)',
    );
    expect(verdict({ ...base, globalIPv6: ['2001:db8::5'], external: nat(true) })).toMatch(
      /^reachable directly on IPv6 \[2001:db8::5\]:8888/,
    );
    expect(verdict({ ...base, configuredExternal: '198.51.100.7:9000' })).toMatch(/^reachable directly on 198\.51\.100\.7:9000/);
    expect(verdict({ ...base, seedsConfigured: 0, seedsAnswering: 0 })).toMatch(/bootstrap node/);
  });
});

describe('dpc-node start events', () => {
  it('the receiver emits connected (inbound), and a sender that exits normally is disconnected, not path-lost', async () => {
    const { root, seed } = await bootstrapNode();
    const ini = await config(root, baseIni(seed));
    const bob = startNode(['--config', ini, '--data-dir', join(root, 'bob')]);
    const bobId = String((await bob.next('listening')).nodeId);
    const sent = await sendCli(ini, join(root, 'alice'), bobId, 'hi bob');
    expect(sent.code, sent.stderr).toBe(0);
    const aliceId = String((await bob.next('message')).from);
    expect(bob.events.find((e) => e.event === 'connected')).toMatchObject({ peerId: aliceId, tier: 'ipv4_direct', inbound: true });
    expect(await bob.next('disconnected')).toMatchObject({ peerId: aliceId, tier: 'ipv4_direct' });
    expect(bob.events.some((e) => e.event === 'path-lost')).toBe(false);
  });

  it('send says what it is waiting for: progress events with --json, lines on stderr otherwise', async () => {
    const { root, seed } = await bootstrapNode();
    const ini = await config(root, baseIni(seed));
    const bob = startNode(['--config', ini, '--data-dir', join(root, 'bob')]);
    const bobId = String((await bob.next('listening')).nodeId);
    const sent = await sendCli(ini, join(root, 'alice'), bobId, 'with progress');
    expect(sent.code, sent.stderr).toBe(0);
    const events = sent.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const steps = events.filter((e) => e.event === 'progress').map((e) => e.step);
    expect(steps.slice(0, 3)).toEqual(['joining', 'lookup', 'found']);
    expect(events).toContainEqual(expect.objectContaining({ event: 'progress', step: 'trying', tier: 'ipv4_direct' }));
    expect(events).toContainEqual(
      expect.objectContaining({ event: 'progress', step: 'outcome', tier: 'ipv4_direct', result: 'connected' }),
    );
    expect(steps.at(-1)).toBe('waiting');
    expect(events.at(-1)).toMatchObject({ event: 'delivered', tier: 'ipv4_direct' });
    const text = await run(['send', '--config', ini, '--data-dir', join(root, 'carol'), '--allow-loopback', '--to', bobId, 'hi']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr).toContain(`… looking up ${bobId} in the DHT`);
    expect(text.stderr).toContain('… trying ipv4_direct');
    expect(text.stderr).toContain(`waiting for ${bobId} to acknowledge`);
    expect(text.stdout).toMatch(/^delivered to /);
  });

  it('a slow start says on a terminal that it is still joining', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dpc-ux-'));
    const dead = await deadUdpPort('127.0.0.1');
    const ini = await config(dir, baseIni(`127.0.0.1:${dead}`).replace('bootstrap_timeout = 5', 'bootstrap_timeout = 4'));
    // script(1) gives the node a pseudo-terminal, as a person at a shell has.
    const cmd = [process.execPath, BIN, 'start', '--no-retry', '--config', ini, '--data-dir', dir, '--allow-loopback'].join(' ');
    const r = await new Promise<string>((resolve) => {
      execFile('script', ['-qfec', cmd, '/dev/null'], { timeout: 30_000 }, (_err, stdout) => resolve(String(stdout)));
    });
    expect(r).toMatch(/… still starting after 3 s: joining the DHT through 127\.0\.0\.1:\d+/);
    expect(r).toContain('no DHT seed answered within 4000 ms');
  });
});

describe('addresses of a node asked to stay on loopback', () => {
  it('binds the DHT on loopback too, announces only what it listens on, and send without --allow-loopback says why it fails', async () => {
    const { root, seed } = await bootstrapNode();
    // Live tiers only: with tier 6 the message would be queued for deferred delivery (exit 75).
    const ini = await config(root, baseIni(seed, 'enable_gossip = false'));
    const bob = startNode(['--config', ini, '--data-dir', join(root, 'bob')]);
    const ev = await bob.next('listening');
    expect(ev.tcp).toEqual([expect.stringMatching(/^127\.0\.0\.1:\d+$/)]);
    expect(String(ev.dht)).toMatch(/^127\.0\.0\.1:\d+$/);
    const bobId = String(ev.nodeId);
    const r = await run(['send', '--config', ini, '--data-dir', join(root, 'alice'), '--json', '--to', bobId, 'hi'], 60_000);
    expect(r.code).toBe(1);
    const failed = JSON.parse(r.stdout.trim().split('\n').pop() as string);
    expect(failed).toMatchObject({ event: 'failed', error: { code: 'DPC_CONNECT_FAILED' } });
    // What bob announces: his loopback listener only (no 192.0.2.x of eth0, no ::1).
    expect(failed.error.hint).toMatch(new RegExp(`^${bobId} announces only loopback addresses \\(127\\.0\\.0\\.1:\\d+\\)`));
    expect(failed.error.hint).toContain('add --allow-loopback');
    const text = await run(['send', '--config', ini, '--data-dir', join(root, 'alice'), '--to', bobId, 'hi'], 60_000);
    expect(text.stdout).toMatch(/\nhint: .*--allow-loopback/);
  });
});
