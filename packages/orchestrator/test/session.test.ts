import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Connection,
  type DeferredItem,
  type DeferredRecipient,
  generateIdentity,
  type Identity,
  memoryKvStore,
  secureConnect,
  sleep,
} from '@dpc/core';
import type { ConnectEvent, PeerSession } from '@dpc/orchestrator';
import { openStore } from '@dpc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { MailboxEndpoint, MemoryMailbox, makeNode, type NodeOptions, RecordDirectory, scriptedTier, type TestNode } from './helpers.js';

const nodes = new Set<TestNode>();
const dirs: string[] = [];
afterEach(async () => {
  for (const n of nodes) await n.stop();
  nodes.clear();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function node(dir: RecordDirectory, opts: NodeOptions = {}): Promise<TestNode> {
  const n = await makeNode(dir, { upgradeIntervalMs: 200, ...opts });
  nodes.add(n);
  return n;
}

async function stop(n: TestNode): Promise<void> {
  nodes.delete(n);
  await n.stop();
}

/** Every message B's orchestrator delivers, as numbers, in delivery order. */
function received(n: TestNode): number[] {
  const got: number[] = [];
  n.orchestrator.on('message', (e: { body: unknown }) => got.push((e.body as { i: number }).i));
  return got;
}

const until = async (cond: () => boolean, ms = 15_000) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not reached in time');
    await sleep(20);
  }
};

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** 'pending' for each queued message until its `delivered` resolves, then 'delivered' (live). */
function deliveryStates(q: Array<{ delivered: Promise<unknown> }>): string[] {
  const state = q.map(() => 'pending');
  q.forEach((x, i) => {
    x.delivered.then(
      () => {
        state[i] = 'delivered';
      },
      () => {},
    );
  });
  return state;
}

describe('PeerSession survives restarts', () => {
  it('a receiver that restarted without its state resumes from the sender’s lowest unacknowledged number', async () => {
    const dir = new RecordDirectory();
    const a = await node(dir);
    const b = await node(dir);
    const bId = b.identity;
    const port = b.listener.port;
    const s = await a.orchestrator.connect(bId.nodeId, { signal: AbortSignal.timeout(10_000) });
    for (const i of range(1, 5)) await s.send({ i });
    await stop(b);
    // Sent while B is down: unacknowledged, resent once B is back.
    const sends = range(6, 10).map((i) => s.send({ i }, { signal: AbortSignal.timeout(20_000) }));
    await sleep(100);
    const b2 = await node(dir, { identity: bId, port });
    const got = received(b2);
    await Promise.all(sends);
    expect(got).toEqual(range(6, 10));
  });

  it('with a disk store, both sides restart mid-stream and every message is delivered once, in order', async () => {
    const dir = new RecordDirectory();
    const root = mkdtempSync(join(tmpdir(), 'dpc-sess-'));
    dirs.push(root);
    const aId = generateIdentity();
    const bId = generateIdentity();
    let storeA = await openStore(join(root, 'a'));
    let storeB = await openStore(join(root, 'b'));
    let a = await node(dir, { identity: aId, store: storeA });
    let b = await node(dir, { identity: bId, store: storeB });
    const aPort = a.listener.port;
    const bPort = b.listener.port;
    const got: number[] = [];
    const listen = (n: TestNode) => n.orchestrator.on('message', (e: { body: unknown }) => got.push((e.body as { i: number }).i));
    listen(b);
    const session = async () =>
      a.orchestrator.session(bId.nodeId) ?? (await a.orchestrator.connect(bId.nodeId, { signal: AbortSignal.timeout(10_000) }));
    let s: PeerSession = await session();
    for (const i of range(1, 20)) await s.queue({ i });
    // B restarts (its store keeps what it delivered).
    await stop(b);
    await storeB.close();
    for (const i of range(21, 40)) await s.queue({ i });
    storeB = await openStore(join(root, 'b'));
    b = await node(dir, { identity: bId, store: storeB, port: bPort });
    listen(b);
    // A restarts with messages still unacknowledged: they are in its outbox.
    for (const i of range(41, 60)) await s.queue({ i });
    await stop(a);
    await storeA.close();
    storeA = await openStore(join(root, 'a'));
    a = await node(dir, { identity: aId, store: storeA, port: aPort });
    const resumed = await a.orchestrator.resume();
    expect(resumed).toEqual([bId.nodeId]);
    s = await session();
    const last = range(61, 80).map((i) => s.send({ i }, { signal: AbortSignal.timeout(20_000) }));
    await Promise.all(last);
    await until(() => got.length >= 80);
    await sleep(200);
    expect(got).toEqual(range(1, 80));
    await stop(a);
    await stop(b);
    await storeA.close();
    await storeB.close();
  });

  it('an aborted send gives up its wait, and its message is still delivered', async () => {
    const dir = new RecordDirectory();
    const a = await node(dir, { maxSessions: 8 });
    const b = await node(dir);
    const got = received(b);
    const s = await a.orchestrator.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) });
    const ctrl = new AbortController();
    const p = s.send({ i: 1 }, { signal: ctrl.signal });
    ctrl.abort();
    await expect(p).rejects.toMatchObject({ name: 'AbortedError' });
    await until(() => got.length === 1);
    await until(() => s.unacked === 0);
  });
});

