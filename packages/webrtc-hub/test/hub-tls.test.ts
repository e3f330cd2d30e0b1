// The Hub serving wss:// itself ([hub] tls_cert / tls_key) and clients trusting a private CA
// ([hub] ca). Certificates are made by the test with the openssl CLI: a CA and a Hub certificate
// it signed for 127.0.0.1, and a second CA that signed nothing here.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, generateIdentity } from '@dpc/core';
import { createHubClient, hubClientFromConfig, hubServerFromConfig, type SignalEvent } from '@dpc/webrtc-hub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggedInClient, onCleanup, startHub } from './hub-helpers.js';

let dir: string;
const file = (name: string) => join(dir, name);
const pem = (name: string) => readFileSync(file(name));

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(name: string): void {
  openssl(
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
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
  );
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dpc-hub-tls-'));
  makeCa('test-ca');
  makeCa('other-ca');
  openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    '/CN=hub',
    '-keyout',
    'hub.key',
    '-out',
    'hub.csr',
  );
  writeFileSync(file('hub.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'hub.csr',
    '-CA',
    'test-ca.pem',
    '-CAkey',
    'test-ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'hub.ext',
    '-out',
    'hub.pem',
  );
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the Hub over TLS (wss://)', () => {
  it('serves wss:// with its certificate; clients trusting its private CA log in and signal', async () => {
    const hub = await startHub({ tls: { cert: pem('hub.pem'), key: pem('hub.key') } });
    expect(hub.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/$/);
    const alice = await loggedInClient(hub, { ca: pem('test-ca.pem') });
    const bob = await loggedInClient(hub, { ca: pem('test-ca.pem') });
    const got: SignalEvent[] = [];
    bob.on('signal', (e) => got.push(e));
    await alice.send(bob.nodeId, { over: 'tls' });
    expect(got).toEqual([{ from: alice.nodeId, payload: { over: 'tls' } }]);
    expect(hub.stats().loggedIn).toBe(2);
  });

  it('a Hub certificate from a CA the client does not trust: refused with DPC_HUB_TLS, counted, never logged in', async () => {
    const hub = await startHub({ tls: { cert: pem('hub.pem'), key: pem('hub.key') } });
    for (const ca of [pem('other-ca.pem'), undefined]) {
      const client = createHubClient({
        url: hub.url,
        identity: generateIdentity(),
        backoff: { minMs: 50, maxMs: 200 },
        ...(ca && { ca }),
      });
      onCleanup(() => client.stop());
      const errors: Error[] = [];
      client.on('error', (e) => errors.push(e));
      client.start();
      const deadline = Date.now() + 10_000;
      while (errors.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(errors.length).toBeGreaterThanOrEqual(2); // it keeps trying, with its backoff
      for (const e of errors) expect(e).toMatchObject({ code: 'DPC_HUB_TLS' });
      expect(client.connected).toBe(false);
      expect(client.counters.get('hub_client_tls_refused')).toBeGreaterThanOrEqual(2);
      await client.stop();
    }
    expect(hub.stats().loggedIn).toBe(0);
    expect(hub.counters.get('hub_connections')).toBe(0);
    expect(hub.counters.get('hub_tls_handshake_failed')).toBeGreaterThanOrEqual(1);
  });

  it('from config: [hub] tls_cert + tls_key serve wss://, [hub] ca is trusted; unreadable or half TLS config is a typed error', async () => {
    const serving = defaultConfig();
    serving.hub.host = '127.0.0.1';
    serving.hub.port = 0;
    serving.hub.tls_cert = file('hub.pem');
    serving.hub.tls_key = file('hub.key');
    const hub = hubServerFromConfig(serving);
    await hub.start();
    onCleanup(() => hub.stop());
    expect(hub.url).toMatch(/^wss:/);
    const peer = defaultConfig();
    peer.hub.url = hub.url;
    peer.hub.ca = file('test-ca.pem');
    const client = hubClientFromConfig(peer, generateIdentity(), { backoff: { minMs: 50, maxMs: 200 } });
    if (!client) throw new Error('no client from config');
    onCleanup(() => client.stop());
    client.start();
    await client.waitConnected({ signal: AbortSignal.timeout(10_000) });

    const half = defaultConfig();
    half.hub.tls_cert = file('hub.pem');
    expect(() => hubServerFromConfig(half)).toThrow(expect.objectContaining({ code: 'DPC_HUB_CONFIG' }));
    const missing = defaultConfig();
    missing.hub.tls_cert = file('nope.pem');
    missing.hub.tls_key = file('hub.key');
    expect(() => hubServerFromConfig(missing)).toThrow(/tls_cert/);
    const noCa = defaultConfig();
    noCa.hub.url = hub.url;
    noCa.hub.ca = file('nope.pem');
    expect(() => hubClientFromConfig(noCa, generateIdentity())).toThrow(expect.objectContaining({ code: 'DPC_HUB_CONFIG' }));
    // A key that is not the certificate's: start fails typed.
    const wrong = defaultConfig();
    wrong.hub.host = '127.0.0.1';
    wrong.hub.port = 0;
    wrong.hub.tls_cert = file('hub.pem');
    wrong.hub.tls_key = file('other-ca.key');
    const bad = hubServerFromConfig(wrong);
    const err = await bad.start().catch((e: Error) => e);
    await bad.stop();
    expect(err).toMatchObject({ code: 'DPC_HUB_CONFIG' });
  });
});
