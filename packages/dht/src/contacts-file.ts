import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { hostPort } from '@dpc/core';
import { MAX_PERSISTED_CONTACTS } from './constants.js';
import type { DhtPeer } from './types.js';

/** File in `dataDir` that keeps the routing table's contacts across restarts. */
export const CONTACTS_FILE = 'dht-contacts.json';

/** A contact as kept on disk. */
export interface SavedContact extends DhtPeer {
  id: string;
}

/**
 * A saved contacts file: the contacts, and the seeds (`[dht] seed_nodes`, as `host:port`,
 * sorted) the node was configured with when it saved them. Contacts saved under other seeds
 * belong to another network as far as the config can tell, and are not used.
 */
export interface ContactsFile {
  seeds: string[] | undefined;
  contacts: SavedContact[];
}

/** The network a list of seeds names: their `host:port` forms, sorted and without duplicates. */
export function seedsKey(seeds: readonly DhtPeer[]): string[] {
  return [...new Set(seeds.map((s) => hostPort(s.host, s.port)))].sort();
}

/** True when contacts saved under `saved` seeds may be used by a node configured with `seeds`. */
export function sameNetwork(saved: readonly string[] | undefined, seeds: readonly DhtPeer[]): boolean {
  if (!saved || seeds.length === 0) return false;
  const now = seedsKey(seeds);
  return saved.length === now.length && saved.every((s, i) => s === now[i]);
}

/**
 * The contacts a saved file holds, at most `max`: entries that are not `{ id: 32 hex digits,
 * host: an IP address, port: 1–65535 }` are skipped, and a file that is not such JSON yields none.
 */
export function parseContactsFile(text: string, max = MAX_PERSISTED_CONTACTS): SavedContact[] {
  return parseContactsFileWithSeeds(text, max).contacts;
}

/** The contacts and the seeds they were saved under (undefined in a file of version 1). */
export function parseContactsFileWithSeeds(text: string, max = MAX_PERSISTED_CONTACTS): ContactsFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { seeds: undefined, contacts: [] };
  }
  const rawSeeds = (data as { seeds?: unknown } | null)?.seeds;
  const seeds =
    Array.isArray(rawSeeds) && rawSeeds.length <= 64 && rawSeeds.every((s) => typeof s === 'string' && s.length <= 300)
      ? (rawSeeds as string[])
      : undefined;
  const list = (data as { contacts?: unknown } | null)?.contacts;
  if (!Array.isArray(list)) return { seeds, contacts: [] };
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
  return { seeds, contacts: out };
}

/** Reads the saved contacts file of `dir`; no contacts when the file is missing or unreadable. */
export async function loadContacts(dir: string, max = MAX_PERSISTED_CONTACTS): Promise<ContactsFile> {
  try {
    return parseContactsFileWithSeeds(await readFile(join(dir, CONTACTS_FILE), 'utf8'), max);
  } catch {
    return { seeds: undefined, contacts: [] };
  }
}

/**
 * Writes up to `max` contacts to `dir` with the seeds the node runs with (write to a temporary
 * file, then rename).
 */
export async function saveContacts(
  dir: string,
  contacts: readonly SavedContact[],
  seeds: readonly DhtPeer[],
  max = MAX_PERSISTED_CONTACTS,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, CONTACTS_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ v: 2, seeds: seedsKey(seeds), contacts: contacts.slice(0, max) })}\n`, { mode: 0o600 });
  await rename(tmp, file);
}
