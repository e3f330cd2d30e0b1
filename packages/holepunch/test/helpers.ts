import type { TierDht } from '@dpc/core';
import { type Connection, Counters, generateIdentity, type Identity } from '@dpc/core';
import type { Dht } from '@dpc/dht';
import { createTestnet, type Testnet } from '@dpc/dht/testnet';
import { createHolePuncher, type HolePuncher, type HolePuncherOptions } from '@dpc/holepunch';

export interface PunchNode {
  dht: Dht;
  hp: HolePuncher;
  counters: Counters;
  incoming: Connection[];
}

/** A DHT node on the testnet running a hole puncher that publishes its NAT verdict in its endpoint record. */
export async function punchNode(
  net: Testnet,
  { wrapDht, ...opts }: Partial<HolePuncherOptions> & { tlsIdentity?: Identity; wrapDht?: (d: Dht) => TierDht } = {},
): Promise<PunchNode> {
  const identity = generateIdentity();
  const dht = await net.add({ identity });
  const counters = new Counters();
  const incoming: Connection[] = [];
  const hp = createHolePuncher({
    identity: opts.tlsIdentity ?? identity,
    dht: wrapDht ? wrapDht(dht) : dht,
    counters,
    timeoutMs: 4_000,
    allowLocal: true,
    discoveryTimeoutMs: 1_000,
    keepaliveMs: 500,
    pathLostMs: 2_000,
    onNat: (v) => {
      dht.setEndpointBody({
        ...dht.endpointBody(),
        nat_type: v.type,
        punch: v.endpoint ? [v.endpoint] : [],
        accepts_punch: v.type !== 'blocked' && v.endpoint !== undefined,
      });
    },
    onIncoming: (c) => incoming.push(c),
    ...opts,
  });
  hp.start();
  return { dht, hp, counters, incoming };
}

/** Measures the NAT, publishes and announces the record. */
export async function ready(n: PunchNode): Promise<void> {
  await n.hp.measureNat({ signal: AbortSignal.timeout(5_000) });
  await n.dht.announceFull({ signal: AbortSignal.timeout(5_000) });
}

export async function testnet(): Promise<Testnet> {
  return createTestnet(6, { announce: true });
}

export async function waitUntil(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The DHT as a 0.1.0 hole puncher saw it: its signal schema refused unknown fields, so an offer
 * carrying `via` (added in 0.2.0) was dropped (counted in `dropped`). Everything else passes.
 */
export function as010Responder(dht: Dht): { dht: TierDht; dropped: () => number } {
  let dropped = 0;
  const wrapped = new Map<unknown, (e: { from: string; payload: unknown }) => void>();
  const proxy = new Proxy(dht, {
    get(target, key) {
      if (key === 'on')
        return (event: string, fn: (e: { from: string; payload: unknown }) => void) => {
          if (event !== 'signal') return target.on(event as 'signal', fn);
          const w = (e: { from: string; payload: unknown }) => {
            if (typeof e.payload === 'object' && e.payload !== null && 'via' in e.payload) {
              dropped++;
              return;
            }
            fn(e);
          };
          wrapped.set(fn, w);
          return target.on('signal', w);
        };
      if (key === 'off')
        return (event: string, fn: (e: { from: string; payload: unknown }) => void) =>
          target.off(event as 'signal', (event === 'signal' ? wrapped.get(fn) : undefined) ?? fn);
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { dht: proxy as unknown as TierDht, dropped: () => dropped };
}
