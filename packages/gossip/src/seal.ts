import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { Identity } from '@dpc/core';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { GossipUndecryptableError } from './errors.js';

/**
 * Sealed box to an Ed25519 identity: ephemeral X25519 ⨯ the recipient's X25519 key (its Ed25519
 * key mapped to Montgomery form, RFC 7748 birational map), HKDF-SHA256, ChaCha20-Poly1305.
 * `aad` binds the box to its envelope (source and destination), so a payload cannot be rewrapped
 * by another signer. Layout: ephemeral public key (32) ‖ ciphertext ‖ tag (16). The key is fresh
 * for every box, so the nonce is fixed (zero).
 */
const INFO = Buffer.from('dpc-gossip-seal-v1');
const NONCE = Buffer.alloc(12);
const TAG_BYTES = 16;
export const SEAL_OVERHEAD_BYTES = 32 + TAG_BYTES;

const PKCS8_ED25519_PREFIX_LEN = 16;

/** X25519 public key of a raw Ed25519 public key. */
export function x25519PublicOf(ed25519Public: Uint8Array): Uint8Array {
  return ed25519.utils.toMontgomery(ed25519Public);
}

/** X25519 secret of an identity (from its Ed25519 seed, as RFC 8032 derives the scalar). */
export function x25519SecretOf(identity: Identity): Uint8Array {
  const der = identity.privateKey.export({ format: 'der', type: 'pkcs8' });
  const seed = der.subarray(PKCS8_ED25519_PREFIX_LEN, PKCS8_ED25519_PREFIX_LEN + 32);
  return ed25519.utils.toMontgomerySecret(seed);
}

function keyFor(shared: Uint8Array, ephPub: Uint8Array, recipientX: Uint8Array): Buffer {
  if (shared.every((b) => b === 0)) throw new GossipUndecryptableError('low-order X25519 point');
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephPub, recipientX]), INFO, 32));
}

/** Seals `plaintext` to the holder of `recipientEd25519` (raw 32-byte Ed25519 public key). */
export function seal(recipientEd25519: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const recipientX = x25519PublicOf(recipientEd25519);
  const eph = randomBytes(32);
  const ephPub = x25519.getPublicKey(eph);
  const key = keyFor(x25519.getSharedSecret(eph, recipientX), ephPub, recipientX);
  const c = createCipheriv('chacha20-poly1305', key, NONCE, { authTagLength: TAG_BYTES });
  c.setAAD(aad, { plaintextLength: plaintext.length });
  const body = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([ephPub, body, c.getAuthTag()]);
}

/** Opens a box sealed to `secret` (from `x25519SecretOf`); throws GossipUndecryptableError. */
export function open(secret: Uint8Array, publicX: Uint8Array, box: Uint8Array, aad: Uint8Array): Buffer {
  if (box.length < SEAL_OVERHEAD_BYTES) throw new GossipUndecryptableError('sealed payload too short');
  const ephPub = box.subarray(0, 32);
  try {
    const key = keyFor(x25519.getSharedSecret(secret, ephPub), ephPub, publicX);
    const d = createDecipheriv('chacha20-poly1305', key, NONCE, { authTagLength: TAG_BYTES });
    d.setAAD(aad, { plaintextLength: box.length - SEAL_OVERHEAD_BYTES });
    d.setAuthTag(box.subarray(box.length - TAG_BYTES));
    return Buffer.concat([d.update(box.subarray(32, box.length - TAG_BYTES)), d.final()]);
  } catch (err) {
    if ((err as { code?: string }).code === 'DPC_GOSSIP_UNDECRYPTABLE') throw err;
    throw new GossipUndecryptableError('sealed payload does not open with this key', { cause: err });
  }
}
