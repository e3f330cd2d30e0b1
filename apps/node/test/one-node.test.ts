import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, bootstrapNode, freePort, procs, run, startNode } from './harness.js';

/** A peer's INI with the WebSocket API on (port 0 unless given). */
const peerIni = (seed: string | undefined, api = 'enabled = true\nport = 0', dhtPort = 0) => `[p2p]
listen_port = 0
listen_host = 127.0.0.1
[dht]
port = ${dhtPort}
${seed ? `seed_nodes = ${seed}` : ''}
bootstrap_timeout = 5
lookup_timeout = 5
[api]
${api}
[connection]
total_timeout = 20
`;

async function ini(dir: string, name: string, body: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, body);
  return file;
}

describe('one node per data directory', () => {
  it('send, status and peers go through the running node, and stop ends it', async () => {
    const { root, seed } = await bootstrapNode();
    const bobDir = join(root, 'bob');
    const bob = startNode(['--config', await ini(root, 'bob.ini', peerIni(seed)), '--data-dir', bobDir]);
    const bobId = String((await bob.next('listening')).nodeId);
    const aliceDir = join(root, 'alice');
    const aliceIni = await ini(root, 'alice.ini', peerIni(seed));
    const alice = startNode(['--config', aliceIni, '--data-dir', aliceDir]);
    const aliceId = String((await alice.next('listening')).nodeId);
    await alice.next('api');
    const info = JSON.parse(await readFile(join(aliceDir, 'node.json'), 'utf8'));
    expect(info).toMatchObject({ pid: alice.p.pid, nodeId: aliceId });
    expect(info.api).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
    expect((await stat(join(aliceDir, 'node.json'))).mode & 0o777).toBe(0o600);

    // The same config and data directory as the running node: no second node, no EADDRINUSE.
    const sent = await run([
      'send',
      '--config',
      aliceIni,
      '--data-dir',
      aliceDir,
      '--allow-loopback',
      '--json',
      '--to',
      bobId,
      'hello',
      'bob',
    ]);
    expect(sent.stderr).not.toContain('EADDRINUSE');
    expect(sent.code, sent.stderr).toBe(0);
    expect(JSON.parse(sent.stdout.trim().split('\n').pop() as string)).toMatchObject({
      event: 'delivered',
      to: bobId,
      via: 'running-node',
    });
    expect(await bob.next('message')).toMatchObject({ from: aliceId, text: 'hello bob' });
    // The running node made the connection (one node id on the network).
    expect(await alice.next('connected')).toMatchObject({ peerId: bobId });

    const status = await run(['status', '--data-dir', aliceDir, '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ event: 'status', running: true, pid: alice.p.pid, nodeId: aliceId, sessions: 1 });
    const peers = await run(['peers', '--data-dir', aliceDir, '--json']);
    expect(peers.code, peers.stderr).toBe(0);
    expect(JSON.parse(peers.stdout.trim())).toMatchObject({ event: 'peer', peerId: bobId, tier: 'ipv4_direct' });

    const twice = await run(['start', '--config', aliceIni, '--data-dir', aliceDir]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain(`already runs on ${aliceDir}`);

    const stopped = await run(['stop', '--data-dir', aliceDir, '--json']);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(JSON.parse(stopped.stdout)).toMatchObject({ event: 'stopped', pid: alice.p.pid, via: 'api' });
    expect(alice.p.exitCode ?? (await once(alice.p, 'exit'))[0]).toBe(0);
    expect(existsSync(join(aliceDir, 'node.json'))).toBe(false);
    const after = await run(['status', '--data-dir', aliceDir, '--json']);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain('no node is running');
  });

  it('a running node with the API disabled is named, with a hint (exit 2); stop falls back to SIGTERM', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-cli-'));
    const dir = join(root, 'a');
    const file = await ini(root, 'a.ini', peerIni(undefined, 'enabled = false'));
    const a = startNode(['--config', file, '--data-dir', dir]);
    await a.next('listening');
    for (let i = 0; i < 50 && !existsSync(join(dir, 'node.json')); i++) await new Promise((r) => setTimeout(r, 50));
    const r = await run(['send', '--config', file, '--data-dir', dir, '--to', `dpc-node-${'ab'.repeat(16)}`, 'hi']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('API disabled');
    expect(r.stderr).toContain('[api] enabled = true');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const s = await run(['stop', '--data-dir', dir, '--json']);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ event: 'stopped', via: 'signal' });
    expect(a.p.exitCode ?? (await once(a.p, 'exit'))[0]).toBe(0);
  });
});

describe('a node you can always stop', () => {
  it('a taken API port fails the start before joining, naming [api] port, without a stack', async () => {
    const blocker = createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const port = (blocker.address() as { port: number }).port;
    try {
      const root = await mkdtemp(join(tmpdir(), 'dpc-cli-'));
      const t0 = Date.now();
      const r = await run(
        [
          'start',
          '--json',
          '--config',
          await ini(root, 'n.ini', peerIni('127.0.0.1:9', `enabled = true\nport = ${port}`)),
          '--data-dir',
          join(root, 'n'),
        ],
        10_000,
      );
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`[api] port = ${port}`);
      expect(r.stderr).toContain('already in use');
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stdout).not.toContain('"listening"');
      expect(JSON.parse(r.stdout.trim().split('\n').pop() as string)).toMatchObject({ event: 'error', error: { code: 'DPC_PORT_IN_USE' } });
    } finally {
      blocker.close();
    }
  });

  it('a taken DHT port is named as [dht] port', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-cli-'));
    const port = await freePort();
    const first = startNode([
      '--config',
      await ini(root, 'a.ini', peerIni(undefined, 'enabled = false', port)),
      '--data-dir',
      join(root, 'a'),
    ]);
    await first.next('listening');
    const r = await run(
      ['start', '--config', await ini(root, 'b.ini', peerIni(undefined, 'enabled = false', port)), '--data-dir', join(root, 'b')],
      10_000,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`[dht] port = ${port}`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('SIGTERM during a join against an unreachable seed ends the process within 2 s', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-cli-'));
    const body = peerIni('127.0.0.1:9', 'enabled = false').replace('bootstrap_timeout = 5', 'bootstrap_timeout = 30');
    const p = spawn(process.execPath, [BIN, 'start', '--json', '--config', await ini(root, 'n.ini', body), '--data-dir', join(root, 'n')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    procs.push(p as never);
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    for (let i = 0; i < 100 && !stderr.includes('joining the DHT'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(stderr).toContain('joining the DHT');
    const t0 = Date.now();
    p.kill('SIGTERM');
    const [code] = await once(p, 'exit');
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(code).toBe(0);
  });
});

describe('the command line', () => {
  it('a malformed --to is refused before joining, showing the expected form; sending to yourself is refused', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-cli-'));
    const file = await ini(root, 'n.ini', peerIni('127.0.0.1:9', 'enabled = false'));
    const t0 = Date.now();
    const bad = await run(['send', '--config', file, '--data-dir', join(root, 'n'), '--to', 'bob', 'hi'], 10_000);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('dpc-node-<32 hex digits>');
    expect(Date.now() - t0).toBeLessThan(3000);
    const id = (await run(['id', '--data-dir', join(root, 'n')])).stdout.trim();
    const self = await run(['send', '--config', file, '--data-dir', join(root, 'n'), '--to', id, 'hi'], 10_000);
    expect(self.code).toBe(2);
    expect(self.stderr).toContain("this node's own id");
  });

  it('--version prints the package version, and the checked-in bin wrapper runs the built CLI', async () => {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    expect(pkg.bin['dpc-node']).toBe('./bin/dpc-node.js');
    const wrapper = new URL('../bin/dpc-node.js', import.meta.url).pathname;
    const v = await run(['--version'], 10_000, wrapper);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toBe(`dpc-node ${pkg.version}`);
    const h = await run(['--help'], 10_000, wrapper);
    expect(h.code).toBe(0);
    for (const cmd of ['status', 'peers', 'stop']) expect(h.stdout).toContain(cmd);
    // npx dpc-node in the repository: the workspace link points at the wrapper.
    const npx = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn('npx', ['--no-install', 'dpc-node', '--version'], { cwd: new URL('..', import.meta.url).pathname });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.on('exit', (code) => resolve({ code, out }));
    });
    expect(npx).toEqual({ code: 0, out: `dpc-node ${pkg.version}\n` });
  });
});

describe('an unreachable seed', () => {
  it('a long-running node keeps retrying the seeds with backoff, says so, and joins once the seed answers', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-cli-'));
    const seedPort = await freePort();
    const body = peerIni(`127.0.0.1:${seedPort}`, 'enabled = false').replace('bootstrap_timeout = 5', 'bootstrap_timeout = 1');
    const a = startNode(['--config', await ini(root, 'a.ini', body), '--data-dir', join(root, 'a')]);
    const first = await a.next('retrying', () => true, 15_000);
    expect(first).toMatchObject({ reason: 'seeds-unreachable', attempt: 1, delay_ms: 1000, seeds: [`127.0.0.1:${seedPort}`] });
    expect(a.p.exitCode).toBeNull();
    // The seed comes up on that port: the next attempt joins.
    const seed = startNode([
      '--config',
      await ini(root, 's.ini', peerIni(undefined, 'enabled = false', seedPort)),
      '--data-dir',
      join(root, 's'),
    ]);
    await seed.next('listening');
    const joined = await a.next('listening', () => true, 20_000);
    expect(String(joined.nodeId)).toMatch(/^dpc-node-/);
    expect(a.stderr()).toContain('joined the DHT');
  });
});

describe('config mistakes at the command line', () => {
  it('a broken section header stops the start (exit 2) instead of running on defaults', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-cli-'));
    const file = await ini(root, 'n.ini', '[p2p\nlisten_port = 0\n');
    const r = await run(['start', '--json', '--config', file, '--data-dir', join(root, 'n')], 10_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:1: malformed section header "[p2p"`);
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ event: 'error', fatal: true, error: { code: 'DPC_CONFIG' } });
  });
});

describe('a data directory that cannot be used', () => {
  it('id --data-dir /proc/x ends at once with a clear error', async () => {
    const t0 = Date.now();
    const r = await run(['id', '--data-dir', '/proc/x'], 10_000);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot create the data directory /proc/x');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('an unwritable data directory is a clear error without a stack', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-cli-'));
    const file = await ini(root, 'n.ini', peerIni(undefined, 'enabled = false'));
    // Under a regular file: no user (root included) can create it.
    const r = await run(['start', '--config', file, '--data-dir', join(file, 'data')], 10_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot create the data directory ${join(file, 'data')} (ENOTDIR)`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
