// The Duplex over a werift data channel: bytes arrive intact and in order, and a fast writer is
// held back by bufferedAmount (write() returns false, the buffer never grows past the mark).
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { DataChannelStream } from '@dpc/webrtc-hub';
import { afterAll, expect, it } from 'vitest';
import { type RTCDataChannel, RTCPeerConnection } from 'werift';

const pcs: RTCPeerConnection[] = [];
afterAll(async () => {
  await Promise.all(pcs.map((pc) => pc.close().catch(() => {})));
});

async function channelPair(): Promise<[RTCDataChannel, RTCDataChannel]> {
  const cfg = { iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'], iceUseIpv6: false };
  const a = new RTCPeerConnection(cfg);
  const b = new RTCPeerConnection(cfg);
  pcs.push(a, b);
  a.onIceCandidate.subscribe((c) => c && b.addIceCandidate(c).catch(() => {}));
  b.onIceCandidate.subscribe((c) => c && a.addIceCandidate(c).catch(() => {}));
  const dc = a.createDataChannel('t', { ordered: true });
  const remote = new Promise<RTCDataChannel>((r) => b.onDataChannel.subscribe(r));
  const opened = new Promise<void>((r) => dc.stateChanged.subscribe((s) => s === 'open' && r()));
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription as never);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription as never);
  await opened;
  return [dc, await remote];
}

it('DataChannelStream: 2 MiB arrive intact; writes wait while bufferedAmount is above the high-water mark', async () => {
  const [x, y] = await channelPair();
  const high = 64 * 1024;
  const writer = new DataChannelStream(x, { highWaterBytes: high, lowWaterBytes: 16 * 1024 });
  const reader = new DataChannelStream(y);
  const want = createHash('sha256');
  const got = createHash('sha256');
  const total = 2 * 1024 * 1024;
  let received = 0;
  const done = new Promise<void>((resolve) =>
    reader.on('data', (c: Buffer) => {
      got.update(c);
      received += c.length;
      if (received === total) resolve();
    }),
  );
  let maxBuffered = 0;
  let heldBack = 0;
  const piece = 32 * 1024;
  for (let sent = 0; sent < total; sent += piece) {
    const c = randomBytes(piece);
    want.update(c);
    const ok = writer.write(c);
    maxBuffered = Math.max(maxBuffered, writer.bufferedAmount);
    if (!ok) {
      heldBack++;
      await once(writer, 'drain');
    }
  }
  await done;
  expect(got.digest('hex')).toBe(want.digest('hex'));
  expect(heldBack).toBeGreaterThan(0);
  // A write is taken while the buffer is at or below the mark, so it never holds more than the
  // mark plus one write (without backpressure it would hold all 2 MiB).
  expect(maxBuffered).toBeLessThanOrEqual(high + piece);
  writer.end();
  await once(reader, 'close');
});
