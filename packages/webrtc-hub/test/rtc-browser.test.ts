// A real browser as a tier-3 peer: headless Chromium (Debian's, through puppeteer-core) loads a
// page served by this test, makes its own Ed25519 identity with WebCrypto, exchanges signed
// DTLS fingerprints through the WebSocket relay and talks to a werift node over a data channel
// (dpc-msg/1), both directions; a relay that swaps the browser's fingerprint is refused.
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Connection, Counters, generateIdentity } from '@dpc/core';
import { createRtcPeer, type RtcOffer, type RtcPeer } from '@dpc/webrtc-hub';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Relay, type RelaySignaller, relaySignaller, startRelay } from './rtc-relay.js';

const CHROMIUM = '/usr/bin/chromium';
const ASSETS = new URL('./browser/', import.meta.url);

interface BrowserWindow {
  createBrowserPeer(relayUrl: string): Promise<BrowserWindow['peer']>;
  peer: { nodeId: string; call(t: string): Promise<Channel>; accept(): Promise<Channel> };
}
interface Channel {
  remote: string;
  send(d: unknown): void;
  next(): Promise<unknown>;
}

describe('a real browser (headless Chromium) as a tier-3 peer', () => {
  let http: Server;
  let base: string;
  let browser: Browser;
  let relay: Relay;
  let lying: Relay;
  const stops: Array<() => unknown> = [];

  beforeAll(async () => {
    http = createServer(async (req, res) => {
      const name = (req.url ?? '/').replace(/^\//, '').split('?')[0] ?? '';
      if (name !== 'peer.html' && name !== 'peer.js') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': name.endsWith('.js') ? 'text/javascript' : 'text/html' });
      res.end(await readFile(new URL(name, ASSETS)));
    }).listen(0, '127.0.0.1');
    await once(http, 'listening');
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    relay = await startRelay();
    lying = await startRelay({
      tamper: (m) => {
        const p = m.payload as RtcOffer;
        if (p.t !== 'rtc-offer') return m;
        return {
          ...m,
          payload: {
            ...p,
            sdp: p.sdp.replace(/a=fingerprint:sha-256 (\S{2})/, (_, b) => `a=fingerprint:sha-256 ${b === 'AA' ? 'BB' : 'AA'}`),
          },
        };
      },
    });
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      // mDNS-hidden host candidates (.local) cannot be resolved by werift in a test box.
      args: ['--no-sandbox', '--disable-features=WebRtcHideLocalIpsWithMdns'],
    });
  }, 60_000);

  afterAll(async () => {
    for (const s of stops.splice(0).reverse()) await s();
    await browser?.close();
    await relay?.close();
    await lying?.close();
    http?.close();
  });

  async function pageOn(r: Relay): Promise<{ page: Page; nodeId: string }> {
    const page = await browser.newPage();
    stops.push(() => page.close());
    await page.goto(`${base}/peer.html`);
    await page.waitForFunction(() => typeof (globalThis as unknown as BrowserWindow).createBrowserPeer === 'function');
    const nodeId = await page.evaluate(async (url) => {
      const w = globalThis as unknown as BrowserWindow;
      w.peer = await w.createBrowserPeer(url);
      return w.peer.nodeId;
    }, r.url);
    return { page, nodeId };
  }

  async function nodeOn(r: Relay): Promise<{ peer: RtcPeer; counters: Counters; nodeId: string }> {
    const identity = generateIdentity();
    const s: RelaySignaller = await relaySignaller(r.url, identity.nodeId);
    const counters = new Counters();
    // Each step may take its time with Chromium and other test files sharing two loaded cores.
    const peer = createRtcPeer({
      identity,
      signaller: s,
      counters,
      additionalHostAddresses: ['127.0.0.1'],
      timeoutMs: 40_000,
      stepTimeoutMs: 20_000,
    });
    stops.push(
      () => s.close(),
      () => peer.stop(),
    );
    return { peer, counters, nodeId: identity.nodeId };
  }

  it('the browser calls a node: signed fingerprints checked both ways, messages both ways', async () => {
    const { page, nodeId: browserId } = await pageOn(relay);
    expect(browserId).toMatch(/^dpc-node-[0-9a-f]{32}$/);
    const node = await nodeOn(relay);
    const accepted = once(node.peer, 'connection');
    const browserSide = page.evaluate(async (target) => {
      const ch = await (globalThis as unknown as BrowserWindow).peer.call(target);
      ch.send({ text: 'hello from chromium' });
      return { remote: ch.remote, reply: await ch.next() };
    }, node.nodeId);
    const [conn, info] = (await accepted) as [Connection, { proto: string }];
    expect(info.proto).toBe('dpc-msg/1');
    expect(conn.remoteNodeId).toBe(browserId);
    const [msg] = await once(conn, 'message');
    expect(msg).toEqual({ text: 'hello from chromium' });
    await conn.send({ text: 'hello from node' });
    expect(await browserSide).toEqual({ remote: node.nodeId, reply: { text: 'hello from node' } });
    expect(await conn.ping()).toBeGreaterThanOrEqual(0);
    await conn.close();
  });

  it('a node calls the browser: the browser verifies the node’s binding, answers, and echoes', async () => {
    const { page, nodeId: browserId } = await pageOn(relay);
    const node = await nodeOn(relay);
    const browserSide = page.evaluate(async () => {
      const ch = await (globalThis as unknown as BrowserWindow).peer.accept();
      const m = await ch.next();
      ch.send({ echo: m });
      return { remote: ch.remote, m };
    });
    browserSide.catch(() => {}); // awaited below; when the test fails first, the page closes under it
    const conn = await node.peer.connect(browserId, { proto: 'dpc-msg/1', signal: AbortSignal.timeout(40_000) });
    expect(conn.remoteNodeId).toBe(browserId);
    const reply = once(conn, 'message');
    await conn.send({ text: 'hi browser' });
    expect((await reply)[0]).toEqual({ echo: { text: 'hi browser' } });
    expect(await browserSide).toEqual({ remote: node.nodeId, m: { text: 'hi browser' } });
    await conn.close();
  }, 60_000);

  it('a relay that swaps the browser’s SDP fingerprint: the node refuses (DPC_RTC_FINGERPRINT_MISMATCH) and the browser is told', async () => {
    const { page } = await pageOn(lying);
    const node = await nodeOn(lying);
    const refused = once(node.peer, 'refused');
    const browserSide = page.evaluate(async (target) => {
      try {
        await (globalThis as unknown as BrowserWindow).peer.call(target);
        return 'connected';
      } catch (err) {
        return String((err as Error).message);
      }
    }, node.nodeId);
    expect((await refused)[0]).toMatchObject({ code: 'DPC_RTC_FINGERPRINT_MISMATCH' });
    expect(node.counters.get('rtc_refused_DPC_RTC_FINGERPRINT_MISMATCH')).toBe(1);
    expect(await browserSide).toContain('peer ended');
  });
});
