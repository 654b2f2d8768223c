/**
 * The training noise schedule every scheduler here starts from: betas → ᾱ (alphas_cumprod) → σ table, computed
 * as diffusers computes them (float32 torch tensors; the cumulative product accumulates in float64, as torch's
 * CPU cumprod does).
 */

import { SchedulerConfigError } from "./errors";
import { fr, logF32, npLogF32, sqrtF32, torchLinspaceF32 } from "./numerics";

export const BETA_SCHEDULES = ["linear", "scaled_linear", "squaredcos_cap_v2"] as const;
export type BetaSchedule = (typeof BETA_SCHEDULES)[number];

/** The config fields every scheduler here shares for its training schedule. */
export interface BetaConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: string;
  trained_betas: number[] | null;
  rescale_betas_zero_snr: boolean;
}

/** Glide's cosine schedule (`betas_for_alpha_bar`, cosine variant), in float64, stored as float32. */
function cosineBetas(n: number, maxBeta = 0.999): Float32Array {
  const alphaBar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), maxBeta);
  return out;
}

/** Cumulative product of float32 values, accumulated in float64 and stored as float32. */
function cumprod(values: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  let p = 1;
  for (let i = 0; i < values.length; i++) {
    p *= values[i];
    out[i] = p;
  }
  return out;
}

/** `rescale_zero_terminal_snr` (Lin et al. 2023): shifts √ᾱ so the last step has zero SNR, in float32. */
function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const alphas = betas.map((b) => fr(1 - b));
  const sqrtAc = cumprod(alphas).map(sqrtF32);
  const first = sqrtAc[0];
  const last = sqrtAc[sqrtAc.length - 1];
  const scale = fr(first / fr(first - last));
  const alphaBar = sqrtAc.map((v) => {
    const shifted = fr(v - last);
    const scaled = fr(shifted * scale);
    return fr(scaled * scaled);
  });
  const out = new Float32Array(betas.length);
  for (let i = 0; i < out.length; i++) {
    const alpha = i === 0 ? alphaBar[0] : fr(alphaBar[i] / alphaBar[i - 1]);
    out[i] = fr(1 - alpha);
  }
  return out;
}

export function makeBetas(className: string, c: BetaConfig): Float32Array {
  let betas: Float32Array;
  if (c.trained_betas !== null) {
    betas = Float32Array.from(c.trained_betas);
  } else if (c.beta_schedule === "linear") {
    betas = torchLinspaceF32(c.beta_start, c.beta_end, c.num_train_timesteps);
  } else if (c.beta_schedule === "scaled_linear") {
    betas = torchLinspaceF32(c.beta_start ** 0.5, c.beta_end ** 0.5, c.num_train_timesteps).map((b) => fr(b * b));
  } else if (c.beta_schedule === "squaredcos_cap_v2") {
    betas = cosineBetas(c.num_train_timesteps);
  } else {
    throw new SchedulerConfigError(className, "beta_schedule",
      `expected one of ${BETA_SCHEDULES.map((s) => `"${s}"`).join(", ")}, got ${JSON.stringify(c.beta_schedule)}`);
  }
  return c.rescale_betas_zero_snr ? rescaleZeroTerminalSnr(betas) : betas;
}

/** ᾱ_t = ∏(1 − β). With zero-terminal-SNR rescaling the last entry is set to 2⁻²⁴ so σ stays finite. */
export function alphasCumprod(betas: Float32Array, rescaledZeroSnr: boolean): Float32Array {
  const ac = cumprod(betas.map((b) => fr(1 - b)));
  if (rescaledZeroSnr) ac[ac.length - 1] = 2 ** -24;
  return ac;
}

/** σ_t = ((1 − ᾱ_t)/ᾱ_t)^½ in float32 (ascending in t). */
export function sigmaTable(ac: Float32Array): Float32Array {
  return ac.map((a) => sqrtF32(fr(fr(1 - a) / a)));
}

/** σ for ᾱ as a float32 scalar: ((1 − ᾱ)/ᾱ)^½. */
export function sigmaOf(a: number): number {
  return sqrtF32(fr(fr(1 - a) / a));
}

/** λ_t = log √ᾱ − log √(1 − ᾱ) in float32 (descending in t). */
export function lambdaTable(ac: Float32Array): Float32Array {
  return ac.map((a) => fr(logF32(sqrtF32(a)) - logF32(sqrtF32(fr(1 - a)))));
}

/**
 * The number of training timesteps left after clipping λ below `lambdaMinClipped` (DPM-Solver, UniPC):
 * `num_train_timesteps − searchsorted(flip(λ), lambdaMinClipped)`.
 */
export function lastTimestepAfterClipping(lambdas: Float32Array, lambdaMinClipped: number): number {
  let below = 0; // entries of flip(λ) (ascending) smaller than the clip value
  for (let i = lambdas.length - 1; i >= 0 && lambdas[i] < lambdaMinClipped; i--) below++;
  return lambdas.length - below;
}

/** The float32 training tables a scheduler keeps. */
export interface TrainingSchedule {
  readonly betas: Float32Array;
  readonly alphasCumprod: Float32Array;
  /** σ for every training timestep, ascending in t. */
  readonly sigmas: Float32Array;
  /** log σ in float32 (numpy's `np.log` of the float32 σ table), for sigma→t interpolation. */
  readonly logSigmas: Float32Array;
}

export function trainingSchedule(className: string, c: BetaConfig): TrainingSchedule {
  const betas = makeBetas(className, c);
  const ac = alphasCumprod(betas, c.rescale_betas_zero_snr);
  const sigmas = sigmaTable(ac);
  return { betas, alphasCumprod: ac, sigmas, logSigmas: sigmas.map(npLogF32) };
}
