import { connect, type Socket } from 'node:net';
import { type Counters, hostPort, type Identity, type SecureConnection, secureConnect, type TierName, toAbortError } from '@dpc/core';
import type { Candidate } from './address.js';

export interface DialOptions {
  identity: Identity;
  tier: TierName;
  expectedNodeId: string;
  signal: AbortSignal;
  handshakeTimeoutMs?: number;
  counters?: Counters;
}

/** Opens a TCP connection to the candidate and secures it; aborting destroys the socket. */
export async function dialCandidate(c: Candidate, opts: DialOptions): Promise<SecureConnection> {
  opts.counters?.inc(`dial_attempts_${opts.tier}`);
  const socket = await tcpConnect(c.ip, c.port, opts.signal);
  try {
    return await secureConnect(socket, {
      identity: opts.identity,
      tier: opts.tier,
      expectedNodeId: opts.expectedNodeId,
      signal: opts.signal,
      ...(opts.handshakeTimeoutMs !== undefined && { handshakeTimeoutMs: opts.handshakeTimeoutMs }),
      ...(opts.counters && { counters: opts.counters }),
    });
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

function tcpConnect(host: string, port: number, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(toAbortError(signal));
    const socket = connect({ host, port, noDelay: true });
    const cleanup = () => {
      socket.off('connect', onConnect);
      socket.off('error', onError);
      signal.removeEventListener('abort', onAbort);
    };
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const onError = (err: Error) => {
      cleanup();
      socket.destroy();
      reject(Object.assign(err, { address: hostPort(host, port) }));
    };
    const onAbort = () => {
      cleanup();
      socket.destroy();
      reject(toAbortError(signal));
    };
    socket.once('connect', onConnect);
    socket.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