describe('deferred delivery (tier 6 contract, scripted mailbox)', () => {
  const gossipFast: NodeOptions['config'] = (c) => {
    c.connection.gossip_timeout = 0.3;
  };

  /** A (with a mailbox as its deferred path, online) and B, who published a record and went offline. */
  async function senderAndOfflinePeer() {
    const dir = new RecordDirectory();
    const mailbox = new MemoryMailbox();
    const aId = generateIdentity();
    const bId = generateIdentity();
    const aEp = mailbox.endpoint(aId);
    const a = await node(dir, { identity: aId, deferred: aEp, config: gossipFast });
    aEp.online(true);
    const bOld = await node(dir, { identity: bId });
    const bPort = bOld.listener.port;
    await stop(bOld);
    return { dir, mailbox, a, aId, bId, bPort };
  }

  it('sequential mode counts gossip_timeout from the start of the last live tier (the spec tries tier 6 after tier 5)', async () => {
    // Tier 2 fails after 0.8 s, then tier 5 connects in 0.1 s: 0.9 s is past gossip_timeout (0.3 s)
    // from the connect, not from tier 5's start. (Counted from the connect, tier 6 won at 0.3 s.)
    const dir = new RecordDirectory();
    const mailbox = new MemoryMailbox();
    const aId = generateIdentity();
    const aEp = mailbox.endpoint(aId);
    const a = await node(dir, {
      identity: aId,
      deferred: aEp,
      strategies: (id) => [
        scriptedTier('ipv4_direct', id, { delayMs: 800, fail: 'no route' }),
        scriptedTier('volunteer_relay', id, { delayMs: 100 }),
      ],
      config: (c) => {
        c.connection.gossip_timeout = 0.3;
        c.connection.mode = 'sequential';
      },
    });
    aEp.online(true);
    const b = await node(dir);
    const s = await a.orchestrator.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) });
    expect(s.tier).toBe('volunteer_relay');
    expect(s.deferred).toBe(false);
    expect(mailbox.items).toEqual([]);
  });

  it('an offline peer gets its messages over the deferred path; receipts resolve send(); a live path takes over later', async () => {
    const { dir, mailbox, a, bId, bPort } = await senderAndOfflinePeer();
    const ev = once(a.orchestrator, 'connect') as Promise<[ConnectEvent]>;
    const s = await a.orchestrator.connect(bId.nodeId, { signal: AbortSignal.timeout(10_000) });
    expect(s.tier).toBe('gossip');
    expect(s.deferred).toBe(true);
    const [e] = await ev;
    expect(e.outcomes.find((o) => o.tier === 'ipv4_direct')?.result).toBe('failed');
    expect(e.outcomes.find((o) => o.tier === 'gossip')?.result).toBe('connected');
    expect(a.orchestrator.stats().strategy_usage.gossip).toBe(1);
    const queued = await s.queue({ i: 1 });
    const sends = [queued.delivered, s.send({ i: 2 }), s.send({ i: 3 })];
    await until(() => mailbox.items.length === 3);
    expect(mailbox.items.map((x) => x.to)).toEqual([bId.nodeId, bId.nodeId, bId.nodeId]);
    // B comes back: the mailbox hands it the items; its receipts resolve A's sends.
    const bEp = mailbox.endpoint(bId);
    const b = await node(dir, { identity: bId, port: bPort, deferred: bEp });
    const got = received(b);
    bEp.online(true);
    await Promise.all(sends);
    expect(got).toEqual([1, 2, 3]);
    // The next message goes out deferred and makes the session retry live tiers: B listens
    // again, so the session moves up, resending what is unacknowledged (the receiver dedupes).
    const fourth = s.send({ i: 4 });
    await until(() => s.tier === 'ipv4_direct');
    await fourth;
    await s.send({ i: 5 });
    expect(got).toEqual([1, 2, 3, 4, 5]);
  });

  it('a receipt resolves exactly the messages it names (selective)', async () => {
    const { mailbox, a, aId, bId } = await senderAndOfflinePeer();
    const s = await a.orchestrator.connect(bId.nodeId, { signal: AbortSignal.timeout(10_000) });
    const q = await Promise.all(range(1, 3).map((i) => s.queue({ i })));
    const state = deliveryStates(q);
    await until(() => mailbox.items.length === 3);
    const second = mailbox.items[1]?.item.id as string;
    // B's side (a scripted receipt): only the second message.
    await mailbox.endpoint(bId).receipt({ nodeId: aId.nodeId, publicKey: aId.publicKey }, [second]);
    await until(() => state[1] === 'delivered');
    await sleep(100);
    expect(state).toEqual(['pending', 'delivered', 'pending']);
    expect(s.unacked).toBe(2);
  });

  it('out of order over the deferred path: 3 arriving before 2 is marked delivered at once; 2 follows and B hands over 1, 2, 3 in order', async () => {
    const dir = new RecordDirectory();
    const mailbox = new MemoryMailbox();
    const aId = generateIdentity();
    const bId = generateIdentity();
    // A's tier 6 holds back its second item (a slower gossip route), so B gets 1 and 3 first.
    const held: Array<() => Promise<void>> = [];
    class Holding extends MailboxEndpoint {
      override async submit(to: DeferredRecipient, item: DeferredItem): Promise<void> {
        if (item.id.endsWith(':2') && held.length === 0) {
          held.push(() => super.submit(to, item));
          return;
        }
        return super.submit(to, item);
      }
    }
    const aEp = new Holding(mailbox, aId);
    // No live tier on A: everything goes (and comes back) over the deferred path.
    const a = await node(dir, { identity: aId, deferred: aEp, config: gossipFast, strategies: () => [] });
    aEp.online(true);
    const b0 = await node(dir, { identity: bId });
    await stop(b0);
    const s = await a.orchestrator.connect(bId.nodeId, { signal: AbortSignal.timeout(10_000) });
    expect(s.tier).toBe('gossip');
    const q = await Promise.all(range(1, 3).map((i) => s.queue({ i })));
    const state = deliveryStates(q);
    await until(() => mailbox.items.length === 2 && held.length === 1);
    const bEp = mailbox.endpoint(bId);
    const b = await node(dir, { identity: bId, deferred: bEp });
    const got = received(b);
    bEp.online(true);
    // B stores 3 (waiting for 2) and receipts it: A marks 3 delivered without waiting for 2.
    await until(() => state[2] === 'delivered');
    expect(state).toEqual(['delivered', 'pending', 'delivered']);
    expect(s.unacked).toBe(1);
    expect(got).toEqual([1]);
    await (held[0] as () => Promise<void>)();
    await until(() => state[1] === 'delivered');
    expect(got).toEqual([1, 2, 3]);
    expect(s.unacked).toBe(0);
  });

  it('never lets the deferred path beat a live tier that is still within its time', async () => {
    const dir = new RecordDirectory();
    const mailbox = new MemoryMailbox();
    const aId = generateIdentity();
    const a = await node(dir, {
      identity: aId,
      deferred: mailbox.endpoint(aId),
      config: (c) => {
        c.connection.gossip_timeout = 1;
      },
      strategies: (id) => [scriptedTier('volunteer_relay', id, { delayMs: 600 })],
    });
    const b = await node(dir);
    const s = await a.orchestrator.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) });
    expect(s.tier).toBe('volunteer_relay');
    expect(mailbox.submitted).toBe(0);
  });

  it('uses the deferred path when the record cannot be found but the key is known', async () => {
    const dir = new RecordDirectory();
    const mailbox = new MemoryMailbox();
    const aId = generateIdentity();
    const a = await node(dir, { identity: aId, deferred: mailbox.endpoint(aId), config: gossipFast });
    const b = await node(dir);
    const s = await a.orchestrator.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) });
    await s.send({ i: 1 });
    await stop(b);
    await until(() => !s.connected);
    dir.records.delete(b.identity.nodeId); // expired
    const again = await a.orchestrator.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) });
    expect(again.tier).toBe('gossip');
    void again.send({ i: 2 }).catch(() => {});
    await until(() => mailbox.items.length === 1);
  });
});

