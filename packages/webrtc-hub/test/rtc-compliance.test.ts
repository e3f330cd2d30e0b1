// Tier 3 against the shared Strategy compliance suite of @dpc/core: werift peers on loopback,
// signalled through real WebSocket relays. The wrong-peer case needs a relay that lies: it
// delivers offers for X to Y and presents Y's replies as X's.
import { Counters, createRecord, type EndpointBody, emptyEndpointBody, generateIdentity, type Identity } from '@dpc/core';
import { strategyCompliance } from '@dpc/core/compliance';
import { createRtcPeer, hubWebRtcStrategy, type RtcPeer } from '@dpc/webrtc-hub';
import { type Relay, type RelaySignaller, relaySignaller, startRelay } from './rtc-relay.js';

const TIMEOUT_MS = 3000;
const record = (who: Identity, body: Partial<EndpointBody>) =>
  createRecord(who, { kind: 'endpoint', body: { ...emptyEndpointBody(), ...body } });

strategyCompliance('hub_webrtc', async () => {
  const [alice, bob, x, y, silent] = Array.from({ length: 5 }, () => generateIdentity());
  if (!alice || !bob || !x || !y || !silent) throw new Error('identities');
  const relay: Relay = await startRelay({
    tamper: (m) => {
      if (m.to === x.nodeId) return { ...m, to: y.nodeId };
      if (m.from === y.nodeId) return { ...m, from: x.nodeId };
      return m;
    },
  });
  const signallers: RelaySignaller[] = [];
  const peers: RtcPeer[] = [];
  const peer = async (id: Identity, answer = true) => {
    const s = await relaySignaller(relay.url, id.nodeId);
    signallers.push(s);
    if (!answer) return undefined;
    const p = createRtcPeer({
      identity: id,
      signaller: s,
      additionalHostAddresses: ['127.0.0.1'],
      timeoutMs: TIMEOUT_MS,
      counters: new Counters(),
    });
    p.on('connection', () => {});
    peers.push(p);
    return p;
  };
  const a = (await peer(alice)) as RtcPeer;
  await peer(bob);
  await peer(y);
  await peer(silent, false);
  const hub = relay.url;
  return {
    strategy: hubWebRtcStrategy({ peer: a }),
    timeoutMs: TIMEOUT_MS,
    network: { hubConnected: true },
    reachable: record(bob, { hub }),
    misdirected: record(x, { hub }),
    silent: record(silent, { hub }),
    notApplicable: record(bob, { hub: null }),
    async close() {
      await Promise.all(peers.map((p) => p.stop()));
      for (const s of signallers) s.close();
      await relay.close();
    },
  };
});
