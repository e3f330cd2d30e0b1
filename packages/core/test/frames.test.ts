import { PassThrough } from 'node:stream';
import { Counters, encode, encodeFrame, FrameDecoder, s } from '@dpc/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/** Feeds chunks to a decoder; resolves with the values or the error that ended it. */
async function run(chunks: Buffer[], opts: ConstructorParameters<typeof FrameDecoder>[0] = {}) {
  const d = new FrameDecoder(opts);
  const values: unknown[] = [];
  d.on('data', (v) => values.push(v));
  const ended = new Promise<Error | undefined>((resolve) => {
    d.on('error', resolve);
    d.on('end', () => resolve(undefined));
  });
  for (const c of chunks) if (!d.destroyed) d.write(c);
  if (!d.destroyed) d.end();
  return { values, error: await ended };
}

const schema = s.object({ t: s.literal('msg'), n: s.int() });

describe('frames', () => {
  it('round-trips values split at every byte boundary', async () => {
    const frames = Buffer.concat([encodeFrame({ t: 'msg', n: 1 }), encodeFrame({ t: 'msg', n: 2 })]);
    for (let cut = 0; cut <= frames.length; cut++) {
      const { values, error } = await run([frames.subarray(0, cut), frames.subarray(cut)], { schema });
      expect(error).toBeUndefined();
      expect(values).toEqual([
        { t: 'msg', n: 1 },
        { t: 'msg', n: 2 },
      ]);
    }
  });

  it('an oversized frame is refused from its header, before buffering it, and counted', async () => {
    const counters = new Counters();
    const head = Buffer.alloc(4);
    head.writeUInt32BE(64 * 1024 * 1024);
    const { error } = await run([head], { maxFrameBytes: 1024, counters });
    expect(error).toMatchObject({ code: 'DPC_FRAME_TOO_LARGE' });
    expect(counters.get('frame_errors_DPC_FRAME_TOO_LARGE')).toBe(1);
    expect(() => encodeFrame({ x: 'y'.repeat(2000) }, 1024)).toThrow(expect.objectContaining({ code: 'DPC_FRAME_TOO_LARGE' }));
  });

  it('a truncated frame is a typed error', async () => {
    const f = encodeFrame({ t: 'msg', n: 1 });
    const { error } = await run([f.subarray(0, f.length - 1)]);
    expect(error).toMatchObject({ code: 'DPC_FRAME_TRUNCATED' });
  });

  it('a frame that fails the schema is refused before use', async () => {
    const counters = new Counters();
    const { values, error } = await run([encodeFrame({ t: 'msg', n: 'one' })], { schema, counters });
    expect(values).toEqual([]);
    expect(error).toMatchObject({ code: 'DPC_SCHEMA' });
    expect(counters.get('frame_errors_DPC_SCHEMA')).toBe(1);
  });

  it('garbage bytes are a malformed-frame error', async () => {
    const body = Buffer.from([0xc1, 0xc1, 0xc1]);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    const { error } = await run([head, body]);
    expect(error).toMatchObject({ code: 'DPC_FRAME_MALFORMED' });
  });

  it('honours backpressure: a paused consumer stops the byte source', async () => {
    const src = new PassThrough();
    const d = new FrameDecoder({ highWaterMark: 4 });
    src.pipe(d);
    let writes = 0;
    const frame = encodeFrame({ t: 'msg', n: 0, pad: 'x'.repeat(1000) });
    while (src.write(frame) && writes < 100_000) writes++;
    // The source said stop long before 100k frames: memory stays bounded while unread.
    expect(writes).toBeLessThan(200);
    const got: unknown[] = [];
    d.on('data', (v) => got.push(v));
    await new Promise((r) => setTimeout(r, 20));
    expect(got.length).toBeGreaterThan(writes);
  });

  it('fuzz: random and mutated frames never crash, hang or allocate beyond the limit', async () => {
    const valid = fc
      .array(fc.anything({ maxDepth: 3 }), { maxLength: 5 })
      .map((vals) => Buffer.concat(vals.filter((v) => v !== null && v !== undefined).map((v) => encodeFrame(v))));
    const mutated = fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 })).map(([buf, muts]) => {
      const b = Buffer.from(buf);
      for (const [i, v] of muts) if (b.length > 0) b[i % b.length] = v;
      return b;
    });
    const random = fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a));
    await fc.assert(
      fc.asyncProperty(fc.oneof(valid, mutated, random), fc.array(fc.nat({ max: 64 }), { maxLength: 6 }), async (bytes, cuts) => {
        const chunks: Buffer[] = [];
        let pos = 0;
        for (const c of cuts) {
          chunks.push(bytes.subarray(pos, pos + c));
          pos += c;
        }
        chunks.push(bytes.subarray(pos));
        const before = process.memoryUsage().arrayBuffers;
        const { error } = await run(chunks, { maxFrameBytes: 4096 });
        if (error) expect((error as { code?: string }).code).toMatch(/^DPC_FRAME_|^DPC_SCHEMA|^DPC_DECODE_LIMIT$/);
        expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
      }),
      { numRuns: 1500 },
    );
  });

  it('fuzz: decoded values that claim huge sizes are refused cheaply', async () => {
    // msgpack array32/map32/str32/bin32 headers claiming 4 billion entries inside a small frame
    for (const tag of [0xdd, 0xdf, 0xdb, 0xc6]) {
      const body = Buffer.from([tag, 0xff, 0xff, 0xff, 0xff, 0x01]);
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length);
      const counters = new Counters();
      const { error } = await run([head, body], { counters });
      // Refused by the bound on declared lengths, before msgpackr allocates anything.
      expect(error).toMatchObject({ code: 'DPC_DECODE_LIMIT', limit: 'length' });
      expect(counters.get('frame_errors_DPC_DECODE_LIMIT')).toBe(1);
    }
    void encode;
  });
});
