// The one way tests check a failure: the call throws (or its promise rejects with) a
// ResNetError, whose code and message are then asserted. New tests use these instead of a
// local try/catch helper.
import { expect } from 'vitest';

import { ResNetError } from '../../lib/index.js';

/** The ResNetError `f` throws or rejects with; fails the test if it returns or throws anything else. */
export async function rejection(f: () => unknown): Promise<ResNetError> {
  try {
    await f();
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(ResNetError);
    return err as ResNetError;
  }
  throw new Error('expected a ResNetError, but the call succeeded');
}

/** Asserts that `f` fails with `code` and that the message contains every one of `mentions`. */
export async function expectCode(f: () => unknown, code: string, ...mentions: string[]): Promise<ResNetError> {
  const err = await rejection(f);
  expect(err.code, err.message).toBe(code);
  for (const m of mentions) expect(err.message).toContain(m);
  return err;
}
