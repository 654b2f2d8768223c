/**
 * What every model component shares: a built graph, its onnxruntime session, and an explicit release.
 * (A dropped session keeps its memory until V8 collects the wrapper, so release() is not optional.)
 * The session runs in a worker thread unless `inProcess` is asked for, so inference never blocks the
 * event loop (see onnx/worker-session.ts).
 */
import * as ort from "onnxruntime-node";
import type { BuiltModel } from "../onnx/graph";
import { assertCuda, deviceName, deviceOfProviders, parseDevice, type Device } from "../onnx/device";
import { createSession, pickSessionConfig, sessionProviders, type ModelSession, type SessionConfig } from "../onnx/session";
import { WorkerSession } from "../onnx/worker-session";
import { formatBytes } from "../memory/probes";
import { configPairs, inspectCustom, wrapPairs } from "../runtime/face";
import { checkUnchanged, fingerprintFiles, type FileFingerprint } from "../io/file-guard";
import { checkFiniteWeights, type WeightCheckOptions } from "../io/weight-scan";

/** The weight files of each session as they were when it was made (checked before every run). */
const sessionFiles = new WeakMap<ModelSession, readonly FileFingerprint[]>();

/** A dense row-major tensor crossing the model boundary (plain data, so it can move between threads). */
export interface Tensor<T extends Float32Array | BigInt64Array | Int32Array = Float32Array> {
  data: T;
  dims: readonly number[];
}

export class ModelReleasedError extends Error {
  override name = "ModelReleasedError";
  constructor(model: string) {
    super(`${model} was released; load it again (e.g. ${model}.fromPretrained(...)) before running it`);
  }
}

/** Bytes that crossed between this process's arrays and onnxruntime, over all runs of a model. */
export interface HostTraffic {
  runs: number;
  /** Denoising steps those runs covered: one per run, except that a denoising-loop run covers several. */
  steps: number;
  /** Input tensors handed to onnxruntime (on a GPU: copied host → device on every run). */
  bytesIn: number;
  /** Output tensors handed back (device → host). */
  bytesOut: number;
}

/** The config each session was made with, so a model can make it again on another device (`to()`). */
const sessionConfigs = new WeakMap<ModelSession, SessionConfig>();

export abstract class OrtModel {
  private session?: ModelSession;
  private sessionConfig: SessionConfig;
  private files: readonly FileFingerprint[];
  /** Host ↔ onnxruntime traffic of this model's runs (what IO binding would save on a GPU; see docs/gpu.md). */
  readonly hostTraffic: HostTraffic = { runs: 0, steps: 0, bytesIn: 0, bytesOut: 0 };

  /** @internal */
  protected constructor(readonly modelName: string, readonly built: BuiltModel, session: ModelSession) {
    this.session = session;
    this.sessionConfig = sessionConfigs.get(session) ?? {};
    this.files = sessionFiles.get(session) ?? fingerprintFiles(built.weightFileEnds ?? {});
  }

  /**
   * Makes the session. The weight files are fingerprinted first (a file truncated since its header was read
   * fails here, by name) and checked again if onnxruntime fails, so that a file changed meanwhile is named
   * instead of onnxruntime's message about external data.
   * @internal
   */
  protected static async createSession(built: BuiltModel, config: SessionConfig = {}): Promise<ModelSession> {
    // Checked here as well as where the session is made: a worker would report a bad device only after starting.
    const device = deviceOfProviders(sessionProviders(config));
    if (device.kind === "cuda") assertCuda(device);
    const files = fingerprintFiles(built.weightFileEnds ?? {});
    let session: ModelSession;
    try {
      session = config.inProcess ? await createSession(built, config) : await WorkerSession.create(built, config);
    } catch (e) {
      checkUnchanged(files, e);
      throw e;
    }
    try {
      checkUnchanged(files);
    } catch (e) {
      await session.release();
      throw e;
    }
    sessionFiles.set(session, files);
    sessionConfigs.set(session, pickSessionConfig(config));
    return session;
  }

  /**
   * The load-time check of the float weights that `graphs` map (io/weight-scan.ts): a NaN or ±Inf weight is a
   * NonFiniteWeightError naming the file and tensor, before any session maps the files. Skipped with
   * `checkWeights: false`.
   * @internal
   */
  protected static async checkWeights(graphs: readonly BuiltModel[], opts: WeightCheckOptions | undefined): Promise<void> {
    if (opts?.checkWeights === false) return;
    await checkFiniteWeights(graphs.flatMap((g) => g.weightTensors));
  }

