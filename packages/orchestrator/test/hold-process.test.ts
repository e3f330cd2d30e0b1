import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { generateIdentity, secureAccept } from '@dpc/core';
import { describe, expect, it } from 'vitest';

const FIXTURE = fileURLToPath(new URL('./fixtures/awaits-only.mjs', import.meta.url));

/** Runs the fixture; resolves with its exit code and stdout once it exits (killed after 30 s). */
async function run(
  mode: 'connect' | 'send',
  port: number,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [FIXTURE, mode, String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
  try {
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, stdout, stderr };
  } finally {
    clearTimeout(kill);
  }
}

describe('an awaited call holds the process until it settles', () => {
  it('connect() through a tier whose only socket is unref’d: the process waits for the deadline and gets the result', async () => {
    const target = createSocket('udp4'); // unreachable-but-slow: takes the probe, never answers
    const probes: string[] = [];
    target.on('message', (m) => probes.push(m.toString()));
    await new Promise<void>((r) => target.bind(0, '127.0.0.1', r));
    try {
      const { code, stdout, stderr } = await run('connect', target.address().port);
      expect(probes).toEqual(['probe']);
      expect(code, stderr).toBe(0);
      const result = JSON.parse(stdout.trim()) as { settled: string; code: string };
      expect(result.settled).toBe('connect-rejected');
      expect(result.code).toBe('DPC_CONNECT_FAILED');
    } finally {
      target.close();
    }
  });

  it('send() on a path whose socket is unref’d: the process waits for the acknowledgement (here its signal) and gets the result', async () => {
    const identity = generateIdentity();
    const sockets = new Set<Socket>();
    const frames: unknown[] = [];
    // An acceptor that takes the session's frames and never acknowledges them.
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      secureAccept(socket, { identity, tier: 'ipv4_direct' }).then(
        (conn) => conn.on('message', (m) => frames.push(m)),
        () => {},
      );
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { code, stdout, stderr } = await run('send', (server.address() as { port: number }).port, { PEER_PEM: identity.privateKeyPem });
      expect(code, stderr).toBe(0);
      const result = JSON.parse(stdout.trim()) as { settled: string; code: string };
      expect(result.settled).toBe('send-rejected');
      expect(['DPC_TIMEOUT', 'DPC_ABORTED']).toContain(result.code);
      expect(frames.length).toBeGreaterThan(0);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});
