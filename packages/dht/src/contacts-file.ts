import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { MAX_PERSISTED_CONTACTS } from './constants.js';
import type { DhtPeer } from './types.js';

/** File in `dataDir` that keeps the routing table's contacts across restarts. */
export const CONTACTS_FILE = 'dht-contacts.json';

/** A contact as kept on disk. */
export interface SavedContact extends DhtPeer {
  id: string;
}

/**
 * The contacts a saved file holds, at most `max`: entries that are not `{ id: 32 hex digits,
 * host: an IP address, port: 1–65535 }` are skipped, and a file that is not such JSON yields none.
 */
export function parseContactsFile(text: string, max = MAX_PERSISTED_CONTACTS): SavedContact[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return [];
  }
  const list = (data as { contacts?: unknown } | null)?.contacts;
  if (!Array.isArray(list)) return [];
  const out: SavedContact[] = [];
  const seen = new Set<string>();
  for (const c of list) {
    if (out.length >= max) break;
    const { id, host, port } = (c ?? {}) as Record<string, unknown>;
    if (typeof id !== 'string' || !/^[0-9a-f]{32}$/.test(id)) continue;
    if (typeof host !== 'string' || isIP(host) === 0) continue;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) continue;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ id, host, port });
  }
  return out;
}

/** Reads the saved contacts of `dir`; none when the file is missing or unreadable. */
export async function loadContacts(dir: string, max = MAX_PERSISTED_CONTACTS): Promise<SavedContact[]> {
  try {
    return parseContactsFile(await readFile(join(dir, CONTACTS_FILE), 'utf8'), max);
  } catch {
    return [];
  }
}

/** Writes up to `max` contacts to `dir` (write to a temporary file, then rename). */
export async function saveContacts(dir: string, contacts: readonly SavedContact[], max = MAX_PERSISTED_CONTACTS): Promise<void> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, CONTACTS_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ v: 1, contacts: contacts.slice(0, max) })}\n`, { mode: 0o600 });
  await rename(tmp, file);
}
