import { type Infer, s } from './schema.js';

/** Frames exchanged by two ends of a Connection, above TLS. */
export const connectionFrameSchema = s.union('t', {
  hello: s.object({ t: s.literal('hello'), v: s.int({ min: 1, max: 1 }) }),
  hello_ack: s.object({ t: s.literal('hello_ack') }),
  reject: s.object({ t: s.literal('reject'), reason: s.string({ max: 200 }) }),
  data: s.object({ t: s.literal('data'), d: s.unknown() }),
  ping: s.object({ t: s.literal('ping'), n: s.int({ min: 0 }) }),
  pong: s.object({ t: s.literal('pong'), n: s.int({ min: 0 }) }),
  bye: s.object({ t: s.literal('bye'), reason: s.optional(s.string({ max: 200 })) }),
});
export type ConnectionFrame = Infer<typeof connectionFrameSchema>;
