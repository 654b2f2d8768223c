/**
 * The number crunching diffusers' schedulers do outside the sampling loop, reproduced operation by operation:
 * numpy (float64, with numpy's own formulas for linspace / arange / interp / round) and torch float32 scalar
 * math (every operation rounded to float32 with Math.fround; exact for + − × ÷ √ on float32 operands).
 *
 * torch evaluates float32 log/exp/sqrt with vectorised approximations (not correctly rounded: measured up to
 * 0.75 ulp for sqrt); the correctly rounded values used here can therefore differ from diffusers by one ulp
 * in a few percent of the cases. That is the main source of the (≤ 1e-6 relative) step differences.
 */

import { fmaF32 } from "../random/float32-math";

export const fr = Math.fround;

/** float32 natural log / exp / expm1 / sqrt, correctly rounded. */
export const logF32 = (x: number): number => fr(Math.log(x));
export const expF32 = (x: number): number => fr(Math.exp(x));
export const expm1F32 = (x: number): number => fr(Math.expm1(x));
export const sqrtF32 = (x: number): number => fr(Math.sqrt(x));

// numpy's float32 log kernel (AVX512F/NPYV): a rational P5/Q5 approximation on the mantissa in [√½, √2).
const LOG_P = [0, 9.999999999999998702752e-1, 2.112677543073053063722, 1.480000633576506585156,
  3.808837741388407920751e-1, 2.589979117907922693523e-2].map(fr);
const LOG_Q = [1, 2.612677543073109236779, 2.453006071784736363091, 9.864942958519418960339e-1,
  1.546476374983906719538e-1, 5.87509540312457434295e-3].map(fr);
const LN2_F32 = fr(Math.LN2);
const SQRT_HALF_F32 = fr(Math.SQRT1_2);
const f32Scratch = new Float32Array(1);
const f32Bits = new Uint32Array(f32Scratch.buffer);

/**
 * `np.log` of a float32 value as numpy computes it on x86-64 (not correctly rounded: it differs from the
 * correctly rounded log in about 5% of inputs). diffusers interpolates timesteps in these values
 * (`log_sigmas`), so they must match. For positive finite normal inputs.
 */
export function npLogF32(x: number): number {
  f32Scratch[0] = x;
  const bits = f32Bits[0];
  let e = fr(((bits >>> 23) & 0xff) - 126);
  f32Bits[0] = (bits & 0x7fffff) | 0x3f000000; // mantissa m in [0.5, 1): x = m·2^e
  let m = f32Scratch[0];
  if (m <= SQRT_HALF_F32) {
    m = fr(m + m);
    e = fr(e - 1);
  }
  const y = fr(m - 1);
  let num = LOG_P[5];
  let den = LOG_Q[5];
  for (let k = 4; k >= 0; k--) {
    num = fmaF32(num, y, LOG_P[k]);
    den = fmaF32(den, y, LOG_Q[k]);
  }
  return fmaF32(e, LN2_F32, fr(num / den));
}

/**
 * `torch.linspace(start, end, steps, dtype=float32)`: step = (end − start)/(steps − 1) in float32; the first
 * half counts up from start, the second half down from end, each element one fused multiply-add.
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  const s = fr(start);
  const e = fr(end);
  if (steps === 1) {
    out[0] = s;
    return out;
  }
  const step = fr(fr(e - s) / (steps - 1));
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    out[i] = i < half ? fmaF32(step, i, s) : fmaF32(-step, steps - 1 - i, e);
  }
  return out;
}

/** `np.linspace(start, stop, num)` in float64: start + i·step, the last element exactly stop. */
export function npLinspace(start: number, stop: number, num: number): number[] {
  const out: number[] = [];
  if (num <= 0) return out;
  const div = num - 1;
  const delta = stop - start;
  const step = div > 0 ? delta / div : NaN;
  for (let i = 0; i < num; i++) {
    out.push(div > 0 ? (step === 0 ? (i / div) * delta : i * step) + start : start);
  }
  if (num > 1) out[num - 1] = stop;
  return out;
}

/**
 * `np.arange(start, stop, step)` in float64: numpy fills start + i·d with d = (start + step) − start, which can
 * differ from step in its last bit.
 */
export function npArange(start: number, stop: number, step: number): number[] {
  const length = Math.max(0, Math.ceil((stop - start) / step));
  const out: number[] = [];
  if (length === 0) return out;
  out.push(start);
  if (length === 1) return out;
  const second = start + step;
  out.push(second);
  const d = second - start;
  for (let i = 2; i < length; i++) out.push(start + i * d);
  return out;
}

/** `np.round`: to the nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** `np.interp(x, xp, fp)` for ascending xp, with numpy's formula slope·(x − xp[j]) + fp[j]. */
export function npInterp(x: readonly number[] | Float32Array, xp: ArrayLike<number>, fp: ArrayLike<number>): number[] {
  const n = xp.length;
  return Array.from(x, (v) => {
    if (Number.isNaN(v)) return v;
    if (v < xp[0]) return fp[0];
    if (v >= xp[n - 1]) return fp[n - 1];
    let lo = 0;
    let hi = n - 1; // xp[lo] <= v < xp[hi]
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (xp[mid] <= v) lo = mid;
      else hi = mid;
    }
    if (xp[lo] === v) return fp[lo];
    const slope = (fp[lo + 1] - fp[lo]) / (xp[lo + 1] - xp[lo]);
    const y = slope * (v - xp[lo]) + fp[lo];
    return Number.isNaN(y) ? slope * (v - xp[lo + 1]) + fp[lo + 1] : y;
  });
}

/**
 * diffusers' `_sigma_to_t`: the (fractional) training timestep whose log-sigma matches, by linear
 * interpolation in log-sigma. `logSigmas` are float32 values (ascending with t).
 */
export function sigmaToT(sigma: number, logSigmas: Float32Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  // Index of the last log-sigma not above logSigma (0 if none), kept below the last index.
  let lowIdx = 0;
  for (let i = 0; i < logSigmas.length; i++) if (logSigma - logSigmas[i] >= 0) lowIdx = i;
  lowIdx = Math.min(lowIdx, logSigmas.length - 2);
  const low = logSigmas[lowIdx];
  const high = logSigmas[lowIdx + 1];
  // numpy subtracts the two float32 values in float32.
  let w = (low - logSigma) / fr(low - high);
  w = Math.min(Math.max(w, 0), 1);
  return (1 - w) * lowIdx + w * (lowIdx + 1);
}

/** Karras et al. (2022) sigmas: ρ = 7 interpolation between sigmaMax and sigmaMin (float64). */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  const rho = 7.0;
  const minInvRho = sigmaMin ** (1 / rho);
  const maxInvRho = sigmaMax ** (1 / rho);
  return npLinspace(0, 1, n).map((r) => (maxInvRho + r * (minInvRho - maxInvRho)) ** rho);
}

/** Exponential sigmas: evenly spaced in log-sigma from sigmaMax down to sigmaMin (float64). */
export function exponentialSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  return npLinspace(Math.log(sigmaMax), Math.log(sigmaMin), n).map(Math.exp);
}

/** Lu et al. (2022) schedule: evenly spaced in log-sigma between the given (float32) end points (float64). */
export function luSigmas(logSigmaMin: number, logSigmaMax: number, n: number): number[] {
  return npLinspace(0, 1, n).map((r) => Math.exp(logSigmaMax + r * (logSigmaMin - logSigmaMax)));
}
