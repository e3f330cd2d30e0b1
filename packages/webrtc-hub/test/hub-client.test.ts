import { generateIdentity } from '@dpc/core';
import { createHubServer } from '@dpc/webrtc-hub';
import { describe, expect, it } from 'vitest';
import { freePort, loggedInClient, onCleanup, RawClient, startFreezableProxy, startHub } from './hub-helpers.js';

async function until(pred: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Hub client: liveness and reconnect (real sockets)', () => {
  it('notices a stopped Hub at once, and logs in again when it is back (with backoff)', async () => {
    const port = await freePort();
    const hub = createHubServer({ host: '127.0.0.1', port });
    await hub.start();
    const client = await loggedInClient(hub, { backoff: { minMs: 100, maxMs: 400, jitter: 0 } });
    const events: string[] = [];
    client.on('up', () => events.push('up'));
    client.on('down', () => events.push('down'));
    const t0 = performance.now();
    await hub.stop();
    await until(() => !client.connected, 3_000);
    const noticedMs = performance.now() - t0;
    expect(events).toEqual(['down']);
    await expect(client.send(generateIdentity().nodeId, 'x')).rejects.toMatchObject({ code: 'DPC_HUB_NOT_CONNECTED' });
    // It keeps trying (backoff); once a Hub listens there again, it logs in again.
    await new Promise((r) => setTimeout(r, 600));
    expect(client.counters.get('hub_client_connect_failed')).toBeGreaterThanOrEqual(1);
    const again = createHubServer({ host: '127.0.0.1', port });
    await again.start();
    onCleanup(() => again.stop());
    await client.waitConnected({ signal: AbortSignal.timeout(5_000) });
    expect(events).toEqual(['down', 'up']);
    expect(again.hasNode(client.nodeId)).toBe(true);
    expect(noticedMs).toBeLessThan(4_000);
  });

  it('notices a Hub that went silent (no close, no bytes) within the dead-after time', async () => {
    // Client → freezable proxy → Hub; the Hub names the proxy's URL, the one the client dials.
    const hubPort = await freePort();
    const proxy = await startFreezableProxy(hubPort);
    const hub = await startHub({ port: hubPort, pingIntervalMs: 0, url: `ws://127.0.0.1:${proxy.port}/` });
    const client = await loggedInClient(hub, { heartbeatMs: 200, deadAfterMs: 1_000, backoff: { minMs: 5_000, maxMs: 5_000 } });
    await new Promise((r) => setTimeout(r, 500));
    expect(client.connected).toBe(true); // heartbeats answered
    const t0 = performance.now();
    proxy.freeze();
    await until(() => !client.connected, 5_000);
    const noticedMs = performance.now() - t0;
    expect(client.counters.get('hub_client_heartbeat_lost')).toBe(1);
    expect(noticedMs).toBeGreaterThanOrEqual(800);
    expect(noticedMs).toBeLessThan(4_000);
  });

  it('the Hub drops a node that went silent (missed pong) and then reports it offline', async () => {
    const hubPort = await freePort();
    const proxy = await startFreezableProxy(hubPort);
    const hub = await startHub({ port: hubPort, pingIntervalMs: 200, url: `ws://127.0.0.1:${proxy.port}/` });
    const quiet = await loggedInClient(hub, { heartbeatMs: 60_000, deadAfterMs: 120_000 });
    const raw = await RawClient.login(`ws://127.0.0.1:${hubPort}/`); // straight to the Hub (raw: signs any challenge)
    proxy.freeze();
    await until(() => !hub.hasNode(quiet.nodeId), 3_000);
    expect(hub.counters.get('hub_closed_dead')).toBe(1);
    raw.send({ t: 'signal', id: 1, to: quiet.nodeId, payload: 'still there?' });
    expect(await raw.next((m) => m.t === 'error')).toMatchObject({ code: 'DPC_HUB_PEER_OFFLINE', id: 1 });
  });

  it('a client replaced by a newer login of its identity does not fight back at once', async () => {
    const hub = await startHub();
    const me = generateIdentity();
    const first = await loggedInClient(hub, { identity: me, backoff: { minMs: 50, maxMs: 2_000, jitter: 0 } });
    const second = await loggedInClient(hub, { identity: me });
    await until(() => !first.connected);
    await new Promise((r) => setTimeout(r, 500));
    expect(second.connected).toBe(true);
    expect(first.counters.get('hub_client_connect')).toBe(1);
    expect(first.counters.get('hub_client_error_replaced')).toBe(1);
    expect(hub.counters.get('hub_replaced')).toBe(1);
  });

  it('stop() ends the reconnect loop: no timer or socket left', async () => {
    const hub = await startHub();
    const client = await loggedInClient(hub);
    await client.stop();
    expect(client.connected).toBe(false);
    await until(() => hub.stats().connections === 0);
    await expect(client.waitConnected()).rejects.toMatchObject({ code: 'DPC_HUB_NOT_CONNECTED' });
  });
});
