import { decode, encode, type KvOp, type KvStore } from '@dpc/core';

/**
 * Where a PeerSession keeps what must survive a restart, in a KvStore:
 *   o/<peer>/<seq>          outbox: a message accepted by send() and not yet acknowledged
 *   t/<peer>                sender state: { e: epoch, n: next sequence number }
 *   r/<peer>                receiver state: the last few epochs of the peer, each with the
 *                           next number to deliver
 *   q/<peer>/<epoch>/<seq>  received out of order, stored (and acknowledged) but not delivered yet
 *   k/<peer>                the peer's raw public key (to seal deferred items to it)
 */
const SEQ_DIGITS = 15;
const pad = (n: number): string => n.toString().padStart(SEQ_DIGITS, '0');

export const keys = {
  outbox: (peer: string, seq: number) => `o/${peer}/${pad(seq)}`,
  outboxPrefix: (peer: string) => `o/${peer}/`,
  outboxAll: 'o/',
  tx: (peer: string) => `t/${peer}`,
  rx: (peer: string) => `r/${peer}`,
  ooo: (peer: string, epoch: string, seq: number) => `q/${peer}/${epoch}/${pad(seq)}`,
  oooPrefix: (peer: string, epoch?: string) => (epoch ? `q/${peer}/${epoch}/` : `q/${peer}/`),
  key: (peer: string) => `k/${peer}`,
};

export const seqOfKey = (key: string): number => Number(key.slice(key.lastIndexOf('/') + 1));
/** The node id in an `o/<peer>/<seq>` key. */
export const peerOfOutboxKey = (key: string): string => key.slice(2, key.lastIndexOf('/'));

export interface TxState {
  e: string;
  n: number;
}

export interface RxEpochState {
  e: string;
  next: number;
}

export interface LoadedState {
  tx: TxState | undefined;
  outbox: Array<{ seq: number; body: unknown }>;
  rx: RxEpochState[];
  ooo: Array<{ e: string; seq: number; body: unknown; bytes: number }>;
  publicKey: Buffer | undefined;
}

function decodeSafe<T>(value: Uint8Array | undefined): T | undefined {
  if (!value) return undefined;
  try {
    return decode(Buffer.from(value.buffer, value.byteOffset, value.byteLength)) as T;
  } catch {
    return undefined;
  }
}

export async function loadSessionState(kv: KvStore, peer: string): Promise<LoadedState> {
  const tx = decodeSafe<TxState>(await kv.get(keys.tx(peer)));
  const rxRaw = decodeSafe<RxEpochState[]>(await kv.get(keys.rx(peer)));
  const rx = Array.isArray(rxRaw) ? rxRaw.filter((r) => typeof r?.e === 'string' && Number.isSafeInteger(r.next)) : [];
  const outbox: LoadedState['outbox'] = [];
  for await (const [k, v] of kv.entries(keys.outboxPrefix(peer))) outbox.push({ seq: seqOfKey(k), body: decodeSafe(v) });
  const ooo: LoadedState['ooo'] = [];
  for await (const [k, v] of kv.entries(keys.oooPrefix(peer))) {
    const rest = k.slice(keys.oooPrefix(peer).length);
    const e = rest.slice(0, rest.indexOf('/'));
    ooo.push({ e, seq: seqOfKey(k), body: decodeSafe(v), bytes: v.byteLength });
  }
  const pk = await kv.get(keys.key(peer));
  return {
    tx: tx && typeof tx.e === 'string' && Number.isSafeInteger(tx.n) ? tx : undefined,
    outbox,
    rx,
    ooo,
    publicKey: pk ? Buffer.from(pk) : undefined,
  };
}

/** Node ids with messages in the outbox (sessions to resume after a restart). */
export async function peersWithOutbox(kv: KvStore, limit: number): Promise<string[]> {
  const peers = new Set<string>();
  for await (const [k] of kv.entries(keys.outboxAll)) {
    peers.add(peerOfOutboxKey(k));
    if (peers.size >= limit) break;
  }
  return [...peers];
}

export const put = (key: string, value: unknown): KvOp => ({ type: 'put', key, value: encode(value) });
export const putRaw = (key: string, value: Uint8Array): KvOp => ({ type: 'put', key, value });
export const del = (key: string): KvOp => ({ type: 'del', key });
