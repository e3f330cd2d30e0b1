// XOR metric on 128-bit Kademlia ids, exact (no floating point).

/** XOR distance of two ids of equal length. */
export function xorDistance(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

/** Negative when `a` is closer to `target` than `b`, 0 when equally close. */
export function compareDistance(a: Uint8Array, b: Uint8Array, target: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const da = (a[i] as number) ^ (target[i] as number);
    const db = (b[i] as number) ^ (target[i] as number);
    if (da !== db) return da - db;
  }
  return 0;
}

/** Number of leading bits `a` and `b` share (128 when equal). */
export function commonPrefixLength(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = (a[i] as number) ^ (b[i] as number);
    if (x !== 0) return i * 8 + Math.clz32(x) - 24;
  }
  return a.length * 8;
}

/** A random id that shares exactly `prefix` leading bits with `id` (bucket refresh target). */
export function randomIdInBucket(id: Uint8Array, prefix: number, random: Uint8Array): Buffer {
  const out = Buffer.from(random.subarray(0, id.length));
  for (let bit = 0; bit <= prefix && bit < id.length * 8; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    const want = bit < prefix ? (id[byte] as number) & mask : ~(id[byte] as number) & mask;
    out[byte] = ((out[byte] as number) & ~mask) | want;
  }
  return out;
}
