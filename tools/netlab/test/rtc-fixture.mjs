// Tier-3 lab fixture, one process per lab host (run with `ip netns exec`):
//   node rtc-fixture.mjs relay <ip> <port>                     a tiny WebSocket signalling relay
//   node rtc-fixture.mjs answer <relayUrl> <iceJson>            a node that accepts and echoes
//   node rtc-fixture.mjs call <relayUrl> <iceJson> <nodeId> [stepTimeoutMs]   connects, sends, waits for the echo
// The identity comes from DPC_IDENTITY_PEM; each event is printed as one JSON line.
import { once } from 'node:events';
import { identityFromPem } from '@dpc/core';
import { createRtcPeer } from '@dpc/webrtc-hub';
import { WebSocket, WebSocketServer } from 'ws';

const [mode, ...args] = process.argv.slice(2);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

if (mode === 'relay') {
  const [host, port] = args;
  const wss = new WebSocketServer({ host, port: Number(port), maxPayload: 64 * 1024 });
  const clients = new Map();
  wss.on('connection', (ws, req) => {
    const id = new URL(req.url ?? '/', 'http://x').searchParams.get('id') ?? '';
    clients.set(id, ws);
    ws.on('close', () => clients.get(id) === ws && clients.delete(id));
    ws.on('error', () => {});
    ws.on('message', (data) => {
      try {
        const m = JSON.parse(String(data));
        clients.get(m.to)?.send(JSON.stringify({ from: id, payload: m.payload }));
      } catch {}
    });
  });
  await once(wss, 'listening');
  out({ event: 'listening' });
} else {
  const [url, iceJson, target, stepMs] = args;
  const identity = identityFromPem(process.env.DPC_IDENTITY_PEM);
  const ws = new WebSocket(`${url}/?id=${identity.nodeId}`);
  await once(ws, 'open');
  const fns = new Set();
  ws.on('message', (d) => {
    const m = JSON.parse(String(d));
    for (const fn of fns) fn(m);
  });
  const signaller = {
    send: (to, payload) => new Promise((res, rej) => ws.send(JSON.stringify({ to, payload }), (e) => (e ? rej(e) : res()))),
    on: (_e, fn) => fns.add(fn),
    off: (_e, fn) => fns.delete(fn),
  };
  const peer = createRtcPeer({
    identity,
    signaller,
    iceServers: JSON.parse(iceJson),
    timeoutMs: 40_000,
    ...(stepMs && { stepTimeoutMs: Number(stepMs) }),
  });
  peer.on('refused', (e) => out({ event: 'refused', ...e }));
  if (mode === 'answer') {
    peer.on('connection', (conn, info) => {
      out({ event: 'accepted', from: conn.remoteNodeId, pair: info.pair });
      conn.on('message', (m) => conn.send({ echo: m }).catch(() => {}));
      conn.on('error', () => {});
    });
    out({ event: 'ready', nodeId: identity.nodeId });
  } else {
    const t0 = performance.now();
    try {
      const conn = await peer.connect(target, { signal: AbortSignal.timeout(45_000) });
      const ms = performance.now() - t0;
      const echo = once(conn, 'message');
      await conn.send({ text: 'hello over tier 3' });
      const [reply] = await echo;
      out({ event: 'connected', ms, pair: conn.rtc?.pair, reply, remote: conn.remoteNodeId });
      await conn.close();
    } catch (err) {
      out({ event: 'failed', code: err.code, message: err.message, ms: performance.now() - t0 });
    }
    await peer.stop();
    ws.terminate();
    process.exit(0);
  }
}
