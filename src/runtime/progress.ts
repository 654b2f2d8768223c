/**
 * Pipeline progress as plain events: an operation (fromPretrained, load, encodePrompt, call, decodeLatents) begins,
 * its stages (load, encode, denoise, decode) start and end, each denoising step ends with its latents, and the
 * operation ends. The pipeline only emits; what a user sees is decided by the listener: the notebook's live display
 * (src/display/progress.ts, registered here by the kernel as the default), the CLI's stderr line, or user code.
 *
 * A leaf module like kernel-registry.ts, so the pipeline never imports display/ or kernel/.
 */
import { kernelRegistry } from "./kernel-registry";

export type PipelineOperation = "fromPretrained" | "load" | "encodePrompt" | "call" | "decodeLatents";
export type PipelineStage = "load" | "encode" | "denoise" | "decode";

/** A dense tensor as the pipeline holds it (structurally the models' Tensor; kept here so this module stays a leaf). */
export interface ProgressTensor {
  data: Float32Array;
  dims: readonly number[];
}

interface EventBase {
  /** Milliseconds since the operation began. */
  elapsedMs: number;
  operation: PipelineOperation;
}

export interface OperationBeginEvent extends EventBase {
  type: "begin";
}

export interface OperationEndEvent extends EventBase {
  type: "end";
  /** The error's message when the operation failed or was interrupted. */
  error?: string;
}

export interface StageStartEvent extends EventBase {
  type: "stage-start";
  stage: PipelineStage;
  /** What runs, e.g. "load transformer", "encode prompt", "denoise (20 steps)". */
  label: string;
  component?: "tokenizer" | "textEncoder" | "transformer" | "vae";
  /** Steps the stage will run (denoise only). */
  totalSteps?: number;
}

export interface StageEndEvent extends EventBase {
  type: "stage-end";
  stage: PipelineStage;
  label: string;
  component?: StageStartEvent["component"];
  durationMs: number;
  error?: string;
}

export interface StepEvent extends EventBase {
  type: "step";
  stage: "denoise";
  /** 1-based: step k of totalSteps has just finished. */
  step: number;
  totalSteps: number;
  timestep: number;
  /** Since the denoise stage started. */
  stageElapsedMs: number;
  /** Steps per second so far (k / stageElapsed). */
  itPerSec: number;
  /** Estimated time to the end of the stage at the rate so far. */
  etaMs: number;
  /**
   * Latents [B, C, h, w] after this step, in the scheduler's space (before the VAE's scaling). The pipeline's own
   * array: read it during the call, copy what you keep.
   */
  latents: ProgressTensor;
  /** With call({ previewDecodeEvery: n }), on every n-th step: the latents decoded by the VAE, NHWC RGB in [0, 1]. */
  decoded?: ProgressTensor;
}

export type ProgressEvent = OperationBeginEvent | OperationEndEvent | StageStartEvent | StageEndEvent | StepEvent;
export type ProgressListener = (event: ProgressEvent) => void;

/**
 * The `progress` option of pipeline methods: false silences progress, a function receives every event, true or
 * undefined use the default (the live notebook display inside a pixart-ts kernel, nothing elsewhere).
 */
export type ProgressOption = boolean | ProgressListener;

/** Makes one listener per operation (so a notebook shows one output per call). Registered by the kernel. */
export type ProgressListenerFactory = (operation: PipelineOperation) => ProgressListener | undefined;

interface ProgressRegistry {
  defaultProgress?: ProgressListenerFactory;
}

function registry(): ProgressRegistry {
  return kernelRegistry() as unknown as ProgressRegistry;
}

/** Sets (or with undefined removes) the listener factory used when a call does not say otherwise. */
export function setDefaultProgress(factory: ProgressListenerFactory | undefined): void {
  registry().defaultProgress = factory;
}

export function defaultProgress(): ProgressListenerFactory | undefined {
  return registry().defaultProgress;
}

/**
 * What the pipeline holds while an operation runs. Listener errors never stop the pipeline: the first one is
 * reported with console.warn and the listener is dropped for the rest of the operation.
 */
export class ProgressEmitter {
  private readonly began = Date.now();
  private stageStart = new Map<PipelineStage, { at: number; label: string; component?: StageStartEvent["component"] }>();

  private constructor(private listener: ProgressListener | undefined, readonly operation: PipelineOperation) {}

  /** A silent emitter, for work nested inside an operation that already reports. */
  static readonly silent = new ProgressEmitter(undefined, "call");

  /** Begins an operation with the listener the option asks for (see ProgressOption). */
  static open(operation: PipelineOperation, option: ProgressOption | undefined): ProgressEmitter {
    let listener: ProgressListener | undefined;
    if (typeof option === "function") listener = option;
    else if (option !== false) listener = defaultProgress()?.(operation);
    const emitter = new ProgressEmitter(listener, operation);
    emitter.emit({ type: "begin" });
    return emitter;
  }

  get active(): boolean {
    return this.listener !== undefined;
  }

  /** Runs `work` as one stage between stage-start and stage-end events (stage-end carries the error, if any). */
  async stage<T>(stage: PipelineStage, label: string, info: { component?: StageStartEvent["component"]; totalSteps?: number }, work: () => Promise<T>): Promise<T> {
    this.stageStart.set(stage, { at: Date.now(), label, ...(info.component ? { component: info.component } : {}) });
    this.emit({ type: "stage-start", stage, label, ...info });
    let error: string | undefined;
    try {
      return await work();
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
      throw e;
    } finally {
      const started = this.stageStart.get(stage)!;
      this.emit({ type: "stage-end", stage, label, ...(info.component ? { component: info.component } : {}),
        durationMs: Date.now() - started.at, ...(error === undefined ? {} : { error }) });
    }
  }

  /** Step k (1-based) of the denoise stage has finished with these latents. */
  step(step: number, totalSteps: number, timestep: number, latents: ProgressTensor, decoded?: ProgressTensor): void {
    if (!this.listener) return;
    const stageElapsedMs = Date.now() - (this.stageStart.get("denoise")?.at ?? this.began);
    const itPerSec = stageElapsedMs > 0 ? (step * 1000) / stageElapsedMs : 0;
    const etaMs = step > 0 ? (stageElapsedMs / step) * (totalSteps - step) : 0;
    this.emit({ type: "step", stage: "denoise", step, totalSteps, timestep, stageElapsedMs, itPerSec, etaMs, latents, ...(decoded ? { decoded } : {}) });
  }

  /** Ends the operation; call once, from a finally block. */
  end(error?: unknown): void {
    this.emit({ type: "end", ...(error === undefined ? {} : { error: error instanceof Error ? error.message : String(error) }) });
    this.listener = undefined;
  }

  /** Runs an operation between begin and end events. */
  static async run<T>(operation: PipelineOperation, option: ProgressOption | undefined, work: (progress: ProgressEmitter) => Promise<T>): Promise<T> {
    const progress = ProgressEmitter.open(operation, option);
    try {
      const result = await work(progress);
      progress.end();
      return result;
    } catch (e) {
      progress.end(e);
      throw e;
    }
  }

  private emit(event: DistributiveOmit<ProgressEvent, "elapsedMs" | "operation">): void {
    const listener = this.listener;
    if (!listener) return;
    try {
      listener({ ...event, elapsedMs: Date.now() - this.began, operation: this.operation } as ProgressEvent);
    } catch (e) {
      this.listener = undefined;
      console.warn(`pixart-ts: progress display failed and is off for the rest of this ${this.operation}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
