// One system under test of the relay benchmark (relay.mjs): its paths, opened in this process,
// and one measurement at a time. `dpc`: a direct secure connection and one through dpc's relay
// (in a process of its own, relay-child.mjs). `libp2p`: js-libp2p circuit relay v2 (its relay in
// this process unless `libp2pRelayProcess`). relay.mjs runs each system in a process of its own
// (system-child.mjs), so neither measures the other's heap, timers or the code paths it warmed.
import { directPair, idleSessions, latency, relayedPair, settle, startRelay, throughput } from './dpc.mjs';

export const BULK = { count: 2000, size: 16 * 1024 }; // 32 MB
export const SMALL = { count: 20_000, size: 100 };
const MB = (BULK.count * BULK.size) / 1e6;

// This process's CPU time so far, µs.
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/**
 * Opens the system's paths and warms each up (both kinds, so no path's first round runs cold).
 * Returns { paths: names, measure(i, kind), idle(n), close() }.
 */
export async function openSystem(kind, { libp2pRelayProcess = false } = {}) {
  const paths = [];
  let relay;
  if (kind === 'dpc') {
    paths.push({ name: 'dpc direct (TLS 1.3 over TCP)', pair: await directPair() });
    relay = await startRelay();
    paths.push({ name: 'dpc via volunteer relay', pair: await relayedPair(relay.ref), relayCpuUs: relay.cpu });
  } else {
    const { libp2pPair } = await import('./libp2p.mjs');
    const open = () => libp2pPair({ ownProcess: libp2pRelayProcess });
    const pair = await open();
    paths.push({ name: 'js-libp2p circuit relay v2 (TCP+noise+yamux)', pair, relayCpuUs: pair.relay.cpu, reopen: open });
  }
  for (const p of paths) {
    await throughput(p.pair.a, p.pair.b, BULK);
    await throughput(p.pair.a, p.pair.b, SMALL);
  }

  // A measurement that fails (a libp2p stream was seen to stall for good now and then) gives
  // NaN and the failure; the path's pair is opened afresh when it can be.
  async function attempt(p, what, measure) {
    try {
      return {
        value: await Promise.race([
          measure(),
          new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 60 s')), 60_000).unref()),
        ]),
      };
    } catch (err) {
      const failure = `${p.name}: ${what}: ${err?.message ?? err}`;
      if (p.reopen) {
        p.pair.close().catch(() => {});
        p.pair = await p.reopen();
        if (p.pair.relay) p.relayCpuUs = p.pair.relay.cpu;
      }
      return { value: Number.NaN, failure };
    }
  }

  return {
    paths: paths.map((p) => p.name),
    /**
     * One measurement of path `i` from a quiet process (settle()): `bulk` (MB/s, with the CPU
     * ms per MB of this process, which holds both peers, and of the relay's own process),
     * `small` (msgs/s) or `rtt` (median ms).
     */
    async measure(i, what) {
      const p = paths[i];
      await settle();
      if (what === 'bulk') {
        const relayCpu = p.relayCpuUs ?? (async () => 0);
        const [c0, r0] = [cpuUs(), await relayCpu()];
        const r = await attempt(p, what, async () => (await throughput(p.pair.a, p.pair.b, BULK)).mbPerSec);
        const [c1, r1] = [cpuUs(), await relayCpu()];
        return { ...r, peersCpu: (c1 - c0) / 1000 / MB, relayCpu: (r1 - r0) / 1000 / MB };
      }
      if (what === 'small') return attempt(p, what, async () => (await throughput(p.pair.a, p.pair.b, SMALL)).msgsPerSec);
      return attempt(p, what, () => latency(p.pair.a, 100));
    },
    /** dpc: the relay's memory per idle spliced session with `n` sessions open. */
    async idle(n) {
      return relay ? idleSessions(relay, n) : undefined;
    },
    async close() {
      for (const p of paths) await p.pair.close();
      await relay?.stop();
    },
  };
}
