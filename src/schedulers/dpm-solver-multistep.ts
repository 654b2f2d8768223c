/**
 * DPM-Solver / DPM-Solver++ multistep (diffusers' `DPMSolverMultistepScheduler`), PixArt-Σ's scheduler:
 * orders 1–3, midpoint/heun, ODE and SDE variants, λ clipping, Karras / Lu / exponential sigmas, custom
 * timesteps, dynamic thresholding. Scalars follow diffusers' float32 0-d tensor arithmetic; the sample update
 * is float32 element by element, operations in diffusers' order.
 */

import type { LinearStepPlan } from "../models/pixart-denoise-loop";
import { BETA_SCHEMA, SchedulerBase, TIMESTEP_SPACINGS } from "./base";
import type { ConfigSchema, SchedulerConfig } from "./config";
import { SchedulerConfigError } from "./errors";
import { BetaConfig, lambdaTable, lastTimestepAfterClipping, sigmaOf } from "./noise-schedule";
import {
  expF32, exponentialSigmas, fr, karrasSigmas, logF32, luSigmas, npInterp, roundHalfEven, sigmaToT, sqrtF32,
} from "./numerics";
import type { SetTimestepsOptions, StepOptions } from "./scheduler";
import { thresholdSample } from "./thresholding";
import { Spacing, spacedTimesteps } from "./timesteps";

export interface ThresholdConfig {
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
}

export const THRESHOLD_SCHEMA: ConfigSchema<ThresholdConfig> = {
  thresholding: { type: "boolean", default: false },
  dynamic_thresholding_ratio: { type: "number", default: 0.995 },
  sample_max_value: { type: "number", default: 1.0 },
};

/** Sigma-schedule switches shared by DPM-Solver, UniPC and Euler (only one may be on). */
export interface SigmaScheduleConfig {
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
  use_flow_sigmas: boolean;
  final_sigmas_type: string;
}

export const SIGMA_SCHEDULE_SCHEMA: ConfigSchema<SigmaScheduleConfig> = {
  use_karras_sigmas: { type: "boolean", default: false },
  use_exponential_sigmas: { type: "boolean", default: false },
  use_beta_sigmas: { type: "boolean", default: false },
  use_flow_sigmas: { type: "boolean", default: false },
  final_sigmas_type: { type: "string", default: "zero", choices: ["zero", "sigma_min"] },
};

interface DpmConfig extends BetaConfig, ThresholdConfig, SigmaScheduleConfig {
  solver_order: number;
  prediction_type: string;
  algorithm_type: string;
  solver_type: string;
  lower_order_final: boolean;
  euler_at_final: boolean;
  use_lu_lambdas: boolean;
  flow_shift: number;
  lambda_min_clipped: number;
  variance_type: string | null;
  timestep_spacing: string;
  steps_offset: number;
  use_dynamic_shifting: boolean;
  time_shift_type: string;
}

const SCHEMA: ConfigSchema<DpmConfig> = {
  ...BETA_SCHEMA,
  ...THRESHOLD_SCHEMA,
  ...SIGMA_SCHEDULE_SCHEMA,
  solver_order: { type: "integer", default: 2, min: 1 },
  prediction_type: { type: "string", default: "epsilon", choices: ["epsilon", "sample", "v_prediction", "flow_prediction"] },
  algorithm_type: { type: "string", default: "dpmsolver++", choices: ["dpmsolver", "dpmsolver++", "sde-dpmsolver", "sde-dpmsolver++", "deis"] },
  solver_type: { type: "string", default: "midpoint", choices: ["midpoint", "heun", "logrho", "bh1", "bh2"] },
  lower_order_final: { type: "boolean", default: true },
  euler_at_final: { type: "boolean", default: false },
  use_lu_lambdas: { type: "boolean", default: false },
  flow_shift: { type: "number", default: 1.0 },
  lambda_min_clipped: { type: "number", default: -Infinity },
  variance_type: { type: "string", default: null, nullable: true, choices: ["learned", "learned_range"] },
  timestep_spacing: { type: "string", default: "linspace", choices: TIMESTEP_SPACINGS },
  steps_offset: { type: "integer", default: 0 },
  use_dynamic_shifting: { type: "boolean", default: false },
  time_shift_type: { type: "string", default: "exponential", choices: ["exponential"] },
};

