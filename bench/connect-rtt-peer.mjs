#!/usr/bin/env node
// One end of bench/connect-rtt-lab.mjs's secure-channel measurement, run in a lab host with the
// @dpc/core build of the tree given as <root>. Both ends share the machine's clock, so
// `performance.timeOrigin + performance.now()` of two processes compare.
//   listen <root> <port> <n>: prints {"listening", "nodeId"}, accepts n connections, prints
//     {"first_message_at": t} per connection
//   dial <root> <host> <port> <nodeId>: prints {"t0", "connected_at", "accepted_at"} (t0: before
//     the TCP connect; the first message is written as soon as secureConnect returns)
import { once } from 'node:events';
import { connect, createServer } from 'node:net';

const [role, root, ...rest] = process.argv.slice(2);
const core = await import(`${root}/packages/core/dist/index.js`);
const now = () => performance.timeOrigin + performance.now();

/**
 * One loopback connection with `identity` first, as a running node has made before: the TLS
 * context and certificate are built and the code is warm, so the lab link is what is timed.
 */
async function warm(identity) {
  const server = createServer({ noDelay: true }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection').then(([s]) => core.secureAccept(s, { identity, tier: 'ipv4_direct' }));
  const sock = connect({ host: '127.0.0.1', port: server.address().port, noDelay: true });
  await once(sock, 'connect');
  const a = await core.secureConnect(sock, { identity, tier: 'ipv4_direct', expectedNodeId: identity.nodeId });
  const b = await accepted;
  const got = once(b, 'message');
  await a.send('warm');
  await got;
  await a.close();
  server.close();
}

if (role === 'listen') {
  const [port, n] = rest;
  const identity = core.generateIdentity();
  await warm(identity);
  let left = Number(n);
  const server = createServer({ noDelay: true }, (s) => {
    s.on('error', () => {});
    core.secureAccept(s, { identity, tier: 'ipv4_direct' }).then(
      (conn) => {
        conn.once('message', () => {
          console.log(JSON.stringify({ first_message_at: now() }));
          conn.close().catch(() => {});
          if (--left === 0) server.close();
        });
      },
      (err) => console.log(JSON.stringify({ error: err.message })),
    );
  });
  server.listen(Number(port), '0.0.0.0');
  await once(server, 'listening');
  console.log(JSON.stringify({ listening: true, nodeId: identity.nodeId }));
} else {
  const [host, port, bobNodeId] = rest;
  const identity = core.generateIdentity();
  await warm(identity);
  const t0 = now();
  const socket = connect({ host, port: Number(port), noDelay: true });
  await once(socket, 'connect');
  const conn = await core.secureConnect(socket, { identity, tier: 'ipv4_direct', expectedNodeId: bobNodeId });
  const connected_at = now();
  await conn.send('first');
  await (conn.accepted ?? Promise.resolve());
  const accepted_at = now();
  console.log(JSON.stringify({ t0, connected_at, accepted_at }));
  await once(conn, 'close');
}
