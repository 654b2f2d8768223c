/**
 * Single-precision arithmetic helpers that reproduce, bit for bit, the float32 log / sin / cos polynomials
 * torch's vectorised Box-Muller uses on x86 CPUs with AVX2 (the Cephes-derived `log256_ps` and
 * `sincos256_ps` of ATen's avx_mathfun.h, as compiled by GCC with fused multiply-adds).
 *
 * Every float32 operation is emulated as a double operation rounded with Math.fround. That is exact for a
 * single add, subtract, multiply or square root of float32 operands (double has more than twice the bits).
 * A fused multiply-add is rounded once, which needs care: see fmaF32.
 */

const fr = Math.fround;

const scratch = new Float64Array(1);
const scratchWords = new Uint32Array(scratch.buffer);
/** Index of the low 32-bit word of a double in scratchWords (0 on little-endian machines). */
const LOW = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0 : 1;
const HIGH = 1 - LOW;

/**
 * float32 fused multiply-add: round(a·b + c) with a single rounding to float32.
 * a·b of two floats is exact in double (48 significant bits). The sum is formed in double with its exact
 * rounding error (TwoSum); if the error is non-zero the double sum is moved to the neighbouring double with
 * an odd last bit in the error's direction ("round to odd"), which makes the final rounding to float32 equal
 * to a single rounding of the exact value.
 */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const bv = s - p;
  const err = (p - (s - bv)) + (c - bv);
  if (err === 0 || !Number.isFinite(s)) return fr(s);
  scratch[0] = s;
  if ((scratchWords[LOW] & 1) === 0) {
    const awayFromZero = (err > 0) === (s > 0);
    if (awayFromZero) {
      scratchWords[LOW] += 1; // even low word: no carry
    } else if (scratchWords[LOW] === 0) {
      scratchWords[LOW] = 0xffffffff;
      scratchWords[HIGH] -= 1;
    } else {
      scratchWords[LOW] -= 1;
    }
  }
  return fr(scratch[0]);
}

// Cephes single-precision log: polynomial coefficients and the split of ln 2 into a short and a long part.
const SQRT_HALF = fr(0.707106781186547524);
const LOG_POLY = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1,
  -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(fr);
const LN2_LOW = fr(-2.12194440e-4);
const LN2_HIGH = fr(0.693359375);

const f32 = new Float32Array(1);
const f32Bits = new Int32Array(f32.buffer);

/**
 * ln(x) for a float32 x in (0, 1] (the only range Box-Muller needs: u1 = 1 − uniform), as torch's AVX2 path
 * computes it. Splits x = m·2^e with m in [0.5, 1), folds m below √½ into [√½, √2) and evaluates a degree-9
 * polynomial in x = m − 1.
 */
export function logF32Avx2(value: number): number {
  f32[0] = value;
  const bits = f32Bits[0];
  let e = fr(((bits >>> 23) & 0xff) - 127 + 1);
  f32Bits[0] = (bits & ~0x7f800000) | 0x3f000000; // mantissa with exponent of 0.5
  let x = f32[0];
  const below = x < SQRT_HALF;
  const folded = below ? x : 0;
  x = fr(x - 1);
  if (below) e = fr(e - 1);
  x = fr(x + folded);
  const z = fr(x * x);
  let y = LOG_POLY[0];
  for (let k = 1; k < LOG_POLY.length; k++) y = fmaF32(y, x, LOG_POLY[k]);
  y = fr(y * x);
  // GCC fuses y·z with the product e·LN2_LOW that follows it, and z·0.5 / e·LN2_HIGH with their sums.
  y = fmaF32(y, z, fr(e * LN2_LOW));
  y = fmaF32(-z, 0.5, y);
  x = fr(x + y);
  return fmaF32(e, LN2_HIGH, x);
}

// Cephes single-precision sin/cos: π/4 split into three parts for the argument reduction, and the two
// minimax polynomials (sine on [0, π/4], cosine on [0, π/4]).
const MINUS_DP1 = fr(-0.78515625);
const MINUS_DP2 = fr(-2.4187564849853515625e-4);
const MINUS_DP3 = fr(-3.77489497744594108e-8);
const SIN_P0 = fr(-1.9515295891e-4);
const SIN_P1 = fr(8.3321608736e-3);
const SIN_P2 = fr(-1.6666654611e-1);
const COS_P0 = fr(2.443315711809948e-5);
const COS_P1 = fr(-1.388731625493765e-3);
const COS_P2 = fr(4.166664568298827e-2);
const FOUR_OVER_PI = fr(1.27323954473516);

/** sin and cos of a float32 angle, written into out[0] and out[1]; both as torch's AVX2 `sincos256_ps`. */
export function sinCosF32Avx2(angle: number, out: Float64Array | number[]): void {
  const negative = angle < 0 || Object.is(angle, -0);
  let x = Math.abs(angle);
  // Octant: truncate x·4/π, then round up to even.
  let j = Math.trunc(fr(x * FOUR_OVER_PI));
  j = (j + 1) & ~1;
  const y = j;
  x = fmaF32(y, MINUS_DP1, x);
  x = fmaF32(y, MINUS_DP2, x);
  x = fmaF32(y, MINUS_DP3, x);
  const z = fr(x * x);

  let cosPoly = fmaF32(COS_P0, z, COS_P1);
  cosPoly = fmaF32(cosPoly, z, COS_P2);
  cosPoly = fr(cosPoly * z);
  cosPoly = fmaF32(cosPoly, z, -fr(z * 0.5));
  cosPoly = fr(cosPoly + 1);

  let sinPoly = fmaF32(SIN_P0, z, SIN_P1);
  sinPoly = fmaF32(sinPoly, z, SIN_P2);
  sinPoly = fr(sinPoly * z);
  sinPoly = fmaF32(sinPoly, x, x);

  const sinFromSinPoly = (j & 2) === 0;
  let s = sinFromSinPoly ? sinPoly : cosPoly;
  let c = sinFromSinPoly ? cosPoly : sinPoly;
  if (((j & 4) !== 0) !== negative) s = -s;
  if ((((j - 2) & 4) === 0)) c = -c;
  out[0] = s;
  out[1] = c;
}
