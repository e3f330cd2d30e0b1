import { type Infer, s } from '@dpc/core';

/** PeerSession frames carried as application messages on any tier's Connection. */
export const sessionFrameSchema = s.union('k', {
  /**
   * An application message: sender's epoch, sequence number, the sender's lowest
   * unacknowledged number `l` (a receiver that lost its state starts there), body.
   */
  m: s.object({ k: s.literal('m'), e: s.string({ max: 32 }), n: s.int({ min: 1 }), l: s.int({ min: 1 }), b: s.unknown() }),
  /**
   * Acknowledgement: every message of epoch `e` up to `n` was delivered, and the numbers in `s`
   * (above n) are stored by the receiver (selective).
   */
  a: s.object({
    k: s.literal('a'),
    e: s.string({ max: 32 }),
    n: s.int({ min: 0 }),
    s: s.optional(s.array(s.int({ min: 1 }), { max: 256 })),
  }),
});
export type SessionFrame = Infer<typeof sessionFrameSchema>;