/** Options diffusers has that pixart-ts does not implement (flow-matching models, scipy's beta sigmas). */
export function rejectUnsupported(className: string, c: Partial<SigmaScheduleConfig & DpmConfig>): void {
  const unsupported: [keyof DpmConfig, boolean, string][] = [
    ["use_beta_sigmas", c.use_beta_sigmas === true, "beta sigmas (scipy's beta ppf) are not implemented"],
    ["use_flow_sigmas", c.use_flow_sigmas === true, "flow-matching sigmas are not implemented (PixArt-Σ is a VP model)"],
    ["use_dynamic_shifting", c.use_dynamic_shifting === true, "dynamic shifting (flow models) is not implemented"],
    ["prediction_type", c.prediction_type === "flow_prediction", "flow_prediction is not implemented"],
  ];
  for (const [field, bad, why] of unsupported) if (bad) throw new SchedulerConfigError(className, field, why);
  const switches = ["use_beta_sigmas", "use_exponential_sigmas", "use_karras_sigmas"] as const;
  if (switches.filter((k) => c[k] === true).length > 1) {
    throw new SchedulerConfigError(className, "use_karras_sigmas", `only one of ${switches.join(", ")} can be true`);
  }
}

/** α̂ = 1/√(σ²+1) and ŝ = σ·α̂ (the VP signal and noise scales of σ), float32. */
export function alphaSigma(sigma: number): [number, number] {
  const alpha = fr(1 / sqrtF32(fr(fr(sigma * sigma) + 1)));
  return [alpha, fr(sigma * alpha)];
}

/** λ = log α̂ − log ŝ (+∞ at σ = 0), float32. */
export function lambdaOf(alpha: number, sigma: number): number {
  return fr(logF32(alpha) - logF32(sigma));
}

/** The σ schedule endpoints diffusers' Karras/exponential conversions use: config sigma_min/max if set. */
export function sigmaRange(config: SchedulerConfig, fallbackMin: number, fallbackMax: number): [number, number] {
  const pick = (key: string, fallback: number): number => {
    const v = config[key];
    return typeof v === "number" ? v : fallback;
  };
  return [pick("sigma_min", fallbackMin), pick("sigma_max", fallbackMax)];
}

export class DPMSolverMultistepScheduler extends SchedulerBase<DpmConfig> {
  readonly timestepsAreIntegers = true;
  readonly initNoiseSigma = 1.0;
  /** Converted model outputs (x₀ or ε predictions) of the last `solver_order` steps, oldest first. */
  private modelOutputs: (Float32Array | null)[] = [];
  private lowerOrderNums = 0;
  private readonly lambdas: Float32Array;

  constructor(config: SchedulerConfig, overrides?: SchedulerConfig) {
    super("DPMSolverMultistepScheduler", SCHEMA, config, overrides, "multistep");
    const c = this.params;
    rejectUnsupported(this.className, c);
    if (c.variance_type !== null) {
      this.configError("variance_type", "learned variances (the model output cut to 3 channels) are not implemented; " +
        "pass the ε half of the output and use null");
    }
    // diffusers maps these solver names onto its own.
    if (c.algorithm_type === "deis") this.remap("algorithm_type", "dpmsolver++");
    if (["logrho", "bh1", "bh2"].includes(c.solver_type)) this.remap("solver_type", "midpoint");
    if (!c.algorithm_type.endsWith("dpmsolver++") && c.final_sigmas_type === "zero") {
      this.configError("final_sigmas_type", `"zero" is not supported with algorithm_type "${c.algorithm_type}"; ` +
        `use "sigma_min"`);
    }
    this.lambdas = lambdaTable(this.train.alphasCumprod);
    this.modelOutputs = new Array<Float32Array | null>(c.solver_order).fill(null);
  }

  private remap(key: "algorithm_type" | "solver_type", value: string): void {
    this.params[key] = value;
    (this.config as Record<string, unknown>)[key] = value;
  }

