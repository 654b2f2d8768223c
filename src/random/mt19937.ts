/**
 * The 32-bit Mersenne Twister (MT19937) as torch's CPU generator runs it: seeded from the low 32 bits of the
 * seed with the standard Knuth initialisation, the first draw after seeding regenerates the whole state.
 */

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

/** A snapshot of the engine, enough to resume the exact stream later. */
export interface Mt19937State {
  readonly words: Uint32Array;
  /** Index of the next word to temper; N means the state must be regenerated first. */
  readonly index: number;
}

export class Mt19937 {
  private words = new Uint32Array(N);
  private index = N;

  constructor(seed32 = 5489) {
    this.seed(seed32);
  }

  /** Re-initialise from a 32-bit seed (callers reduce larger seeds modulo 2^32, as torch does). */
  seed(seed32: number): void {
    const w = this.words;
    w[0] = seed32 >>> 0;
    for (let j = 1; j < N; j++) {
      const prev = w[j - 1] ^ (w[j - 1] >>> 30);
      // 1812433253 * prev + j modulo 2^32: Math.imul keeps the product exact in 32 bits.
      w[j] = (Math.imul(1812433253, prev) + j) >>> 0;
    }
    this.index = N;
  }

  /** The next tempered 32-bit output, as an unsigned integer. */
  nextU32(): number {
    if (this.index >= N) this.regenerate();
    let y = this.words[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  getState(): Mt19937State {
    return { words: this.words.slice(), index: this.index };
  }

  setState(state: Mt19937State): void {
    this.words = state.words.slice();
    this.index = state.index;
  }

  private regenerate(): void {
    const w = this.words;
    for (let j = 0; j < N; j++) {
      const next = w[(j + 1) % N];
      const y = (w[j] & UPPER_MASK) | (next & LOWER_MASK);
      w[j] = w[(j + M) % N] ^ (y >>> 1) ^ (next & 1 ? MATRIX_A : 0);
    }
    this.index = 0;
  }
}
