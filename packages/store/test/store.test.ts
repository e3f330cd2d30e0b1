import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '@dpc/store';
import { afterEach, describe, expect, it } from 'vitest';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'dpc-store-'));
  dirs.push(d);
  return join(d, 'store');
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);

describe('@dpc/store', () => {
  it('puts, deletes atomically and lists a prefix in key order', async () => {
    const path = tmp();
    const s = await openStore(path);
    await s.batch([
      { type: 'put', key: 'o/b/2', value: bytes('two') },
      { type: 'put', key: 'o/b/1', value: bytes('one') },
      { type: 'put', key: 'o/c/1', value: bytes('other') },
      { type: 'put', key: 'p', value: bytes('x') },
    ]);
    await s.batch([{ type: 'del', key: 'p' }]);
    const listed: string[] = [];
    for await (const [k, v] of s.entries('o/b/')) listed.push(`${k}=${text(v)}`);
    expect(listed).toEqual(['o/b/1=one', 'o/b/2=two']);
    expect(await s.get('p')).toBeUndefined();
    await s.close();
    const again = await openStore(path);
    expect(text(await again.get('o/c/1'))).toBe('other');
    await again.close();
  });

  it('refuses a second opener of the same directory with DPC_STORE_LOCKED', async () => {
    const path = tmp();
    const s = await openStore(path);
    await expect(openStore(path)).rejects.toMatchObject({ code: 'DPC_STORE_LOCKED' });
    await s.close();
  });

  it('takes over the lock of a process that was killed', async () => {
    const path = tmp();
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { openStore } from '@dpc/store'; await openStore(${JSON.stringify(path)}); console.log('open'); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise((r) => child.stdout.once('data', r));
    await expect(openStore(path)).rejects.toMatchObject({ code: 'DPC_STORE_LOCKED', pid: child.pid });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const s = await openStore(path);
    await s.close();
  });

  it('batchSync commits before it returns', async () => {
    const path = tmp();
    const s = await openStore(path);
    s.batchSync?.([{ type: 'put', key: 'x', value: bytes('now') }]);
    expect(text(await s.get('x'))).toBe('now');
    await s.close();
  });

  it('close() commits every accepted batch and completes, also as the last thing a process does', async () => {
    const path = tmp();
    // Writes not awaited, then close with nothing else keeping the event loop alive: the process
    // must not exit before close settles (it did: exit 0 with the promise pending, a node's
    // `send` then reported success after printing a failure).
    const script = `import { openStore } from '@dpc/store';
      const s = await openStore(${JSON.stringify(path)});
      for (let i = 0; i < 50; i++) void s.batch([{ type: 'put', key: 'k/' + String(i).padStart(3, '0'), value: new Uint8Array(64) }]);
      await s.close();
      process.stdout.write('closed');
      process.exitCode = 7;`;
    for (let round = 0; round < 5; round++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
        cwd: process.cwd(),
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect({ code, out }).toEqual({ code: 7, out: 'closed' });
    }
    const s = await openStore(path);
    const keys: string[] = [];
    for await (const [k] of s.entries('k/')) keys.push(k);
    expect(keys.length).toBe(50);
    await s.close();
  });

  it('loses no acknowledged batch when the writer is SIGKILLed', async () => {
    const path = tmp();
    // A child writes numbered batches and prints each number once its batch resolved.
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { openStore } from '@dpc/store';
         const s = await openStore(${JSON.stringify(path)});
         for (let i = 0; ; i++) {
           await s.batch([{ type: 'put', key: 'k/' + String(i).padStart(8, '0'), value: new Uint8Array(64) }]);
           process.stdout.write(i + '\\n');
         }`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], cwd: process.cwd() },
    );
    let acked = -1;
    let buf = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) acked = Number(l);
        if (acked >= 200) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((r) => child.once('exit', r));
    const s = await openStore(path);
    let n = 0;
    for await (const [k] of s.entries('k/')) {
      expect(k).toBe(`k/${String(n).padStart(8, '0')}`);
      n++;
    }
    expect(n).toBeGreaterThanOrEqual(acked + 1);
    await s.close();
  });
});
