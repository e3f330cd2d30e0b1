import { link, readFile, unlink, writeFile } from 'node:fs/promises';

/**
 * A lock file holding the owner's PID, taken atomically with link() (two processes starting at
 * once cannot both get it). A lock whose process is gone (SIGKILL) is stale and taken over.
 */
export async function acquireLock(file: string): Promise<{ ok: true; release(): Promise<void> } | { ok: false; pid?: number }> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const tmp = `${file}.${process.pid}.${Math.random().toString(16).slice(2)}`;
    await writeFile(tmp, `${process.pid}\n`, { mode: 0o600 });
    try {
      await link(tmp, file);
      return {
        ok: true,
        async release() {
          await unlink(file).catch(() => {});
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await unlink(tmp).catch(() => {});
    }
    const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isSafeInteger(pid) && pid > 0 && alive(pid)) return { ok: false, pid };
    // Stale: its owner died without releasing it.
    await unlink(file).catch(() => {});
  }
  return { ok: false };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
