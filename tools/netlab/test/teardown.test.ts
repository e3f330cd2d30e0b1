import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { labAvailability, leftoverNamespaces } from './support.js';

const canRunLab = labAvailability(['ip', 'nft', 'conntrack']);
const LAB = fileURLToPath(new URL('../dist/index.js', import.meta.url));

describe.skipIf(!canRunLab)('teardown on interrupt', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)('a process holding a lab removes every namespace when it gets %s', async (sig) => {
    // A separate process builds a lab, says its id, then waits to be interrupted.
    const code = `
      const { createLab } = await import(${JSON.stringify(LAB)});
      const lab = await createLab({ publicHosts: [{ name: 'pub' }], routers: [{ name: 'home', kind: 'cone', lan: [{ name: 'alice' }] }] });
      console.log(JSON.stringify({ id: lab.id }));
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', (c) => reject(new Error(`lab process exited early (${c})`)));
    });
    const { id } = JSON.parse(line) as { id: string };
    expect(leftoverNamespaces(id).length).toBeGreaterThan(0);
    child.kill(sig);
    await once(child, 'exit');
    expect(leftoverNamespaces(id)).toEqual([]);
  });
});
