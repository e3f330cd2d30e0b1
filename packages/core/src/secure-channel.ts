import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, type SecureContext, TLSSocket, connect as tlsConnect } from 'node:tls';
import type { DecodeLimits } from './bounded-decode.js';
import { createSelfSignedCertificate } from './certificate.js';
import { SecureConnection } from './connection.js';
import type { Counters } from './counters.js';
import {
  DpcError,
  HandshakeError,
  HandshakeTimeoutError,
  NotTlsError,
  PeerIdentityMismatchError,
  PeerRejectedError,
  TlsDowngradeError,
} from './errors.js';
import { encodeFrame, FrameDecoder } from './frames.js';
import { type Identity, nodeIdFromPublicKey, rawPublicKey } from './identity.js';
import { type ConnectionFrame, connectionFrameSchema } from './messages.js';
import type { Schema } from './schema.js';
import { throwIfAborted, toAbortError } from './signal.js';
import type { TierName } from './tiers.js';

/**
 * Default time allowed for the TLS handshake plus the dpc hello exchange (on the dialing side,
 * the acceptor's hello_ack must arrive within it too, after secureConnect has returned).
 */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

export interface SecureChannelOptions {
  identity: Identity;
  /** Tier the underlying pipe belongs to; tags the Connection. */
  tier: TierName;
  /** The peer must prove this node id. Required when connecting, optional when accepting. */
  expectedNodeId?: string;
  /** Handshake (TLS + hello) deadline in ms. Default 10 000. */
  handshakeTimeoutMs?: number;
  signal?: AbortSignal;
  /** Largest frame in either direction. Default 1 MiB. */
  maxFrameBytes?: number;
  /** Bounds of each received frame's MessagePack. Default: depth 64, 100,000 values. */
  decodeLimits?: DecodeLimits;
  /** Validates every application message received. */
  messageSchema?: Schema<unknown>;
  counters?: Counters;
  /** Accepting side: return true to admit an authenticated peer, or a reason to refuse it. */
  authorize?: (nodeId: string) => true | string;
  /** For tests of the downgrade defence only: the TLS versions this end offers. Default 1.3 only. */
  tlsVersions?: { min: TlsVersion; max: TlsVersion };
  /**
   * Dialing side: resolve only once the acceptor's hello_ack has arrived, so that a refusal
   * rejects secureConnect itself (one more round trip). Default false: the Connection is
   * returned right after the TLS handshake, the hello rides behind the TLS Finished, frames may
   * be sent at once, and `conn.accepted` (and the 'close' error) carries a refusal.
   */
  waitForAccept?: boolean;
  /**
   * The pipe is one hop of a longer path (a relay's data connection, a socket handed over as is
   * so TLS runs natively on it): see `PathHop`.
   */
  hop?: PathHop;
}

/**
 * A pipe that is one hop of a longer path: its address is not the peer's (the connection's
 * `remoteAddress` stays undefined), and why it closed may come separately (a relay says so over
 * its control connection). When the pipe closes under the connection (not closed here, no
 * goodbye from the peer), 'close' waits for `explainClose`: the typed error it resolves with
 * replaces the pipe's own (undefined keeps it).
 */
export interface PathHop {
  explainClose(cause: Error | undefined): Promise<Error | undefined>;
}

const contexts = new WeakMap<Identity, Map<string, SecureContext>>();

function secureContextFor(
  identity: Identity,
  versions: { min: TlsVersion; max: TlsVersion } = { min: 'TLSv1.3', max: 'TLSv1.3' },
): SecureContext {
  let byVersion = contexts.get(identity);
  if (!byVersion) {
    byVersion = new Map();
    contexts.set(identity, byVersion);
  }
  const key = `${versions.min}-${versions.max}`;
  let ctx = byVersion.get(key);
  if (!ctx) {
    ctx = createSecureContext({
      key: identity.privateKeyPem,
      cert: createSelfSignedCertificate(identity),
      minVersion: versions.min,
      maxVersion: versions.max,
    });
    byVersion.set(key, ctx);
  }
  return ctx;
}

// Only a peer that really speaks TLS ≤ 1.2 is a downgrade: OpenSSL parsed its ClientHello or
// ServerHello and found no TLS 1.3 in it, or it sent a protocol_version alert. Bytes that are no
// TLS at all (random, HTTP, a record header with junk) fail earlier, with other reasons.
const DOWNGRADE = /UNSUPPORTED_PROTOCOL|NO_PROTOCOLS_AVAILABLE|VERSION_TOO_LOW|TLSV1_ALERT_PROTOCOL_VERSION|UNSUPPORTED_SSL_VERSION/;
const NOT_TLS =
  /WRONG_VERSION_NUMBER|HTTPS?_(PROXY_)?REQUEST|PACKET_LENGTH_TOO_LONG|UNKNOWN_PROTOCOL|RECORD_LENGTH_MISMATCH|ENCRYPTED_LENGTH_TOO_LONG|WRONG_SSL_VERSION|UNEXPECTED_MESSAGE|UNEXPECTED_RECORD|LENGTH_MISMATCH|BAD_PACKET_LENGTH|LENGTH_TOO_SHORT|BAD_RECORD_TYPE|RECORD_TOO_SMALL/;

