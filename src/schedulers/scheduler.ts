/**
 * The scheduler interface the pipeline drives, and loading schedulers the diffusers way: from
 * `scheduler/scheduler_config.json`, or from another scheduler's config (`schedulerFromConfig(other.config,
 * "EulerDiscreteScheduler")` is diffusers' `EulerDiscreteScheduler.from_config(other.config)`).
 *
 * Samples and model outputs are flat float32 arrays in row-major order (e.g. [batch, 4, h, w] latents).
 */

import * as fs from "fs";
import * as path from "path";
import { isJsonObject, readJsonFile } from "../io/json";
import { ConfigError } from "../io/errors";
import type { TorchGenerator } from "../random/torch-generator";
import type { SchedulerConfig } from "./config";
import { SchedulerConfigError, UnknownSchedulerError } from "./errors";
import { DDIMScheduler } from "./ddim";
import { DPMSolverMultistepScheduler } from "./dpm-solver-multistep";
import { EulerAncestralDiscreteScheduler } from "./euler-ancestral-discrete";
import { EulerDiscreteScheduler } from "./euler-discrete";
import { UniPCMultistepScheduler } from "./unipc-multistep";

export type { SchedulerConfig } from "./config";

export interface SetTimestepsOptions {
  /** Custom descending timesteps instead of `numInferenceSteps` (DPMSolverMultistep, EulerDiscrete). */
  timesteps?: readonly number[];
}

export interface StepOptions {
  /**
   * Where the noise of stochastic steps comes from (Euler ancestral, SDE DPM-Solver, DDIM with η > 0, Euler
   * with s_churn): one generator for the whole tensor, or one per batch row (then `shape` is needed), as in
   * diffusers' `randn_tensor`. Without it the process-wide default generator is used, as torch does.
   */
  generator?: TorchGenerator | readonly TorchGenerator[];
  /** The sample's shape, [batch, ...]: needed with a generator list and with thresholding (per-row). */
  shape?: readonly number[];
  /** Noise to use instead of drawing it (diffusers' `variance_noise`; DDIM and DPM-Solver). */
  varianceNoise?: Float32Array;
  /** DDIM: η, the weight of the noise (0 = deterministic DDIM). */
  eta?: number;
  /** DDIM: recompute ε from the clipped x₀. */
  useClippedModelOutput?: boolean;
  /** EulerDiscrete: churn (stochasticity), active for σ in [sTmin, sTmax], noise scale. */
  sChurn?: number;
  sTmin?: number;
  sTmax?: number;
  sNoise?: number;
}

export interface Scheduler {
  readonly className: SchedulerClassName;
  /** Every constructor parameter (defaults filled in), kept foreign keys, `_class_name`, `_use_default_values`. */
  readonly config: SchedulerConfig;
  /** diffusers' class attribute `order` (model calls per step). */
  readonly order: number;
  /** Factor for the initial N(0, 1) latents. */
  readonly initNoiseSigma: number;
  /** The timesteps of the current schedule, in the order they are visited (after `setTimesteps`). */
  readonly timesteps: readonly number[];
  /**
   * Whether the timesteps are integers (torch int64: DPM-Solver, DDIM, UniPC) or float32 values (Euler
   * schedulers), which decides the dtype of the timestep the transformer gets.
   */
  readonly timestepsAreIntegers: boolean;
  /** σ for each timestep plus the final σ (float32), or null for schedulers without a σ schedule (DDIM). */
  readonly sigmas: Float32Array | null;
  readonly numInferenceSteps: number | null;
  /** Index of the next step (null until the first `step`/`scaleModelInput`). */
  readonly stepIndex: number | null;
  readonly beginIndex: number | null;
  /** Start at this step index instead of looking the first timestep up (img2img pipelines). */
  setBeginIndex(beginIndex: number): void;
  setTimesteps(numInferenceSteps: number | null | undefined, options?: SetTimestepsOptions): void;
  /** The transformer input for this step (identity for most schedulers; Euler divides by √(σ²+1)). */
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array;
  /** One denoising step: the sample at the next (less noisy) timestep. */
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options?: StepOptions): Float32Array;
}

type Factory = (config: SchedulerConfig, overrides?: SchedulerConfig) => Scheduler;

/** The diffusers scheduler classes pixart-ts implements. */
export type SchedulerClassName =
  | "DPMSolverMultistepScheduler"
  | "DDIMScheduler"
  | "EulerDiscreteScheduler"
  | "EulerAncestralDiscreteScheduler"
  | "UniPCMultistepScheduler";

const FACTORIES: Record<SchedulerClassName, Factory> = {
  DPMSolverMultistepScheduler: (c, o) => new DPMSolverMultistepScheduler(c, o),
  DDIMScheduler: (c, o) => new DDIMScheduler(c, o),
  EulerDiscreteScheduler: (c, o) => new EulerDiscreteScheduler(c, o),
  EulerAncestralDiscreteScheduler: (c, o) => new EulerAncestralDiscreteScheduler(c, o),
  UniPCMultistepScheduler: (c, o) => new UniPCMultistepScheduler(c, o),
};

export const SCHEDULER_CLASS_NAMES = Object.keys(FACTORIES) as SchedulerClassName[];

export function isSchedulerClassName(name: unknown): name is SchedulerClassName {
  return typeof name === "string" && Object.prototype.hasOwnProperty.call(FACTORIES, name);
}

/**
 * diffusers' `from_config`: a scheduler of class `className` (default: the config's `_class_name`) built from
 * `config`. Keys the class does not know are ignored (and kept in its config); absent ones take the class
 * defaults; `overrides` win over the config (`from_config(config, **overrides)`).
 */
export function schedulerFromConfig(config: SchedulerConfig, className?: string, overrides: SchedulerConfig = {}): Scheduler {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new SchedulerConfigError(className ?? "scheduler", "(config)", "expected a config object");
  }
  const name = className ?? config._class_name;
  if (name === undefined) {
    throw new SchedulerConfigError("scheduler", "_class_name", "missing; pass the scheduler class name explicitly");
  }
  if (!isSchedulerClassName(name)) throw new UnknownSchedulerError(name, SCHEDULER_CLASS_NAMES);
  return FACTORIES[name](config, overrides);
}

/**
 * Loads `scheduler_config.json` from `dir` (a pipeline's `scheduler/` folder) or from `dir/scheduler/` (the
 * pipeline folder itself). The file may hold Python's bare `-Infinity`/`NaN` tokens.
 */
export async function loadScheduler(dir: string, className?: string, overrides?: SchedulerConfig): Promise<Scheduler> {
  const direct = path.join(dir, "scheduler_config.json");
  const file = fs.existsSync(direct) ? direct : path.join(dir, "scheduler", "scheduler_config.json");
  const json = await readJsonFile(file);
  if (!isJsonObject(json)) throw new ConfigError(file, "expected a JSON object at the top level");
  try {
    return schedulerFromConfig(json, className, overrides);
  } catch (e) {
    if (e instanceof UnknownSchedulerError) throw new UnknownSchedulerError(e.className, e.known, file);
    if (e instanceof SchedulerConfigError) throw new SchedulerConfigError(e.className, e.field, e.problem, file);
    throw e;
  }
}
