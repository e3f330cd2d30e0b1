import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** `<data-dir>/node.json`: which process runs the node of this data directory, and its API. */
export interface NodeFile {
  pid: number;
  nodeId: string;
  /** WebSocket API URL; null when `[api] enabled = false`. */
  api: string | null;
  startedAt: string;
}

export const NODE_FILE = 'node.json';

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

export async function writeNodeFile(dataDir: string, info: NodeFile): Promise<void> {
  await writeFile(join(dataDir, NODE_FILE), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
}

export async function removeNodeFile(dataDir: string): Promise<void> {
  await rm(join(dataDir, NODE_FILE), { force: true });
}

/** The running node of `dataDir`, or undefined (no file, unreadable, or its process is gone: stale). */
export async function readRunningNode(dataDir: string): Promise<NodeFile | undefined> {
  let info: NodeFile;
  try {
    info = JSON.parse(await readFile(join(dataDir, NODE_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof info?.pid !== 'number' || info.pid === process.pid || !pidAlive(info.pid)) return undefined;
  return info;
}