  setTimesteps(numInferenceSteps: number | null | undefined, options: SetTimestepsOptions = {}): void {
    const c = this.params;
    const custom = options.timesteps;
    if ((numInferenceSteps ?? undefined) === undefined && custom === undefined) {
      this.usageError("numInferenceSteps", "pass numInferenceSteps or options.timesteps");
    }
    if (numInferenceSteps != null && custom !== undefined) {
      this.usageError("timesteps", "pass either numInferenceSteps or options.timesteps, not both");
    }
    const table = this.train.sigmas;
    let timesteps: number[];
    let sigmas: number[];
    if (custom !== undefined) {
      for (const flag of ["use_karras_sigmas", "use_lu_lambdas", "use_exponential_sigmas"] as const) {
        if (c[flag]) this.usageError("timesteps", `custom timesteps cannot be used with ${flag}`);
      }
      timesteps = this.checkCustomTimesteps(custom);
      sigmas = npInterp(timesteps, table.map((_, i) => i), table);
    } else {
      const n = this.checkStepCount(numInferenceSteps);
      const last = lastTimestepAfterClipping(this.lambdas, c.lambda_min_clipped);
      timesteps = spacedTimesteps({
        spacing: c.timestep_spacing as Spacing, numInferenceSteps: n, numTrainTimesteps: c.num_train_timesteps,
        lastTimestep: last, stepsOffset: c.steps_offset, dropLast: true, roundLinspace: true,
      });
      [timesteps, sigmas] = this.convertSigmas(timesteps, n);
    }
    const ac0 = this.train.alphasCumprod[0];
    sigmas.push(c.final_sigmas_type === "sigma_min" ? sigmaOf(ac0) : 0);
    this.resetRun(timesteps, Float32Array.from(sigmas));
    this.modelOutputs.fill(null);
    this.lowerOrderNums = 0;
  }

  private checkCustomTimesteps(custom: readonly number[]): number[] {
    if (!Array.isArray(custom) || custom.length === 0 || !custom.every((t) => typeof t === "number" && Number.isFinite(t))) {
      this.usageError("timesteps", "expected a non-empty array of finite numbers");
    }
    return custom.map(Math.trunc); // numpy's astype(int64)
  }

  /** The σ schedule for the spaced timesteps; Karras / Lu / exponential sigmas replace both. */
  private convertSigmas(timesteps: number[], n: number): [number[], number[]] {
    const c = this.params;
    const table = this.train.sigmas;
    const logSigmas = this.train.logSigmas;
    const cosine = c.beta_schedule === "squaredcos_cap_v2";
    const toT = (sigmas: number[], round: boolean): number[] =>
      sigmas.map((s) => sigmaToT(s, logSigmas)).map((t) => (round ? roundHalfEven(t) : Math.trunc(t)));
    const [sigmaMin, sigmaMax] = sigmaRange(this.config, table[0], table[table.length - 1]);
    if (c.use_karras_sigmas) {
      const sigmas = karrasSigmas(sigmaMin, sigmaMax, n);
      return [toT(sigmas, !cosine), sigmas];
    }
    if (c.use_lu_lambdas) {
      const sigmas = luSigmas(logSigmas[0], logSigmas[logSigmas.length - 1], n);
      return [toT(sigmas, !cosine), sigmas];
    }
    if (c.use_exponential_sigmas) {
      const sigmas = exponentialSigmas(sigmaMin, sigmaMax, n);
      return [toT(sigmas, false), sigmas];
    }
    return [timesteps, npInterp(timesteps, table.map((_, i) => i), table)];
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options: StepOptions = {}): Float32Array {
    const i = this.beginStep(modelOutput, timestep, sample);
    const c = this.params;
    const converted = this.convertModelOutput(modelOutput, sample, i, options);
    this.modelOutputs.shift();
    this.modelOutputs.push(converted);
    const noise = c.algorithm_type.startsWith("sde") ? this.stepNoise(sample.length, options) : null;

    const order = this.orderAt(i, this.lowerOrderNums);
    let prev: Float32Array;
    if (order === 1) prev = this.firstOrderUpdate(converted, sample, noise, i);
    else if (order === 2) prev = this.secondOrderUpdate(sample, noise, i);
    else prev = this.thirdOrderUpdate(sample, noise, i);
    if (this.lowerOrderNums < c.solver_order) this.lowerOrderNums++;
    this.index = i + 1;
    return prev;
  }

