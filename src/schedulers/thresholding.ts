/**
 * Dynamic thresholding of a predicted x₀ (Imagen; diffusers' `_threshold_sample`): per batch row, s = the
 * `ratio` quantile of |x₀|, clamped to [1, maxValue]; x₀ is clamped to [−s, s] and divided by s.
 */

import { fr } from "./numerics";

/** torch.quantile of one row (linear interpolation between the two nearest order statistics), float32. */
function quantileF32(values: Float32Array, q: number): number {
  const sorted = Float32Array.from(values).sort();
  const rank = fr(fr(q) * (sorted.length - 1));
  const below = Math.floor(rank);
  const above = Math.ceil(rank);
  const weight = fr(rank - below);
  const lo = sorted[below];
  const hi = sorted[above];
  const diff = fr(hi - lo);
  return weight < 0.5 ? fr(lo + fr(weight * diff)) : fr(hi - fr(diff * fr(1 - weight)));
}

/** Returns a thresholded copy of `x0`, whose first dimension (`batch`) selects the rows. */
export function thresholdSample(x0: Float32Array, batch: number, ratio: number, maxValue: number): Float32Array {
  const out = new Float32Array(x0.length);
  const row = x0.length / batch;
  for (let b = 0; b < batch; b++) {
    const values = x0.subarray(b * row, (b + 1) * row);
    const s = Math.min(Math.max(quantileF32(values.map(Math.abs), ratio), 1), fr(maxValue));
    for (let i = 0; i < row; i++) out[b * row + i] = Math.min(Math.max(values[i], -s), s) / s;
  }
  return out;
}
