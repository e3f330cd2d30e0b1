import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity } from '@dpc/core';
import { createDht, type Dht, type DhtProgressEvent } from '@dpc/dht';
import { afterEach, describe, expect, it } from 'vitest';

const opts = { host: '127.0.0.1', port: 0, allowLoopback: true, rpcTimeoutMs: 300, bootstrapTimeoutMs: 5_000 };
type Addr = { host: string; port: number };
const started: Dht[] = [];
const sockets: Socket[] = [];
const dirs: string[] = [];

async function node(extra: Partial<Parameters<typeof createDht>[0]> = {}): Promise<Dht> {
  const d = createDht({ ...opts, identity: generateIdentity(), ...extra });
  started.push(d);
  await d.start();
  return d;
}

/** A dead contact: a real UDP socket that never answers, counting what it receives. */
async function silentPeer(): Promise<{ addr: Addr; received: () => number }> {
  const s = createSocket('udp4');
  sockets.push(s);
  let n = 0;
  s.on('message', () => n++);
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return { addr: { host: '127.0.0.1', port: s.address().port }, received: () => n };
}

type File = { v: number; seeds?: string[]; contacts: Array<{ id: string; host: string; port: number }> };
const readContacts = async (dir: string) => JSON.parse(await readFile(join(dir, 'dht-contacts.json'), 'utf8')) as File;

afterEach(async () => {
  for (const d of started.splice(0)) await d.stop();
  for (const s of sockets.splice(0)) s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'dpc-contacts-'));
  dirs.push(d);
  return d;
}

describe('saved contacts (dht-contacts.json)', () => {
  it('are saved with the seeds; when a seed answers, a dead saved contact is never asked and is dropped', async () => {
    const dir = await tempDir();
    const seed = await node();
    const seedAddr = seed.address as Addr;
    const first = await node({ seeds: [seedAddr], dataDir: dir });
    await first.stop();
    const file = await readContacts(dir);
    expect(file).toMatchObject({ v: 2, seeds: [`127.0.0.1:${seedAddr.port}`] });
    expect(file.contacts.map((c) => c.port)).toEqual([seedAddr.port]);
    const dead = await silentPeer();
    await writeFile(
      join(dir, 'dht-contacts.json'),
      JSON.stringify({ ...file, contacts: [{ id: 'ab'.repeat(16), ...dead.addr }, ...file.contacts] }),
    );
    const again = await node({ seeds: [seedAddr], dataDir: dir });
    await again.findPeer(seed.nodeId, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
    expect(dead.received()).toBe(0);
    // Saved again after joining (not only on a clean stop): the dead one is gone.
    expect((await readContacts(dir)).contacts.map((c) => c.port)).not.toContain(dead.addr.port);
  });

  it('when the seeds are down, the node joins through saved contacts of the same seeds (garbage skipped)', async () => {
    const dir = await tempDir();
    const seed = await node();
    const seedAddr = seed.address as Addr;
    const other = await node({ seeds: [seedAddr] });
    const first = await node({ seeds: [seedAddr], dataDir: dir });
    await first.stop();
    const file = await readContacts(dir);
    expect(file.contacts.map((c) => c.port)).toContain((other.address as Addr).port);
    const garbage = [null, 7, { id: 'zz', host: '127.0.0.1', port: 1 }, { id: 'a'.repeat(32), host: 'not an ip', port: 1 }];
    await writeFile(join(dir, 'dht-contacts.json'), JSON.stringify({ ...file, contacts: [...garbage, ...file.contacts] }));
    await seed.stop();
    const events: DhtProgressEvent[] = [];
    const again = createDht({ ...opts, identity: generateIdentity(), seeds: [seedAddr], dataDir: dir });
    started.push(again);
    again.on('progress', (e) => events.push(e));
    await again.start();
    expect(again.contacts().map((c) => c.nodeId)).toContain(other.nodeId);
    expect(events).toContainEqual({ type: 'bootstrap:saved', action: 'tried', contacts: file.contacts.length - 1 });
    expect(events).toContainEqual(expect.objectContaining({ type: 'bootstrap:seed', ok: true, saved: true }));
  });

  it('never leave the network the config names: a fresh network or other seeds do not merge through them', async () => {
    const dir = await tempDir();
    const seedA = await node();
    const a = await node({ seeds: [seedA.address as Addr], dataDir: dir });
    await a.stop();
    expect((await readContacts(dir)).contacts.length).toBeGreaterThan(0);
    const before = seedA.contacts().length;

    // A bootstrap node of a fresh private network on the same data directory starts alone.
    const events: DhtProgressEvent[] = [];
    const fresh = createDht({ ...opts, identity: generateIdentity(), dataDir: dir });
    started.push(fresh);
    fresh.on('progress', (e) => events.push(e));
    await fresh.start();
    expect(fresh.stats().routingTableSize).toBe(0);
    expect(events).toContainEqual({ type: 'bootstrap:saved', action: 'ignored', contacts: 1, reason: 'bootstrap-node' });

    // A node whose config names network B joins B only, even with network A's contacts saved.
    const seedB = await node();
    const b = await node({ seeds: [seedB.address as Addr], dataDir: dir });
    await new Promise((r) => setTimeout(r, 500)); // let any stray PING reach seed A
    expect(b.contacts().map((c) => c.nodeId)).not.toContain(seedA.nodeId);
    expect(seedA.contacts().map((c) => c.nodeId)).not.toContain(b.nodeId);
    expect(seedA.contacts().map((c) => c.nodeId)).not.toContain(fresh.nodeId);
    expect(seedA.contacts()).toHaveLength(before);

    // A file of version 1 (no seeds recorded) is not trusted either.
    await b.stop();
    await seedB.stop();
    const v1 = { v: 1, contacts: [{ id: Buffer.from(seedA.nodeId.slice(9), 'hex').toString('hex'), ...(seedA.address as Addr) }] };
    await writeFile(join(dir, 'dht-contacts.json'), JSON.stringify(v1));
    const c = createDht({ ...opts, identity: generateIdentity(), seeds: [seedB.address as Addr], dataDir: dir, bootstrapTimeoutMs: 1_000 });
    started.push(c);
    await expect(c.start()).rejects.toMatchObject({ code: 'DPC_DHT_BOOTSTRAP' });
  });
});