  /** The solver order of step i after `lowerOrderNums` steps (lower at the start and, when configured, the end). */
  private orderAt(i: number, lowerOrderNums: number): 1 | 2 | 3 {
    const c = this.params;
    const n = this.timesteps.length;
    const lowerOrderFinal = i === n - 1 &&
      (c.euler_at_final || (c.lower_order_final && n < 15) || c.final_sigmas_type === "zero");
    const lowerOrderSecond = i === n - 2 && c.lower_order_final && n < 15;
    if (c.solver_order === 1 || lowerOrderNums < 1 || lowerOrderFinal) return 1;
    if (c.solver_order === 2 || lowerOrderNums < 2 || lowerOrderSecond) return 2;
    return 3;
  }

  /**
   * Why the next steps cannot run as a linear step plan (linearStepPlan), or null when they can: only the
   * deterministic solvers, without thresholding, up to second order.
   */
  linearStepPlanUnsupported(count: number): string | null {
    const c = this.params;
    if (c.algorithm_type.startsWith("sde")) return `algorithm_type "${c.algorithm_type}" draws noise in every step`;
    if (c.thresholding) return "thresholding needs a per-row quantile of x₀";
    if (this.numInferenceSteps === null) return "setTimesteps has not been called";
    const i0 = this.index ?? this.begin ?? 0;
    if (!Number.isInteger(count) || count < 1 || i0 + count > this.timesteps.length) {
      return `${count} steps from step ${i0} do not fit the ${this.timesteps.length} timesteps`;
    }
    let lower = this.lowerOrderNums;
    for (let i = i0; i < i0 + count; i++) {
      if (this.orderAt(i, lower) === 3) return `step ${i} is a third-order update (solver_order ${c.solver_order}); use solver_order <= 2`;
      if (lower < c.solver_order) lower++;
    }
    return null;
  }

  /**
   * The next `count` steps as float32 coefficients of one update form, for a denoising loop inside an ONNX graph
   * (models/pixart-denoise-loop.ts). With x the sample, e the model output and m₋₁ the previous converted output:
   *
   *     m  = (p·x − q·e) / r                        (convertModelOutput)
   *     x' = (cx·x − c0·m) + c1·(inv·(m − m₋₁))     (first order: c1 = inv = 0)
   *
   * with every operation rounded to float32 in that order, this is exactly what step() computes. Does not change
   * the scheduler; commitLinearSteps() does once the steps have run.
   */
  linearStepPlan(count: number): LinearStepPlan {
    const why = this.linearStepPlanUnsupported(count);
    if (why !== null) this.usageError("linearStepPlan", why);
    if (this.index === null) this.initStepIndex(this.timesteps[0]);
    const i0 = this.index!;
    const plan: LinearStepPlan = {
      timesteps: new Float32Array(count), p: new Float32Array(count), q: new Float32Array(count), r: new Float32Array(count),
      cx: new Float32Array(count), c0: new Float32Array(count), c1: new Float32Array(count), inv: new Float32Array(count),
    };
    let lower = this.lowerOrderNums;
    for (let j = 0; j < count; j++) {
      const i = i0 + j;
      plan.timesteps[j] = this.timesteps[i];
      [plan.p[j], plan.q[j], plan.r[j]] = this.conversionCoefficients(i);
      const k = this.odeCoefficients(i, this.orderAt(i, lower) as 1 | 2);
      [plan.cx[j], plan.c0[j], plan.c1[j], plan.inv[j]] = [k.cx, k.c0, k.c1, k.inv];
      if (lower < this.params.solver_order) lower++;
    }
    return plan;
  }

  /** The converted model output of the latest step (m₋₁ of the next), or null before the first step. */
  get lastModelOutput(): Float32Array | null {
    return this.modelOutputs[this.modelOutputs.length - 1];
  }

  /**
   * Records that the `count` steps of a linearStepPlan ran elsewhere and ended with converted output `last`:
   * the scheduler then stands where `count` calls of step() would have left it.
   */
  commitLinearSteps(count: number, last: Float32Array): void {
    const why = this.linearStepPlanUnsupported(count);
    if (why !== null) this.usageError("commitLinearSteps", why);
    if (this.index === null) this.initStepIndex(this.timesteps[0]);
    for (let j = 0; j < count; j++) {
      this.modelOutputs.shift();
      // Only the latest output is read by first- and second-order updates; older ones are not kept.
      this.modelOutputs.push(j === count - 1 ? last : null);
      if (this.lowerOrderNums < this.params.solver_order) this.lowerOrderNums++;
    }
    this.index! += count;
  }

