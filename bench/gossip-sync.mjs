#!/usr/bin/env node
// Anti-entropy sync cost of @dpc/gossip's Negentropy (NIP-77 v1) reconciliation: N items per side
// (default 100k, timestamps spread over 30 days), bytes in each direction and round trips against
// the number of differences, and the time of a whole sync (medians of ROUNDS runs, both sides in
// one process, no network). Three shapes of difference: `random` = spread over the whole history
// and split between both sides; `missed` = the responder's newest items that the initiator lacks
// (a peer coming back online pulls); `ahead` = the initiator's newest items that the responder
// lacks (it pushes); `diverged` = both sides added d/2 new items each while apart (the newest
// items, interleaved in time: two peers that were partitioned). Every run checks that have/need are exactly the differences. Side by side:
// the same sync driven by nostr-tools' NIP-77 initiator (an independent implementation of the
// same protocol, hex strings, O(range) fingerprints) against our responder.
// Run: npm run build && node bench/gossip-sync.mjs
// ENGINE=1: instead, whole anti-entropy syncs between two @dpc/gossip engines (`gossip.sync()`,
// in-process link) holding ENGINE_N shared stored messages: in sync, and with ENGINE_DIFFS
// messages only on each side (fresh engines per run); time per sync and Negentropy sets built.
// GOSSIP_DIST=<dir> runs it against another build of @dpc/gossip (before/after comparisons).
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { nip77 } from 'nostr-tools';
import { Negentropy, NegentropyStorage } from '../packages/gossip/dist/index.js';

async function engineBench() {
  const core = await import('../packages/core/dist/index.js');
  const gossipDist = process.env.GOSSIP_DIST || new URL('../packages/gossip/dist/', import.meta.url).pathname;
  const { createGossip, createMessage } = await import(`${gossipDist.replace(/\/$/, '')}/index.js`);
  const n = Number(process.env.ENGINE_N ?? 5000);
  const d = Number(process.env.ENGINE_DIFFS ?? 50);
  const runs = Number(process.env.ROUNDS ?? 5);
  const src = core.generateIdentity();
  const dst = core.generateIdentity();
  const make = () =>
    createMessage(src, {
      destination: dst.nodeId,
      destinationKey: dst.publicKey,
      plaintext: Buffer.from('x'),
      maxHops: 0,
      ttlSeconds: 86_400,
      priority: 'normal',
      vectorClock: {},
    });
  const t0 = performance.now();
  const shared = Array.from({ length: n }, make);
  const onlyA = Array.from({ length: d }, make);
  const onlyB = Array.from({ length: d }, make);
  const setupMs = performance.now() - t0;
  const limits = { maxOriginCount: 1_000_000, maxOriginBytes: 1 << 30, maxCount: 1_000_000, maxBytes: 1 << 30 };
  // Stored after the link is up (a new link's catch-up would otherwise read the whole store meanwhile).
  const engine = async () => {
    const g = await createGossip({
      identity: core.generateIdentity(),
      store: core.memoryKvStore(),
      limits,
      cleanupIntervalMs: 0,
      syncIntervalMs: 0,
      redeliverIntervalMs: 0,
      resendIntervalMs: 0,
    });
    return g;
  };
  const fill = async (g, msgs) => {
    for (const m of msgs) await g.store.put(m);
  };
  const link = (a, b) => {
    const ab = { nodeId: b.nodeId, send: async (f) => void setImmediate(() => void b.onFrame(ba, f)) };
    const ba = { nodeId: a.nodeId, send: async (f) => void setImmediate(() => void a.onFrame(ab, f)) };
    a.addLink(ab);
    b.addLink(ba);
  };
  const built = (g) => g.counters.get('gossip_sync_storage_built') ?? 'n/a';
  // in sync: the periodic anti-entropy round of two peers that already agree
  const a = await engine();
  const b = await engine();
  link(a, b);
  await fill(a, shared);
  await fill(b, shared);
  await a.sync(b.nodeId);
  const inSync = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    const r = await a.sync(b.nodeId);
    inSync.push(performance.now() - t);
    if (r.have !== 0 || r.need !== 0) throw new Error('not in sync');
  }
  const inSyncBuilt = { a: built(a), b: built(b) };
  await a.stop();
  await b.stop();
  // d differences on each side, fresh engines per run
  const diff = [];
  let rounds = 0;
  let diffBuilt;
  for (let i = 0; i < runs; i++) {
    const x = await engine();
    const y = await engine();
    link(x, y);
    await fill(x, [...shared, ...onlyA]);
    await fill(y, [...shared, ...onlyB]);
    const t = performance.now();
    const r = await x.sync(y.nodeId);
    diff.push(performance.now() - t);
    if (r.have !== d || r.need !== d) throw new Error(`have ${r.have} need ${r.need}`);
    rounds = r.rounds;
    diffBuilt = { a: built(x), b: built(y) };
    await x.stop();
    await y.stop();
  }
  console.log(
    JSON.stringify({
      bench: 'gossip engine anti-entropy',
      gossip: gossipDist,
      n,
      diffs_each_side: d,
      runs,
      setup_ms: Math.round(setupMs),
      in_sync_ms_median: +median(inSync).toFixed(1),
      in_sync_sets_built_after_runs: inSyncBuilt,
      diff_ms_median: +median(diff).toFixed(1),
      diff_rounds: rounds,
      diff_sets_built_per_sync: diffBuilt,
    }),
  );
}

