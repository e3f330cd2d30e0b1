import { once } from 'node:events';
import { WebSocket } from 'ws';
import { loadApiToken } from './api.js';
import type { NodeFile } from './node-file.js';

/** The running node's API has been disabled: the CLI cannot talk to it. */
export class ApiDisabledError extends Error {
  readonly code = 'DPC_API_DISABLED';
  override readonly name = 'ApiDisabledError';
  constructor(dataDir: string, pid: number) {
    super(
      `a node (pid ${pid}) is running on ${dataDir} with the WebSocket API disabled, so this command cannot reach it; ` +
        'set [api] enabled = true in its config and restart it, or stop it first (dpc-node stop)',
    );
  }
}

export interface RemoteNode {
  call<T = unknown>(method: string, params?: Record<string, unknown>): Promise<T>;
  close(): void;
}

/** A request/response client for the WebSocket API of the node in `node.json`. */
export async function connectRunning(dataDir: string, info: NodeFile): Promise<RemoteNode> {
  if (!info.api) throw new ApiDisabledError(dataDir, info.pid);
  const token = await loadApiToken(dataDir);
  const ws = new WebSocket(info.api, { headers: { authorization: `Bearer ${token}` } });
  await Promise.race([
    once(ws, 'open'),
    once(ws, 'error').then(([err]) => {
      throw new Error(`cannot reach the running node's API at ${info.api}: ${(err as Error).message}`);
    }),
  ]);
  ws.on('error', () => {});
  let n = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  ws.on('message', (raw) => {
    const m = JSON.parse(raw.toString()) as { id: number; result?: unknown; error?: { code: string; message: string } };
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (!w) return;
    if (m.error) w.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
    else w.resolve(m.result);
  });
  ws.on('close', () => {
    for (const w of waiting.values()) w.reject(new Error('the running node closed the API connection'));
    waiting.clear();
  });
  return {
    call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
      const id = ++n;
      return new Promise<T>((resolve, reject) => {
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
        ws.send(JSON.stringify({ id, method, params }));
      });
    },
    close: () => ws.close(),
  };
}
