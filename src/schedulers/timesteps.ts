/**
 * Timestep spacings of diffusers' schedulers (Table 2 of Lin et al. 2023, "Common Diffusion Noise Schedules
 * and Sample Steps are Flawed"), in numpy's float64 arithmetic. Multistep solvers space N+1 points and drop
 * the last (t = 0); DDIM and Euler space N points.
 */

import { npArange, npLinspace, roundHalfEven } from "./numerics";

export type Spacing = "linspace" | "leading" | "trailing";

export interface SpacingOptions {
  spacing: Spacing;
  numInferenceSteps: number;
  numTrainTimesteps: number;
  /** First timestep + 1 (after λ clipping in DPM-Solver; num_train_timesteps elsewhere). */
  lastTimestep: number;
  stepsOffset: number;
  /** Space N+1 points and drop t = 0 (DPM-Solver, UniPC) rather than N points (DDIM, Euler). */
  dropLast: boolean;
  /** Round linspace values to integers (all but the Euler schedulers). */
  roundLinspace: boolean;
}

/** Descending timesteps (float64; integral except for unrounded linspace). */
export function spacedTimesteps(o: SpacingOptions): number[] {
  const points = o.numInferenceSteps + (o.dropLast ? 1 : 0);
  let ascending: number[];
  switch (o.spacing) {
    case "linspace":
      ascending = npLinspace(0, o.lastTimestep - 1, points).map((t) => (o.roundLinspace ? roundHalfEven(t) : t));
      break;
    case "leading": {
      const ratio = Math.floor(o.lastTimestep / points);
      ascending = Array.from({ length: points }, (_, i) => i * ratio + o.stepsOffset);
      break;
    }
    case "trailing": {
      // Already descending: trailing spacing counts down from the last timestep.
      const ratio = o.numTrainTimesteps / o.numInferenceSteps;
      return npArange(o.lastTimestep, 0, -ratio).map((t) => roundHalfEven(t) - 1);
    }
  }
  const descending = ascending.reverse();
  return o.dropLast ? descending.slice(0, -1) : descending;
}
