// Tier 4 against the shared Strategy compliance suite of @dpc/core, over real DHT nodes on loopback.
// Wrong peer: node X answers punch requests but proves identity Y in TLS. Silent: a DHT node that
// publishes a punch endpoint and never answers the punch request.
import { createRecord, emptyEndpointBody, generateIdentity } from '@dpc/core';
import { strategyCompliance } from '@dpc/core/compliance';
import { holePunchStrategy } from '@dpc/holepunch';
import { type PunchNode, punchNode, ready, testnet } from './helpers.js';

const TIMEOUT_MS = 3_000;

strategyCompliance('udp_hole_punch', async () => {
  const net = await testnet();
  const nodes: PunchNode[] = [];
  try {
    const a = await punchNode(net, { timeoutMs: TIMEOUT_MS });
    const b = await punchNode(net, { timeoutMs: TIMEOUT_MS });
    const liar = await punchNode(net, { timeoutMs: TIMEOUT_MS, tlsIdentity: generateIdentity() });
    nodes.push(a, b, liar);
    await Promise.all(nodes.map(ready));
    const silent = await net.add({ identity: generateIdentity() });
    const port = silent.address?.port as number;
    silent.setEndpointBody({ ...emptyEndpointBody(), nat_type: 'none', punch: [{ ip: '127.0.0.1', port }], accepts_punch: true });
    await silent.announceFull({ signal: AbortSignal.timeout(5_000) });
    const find = (id: string) => a.dht.findPeer(id, { signal: AbortSignal.timeout(5_000) });
    const other = generateIdentity();
    return {
      strategy: holePunchStrategy(a.hp),
      timeoutMs: TIMEOUT_MS,
      network: { hubConnected: false, natType: 'none' },
      reachable: await find(b.dht.nodeId),
      misdirected: await find(liar.dht.nodeId),
      silent: await find(silent.nodeId),
      // Issued 10 minutes ago: a young record without accepts_punch may predate the peer's NAT
      // verdict and is looked up again (test/fresh-record.test.ts); an old one rules tier 4 out.
      notApplicable: createRecord(other, {
        kind: 'endpoint',
        body: { ...emptyEndpointBody(), nat_type: 'cone' },
        now: Date.now() - 10 * 60_000,
      }),
      close: async () => {
        for (const n of nodes) await n.hp.stop();
        await net.destroy();
      },
    };
  } catch (err) {
    for (const n of nodes) await n.hp.stop();
    await net.destroy();
    throw err;
  }
});
