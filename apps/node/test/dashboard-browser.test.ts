import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { describe, expect, it } from 'vitest';
import { apiNode, eventsClient, launchChromium } from './dashboard-helpers.js';
import { apiClient, seedFrom, sendCli } from './harness.js';

const textOf = (page: Page, sel: string) => page.$eval(sel, (el) => el.textContent ?? '');

/**
 * Distinct colours and non-background pixels of a PNG, decoded by the browser itself (an
 * <img> drawn on a canvas in a blank page): a blank or broken screenshot has one colour.
 */
async function pngColours(browser: Browser, png: Uint8Array): Promise<{ width: number; height: number; colours: number; inked: number }> {
  const page = await browser.newPage();
  try {
    return await page.evaluate(async (b64: string) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
      ctx.drawImage(img, 0, 0);
      const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      const colours = new Set<number>();
      let inked = 0;
      const bg = ((data[0] ?? 0) << 16) | ((data[1] ?? 0) << 8) | (data[2] ?? 0);
      for (let i = 0; i < data.length; i += 4) {
        const c = ((data[i] ?? 0) << 16) | ((data[i + 1] ?? 0) << 8) | (data[i + 2] ?? 0);
        colours.add(c);
        if (c !== bg) inked++;
      }
      return { width: canvas.width, height: canvas.height, colours: colours.size, inked };
    }, Buffer.from(png).toString('base64'));
  } finally {
    await page.close();
  }
}

describe('dpc-node dashboard in a real headless Chromium', () => {
  it('shows the node live: sessions appear, the chart counts them, the send box delivers to the other node, the screenshot renders', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-dash-'));
    const a = await apiNode(root, 'a');
    const seed = seedFrom(a.dht);
    const b = await apiNode(root, 'b', seed);
    const atB = await eventsClient(b.api, b.token);

    const browser = await launchChromium();
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const consoleErrors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    const external: string[] = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.protocol !== 'data:' && u.host !== new URL(a.dashboard).host) external.push(r.url());
    });
    const res = await page.goto(`${a.dashboard}?token=${a.token}`, { waitUntil: 'load' });
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toMatch(/default-src 'none'; script-src 'self'/);
    await page.waitForFunction(() => document.getElementById('conn')?.textContent === 'live', { timeout: 20_000 });
    await page.waitForFunction((id: string) => document.getElementById('node-id')?.textContent === id, { timeout: 20_000 }, a.nodeId);
    expect(await textOf(page, '#addr-tcp')).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await textOf(page, '#nat')).not.toBe('…');
    expect(await textOf(page, '#dht-size')).toMatch(/^\d+ nodes known/);
    expect(await textOf(page, '#relay-volunteer')).toBe('no');

    // The send box: A → B. A reaches B itself (a new session), B acknowledges, B's API reports the message from A.
    await page.type('#send-to', b.nodeId);
    await page.type('#send-text', 'hello from the dashboard');
    await page.click('#send-button');
    await page.waitForFunction(
      () => /^delivered via ipv4_direct in \d+ ms$/.test(document.getElementById('send-result')?.textContent ?? ''),
      {
        timeout: 30_000,
      },
    );
    const got = await atB.next('message', (d) => d.text === 'hello from the dashboard');
    expect(got.from).toBe(a.nodeId);
    // the session appears with its tier and ack round trip; strategy_usage counts the connect and the chart shows it
    await page.waitForSelector(`tr[data-peer="${b.nodeId}"]`, { timeout: 10_000 });
    await page.waitForFunction(
      (id: string) => /^\d+ ms$/.test(document.querySelector(`tr[data-peer="${id}"] td:nth-child(4)`)?.textContent ?? ''),
      { timeout: 10_000 },
      b.nodeId,
    );
    const rowB = await page.$$eval(`tr[data-peer="${b.nodeId}"] td`, (tds) => tds.map((t) => t.textContent));
    expect(rowB[1]).toBe('ipv4_direct');
    expect(rowB[2]).toBe('connected');
    expect(rowB[4]).toMatch(/^\d+ ms$/); // connect time
    await page.waitForFunction(
      () => document.querySelector('#usage-chart rect.bar[data-tier="ipv4_direct"]')?.getAttribute('data-count') === '1',
      { timeout: 10_000 },
    );
    expect(Number(await page.$eval('#usage-chart rect.bar[data-tier="ipv4_direct"]', (r) => r.getAttribute('width')))).toBe(230);
    expect(await textOf(page, '#stat-ok')).toBe('1');

    // A second session appears: C (a short-lived node, `dpc-node send`) sends to A; the log shows the message.
    const c = await sendCli(b.ini, join(root, 'c'), a.nodeId, 'from C');
    expect(c.code, c.stdout + c.stderr).toBe(0);
    await page.waitForFunction(() => document.querySelectorAll('#sessions tbody tr').length === 2, { timeout: 20_000 });
    expect(await textOf(page, '#session-count')).toBe('(2)');
    await page.waitForFunction(
      () => /message from dpc-node-\w+ \(ipv4_direct\): from C/.test(document.getElementById('events')?.textContent ?? ''),
      {
        timeout: 10_000,
      },
    );

    // A message with markup stays text.
    const bApi = await apiClient(b.api, b.dataDir);
    const html = await bApi.call('send', { to: a.nodeId, text: '<img src=x id=injected>' });
    expect(html.error).toBeUndefined();
    await page.waitForFunction(() => (document.getElementById('events')?.textContent ?? '').includes('<img src=x id=injected>'), {
      timeout: 10_000,
    });
    expect(await page.$('#injected')).toBeNull();

    const body = await textOf(page, 'body');
    for (const key of [a.nodeId, b.nodeId, 'Sessions', 'strategy_usage', '2 IPv4 direct', 'Send a message', 'Relay'])
      expect(body).toContain(key);
    const png = await page.screenshot({ type: 'png', fullPage: true });
    if (process.env.DPC_DASHBOARD_SCREENSHOT) await writeFile(process.env.DPC_DASHBOARD_SCREENSHOT, png);
    expect(Buffer.from(png.subarray(0, 8)).toString('hex')).toBe('89504e470d0a1a0a');
    expect(png.length).toBeGreaterThan(30_000);
    const pixels = await pngColours(browser, png);
    expect(pixels.width).toBe(1280);
    expect(pixels.height).toBeGreaterThanOrEqual(900);
    expect(pixels.colours).toBeGreaterThan(50); // text anti-aliasing, the header, the chart's bars
    expect(pixels.inked / (pixels.width * pixels.height)).toBeGreaterThan(0.05);

    expect(external).toEqual([]);
    expect(consoleErrors).toEqual([]);
    bApi.close();
    atB.close();
  });
});
