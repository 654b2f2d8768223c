/**
 * UniPC (Zhao et al. 2023; diffusers' `UniPCMultistepScheduler`): a multistep predictor (UniP) plus a corrector
 * (UniC) that refines the previous step's result with the new model output, B(h) variants bh1/bh2, x₀ or ε
 * prediction. Made from the PixArt config it runs order 2 with bh2 (diffusers maps "midpoint" to "bh2").
 */

import { BETA_SCHEMA, SchedulerBase, TIMESTEP_SPACINGS } from "./base";
import type { ConfigSchema, SchedulerConfig } from "./config";
import {
  alphaSigma, lambdaOf, rejectUnsupported, SIGMA_SCHEDULE_SCHEMA, SigmaScheduleConfig, sigmaRange, THRESHOLD_SCHEMA,
  ThresholdConfig,
} from "./dpm-solver-multistep";
import { BetaConfig, sigmaOf } from "./noise-schedule";
import { expm1F32, exponentialSigmas, fr, karrasSigmas, npInterp, roundHalfEven, sigmaToT } from "./numerics";
import type { SetTimestepsOptions, StepOptions } from "./scheduler";
import { thresholdSample } from "./thresholding";
import { Spacing, spacedTimesteps } from "./timesteps";

interface UniPcConfig extends BetaConfig, ThresholdConfig, SigmaScheduleConfig {
  solver_order: number;
  prediction_type: string;
  predict_x0: boolean;
  solver_type: string;
  lower_order_final: boolean;
  disable_corrector: number[];
  solver_p: null;
  flow_shift: number;
  timestep_spacing: string;
  steps_offset: number;
  use_dynamic_shifting: boolean;
  time_shift_type: string;
  sigma_min: number | null;
  sigma_max: number | null;
  shift_terminal: number | null;
}

const SCHEMA: ConfigSchema<UniPcConfig> = {
  ...BETA_SCHEMA,
  ...THRESHOLD_SCHEMA,
  ...SIGMA_SCHEDULE_SCHEMA,
  solver_order: { type: "integer", default: 2, min: 1 },
  prediction_type: { type: "string", default: "epsilon", choices: ["epsilon", "sample", "v_prediction", "flow_prediction"] },
  predict_x0: { type: "boolean", default: true },
  solver_type: { type: "string", default: "bh2", choices: ["bh1", "bh2", "midpoint", "heun", "logrho"] },
  lower_order_final: { type: "boolean", default: true },
  disable_corrector: { type: "integer[]", default: [] },
  solver_p: { type: "none", default: null },
  flow_shift: { type: "number", default: 1.0 },
  timestep_spacing: { type: "string", default: "linspace", choices: TIMESTEP_SPACINGS },
  steps_offset: { type: "integer", default: 0 },
  use_dynamic_shifting: { type: "boolean", default: false },
  time_shift_type: { type: "string", default: "exponential", choices: ["exponential"] },
  sigma_min: { type: "number", default: null, nullable: true },
  sigma_max: { type: "number", default: null, nullable: true },
  shift_terminal: { type: "number", default: null, nullable: true },
};

