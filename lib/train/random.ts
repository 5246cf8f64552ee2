// A seeded random number generator whose whole state fits in a checkpoint: the trainer's
// shuffling (and the CLI's) draws from it, so a seed gives the same order everywhere.
import { ResNetError } from '../errors.js';
import * as validate from '../validate.js';

/**
 * xoshiro128** (Blackman & Vigna), seeded through splitmix32: a small, fast generator whose
 * whole state is four 32-bit words, so it can be stored in a checkpoint and restored.
 * Shuffling uses it with unbiased bounded draws (rejection), so a seed gives the same order
 * on every platform.
 */
export class SeededRandom {
  #s = new Uint32Array(4);

  constructor(seed = 0) {
    let x = (validate.integer(seed, 'SeededRandom', 'seed', 0, Number.MAX_SAFE_INTEGER) ^ Math.floor(seed / 2 ** 32)) >>> 0;
    for (let i = 0; i < 4; i++) {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.#s[0]! | this.#s[1]! | this.#s[2]! | this.#s[3]!) === 0) this.#s[0] = 1;
  }

  /** A generator in the given state (from state()). */
  static fromState(state: readonly number[]): SeededRandom {
    if (!Array.isArray(state) || state.length < 4 || !state.slice(0, 4).every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32)) {
      throw new ResNetError('E_FORMAT', `SeededRandom.fromState: state must be four 32-bit unsigned integers, got ${JSON.stringify(state)}`);
    }
    if (state.slice(0, 4).every((v) => v === 0)) throw new ResNetError('E_FORMAT', 'SeededRandom.fromState: the all-zero state is invalid');
    const r = new SeededRandom(0);
    for (let i = 0; i < 4; i++) r.#s[i] = state[i]!;
    return r;
  }

  /** The state as four unsigned 32-bit integers (JSON-safe). */
  state(): number[] {
    return Array.from(this.#s);
  }

  /** A uniform unsigned 32-bit integer. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** A uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 2 ** 32;
  }

  /** A uniform integer in [0, n), 1 ≤ n ≤ 2^32, without modulo bias. */
  nextInt(n: number): number {
    const limit = 2 ** 32 - (2 ** 32 % n);
    let x: number;
    do x = this.nextUint32();
    while (x >= limit);
    return x % n;
  }

  /** Fisher–Yates shuffle in place. */
  shuffle(a: { length: number; [i: number]: number }): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
