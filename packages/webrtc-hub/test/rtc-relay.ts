// A tiny real WebSocket relay for tier-3 tests: clients connect with ?id=<node id>, send
// {to, payload} and receive {from, payload}. No login (the Hub's job): the relay is exactly the
// untrusted middleman tier 3 must survive, and `tamper` lets a test make it lie.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Signaller } from '@dpc/webrtc-hub';
import { WebSocket, WebSocketServer } from 'ws';

export interface Relay {
  url: string;
  close(): Promise<void>;
}

type Routed = { from: string; to: string; payload: unknown };
/** Returns the message(s) to deliver (possibly changed, re-addressed or repeated), or undefined to drop it. */
export type Tamper = (m: Routed) => Routed | Routed[] | undefined;

export async function startRelay(opts: { host?: string; tamper?: Tamper } = {}): Promise<Relay> {
  const wss = new WebSocketServer({ host: opts.host ?? '127.0.0.1', port: 0, maxPayload: 64 * 1024 });
  await once(wss, 'listening');
  const clients = new Map<string, WebSocket>();
  wss.on('connection', (ws, req) => {
    const id = new URL(req.url ?? '/', 'http://x').searchParams.get('id') ?? '';
    clients.set(id, ws);
    ws.on('close', () => {
      if (clients.get(id) === ws) clients.delete(id);
    });
    ws.on('error', () => {});
    ws.on('message', (data) => {
      let m: { to: string; payload: unknown };
      try {
        m = JSON.parse(String(data));
      } catch {
        return;
      }
      const out = opts.tamper ? opts.tamper({ from: id, to: m.to, payload: m.payload }) : { from: id, to: m.to, payload: m.payload };
      for (const o of out === undefined ? [] : Array.isArray(out) ? out : [out]) {
        clients.get(o.to)?.send(JSON.stringify({ from: o.from, payload: o.payload }));
      }
    });
  });
  const { port, address } = wss.address() as AddressInfo;
  return {
    url: `ws://${address.includes(':') ? `[${address}]` : address}:${port}`,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}

export interface RelaySignaller extends Signaller {
  close(): void;
}

/** A Signaller over the relay for `nodeId`. */
export async function relaySignaller(url: string, nodeId: string): Promise<RelaySignaller> {
  const ws = new WebSocket(`${url}/?id=${nodeId}`);
  await once(ws, 'open');
  const fns = new Set<(e: { from: string; payload: unknown }) => void>();
  ws.on('message', (data) => {
    const m = JSON.parse(String(data)) as { from: string; payload: unknown };
    for (const fn of fns) fn(m);
  });
  ws.on('error', () => {});
  return {
    send(to, payload) {
      return new Promise<void>((resolve, reject) => {
        if (ws.readyState !== WebSocket.OPEN) return reject(new Error('relay socket closed'));
        ws.send(JSON.stringify({ to, payload }), (err) => (err ? reject(err) : resolve()));
      });
    },
    on(_e, fn) {
      fns.add(fn);
    },
    off(_e, fn) {
      fns.delete(fn);
    },
    close() {
      ws.terminate();
    },
  };
}
