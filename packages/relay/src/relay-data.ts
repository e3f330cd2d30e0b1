import type { Socket } from 'node:net';
import type { Counters } from '@dpc/core';
import { DATA_MAGIC_FIRST_BYTE, readPreamble, type Splice } from './relay-splice.js';

/**
 * Tells a data connection from a control connection on the relay's one port by the first byte
 * (a preamble's magic, or a TLS record), puts it back and hands the socket on. A socket that
 * sends nothing within `timeoutMs` is closed.
 */
export function sortConnection(socket: Socket, timeoutMs: number, on: { data(s: Socket): void; control(s: Socket): void }): void {
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const onClose = () => clearTimeout(timer);
  const onReadable = () => {
    const first = socket.read(1) as Buffer | null;
    if (first === null) return;
    socket.off('readable', onReadable);
    socket.off('close', onClose);
    clearTimeout(timer);
    socket.unshift(first);
    if (first[0] === DATA_MAGIC_FIRST_BYTE) on.data(socket);
    else on.control(socket);
  };
  socket.on('readable', onReadable);
  socket.once('close', onClose);
}

/**
 * Binds a data connection to its session by the token of its preamble. Unknown or late tokens
 * (no such live session), a used token, or a malformed preamble close the socket and are counted
 * (`data_refused_<why>`); otherwise the session is returned, its side attached.
 */
export async function bindDataConnection<S extends { splice?: Splice }>(
  socket: Socket,
  timeoutMs: number,
  find: (sessionId: string) => S | undefined,
  counters: Counters,
): Promise<S | undefined> {
  const pre = await readPreamble(socket, timeoutMs);
  const refuse = (why: string) => {
    counters.inc(`data_refused_${why}`);
    socket.destroy();
    return undefined;
  };
  if (!pre) return refuse('preamble');
  const s = find(pre.sessionId);
  // A session that ended (a late connection) is as unknown as one that never was.
  if (!s?.splice) return refuse('unknown');
  const side = s.splice.sideOf(pre.token);
  if (side === -1) return refuse('unknown');
  if (!s.splice.attach(side, socket)) return refuse('duplicate');
  counters.inc('data_connections');
  socket.setNoDelay(true);
  return s;
}
