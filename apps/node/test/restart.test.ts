import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { apiClient, baseIni, bootstrapNode, freePort, startNode } from './harness.js';

const delivered = (procs: Array<{ events: Array<Record<string, unknown>> }>): number[] =>
  procs.flatMap((p) => p.events.filter((e) => e.event === 'message').map((e) => Number(String(e.text).slice(2))));

const until = async (cond: () => boolean, ms: number, what: string) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not reached in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/**
 * Two real dpc-node processes, A sending 300 numbered messages to B through A's API. The
 * outbox and B's delivered-record live in each data directory's store.
 */
async function twoNodes(root: string, seed: string) {
  const ini = async (name: string, port: number) => {
    const f = join(root, `${name}.ini`);
    await writeFile(
      f,
      baseIni(seed, '')
        .replace('listen_port = 0', `listen_port = ${port}`)
        .replace('[api]\nenabled = false', '[api]\nenabled = true\nport = 0'),
    );
    return f;
  };
  const dirs = { a: join(root, 'a'), b: join(root, 'b') };
  await mkdir(dirs.a);
  await mkdir(dirs.b);
  const files = { a: await ini('a', await freePort()), b: await ini('b', await freePort()) };
  const start = async (who: 'a' | 'b') => {
    const n = startNode(['--config', files[who], '--data-dir', dirs[who]]);
    await n.next('listening');
    return n;
  };
  return { dirs, start };
}

describe('dpc-node: nothing lost, nothing twice across SIGKILL', () => {
  it('B is SIGKILLed and restarted twice while A sends 300 messages: B delivers each exactly once, in order', async () => {
    const { root, seed } = await bootstrapNode();
    const { dirs, start } = await twoNodes(root, seed);
    const bs = [await start('b')];
    const a = await start('a');
    const bId = String((bs[0] as { events: Array<Record<string, unknown>> }).events.find((e) => e.event === 'listening')?.nodeId);
    const api = await apiClient(String((await a.next('api')).url), dirs.a);
    for (const i of range(300)) {
      const r = await api.call('send', { to: bId, text: `m-${i}`, wait: 'accepted' });
      expect(r.error, `message ${i}`).toBeUndefined();
      if (i === 100 || i === 200) {
        const b = bs[bs.length - 1] as (typeof bs)[number];
        b.p.kill('SIGKILL');
        await once(b.p, 'exit');
        bs.push(await start('b'));
      }
    }
    await until(() => delivered(bs).length >= 300, 90_000, 'all 300 delivered').catch((e: Error) => {
      throw new Error(
        `${e.message}; delivered ${delivered(bs).length}: missing ${JSON.stringify(range(300).filter((i) => !delivered(bs).includes(i)))} per process ${JSON.stringify(bs.map((b) => delivered([b]).length))}; B stderr: ${bs.map((b) => b.stderr().slice(-1500)).join('\n---\n')}; A stderr: ${a.stderr().slice(-3000)}`,
      );
    });
    await new Promise((r) => setTimeout(r, 500)); // a duplicate would show up now
    expect(delivered(bs)).toEqual(range(300));
    const sessions = (await api.call('sessions')).result as Array<{ peerId: string; unacked: number }>;
    expect(sessions.find((s) => s.peerId === bId)?.unacked).toBe(0);
    api.close();
  }, 180_000);

  it('A is SIGKILLed mid-stream with messages unacknowledged: after its restart B delivers each exactly once, in order', async () => {
    const { root, seed } = await bootstrapNode();
    const { dirs, start } = await twoNodes(root, seed);
    const b = await start('b');
    const bId = String(b.events.find((e) => e.event === 'listening')?.nodeId);
    let a = await start('a');
    let api = await apiClient(String((await a.next('api')).url), dirs.a);
    for (const i of range(300)) {
      // B is frozen while 101–150 are sent: they are accepted (in A's outbox), not acknowledged.
      if (i === 101) b.p.kill('SIGSTOP');
      const r = await api.call('send', { to: bId, text: `m-${i}`, wait: 'accepted' });
      expect(r.error, `message ${i}`).toBeUndefined();
      if (i === 150) {
        const s = (await api.call('sessions')).result as Array<{ peerId: string; unacked: number }>;
        expect(s.find((x) => x.peerId === bId)?.unacked).toBeGreaterThan(0);
        a.p.kill('SIGKILL');
        await once(a.p, 'exit');
        b.p.kill('SIGCONT');
        a = await start('a');
        api = await apiClient(String((await a.next('api')).url), dirs.a);
      }
    }
    await until(() => delivered([b]).length >= 300, 90_000, 'all 300 delivered');
    await new Promise((r) => setTimeout(r, 500));
    expect(delivered([b])).toEqual(range(300));
    expect(a.events.some((e) => e.event === 'resumed')).toBe(true);
    api.close();
  }, 180_000);
});