  /** The short face: class, device, weights by dtype, key config (util.inspect and notebooks). */
  [inspectCustom](): string {
    const bytes = Object.entries(this.weightBytes).filter(([, n]) => n);
    const total = bytes.reduce((a, [, n]) => a + (n ?? 0), 0);
    const weights = bytes.length ? `${formatBytes(total)} (${bytes.map(([d, n]) => `${d} ${formatBytes(n ?? 0)}`).join(", ")})` : "none external";
    const head = `${this.constructor.name} on ${this.released ? "— (released)" : this.device} · weights ${weights}`;
    const config = (this as { config?: object }).config;
    const runs = this.hostTraffic.runs ? [`  runs ${this.hostTraffic.runs}`] : [];
    return [head, ...(config ? wrapPairs(configPairs(config), "  ").slice(0, 8) : []), ...runs].join("\n");
  }

  /** Where this model's session runs: "cpu", "cuda" or "cuda:N". */
  get device(): Device {
    return deviceName(deviceOfProviders(sessionProviders(this.sessionConfig)));
  }

  /**
   * Moves the model to another device (diffusers' `model.to("cuda")`): makes a session there from the same graph,
   * then releases the old one. On failure the model stays where it was. The weights are read again from the
   * checkpoint files, so a move costs a load.
   */
  async to(device: Device): Promise<this> {
    parseDevice(device, "device");
    if (!this.session) throw new ModelReleasedError(this.modelName);
    if (device === this.device) return this;
    const config: SessionConfig = { ...this.sessionConfig, device };
    const next = await OrtModel.createSession(this.built, config);
    const old = this.session;
    this.session = next;
    this.sessionConfig = config;
    this.files = sessionFiles.get(next) ?? this.files;
    await old.release();
    return this;
  }

  /** The session options in force (the device included, after to()), for other sessions of the same model. @internal */
  protected get sessionOptions(): SessionConfig {
    return this.sessionConfig;
  }

  /** Bytes of checkpoint weights this graph maps, by stored dtype. */
  get weightBytes(): BuiltModel["weightBytes"] {
    return this.built.weightBytes;
  }

  /** Real paths of the checkpoint files this model maps (for per-component residency). */
  get weightFiles(): readonly string[] {
    return this.built.weightFiles;
  }

  get released(): boolean {
    return this.session === undefined;
  }

  /** @internal */
  protected async run(feeds: Record<string, ort.Tensor>): Promise<Readonly<Record<string, ort.Tensor>>> {
    if (!this.session) throw new ModelReleasedError(this.modelName);
    return this.runCounted(this.session, feeds, 1);
  }

  /** Runs `session` (this model's or a variant's over the same weight files), counting its host traffic. @internal */
  protected async runCounted(session: ModelSession, feeds: Record<string, ort.Tensor>, steps: number): Promise<Readonly<Record<string, ort.Tensor>>> {
    checkUnchanged(this.files);
    const outputs = await session.run(feeds);
    this.hostTraffic.runs++;
    this.hostTraffic.steps += steps;
    this.hostTraffic.bytesIn += tensorBytes(Object.values(feeds));
    this.hostTraffic.bytesOut += tensorBytes(Object.values(outputs));
    return outputs;
  }

  /** Frees the session now: weights unmapped, memory back to the OS. Safe to call twice. */
  async release(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) await s.release();
  }
}

/** @internal */
export function toOrt(t: Tensor<Float32Array>): ort.Tensor;
/** @internal */
export function toOrt(t: Tensor<BigInt64Array>): ort.Tensor;
/** @internal */
export function toOrt(t: Tensor<Int32Array>): ort.Tensor;
/** @internal */
export function toOrt(t: Tensor<Float32Array | BigInt64Array | Int32Array>): ort.Tensor {
  const type = t.data instanceof Float32Array ? "float32" : t.data instanceof BigInt64Array ? "int64" : "int32";
  return new ort.Tensor(type, t.data, [...t.dims]);
}

/** @internal */
export function fromOrt(t: ort.Tensor): Tensor<Float32Array> {
  return { data: t.data as Float32Array, dims: [...t.dims] };
}

function tensorBytes(tensors: readonly ort.Tensor[]): number {
  return tensors.reduce((n, t) => n + (t.location === "cpu" || t.location === undefined ? (t.data as ArrayBufferView).byteLength : 0), 0);
}
