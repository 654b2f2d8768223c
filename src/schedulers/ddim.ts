/**
 * DDIM (diffusers' `DDIMScheduler`): deterministic for η = 0, with the (1−ᾱ) noise term for η > 0.
 * Note diffusers' defaults for keys the PixArt config lacks: `clip_sample` is true (x₀ clamped to ±1, harmful
 * for latents: pass `clip_sample: false`), `set_alpha_to_one` true.
 */

import { BETA_SCHEMA, SchedulerBase, TIMESTEP_SPACINGS } from "./base";
import type { ConfigSchema, SchedulerConfig } from "./config";
import { THRESHOLD_SCHEMA, ThresholdConfig } from "./dpm-solver-multistep";
import type { BetaConfig } from "./noise-schedule";
import { fr, sqrtF32 } from "./numerics";
import type { SetTimestepsOptions, StepOptions } from "./scheduler";
import { thresholdSample } from "./thresholding";
import { Spacing, spacedTimesteps } from "./timesteps";

interface DdimConfig extends BetaConfig, ThresholdConfig {
  clip_sample: boolean;
  set_alpha_to_one: boolean;
  steps_offset: number;
  prediction_type: string;
  clip_sample_range: number;
  timestep_spacing: string;
}

const SCHEMA: ConfigSchema<DdimConfig> = {
  ...BETA_SCHEMA,
  ...THRESHOLD_SCHEMA,
  clip_sample: { type: "boolean", default: true },
  set_alpha_to_one: { type: "boolean", default: true },
  steps_offset: { type: "integer", default: 0 },
  prediction_type: { type: "string", default: "epsilon", choices: ["epsilon", "sample", "v_prediction"] },
  clip_sample_range: { type: "number", default: 1.0 },
  timestep_spacing: { type: "string", default: "leading", choices: TIMESTEP_SPACINGS },
};

export class DDIMScheduler extends SchedulerBase<DdimConfig> {
  readonly timestepsAreIntegers = true;
  readonly initNoiseSigma = 1.0;
  private readonly finalAlphaCumprod: number;

  constructor(config: SchedulerConfig, overrides?: SchedulerConfig) {
    super("DDIMScheduler", SCHEMA, config, overrides, "multistep");
    this.finalAlphaCumprod = this.params.set_alpha_to_one ? 1 : this.train.alphasCumprod[0];
  }

  setTimesteps(numInferenceSteps: number | null | undefined, options: SetTimestepsOptions = {}): void {
    if (options.timesteps !== undefined) this.usageError("timesteps", "DDIMScheduler does not take custom timesteps");
    const c = this.params;
    const n = this.checkStepCount(numInferenceSteps, c.num_train_timesteps);
    const timesteps = spacedTimesteps({
      spacing: c.timestep_spacing as Spacing, numInferenceSteps: n, numTrainTimesteps: c.num_train_timesteps,
      lastTimestep: c.num_train_timesteps, stepsOffset: c.steps_offset, dropLast: false, roundLinspace: true,
    });
    this.resetRun(timesteps, null);
  }

  private alphaProd(t: number): number {
    const ac = this.train.alphasCumprod;
    if (t < 0) return this.finalAlphaCumprod;
    if (t >= ac.length) this.usageError("timestep", `${t} is outside the ${ac.length} training timesteps`);
    return ac[t];
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options: StepOptions = {}): Float32Array {
    // DDIM steps by timestep value, not by position: the previous timestep is t − T/N whatever the spacing.
    this.checkStepArgs(modelOutput, timestep, sample);
    const c = this.params;
    const eta = options.eta ?? 0;
    if (typeof eta !== "number" || !Number.isFinite(eta) || eta < 0) {
      this.usageError("eta", `expected a finite number >= 0, got ${String(eta)}`);
    }
    if (!Number.isInteger(timestep)) this.usageError("timestep", `expected an integer timestep, got ${timestep}`);
    const prevT = timestep - Math.floor(c.num_train_timesteps / this.numInferenceSteps!);
    const at = this.alphaProd(timestep);
    const aPrev = this.alphaProd(prevT);
    const bt = fr(1 - at);
    const sqrtAt = sqrtF32(at);
    const sqrtBt = sqrtF32(bt);
    const len = sample.length;
    const x0 = new Float32Array(len);
    let eps = modelOutput;
    if (c.prediction_type === "epsilon") {
      for (let k = 0; k < len; k++) x0[k] = fr(sample[k] - fr(sqrtBt * modelOutput[k])) / sqrtAt;
    } else if (c.prediction_type === "sample") {
      x0.set(modelOutput);
      eps = new Float32Array(len);
      for (let k = 0; k < len; k++) eps[k] = fr(sample[k] - fr(sqrtAt * x0[k])) / sqrtBt;
    } else { // v_prediction
      eps = new Float32Array(len);
      for (let k = 0; k < len; k++) {
        x0[k] = fr(sqrtAt * sample[k]) - fr(sqrtBt * modelOutput[k]);
        eps[k] = fr(sqrtAt * modelOutput[k]) + fr(sqrtBt * sample[k]);
      }
    }
    let pred: Float32Array = x0;
    if (c.thresholding) {
      pred = thresholdSample(x0, this.batchOf(len, options), c.dynamic_thresholding_ratio, c.sample_max_value);
    } else if (c.clip_sample) {
      const r = fr(c.clip_sample_range);
      pred = x0.map((v) => Math.min(Math.max(v, -r), r));
    }
    // σ_t = η·√((1−ᾱ_prev)/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_prev))
    const variance = fr(fr(fr(1 - aPrev) / bt) * fr(1 - fr(at / aPrev)));
    const std = fr(fr(eta) * sqrtF32(variance));
    if (options.useClippedModelOutput) {
      eps = new Float32Array(len);
      for (let k = 0; k < len; k++) eps[k] = fr(sample[k] - fr(sqrtAt * pred[k])) / sqrtBt;
    }
    const cDir = sqrtF32(fr(fr(1 - aPrev) - fr(std * std)));
    const cX0 = sqrtF32(aPrev);
    const out = new Float32Array(len);
    for (let k = 0; k < len; k++) out[k] = fr(cX0 * pred[k]) + fr(cDir * eps[k]);
    if (eta > 0) {
      if (options.varianceNoise !== undefined && options.generator !== undefined) {
        this.usageError("varianceNoise", "pass either varianceNoise or generator, not both");
      }
      const noise = this.stepNoise(len, options);
      for (let k = 0; k < len; k++) out[k] = out[k] + fr(std * noise[k]);
    }
    return out;
  }
}
