import { EventEmitter } from 'node:events';
import { Counters, DEFAULT_HELD_MAX, DpcError, InboundMessages, s } from '@dpc/core';
import { describe, expect, it } from 'vitest';

const tick = () => new Promise((r) => process.nextTick(r));

class OverflowError extends DpcError {
  constructor(max: number) {
    super('DPC_TEST_OVERFLOW', `more than ${max} held`);
  }
}

describe('InboundMessages', () => {
  it('holds messages until a listener is attached, then delivers them in order before new ones', async () => {
    const target = new EventEmitter();
    const counters = new Counters();
    const inbound = new InboundMessages({
      target,
      counters,
      overflow: { error: (max) => new OverflowError(max) },
      onError: (e) => {
        throw e;
      },
    });
    inbound.receive(1);
    inbound.receive(2);
    expect(inbound.held).toBe(2);
    const got: unknown[] = [];
    target.on('message', (m) => got.push(m));
    inbound.receive(3); // the held ones are still queued: 3 waits behind them
    await tick();
    expect(got).toEqual([1, 2, 3]);
    expect(inbound.held).toBe(0);
    inbound.receive(4);
    expect(got).toEqual([1, 2, 3, 4]);
    expect(counters.get('messages_in')).toBe(4);
  });

  it('holds while paused and delivers on resume', () => {
    const target = new EventEmitter();
    const got: unknown[] = [];
    target.on('message', (m) => got.push(m));
    const inbound = new InboundMessages({
      target,
      overflow: { error: (max) => new OverflowError(max) },
      onError: (e) => {
        throw e;
      },
    });
    inbound.pause();
    inbound.receive('a');
    inbound.receive('b');
    expect(got).toEqual([]);
    inbound.resume();
    expect(got).toEqual(['a', 'b']);
  });

  it('refuses a message the schema rejects, counted, and delivers the validated value otherwise', () => {
    const target = new EventEmitter();
    const counters = new Counters();
    const errors: Error[] = [];
    const got: unknown[] = [];
    target.on('message', (m) => got.push(m));
    const schema = s.object({ text: s.string() });
    const inbound = new InboundMessages({
      target,
      schema,
      counters,
      overflow: { error: (max) => new OverflowError(max) },
      onError: (e) => errors.push(e),
    });
    inbound.receive({ text: 'hi' });
    inbound.receive({ text: 7 });
    expect(got).toEqual([{ text: 'hi' }]);
    expect(errors.map((e) => (e as DpcError).code)).toEqual(['DPC_SCHEMA']);
    expect(counters.get('frame_errors_DPC_SCHEMA')).toBe(1);
    expect(counters.get('messages_in')).toBe(1);
  });

  it('pauses a source with flow control when full and resumes it once drained', async () => {
    const target = new EventEmitter();
    const calls: string[] = [];
    const inbound = new InboundMessages({
      target,
      overflow: { pause: () => calls.push('pause'), resume: () => calls.push('resume') },
      onError: (e) => {
        throw e;
      },
    });
    for (let i = 0; i < DEFAULT_HELD_MAX; i++) inbound.receive(i);
    expect(calls).toEqual(['pause']);
    const got: unknown[] = [];
    target.on('message', (m) => got.push(m));
    await tick();
    expect(got).toHaveLength(DEFAULT_HELD_MAX);
    expect(calls).toEqual(['pause', 'resume']);
  });

  it('fails a source without flow control on one message too many, holding no more than max', () => {
    const target = new EventEmitter();
    const errors: Error[] = [];
    const inbound = new InboundMessages({
      target,
      max: 3,
      overflow: { error: (max) => new OverflowError(max) },
      onError: (e) => errors.push(e),
    });
    for (let i = 0; i < 3; i++) inbound.receive(i);
    expect(errors).toEqual([]);
    inbound.receive(3);
    expect(inbound.held).toBe(3);
    expect(errors.map((e) => (e as DpcError).code)).toEqual(['DPC_TEST_OVERFLOW']);
  });
});