describe('session lifecycle and the orchestrator’s own checks', () => {
  it('stop() during a connect that could fall back to the deferred path: the connect rejects and leaves no session behind', async () => {
    const dir = new RecordDirectory();
    const mailbox = new MemoryMailbox();
    const aId = generateIdentity();
    const aEp = mailbox.endpoint(aId);
    let stalled: ReturnType<typeof scriptedTier> | undefined;
    const a = await node(dir, {
      identity: aId,
      deferred: aEp,
      config: (c) => {
        c.connection.gossip_timeout = 30;
      },
      strategies: (id) => {
        stalled = scriptedTier('ipv4_direct', id, { stall: true });
        return [stalled];
      },
    });
    aEp.online(true);
    const b = await node(dir);
    const connecting = a.orchestrator.connect(b.identity.nodeId, { signal: AbortSignal.timeout(60_000) }).then(
      () => 'connected',
      (err: { code?: string }) => err.code,
    );
    await until(() => (stalled?.calls ?? 0) === 1);
    await a.orchestrator.stop();
    expect(await connecting).toBe('DPC_ORCHESTRATOR_STATE');
    expect(a.orchestrator.session(b.identity.nodeId)).toBeUndefined();
  });

  it('a send() made just before close() rejects with DPC_SESSION_CLOSED instead of staying pending (and holding the process)', async () => {
    const dir = new RecordDirectory();
    const a = await node(dir);
    const b = await node(dir);
    const s = await a.orchestrator.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) });
    await s.send({ i: 1 });
    // close() runs while queue() awaits the session's readiness: the message must not be queued after it.
    const sent = s.send({ i: 2 }).then(
      () => 'delivered',
      (err: { code?: string }) => err.code,
    );
    await s.close();
    const outcome = await Promise.race([sent, sleep(10_000).then(() => 'still pending')]);
    expect(outcome).toBe('DPC_SESSION_CLOSED');
  });

  it('idle sessions are evicted, so throwaway identities cannot lock out a new peer', async () => {
    const dir = new RecordDirectory();
    const store = memoryKvStore();
    const b = await node(dir, { maxSessions: 10, store });
    const port = b.listener.port;
    const throwaway = async (id: Identity): Promise<Connection> => {
      const socket = tcpConnect(port, '127.0.0.1');
      socket.on('error', () => {});
      return secureConnect(socket, {
        identity: id,
        tier: 'ipv4_direct',
        expectedNodeId: b.identity.nodeId,
        signal: AbortSignal.timeout(5000),
      });
    };
    for (let i = 0; i < 40; i++) {
      const c = await throwaway(generateIdentity());
      await c.close();
    }
    await sleep(100);
    expect(b.orchestrator.sessions().length).toBeLessThanOrEqual(10);
    // Identities that only connected leave nothing in the store.
    const stored: string[] = [];
    for await (const [k] of store.entries('')) stored.push(k);
    expect(stored).toEqual([]);
    const legit = await node(dir);
    const got = received(b);
    const s = await legit.orchestrator.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) });
    await s.send({ i: 1 });
    expect(got).toEqual([1]);
  });

  it('refuses a connection that a lying strategy made to another peer or under another tier', async () => {
    const dir = new RecordDirectory();
    const c = await node(dir);
    const liar =
      (tier: 'ipv4_direct' | 'udp_hole_punch', to: () => { nodeId: string; port: number }, tag = tier) =>
      (id: Identity) => [
        {
          ...scriptedTier(tier, id),
          async connect(_peer: unknown, opts: { signal: AbortSignal }) {
            const t = to();
            const socket = tcpConnect(t.port, '127.0.0.1');
            socket.on('error', () => {});
            return secureConnect(socket, { identity: id, tier: tag, expectedNodeId: t.nodeId, signal: opts.signal });
          },
        },
      ];
    const a = await node(dir, { strategies: liar('ipv4_direct', () => ({ nodeId: c.identity.nodeId, port: c.listener.port })) });
    const b = await node(dir);
    const err = await a.orchestrator.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DPC_CONNECT_FAILED' });
    expect((err as { tiers: Array<{ tier: string; code?: string }> }).tiers.find((t) => t.tier === 'ipv4_direct')?.code).toBe(
      'DPC_WRONG_PEER',
    );
    const a2 = await node(dir, {
      strategies: liar('udp_hole_punch', () => ({ nodeId: b.identity.nodeId, port: b.listener.port }), 'ipv4_direct' as 'udp_hole_punch'),
    });
    const err2 = await a2.orchestrator.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) }).catch((e: unknown) => e);
    expect((err2 as { tiers: Array<{ tier: string; code?: string }> }).tiers.find((t) => t.tier === 'udp_hole_punch')?.code).toBe(
      'DPC_WRONG_PEER',
    );
  });

  it('bounds out-of-order messages in bytes: what does not fit is neither stored nor acknowledged', async () => {
    const dir = new RecordDirectory();
    const b = await node(dir, { maxReorderBytes: 64 * 1024 });
    const id = generateIdentity();
    const socket = tcpConnect(b.listener.port, '127.0.0.1');
    socket.on('error', () => {});
    const conn = await secureConnect(socket, {
      identity: id,
      tier: 'ipv4_direct',
      expectedNodeId: b.identity.nodeId,
      signal: AbortSignal.timeout(5000),
    });
    const acks: Array<{ n: number; s?: number[] }> = [];
    conn.on('message', (m) => acks.push(m as { n: number; s?: number[] }));
    const big = Buffer.alloc(10 * 1024, 7);
    // Number 1 never comes: 2..20 wait in the reorder buffer, ~10 KiB each.
    for (let n = 2; n <= 20; n++) await conn.send({ k: 'm', e: 'e1', n, l: 1, b: big });
    await until(() => acks.length > 0);
    await sleep(300);
    const last = acks[acks.length - 1] as { n: number; s?: number[] };
    expect(last.n).toBe(0);
    expect(last.s?.length).toBeGreaterThan(0);
    expect(last.s?.length).toBeLessThanOrEqual(6); // 64 KiB / ~10 KiB
    await conn.close();
  });
});