function classifyTlsError(err: unknown): DpcError {
  if (err instanceof DpcError) return err;
  const msg = String((err as Error)?.message ?? err);
  const reason = `${String((err as { code?: unknown }).code ?? '')} ${msg.toUpperCase().replace(/ /g, '_')}`;
  // Alerts are what the peer says about our bytes: never "not TLS".
  if (DOWNGRADE.test(reason)) return new TlsDowngradeError(`peer does not speak TLS 1.3: ${msg}`, { cause: err });
  if (!/ALERT/.test(reason) && NOT_TLS.test(reason)) return new NotTlsError(`peer's bytes are not TLS: ${msg}`, { cause: err });
  return new HandshakeError(`secure handshake failed: ${msg}`, { cause: err });
}

function peerIdentity(sock: TLSSocket): { nodeId: string; publicKey: Buffer } {
  const cert = sock.getPeerX509Certificate();
  if (!cert) throw new HandshakeError('peer presented no certificate');
  const key = cert.publicKey;
  if (key.asymmetricKeyType !== 'ed25519') throw new HandshakeError(`peer certificate key is ${key.asymmetricKeyType}, not Ed25519`);
  const publicKey = rawPublicKey(key);
  return { nodeId: nodeIdFromPublicKey(publicKey), publicKey };
}

/**
 * Runs `body` with a deadline and cancellation; on failure the socket is destroyed and the
 * error is typed.
 */