  /** p, q, r of convertModelOutput at step i: m = (p·x − q·e) / r. */
  private conversionCoefficients(i: number): [number, number, number] {
    const c = this.params;
    const [a, s] = alphaSigma(this.sigmas![i]);
    if (c.algorithm_type.endsWith("dpmsolver++")) {
      if (c.prediction_type === "epsilon") return [1, s, a];
      if (c.prediction_type === "sample") return [0, -1, 1];
      return [a, s, 1]; // v_prediction
    }
    if (c.prediction_type === "epsilon") return [0, -1, 1];
    if (c.prediction_type === "sample") return [1, a, s];
    return [s, -a, 1]; // v_prediction: a·e + s·x
  }

  /**
   * The deterministic first- and second-order updates as x' = (cx·x − c0·m₀) + c1·D1 with D1 = inv·(m₀ − m₁):
   * c1 carries the sign (midpoint subtracts its term, heun adds it); first order has c1 = inv = 0.
   */
  private odeCoefficients(i: number, order: 1 | 2): { cx: number; c0: number; c1: number; inv: number } {
    const t = this.at(i + 1);
    const s0 = this.at(i);
    const h = fr(t.lambda - s0.lambda);
    const heun = this.params.solver_type === "heun";
    let inv = 0;
    if (order === 2) {
      const s1 = this.at(i - 1);
      inv = fr(1 / fr(fr(s0.lambda - s1.lambda) / h));
    }
    if (this.params.algorithm_type === "dpmsolver++") {
      const em1 = fr(expF32(-h) - 1);
      const c0 = fr(t.a * em1);
      const c1 = order === 1 ? 0 : heun ? fr(t.a * fr(fr(em1 / h) + 1)) : -fr(0.5 * c0);
      return { cx: fr(t.s / s0.s), c0, c1, inv };
    }
    const ep1 = fr(expF32(h) - 1);
    const c0 = fr(t.s * ep1);
    const c1 = order === 1 ? 0 : -(heun ? fr(t.s * fr(fr(ep1 / h) - 1)) : fr(0.5 * c0));
    return { cx: fr(t.a / s0.a), c0, c1, inv };
  }

  /** x₀ prediction (DPM-Solver++) or ε prediction (DPM-Solver) from the model output. */
  private convertModelOutput(out: Float32Array, x: Float32Array, i: number, options: StepOptions): Float32Array {
    const c = this.params;
    const [a, s] = alphaSigma(this.sigmas![i]);
    const len = x.length;
    const result = new Float32Array(len);
    const dataPrediction = c.algorithm_type.endsWith("dpmsolver++");
    if (dataPrediction) {
      if (c.prediction_type === "epsilon") for (let k = 0; k < len; k++) result[k] = fr(x[k] - fr(s * out[k])) / a;
      else if (c.prediction_type === "sample") result.set(out);
      else for (let k = 0; k < len; k++) result[k] = fr(a * x[k]) - fr(s * out[k]); // v_prediction
      return c.thresholding ? this.threshold(result, options) : result;
    }
    if (c.prediction_type === "epsilon") result.set(out);
    else if (c.prediction_type === "sample") for (let k = 0; k < len; k++) result[k] = fr(x[k] - fr(a * out[k])) / s;
    else for (let k = 0; k < len; k++) result[k] = fr(a * out[k]) + fr(s * x[k]); // v_prediction
    if (!c.thresholding) return result;
    // Threshold the implied x₀ and turn it back into ε.
    const x0 = new Float32Array(len);
    for (let k = 0; k < len; k++) x0[k] = fr(x[k] - fr(s * result[k])) / a;
    const clipped = this.threshold(x0, options);
    for (let k = 0; k < len; k++) result[k] = fr(x[k] - fr(a * clipped[k])) / s;
    return result;
  }

