/**
 * Euler ancestral sampling (diffusers' `EulerAncestralDiscreteScheduler`): an Euler step down to σ_down, then
 * fresh noise of size σ_up drawn from the generator at every step (so the seed matters at every step).
 */

import type { ConfigSchema, SchedulerConfig } from "./config";
import { EULER_COMMON_SCHEMA, EulerBase, EulerCommonConfig } from "./euler-discrete";
import { fr, sqrtF32 } from "./numerics";
import type { SetTimestepsOptions, StepOptions } from "./scheduler";

const SCHEMA: ConfigSchema<EulerCommonConfig> = {
  ...EULER_COMMON_SCHEMA,
  // diffusers accepts "sample" in the config but fails at the first step; refuse it up front.
  prediction_type: { type: "string", default: "epsilon", choices: ["epsilon", "v_prediction"] },
};

export class EulerAncestralDiscreteScheduler extends EulerBase<EulerCommonConfig> {
  constructor(config: SchedulerConfig, overrides?: SchedulerConfig) {
    super("EulerAncestralDiscreteScheduler", SCHEMA, config, overrides);
  }

  setTimesteps(numInferenceSteps: number | null | undefined, options: SetTimestepsOptions = {}): void {
    if (options.timesteps !== undefined) {
      this.usageError("timesteps", "EulerAncestralDiscreteScheduler does not take custom timesteps");
    }
    const timesteps = this.spacedTimesteps(this.checkStepCount(numInferenceSteps));
    const sigmas = Float32Array.from([...this.interpolatedSigmas(timesteps), 0]);
    this.resetRun(Array.from(timesteps), sigmas);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options: StepOptions = {}): Float32Array {
    const i = this.beginStep(modelOutput, timestep, sample);
    const sigmas = this.sigmas!;
    const from = sigmas[i];
    const to = sigmas[i + 1];
    const x0 = this.predictX0(modelOutput, sample, from, from);
    // σ_up = √(σ_to²·(σ_from² − σ_to²)/σ_from²), σ_down = √(σ_to² − σ_up²)
    const from2 = fr(from * from);
    const to2 = fr(to * to);
    const up = sqrtF32(fr(fr(to2 * fr(from2 - to2)) / from2));
    const down = sqrtF32(fr(to2 - fr(up * up)));
    const dt = fr(down - from);
    const len = sample.length;
    const out = new Float32Array(len);
    for (let k = 0; k < len; k++) out[k] = sample[k] + fr(fr(fr(sample[k] - x0[k]) / from) * dt);
    const noise = this.stepNoise(len, options);
    for (let k = 0; k < len; k++) out[k] = out[k] + fr(noise[k] * up);
    this.index = i + 1;
    return out;
  }
}
