import { createHash, createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign, verify } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { IdentityError } from './errors.js';

/** Prefix of every node id. */
export const NODE_ID_PREFIX = 'dpc-node-';
const NODE_ID_RE = /^dpc-node-[0-9a-f]{32}$/;
const IDENTITY_FILE = 'identity.key';

/** A node's Ed25519 key pair and the ids derived from it. */
export interface Identity {
  /** `dpc-node-` + first 32 hex digits of SHA-256(raw public key). */
  readonly nodeId: string;
  /** The same 128 bits as bytes: the Kademlia id. */
  readonly kademliaId: Buffer;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Buffer;
  readonly privateKey: KeyObject;
  /** PEM (PKCS#8) of the private key, for the TLS context. */
  readonly privateKeyPem: string;
  sign(data: Uint8Array): Buffer;
}

/** Default data directory: `~/.dpc`. */
export function defaultDataDir(): string {
  return join(homedir(), '.dpc');
}

/** Node id of a raw 32-byte Ed25519 public key. */
export function nodeIdFromPublicKey(raw: Uint8Array): string {
  if (raw.length !== 32) throw new IdentityError(`an Ed25519 public key is 32 bytes, got ${raw.length}`);
  return NODE_ID_PREFIX + createHash('sha256').update(raw).digest('hex').slice(0, 32);
}

/** True when `s` has the shape of a node id. */
export function isNodeId(s: unknown): s is string {
  return typeof s === 'string' && NODE_ID_RE.test(s);
}

/** The 16-byte Kademlia id of a node id. */
export function kademliaIdOf(nodeId: string): Buffer {
  if (!isNodeId(nodeId)) throw new IdentityError(`not a node id: ${JSON.stringify(nodeId)}`);
  return Buffer.from(nodeId.slice(NODE_ID_PREFIX.length), 'hex');
}

/** The node id of a 16-byte Kademlia id. */
export function nodeIdOfKademliaId(id: Uint8Array): string {
  if (id.length !== 16) throw new IdentityError(`a Kademlia id is 16 bytes, got ${id.length}`);
  return NODE_ID_PREFIX + Buffer.from(id).toString('hex');
}

/** DER prefixes of Ed25519 keys: SubjectPublicKeyInfo and PKCS#8 (RFC 8410), before the 32 raw bytes. */
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * Raw 32-byte public key of an Ed25519 KeyObject. Read from the DER encoding, not JWK: Node 20's
 * JWK export allocates strings while it holds the key's lock, and a garbage collection that
 * finalizes a key-generation job on the same key then deadlocks the process (seen in CI).
 */
export function rawPublicKey(key: KeyObject): Buffer {
  if (key.asymmetricKeyType !== 'ed25519') throw new IdentityError(`expected an Ed25519 key, got ${key.asymmetricKeyType}`);
  const der = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'der', type: 'spki' });
  if (der.length !== SPKI_ED25519_PREFIX.length + 32) throw new IdentityError('Ed25519 key has no public part');
  return Buffer.from(der.subarray(SPKI_ED25519_PREFIX.length));
}

/** A KeyObject for a raw 32-byte Ed25519 public key. */
export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new IdentityError(`an Ed25519 public key is 32 bytes, got ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** Verifies an Ed25519 signature made by the raw public key. Never throws on bad input. */
export function verifySignature(rawPub: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(null, data, publicKeyFromRaw(rawPub), signature);
  } catch {
    return false;
  }
}

function identityFromPrivateKey(privateKey: KeyObject): Identity {
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new IdentityError(`identity key must be Ed25519, got ${privateKey.asymmetricKeyType}`);
  }
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  const nodeId = nodeIdFromPublicKey(publicKey);
  const privateKeyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  return {
    nodeId,
    kademliaId: kademliaIdOf(nodeId),
    publicKey,
    privateKey,
    privateKeyPem,
    sign: (data) => sign(null, data, privateKey),
  };
}

/** A fresh in-memory identity (tests, ephemeral nodes). */
export function generateIdentity(): Identity {
  // From 32 random bytes (RFC 8032's seed), not generateKeyPairSync: see rawPublicKey.
  const seed = randomBytes(32);
  return identityFromPrivateKey(createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' }));
}

/** Identity from a PKCS#8 PEM private key. */
export function identityFromPem(pem: string): Identity {
  try {
    return identityFromPrivateKey(createPrivateKey(pem));
  } catch (err) {
    if ((err as { code?: string }).code === 'DPC_IDENTITY') throw err;
    throw new IdentityError('cannot parse the identity key', { cause: err });
  }
}

/**
 * Loads the identity stored in `dataDir` (default `~/.dpc`), creating it on first use.
 * The directory is created with mode 0700 and the key file with mode 0600; a key file that
 * others can read is tightened to 0600.
 */
/**
 * `mkdir -p`, one level at a time: Node's `mkdir({ recursive: true })` never returns for a
 * path under /proc (libuv retries ENOENT forever), so `--data-dir /proc/x` hung.
 */
async function makeDir(dir: string, mode: number): Promise<void> {
  try {
    await mkdir(dir, { mode });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    const parent = dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw err;
    await makeDir(parent, mode);
    await mkdir(dir, { mode }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }
}

export async function loadOrCreateIdentity(dataDir: string = defaultDataDir()): Promise<Identity> {
  const file = join(dataDir, IDENTITY_FILE);
  let pem: string | undefined;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENOTDIR: a part of the path is a file; creating the directory below says so.
    if (code !== 'ENOENT' && code !== 'ENOTDIR') {
      throw new IdentityError(`cannot read ${file} (${code})`, { cause: err });
    }
  }
  if (pem !== undefined) {
    const st = await stat(file);
    if ((st.mode & 0o077) !== 0) await chmod(file, 0o600);
    try {
      return identityFromPem(pem);
    } catch (err) {
      throw new IdentityError(`${file} does not hold a valid Ed25519 identity key`, { cause: err });
    }
  }
  try {
    await makeDir(dataDir, 0o700);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new IdentityError(`cannot create the data directory ${dataDir} (${e.code ?? e.message}): choose another --data-dir`, {
      cause: err,
    });
  }
  const identity = generateIdentity();
  // Write to a temp file then rename, so a crash never leaves a half-written key.
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(identity.privateKeyPem);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    // link() fails if the file exists: two processes starting at once keep one identity.
    await link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new IdentityError(`cannot write ${file}`, { cause: err });
    return loadOrCreateIdentity(dataDir);
  } finally {
    await rm(tmp, { force: true });
  }
  return identity;
}
