#!/usr/bin/env node
/**
 * A small UDP probe run inside lab namespaces (`node probe.js …`), so the lab can measure itself
 * without ping or netcat on the machine. Prints JSON lines on stdout.
 *
 *   probe.js echo <port>[,<port>…] [<ip>…]
 *     Listens on each port of each address (default every address; give the addresses of a
 *     multi-homed host so replies leave from the address that was asked). Answers every datagram with {"id", "from": "<ip>:<port>"} (the address it came from,
 *     i.e. the NAT mapping). Prints {"ready": true} once listening on all ports.
 *   probe.js send <localPort> <count> <intervalMs> <waitMs> <ip:port>…
 *     From one socket (one local port, so NAT mappings are comparable), sends <count> probes
 *     to each target and prints {"target", "sent", "received", "rttsMs", "mapped"}: `mapped`
 *     lists the distinct source addresses the targets saw.
 *   probe.js tcp-listen <port>
 *     Accepts TCP connections and writes the peer's address to each; prints {"ready": true}.
 *   probe.js tcp-connect <ip:port> <timeoutMs>
 *     Prints {"connected": true, "reply"} or {"connected": false, "error"}.
 */
import { createSocket, type Socket } from 'node:dgram';
import { connect, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** Path of this script in dist, to run with `lab.exec(host, process.execPath, [PROBE_SCRIPT, …])`. */
export const PROBE_SCRIPT = fileURLToPath(import.meta.url);

function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

function open(family: 'udp4' | 'udp6'): Socket {
  return createSocket({ type: family, ipv6Only: family === 'udp6' });
}

async function echo(ports: number[], addresses: string[]): Promise<void> {
  const sockets: Socket[] = [];
  const binds: Array<[family: 'udp4' | 'udp6', address: string | undefined]> = addresses.length
    ? addresses.map((a) => [a.includes(':') ? 'udp6' : 'udp4', a])
    : [
        ['udp4', undefined],
        ['udp6', undefined],
      ];
  for (const port of ports) {
    for (const [family, address] of binds) {
      const s = open(family);
      s.on('message', (msg, rinfo) => {
        let id: unknown = null;
        try {
          id = (JSON.parse(msg.toString()) as { id?: unknown }).id;
        } catch {
          return;
        }
        const from = rinfo.family === 'IPv6' ? `[${rinfo.address}]:${rinfo.port}` : `${rinfo.address}:${rinfo.port}`;
        s.send(JSON.stringify({ id, from }), rinfo.port, rinfo.address);
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(port, address, resolve);
      });
      sockets.push(s);
    }
  }
  console.log(JSON.stringify({ ready: true, ports }));
}

async function send(localPort: number, count: number, intervalMs: number, waitMs: number, targets: string[]): Promise<void> {
  const v6 = targets.some((t) => t.startsWith('['));
  const s = open(v6 ? 'udp6' : 'udp4');
  await new Promise<void>((resolve) => s.bind(localPort, resolve));
  const sentAt = new Map<string, number>();
  const results = targets.map((target) => ({ target, sent: 0, received: 0, rttsMs: [] as number[], mapped: [] as string[] }));
  s.on('message', (msg) => {
    let reply: { id?: string; from?: string };
    try {
      reply = JSON.parse(msg.toString()) as { id?: string; from?: string };
    } catch {
      return;
    }
    const at = reply.id ? sentAt.get(reply.id) : undefined;
    if (at === undefined || !reply.id) return;
    sentAt.delete(reply.id);
    const r = results[Number(reply.id.split('/')[0])];
    if (!r) return;
    r.received++;
    r.rttsMs.push(Math.round((performance.now() - at) * 100) / 100);
    if (reply.from && !r.mapped.includes(reply.from)) r.mapped.push(reply.from);
  });
  for (let n = 0; n < count; n++) {
    for (const [i, target] of targets.entries()) {
      const { host, port } = splitHostPort(target);
      const id = `${i}/${n}`;
      sentAt.set(id, performance.now());
      s.send(JSON.stringify({ id }), port, host);
      results[i]!.sent++;
    }
    if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
  }
  await new Promise((r) => setTimeout(r, waitMs));
  for (const r of results) console.log(JSON.stringify(r));
  s.close();
}

async function tcpListen(port: number): Promise<void> {
  const server = createServer((sock) => sock.end(`${sock.remoteAddress}:${sock.remotePort}`));
  await new Promise<void>((resolve) => server.listen(port, resolve));
  console.log(JSON.stringify({ ready: true, port }));
}

async function tcpConnect(target: string, timeoutMs: number): Promise<void> {
  const { host, port } = splitHostPort(target);
  const result = await new Promise<object>((resolve) => {
    const sock = connect({ host, port, timeout: timeoutMs });
    let reply = '';
    sock.on('data', (d) => {
      reply += d.toString();
    });
    sock.on('end', () => resolve({ connected: true, reply }));
    sock.on('timeout', () => {
      sock.destroy();
      resolve({ connected: false, error: 'timeout' });
    });
    sock.on('error', (err: NodeJS.ErrnoException) => resolve({ connected: false, error: err.code ?? err.message }));
  });
  console.log(JSON.stringify({ target, ...result }));
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === 'echo') {
    await echo((rest[0] ?? '').split(',').map(Number), rest.slice(1));
  } else if (mode === 'send') {
    const [localPort, count, intervalMs, waitMs, ...targets] = rest;
    await send(Number(localPort), Number(count), Number(intervalMs), Number(waitMs), targets);
  } else if (mode === 'tcp-listen') {
    await tcpListen(Number(rest[0]));
  } else if (mode === 'tcp-connect') {
    await tcpConnect(rest[0] ?? '', Number(rest[1] ?? 5000));
  } else {
    console.error('usage: probe.js echo <port>[,<port>…] [<ip>…] | probe.js send <localPort> <count> <intervalMs> <waitMs> <ip:port>…');
    process.exit(2);
  }
}
