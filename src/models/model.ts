/**
 * What every model component shares: a built graph, its onnxruntime session, and an explicit release.
 * (A dropped session keeps its memory until V8 collects the wrapper, so release() is not optional.)
 * The session runs in a worker thread unless `inProcess` is asked for, so inference never blocks the
 * event loop (see onnx/worker-session.ts).
 */
import * as ort from "onnxruntime-node";
import type { BuiltModel } from "../onnx/graph";
import { createSession, type ModelSession, type SessionConfig } from "../onnx/session";
import { WorkerSession } from "../onnx/worker-session";

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

export abstract class OrtModel {
  private session?: ModelSession;

  protected constructor(readonly modelName: string, readonly built: BuiltModel, session: ModelSession) {
    this.session = session;
  }

  protected static async createSession(built: BuiltModel, config: SessionConfig = {}): Promise<ModelSession> {
    return config.inProcess ? createSession(built, config) : WorkerSession.create(built, config);
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

  protected async run(feeds: Record<string, ort.Tensor>): Promise<Readonly<Record<string, ort.Tensor>>> {
    if (!this.session) throw new ModelReleasedError(this.modelName);
    return this.session.run(feeds);
  }

  /** Frees the session now: weights unmapped, memory back to the OS. Safe to call twice. */
  async release(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) await s.release();
  }
}

export function toOrt(t: Tensor<Float32Array>): ort.Tensor;
export function toOrt(t: Tensor<BigInt64Array>): ort.Tensor;
export function toOrt(t: Tensor<Int32Array>): ort.Tensor;
export function toOrt(t: Tensor<Float32Array | BigInt64Array | Int32Array>): ort.Tensor {
  const type = t.data instanceof Float32Array ? "float32" : t.data instanceof BigInt64Array ? "int64" : "int32";
  return new ort.Tensor(type, t.data, [...t.dims]);
}

export function fromOrt(t: ort.Tensor): Tensor<Float32Array> {
  return { data: t.data as Float32Array, dims: [...t.dims] };
}
