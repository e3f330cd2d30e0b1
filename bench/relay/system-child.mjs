// One system of the relay benchmark in a process of its own, driven by relay.mjs over IPC.
import { openSystem } from './system.mjs';

const [kind, flags = '{}'] = process.argv.slice(2);
try {
  const system = await openSystem(kind, JSON.parse(flags));
  process.send({ paths: system.paths });
  process.on('message', async ({ id, op, args = [] }) => {
    try {
      const value = await system[op](...args);
      // After close, exit once the answer is out (the IPC channel writes asynchronously).
      process.send({ id, value }, () => op === 'close' && process.exit(0));
    } catch (err) {
      process.send({ id, error: String(err?.stack ?? err) });
    }
  });
} catch (err) {
  process.send({ error: String(err?.stack ?? err) }, () => process.exit(1));
}
