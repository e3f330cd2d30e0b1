import { isNodeId, type Schema, s } from '@dpc/core';
import { HUB_MAX_PAYLOAD_DEPTH } from './constants.js';

// The Hub protocol: JSON text frames over one WebSocket, each an object with a type `t`.
// Hub → node: challenge, welcome, signal, ack, error, ice, pong.
// Node → Hub: login, signal, ice, ping.

/** An RTCIceServer as the browser and werift take it. */
export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

const nodeId: Schema<string> = (v, p = '') => {
  if (!isNodeId(v)) return s.literal('<node id>')(v, p);
  return v;
};
const b64 = (max: number) => s.string({ max, pattern: /^[A-Za-z0-9+/]*={0,2}$/ });
const reqId = s.int({ min: 0, max: Number.MAX_SAFE_INTEGER });

const iceServerSchema: Schema<IceServer> = s.object({
  urls: (v, p = '') => (Array.isArray(v) ? s.array(s.string({ max: 512 }), { max: 16 })(v, p) : s.string({ max: 512 })(v, p)),
  username: s.optional(s.string({ max: 512 })),
  credential: s.optional(s.string({ max: 512 })),
}) as Schema<IceServer>;
export const iceServersSchema = s.array(iceServerSchema, { max: 16 });

/** Depth of nested arrays and objects, counted without recursion (stops past `max`). */
export function jsonDepth(value: unknown, max: number): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    const depth = d + 1;
    if (depth > deepest) deepest = depth;
    if (deepest > max) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth]);
  }
  return deepest;
}

/** An opaque payload: any JSON value nested at most HUB_MAX_PAYLOAD_DEPTH deep. */
const payload: Schema<unknown> = (v, p = '') => {
  if (jsonDepth(v, HUB_MAX_PAYLOAD_DEPTH) > HUB_MAX_PAYLOAD_DEPTH) return s.literal(`<at most ${HUB_MAX_PAYLOAD_DEPTH} levels deep>`)(v, p);
  return v;
};

/** What a node sends to the Hub. */
export const clientMessageSchema = s.union('t', {
  login: s.object({ t: s.literal('login'), node_id: nodeId, public_key: b64(64), signature: b64(128) }),
  signal: s.object({ t: s.literal('signal'), id: reqId, to: nodeId, payload }),
  ice: s.object({ t: s.literal('ice'), id: reqId }),
  ping: s.object({ t: s.literal('ping'), id: reqId }),
});
export type ClientMessage =
  | { t: 'login'; node_id: string; public_key: string; signature: string }
  | { t: 'signal'; id: number; to: string; payload: unknown }
  | { t: 'ice'; id: number }
  | { t: 'ping'; id: number };

/** What the Hub sends to a node. */
export const serverMessageSchema = s.union('t', {
  challenge: s.object({ t: s.literal('challenge'), hub: s.string({ max: 512 }), nonce: b64(64), expires_at: s.int({ min: 0 }) }),
  welcome: s.object({
    t: s.literal('welcome'),
    node_id: nodeId,
    hub: s.string({ max: 512 }),
    ice_servers: iceServersSchema,
    ping_interval_ms: s.int({ min: 0, max: 3_600_000 }),
  }),
  signal: s.object({ t: s.literal('signal'), from: nodeId, payload }),
  ack: s.object({ t: s.literal('ack'), id: reqId }),
  error: s.object({
    t: s.literal('error'),
    code: s.string({ max: 64 }),
    message: s.string({ max: 1024 }),
    id: s.optional(reqId),
    to: s.optional(nodeId),
  }),
  ice: s.object({ t: s.literal('ice'), id: reqId, ice_servers: iceServersSchema }),
  pong: s.object({ t: s.literal('pong'), id: reqId }),
});
export type ServerMessage =
  | { t: 'challenge'; hub: string; nonce: string; expires_at: number }
  | { t: 'welcome'; node_id: string; hub: string; ice_servers: IceServer[]; ping_interval_ms: number }
  | { t: 'signal'; from: string; payload: unknown }
  | { t: 'ack'; id: number }
  | { t: 'error'; code: string; message: string; id?: number; to?: string }
  | { t: 'ice'; id: number; ice_servers: IceServer[] }
  | { t: 'pong'; id: number };

/** Parses a text frame as JSON; undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