async function guarded<T>(
  sock: TLSSocket,
  opts: SecureChannelOptions,
  body: (decoder: FrameDecoder<ConnectionFrame>, started: number) => Promise<T>,
): Promise<T> {
  const ms = opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const decoder = new FrameDecoder<ConnectionFrame>({
    schema: connectionFrameSchema,
    ...(opts.maxFrameBytes !== undefined && { maxFrameBytes: opts.maxFrameBytes }),
    ...(opts.decodeLimits && { decodeLimits: opts.decodeLimits }),
    ...(opts.counters && { counters: opts.counters }),
  });
  let cleanup = () => {};
  const interrupted = new Promise<never>((_, reject) => {
    const timer = setTimeout(() => reject(new HandshakeTimeoutError(ms)), ms);
    const onAbort = () => reject(toAbortError(opts.signal as AbortSignal));
    const onError = (err: unknown) => reject(classifyTlsError(err));
    const onClose = () => reject(new HandshakeError('pipe closed during the secure handshake'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    sock.on('error', onError);
    sock.on('close', onClose);
    decoder.on('error', onError);
    cleanup = () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      sock.off('error', onError);
      sock.off('close', onClose);
      decoder.off('error', onError);
    };
  });
  try {
    return await Promise.race([interrupted, body(decoder, performance.now())]);
  } catch (err) {
    opts.counters?.inc(`handshake_errors_${(err as DpcError).code ?? 'unknown'}`);
    // A refusal was written with end(): let it reach the peer before the pipe goes.
    if (sock.writableEnded && !sock.destroyed) setTimeout(() => sock.destroy(), 1000).unref();
    else sock.destroy();
    decoder.destroy();
    throw err;
  } finally {
    cleanup();
    interrupted.catch(() => {});
  }
}

function nextFrame(decoder: FrameDecoder<ConnectionFrame>): Promise<ConnectionFrame> {
  return new Promise((resolve) => {
    const onData = (f: ConnectionFrame) => {
      decoder.pause();
      decoder.off('data', onData);
      resolve(f);
    };
    decoder.on('data', onData);
    decoder.resume();
  });
}

function waitSecure(sock: TLSSocket, event: 'secure' | 'secureConnect'): Promise<void> {
  return new Promise((resolve) => sock.once(event, () => resolve()));
}

function makeConnection(
  sock: TLSSocket,
  decoder: FrameDecoder<ConnectionFrame>,
  opts: SecureChannelOptions,
  peer: { nodeId: string; publicKey: Buffer },
  rttMs: number,
  awaitingAck?: { timeoutMs: number; helloSentAt: number },
  probeRtt = false,
): SecureConnection {
  // The dialer counts its handshake when the acceptor's hello_ack arrives (connection.ts).
  if (!awaitingAck) opts.counters?.inc('handshakes_ok');
  return new SecureConnection({
    socket: sock,
    decoder,
    tier: opts.tier,
    localNodeId: opts.identity.nodeId,
    remoteNodeId: peer.nodeId,
    remotePublicKey: peer.publicKey,
    rttMs,
    ...(opts.maxFrameBytes !== undefined && { maxFrameBytes: opts.maxFrameBytes }),
    ...(opts.messageSchema && { messageSchema: opts.messageSchema }),
    ...(opts.counters && { counters: opts.counters }),
    ...(awaitingAck && { awaitingAck }),
    ...(opts.hop && { hop: opts.hop }),
    probeRtt,
  });
}

/**
 * Client side: runs TLS 1.3 over `pipe`, checks that the peer proves `expectedNodeId`, and
 * returns the framed Connection right after the TLS handshake (TCP + TLS: 2 round trips): the
 * dpc hello is written behind the TLS Finished, and frames sent at once follow it. The
 * acceptor's verdict comes one round trip later: `conn.accepted` resolves on its hello_ack, or
 * the connection closes with PeerRejectedError (its reason) and the acceptor discards every
 * frame sent before. `rttMs` is first the handshake's (ClientHello → server Finished), then the
 * hello → hello_ack time. With `waitForAccept` it resolves only after the verdict.
 */
export async function secureConnect(pipe: Duplex, opts: SecureChannelOptions & { expectedNodeId: string }): Promise<SecureConnection> {
  throwIfAborted(opts.signal);
  // The ClientHello goes out now, or when a still-connecting TCP pipe connects.
  let helloAt = performance.now();
  if ((pipe as Partial<Socket>).connecting) pipe.once('connect', () => (helloAt = performance.now()));
  const sock = tlsConnect({
    socket: pipe,
    secureContext: secureContextFor(opts.identity, opts.tlsVersions),
    rejectUnauthorized: false,
    ALPNProtocols: ['dpc/1'],
  });
  const conn = await guarded(sock, opts, async (decoder) => {
    await waitSecure(sock, 'secureConnect');
    const handshakeRtt = performance.now() - helloAt;
    const peer = peerIdentity(sock);
    if (peer.nodeId !== opts.expectedNodeId) throw new PeerIdentityMismatchError(opts.expectedNodeId, peer.nodeId);
    sock.pipe(decoder);
    sock.write(encodeFrame({ t: 'hello', v: 1 }));
    const awaitingAck = { timeoutMs: opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, helloSentAt: performance.now() };
    return makeConnection(sock, decoder, opts, peer, handshakeRtt, awaitingAck);
  });
  if (opts.waitForAccept) await untilAccepted(conn, opts.signal);
  return conn;
}

/** Waits for the acceptor's verdict (counted by the connection), or the signal (which destroys it). */
async function untilAccepted(conn: SecureConnection, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return conn.accepted;
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      const err = toAbortError(signal);
      conn.destroy(err);
      reject(err);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([conn.accepted, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
    aborted.catch(() => {});
  }
}

/**
 * Server side: runs TLS 1.3 over `pipe`, requires a client certificate, checks it against
 * `expectedNodeId` and `authorize` when given, and returns the framed Connection.
 */
export async function secureAccept(pipe: Duplex, opts: SecureChannelOptions): Promise<SecureConnection> {
  throwIfAborted(opts.signal);
  const sock = new TLSSocket(pipe, {
    isServer: true,
    secureContext: secureContextFor(opts.identity, opts.tlsVersions),
    requestCert: true,
    rejectUnauthorized: false,
    ALPNProtocols: ['dpc/1'],
  });
  return guarded(sock, opts, async (decoder) => {
    await waitSecure(sock, 'secure');
    sock.pipe(decoder);
    const hello = nextFrame(decoder);
    const peer = peerIdentity(sock);
    const refuse = (reason: string) => {
      sock.end(encodeFrame({ t: 'reject', reason }));
    };
    if (opts.expectedNodeId !== undefined && peer.nodeId !== opts.expectedNodeId) {
      refuse('identity: not the expected peer');
      throw new PeerIdentityMismatchError(opts.expectedNodeId, peer.nodeId);
    }
    const verdict = opts.authorize?.(peer.nodeId) ?? true;
    if (verdict !== true) {
      refuse(verdict);
      throw new PeerRejectedError(verdict);
    }
    const f = await hello;
    if (f.t !== 'hello') throw new HandshakeError(`expected hello, got ${f.t}`);
    sock.write(encodeFrame({ t: 'hello_ack' }));
    // The accepting side learns the RTT from a ping sent right behind the ack.
    return makeConnection(sock, decoder, opts, peer, 0, undefined, true);
  });
}
