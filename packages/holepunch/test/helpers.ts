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
export async function punchNode(net: Testnet, opts: Partial<HolePuncherOptions> & { tlsIdentity?: Identity } = {}): Promise<PunchNode> {
  const identity = generateIdentity();
  const dht = await net.add({ identity });
  const counters = new Counters();
  const incoming: Connection[] = [];
  const hp = createHolePuncher({
    identity: opts.tlsIdentity ?? identity,
    dht,
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
