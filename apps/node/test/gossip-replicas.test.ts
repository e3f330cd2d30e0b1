import { once } from 'node:events';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ApiClient, apiClient, config, freeTcpUdpPort, gossipIni, sendCli, startNode, until } from './harness.js';

/**
 * Keyspace-scoped copies through real dpc-node processes on loopback (the node's defaults:
 * `[gossip] replicas = 2`, `max_hops = 8`): A sends to B while B is offline and six other nodes
 * are up, A leaves, B comes online later. The copies land on the nodes closest to B (found
 * through the DHT: no node names another as its gossip peer, only C as the DHT seed), B gets
 * the message from them, and no more than 2k nodes ever stored a copy.
 */
const TEXT = 'for-b-while-offline-5d1e';

const ini = (dhtPort: number, seed?: string) => gossipIni(dhtPort, seed, 5);

describe('gossip keyspace-scoped copies through dpc-node', () => {
  it('A sends to offline B with six other nodes up, A leaves, B comes online: delivered from the nodes closest to B; at most 2k copies', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-gossip-replicas-'));
    const cPort = await freeTcpUdpPort();
    const seed = `127.0.0.1:${cPort}`;
    const names = ['c', 'n1', 'n2', 'n3', 'n4', 'n5', 'a', 'b'] as const;
    const files: Record<string, { ini: string; dir: string }> = {};
    for (const n of names) {
      const dir = join(root, n);
      await mkdir(dir);
      const file = join(root, `${n}.ini`);
      await writeFile(file, n === 'c' ? ini(cPort) : ini(await freeTcpUdpPort(), seed));
      files[n] = { ini: file, dir };
    }
    const start = (n: (typeof names)[number]) => startNode(['--config', files[n]?.ini as string, '--data-dir', files[n]?.dir as string]);

    // The six others: C (the DHT seed) and N1–N5.
    const others: Array<{ name: string; api: ApiClient }> = [];
    for (const n of ['c', 'n1', 'n2', 'n3', 'n4', 'n5'] as const) {
      const p = start(n);
      await p.next('listening');
      others.push({ name: n, api: await apiClient(String((await p.next('api')).url), files[n]?.dir as string) });
    }
    // B is online once (its signed record is stored in the DHT), then gone before A starts.
    let b = start('b');
    const bId = String((await b.next('listening')).nodeId);
    await until("B's record stored", async () => /announced endpoint record.*stored_at=[1-9]/.test(b.stderr()) || undefined, 20_000);
    b.p.kill('SIGTERM');
    await once(b.p, 'exit');

    // A runs, sends (queued for tier 6: exit 75), and leaves once the copies are placed.
    const a = start('a');
    await a.next('listening');
    const aApi = await apiClient(String((await a.next('api')).url), files.a?.dir as string);
    // Its gossip links are not only the seed: it linked to its DHT keyspace neighbours (all six here).
    await until('A links to its DHT neighbours', async () => ((await aApi.counters()).gossip_links_up ?? 0) >= 6 || undefined, 45_000);
    expect((await aApi.counters()).gossip_link_dials).toBeGreaterThanOrEqual(1);
    const sent = await sendCli(files.a?.ini as string, files.a?.dir as string, bId, TEXT);
    expect(sent.code, sent.stderr + sent.stdout).toBe(75);
    const stored = async () => {
      let n = 0;
      for (const o of others) n += (await o.api.counters()).gossip_stored ?? 0;
      return n;
    };
    await until('two copies held by the nodes closest to B', async () => ((await stored()) >= 2 ? true : undefined), 45_000);
    aApi.close();
    a.p.kill('SIGTERM');
    await once(a.p, 'exit');
    await new Promise((r) => setTimeout(r, 6_000)); // a few anti-entropy rounds among the others
    const copies = await stored();
    expect(copies).toBeGreaterThanOrEqual(2);
    // at most 2 × replicas of the six ever stored one (the epidemic mode copies it to all of them)
    expect(copies).toBeLessThanOrEqual(4);

    // B comes online: it links to its keyspace neighbours, which hold the message.
    b = start('b');
    const m = await b.next('message', (e) => e.text === TEXT, 60_000);
    expect(m.tier).toBe('gossip');
    // The holders drop their copies once B holds it.
    await until(
      'the holders drop their copies',
      async () => {
        let dropped = 0;
        for (const o of others) {
          const k = await o.api.counters();
          dropped += (k.gossip_dropped_at_destination ?? 0) + (k.gossip_dropped_by_receipt ?? 0);
        }
        return dropped >= 1 || undefined;
      },
      45_000,
    );
    for (const o of others) o.api.close();
  }, 240_000);

  it('with [dht] port = 0 the gossip listener takes the TCP port with the number the DHT was bound to', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-gossip-port0-'));
    const file = await config(root, ini(0));
    const dir = join(root, 'n');
    await mkdir(dir);
    const n = startNode(['--config', file, '--data-dir', dir]);
    const up = await n.next('listening');
    const port = Number(/:(\d+)$/.exec(String(up.dht))?.[1]);
    expect(port).toBeGreaterThan(0);
    // a gossip peer that learnt this node from the DHT dials that port: it answers with its banner
    const banner = await until(
      'the gossip banner on the DHT port number',
      () =>
        new Promise<string | undefined>((resolve) => {
          const socket = connect(port, '127.0.0.1');
          let buf = '';
          socket.on('data', (d) => {
            buf += d.toString('latin1');
            if (buf.length >= 48) {
              socket.destroy();
              resolve(buf.slice(0, 48));
            }
          });
          socket.on('error', () => resolve(undefined));
          socket.setTimeout(5_000, () => {
            socket.destroy();
            resolve(undefined);
          });
        }),
      20_000,
    );
    expect(banner).toBe(`DPCG1 ${String(up.nodeId)}\n`);
  });
});
