import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity } from '@dpc/core';
import { createHubClient, type HubClient, type SignalEvent } from '@dpc/webrtc-hub';
import { afterEach, describe, expect, it } from 'vitest';
import { apiClient, baseIni, config, freePort, run, startNode } from './harness.js';

const clients: HubClient[] = [];
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.stop();
  for (const s of stops.splice(0)) await s();
});

async function hubClient(url: string, ca?: Buffer): Promise<HubClient> {
  const c = createHubClient({ url, identity: generateIdentity(), backoff: { minMs: 100, maxMs: 500 }, ...(ca && { ca }) });
  clients.push(c);
  c.start();
  await c.waitConnected({ signal: AbortSignal.timeout(10_000) });
  return c;
}

/** A real redis-server on a free loopback port, without persistence; killed after the test. */
async function redisServer(): Promise<string> {
  const port = await freePort();
  const p = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  stops.push(async () => {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await once(p, 'exit');
    }
  });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  const deadline = Date.now() + 10_000;
  while (!out.includes('Ready to accept connections')) {
    if (Date.now() > deadline || p.exitCode !== null) throw new Error(`redis-server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return `redis://127.0.0.1:${port}`;
}

async function until(pred: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const hubIni = (port: number, extra = '') => `[hub]
serve = true
host = 127.0.0.1
port = ${port}
${extra}`;

describe('dpc-node [hub] serve = true', () => {
  it('runs a Hub: nodes log in to it and signal each other through it; its counters are the node\u2019s', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-hub-'));
    const port = await freePort();
    const ini = await config(
      root,
      baseIni(undefined, `${hubIni(port)}\n`).replace('[api]\nenabled = false', '[api]\nenabled = true\nport = 0'),
    );
    const node = startNode(['--config', ini, '--data-dir', join(root, 'hub')]);
    const listening = await node.next('listening');
    expect(listening.hub).toBe(`ws://127.0.0.1:${port}/`);
    const alice = await hubClient(String(listening.hub));
    const bob = await hubClient(String(listening.hub));
    const got: SignalEvent[] = [];
    bob.on('signal', (e) => got.push(e));
    await alice.send(bob.nodeId, { type: 'offer' });
    await expect(alice.send(generateIdentity().nodeId, 'x')).rejects.toMatchObject({ code: 'DPC_HUB_PEER_OFFLINE' });
    await until(() => got.length === 1);
    expect(got).toEqual([{ from: alice.nodeId, payload: { type: 'offer' } }]);
    const info = JSON.parse(await readFile(join(root, 'hub', 'node.json'), 'utf8')) as { api: string };
    const api = await apiClient(info.api, join(root, 'hub'));
    const counters = await api.counters();
    api.close();
    expect(counters.hub_login_ok).toBe(2);
    expect(counters.hub_routed_local).toBe(1);
    expect(counters.hub_peer_offline).toBe(1);
  });

  it('two dpc-node Hubs on one redis-server: a node on Hub 1 reaches a node on Hub 2', async () => {
    const redis = await redisServer();
    const root = await mkdtemp(join(tmpdir(), 'dpc-hub-'));
    const urls: string[] = [];
    for (const name of ['hub1', 'hub2']) {
      const ini = await config(
        await mkdtemp(join(root, `${name}-`)),
        baseIni(undefined, hubIni(await freePort(), `redis_url = ${redis}\ncluster_secret = dpc-test-cluster-secret-01`)),
      );
      const node = startNode(['--config', ini, '--data-dir', join(root, name)]);
      urls.push(String((await node.next('listening')).hub));
    }
    const alice = await hubClient(urls[0] as string);
    const bob = await hubClient(urls[1] as string);
    const got: SignalEvent[] = [];
    bob.on('signal', (e) => got.push(e));
    await alice.send(bob.nodeId, { type: 'offer', sdp: 'across Hubs' });
    await until(() => got.length === 1);
    expect(got).toEqual([{ from: alice.nodeId, payload: { type: 'offer', sdp: 'across Hubs' } }]);
  });

  it('a taken [hub] port fails the start naming the key', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-hub-'));
    const { createServer } = await import('node:net');
    const blocker = createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const port = (blocker.address() as { port: number }).port;
    try {
      const ini = await config(root, baseIni(undefined, hubIni(port)));
      const r = await run(['start', '--config', ini, '--data-dir', join(root, 'n'), '--allow-loopback']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('[hub] port');
    } finally {
      blocker.close();
    }
  });

  it('[hub] tls_cert + tls_key: the Hub serves wss://; a client trusting the certificate ([hub] ca) logs in', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-hub-'));
    // A self-signed certificate for 127.0.0.1, made here with the openssl CLI.
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(root, 'hub-key.pem'),
        '-out',
        join(root, 'hub-cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const port = await freePort();
    const tls = `tls_cert = ${join(root, 'hub-cert.pem')}\ntls_key = ${join(root, 'hub-key.pem')}`;
    const ini = await config(root, baseIni(undefined, hubIni(port, tls)));
    const node = startNode(['--config', ini, '--data-dir', join(root, 'hub')]);
    const listening = await node.next('listening');
    expect(listening.hub).toBe(`wss://127.0.0.1:${port}/`);
    const alice = await hubClient(String(listening.hub), await readFile(join(root, 'hub-cert.pem')));
    expect(alice.connected).toBe(true);
  });

  it('[hub] redis_url without [hub] cluster_secret fails the start naming the key', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-hub-'));
    const ini = await config(root, baseIni(undefined, hubIni(await freePort(), 'redis_url = redis://127.0.0.1:9')));
    const r = await run(['start', '--config', ini, '--data-dir', join(root, 'n'), '--allow-loopback']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('cluster_secret');
  });
});
