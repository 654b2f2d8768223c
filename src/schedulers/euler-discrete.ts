/**
 * Euler (Karras et al. 2022, Algorithm 2; diffusers' `EulerDiscreteScheduler`). Works on σ-scaled samples:
 * latents start at σ_max·N(0,1), the model gets x/√(σ²+1), and the timesteps are float32 values (not rounded
 * for "linspace" spacing), which the transformer embeds as they are.
 */

import { BETA_SCHEMA, SchedulerBase, TIMESTEP_SPACINGS } from "./base";
import type { ConfigSchema, SchedulerConfig } from "./config";
import { rejectUnsupported, sigmaRange } from "./dpm-solver-multistep";
import { BetaConfig, sigmaOf } from "./noise-schedule";
import {
  expF32, exponentialSigmas, fr, karrasSigmas, logF32, npInterp, npLogF32, sigmaToT, sqrtF32, torchLinspaceF32,
} from "./numerics";
import type { SchedulerClassName, SetTimestepsOptions, StepOptions } from "./scheduler";
import { Spacing, spacedTimesteps } from "./timesteps";

/** Config keys both Euler schedulers read. */
export interface EulerCommonConfig extends BetaConfig {
  prediction_type: string;
  timestep_spacing: string;
  steps_offset: number;
}

export const EULER_COMMON_SCHEMA: ConfigSchema<EulerCommonConfig> = {
  ...BETA_SCHEMA,
  prediction_type: { type: "string", default: "epsilon", choices: ["epsilon", "v_prediction", "sample", "original_sample"] },
  timestep_spacing: { type: "string", default: "linspace", choices: TIMESTEP_SPACINGS },
  steps_offset: { type: "integer", default: 0 },
};

/** What the Euler schedulers share: float timesteps, σ-scaled samples, input scaling. */
export abstract class EulerBase<P extends EulerCommonConfig> extends SchedulerBase<P> {
  readonly timestepsAreIntegers = false;

  protected constructor(className: SchedulerClassName, schema: ConfigSchema<P>, config: SchedulerConfig,
    overrides: SchedulerConfig | undefined) {
    super(className, schema, config, overrides, "euler");
    // Before setTimesteps diffusers holds the training σ (descending) and a final 0.
    const table = this.train.sigmas;
    this.sigmas = Float32Array.from([...Array.from(table).reverse(), 0]);
  }

  /** σ_max for "linspace"/"trailing" spacing, else √(σ_max²+1). */
  get initNoiseSigma(): number {
    const max = this.sigmas!.reduce((a, b) => Math.max(a, b), -Infinity);
    return ["linspace", "trailing"].includes(this.params.timestep_spacing) ? max : sqrtF32(fr(fr(max * max) + 1));
  }

  override scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    if (this.numInferenceSteps === null) this.usageError("scaleModelInput", "call setTimesteps first");
    if (this.index === null) this.initStepIndex(timestep);
    const sigma = this.sigmas![this.index!];
    const scale = sqrtF32(fr(fr(sigma * sigma) + 1));
    return sample.map((v) => v / scale);
  }

  /** Descending float32 timesteps for the configured spacing (not rounded for "linspace"). */
  protected spacedTimesteps(n: number): Float32Array {
    const c = this.params;
    return Float32Array.from(spacedTimesteps({
      spacing: c.timestep_spacing as Spacing, numInferenceSteps: n, numTrainTimesteps: c.num_train_timesteps,
      lastTimestep: c.num_train_timesteps, stepsOffset: c.steps_offset, dropLast: false, roundLinspace: false,
    }));
  }

  /** σ(t) by linear interpolation in the training table (float64). */
  protected interpolatedSigmas(timesteps: Float32Array): number[] {
    const table = this.train.sigmas;
    return npInterp(timesteps, table.map((_, i) => i), table);
  }

  /** x₀ predicted from the model output at σ (diffusers' `pred_original_sample`). */
  protected predictX0(out: Float32Array, x: Float32Array, sigma: number, sigmaHat: number): Float32Array {
    const len = x.length;
    const x0 = new Float32Array(len);
    switch (this.params.prediction_type) {
      case "epsilon":
        for (let k = 0; k < len; k++) x0[k] = x[k] - fr(sigmaHat * out[k]);
        break;
      case "v_prediction": {
        const s2p1 = fr(fr(sigma * sigma) + 1);
        const cOut = fr(-sigma / sqrtF32(s2p1));
        for (let k = 0; k < len; k++) x0[k] = fr(out[k] * cOut) + fr(x[k] / s2p1);
        break;
      }
      default: // "sample" / "original_sample"
        x0.set(out);
    }
    return x0;
  }
}

interface EulerConfig extends EulerCommonConfig {
  interpolation_type: string;
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
  sigma_min: number | null;
  sigma_max: number | null;
  timestep_type: string;
  final_sigmas_type: string;
}

