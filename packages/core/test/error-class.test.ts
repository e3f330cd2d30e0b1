import { DpcError, type DpcErrorOptions, errorClass, isDpcError } from '@dpc/core';
import { describe, expect, it } from 'vitest';

class StoreFullError extends errorClass('DPC_TEST_STORE_FULL', { retryable: true }) {}
class TooLargeError extends errorClass('DPC_TEST_TOO_LARGE', {
  message: (size: number, max: number) => `item is ${size} bytes, the limit is ${max}`,
}) {}

class RefusedError extends DpcError {
  readonly why: string;
  constructor(code: string, message: string, options?: DpcErrorOptions) {
    super(code, message, options);
    this.why = code.toLowerCase();
  }
}
class ForgedError extends errorClass('DPC_TEST_FORGED', { base: RefusedError }) {}

describe('errorClass', () => {
  it('makes DpcErrors with the fixed code, the subclass’s name, the message, cause and retryable', () => {
    const cause = new Error('disk');
    const err = new StoreFullError('the store is full', { cause });
    expect(err).toBeInstanceOf(StoreFullError);
    expect(err).toBeInstanceOf(DpcError);
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('DPC_TEST_STORE_FULL');
    expect(err.name).toBe('StoreFullError');
    expect(err.message).toBe('the store is full');
    expect(err.cause).toBe(cause);
    expect(err.retryable).toBe(true);
    expect(isDpcError(err, 'DPC_TEST_STORE_FULL')).toBe(true);
    expect(String(err.stack)).toContain('StoreFullError: the store is full');
  });

  it('builds the message from the constructor’s own arguments', () => {
    const err = new TooLargeError(70_000, 65_536);
    expect(err.message).toBe('item is 70000 bytes, the limit is 65536');
    expect(err.name).toBe('TooLargeError');
    expect(err.retryable).toBe(false);
    expect(err).not.toBeInstanceOf(StoreFullError);
  });

  it('extends a given DpcError base, whose constructor runs with the code', () => {
    const err = new ForgedError('bad signature');
    expect(err).toBeInstanceOf(RefusedError);
    expect(err.why).toBe('dpc_test_forged');
    expect(err.code).toBe('DPC_TEST_FORGED');
    expect(err.name).toBe('ForgedError');
  });
});
