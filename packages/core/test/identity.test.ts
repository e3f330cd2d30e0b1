import { createHash } from 'node:crypto';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kademliaIdOf, loadOrCreateIdentity, nodeIdFromPublicKey, nodeIdOfKademliaId } from '@dpc/core';
import { describe, expect, it } from 'vitest';

describe('identity', () => {
  it('is created on first use with 0600 files and reused afterwards', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'dpc-id-')), 'data');
    const a = await loadOrCreateIdentity(dir);
    expect((await stat(join(dir, 'identity.key'))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const b = await loadOrCreateIdentity(dir);
    expect(b.nodeId).toBe(a.nodeId);
    expect(b.publicKey.equals(a.publicKey)).toBe(true);
  });

  it('node id is dpc-node- + first 32 hex of SHA-256(raw public key), and is the Kademlia id', async () => {
    const id = await loadOrCreateIdentity(await mkdtemp(join(tmpdir(), 'dpc-id-')));
    const hex = createHash('sha256').update(id.publicKey).digest('hex').slice(0, 32);
    expect(id.nodeId).toBe(`dpc-node-${hex}`);
    expect(id.publicKey).toHaveLength(32);
    expect(nodeIdFromPublicKey(id.publicKey)).toBe(id.nodeId);
    expect(id.kademliaId.toString('hex')).toBe(hex);
    expect(kademliaIdOf(id.nodeId).equals(id.kademliaId)).toBe(true);
    expect(nodeIdOfKademliaId(id.kademliaId)).toBe(id.nodeId);
  });

  it('concurrent first starts agree on one identity', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dpc-id-'));
    const ids = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateIdentity(dir)));
    expect(new Set(ids.map((i) => i.nodeId)).size).toBe(1);
    expect(await readFile(join(dir, 'identity.key'), 'utf8')).toBe(ids[0]?.privateKeyPem);
  });

  it('a corrupt key file is a typed error, not a new identity', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dpc-id-'));
    await writeFile(join(dir, 'identity.key'), 'garbage', { mode: 0o600 });
    await expect(loadOrCreateIdentity(dir)).rejects.toMatchObject({ code: 'DPC_IDENTITY' });
    expect(await readFile(join(dir, 'identity.key'), 'utf8')).toBe('garbage');
  });
});
