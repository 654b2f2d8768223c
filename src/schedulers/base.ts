/** State and checks every scheduler here shares: config, training tables, timestep bookkeeping, step noise. */

import { inspectCustom, shortList, wrapPairs } from "../runtime/face";
import { randnTensor } from "../random/randn-tensor";
import { TorchGenerator } from "../random/torch-generator";
import { ConfigSchema, resolveConfig, SchedulerConfig } from "./config";
import { SchedulerConfigError, SchedulerUsageError } from "./errors";
import { BETA_SCHEDULES, BetaConfig, TrainingSchedule, trainingSchedule } from "./noise-schedule";
import type { Scheduler, SchedulerClassName, SetTimestepsOptions, StepOptions } from "./scheduler";

/** Config keys of the training schedule, with diffusers' defaults. */
export const BETA_SCHEMA: ConfigSchema<BetaConfig> = {
  num_train_timesteps: { type: "integer", default: 1000, min: 2 },
  beta_start: { type: "number", default: 0.0001 },
  beta_end: { type: "number", default: 0.02 },
  beta_schedule: { type: "string", default: "linear", choices: BETA_SCHEDULES },
  trained_betas: { type: "number[]", default: null, nullable: true },
  rescale_betas_zero_snr: { type: "boolean", default: false },
};

export const TIMESTEP_SPACINGS = ["linspace", "leading", "trailing"] as const;

/** How a step's timestep is located in the schedule when the step index is not yet known. */
export type TimestepLookup = "multistep" | "euler";

export abstract class SchedulerBase<P extends BetaConfig> implements Scheduler {
  readonly order = 1;
  readonly config: SchedulerConfig;
  timesteps: number[] = [];
  sigmas: Float32Array | null = null;
  numInferenceSteps: number | null = null;
  protected readonly params: P;
  protected readonly train: TrainingSchedule;
  protected index: number | null = null;
  protected begin: number | null = null;

