import { isIP } from 'node:net';
import { decodeUntrusted, encode, type Infer, type Schema, SchemaError, s } from '@dpc/core';
import { MAX_DATAGRAM_BYTES } from './constants.js';
import { DatagramTooLargeError } from './errors.js';

// Wire messages of the DHT: one MessagePack map per UDP datagram, tagged by `t`.
// Every request carries a 4-byte transaction id `x` and the sender's 16-byte Kademlia id `id`;
// a response echoes `x` and is matched by (x, source address, source port).

/** A node as sent on the wire: [kademlia id, ip, port]. */
export interface WireContact {
  id: Uint8Array;
  host: string;
  port: number;
}

const txid = s.bytes({ length: 4 });
const kid = s.bytes({ length: 16 });
const token = s.bytes({ length: 8 });
const portSchema = s.int({ min: 1, max: 65535 });
const ipSchema: Schema<string> = (v, p = '') => {
  const x = s.string({ max: 45 })(v, p);
  if (isIP(x) === 0) throw new SchemaError(p, 'not an IP address');
  return x;
};
const contactSchema: Schema<WireContact> = (v, p = '') => {
  if (!Array.isArray(v) || v.length !== 3) throw new SchemaError(p, 'expected [id, ip, port]');
  return { id: kid(v[0], `${p}[0]`), host: ipSchema(v[1], `${p}[1]`), port: portSchema(v[2], `${p}[2]`) };
};
const contacts = s.array(contactSchema, { max: 32 });
const records = s.array(s.bytes({ max: MAX_DATAGRAM_BYTES }), { max: 16 });

const head = { x: txid, id: kid };
const requestSchemas = {
  ping: s.object({ t: s.literal('ping'), ...head }),
  find_node: s.object({ t: s.literal('find_node'), ...head, k: kid }),
  find_value: s.object({ t: s.literal('find_value'), ...head, k: kid, o: s.optional(s.int({ min: 0, max: 1024 })) }),
  store: s.object({ t: s.literal('store'), ...head, k: kid, r: s.bytes({ max: MAX_DATAGRAM_BYTES }), tk: token }),
  discover: s.object({ t: s.literal('discover'), ...head }),
  register: s.object({
    t: s.literal('register'),
    ...head,
    pk: s.bytes({ length: 32 }),
    ts: s.int({ min: 0 }),
    sig: s.bytes({ length: 64 }),
    tk: token,
  }),
  signal: s.object({ t: s.literal('signal'), ...head, to: kid, h: s.int({ min: 0, max: 1 }), e: s.bytes({ max: MAX_DATAGRAM_BYTES }) }),
} as const;
const responseSchemas = {
  pong: s.object({ t: s.literal('pong'), ...head }),
  nodes: s.object({
    t: s.literal('nodes'),
    ...head,
    n: contacts,
    tk: token,
    r: s.optional(records),
    nx: s.optional(s.int({ min: 0, max: 1024 })),
  }),
  ok: s.object({ t: s.literal('ok'), ...head, tk: s.optional(token) }),
  addr: s.object({ t: s.literal('addr'), ...head, ip: ipSchema, port: portSchema }),
  err: s.object({ t: s.literal('err'), ...head, c: s.string({ max: 32 }) }),
} as const;

export const requestSchema = s.union('t', requestSchemas);
export const responseSchema = s.union('t', responseSchemas);
export type Request = Infer<typeof requestSchema>;
export type Response = Infer<typeof responseSchema>;
export type RequestType = Request['t'];
export type ResponseType = Response['t'];
export type Message = Request | Response;
/** Keys whose value may be undefined become optional. */
type Loose<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: T[K];
};
type Body<M> = M extends unknown ? Loose<Omit<M, 'x' | 'id'>> : never;
/** A request body before the RPC layer adds `x` and `id`. */
export type RequestBody = Body<Request>;
/** A response body before the RPC layer adds `x` and `id`. */
export type ResponseBody = Body<Response>;

export const REQUEST_TYPES: readonly RequestType[] = Object.keys(requestSchemas) as RequestType[];
const REQUEST_SET = new Set<string>(REQUEST_TYPES);
export const isRequestType = (t: string): t is RequestType => REQUEST_SET.has(t);

/** Error codes a node answers with (`err.c`). */
export type RemoteErrorCode =
  | 'bad_token'
  | 'bad_record'
  | 'wrong_key'
  | 'stale'
  | 'storage_full'
  | 'bad_signature'
  | 'not_registered'
  | 'replay'
  | 'rate_limited'
  | 'undeliverable';

/** Wire form of a contact list. */
export function contactsToWire(list: readonly WireContact[]): Array<[Uint8Array, string, number]> {
  return list.map((c) => [c.id, c.host, c.port]);
}

/**
 * Decodes and validates one datagram. Throws (a typed DpcError) on anything that is not a
 * well-formed request or response; the socket handler counts and drops it.
 */
export function decodeDatagram(bytes: Uint8Array): { kind: 'request'; msg: Request } | { kind: 'response'; msg: Response } {
  if (bytes.length > MAX_DATAGRAM_BYTES) throw new DatagramTooLargeError(bytes.length, MAX_DATAGRAM_BYTES);
  const raw = decodeUntrusted(bytes) as { t?: unknown } | null;
  const t = typeof raw === 'object' && raw !== null ? raw.t : undefined;
  if (typeof t === 'string' && isRequestType(t)) return { kind: 'request', msg: requestSchema(raw) };
  return { kind: 'response', msg: responseSchema(raw) };
}

/** Encodes a message, refusing to produce a datagram over MAX_DATAGRAM_BYTES. */
export function encodeDatagram(msg: Message | (ResponseBody & { x: Uint8Array; id: Uint8Array }), max = MAX_DATAGRAM_BYTES): Buffer {
  const out = encode(msg.t === 'nodes' ? { ...msg, n: contactsToWire(msg.n) } : msg);
  if (out.length > max) throw new DatagramTooLargeError(out.length, max);
  return out;
}

/** Encoded size of one contact on the wire (upper bound). */
export const contactWireBytes = (c: WireContact): number => 1 + 18 + 1 + c.host.length + 3;

/**
 * Greedy fit of a `nodes` answer under the datagram limit: records first (in order), then as
 * many contacts as still fit. `baseBytes` is the size of the answer with neither.
 */
export function fitAnswer(
  recordList: readonly Uint8Array[],
  contactList: readonly WireContact[],
  budget: number,
): { records: Uint8Array[]; contacts: WireContact[]; recordsLeft: number } {
  let left = budget;
  const outRecords: Uint8Array[] = [];
  let i = 0;
  for (; i < recordList.length; i++) {
    const r = recordList[i] as Uint8Array;
    const size = r.length + 3;
    if (size > left) break;
    outRecords.push(r);
    left -= size;
  }
  const outContacts: WireContact[] = [];
  for (const c of contactList) {
    const size = contactWireBytes(c);
    if (size > left) break;
    outContacts.push(c);
    left -= size;
  }
  return { records: outRecords, contacts: outContacts, recordsLeft: recordList.length - i };
}
