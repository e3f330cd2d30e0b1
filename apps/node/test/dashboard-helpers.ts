import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterEach } from 'vitest';
import { WebSocket } from 'ws';
import { baseIni, startNode } from './harness.js';

/** Debian's chromium (installed by .ci/run); never a downloaded browser. */
const CHROMIUM = '/usr/bin/chromium';
const browsers: Browser[] = [];
afterEach(async () => {
  for (const b of browsers.splice(0)) await b.close().catch(() => {});
});

/** Headless Debian chromium, closed after the test. */
export async function launchChromium(): Promise<Browser> {
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // root in CI: no user namespaces for the sandbox
    args: ['--no-sandbox', '--no-zygote', '--disable-dev-shm-usage', '--disable-gpu'],
    timeout: 60_000,
  });
  browsers.push(browser);
  return browser;
}

/** A `dpc-node start --json` with its API (and so its dashboard and /metrics) on a free loopback port. */
export async function apiNode(root: string, name: string, seed?: string) {
  const ini = join(root, `${name}.ini`);
  await writeFile(ini, baseIni(seed).replace('[api]\nenabled = false', '[api]\nenabled = true\nport = 0'));
  const dataDir = join(root, name);
  const node = startNode(['--config', ini, '--data-dir', dataDir]);
  const listening = await node.next('listening');
  const api = String((await node.next('api')).url);
  const dash = await node.next('dashboard');
  const token = (await readFile(join(dataDir, 'api-token'), 'utf8')).trim();
  return {
    node,
    ini,
    dataDir,
    nodeId: String(listening.nodeId),
    dht: listening.dht,
    api,
    token,
    /** The dashboard URL without the token, as the `dashboard` event gives it. */
    dashboard: String(dash.url),
    metrics: String(dash.metrics),
  };
}

/** A WebSocket API client subscribed to every event, keeping what it receives. */
export async function eventsClient(api: string, token: string) {
  const ws = new WebSocket(`${api}?token=${token}`);
  await once(ws, 'open');
  const events: Array<{ event: string; data: Record<string, unknown> }> = [];
  ws.on('message', (raw) => {
    const m = JSON.parse(raw.toString());
    if (m.event) events.push(m);
  });
  ws.send(JSON.stringify({ id: 1, method: 'subscribe', params: { events: ['connected', 'message', 'upgraded', 'path-lost'] } }));
  return {
    events,
    async next(event: string, pred: (d: Record<string, unknown>) => boolean = () => true, ms = 30_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = events.find((e) => e.event === event && pred(e.data));
        if (hit) return hit.data;
        if (Date.now() > deadline) throw new Error(`no ${event} event over the API; got ${JSON.stringify(events)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    close: () => ws.terminate(),
  };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * The Prometheus text exposition format (0.0.4): `# HELP`, `# TYPE` and sample lines
 * `name{label="value",…} value`. Throws on a line that is none of these, on a sample whose
 * family has no TYPE, and on a value that is not a float.
 */
export function parseMetrics(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') types.set(meta[2] as string, meta[3] as string);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a metrics line: ${line}`);
    const name = m[1] as string;
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
    for (let l = re.exec(m[2] ?? ''); l; l = re.exec(m[2] ?? '')) labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, '$1');
    // Go's ParseFloat, as Prometheus reads values: NaN in any case (prom-client writes `Nan`), ±Inf
    const raw = m[3] as string;
    const value = /^nan$/i.test(raw)
      ? Number.NaN
      : /^[+-]?inf$/i.test(raw)
        ? (raw.startsWith('-') ? -1 : 1) * Number.POSITIVE_INFINITY
        : Number(raw);
    if (Number.isNaN(value) && !/^nan$/i.test(raw)) throw new Error(`not a number: ${line}`);
    const family = name.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(name) && !types.has(family)) throw new Error(`sample without # TYPE: ${line}`);
    samples.push({ name, labels, value });
  }
  return { types, samples };
}

/** The value of one sample (all given labels match), or undefined. */
export function sample(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

/** GET /metrics with the token as a Bearer header; the text. */
export async function scrape(metricsUrl: string, token: string): Promise<string> {
  const res = await fetch(metricsUrl, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status} ${await res.text()}`);
  if (!/^text\/plain; version=0\.0\.4/.test(res.headers.get('content-type') ?? ''))
    throw new Error(`content-type ${res.headers.get('content-type')}`);
  return res.text();
}