  abstract readonly timestepsAreIntegers: boolean;
  abstract get initNoiseSigma(): number;
  abstract setTimesteps(numInferenceSteps: number | null | undefined, options?: SetTimestepsOptions): void;
  abstract step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options?: StepOptions): Float32Array;

  /** The short face: class, key options, timesteps (util.inspect and notebooks). */
  [inspectCustom](): string {
    const keys = ["num_train_timesteps", "beta_schedule", "beta_start", "beta_end", "prediction_type", "timestep_spacing",
      "steps_offset", "solver_order", "algorithm_type", "solver_type", "lower_order_final", "use_karras_sigmas", "variance_type"];
    const cfg = this.config as Record<string, unknown>;
    const pairs = keys.filter((k) => cfg[k] !== undefined && cfg[k] !== null).map((k) => [k, cfg[k]] as const);
    const steps = this.timesteps.length ? `timesteps ${shortList(this.timesteps)}` : "timesteps not set (setTimesteps(n))";
    return [this.className, ...wrapPairs(pairs, "  "), `  ${steps}`].join("\n");
  }

  protected constructor(
    readonly className: SchedulerClassName,
    schema: ConfigSchema<P>,
    config: SchedulerConfig,
    overrides: SchedulerConfig | undefined,
    private readonly lookup: TimestepLookup,
  ) {
    const resolved = resolveConfig(className, schema, config, overrides);
    this.params = resolved.params;
    this.config = resolved.config;
    if (this.params.trained_betas !== null && this.params.trained_betas.length !== this.params.num_train_timesteps) {
      this.configError("trained_betas", `expected ${this.params.num_train_timesteps} values (num_train_timesteps), ` +
        `got ${this.params.trained_betas.length}`);
    }
    this.train = trainingSchedule(className, this.params);
  }

  get stepIndex(): number | null {
    return this.index;
  }

  get beginIndex(): number | null {
    return this.begin;
  }

  setBeginIndex(beginIndex: number): void {
    if (!Number.isSafeInteger(beginIndex) || beginIndex < 0) {
      this.usageError("beginIndex", `expected a non-negative integer, got ${beginIndex}`);
    }
    this.begin = beginIndex;
  }

  scaleModelInput(sample: Float32Array, _timestep: number): Float32Array {
    return sample;
  }

  protected configError(field: string, problem: string): never {
    throw new SchedulerConfigError(this.className, field, problem);
  }

  protected usageError(argument: string, problem: string): never {
    throw new SchedulerUsageError(this.className, argument, problem);
  }

  /** Validates `numInferenceSteps` (a positive integer, at most `max` when given). */
  protected checkStepCount(n: number | null | undefined, max?: number): number {
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) {
      this.usageError("numInferenceSteps", `expected a positive integer, got ${String(n)}`);
    }
    if (max !== undefined && n > max) {
      this.usageError("numInferenceSteps", `${n} is larger than num_train_timesteps (${max})`);
    }
    return n;
  }

  /** Resets the per-run state after new timesteps were set. */
  protected resetRun(timesteps: number[], sigmas: Float32Array | null): void {
    this.timesteps = timesteps;
    this.sigmas = sigmas;
    this.numInferenceSteps = timesteps.length;
    this.index = null;
    this.begin = null;
  }

  /** Checks the step arguments and returns the current step index (looked up on the first step). */
  protected beginStep(modelOutput: Float32Array, timestep: number, sample: Float32Array): number {
    this.checkStepArgs(modelOutput, timestep, sample);
    if (this.index === null) this.initStepIndex(timestep);
    const i = this.index!;
    if (i >= this.timesteps.length) {
      this.usageError("step", `all ${this.timesteps.length} steps are done; call setTimesteps to start a new run`);
    }
    return i;
  }

  /** Checks that the timesteps are set and the arrays match. */
  protected checkStepArgs(modelOutput: Float32Array, timestep: number, sample: Float32Array): void {
    if (this.numInferenceSteps === null) this.usageError("step", "call setTimesteps before step");
    if (!(modelOutput instanceof Float32Array) || !(sample instanceof Float32Array)) {
      this.usageError("step", "modelOutput and sample must be Float32Arrays");
    }
    if (modelOutput.length !== sample.length) {
      this.usageError("modelOutput", `has ${modelOutput.length} elements but sample has ${sample.length}`);
    }
    if (typeof timestep !== "number" || !Number.isFinite(timestep)) {
      this.usageError("timestep", `expected a finite number, got ${String(timestep)}`);
    }
  }

  protected initStepIndex(timestep: number): void {
    if (this.begin !== null) {
      this.index = this.begin;
      return;
    }
    const matches: number[] = [];
    this.timesteps.forEach((t, i) => {
      if (t === timestep) matches.push(i);
    });
    if (matches.length === 0 && this.lookup === "euler") {
      this.usageError("timestep", `${timestep} is not one of the scheduler's timesteps`);
    }
    // A repeated timestep starts at its second occurrence (so img2img does not skip a sigma).
    this.index = matches.length === 0 ? this.timesteps.length - 1 : matches[matches.length > 1 ? 1 : 0];
  }

  /** diffusers' `randn_tensor(shape, generator)` for noise drawn inside a step, or the caller's noise. */
  protected stepNoise(length: number, options: StepOptions): Float32Array {
    if (options.varianceNoise !== undefined) {
      if (!(options.varianceNoise instanceof Float32Array) || options.varianceNoise.length !== length) {
        this.usageError("varianceNoise", `expected a Float32Array of ${length} elements`);
      }
      return options.varianceNoise;
    }
    const g = options.generator;
    if (Array.isArray(g) && g.length > 1) {
      const shape = this.shapeOf(length, options, "a list of generators");
      return randnTensor(shape, g as TorchGenerator[]);
    }
    if (g !== undefined && !Array.isArray(g) && !(g instanceof TorchGenerator)) {
      this.usageError("generator", "expected a TorchGenerator or an array of them");
    }
    return randnTensor([length], g as TorchGenerator | TorchGenerator[] | undefined);
  }

  /** The sample's shape from the options, checked against its length. */
  protected shapeOf(length: number, options: StepOptions, why: string): readonly number[] {
    const shape = options.shape;
    if (shape === undefined) this.usageError("shape", `needed with ${why}`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (shape.length === 0 || size !== length) {
      this.usageError("shape", `[${shape.join(", ")}] does not match the ${length} elements of the sample`);
    }
    return shape;
  }

  /** Batch size for per-row thresholding, from `options.shape`. */
  protected batchOf(length: number, options: StepOptions): number {
    return this.shapeOf(length, options, "thresholding (per batch row)")[0];
  }
}
