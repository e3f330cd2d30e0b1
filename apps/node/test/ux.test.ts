import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { baseIni, config, run } from './harness.js';

/** A UDP port on ::1 that nobody answers on (bound, then closed). */
async function deadUdpPort(host: string): Promise<number> {
  const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.bind(0, host);
  await once(s, 'listening');
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('dpc-node as a person meets it', () => {
  it('prints IPv6 endpoints in brackets ([::1]:port), in text and in --json', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dpc-ux-'));
    const port = await deadUdpPort('::1');
    const file = await config(dir, baseIni(`[::1]:${port}`).replace('bootstrap_timeout = 5', 'bootstrap_timeout = 1'));
    const r = await run(['start', '--no-retry', '--config', file, '--data-dir', dir, '--allow-loopback'], 30_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`(seeds: [::1]:${port})`);
    expect(r.stderr).not.toMatch(/[^[]::1:\d/);
    const j = await run(['start', '--no-retry', '--json', '--config', file, '--data-dir', dir, '--allow-loopback'], 30_000);
    const last = JSON.parse(j.stdout.trim().split('\n').pop() as string);
    expect(last).toMatchObject({ event: 'error', error: { code: 'DPC_DHT_BOOTSTRAP' } });
    expect(last.error.message).toContain(`[::1]:${port}`);
  });
});