  private threshold(x0: Float32Array, options: StepOptions): Float32Array {
    const c = this.params;
    return thresholdSample(x0, this.batchOf(x0.length, options), c.dynamic_thresholding_ratio, c.sample_max_value);
  }

  /** α̂, ŝ and λ at sigmas[j]. */
  private at(j: number): { a: number; s: number; lambda: number } {
    const [a, s] = alphaSigma(this.sigmas![j]);
    return { a, s, lambda: lambdaOf(a, s) };
  }

  private firstOrderUpdate(m: Float32Array, x: Float32Array, noise: Float32Array | null, i: number): Float32Array {
    const t = this.at(i + 1);
    const s0 = this.at(i);
    const h = fr(t.lambda - s0.lambda);
    const out = new Float32Array(x.length);
    switch (this.params.algorithm_type) {
      case "dpmsolver++":
      case "dpmsolver": {
        const { cx, c0 } = this.odeCoefficients(i, 1);
        for (let k = 0; k < x.length; k++) out[k] = fr(cx * x[k]) - fr(c0 * m[k]);
        break;
      }
      case "sde-dpmsolver++": {
        const e2 = expF32(fr(-2 * h));
        const cx = fr(fr(t.s / s0.s) * expF32(-h));
        const cm = fr(t.a * fr(1 - e2));
        const cn = fr(t.s * sqrtF32(fr(1 - e2)));
        for (let k = 0; k < x.length; k++) out[k] = fr(fr(cx * x[k]) + fr(cm * m[k])) + fr(cn * noise![k]);
        break;
      }
      default: { // sde-dpmsolver
        const cx = fr(t.a / s0.a);
        const cm = fr(2 * fr(t.s * fr(expF32(h) - 1)));
        const cn = fr(t.s * sqrtF32(fr(expF32(fr(2 * h)) - 1)));
        for (let k = 0; k < x.length; k++) out[k] = fr(fr(cx * x[k]) - fr(cm * m[k])) + fr(cn * noise![k]);
      }
    }
    return out;
  }

  private secondOrderUpdate(x: Float32Array, noise: Float32Array | null, i: number): Float32Array {
    const [m1, m0] = this.modelOutputs.slice(-2) as Float32Array[];
    const t = this.at(i + 1);
    const s0 = this.at(i);
    const s1 = this.at(i - 1);
    const h = fr(t.lambda - s0.lambda);
    const h0 = fr(s0.lambda - s1.lambda);
    const r0 = fr(h0 / h);
    const len = x.length;
    // D0 = m0, D1 = (1/r0)·(m0 − m1)
    const inv = fr(1 / r0);
    const d1 = new Float32Array(len);
    for (let k = 0; k < len; k++) d1[k] = fr(inv * fr(m0[k] - m1[k]));
    const heun = this.params.solver_type === "heun";
    const out = new Float32Array(len);
    switch (this.params.algorithm_type) {
      case "dpmsolver++":
      case "dpmsolver": {
        // c1 is signed: −c1·D1 is −(c1·D1) exactly, so this is diffusers' "− c1·D1" (midpoint) or "+ c1·D1" (heun).
        const { cx, c0, c1 } = this.odeCoefficients(i, 2);
        for (let k = 0; k < len; k++) out[k] = fr(fr(cx * x[k]) - fr(c0 * m0[k])) + fr(c1 * d1[k]);
        break;
      }
      case "sde-dpmsolver++": {
        const e2 = expF32(fr(-2 * h));
        const cx = fr(fr(t.s / s0.s) * expF32(-h));
        const c0 = fr(t.a * fr(1 - e2));
        const c1 = heun ? fr(t.a * fr(fr(fr(1 - e2) / fr(-2 * h)) + 1)) : fr(0.5 * c0);
        const cn = fr(t.s * sqrtF32(fr(1 - e2)));
        for (let k = 0; k < len; k++) {
          out[k] = fr(fr(fr(cx * x[k]) + fr(c0 * m0[k])) + fr(c1 * d1[k])) + fr(cn * noise![k]);
        }
        break;
      }
      default: { // sde-dpmsolver
        const cx = fr(t.a / s0.a);
        const ep1 = fr(expF32(h) - 1);
        const c0 = fr(2 * fr(t.s * ep1));
        const c1 = heun ? fr(2 * fr(t.s * fr(fr(ep1 / h) - 1))) : fr(t.s * ep1);
        const cn = fr(t.s * sqrtF32(fr(expF32(fr(2 * h)) - 1)));
        for (let k = 0; k < len; k++) {
          out[k] = fr(fr(fr(cx * x[k]) - fr(c0 * m0[k])) - fr(c1 * d1[k])) + fr(cn * noise![k]);
        }
      }
    }
    return out;
  }

