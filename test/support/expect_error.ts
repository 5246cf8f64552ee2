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

/** The code of the ResNetError `f` throws or rejects with (see `rejection`). */
export async function codeOf(f: () => unknown): Promise<string> {
  return (await rejection(f)).code;
}

/** The message of the ResNetError `f` throws or rejects with (see `rejection`). */
export async function messageOf(f: () => unknown): Promise<string> {
  return (await rejection(f)).message;
}

/** Synchronous `rejection`: the ResNetError `f` throws; fails the test if it returns or throws anything else. */
export function thrown(f: () => unknown): ResNetError {
  try {
    f();
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(ResNetError);
    return err as ResNetError;
  }
  throw new Error('expected a ResNetError, nothing was thrown');
}

/** Synchronous `expectCode`: `f` throws a ResNetError with `code` whose message contains every one of `mentions`. */
export function expectCodeSync(f: () => unknown, code: string, ...mentions: string[]): ResNetError {
  const err = thrown(f);
  expect(err.code, err.message).toBe(code);
  for (const m of mentions) expect(err.message).toContain(m);
  return err;
}
