import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCanonical, generateIdentity, secureConnect } from '@dpc/core';
import { createMessage } from '@dpc/gossip';
import { describe, expect, it } from 'vitest';
import { apiClient, config, freeTcpUdpPort, gossipIni, sendCli, startNode, until } from './harness.js';

/**
 * Tier 6 through real dpc-node processes on loopback: A and B are never online together and
 * share only the public peer C (their DHT seed, and their gossip peer on the same port number).
 */
const MARKER = 'plaintext-marker-8c41f2';

const ini = (dhtPort: number, seed?: string) => gossipIni(dhtPort, seed, 3);

async function filesContain(dir: string, needle: Buffer): Promise<string[]> {
  const hits: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    if ((await readFile(p)).includes(needle)) hits.push(p);
  }
  return hits;
}

/** A hand-made gossip link to C (banner, then the TLS secure channel) sending raw frames. */
async function rawLink(port: number) {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const banner = await new Promise<string>((resolve) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 48) {
        socket.off('data', onData);
        socket.pause();
        resolve(buf.subarray(0, 48).toString('latin1'));
      }
    };
    socket.on('data', onData);
  });
  const conn = await secureConnect(socket, { identity: generateIdentity(), tier: 'gossip', expectedNodeId: banner.slice(6, 47) });
  return conn;
}

describe('gossip through dpc-node (tier 6)', () => {
  it('A sends while B is offline, C restarts holding it, B delivers it, A sees it delivered; C never holds the plaintext; forged and tampered refused and counted', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-gossip-'));
    const cPort = await freeTcpUdpPort();
    const seed = `127.0.0.1:${cPort}`;
    const cIni = await config(root, ini(cPort));
    const dirs = { a: join(root, 'a'), b: join(root, 'b'), c: join(root, 'c') };
    for (const d of Object.values(dirs)) await mkdir(d);
    const aIni = join(root, 'a.ini');
    const bIni = join(root, 'b.ini');
    await writeFile(aIni, ini(await freeTcpUdpPort(), seed));
    await writeFile(bIni, ini(await freeTcpUdpPort(), seed));

    let c = startNode(['--config', cIni, '--data-dir', dirs.c]);
    await c.next('listening');
    // B is online once (its record is announced), then gone before A ever starts.
    let b = startNode(['--config', bIni, '--data-dir', dirs.b]);
    const bId = String((await b.next('listening')).nodeId);
    // its signed record is stored at C (A finds B's key there later)
    await until("B's record stored at C", async () => /announced endpoint record.*stored_at=[1-9]/.test(b.stderr()) || undefined, 15_000);
    b.p.kill('SIGTERM');
    await once(b.p, 'exit');

    // A sends; no live tier reaches B, so it goes to gossip: accepted, not yet confirmed (75).
    const sent = await sendCli(aIni, dirs.a, bId, MARKER);
    expect(sent.code, sent.stderr + sent.stdout).toBe(75);
    let cApi = await apiClient(String((await c.next('api')).url), dirs.c);
    await until('C stores the message', async () => ((await cApi.counters()).gossip_stored ?? 0) >= 1 || undefined, 30_000);

    // C is killed and restarted while holding it.
    cApi.close();
    c.p.kill('SIGKILL');
    await once(c.p, 'exit');
    c = startNode(['--config', cIni, '--data-dir', dirs.c]);
    await c.next('listening');
    cApi = await apiClient(String((await c.next('api')).url), dirs.c);

    // Forged and tampered messages on a gossip link are refused and counted.
    const me = generateIdentity();
    const good = createMessage(me, {
      destination: bId,
      destinationKey: generateIdentity().publicKey,
      plaintext: encodeCanonical({ id: 'x:1', body: null }),
      maxHops: 5,
      ttlSeconds: 60,
      priority: 'normal',
      vectorClock: {},
    });
    const tampered = Buffer.from(good.encoded);
    const p = tampered.indexOf(good.payload);
    tampered[p + 40] = (tampered[p + 40] as number) ^ 0xff;
    const forged = Buffer.from(good.encoded);
    const sp = forged.indexOf(good.signature);
    forged[sp + 1] = (forged[sp + 1] as number) ^ 0xff;
    const raw = await rawLink(cPort);
    await raw.send({ t: 'm', b: tampered });
    await raw.send({ t: 'm', b: forged });
    const refused = await until(
      'C counts the forged and tampered messages',
      async () => {
        const k = await cApi.counters();
        return (k.gossip_refused_tampered ?? 0) >= 1 && (k.gossip_refused_forged ?? 0) >= 1 ? k : undefined;
      },
      30_000,
    );
    expect(refused.gossip_refused_tampered).toBe(1);
    expect(refused.gossip_refused_forged).toBe(1);
    await raw.close();

    // B comes back (A is offline): the message arrives over gossip.
    b = startNode(['--config', bIni, '--data-dir', dirs.b]);
    const m = await b.next('message', (e) => e.text === MARKER, 45_000);
    expect(m.tier).toBe('gossip');
    // C drops its copy once B holds it: on B's durable hop ack (keyspace-scoped copies, the node's
    // default) or, failing that, on B's receipt.
    await until(
      'C drops its copy when B holds the message',
      async () => {
        const k = await cApi.counters();
        return (k.gossip_dropped_at_destination ?? 0) + (k.gossip_dropped_by_receipt ?? 0) >= 1 || undefined;
      },
      30_000,
    );
    await until("C holds B's receipt for A", async () => ((await cApi.counters()).gossip_stored ?? 0) >= 1 || undefined, 30_000);
    b.p.kill('SIGTERM');
    await once(b.p, 'exit');

    // A comes back: the receipt waiting at C marks the message delivered in A's session.
    const a = startNode(['--config', aIni, '--data-dir', dirs.a]);
    const aApi = await apiClient(String((await a.next('api')).url), dirs.a);
    const session = await until(
      "A's session marks the message delivered",
      async () => {
        const r = await aApi.call('sessions');
        const s = (r.result as Array<{ peerId: string; unacked: number }>).find((x) => x.peerId === bId);
        return s && s.unacked === 0 ? s : undefined;
      },
      45_000,
    );
    expect(session.unacked).toBe(0);
    expect((await aApi.counters()).gossip_receipts_received).toBeGreaterThanOrEqual(1);
    aApi.close();
    cApi.close();

    // What C holds (its store and its output) never shows the plaintext.
    expect(await filesContain(dirs.c, Buffer.from(MARKER))).toEqual([]);
    expect(c.stderr().includes(MARKER)).toBe(false);
    expect(JSON.stringify(c.events).includes(MARKER)).toBe(false);
  });
});
