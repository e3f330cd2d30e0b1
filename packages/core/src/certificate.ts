import { createPublicKey, randomBytes, sign } from 'node:crypto';
import type { Identity } from './identity.js';

// Minimal DER encoder: just enough for a self-signed X.509 v3 certificate on an Ed25519 key.
// TLS 1.3 proves possession of the key in CertificateVerify; peers check that the key hashes
// to the node id they expect, so no CA, name or date in the certificate is relied on.

function der(tag: number, content: Buffer): Buffer {
  const len = content.length;
  let head: Buffer;
  if (len < 0x80) head = Buffer.from([tag, len]);
  else if (len < 0x100) head = Buffer.from([tag, 0x81, len]);
  else head = Buffer.from([tag, 0x82, len >> 8, len & 0xff]);
  return Buffer.concat([head, content]);
}
const seq = (...parts: Buffer[]) => der(0x30, Buffer.concat(parts));
const set = (...parts: Buffer[]) => der(0x31, Buffer.concat(parts));
const oid = (bytes: number[]) => der(0x06, Buffer.from(bytes));
const utf8 = (s: string) => der(0x0c, Buffer.from(s, 'utf8'));
const int = (b: Buffer) => der(0x02, b);
const bitString = (b: Buffer) => der(0x03, Buffer.concat([Buffer.from([0]), b]));
const explicit = (n: number, inner: Buffer) => der(0xa0 + n, inner);

const OID_ED25519 = [0x2b, 0x65, 0x70]; // 1.3.101.112
const OID_CN = [0x55, 0x04, 0x03]; // 2.5.4.3

function utcTime(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, '0');
  const s = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return der(0x17, Buffer.from(s, 'ascii'));
}
const generalizedTime = (s: string) => der(0x18, Buffer.from(s, 'ascii'));

/** A self-signed X.509 certificate (PEM) for the identity's Ed25519 key, CN = node id. */
export function createSelfSignedCertificate(identity: Identity, now = new Date()): string {
  const algorithm = seq(oid(OID_ED25519));
  const name = seq(set(seq(oid(OID_CN), utf8(identity.nodeId))));
  const serial = randomBytes(8);
  // DER INTEGER: positive (top bit clear) and minimal (no leading zero byte) => 0x40..0x7f.
  serial[0] = ((serial[0] as number) & 0x3f) | 0x40;
  const spki = createPublicKey(identity.privateKey).export({ format: 'der', type: 'spki' });
  const tbs = seq(
    explicit(0, int(Buffer.from([2]))), // v3
    int(serial),
    algorithm,
    name,
    seq(utcTime(new Date(now.getTime() - 3_600_000)), generalizedTime('99991231235959Z')),
    name,
    spki,
  );
  const signature = sign(null, tbs, identity.privateKey);
  const cert = seq(tbs, algorithm, bitString(signature));
  const b64 = cert.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
}
