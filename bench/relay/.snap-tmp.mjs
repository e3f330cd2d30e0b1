// Opens N idle relayed sessions and writes relay heap snapshots before/after (run from bench/relay dir copy)
import { once } from 'node:events';
import { generateIdentity } from '@dpc/core';
import { createRelayClient } from '@dpc/relay';
import { startRelay } from '/work/wt-perf3/bench/relay/dpc.mjs';
const n = Number(process.argv[2] ?? 1000);
const relay = await startRelay();
const snap = async (f) => { relay.child ?? 0; };
const ref = relay.ref;
const pairs = [];
for (let p = 0; p < 20; p++) {
  const ib = generateIdentity(); const bob = createRelayClient({ identity: ib });
  await bob.reserve({ relays: [ref] }); bob.on('incoming', () => {});
  const alice = createRelayClient({ identity: generateIdentity() });
  await alice.connect(ib.nodeId, { relays: [ref] });
  pairs.push({ ib, bob, alice });
}
await relay.snapshot('/tmp/perf3/s0.heapsnapshot');
await Promise.all(pairs.map(async ({ ib, alice }) => { for (let k = 0; k < n / 20; k++) await alice.connect(ib.nodeId, { relays: [ref] }); }));
await new Promise((r) => setTimeout(r, 500));
await relay.snapshot('/tmp/perf3/s1.heapsnapshot');
await Promise.all(pairs.flatMap((p) => [p.bob.stop(), p.alice.stop()]));
await relay.stop();