  private thirdOrderUpdate(x: Float32Array, noise: Float32Array | null, i: number): Float32Array {
    const [m2, m1, m0] = this.modelOutputs.slice(-3) as Float32Array[];
    const t = this.at(i + 1);
    const s0 = this.at(i);
    const s1 = this.at(i - 1);
    const s2 = this.at(i - 2);
    const h = fr(t.lambda - s0.lambda);
    const r0 = fr(fr(s0.lambda - s1.lambda) / h);
    const r1 = fr(fr(s1.lambda - s2.lambda) / h);
    const len = x.length;
    const inv0 = fr(1 / r0);
    const inv1 = fr(1 / r1);
    const sum = fr(r0 + r1);
    const w1 = fr(r0 / sum);
    const w2 = fr(1 / sum);
    // D1 = D1_0 + r0/(r0+r1)·(D1_0 − D1_1), D2 = 1/(r0+r1)·(D1_0 − D1_1)
    const d1 = new Float32Array(len);
    const d2 = new Float32Array(len);
    for (let k = 0; k < len; k++) {
      const d10 = fr(inv0 * fr(m0[k] - m1[k]));
      const d11 = fr(inv1 * fr(m1[k] - m2[k]));
      const diff = fr(d10 - d11);
      d1[k] = d10 + fr(w1 * diff);
      d2[k] = w2 * diff;
    }
    const hh = fr(h * h);
    const out = new Float32Array(len);
    switch (this.params.algorithm_type) {
      case "dpmsolver++": {
        const cx = fr(t.s / s0.s);
        const em1 = fr(expF32(-h) - 1);
        const c0 = fr(t.a * em1);
        const c1 = fr(t.a * fr(fr(em1 / h) + 1));
        const c2 = fr(t.a * fr(fr(fr(em1 + h) / hh) - 0.5));
        for (let k = 0; k < len; k++) {
          out[k] = fr(fr(fr(cx * x[k]) - fr(c0 * m0[k])) + fr(c1 * d1[k])) - fr(c2 * d2[k]);
        }
        break;
      }
      case "dpmsolver": {
        const cx = fr(t.a / s0.a);
        const ep1 = fr(expF32(h) - 1);
        const c0 = fr(t.s * ep1);
        const c1 = fr(t.s * fr(fr(ep1 / h) - 1));
        const c2 = fr(t.s * fr(fr(fr(ep1 - h) / hh) - 0.5));
        for (let k = 0; k < len; k++) {
          out[k] = fr(fr(fr(cx * x[k]) - fr(c0 * m0[k])) - fr(c1 * d1[k])) - fr(c2 * d2[k]);
        }
        break;
      }
      case "sde-dpmsolver++": {
        const e2 = expF32(fr(-2 * h));
        const cx = fr(fr(t.s / s0.s) * expF32(-h));
        const c0 = fr(t.a * fr(1 - e2));
        const c1 = fr(t.a * fr(fr(fr(1 - e2) / fr(-2 * h)) + 1));
        const twoH = fr(2 * h);
        const c2 = fr(t.a * fr(fr(fr(fr(1 - e2) - twoH) / fr(twoH * twoH)) - 0.5));
        const cn = fr(t.s * sqrtF32(fr(1 - e2)));
        for (let k = 0; k < len; k++) {
          const ode = fr(fr(fr(fr(cx * x[k]) + fr(c0 * m0[k])) + fr(c1 * d1[k])) + fr(c2 * d2[k]));
          out[k] = ode + fr(cn * noise![k]);
        }
        break;
      }
      default:
        // diffusers defines no third-order SDE-DPM-Solver update (its step fails there too).
        this.usageError("step", "there is no third-order update for algorithm_type \"sde-dpmsolver\"; use solver_order <= 2");
    }
    return out;
  }
}
