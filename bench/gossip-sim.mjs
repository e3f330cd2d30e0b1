#!/usr/bin/env node
// Tier-6 simulation: N @dpc/gossip nodes in one process (the real codec: sealing, signatures,
// verification; the real GossipStore on an in-memory KvStore; simulated links delivering frames
// asynchronously), each linked to DEGREE random others; CHURN of the nodes offline at any time
// (every round a tenth of the online ones leave and as many offline ones return, relinking).
// MESSAGES messages between random pairs, sent by an online node (the destination may be offline);
// ROUNDS rounds; anti-entropy with one random linked peer every SYNC_EVERY rounds per node.
// Reports: delivery ratio, stored copies and transmissions per delivered message, receipts back
// at the sender, anti-entropy bytes and round trips, store growth.
// TOPOLOGY=random (default): DEGREE random links per node. TOPOLOGY=kademlia: the DEGREE/2 nodes
// closest in XOR keyspace plus one random node per k-bucket (shared prefix length 0..log2(N)+2), as a
// Kademlia routing table would link them. REPLICAS=k > 0 turns on keyspace-scoped copies (`replicas`).
// Run: npm run build && node bench/gossip-sim.mjs   (env: N, DEGREE, CHURN, MESSAGES, ROUNDS, SYNC_EVERY, FANOUT, MAX_HOPS, TOPOLOGY, REPLICAS, RESEND, SEED, TRACE, GOSSIP_DIST)
import { generateIdentity, kademliaIdOf, memoryKvStore } from '../packages/core/dist/index.js';

// GOSSIP_DIST=<dir>: another build of @dpc/gossip (before/after comparisons).
const { createGossip } = await import(
  `${(process.env.GOSSIP_DIST || new URL('../packages/gossip/dist/', import.meta.url).pathname).replace(/\/$/, '')}/index.js`
);

const N = Number(process.env.N ?? 1000);
const DEGREE = Number(process.env.DEGREE ?? 6);
const CHURN = Number(process.env.CHURN ?? 0.3);
const MESSAGES = Number(process.env.MESSAGES ?? 200);
const ROUNDS = Number(process.env.ROUNDS ?? 30);
const SYNC_EVERY = Number(process.env.SYNC_EVERY ?? 5);
const FANOUT = Number(process.env.FANOUT ?? 3);
const MAX_HOPS = Number(process.env.MAX_HOPS ?? 5);
const TOPOLOGY = process.env.TOPOLOGY ?? 'random';
const REPLICAS = Number(process.env.REPLICAS ?? 0);
// The source sends its un-receipted messages again every RESEND rounds (doubling; 0: never). A
// round is ROUND_MS of simulated time (every node's clock).
const RESEND = Number(process.env.RESEND ?? 0);
const ROUND_MS = 60_000;
let simNow = Date.now();
let seed = Number(process.env.SEED ?? 1);
const rnd = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};
const xor = (a, b) => Buffer.from(a.map((x, i) => x ^ b[i]));
const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
const settle = async () => {
  for (let i = 0; i < 40; i++) await new Promise((r) => setImmediate(r));
};