const N = Number(process.env.N ?? 100_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const DIFFS = (process.env.DIFFS ?? '0,1,10,100,1000,10000').split(',').map(Number);
const FRAME = Number(process.env.FRAME ?? 0);
const T0 = 1_760_000_000;
const SPAN = 30 * 24 * 3600;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
if (process.env.ENGINE) {
  await engineBench();
  process.exit(0);
}

let seq = 0;
const rand = (i) => createHash('sha256').update(`ts-${i}`).digest().readUInt32LE(0) / 2 ** 32;
function item() {
  const i = seq++;
  return { timestamp: T0 + Math.floor(rand(i) * SPAN), id: new Uint8Array(createHash('sha256').update(`id-${i}`).digest()) };
}

function sync(a, b) {
  const opts = FRAME ? { frameSizeLimit: FRAME } : {};
  const ini = new Negentropy(a, opts);
  const resp = new Negentropy(b, opts);
  let out = 0;
  let back = 0;
  let rounds = 0;
  let have = 0;
  let need = 0;
  let msg = ini.initiate();
  while (msg) {
    out += msg.length;
    const reply = resp.respond(msg);
    back += reply.length;
    rounds++;
    const r = ini.reconcile(reply);
    have += r.have.length;
    need += r.need.length;
    msg = r.output;
  }
  return { out, back, rounds, have, need };
}

function scenario(d, shape) {
  seq = 0;
  let shared;
  let onlyA = [];
  let onlyB = [];
  if (shape === 'random') {
    const nA = Math.ceil(d / 2);
    shared = Array.from({ length: N - nA }, item);
    onlyA = Array.from({ length: nA }, item);
    onlyB = Array.from({ length: d - nA }, item);
  } else {
    shared = Array.from({ length: N - d }, item);
    const newest = Array.from({ length: d }, () => ({ ...item(), timestamp: T0 + SPAN + seq }));
    if (shape === 'missed') onlyB = newest;
    else if (shape === 'ahead') onlyA = newest;
    else {
      onlyA = newest.filter((_, i) => i % 2 === 0);
      onlyB = newest.filter((_, i) => i % 2 === 1);
    }
  }
  const itemsA = [...shared, ...onlyA];
  const t = performance.now();
  const a = NegentropyStorage.from(itemsA);
  const buildMs = performance.now() - t;
  const b = NegentropyStorage.from([...shared, ...onlyB]);
  const theirs = new nip77.NegentropyStorageVector();
  for (const it of itemsA) theirs.insert(it.timestamp, Buffer.from(it.id).toString('hex'));
  theirs.seal();
  return { a, b, theirs, buildMs, expectHave: onlyA.length, expectNeed: onlyB.length };
}

/** nostr-tools initiator (its default 60 000-byte frame limit) against our responder. */
function syncTheirs(theirs, b) {
  const ini = new nip77.Negentropy(theirs);
  const resp = new Negentropy(b);
  let have = 0;
  let need = 0;
  let rounds = 0;
  let msg = ini.initiate();
  while (msg) {
    const reply = resp.respond(Buffer.from(msg, 'hex'));
    rounds++;
    msg = ini.reconcile(
      Buffer.from(reply).toString('hex'),
      () => have++,
      () => need++,
    );
  }
  return { have, need, rounds };
}

console.log(`N=${N} items per side, ROUNDS=${ROUNDS}, frameSizeLimit=${FRAME || 'none'}, node ${process.version}`);
console.log(
  '| differences | shape | → bytes | ← bytes | total bytes | bytes / difference | round trips | sync ms, ours (median) | sync ms, nostr-tools initiator (median) | nostr-tools / ours | seal ms (one build) |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const shape of (process.env.SHAPES ?? 'random,missed,ahead,diverged').split(',')) {
  for (const d of DIFFS) {
    const s = scenario(d, shape);
    const times = [];
    const theirTimes = [];
    let r;
    for (let i = 0; i < ROUNDS; i++) {
      let t = performance.now();
      r = sync(s.a, s.b);
      times.push(performance.now() - t);
      t = performance.now();
      const x = syncTheirs(s.theirs, s.b);
      theirTimes.push(performance.now() - t);
      if (x.have !== s.expectHave || x.need !== s.expectNeed) throw new Error(`nostr-tools initiator: wrong result for d=${d} ${shape}`);
    }
    if (r.have !== s.expectHave || r.need !== s.expectNeed) {
      throw new Error(`wrong result for d=${d} ${shape}: have ${r.have}/${s.expectHave}, need ${r.need}/${s.expectNeed}`);
    }
    const ours = median(times);
    const theirsMs = median(theirTimes);
    const total = r.out + r.back;
    const perDiff = d === 0 ? '' : (total / d).toFixed(1);
    console.log(
      `| ${d} | ${shape} | ${r.out} | ${r.back} | ${total} | ${perDiff} | ${r.rounds} | ${ours.toFixed(1)} | ${theirsMs.toFixed(1)} | ${(theirsMs / ours).toFixed(0)}× | ${s.buildMs.toFixed(0)} |`,
    );
  }
}
