import type { EventEmitter } from 'node:events';
import type { Counters } from './counters.js';
import type { Schema } from './schema.js';

/** Messages held while nobody listens or the consumer paused, by default. */
export const DEFAULT_HELD_MAX = 64;

/**
 * What happens once `max` messages are held:
 * - `pause`: the source has flow control (a stream): it is paused, and resumed once there is room;
 * - `fail`: the source cannot be paused (a data channel): the next message is refused with the
 *   error `error(max)` returns, which goes to `onError`.
 */
export type HeldOverflow = { pause: () => void; resume: () => void } | { error: (max: number) => Error };

export interface InboundMessagesInit {
  /** The connection: its 'message' event delivers, and only while it has a 'message' listener. */
  target: EventEmitter;
  /** Validates each application message before it is delivered; a refusal goes to `onError`. */
  schema?: Schema<unknown> | undefined;
  /** Counts `messages_in` and `frame_errors_DPC_SCHEMA`. */
  counters?: Counters | undefined;
  /** Most messages held. Default 64 (DEFAULT_HELD_MAX). */
  max?: number;
  overflow: HeldOverflow;
  /** A message the connection must fail for: refused by the schema, or one too many held. */
  onError: (err: Error) => void;
}

/**
 * The inbound side of a Connection, whatever its frames: each application message is checked
 * against the schema, counted, and emitted as 'message' — or held, in order, while the consumer
 * paused or nobody listens yet; held messages are delivered once a 'message' listener is attached
 * or the consumer resumes. The queue is bounded (see HeldOverflow).
 */
export class InboundMessages {
  readonly #target: EventEmitter;
  readonly #schema: Schema<unknown> | undefined;
  readonly #counters: Counters | undefined;
  readonly #max: number;
  readonly #overflow: HeldOverflow;
  readonly #onError: (err: Error) => void;
  readonly #held: unknown[] = [];
  #paused = false;

  constructor(init: InboundMessagesInit) {
    this.#target = init.target;
    this.#schema = init.schema;
    this.#counters = init.counters;
    this.#max = init.max ?? DEFAULT_HELD_MAX;
    this.#overflow = init.overflow;
    this.#onError = init.onError;
    init.target.on('newListener', (event) => {
      if (event === 'message') process.nextTick(() => this.#flush());
    });
  }

  /** How many messages are held. */
  get held(): number {
    return this.#held.length;
  }

  /** One application message from the peer (the payload of a data frame). */
  receive(message: unknown): void {
    let msg = message;
    if (this.#schema) {
      try {
        msg = this.#schema(msg);
      } catch (err) {
        this.#counters?.inc('frame_errors_DPC_SCHEMA');
        this.#onError(err as Error);
        return;
      }
    }
    this.#counters?.inc('messages_in');
    if (!this.#paused && this.#target.listenerCount('message') > 0 && this.#held.length === 0) {
      this.#target.emit('message', msg);
      return;
    }
    const o = this.#overflow;
    if ('error' in o) {
      if (this.#held.length >= this.#max) {
        this.#onError(o.error(this.#max));
        return;
      }
      this.#held.push(msg);
    } else {
      this.#held.push(msg);
      if (this.#held.length >= this.#max) o.pause();
    }
  }

  /** Stops delivering until resume() (Connection.pause). */
  pause(): void {
    this.#paused = true;
  }

  /** Delivers what is held, then goes on delivering (Connection.resume). */
  resume(): void {
    this.#paused = false;
    this.#flush();
  }

  #flush(): void {
    while (this.#held.length > 0 && this.#target.listenerCount('message') > 0 && !this.#paused) {
      this.#target.emit('message', this.#held.shift());
    }
    if ('resume' in this.#overflow && this.#held.length < this.#max && !this.#paused) this.#overflow.resume();
  }
}