const t0 = performance.now();
const nodes = [];
for (let i = 0; i < N; i++) {
  const identity = generateIdentity();
  const g = await createGossip({
    identity,
    store: memoryKvStore(),
    fanout: FANOUT,
    maxHops: MAX_HOPS,
    replicas: REPLICAS,
    resendIntervalMs: RESEND * ROUND_MS,
    now: () => simNow,
    cleanupIntervalMs: 0,
    syncIntervalMs: 0,
    redeliverIntervalMs: 0,
    random: rnd,
  });
  nodes.push({ i, identity, g, online: true, nbrs: new Set() });
}
const join = (a, b) => {
  if (a === b) return;
  a.nbrs.add(b);
  b.nbrs.add(a);
};
if (TOPOLOGY === 'kademlia') {
  for (const n of nodes) n.kid = kademliaIdOf(n.identity.nodeId);
  const prefix = (a, b) => {
    for (let i = 0; i < a.length; i++) {
      const x = a[i] ^ b[i];
      if (x) return i * 8 + Math.clz32(x) - 24;
    }
    return a.length * 8;
  };
  const maxBucket = Math.ceil(Math.log2(N)) + 2;
  for (const n of nodes) {
    const buckets = new Map();
    const byDist = [];
    for (const m of nodes) {
      if (m === n) continue;
      const p = prefix(n.kid, m.kid);
      byDist.push([p, m]);
      if (p <= maxBucket) {
        const list = buckets.get(p) ?? [];
        list.push(m);
        buckets.set(p, list);
      }
    }
    byDist.sort((x, y) => {
      for (let i = 0; i < n.kid.length; i++) {
        const d = (x[1].kid[i] ^ n.kid[i]) - (y[1].kid[i] ^ n.kid[i]);
        if (d) return d;
      }
      return 0;
    });
    for (const [, m] of byDist.slice(0, Math.ceil(DEGREE / 2))) join(n, m);
    for (const list of buckets.values()) join(n, pick(list));
  }
}
for (const n of nodes) {
  while (TOPOLOGY !== 'kademlia' && n.nbrs.size < DEGREE) {
    const m = pick(nodes);
    if (m !== n) {
      n.nbrs.add(m);
      m.nbrs.add(n);
    }
  }
}
let frames = 0;
const handle = (from, to) => ({
  nodeId: to.identity.nodeId,
  send: async (f) => {
    if (!from.online || !to.online) throw new Error('link down');
    frames++;
    setImmediate(() => to.online && void to.g.onFrame(handle(to, from), f).catch(() => {}));
  },
});
const linkUp = (a, b) => {
  if (!a.online || !b.online) return;
  a.g.addLink(handle(a, b));
  b.g.addLink(handle(b, a));
};
const goOffline = (n) => {
  n.online = false;
  for (const m of n.nbrs) {
    m.g.removeLink(n.identity.nodeId);
    n.g.removeLink(m.identity.nodeId);
  }
};
const goOnline = (n) => {
  n.online = true;
  for (const m of n.nbrs) linkUp(n, m);
};
for (const n of nodes) for (const m of n.nbrs) if (n.i < m.i) linkUp(n, m);
for (const n of nodes) if (rnd() < CHURN) goOffline(n);