const SCHEMA: ConfigSchema<EulerConfig> = {
  ...EULER_COMMON_SCHEMA,
  interpolation_type: { type: "string", default: "linear", choices: ["linear", "log_linear"] },
  use_karras_sigmas: { type: "boolean", default: false },
  use_exponential_sigmas: { type: "boolean", default: false },
  use_beta_sigmas: { type: "boolean", default: false },
  sigma_min: { type: "number", default: null, nullable: true },
  sigma_max: { type: "number", default: null, nullable: true },
  timestep_type: { type: "string", default: "discrete", choices: ["discrete", "continuous"] },
  final_sigmas_type: { type: "string", default: "zero", choices: ["zero", "sigma_min"] },
};

export class EulerDiscreteScheduler extends EulerBase<EulerConfig> {
  constructor(config: SchedulerConfig, overrides?: SchedulerConfig) {
    super("EulerDiscreteScheduler", SCHEMA, config, overrides);
    rejectUnsupported(this.className, this.params);
    if (this.continuousTimesteps()) this.timesteps = Array.from(this.sigmas!.subarray(0, -1), (s) => this.continuousT(s));
  }

  /** v-prediction models with `timestep_type: "continuous"` take t = ¼·ln σ. */
  private continuousTimesteps(): boolean {
    return this.params.timestep_type === "continuous" && this.params.prediction_type === "v_prediction";
  }

  private continuousT(sigma: number): number {
    return fr(0.25 * logF32(sigma));
  }

  setTimesteps(numInferenceSteps: number | null | undefined, options: SetTimestepsOptions = {}): void {
    const c = this.params;
    const custom = options.timesteps;
    if (numInferenceSteps != null && custom !== undefined) {
      this.usageError("timesteps", "pass either numInferenceSteps or options.timesteps, not both");
    }
    let timesteps: Float32Array;
    if (custom !== undefined) {
      for (const flag of ["use_karras_sigmas", "use_exponential_sigmas"] as const) {
        if (c[flag]) this.usageError("timesteps", `custom timesteps cannot be used with ${flag}`);
      }
      if (this.continuousTimesteps()) this.usageError("timesteps", "custom timesteps cannot be used with continuous timesteps");
      if (!Array.isArray(custom) || custom.length === 0 || !custom.every((t) => typeof t === "number" && Number.isFinite(t))) {
        this.usageError("timesteps", "expected a non-empty array of finite numbers");
      }
      timesteps = Float32Array.from(custom);
    } else {
      timesteps = this.spacedTimesteps(this.checkStepCount(numInferenceSteps));
    }
    const n = timesteps.length;
    const table = this.train.sigmas;
    let sigmas: number[];
    if (c.interpolation_type === "log_linear") {
      // diffusers' log-linear schedule has N+1 σ before the final one is appended.
      sigmas = Array.from(torchLinspaceF32(npLogF32(table[table.length - 1]), npLogF32(table[0]), n + 1), expF32);
    } else {
      sigmas = this.interpolatedSigmas(timesteps);
    }
    const [sigmaMin, sigmaMax] = sigmaRange(this.config, sigmas[sigmas.length - 1], sigmas[0]);
    if (c.use_karras_sigmas || c.use_exponential_sigmas) {
      sigmas = (c.use_karras_sigmas ? karrasSigmas : exponentialSigmas)(sigmaMin, sigmaMax, n);
      timesteps = Float32Array.from(sigmas, (s) => sigmaToT(s, this.train.logSigmas));
    }
    sigmas.push(c.final_sigmas_type === "sigma_min" ? sigmaOf(this.train.alphasCumprod[0]) : 0);
    const sigmas32 = Float32Array.from(sigmas);
    const ts = this.continuousTimesteps() ? Array.from(sigmas32.subarray(0, -1), (s) => this.continuousT(s)) : Array.from(timesteps);
    this.resetRun(ts, sigmas32);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options: StepOptions = {}): Float32Array {
    const i = this.beginStep(modelOutput, timestep, sample);
    const sigmas = this.sigmas!;
    const sigma = sigmas[i];
    const { sChurn = 0, sTmin = 0, sTmax = Infinity, sNoise = 1 } = options;
    const gamma = sTmin <= sigma && sigma <= sTmax ? Math.min(sChurn / (sigmas.length - 1), 2 ** 0.5 - 1) : 0;
    const sigmaHat = fr(sigma * fr(gamma + 1));
    let x = sample;
    if (gamma > 0) {
      const noise = this.stepNoise(sample.length, options);
      const scale = sqrtF32(fr(fr(sigmaHat * sigmaHat) - fr(sigma * sigma)));
      const sn = fr(sNoise);
      x = sample.map((v, k) => v + fr(fr(noise[k] * sn) * scale));
    }
    const x0 = this.predictX0(modelOutput, x, sigma, sigmaHat);
    const dt = fr(sigmas[i + 1] - sigmaHat);
    const out = new Float32Array(x.length);
    for (let k = 0; k < x.length; k++) out[k] = x[k] + fr(fr(fr(x[k] - x0[k]) / sigmaHat) * dt);
    this.index = i + 1;
    return out;
  }
}
