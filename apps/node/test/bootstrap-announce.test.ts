import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { baseIni, bootstrapNode, seedFrom, sendCli, startNode } from './harness.js';

// Issue 10 §9: a bootstrap node (no seed_nodes, nobody known at start) used to never announce
// its endpoint record, so a `send` to it failed with DPC_PEER_LOOKUP_FAILED.
describe('dpc-node: a bootstrap node can be reached', () => {
  it('send to a bootstrap node (no seed_nodes) is delivered', async () => {
    const { root, seed, boot } = await bootstrapNode();
    const bootEv = await boot.next('listening');
    expect(seedFrom(bootEv.dht)).toBe(seed);
    const ini = join(root, 'a.ini');
    await writeFile(ini, baseIni(seed));
    const sent = await sendCli(ini, join(root, 'a'), bootEv.nodeId, 'hi boot');
    const result = JSON.parse(sent.stdout.trim().split('\n').pop() as string);
    expect(result, sent.stderr).toMatchObject({ event: 'delivered', to: bootEv.nodeId });
    expect(await boot.next('message')).toMatchObject({ text: 'hi boot' });
  });

  it('a bootstrap node stores its record at the first peer that joins', async () => {
    const { root, seed, boot } = await bootstrapNode();
    const ini = join(root, 'b.ini');
    await writeFile(ini, baseIni(seed));
    const b = startNode(['--config', ini, '--data-dir', join(root, 'b')]);
    await b.next('listening');
    const t0 = Date.now();
    while (!/announced endpoint record.*stored_at=1/.test(boot.stderr()) && Date.now() - t0 < 10_000) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(boot.stderr()).toMatch(/announced endpoint record.*stored_at=1/);
  });
});
