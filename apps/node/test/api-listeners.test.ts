import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { apiClient, baseIni, seedFrom, sendCli, startNode } from './harness.js';

// Issue 10 §9: a `MaxListenersExceededWarning` appeared under load. Each API client's subscription
// added its own listener on the node per event, so 11 subscribed clients passed EventEmitter's
// limit of 10 (and the listeners grew with every client). One shared listener per event now.
describe('dpc-node API: subscribed clients share the node listeners', () => {
  it('16 clients subscribed to every event, then a message: no MaxListenersExceededWarning', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-api-'));
    const ini = join(root, 'n.ini');
    await writeFile(ini, baseIni().replace('[api]\nenabled = false', '[api]\nenabled = true\nport = 0'));
    const n = startNode(['--config', ini, '--data-dir', join(root, 'n')]);
    const listening = await n.next('listening');
    const url = String((await n.next('api')).url);
    const clients = await Promise.all(Array.from({ length: 16 }, () => apiClient(url, join(root, 'n'))));
    for (const c of clients) expect((await c.call('subscribe')).error).toBeUndefined();
    const aIni = join(root, 'a.ini');
    await writeFile(aIni, baseIni(seedFrom(listening.dht)));
    const sent = await sendCli(aIni, join(root, 'a'), listening.nodeId, 'to all');
    expect(sent.code, sent.stdout + sent.stderr).toBe(0);
    await n.next('message');
    await new Promise((r) => setTimeout(r, 300));
    expect(n.stderr()).not.toMatch(/MaxListenersExceeded/);
    for (const c of clients) c.close();
  });
});