/** Solves A·x = b (n ≤ 3) in float32 by Gaussian elimination with partial pivoting, as LAPACK's sgesv. */
function solveF32(matrix: number[][], rhs: number[]): number[] {
  const n = rhs.length;
  const a = matrix.map((row) => row.slice(0, n));
  const b = rhs.slice(0, n);
  for (let j = 0; j < n; j++) {
    let p = j;
    for (let i = j + 1; i < n; i++) if (Math.abs(a[i][j]) > Math.abs(a[p][j])) p = i;
    [a[j], a[p]] = [a[p], a[j]];
    [b[j], b[p]] = [b[p], b[j]];
    const inv = fr(1 / a[j][j]);
    for (let i = j + 1; i < n; i++) {
      const l = fr(a[i][j] * inv);
      for (let k = j + 1; k < n; k++) a[i][k] = fr(a[i][k] - fr(l * a[j][k]));
      b[i] = fr(b[i] - fr(l * b[j]));
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    x[i] = fr(b[i] / a[i][i]);
    for (let k = 0; k < i; k++) b[k] = fr(b[k] - fr(x[i] * a[k][i]));
  }
  return x;
}

export class UniPCMultistepScheduler extends SchedulerBase<UniPcConfig> {
  readonly timestepsAreIntegers = true;
  readonly initNoiseSigma = 1.0;
  /** Converted model outputs of the last `solver_order` steps, oldest first. */
  private modelOutputs: (Float32Array | null)[];
  private lowerOrderNums = 0;
  /** The previous step's sample (after correction) and order, for the corrector. */
  private lastSample: Float32Array | null = null;
  private thisOrder = 1;

  constructor(config: SchedulerConfig, overrides?: SchedulerConfig) {
    super("UniPCMultistepScheduler", SCHEMA, config, overrides, "multistep");
    const c = this.params;
    rejectUnsupported(this.className, c);
    if (c.shift_terminal !== null) this.configError("shift_terminal", "only used with flow sigmas, which are not implemented");
    // With a final σ of 0 the step size h is infinite at the last step; these two variants then compute 0·∞ and
    // diffusers returns NaN. Refuse up front instead of returning NaN latents.
    if (c.final_sigmas_type === "zero") {
      const culprit = c.solver_type === "bh1" ? 'solver_type "bh1"' : !c.predict_x0 ? "predict_x0 false"
        : !c.lower_order_final && c.solver_order > 1 ? "lower_order_final false" : null;
      if (culprit !== null) {
        this.configError("final_sigmas_type", `${culprit} needs final_sigmas_type "sigma_min": with "zero" the last ` +
          "step has an infinite step size and diffusers returns NaN or infinite latents");
      }
    }
    if (["midpoint", "heun", "logrho"].includes(c.solver_type)) {
      c.solver_type = "bh2";
      (this.config as Record<string, unknown>).solver_type = "bh2";
    }
    this.modelOutputs = new Array<Float32Array | null>(c.solver_order).fill(null);
  }

  setTimesteps(numInferenceSteps: number | null | undefined, options: SetTimestepsOptions = {}): void {
    if (options.timesteps !== undefined) this.usageError("timesteps", "UniPCMultistepScheduler does not take custom timesteps");
    const c = this.params;
    const n = this.checkStepCount(numInferenceSteps);
    let timesteps = spacedTimesteps({
      spacing: c.timestep_spacing as Spacing, numInferenceSteps: n, numTrainTimesteps: c.num_train_timesteps,
      lastTimestep: c.num_train_timesteps, stepsOffset: c.steps_offset, dropLast: true, roundLinspace: true,
    });
    const table = this.train.sigmas;
    const zeroFinal = c.final_sigmas_type === "zero";
    let sigmas: number[];
    let last: number;
    if (c.use_karras_sigmas || c.use_exponential_sigmas) {
      const [sigmaMin, sigmaMax] = sigmaRange(this.config, table[0], table[table.length - 1]);
      sigmas = (c.use_karras_sigmas ? karrasSigmas : exponentialSigmas)(sigmaMin, sigmaMax, n);
      const ts = sigmas.map((s) => sigmaToT(s, this.train.logSigmas));
      timesteps = ts.map(c.use_karras_sigmas ? roundHalfEven : Math.trunc);
      last = zeroFinal ? 0 : sigmas[sigmas.length - 1];
    } else {
      sigmas = npInterp(timesteps, table.map((_, i) => i), table);
      last = zeroFinal ? 0 : sigmaOf(this.train.alphasCumprod[0]);
    }
    this.resetRun(timesteps, Float32Array.from([...sigmas, last]));
    this.modelOutputs.fill(null);
    this.lowerOrderNums = 0;
    this.lastSample = null;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options: StepOptions = {}): Float32Array {
    const i = this.beginStep(modelOutput, timestep, sample);
    const c = this.params;
    const useCorrector = i > 0 && !c.disable_corrector.includes(i - 1) && this.lastSample !== null;
    const converted = this.convertModelOutput(modelOutput, sample, i, options);
    let x = sample;
    if (useCorrector) x = this.update(i - 1, this.thisOrder, this.lastSample!, converted);
    this.modelOutputs.shift();
    this.modelOutputs.push(converted);
    const order = c.lower_order_final ? Math.min(c.solver_order, this.timesteps.length - i) : c.solver_order;
    this.thisOrder = Math.min(order, this.lowerOrderNums + 1);
    this.lastSample = x;
    const prev = this.update(i, this.thisOrder, x, null);
    if (this.lowerOrderNums < c.solver_order) this.lowerOrderNums++;
    this.index = i + 1;
    return prev;
  }

  private convertModelOutput(out: Float32Array, x: Float32Array, i: number, options: StepOptions): Float32Array {
    const c = this.params;
    const [a, s] = alphaSigma(this.sigmas![i]);
    const len = x.length;
    const result = new Float32Array(len);
    if (c.predict_x0) {
      if (c.prediction_type === "epsilon") for (let k = 0; k < len; k++) result[k] = fr(x[k] - fr(s * out[k])) / a;
      else if (c.prediction_type === "sample") result.set(out);
      else for (let k = 0; k < len; k++) result[k] = fr(a * x[k]) - fr(s * out[k]); // v_prediction
      if (!c.thresholding) return result;
      const batch = this.batchOf(len, options);
      return thresholdSample(result, batch, c.dynamic_thresholding_ratio, c.sample_max_value);
    }
    if (c.prediction_type === "epsilon") result.set(out);
    else if (c.prediction_type === "sample") for (let k = 0; k < len; k++) result[k] = fr(x[k] - fr(a * out[k])) / s;
    else for (let k = 0; k < len; k++) result[k] = fr(a * out[k]) + fr(s * x[k]); // v_prediction
    return result;
  }

  /**
   * One UniPC update from sigmas[j] to sigmas[j+1] starting at `x`. With `modelT` null it is the predictor
   * (UniP, using the stored outputs up to step j); otherwise the corrector (UniC), which re-does the step that
   * produced the current sample, now also using the new output `modelT`.
   */
  private update(j: number, order: number, x: Float32Array, modelT: Float32Array | null): Float32Array {
    const c = this.params;
    const outputs = this.modelOutputs as Float32Array[];
    const corrector = modelT !== null;
    const m0 = outputs[outputs.length - 1];
    const t = alphaSigma(this.sigmas![j + 1]);
    const s0 = alphaSigma(this.sigmas![j]);
    const h = fr(lambdaOf(...t) - lambdaOf(...s0));
    const len = x.length;
    const rks: number[] = [];
    const d1s: Float32Array[] = [];
    for (let k = 1; k < order; k++) {
      const mk = outputs[outputs.length - 1 - k];
      const rk = fr(fr(lambdaOf(...alphaSigma(this.sigmas![j - k])) - lambdaOf(...s0)) / h);
      rks.push(rk);
      d1s.push(mk.map((v, e) => fr(v - m0[e]) / rk));
    }
    rks.push(1);
    const hh = c.predict_x0 ? -h : h;
    const hPhi1 = expm1F32(hh);
    const bH = c.solver_type === "bh1" ? hh : expm1F32(hh);
    let hPhiK = fr(fr(hPhi1 / hh) - 1);
    let factorial = 1;
    const rMatrix: number[][] = [];
    const b: number[] = [];
    for (let k = 1; k <= order; k++) {
      rMatrix.push(rks.map((r) => fr(r ** (k - 1))));
      b.push(fr(fr(hPhiK * factorial) / bH));
      factorial *= k + 1;
      hPhiK = fr(fr(hPhiK / hh) - fr(1 / factorial));
    }
    let rhos: number[];
    if (corrector) rhos = order === 1 ? [0.5] : solveF32(rMatrix, b);
    else rhos = d1s.length === 0 ? [] : order === 2 ? [0.5] : solveF32(rMatrix.slice(0, -1), b.slice(0, -1));

    // x_t_ = (σ_t/σ_s0)·x − α_t·φ₁(h)·m0 for x₀ prediction; (α_t/α_s0)·x − σ_t·φ₁(h)·m0 for ε prediction.
    const [at, st] = t;
    const [as0, ss0] = s0;
    const cx = c.predict_x0 ? fr(st / ss0) : fr(at / as0);
    const scale = c.predict_x0 ? at : st;
    const c0 = fr(scale * hPhi1);
    const cRes = fr(scale * bH);
    const out = new Float32Array(len);
    const nRes = corrector ? rhos.length - 1 : rhos.length;
    for (let e = 0; e < len; e++) {
      let res = 0;
      for (let k = 0; k < nRes; k++) res = k === 0 ? fr(rhos[0] * d1s[0][e]) : fr(res + fr(rhos[k] * d1s[k][e]));
      if (corrector) res = fr(res + fr(rhos[rhos.length - 1] * fr(modelT[e] - m0[e])));
      out[e] = fr(fr(cx * x[e]) - fr(c0 * m0[e])) - fr(cRes * res);
    }
    return out;
  }
}
