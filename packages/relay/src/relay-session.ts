import type { Connection } from '@dpc/core';
import type { RelayMessageOut } from './messages.js';
import type { Splice } from './relay-splice.js';
import type { TokenBucket } from './token-bucket.js';

// The relay's view of its clients and sessions, and the flow control of RELAY_MESSAGE forwarding.

export interface Client {
  conn: Connection;
  nodeId: string;
  /** Where the client connects from (sourceKey: /24, /64, a loopback address). */
  source: string;
  rate: TokenBucket;
  pending: Set<Pending>;
  sessions: Set<Session>;
  /** Reasons this connection's reading is paused (bandwidth debt, a slow receiver). */
  pauses: number;
  /** Forwards to this client not yet handed to its transport. */
  inflight: number;
  /** Senders paused because this client reads slowly. */
  blocked: Set<Client>;
}
export interface Pending {
  key: string;
  from: Client;
  target: string;
  id: number;
  splice: boolean;
  timer: NodeJS.Timeout;
}
export interface Side {
  client: Client;
  id: number;
  splice: boolean;
}
export interface Session {
  id: string;
  a: Side;
  b: Side;
  started: number;
  last: number;
  bytes: number;
  /** The data path of a spliced session (RELAY_MESSAGEs are refused on it). */
  splice?: Splice;
}

/** Forwards queued to a slow receiver above which its senders are paused. */
export const FORWARD_HIGH_WATER = 8;

/** Sends a control message to a client; while too many are in flight to it, its senders stay paused. */
export function sendTo(c: Client, msg: RelayMessageOut): void {
  if (c.conn.closed) return;
  c.inflight++;
  const sent = () => {
    c.inflight--;
    if (c.inflight <= FORWARD_HIGH_WATER / 2 && c.blocked.size > 0) {
      for (const s of c.blocked) resumeReading(s);
      c.blocked.clear();
    }
  };
  c.conn.send(msg).then(sent, sent);
}

/** One more reason not to read a client's control connection (bandwidth debt, a slow receiver). */
export function pauseReading(c: Client): void {
  if (c.pauses++ === 0) c.conn.pause();
}

export function resumeReading(c: Client): void {
  if (c.pauses > 0 && --c.pauses === 0) c.conn.resume();
}
