import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { Lab } from './lab.js';

export interface CoturnOptions {
  /** TURN with REST credentials (`use-auth-secret`) under this secret; without it, STUN only. */
  authSecret?: string;
  /** Realm of the TURN credentials (default `dpc.lab`). */
  realm?: string;
  /** How long to wait for it to listen, ms (default 10 s). */
  timeoutMs?: number;
}

export interface Coturn {
  readonly process: ChildProcess;
  /** The host's IPv4 address it listens on (port 3478). */
  readonly ip: string;
  /** The last 20 KB of its log. */
  log(): string;
}

/**
 * Starts Debian's coturn (`turnserver`) on a lab host, on its first IPv4 address, port 3478 (no
 * TLS/DTLS, no CLI), and resolves once it listens (UDP, and TCP too for TURN). STUN only unless
 * `authSecret` is given. The allocation lifetime stays coturn's default (600 s) on purpose: werift
 * 0.24 sleeps 5/6 of it in an uncancellable timer before each refresh, even after its peer
 * connection closed, and a short-lived `dpc-node send` must exit anyway. The lab's destroy() kills
 * it; its pid file is removed when it exits.
 */
export async function startCoturn(lab: Lab, host: string, o: CoturnOptions = {}): Promise<Coturn> {
  const ip = lab.hosts[host]?.ipv4[0];
  if (!ip) throw new Error(`lab host ${host} has no IPv4 address for coturn`);
  const pidfile = `/tmp/dpc-lab-${lab.id}-${host}-turnserver.pid`;
  const mode = o.authSecret
    ? ['--use-auth-secret', `--static-auth-secret=${o.authSecret}`, `--realm=${o.realm ?? 'dpc.lab'}`]
    : ['--stun-only'];
  const child = lab.spawn(
    host,
    'turnserver',
    ['-n', '--no-cli', '--no-tls', '--no-dtls', ...mode, '-L', ip, '-E', ip, '--log-file', 'stdout', '--simple-log', '--pidfile', pidfile],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  child.once('exit', () => rmSync(pidfile, { force: true }));
  let log = '';
  child.stdout?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-20_000);
  });
  // Ready once it listens on port 3478 (0x0D96): UDP, and TCP as well for TURN.
  const sockets = o.authSecret ? 2 : 1;
  const deadline = Date.now() + (o.timeoutMs ?? 10_000);
  for (;;) {
    const r = await lab.exec(host, 'sh', ['-c', 'cat /proc/net/udp /proc/net/tcp']);
    if ((r.stdout.match(/:0D96 /g) ?? []).length >= sockets) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`turnserver did not start on ${host}: ${log}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  return { process: child, ip, log: () => log };
}