const delivered = new Map(); // item id → round
const receipted = new Set();
for (const n of nodes) {
  n.g.on('message', (e) => {
    if (!delivered.has(e.item.id)) delivered.set(e.item.id, round);
    void n.g.receipt({ nodeId: e.from, publicKey: e.publicKey }, [e.item.id]).catch(() => {});
  });
  n.g.on('receipt', (e) => {
    for (const id of e.ids) receipted.add(id);
  });
}
const setupMs = performance.now() - t0;
let round = 0;
const sent = [];
const perRound = Math.ceil(MESSAGES / Math.max(1, Math.floor(ROUNDS / 3)));
let syncBytes = 0;
let syncRounds = 0;
let syncs = 0;
for (round = 0; round < ROUNDS; round++) {
  simNow += ROUND_MS;
  // churn: a tenth of the online ones leave, as many offline ones return
  const online = nodes.filter((n) => n.online);
  const offline = nodes.filter((n) => !n.online);
  const k = Math.floor(online.length / 10);
  for (let j = 0; j < k; j++) goOffline(pick(online));
  for (let j = 0; j < k && offline.length > 0; j++) {
    const n = pick(offline);
    if (!n.online) goOnline(n);
  }
  // messages in the first third of the rounds, from online nodes
  if (sent.length < MESSAGES) {
    for (let j = 0; j < perRound && sent.length < MESSAGES; j++) {
      const src = pick(nodes.filter((n) => n.online));
      let dst = pick(nodes);
      while (dst === src) dst = pick(nodes);
      const id = `m:${sent.length}`;
      sent.push({ id, src, dst, round, reachable: false });
      await src.g.submit({ nodeId: dst.identity.nodeId, publicKey: dst.identity.publicKey }, { id, body: { n: sent.length } });
    }
  }
  if (RESEND > 0) {
    for (const n of nodes) if (n.online) await n.g.resend();
  }
  await settle();
  // a destination online at the end of a round after its message was sent could have taken it
  for (const s of sent) {
    if (s.dst.online && s.round < round) s.reachable = true;
    if (s.dst.online && s.round < round) s.onlineRounds = (s.onlineRounds ?? 0) + 1;
  }
  if (SYNC_EVERY > 0 && round % SYNC_EVERY === SYNC_EVERY - 1) {
    for (const n of nodes.filter((x) => x.online)) {
      const r = await n.g.sync().catch(() => undefined);
      if (r) {
        syncs++;
        syncBytes += r.bytes;
        syncRounds += r.rounds;
      }
    }
    await settle();
  }
}
await settle();
const sum = (name) => nodes.reduce((a, n) => a + (n.g.counters.get(name) ?? 0), 0);
const storedCopies = sum('gossip_stored');
const transmissions = sum('gossip_copies_sent') + sum('gossip_sync_sent');
const storeBytes = nodes.reduce((a, n) => a + n.g.store.bytes, 0);
const storeCount = nodes.reduce((a, n) => a + n.g.store.size, 0);
const d = delivered.size;
const result = {
  N,
  TOPOLOGY,
  REPLICAS,
  DEGREE,
  mean_links: +(nodes.reduce((a, n) => a + n.nbrs.size, 0) / N).toFixed(1),
  CHURN,
  MESSAGES,
  ROUNDS,
  SYNC_EVERY,
  FANOUT,
  MAX_HOPS,
  RESEND,
  delivery_ratio: +(d / MESSAGES).toFixed(3),
  // among messages whose destination was online for at least one round end after the send
  delivery_ratio_reachable: +(
    sent.filter((s) => s.reachable && delivered.has(s.id)).length / Math.max(1, sent.filter((s) => s.reachable).length)
  ).toFixed(3),
  reachable: sent.filter((s) => s.reachable).length,
  receipts_back_ratio: +(receipted.size / MESSAGES).toFixed(3),
  stored_copies_per_delivered: +(storedCopies / Math.max(1, d)).toFixed(1),
  transmissions_per_delivered: +(transmissions / Math.max(1, d)).toFixed(1),
  frames_total: frames,
  syncs,
  sync_bytes_mean: syncs ? Math.round(syncBytes / syncs) : 0,
  sync_round_trips_mean: syncs ? +(syncRounds / syncs).toFixed(2) : 0,
  refused_replayed: sum('gossip_refused_replayed'),
  dropped_by_receipt: sum('gossip_dropped_by_receipt'),
  handed_off: sum('gossip_handed_off'),
  catch_up_handoffs: sum('gossip_handoffs'),
  copies_sent: sum('gossip_copies_sent'),
  sync_sent: sum('gossip_sync_sent'),
  duplicates: sum('gossip_duplicates'),
  resent: sum('gossip_resent'),
  holders_replaced: sum('gossip_holders_replaced'),
  dropped_at_destination: sum('gossip_dropped_at_destination'),
  store_messages_end: storeCount,
  store_bytes_end: storeBytes,
  setup_ms: Math.round(setupMs),
  total_ms: Math.round(performance.now() - t0),
};
console.log(JSON.stringify(result));
if (process.env.TRACE) {
  // Why a message whose destination was online after the send was not delivered: who still holds it
  // (online or not, linked to the destination or not, its rank among all nodes by distance to it).
  for (const m of sent.filter((x) => x.reachable && !delivered.has(x.id))) {
    const entry = [...m.src.g.store.entries()].find((e) => e.destination === m.dst.identity.nodeId && e.kind === 'msg');
    const hex = entry?.hex;
    const dk = kademliaIdOf(m.dst.identity.nodeId);
    const rankOf = (n) => {
      const k = kademliaIdOf(n.identity.nodeId);
      return nodes.filter((o) => o !== m.dst && Buffer.compare(xor(kademliaIdOf(o.identity.nodeId), dk), xor(k, dk)) < 0).length;
    };
    const holders = [];
    for (const n of hex ? nodes.filter((x) => x.g.store.has(hex)) : []) {
      const hops = (await n.g.store.get(hex))?.hops;
      holders.push({ rank: rankOf(n), online: n.online, linked_to_dst: n.nbrs.has(m.dst), src: n === m.src, hops });
    }
    console.log(
      JSON.stringify({
        miss: m.id,
        sent_round: m.round,
        dst_online_rounds: m.onlineRounds ?? 0,
        dst_online_now: m.dst.online,
        src_online_now: m.src.online,
        src_holds: hex !== undefined,
        holders,
      }),
    );
  }
}
for (const n of nodes) await n.g.stop();
