import { type Infer, s } from '@dpc/core';

/** PeerSession frames carried as application messages on any tier's Connection. */
export const sessionFrameSchema = s.union('k', {
  /** An application message: sender's session epoch, sequence number, body. */
  m: s.object({ k: s.literal('m'), e: s.string({ max: 32 }), n: s.int({ min: 1 }), b: s.unknown() }),
  /** Cumulative acknowledgement: every message of epoch `e` up to `n` was received. */
  a: s.object({ k: s.literal('a'), e: s.string({ max: 32 }), n: s.int({ min: 0 }) }),
});
export type SessionFrame = Infer<typeof sessionFrameSchema>;
