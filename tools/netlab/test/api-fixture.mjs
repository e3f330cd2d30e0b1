// Talks to a running `dpc-node start` through its WebSocket API from inside its lab host (run with
// `ip netns exec`; the API listens on the host's loopback). Each result is one JSON line.
//   node api-fixture.mjs call <dataDir> <method> [paramsJson]
//   node api-fixture.mjs stream <dataDir> <to> <intervalMs> <afterUpgrade> <maxMs>
//     sends msg-0 (waiting for delivery), then msg-1, msg-2, … every intervalMs (each durable in
//     the outbox before the next), until the node reported an `upgraded` session and afterUpgrade
//     more were sent (or maxMs passed); the last one waits for delivery.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WebSocket } from 'ws';

const [mode, dataDir, ...args] = process.argv.slice(2);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function connect(dir) {
  const info = JSON.parse(await readFile(join(dir, 'node.json'), 'utf8'));
  const token = (await readFile(join(dir, 'api-token'), 'utf8')).trim();
  const ws = new WebSocket(info.api, { headers: { authorization: `Bearer ${token}` } });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let n = 0;
  const waiting = new Map();
  const events = [];
  ws.on('message', (raw) => {
    const m = JSON.parse(String(raw));
    if (m.event) return void events.push(m);
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error) w?.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
    else w?.resolve(m.result);
  });
  const call = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = ++n;
      waiting.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { call, events, close: () => ws.close() };
}

const api = await connect(dataDir);
try {
  if (mode === 'call') {
    const [method, params] = args;
    out({ event: 'result', result: await api.call(method, params ? JSON.parse(params) : {}) });
  } else if (mode === 'stream') {
    const [to, intervalMs, afterUpgrade, maxMs] = args;
    await api.call('subscribe', { events: ['upgraded'] });
    const t0 = Date.now();
    const first = await api.call('send', { to, text: 'msg-0', wait: 'delivered', timeout_ms: 60_000 });
    out({ event: 'first', tier: first.tier, connect_ms: Math.round(first.connectMs ?? 0) });
    let i = 1;
    let upgradedAt;
    for (;;) {
      if (upgradedAt === undefined && api.events.some((e) => e.event === 'upgraded')) {
        upgradedAt = i;
        out({ event: 'upgraded', at: i, ms: Date.now() - t0, data: api.events.find((e) => e.event === 'upgraded').data });
      }
      const last = (upgradedAt !== undefined && i >= upgradedAt + Number(afterUpgrade)) || Date.now() - t0 > Number(maxMs);
      const r = await api.call('send', { to, text: `msg-${i}`, wait: last ? 'delivered' : 'accepted', timeout_ms: 60_000 });
      if (last) {
        out({ event: 'done', sent: i + 1, upgraded: upgradedAt !== undefined, last_tier: r.tier ?? null, ms: Date.now() - t0 });
        break;
      }
      i++;
      await new Promise((r) => setTimeout(r, Number(intervalMs)));
    }
  } else throw new Error(`unknown mode ${mode}`);
} catch (err) {
  out({ event: 'error', code: err.code, message: err.message });
  process.exitCode = 1;
} finally {
  api.close();
}
