import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { labAvailability, leftoverNamespaces } from './support.js';

const canRunLab = labAvailability(['ip', 'nft', 'ethtool']);
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../examples/home-and-office.json', import.meta.url));

describe.skipIf(!canRunLab)('dpc-netlab CLI', () => {
  // A private state directory, so this test never sees (or removes) anyone else's labs.
  const stateDir = mkdtempSync(join(tmpdir(), 'dpc-netlab-cli-'));
  const env = { ...process.env, DPC_NETLAB_STATE_DIR: stateDir };
  const cli = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  let id = '';
  afterAll(async () => {
    if (id) await cli('down', id);
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('up builds the example topology and prints hosts and addresses', async () => {
    const r = await cli('up', EXAMPLE);
    expect(r.code, r.stderr).toBe(0);
    id = /lab ([a-z0-9]{6})/.exec(r.stdout)?.[1] ?? '';
    expect(id).not.toBe('');
    expect(r.stdout).toMatch(/alice\s+lan of home\s+dl[a-z0-9]{6}-alice\s+10\.1\.0\.2 2001:db8:1::2/);
    expect(leftoverNamespaces(id)).toContain(`dl${id}-bob-dly`);
  });

  it('exec runs a command in a host and passes its exit code through', async () => {
    const r = await cli('exec', 'alice', '--', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('10.1.0.2/24');
    expect((await cli('exec', '--lab', id, 'carol', '--', 'sh', '-c', 'exit 7')).code).toBe(7);
    expect((await cli('exec', 'nobody', '--', 'true')).stderr).toContain('no host nobody');
  });

  it('down removes the lab and gc finds nothing left', async () => {
    expect((await cli('flush', id)).stdout).toContain('flushed conntrack on 2 router(s)');
    expect((await cli('down', id)).code).toBe(0);
    expect(leftoverNamespaces(id)).toEqual([]);
    expect((await cli('ls')).stdout).toContain('no lab is up');
    id = '';
  });
});
